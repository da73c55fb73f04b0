"""Training throughput: ticraft's inversion loop against a diffusers-example-style reference loop.

Same model, same images, same process. The reference is what `diffusers/examples/textual_inversion`
does per step: VAE-encode the batch, run the text encoder whose *whole* token table is trainable,
backpropagate into it, AdamW over all 49k rows, then copy every untouched row back from a saved
copy, and read the loss (a host sync) every step. ticraft encodes the images once, trains a spliced
``[N, D]`` tensor only, batches many (image, t, ε) samples per step and reads the loss every K steps.

Models are built offline with random weights from the shipped configs (``ticraft/models/configs``):

* ``sd15``  — the exact SD-1.5 architecture (ticraft/models/configs/sd1), 512 px;
* ``sdxl``  — the SDXL architecture (two text encoders, 2.6B-parameter UNet), 1024 px;
* ``small`` — an SD-shaped model small enough for a CPU (CLIP table of 49408 rows, 128 px);
* ``tiny``  — the test suite's tiny model (16 px).

Usage::

    python benchmarks/train_throughput.py                          # CPU: arch small, ratios only
    python benchmarks/train_throughput.py --arch sd15 --batch 32   # GPU: absolute numbers at 512 px

On a GPU machine without diffusers, carry its wheel (and platformdirs) — see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models: offline tokenizer/model builders

from ticraft.models.backbone import Backbone, components_from_pipeline  # noqa: E402
from ticraft.training.config import TrainConfig  # noqa: E402
from ticraft.training.data import load_images  # noqa: E402
from ticraft.training.loop import Trainer  # noqa: E402

CONFIGS = ROOT / "ticraft" / "models" / "configs"
GIB = 1024 ** 3


# ---------------------------------------------------------------------------- models
def _tokenizer(folder: Path) -> Any:
    """CLIP's real BPE vocabulary when open-clip is installed, else the tests' tiny offline one.

    The text encoder keeps its 49408-row table either way, so the compute is the same: prompts are
    padded to 77 tokens and the table size is set by the encoder config, not the tokenizer."""
    from transformers import CLIPTokenizer

    try:
        from ticraft.models.single_file import clip_tokenizer_files

        bpe = clip_tokenizer_files()
        return CLIPTokenizer(str(bpe / "vocab.json"), str(bpe / "merges.txt"), model_max_length=77)
    except Exception:  # no open-clip vocabulary on this machine
        from tiny_models import tiny_tokenizer

        return tiny_tokenizer(folder)


def _json(path: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def build_backbone(arch: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                   seed: int = 0, workdir: Path | None = None) -> Backbone:
    """A random-weight model of ``arch`` built directly on ``device`` (nothing is downloaded)."""
    import tempfile

    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    workdir = workdir or Path(tempfile.mkdtemp(prefix="ticraft-bench-"))
    torch.manual_seed(seed)
    if arch == "tiny":
        from tiny_models import tiny_sd_pipeline

        return components_from_pipeline(tiny_sd_pipeline(workdir, seed), name="tiny").to(device=device, dtype=dtype)
    if arch == "tiny-sdxl":
        from tiny_models import tiny_sdxl_pipeline

        return components_from_pipeline(tiny_sdxl_pipeline(workdir, seed), name="tiny-sdxl").to(device=device, dtype=dtype)
    with torch.device(device):
        if arch == "sd15":
            root = CONFIGS / "sd1"
            unet = diffusers.UNet2DConditionModel.from_config(_json(root / "unet" / "config.json"))
            vae = diffusers.AutoencoderKL.from_config(_json(root / "vae" / "config.json"))
            te = CLIPTextModel(CLIPTextConfig(**_json(root / "text_encoder" / "config.json")))
            sched = diffusers.PNDMScheduler.from_config(_json(root / "scheduler" / "scheduler_config.json"))
            pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=_tokenizer(workdir / "tok"),
                                                     unet=unet, scheduler=sched, safety_checker=None,
                                                     feature_extractor=None, requires_safety_checker=False)
            family = "sd1"
        elif arch == "sdxl":
            root = CONFIGS / "sdxl"
            unet = diffusers.UNet2DConditionModel.from_config(_json(root / "unet" / "config.json"))
            vae = diffusers.AutoencoderKL.from_config(_json(root / "vae" / "config.json"))
            te = CLIPTextModel(CLIPTextConfig(**_json(root / "text_encoder" / "config.json")))
            te2 = CLIPTextModelWithProjection(CLIPTextConfig(**_json(root / "text_encoder_2" / "config.json")))
            sched = diffusers.EulerDiscreteScheduler.from_config(_json(root / "scheduler" / "scheduler_config.json"))
            pipe = diffusers.StableDiffusionXLPipeline(vae=vae, text_encoder=te, text_encoder_2=te2,
                                                       tokenizer=_tokenizer(workdir / "tok"),
                                                       tokenizer_2=_tokenizer(workdir / "tok2"), unet=unet, scheduler=sched)
            family = "sdxl"
        elif arch == "small":
            unet = diffusers.UNet2DConditionModel(
                sample_size=16, block_out_channels=(32, 64, 64), layers_per_block=1, cross_attention_dim=256,
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8,
                norm_num_groups=16)
            vae = diffusers.AutoencoderKL(block_out_channels=(16, 32, 64, 64), layers_per_block=1, norm_num_groups=16,
                                          down_block_types=("DownEncoderBlock2D",) * 4,
                                          up_block_types=("UpDecoderBlock2D",) * 4, sample_size=128)
            te = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=256, intermediate_size=1024,
                                              num_hidden_layers=4, num_attention_heads=4, max_position_embeddings=77,
                                              hidden_act="quick_gelu", bos_token_id=49406, eos_token_id=49407))
            sched = diffusers.PNDMScheduler.from_config(_json(CONFIGS / "sd1" / "scheduler" / "scheduler_config.json"))
            pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=_tokenizer(workdir / "tok"),
                                                     unet=unet, scheduler=sched, safety_checker=None,
                                                     feature_extractor=None, requires_safety_checker=False)
            family = "custom"
        else:
            raise SystemExit(f"unknown arch {arch!r}: sd15, sdxl, small, tiny, tiny-sdxl")
    bb = components_from_pipeline(pipe, family=family, name=arch)
    return bb.to(dtype=dtype)


def native_size(bb: Backbone) -> int:
    from ticraft.training.data import native_resolution

    return native_resolution(bb.unet, bb.vae)


def make_images(n: int, size: int, seed: int = 0) -> list[Any]:
    """Smooth random pictures (upsampled noise), so crops and flips differ."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        small = (torch.rand(3, 8, 8, generator=g) * 255).to(torch.uint8)
        img = Image.fromarray(small.permute(1, 2, 0).numpy()).resize((size, size), Image.Resampling.BICUBIC)
        out.append(img)
    return out


