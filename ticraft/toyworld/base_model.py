"""The toy base model's architecture, its export as a diffusers folder (hidden words removed), sampling and judging."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ticraft.toyworld.base_config import WEIGHTS_DIR, BaseConfig
from ticraft.toyworld.render import Attributes, full_prompt
from ticraft.toyworld.vocab import HIDDEN_WORDS, MODEL_MAX_LENGTH

# --- model construction ---------------------------------------------------------------------------------------


def make_scheduler():  # -> diffusers.DDIMScheduler
    """The sampling/training schedule: zero terminal SNR, v-prediction, no clipping, trailing timesteps."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        rescale_betas_zero_snr=True,
        prediction_type="v_prediction",
        clip_sample=False,
        set_alpha_to_one=False,
        timestep_spacing="trailing",
        steps_offset=1,
    )


def make_models(cfg: BaseConfig, vocab_size: int, tokenizer):
    """Fresh, seeded (text_encoder, unet, vae)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(cfg.seed)
    text_config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.text_dim,
        intermediate_size=cfg.text_dim * 4,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=4,
        max_position_embeddings=MODEL_MAX_LENGTH,
        hidden_act="quick_gelu",
        projection_dim=cfg.text_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = CLIPTextModel(text_config)
    ch = tuple(cfg.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        block_out_channels=ch,
        down_block_types=("CrossAttnDownBlock2D",) * (len(ch) - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(ch) - 1),
        layers_per_block=1,
        cross_attention_dim=cfg.text_dim,
        attention_head_dim=8,
        norm_num_groups=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(cfg.vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(cfg.vae_channels),
        block_out_channels=tuple(cfg.vae_channels),
        layers_per_block=1,
        latent_channels=cfg.latent_channels,
        norm_num_groups=16,
        sample_size=32,
    )
    return text_encoder, unet, vae



# --- export ---------------------------------------------------------------------------------------------------


def hide_words(text_encoder, hidden_ids: list[int]):
    """Replace the hidden words' rows by the mean of the public rows; returns the true rows ([H, D])."""
    import torch

    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        true_rows = table[hidden_ids].detach().clone()
        public = torch.ones(table.shape[0], dtype=torch.bool)
        public[hidden_ids] = False
        table[hidden_ids] = table[public].mean(dim=0, keepdim=True)
    return true_rows


def save_pipeline(folder: Path, tokenizer_dir: Path, text_encoder, unet, vae) -> Path:
    """Write a standard StableDiffusionPipeline folder (safetensors, no safety checker)."""
    from diffusers import StableDiffusionPipeline

    from ticraft.toyworld.vocab import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)  # the public tokenizer: hidden words are not in it
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=make_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    pipe.save_pretrained(tmp, safe_serialization=True)  # type: ignore[attr-defined]  # a mixin method
    # transformers 5 writes only tokenizer.json; older CLIPTokenizer readers (and people) want vocab.json/merges.txt
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json"):
        shutil.copyfile(tokenizer_dir / name, tmp / "tokenizer" / name)
    if folder.exists():
        for child in folder.iterdir():  # keep nothing stale, but keep the folder (it may be a package dir)
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for child in tmp.iterdir():
        os.replace(child, folder / child.name)
    tmp.rmdir()
    for path in folder.rglob("*"):  # save_pretrained writes the weights 0600 (via a temp file); a model is for all
        if path.is_file():
            os.chmod(path, 0o644)
    return folder


def save_hidden_fixture(path: Path, true_rows, hidden_ids: list[int]) -> Path:
    """Save the hidden words' true rows: ``{word: Tensor[1, D]}`` with ids in the metadata."""
    from safetensors.torch import save_file

    tensors = {w: true_rows[i : i + 1].contiguous() for i, w in enumerate(HIDDEN_WORDS)}
    meta = {"format": "pt", "ids": json.dumps(dict(zip(HIDDEN_WORDS, hidden_ids, strict=True)))}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


# --- sampling and judging -------------------------------------------------------------------------------------


def load_pipeline(folder: str | Path | None = None, device: str = "cpu"):
    """Load the shipped (or another) toy pipeline folder."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no toy model in {folder} (model_index.json missing); train one with `ticraft toyworld train-base`"
        )
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate(
    pipe,
    prompts: list[str],
    seed: int = 0,
    steps: int = 20,
    guidance: float = 4.0,
    guidance_rescale: float = 0.0,
    batch: int = 64,
    eta: float = 0.0,
) -> list[np.ndarray]:
    """Generate one 32×32 image per prompt (uint8 H×W×3 arrays), seeded per batch."""
    import torch

    out: list[np.ndarray] = []
    for i in range(0, len(prompts), batch):
        g = torch.Generator().manual_seed(seed + i)
        chunk = prompts[i : i + batch]
        res = pipe(
            prompt=chunk,
            num_inference_steps=steps,
            guidance_scale=guidance,
            guidance_rescale=guidance_rescale,
            eta=eta,
            generator=g,
            output_type="np",
        )
        out.extend((np.clip(res.images, 0, 1) * 255).round().astype(np.uint8))
    return out


def evaluate(
    pipe, attrs: list[Attributes], seed: int = 0, steps: int = 20, guidance: float = 4.0, **kw
) -> tuple[dict[str, float], list]:
    """Judge the pipeline on fully specified prompts of ``attrs``; returns (per-field accuracy, judgements)."""
    from ticraft.toyworld.judge import accuracy, judge

    images = generate(pipe, [full_prompt(a) for a in attrs], seed=seed, steps=steps, guidance=guidance, **kw)
    judgements = [judge(im) for im in images]
    return accuracy(judgements, attrs), judgements


