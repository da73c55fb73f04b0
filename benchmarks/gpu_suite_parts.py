"""Measurements of the trainer GPU suite (``gpu_suite.py``): one function per kind of row.

Peaks are ``torch.cuda.max_memory_allocated`` (weights + cached latents + activations), taken apart: the
latent cache (building the trainer: VAE encoding) and training (warm-up and timed steps). On a CPU they
are ``None``; the rows still run, which is what ``--quick`` checks.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ticraft.training.config import TrainConfig
from ticraft.training.data import encode_latents, load_images, make_variants, native_resolution
from ticraft.training.loop import Trainer
from ticraft.training.many import ConceptGroup

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024 ** 3
_TOKENS = iter(range(10**6))


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None


def config(device: torch.device, **options: Any) -> TrainConfig:
    opts: dict[str, Any] = dict(steps=10**6, lr=5e-3, lr_schedule="constant", warmup_steps=0, log_every=50, previews=0,
                                device=str(device))
    opts.update(options)
    return TrainConfig.from_options(**opts)


def timed_steps(step: Callable[[], None], read: Callable[[], Any], device: torch.device, steps: int,
                warmup: int, log_every: int) -> tuple[float, float | None]:
    """Seconds of ``steps`` steps after ``warmup`` ones (the loss read every ``log_every``), and the last loss."""
    for _ in range(warmup):
        step()
    read()
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step()
        if (i + 1) % log_every == 0:
            read()
    loss = read()
    _sync(device)
    return time.perf_counter() - start, loss


def measure(bb: Any, images: list[Any], *, steps: int, warmup: int, **options: Any) -> dict[str, Any]:
    """samples/s, latent-cache peak and training peak of one trainer with ``options`` (TrainConfig fields)."""
    device = bb.device
    cfg = config(device, **options)
    _reset(device)
    start = time.perf_counter()
    trainer = Trainer(bb, load_images(images), f"<bench{next(_TOKENS)}>", "toy", cfg)
    build_s = time.perf_counter() - start
    cache_peak = _peak(device)
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds, loss = timed_steps(trainer.train_step, trainer.read_loss, device, steps, warmup, cfg.log_every)
        samples = steps * cfg.samples_per_step
        train_peak = _peak(device)
        both = [p for p in (cache_peak, train_peak) if p is not None]
        return {"samples_s": samples / seconds, "step_s": seconds / steps, "cache_peak_gib": cache_peak,
                "train_peak_gib": train_peak, "peak_gib": max(both) if both else None,
                "build_s": build_s, "loss": loss, "finite": loss is not None and math.isfinite(loss)}
    finally:
        trainer.close()
        _reset(device)


def check_correctness(bb: Any, images: list[Any], *, batch: int, steps: int = 3, mp: str = "auto") -> dict[str, Any]:
    """A few real steps: every vector moves, every token table stays bitwise equal, the loss is finite."""
    tables = {e.key: e.table.detach().clone() for e in bb.encoders}
    cfg = config(bb.device, steps=steps, batch_size=batch, lr=1e-2, log_every=1, mixed_precision=mp)
    tr = Trainer(bb, load_images(images), "<check>", "toy", cfg)
    try:
        losses = []
        for _ in range(steps):
            tr.train_step()
            losses.append(tr.read_loss())
        now = tr.current_vectors()
        moved = {k: float((now[k].float().cpu() - tr.init_vectors[k]).norm()) for k in now}
        grads = [e.key for e in bb.encoders if e.table.grad is not None]
    finally:
        tr.close()
    unchanged = all(torch.equal(e.table, tables[e.key]) for e in bb.encoders)
    finite = all(x is not None and math.isfinite(x) for x in losses)
    ok = unchanged and all(v > 0 for v in moved.values()) and finite and not grads
    return {"ok": ok, "tables_bitwise_unchanged": unchanged, "vector_moved": moved, "losses": losses,
            "table_grads": grads}


def model_flops(bb: Any, images: list[Any], batch: int) -> float | None:
    """Model FLOPs per sample of one step (forward + input-only backward), counted once."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        cfg = config(bb.device, batch_size=batch, mixed_precision="bf16")
        tr = Trainer(bb, load_images(images), "<flops>", "toy", cfg)
        try:
            with FlopCounterMode(display=False) as counter:
                tr.train_step()
            return counter.get_total_flops() / batch
        finally:
            tr.close()
    except Exception:
        import traceback

        traceback.print_exc()
        return None


def cache_peak(bb: Any, images: list[Any], chunk: int | None) -> dict[str, Any]:
    """Peak of encoding 4 images × flip with the VAE ``chunk`` images at a time (None: the trainer's default)."""
    device = bb.device
    size = native_resolution(bb.unet, bb.vae)
    variants = make_variants(load_images(images), size, flip=True)
    _reset(device)
    start = time.perf_counter()
    cache = encode_latents(bb.vae, variants, device=device, chunk=chunk)
    _sync(device)
    out = {"peak_gib": _peak(device), "seconds": time.perf_counter() - start, "latents": list(cache.mean.shape)}
    del cache
    _reset(device)
    return out