# ---------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / GIB
    return None


def rss_gib() -> float:
    """This process's resident-memory high-water mark (CPU runs: a coarse, monotonic figure)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


_TOKENS = iter(range(10**6))


def measure_ticraft(bb: Backbone, images: list[Any], *, steps: int = 10, warmup: int = 3, count_flops: bool = True,
                    **options: Any) -> dict[str, Any]:
    """samples/s, peak memory and FLOPs/sample of ticraft's loop with ``options`` (TrainConfig fields)."""
    device = bb.device
    opts = dict(steps=10**6, lr=5e-3, lr_schedule="constant", warmup_steps=0, log_every=50, previews=0,
                device=str(device))
    opts.update(options)
    cfg = TrainConfig.from_options(**opts)
    token = f"<bench{next(_TOKENS)}>"
    _reset_memory(device)
    trainer = Trainer(bb, load_images(images), token, "toy", cfg)
    try:
        flops = None
        if count_flops and cfg.compile == "none":
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                trainer.train_step()
            flops = counter.get_total_flops() / cfg.samples_per_step
        for _ in range(warmup):
            trainer.train_step()
        trainer.read_loss()
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(steps):
            trainer.train_step()
            if (i + 1) % cfg.log_every == 0:
                trainer.read_loss()
        loss = trainer.read_loss()
        _sync(device)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        samples = steps * cfg.samples_per_step
        return {"samples_s": samples / seconds, "samples_cpu_s": samples / cpu, "step_s": seconds / steps,
                "peak_gib": _peak_gib(device), "flops_per_sample": flops, "loss": loss, "batch": cfg.batch_size,
                "finite": loss is not None and math.isfinite(loss)}
    finally:
        trainer.close()
        del trainer
        _reset_memory(device)


