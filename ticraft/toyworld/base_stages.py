"""The toy base model's two training stages: the VAE (encoder, then decoder), then text encoder + UNet."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ticraft.toyworld.base_config import BaseConfig, Progress
from ticraft.toyworld.base_model import make_scheduler
from ticraft.toyworld.vocab import MODEL_MAX_LENGTH

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

    from ticraft.io import atomic_file

    with atomic_file(path) as fh:
        torch.save(payload, fh)


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


