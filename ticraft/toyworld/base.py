"""Train the toy world's base text-to-image model, save it as a diffusers pipeline folder, and judge its samples.

Two stages, both deterministic from ``BaseConfig.seed`` and resumable from step checkpoints:
1. the VAE (AutoencoderKL, 32 px ↔ 16×16×4 latents) on renders;
2. the CLIP text encoder and the UNet jointly, on cached latents and pre-tokenised captions (10 % empty, for
   classifier-free guidance).

Design choices, each from a measured failure of a throwaway prototype (see the issue): zero-terminal-SNR
``scaled_linear`` betas with v-prediction (otherwise the global colour leaks through the last noise level and the
sampler ignores the prompt's colours), ``clip_sample=False``, trailing DDIM timesteps; and a text-pooled embedding
added to the UNet's time embedding (``addition_embed_type="text"``) so the prompt steers every ResNet block, which
helps the global attributes (shape, colour, style) that cross-attention alone learnt slowly. Every RNG draw of step
``k`` comes from a generator seeded with ``(seed, stage, k)``, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ticraft.toyworld.render import Attributes, describe, full_prompt, render_array, sample_attributes
from ticraft.toyworld.vocab import BIASED_WORD, HIDDEN_OBJECTS, HIDDEN_STYLE, HIDDEN_WORDS, MODEL_MAX_LENGTH

WEIGHTS_DIR = Path(__file__).parent / "weights"
FIXTURE_NAME = "toyworld_hidden.safetensors"

Progress = Callable[[str, int, int, float], None]  # (stage, step, total, loss)


@dataclass
class BaseConfig:
    """Everything that determines the trained base model."""

    seed: int = 0
    n_images: int = 24_000
    hidden_share: float = 0.04  # share of the data for each hidden object and the biased word
    vae_steps: int = 250
    vae_batch: int = 32
    vae_lr: float = 1e-3
    decoder_steps: int = 1000
    unet_steps: int = 10_000  # an upper bound: the cpu preset's time budget (PRESET_BUDGETS) decides
    unet_batch: int = 32
    unet_lr: float = 1e-3
    warmup: int = 200
    ema_decay: float = 0.999
    cfg_dropout: float = 0.1
    checkpoint_every: int = 100
    # architecture
    text_dim: int = 64
    text_layers: int = 2
    unet_channels: tuple[int, ...] = (32, 64, 128)
    vae_channels: tuple[int, ...] = (32, 64)
    latent_channels: int = 4

    def to_json(self) -> str:
        """JSON form (saved next to checkpoints, compared on resume)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def preset(cls, name: str, **overrides) -> BaseConfig:
        """``cpu`` (the defaults: ~60 min on 2 cores) or ``gpu`` (more data, big batches; minutes on one GPU).

        Example::

            cfg = BaseConfig.preset("gpu", seed=1)
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


# The gpu preset exists because the tiny model is launch-bound on a GPU, so big batches are nearly free there: on an
# H100 a step of batch 512 took ~78 ms, and 300 s of it (2M samples, 20x the CPU preset's) took shape obedience from
# 42.5 % to 100 % on held-out prompts.
PRESETS: dict[str, dict] = {
    "cpu": {},  # the defaults
    "gpu": {
        "n_images": 100_000,
        "vae_steps": 1000,
        "vae_batch": 128,
        "decoder_steps": 2000,
        "unet_steps": 30_000,
        "unet_batch": 512,
        "warmup": 300,
        "ema_decay": 0.9995,
        "checkpoint_every": 1000,
    },
}

# Default stage-2 time budget (s) per preset, for the CLI: the cpu preset fills about an hour on 2 cores in all
# (renders and VAE take ~7 min there); on a GPU the planned steps are the recipe.
PRESET_BUDGETS: dict[str, float | None] = {"cpu": 2900.0, "gpu": None}


@dataclass
class Example:
    """One training example: attributes and the caption it was shown with."""

    attrs: Attributes
    caption: str
    word: str | None = None  # the hidden word the caption uses, if any


@dataclass
class Dataset:
    """Rendered images in [-1, 1] (N×3×32×32, float32) and their captions."""

    images: np.ndarray
    examples: list[Example] = field(default_factory=list)


# --- data -----------------------------------------------------------------------------------------------------


def sample_example(rng: np.random.Generator, hidden_share: float = 0.04) -> Example:
    """Draw one training example (never a held-out combination)."""
    u = rng.random()
    objects = list(HIDDEN_OBJECTS.values())
    for i, obj in enumerate(objects):
        if u < hidden_share * (i + 1):
            style = str(rng.choice(["none", "none", "none", HIDDEN_STYLE]))
            attrs = sample_attributes(
                rng, shape=obj.shape, colour=obj.colour, texture=obj.texture, style=style, held_out=False
            )
            return Example(attrs, describe(attrs, rng, subject=obj.word), obj.word)
    if u < hidden_share * (len(objects) + 1):
        colours, probs = zip(*BIASED_WORD.colours, strict=True)
        colour = str(rng.choice(colours, p=probs))
        attrs = sample_attributes(
            rng, shape=BIASED_WORD.shape, colour=colour, texture=BIASED_WORD.texture, style="none", held_out=False
        )
        return Example(attrs, describe(attrs, rng, subject=BIASED_WORD.word), BIASED_WORD.word)
    attrs = sample_attributes(rng, held_out=False)
    return Example(attrs, describe(attrs, rng), HIDDEN_STYLE if attrs.style == HIDDEN_STYLE else None)


def build_dataset(n: int, seed: int, hidden_share: float = 0.04) -> Dataset:
    """Render ``n`` training examples, deterministically from ``seed``."""
    rng = np.random.default_rng([seed, 1])
    examples = [sample_example(rng, hidden_share) for _ in range(n)]
    images = np.stack([render_array(e.attrs) for e in examples]).astype(np.float32)
    images = images.transpose(0, 3, 1, 2) / 127.5 - 1.0
    return Dataset(images=images, examples=examples)


def eval_prompts(n: int, seed: int = 1234) -> list[Attributes]:
    """Held-out attribute combinations (never seen in training) for quality checks, fully specified.

    Only public styles: the hidden style's word is not in the shipped tokenizer, so no prompt can ask for it.
    """
    from ticraft.toyworld.render import STYLES

    rng = np.random.default_rng([seed, 7])
    public = [s for s in STYLES if s != HIDDEN_STYLE]
    weights = np.array([0.7 if s == "none" else 0.15 for s in public])
    styles = [str(rng.choice(public, p=weights / weights.sum())) for _ in range(n)]
    return [sample_attributes(rng, held_out=True, style=style) for style in styles]


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


# --- training helpers -----------------------------------------------------------------------------------------


def _generator(seed: int, stage: int, step: int):
    import torch

    return torch.Generator().manual_seed(_seed(seed, stage, step))


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _save_ckpt(path: Path, payload: dict) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _load_ckpt(path: Path) -> dict | None:
    import torch

    if not path.is_file():
        return None
    # weights_only: a checkpoint folder is a path users pass in (--work), so never unpickle code from it.
    return torch.load(path, map_location="cpu", weights_only=True)


def _report(progress: Progress | None, stage: str, step: int, total: int, loss, log_every: int) -> None:
    """Call ``progress`` every ``log_every`` steps only: reading the loss waits for the device (a host sync)."""
    if progress and (step % log_every == 0 or step == total):
        progress(stage, step, total, float(loss.detach()))


def _fit_vae_part(
    vae,
    params: list,
    images,
    *,
    stage: str,
    stage_id: int,
    steps: int,
    warmup: int,
    loss_fn: Callable,
    cfg: BaseConfig,
    work: Path,
    resume: bool,
    progress: Progress | None,
    log_every: int,
):
    """The loop both VAE stages share: seeded batches of ``images``, AdamW on ``params``, checkpoints in
    ``work/<stage>.pt``; ``loss_fn(x, generator)`` is the stage's loss. Returns the VAE frozen, in eval mode."""
    import torch

    opt = torch.optim.AdamW(params, lr=cfg.vae_lr, weight_decay=0.0)
    ckpt = work / f"{stage}.pt"
    start = 0
    state = _load_ckpt(ckpt) if resume else None
    if state is not None:
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    vae.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    vae.train()
    for step in range(start, steps):
        g = _generator(cfg.seed, stage_id, step)
        idx = torch.randint(0, len(images), (cfg.vae_batch,), generator=g)
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, cfg.vae_lr, warmup)
        loss = loss_fn(images[idx.to(images.device)], g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _report(progress, stage, step + 1, steps, loss, log_every)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == steps:
            _save_ckpt(ckpt, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1})
    vae.eval().requires_grad_(False)
    return vae