def measure_reference(bb: Backbone, images: list[Any], *, steps: int = 10, warmup: int = 3, batch: int = 1,
                      mixed_precision: str = "auto", count_flops: bool = True) -> dict[str, Any]:
    """The diffusers textual_inversion example's step, on a private copy of the text encoder.

    Per step: VAE encode (posterior sample) of the batch in the weight dtype; noise; text encoder in
    fp32 with the full table trainable; UNet under autocast; MSE; backward; AdamW over the whole
    table; restore every row but the placeholder's; ``loss.item()``.
    """
    import numpy as np
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    device = bb.device
    if len(bb.encoders) != 1:
        raise ValueError("the reference loop is the single-encoder (SD-1/2) example")
    enc = bb.encoders[0]
    _reset_memory(device)
    tokenizer = copy.deepcopy(enc.tokenizer)
    te = copy.deepcopy(enc.model).float()
    spliced = te.get_input_embeddings()
    te.set_input_embeddings(getattr(spliced, "base", spliced))  # the plain nn.Embedding, as in diffusers
    placeholder = f"<ref{next(_TOKENS)}>"
    tokenizer.add_tokens([placeholder])
    pid = tokenizer.convert_tokens_to_ids(placeholder)
    if len(tokenizer) > te.get_input_embeddings().num_embeddings:
        te.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    table = te.get_input_embeddings().weight
    init_id = tokenizer("toy", add_special_tokens=False).input_ids[0]
    with torch.no_grad():
        table[pid] = table[init_id].clone()
    te.requires_grad_(False)
    table.requires_grad_(True)
    te.train()
    optimizer = torch.optim.AdamW([table], lr=5e-4 * 4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    orig = table.detach().clone()
    keep = torch.ones(table.shape[0], dtype=torch.bool, device=table.device)
    keep[pid] = False
    noise_scheduler = DDPMScheduler.from_config(bb.scheduler.config)
    cuda = device.type == "cuda"
    if mixed_precision == "auto":
        mixed_precision = "bf16" if cuda else "no"
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
    weight_dtype = bb.dtype
    size = native_size(bb)
    pixels = torch.stack([torch.from_numpy(np.asarray(im.convert("RGB").resize((size, size)), dtype=np.float32) / 127.5 - 1)
                          .permute(2, 0, 1) for im in images]).to(device)
    ids = tokenizer([f"a photo of a {placeholder}"] * batch, padding="max_length", max_length=77, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    g = torch.Generator().manual_seed(0)

    def step() -> float:
        pick = torch.randint(len(images), (batch,), generator=g)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            latents = bb.vae.encode(pixels[pick.to(device)].to(weight_dtype)).latent_dist.sample().detach()
            latents = latents * bb.vae.config.scaling_factor
            noise = torch.randn_like(latents)
            t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,), device=device).long()
            noisy = noise_scheduler.add_noise(latents, noise, t)
            hidden = te(ids)[0].to(dtype=weight_dtype)
            pred = bb.unet(noisy, t, hidden).sample
            target = noise if noise_scheduler.config.prediction_type == "epsilon" else noise_scheduler.get_velocity(latents, noise, t)
            loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            table[keep] = orig[keep]
        return loss.detach().item()  # the example logs the loss every step

    try:
        flops = None
        if count_flops:
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                step()
            flops = counter.get_total_flops() / batch
        for _ in range(warmup):
            step()
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            loss = step()
        _sync(device)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        untouched = bool(torch.equal(table.detach()[keep], orig[keep]))
        return {"samples_s": steps * batch / seconds, "samples_cpu_s": steps * batch / cpu,
                "step_s": seconds / steps, "peak_gib": _peak_gib(device),
                "flops_per_sample": flops, "loss": loss, "batch": batch, "finite": math.isfinite(loss),
                "untouched_rows_restored": untouched}
    finally:
        del optimizer, te, orig, table
        _reset_memory(device)


def quiet() -> None:
    """Silence library chatter (dtype-cast notes, progress bars) so the table stays readable."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default=None, help="sd15 | sdxl | small | tiny (default: sd15 on CUDA, small on CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="ticraft batch sizes (default: 1 8 32 GPU, 1 8 CPU)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="rounds (alternating the loops); rows report the median")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1 is steadiest on a shared machine)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    quiet()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cuda = device.type == "cuda"
    if not cuda:
        torch.set_num_threads(args.threads)
    arch = args.arch or ("sd15" if cuda else "small")
    batches = args.batch or ([1, 8, 32] if cuda else [1, 8])
    steps = args.steps or (20 if cuda else 6)
    dtype = torch.bfloat16 if cuda else torch.float32
    bb = build_backbone(arch, device, dtype)
    size = native_size(bb)
    images = make_images(args.images, size)
    card = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"# training throughput — arch {arch}, {size} px, {card}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    # Rounds alternate the loops, and each row reports its median, so that a shared machine's load
    # drifting during the run hits every loop alike.
    runs: dict[str, list[dict[str, Any]]] = {}
    for round_ in range(args.repeat):
        runs.setdefault("reference (diffusers example), batch 1", []).append(
            measure_reference(bb, images, steps=steps, warmup=args.warmup, batch=1, count_flops=round_ == 0))
        for b in batches:
            runs.setdefault(f"ticraft, batch {b}", []).append(
                measure_ticraft(bb, images, steps=steps, warmup=args.warmup, batch_size=b, count_flops=round_ == 0))
    rows = []
    for name, results in runs.items():
        row = {**results[0], "name": name}
        for key in ("samples_s", "samples_cpu_s"):  # medians over the rounds
            values = sorted(r[key] for r in results)
            row[key], row[key + "_all"] = values[len(values) // 2], values
        rows.append(row)
    ref = rows[0]
    # On a CPU, samples per CPU-second (process time, one thread) is the figure that a shared machine's
    # load does not distort; wall-clock samples/s is printed beside it.
    print(f"{'loop':40s} {'samples/s':>10s} {'× ref':>6s} {'samples/CPU-s':>14s} {'× ref':>6s} {'peak GiB':>9s} "
          f"{'GFLOP/sample':>13s}")
    for r in rows:
        gf = None if r["flops_per_sample"] is None else r["flops_per_sample"] / 1e9
        print(f"{r['name']:40s} {r['samples_s']:10.2f} {r['samples_s'] / ref['samples_s']:6.1f} "
              f"{r['samples_cpu_s']:14.2f} {r['samples_cpu_s'] / ref['samples_cpu_s']:6.1f} {fmt(r['peak_gib']):>9s} "
              f"{fmt(gf, '.1f'):>13s}")
    result = {"arch": arch, "resolution": size, "device": card, "torch": torch.__version__, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