def measure_many(bb: Any, concepts: int, batch: int, *, steps: int, warmup: int, max_batch: int = 64) -> dict[str, Any]:
    """samples/s of ``concepts`` concepts (4 pictures each) trained together in one ConceptGroup."""
    from train_throughput import make_images

    device = bb.device
    cfg = config(device, batch_size=batch, mixed_precision="bf16" if device.type == "cuda" else "no")
    size = native_resolution(bb.unet, bb.vae)
    _reset(device)
    start = time.perf_counter()
    trainers = [Trainer(bb, load_images(make_images(4, size, seed=c)), f"<many{next(_TOKENS)}>", "toy", cfg)
                for c in range(concepts)]
    build_s = time.perf_counter() - start
    cache = _peak(device)
    group = ConceptGroup(trainers, max_batch=max_batch)
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def read() -> None:
            for tr in trainers:
                tr.read_loss()

        def step() -> None:
            group.train_step()

        seconds, _ = timed_steps(step, read, device, steps, warmup, cfg.log_every)
        return {"samples_s": steps * concepts * batch / seconds, "step_s": seconds / steps, "cache_peak_gib": cache,
                "train_peak_gib": _peak(device), "build_s": build_s,
                "passes_per_step": len(group.passes(trainers))}
    finally:
        group.close()
        _reset(device)


def compiled_rows(bb: Any, images: list[Any], mode: str, backend: str, batches: tuple[int, ...], *, steps: int,
                  budget_left: Callable[[], float]) -> list[dict[str, Any]]:
    """One trainer compiled with ``mode``, measured at each batch size (the first steps at a size compile)."""
    device = bb.device
    rows: list[dict[str, Any]] = []
    name = f"torch.compile {mode} ({backend})"
    if budget_left() < 90:
        return [{"name": name, "batch": b, "status": f"skipped (time budget: {budget_left():.0f} s left)"}
                for b in batches]
    cfg = config(device, batch_size=batches[0], mixed_precision="bf16", compile=mode, compile_backend=backend)
    _reset(device)
    trainer = Trainer(bb, load_images(images), f"<compiled{next(_TOKENS)}>", "toy", cfg)
    try:
        for b in batches:
            if budget_left() < 45:
                rows.append({"name": name, "batch": b, "status": f"skipped (time budget: {budget_left():.0f} s left)"})
                continue
            try:
                trainer.cfg = dataclasses.replace(cfg, batch_size=b)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                start = time.perf_counter()
                trainer.train_step()  # compiles (or re-specialises) for this batch size
                _sync(device)
                compile_s = time.perf_counter() - start
                seconds, loss = timed_steps(trainer.train_step, trainer.read_loss, device, steps, 2, cfg.log_every)
                rows.append({"name": name, "batch": b, "samples_s": steps * b / seconds, "step_s": seconds / steps,
                             "train_peak_gib": _peak(device), "first_step_s": compile_s, "loss": loss, "status": "ok"})
            except torch.OutOfMemoryError:
                rows.append({"name": name, "batch": b, "status": "OOM"})
            except Exception as exc:
                import traceback

                traceback.print_exc()
                text = str(exc).splitlines()[0][:100] if str(exc) else ""
                rows.append({"name": name, "batch": b, "status": f"error: {type(exc).__name__}: {text}"})
            r = rows[-1]
            print(f"  {name:40s} b{b:<3d} {fmt(r.get('samples_s'))} samples/s  {r['status']}", flush=True)
    finally:
        trainer.close()
        _reset(device)
    return rows


def old_levers(batch: int) -> list[tuple[str, int, dict[str, Any]]]:
    """Issue 8's lever rows that the 2026-11-26 H100 run measured (TrainConfig options only)."""
    return [("  channels-last", batch, {"channels_last": True}), ("  unfused Adam", batch, {"fused_optimizer": False}),
            ("  loss read every step (sync)", batch, {"log_every": 1}),
            ("  no text-encoder sharing", batch, {"dedup_text": False})]


def user_train(arch: str, device: torch.device, *, quick: bool) -> dict[str, Any]:
    """The default preset's `ticraft train` in a fresh process on a saved model folder, timed end to end."""
    from train_throughput import make_images

    work = Path(tempfile.mkdtemp(prefix="ticraft-user-"))
    folder = save_model_folder(arch, work, device)
    pictures = work / "pictures"
    pictures.mkdir()
    size = 16 if quick else 512
    for i, im in enumerate(make_images(4, size, seed=7)):
        im.save(pictures / f"{i}.png")
    cmd = [sys.executable, "-m", "ticraft.cli.main", "train", str(pictures), "--token", "<user-check>", "--init", "toy",
           "--model", str(folder), "--no-library", "--out", str(work / "run")]
    if quick:  # the same command, cut short on a CPU
        cmd += ["--steps", "4", "--previews", "1", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"ticraft train failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    saved = sorted(p.name for p in (work / "run").glob("*.safetensors"))
    return {"wall_s": wall, "command": " ".join(cmd[1:]), "saved": saved, "status": "ok" if saved else "no embedding"}


def save_model_folder(arch: str, work: Path, device: torch.device) -> Path:
    """A random-weight diffusers folder of ``arch`` (bf16 on a GPU), as a user's downloaded model would be."""
    folder = work / f"model-{arch}"
    if arch == "tiny":
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_models import tiny_sd_pipeline

        tiny_sd_pipeline(work).save_pretrained(folder)
        return folder
    import diffusers
    from train_throughput import CONFIGS, _json, _tokenizer
    from transformers import CLIPTextConfig, CLIPTextModel

    root = CONFIGS / "sd1"
    with torch.device(device):
        unet = diffusers.UNet2DConditionModel.from_config(_json(root / "unet" / "config.json"))
        vae = diffusers.AutoencoderKL.from_config(_json(root / "vae" / "config.json"))
        te = CLIPTextModel(CLIPTextConfig(**_json(root / "text_encoder" / "config.json")))
    sched = diffusers.PNDMScheduler.from_config(_json(root / "scheduler" / "scheduler_config.json"))
    pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=_tokenizer(work / "tok"), unet=unet,
                                             scheduler=sched, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    pipe.to(torch.bfloat16).save_pretrained(folder)
    del pipe, unet, vae, te
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return folder