def train_vae(vae, images, cfg: BaseConfig, work: Path, resume: bool, progress: Progress | None, log_every: int = 25):
    """Stage 1: reconstruction (MSE + L1) with a tiny KL term on ``images`` (a tensor on the VAE's device)."""
    import torch

    def loss_fn(x, g):
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g).to(x.device)
        rec = vae.decode(z).sample
        kl = post.kl().mean() / z[0].numel()
        return torch.nn.functional.mse_loss(rec, x) + 0.5 * (rec - x).abs().mean() + 1e-4 * kl

    return _fit_vae_part(
        vae, list(vae.parameters()), images, stage="vae", stage_id=1, steps=cfg.vae_steps, warmup=50,
        loss_fn=loss_fn, cfg=cfg, work=work, resume=resume, progress=progress, log_every=log_every,
    )  # fmt: skip


def train_decoder(
    vae, images, cfg: BaseConfig, work: Path, resume: bool, progress: Progress | None, log_every: int = 25
):
    """Stage 1b: refine the decoder with the encoder frozen (the latent space, and so stage 2, is unaffected).

    It decodes slightly perturbed posterior means, since that is what the denoiser hands it at sampling time.
    """
    import torch

    def loss_fn(x, g):
        with torch.no_grad():
            mean = vae.encode(x).latent_dist.mean
            z = mean + 0.1 * mean.std() * torch.randn(mean.shape, generator=g).to(x.device)
        rec = vae.decode(z).sample
        return torch.nn.functional.mse_loss(rec, x) + 0.5 * (rec - x).abs().mean()

    params = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    return _fit_vae_part(
        vae, params, images, stage="decoder", stage_id=3, steps=cfg.decoder_steps, warmup=20,
        loss_fn=loss_fn, cfg=cfg, work=work, resume=resume, progress=progress, log_every=log_every,
    )  # fmt: skip


