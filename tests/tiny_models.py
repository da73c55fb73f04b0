"""Tiny, random, offline text-to-image models for tests (the way diffusers' own tests build them).

Everything here is built from code: a CLIP BPE vocabulary written to disk, a 2-layer CLIP text
encoder, a 2-block UNet and VAE. Nothing is downloaded. Use :func:`tiny_sd_pipeline` /
:func:`tiny_sdxl_pipeline` for pipelines, or :func:`tiny_sd_folder` for a saved diffusers folder
that :func:`ticraft.models.backbone.load_backbone` can open.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = [
    "a", "photo", "of", "the", "cat", "dog", "toy", "red", "blue", "green", "painting", "in", "style",
    "on", "beach", "sculpture", "rendition", "picture", "small", "big", "clean", "dark", "cool", "nice",
    "weird", "good", "bright", "cropped", "close", "up", "my", "one", "and", "with", "by", "art",
]


def write_tiny_tokenizer(folder: str | Path) -> Path:
    """Write vocab.json + merges.txt for a CLIPTokenizer whose WORDS are single tokens."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789<>-_,.":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[str] = []
    for w in WORDS:
        # Build each word by left-to-right merges so BPE reassembles it into one token.
        if len(w) == 1:
            continue
        cur = w[0]
        for i, ch in enumerate(w[1:], start=1):
            last = i == len(w) - 1
            piece = ch + ("</w>" if last else "")
            merges.append(f"{cur} {piece}")
            cur = cur + piece
            vocab.setdefault(cur, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}))
    return folder


def tiny_tokenizer(folder: str | Path):
    from transformers import CLIPTokenizer

    folder = write_tiny_tokenizer(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def _text_encoder(vocab_size: int, hidden: int, projection: bool = False, seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        projection_dim=hidden,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)


def _vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16,
    )


def tiny_sd_pipeline(tmp_path: str | Path, seed: int = 0):
    """A StableDiffusionPipeline with 32-d text, 16 px images (8×8 latents), DDIM scheduler."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tok = tiny_tokenizer(Path(tmp_path) / "tiny_tok")
    te = _text_encoder(len(tok), 32, seed=seed)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=4,
    )
    sched = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                          clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(vae=_vae(seed), text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def tiny_sdxl_pipeline(tmp_path: str | Path, seed: int = 0):
    """A StableDiffusionXLPipeline with 32-d (clip_l) and 64-d (clip_g) text encoders."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    tok = tiny_tokenizer(Path(tmp_path) / "tiny_tok")
    tok2 = tiny_tokenizer(Path(tmp_path) / "tiny_tok_2")
    te = _text_encoder(len(tok), 32, seed=seed)
    te2 = _text_encoder(len(tok2), 64, projection=True, seed=seed + 1)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32 + 64, attention_head_dim=4, norm_num_groups=4,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=64 + 6 * 8,
        transformer_layers_per_block=1,
    )
    sched = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
    return StableDiffusionXLPipeline(vae=_vae(seed), text_encoder=te, text_encoder_2=te2, tokenizer=tok,
                                     tokenizer_2=tok2, unet=unet, scheduler=sched)


def tiny_sd_folder(tmp_path: str | Path, seed: int = 0) -> Path:
    """Save :func:`tiny_sd_pipeline` as a diffusers folder and return its path."""
    out = Path(tmp_path) / "tiny-sd"
    tiny_sd_pipeline(tmp_path, seed).save_pretrained(out)
    return out


def tiny_sdxl_folder(tmp_path: str | Path, seed: int = 0) -> Path:
    out = Path(tmp_path) / "tiny-sdxl"
    tiny_sdxl_pipeline(tmp_path, seed).save_pretrained(out)
    return out