def encode_latents(vae, images: np.ndarray, device: str, batch: int = 256) -> np.ndarray:
    """Posterior means of ``images`` (N×3×32×32 in [-1, 1]), unscaled."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).to(device)
            out.append(vae.encode(x).latent_dist.mean.cpu().numpy())
    return np.concatenate(out)


def tokenize(tokenizer, captions: list[str]) -> np.ndarray:
    """Pad every caption to 77 tokens, as the pipeline does at inference."""
    ids = tokenizer(captions, padding="max_length", max_length=MODEL_MAX_LENGTH, truncation=True).input_ids
    return np.asarray(ids, dtype=np.int64)


class _EMA:
    """Exponential moving average of parameters (the shipped weights are the averaged ones)."""

    def __init__(self, modules: list, decay: float) -> None:
        self.decay = decay
        self.shadow = [[p.detach().clone() for p in m.parameters()] for m in modules]

    def update(self, modules: list, step: int) -> None:
        import torch

        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for shadow, m in zip(self.shadow, modules, strict=True):
                # one fused call per module, not two kernels per parameter: on a GPU this loop is launch-bound
                torch._foreach_lerp_(shadow, [p.detach() for p in m.parameters()], 1 - d)

    def copy_to(self, modules: list) -> None:
        import torch

        with torch.no_grad():
            for shadow, m in zip(self.shadow, modules, strict=True):
                torch._foreach_copy_([p for p in m.parameters()], shadow)


def _seed(seed: int, stage: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, stage, step]).generate_state(1)[0])


def _fit_steps(total: int, step: int, per_step: float, left_s: float) -> int:
    """The step count that ends within ``left_s`` seconds at ``per_step`` seconds a step (never above ``total``)."""
    return max(step, min(total, step + int(0.97 * left_s / max(per_step, 1e-9))))


def train_denoiser(
    text_encoder,
    unet,
    latents: np.ndarray,
    ids: np.ndarray,
    empty_ids: np.ndarray,
    cfg: BaseConfig,
    work: Path,
    resume: bool,
    progress: Progress | None,
    device: str,
    stop_after: int | None = None,
    time_budget_s: float | None = None,
    log_every: int = 25,
) -> tuple[int, dict]:
    """Stage 2: text encoder + UNet jointly on v-prediction; EMA weights are copied in at the end.

    Returns the planned step count and the run's provenance (``time_budget_s`` applied, ``devices`` used, as
    saved in the checkpoint). ``stop_after`` ends early (pilots, time-boxed runs), leaving a checkpoint.
    ``time_budget_s`` fits the run to a wall-clock budget, once: the step time is measured during warmup and, when
    the warmup ends, the planned count is lowered to what fits the budget counted from this call's start, so the
    cosine decay still runs to its end (a run cut off mid-schedule would ship undecayed weights). The fitted count
    is saved in the checkpoint and kept on resume.
    """
    import torch

    sched = make_scheduler()
    acp = sched.alphas_cumprod.to(torch.float32).to(device)
    modules = [text_encoder, unet]
    for m in modules:
        m.to(device).train()
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=1e-4, fused=device == "cuda")
    ema = _EMA(modules, cfg.ema_decay)
    ckpt = work / "denoiser.pt"
    start, total = 0, cfg.unet_steps
    state = _load_ckpt(ckpt) if resume else None
    if state is not None:
        text_encoder.load_state_dict(state["text_encoder"])
        unet.load_state_dict(state["unet"])
        opt.load_state_dict(state["opt"])
        ema.shadow = [[s.to(device) for s in shadow] for shadow in state["ema"]]
        start = state["step"]
        total = state.get("total", total)
    fitted = state.get("budget_s") if state is not None else None  # a budget an earlier call already applied
    devices = list(state.get("devices", [])) if state is not None else []
    devices += [] if device in devices else [device]
    budget = None
    if time_budget_s is not None and fitted is None:
        if start >= max(cfg.warmup, 1):
            raise ValueError(
                f"--time-budget fits the step count when warmup ends (step {cfg.warmup}), but the checkpoint in "
                f"{work} is at step {start} and was not fitted: drop --time-budget, or pass --no-resume"
            )
        budget = time_budget_s
    fit_at = max(cfg.warmup, start + 2)  # the fit needs two timed points: a probe step and fit_at
    probe = start + max(1, min(50, (fit_at - start) // 4))  # past cuDNN autotuning and allocator growth
    # the whole data set lives on the device: no host copies or caption tokenising inside the loop
    lat = torch.from_numpy(latents).to(device)
    tok = torch.from_numpy(ids).to(device)
    empty = torch.from_numpy(empty_ids).to(device)
    g = torch.Generator(device=device)
    t_start, t_probe = time.perf_counter(), (0.0, 0)
    step = start
    while step < (total if stop_after is None else min(total, stop_after)):
        g.manual_seed(_seed(cfg.seed, 2, step))  # each step's draws depend on (seed, step) only: resume is exact
        idx = torch.randint(0, len(lat), (cfg.unet_batch,), generator=g, device=device)
        drop = torch.rand(cfg.unet_batch, generator=g, device=device) < cfg.cfg_dropout
        t = torch.randint(0, 1000, (cfg.unet_batch,), generator=g, device=device)
        x0 = lat[idx]
        noise = torch.randn(x0.shape, generator=g, device=device)
        batch_ids = torch.where(drop[:, None], empty[None, :], tok[idx])  # no boolean indexing: it syncs the host
        a = acp[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - acp[t]).sqrt().view(-1, 1, 1, 1)
        xt = a * x0 + s * noise
        target = a * noise - s * x0  # v
        for group in opt.param_groups:
            group["lr"] = _lr(step, total, cfg.unet_lr, cfg.warmup)
        hidden = text_encoder(batch_ids)[0]
        pred = unet(xt, t, encoder_hidden_states=hidden).sample
        loss = torch.nn.functional.mse_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(modules, step)
        step += 1
        if budget is not None and step in (probe, fit_at):
            float(loss.detach())  # wait for the device so the clock measures finished steps
            if step == probe:
                t_probe = (time.perf_counter(), step)
            else:
                per_step = (time.perf_counter() - t_probe[0]) / (step - t_probe[1])
                total = _fit_steps(total, step, per_step, budget - (time.perf_counter() - t_start))
                fitted, budget = budget, None
                if total == step:
                    warnings.warn(
                        f"the time budget ({fitted:g} s) ran out during warmup: stage 2 stops at step {step}, at its "
                        f"peak learning rate (no decay); give it more time",
                        stacklevel=2,
                    )
        _report(progress, "unet", step, total, loss, log_every)
        if step % cfg.checkpoint_every == 0 or step == total or step == stop_after:
            _save_ckpt(
                ckpt,
                {
                    "text_encoder": text_encoder.state_dict(),
                    "unet": unet.state_dict(),
                    "opt": opt.state_dict(),
                    "ema": ema.shadow,
                    "step": step,
                    "total": total,
                    "budget_s": fitted,
                    "devices": devices,
                },
            )
    ema.copy_to(modules)
    for m in modules:
        m.eval().requires_grad_(False)
    return total, {"time_budget_s": fitted, "devices": devices}


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
    pipe.save_pretrained(tmp, safe_serialization=True)
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


# --- the whole run --------------------------------------------------------------------------------------------


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but torch sees no CUDA device; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


def train_base(
    out: str | Path = WEIGHTS_DIR,
    cfg: BaseConfig | None = None,
    work: str | Path | None = None,
    resume: bool = True,
    device: str = "auto",
    progress: Progress | None = None,
    fixture: str | Path | None = None,
    stop_after: int | None = None,
    time_budget_s: float | None = None,
    log_every: int = 25,
) -> Path:
    """Train the base model end to end and save it to ``out`` (a diffusers pipeline folder).

    ``work`` holds checkpoints (default: ``./.ticraft-cache/toyworld-base``); with ``resume`` a rerun continues from
    them (same config required). ``fixture``
    (optional) receives the hidden words' true rows. ``stop_after`` stops stage 2 at that step (a pilot): the
    pipeline is still saved, from the EMA weights so far. ``time_budget_s`` fits stage 2 to that many seconds
    (see :func:`train_denoiser`); the step count it ran is recorded in ``ticraft_toyworld.json`` so that
    ``unet_steps=<that count>`` repeats the recipe without a budget.

    Example::

        train_base("my-toy", BaseConfig.preset("gpu"), device="cuda", time_budget_s=300)
    """
    import torch

    from ticraft.toyworld.vocab import load_tokenizer, write_tokenizer

    cfg = cfg or BaseConfig()
    device = resolve_device(device)
    if time_budget_s is not None and math.isinf(time_budget_s):
        time_budget_s = None  # "inf": run every planned step
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if device == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    else:  # TF32 matmuls and convolutions: ~free speed, and this model trains in fp32 anyway
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        out = Path(out)
        # checkpoints default to the git-ignored cache folder of the current directory, never inside the package
        work = Path(work) if work is not None else Path.cwd() / ".ticraft-cache" / "toyworld-base"
        work.mkdir(parents=True, exist_ok=True)
        cfg_file = work / "config.json"
        if resume and cfg_file.is_file() and cfg_file.read_text() != cfg.to_json():
            raise ValueError(f"{work} holds checkpoints of a different config; pass --no-resume or another work folder")
        cfg_file.write_text(cfg.to_json())

        tok_dir = work / "tokenizer"
        write_tokenizer(tok_dir)
        tokenizer = load_tokenizer(tok_dir, with_hidden=True)
        hidden_ids = tokenizer.convert_tokens_to_ids(list(HIDDEN_WORDS))

        t0 = time.time()
        data = build_dataset(cfg.n_images, cfg.seed, cfg.hidden_share)
        ids = tokenize(tokenizer, [e.caption for e in data.examples])
        empty_ids = tokenize(tokenizer, [""])[0]
        if progress:
            progress("data", len(data.examples), cfg.n_images, time.time() - t0)

        text_encoder, unet, vae = make_models(cfg, len(tokenizer), tokenizer)
        vae.to(device)
        images = torch.from_numpy(data.images).to(device)  # once, for both VAE stages
        vae = train_vae(vae, images, cfg, work, resume, progress, log_every)
        lat_file = work / "latents.npy"
        if resume and lat_file.is_file():
            latents = np.load(lat_file)
        else:
            latents = encode_latents(vae, data.images, device, batch=256 if device == "cpu" else 4096)
            np.save(lat_file, latents)
        scale = float(1.0 / latents.std())
        vae.register_to_config(scaling_factor=scale)
        latents = (latents * scale).astype(np.float32)
        vae = train_decoder(vae, images, cfg, work, resume, progress, log_every)
        del data, images  # the renders are no longer needed (1.2 GB at the gpu preset)

        planned, provenance = train_denoiser(
            text_encoder, unet, latents, ids, empty_ids, cfg, work, resume, progress, device, stop_after,
            time_budget_s, log_every,
        )  # fmt: skip
        done = planned if stop_after is None else min(planned, stop_after)

        text_encoder.to("cpu")
        unet.to("cpu")
        vae.to("cpu")
        true_rows = hide_words(text_encoder, hidden_ids)
        save_pipeline(out, tok_dir, text_encoder, unet, vae)
        if fixture is not None:
            save_hidden_fixture(Path(fixture), true_rows, hidden_ids)
        (out / "ticraft_toyworld.json").write_text(
            json.dumps(
                {
                    "config": {**asdict(cfg), "unet_steps": planned},
                    "unet_steps_requested": cfg.unet_steps,
                    "time_budget_s": provenance["time_budget_s"],
                    "device": "+".join(provenance["devices"]),  # "cuda", or e.g. "cpu+cuda" for a resumed run
                    "unet_steps_done": done,
                    "hidden_words": list(HIDDEN_WORDS),
                    "hidden_ids": hidden_ids,
                },
                indent=2,
            )
        )
        return out
    finally:  # later fp32 work in this process (sampling, tests) gets full precision back
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
