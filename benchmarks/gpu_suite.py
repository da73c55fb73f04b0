"""The trainer's GPU suite (issue 8): correctness, then every performance lever, one table.

One short run measures everything on a random-weight SD-1.5-architecture model at 512 px and an
SDXL-architecture model at 1024 px (built offline from ``ticraft/configs``):

1. correctness — after a few steps the learned vector has moved, the token tables are bitwise
   unchanged and the loss is finite (SD-1.5 and SDXL);
2. the diffusers-example-style reference loop (VAE each step, full-table gradient + AdamW, restore
   untouched rows, loss read each step) at batch 1;
3. ticraft with one lever changed per row: fp32 → bf16 autocast → bf16 weights; batch 1/8/32/64;
   SDPA vs the classic attention processor; channels-last; fused vs unfused Adam; loss read every
   step (host sync) vs every 50; text-encoder sharing off; ``torch.compile`` default and
   reduce-overhead (CUDA graphs); gradient checkpointing (memory);
4. SDXL at 1024 px, batch 1 and 4.

Each row: samples/s, × the reference, peak GiB (``torch.cuda.max_memory_allocated``: weights +
cached latents + activations), achieved TFLOP/s (model FLOPs per sample counted once with
``FlopCounterMode`` × samples/s). Targets on one H100 (issue 8): ≥ 200 samples/s and ≥ 20× the
reference at 512 px; ≤ 4 GiB at batch 1; SDXL ≤ 10 GiB at batch 1.

Usage::

    python benchmarks/gpu_suite.py --json $OUT/gpu_suite.json        # GPU, a few minutes
    python benchmarks/gpu_suite.py --quick                           # CPU, tiny models, same code path
    python benchmarks/gpu_suite.py --quick --compile                 # … and torch.compile (aot_eager backend)

The GPU image has no diffusers: carry its wheel (benchmarks/RESULTS.md has the commands).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import (  # noqa: E402
    build_backbone, fmt, make_images, measure_reference, measure_ticraft, native_size, quiet,
)

from ticraft.training.config import TrainConfig  # noqa: E402
from ticraft.training.data import load_images  # noqa: E402
from ticraft.training.loop import Trainer  # noqa: E402


def check_correctness(bb: Any, images: list[Any], *, batch: int, steps: int = 3, mp: str = "auto") -> dict[str, Any]:
    """A few real steps: the vector moves, the tables stay bitwise equal, the loss is finite."""
    tables = {e.key: e.table.detach().clone() for e in bb.encoders}
    cfg = TrainConfig.from_options(steps=steps, batch_size=batch, lr=1e-2, lr_schedule="constant", warmup_steps=0,
                                   log_every=1, previews=0, mixed_precision=mp, device=str(bb.device))
    tr = Trainer(bb, load_images(images), "<check>", "toy", cfg)
    try:
        losses = []
        for _ in range(steps):
            tr.train_step()
            losses.append(tr.read_loss())
        now = tr.current_vectors()
        moved = {k: float((now[k].float().cpu() - tr.init_vectors[k]).norm()) for k in now}
        grads_on_tables = [e.key for e in bb.encoders if e.table.grad is not None]
    finally:
        tr.close()
    unchanged = all(torch.equal(e.table, tables[e.key]) for e in bb.encoders)
    ok = unchanged and all(v > 0 for v in moved.values()) and all(math.isfinite(x) for x in losses) and not grads_on_tables
    return {"ok": ok, "tables_bitwise_unchanged": unchanged, "vector_moved": moved, "losses": losses,
            "table_grads": grads_on_tables}


class Row:
    """One lever setting: TrainConfig options plus an optional change to the model and its undo."""

    def __init__(self, name: str, batch: int, *, setup: Callable[[Any], None] | None = None,
                 undo: Callable[[Any], None] | None = None, reference: bool = False, **options: Any) -> None:
        self.name, self.batch, self.setup, self.undo, self.reference, self.options = name, batch, setup, undo, reference, options


def classic_attention(bb: Any) -> None:
    from diffusers.models.attention_processor import AttnProcessor

    bb.unet.set_attn_processor(AttnProcessor())


def sdpa_attention(bb: Any) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    bb.unet.set_attn_processor(AttnProcessor2_0())


def contiguous(bb: Any) -> None:
    bb.unet.to(memory_format=torch.contiguous_format)


def no_checkpointing(bb: Any) -> None:
    bb.unet.disable_gradient_checkpointing()


def sd_rows(big: int, mid: int, compile_rows: bool, backend: str = "inductor") -> list[Row]:
    bf = dict(mixed_precision="bf16")
    rows = [
        Row("reference: diffusers example", 1, reference=True),
        Row("ticraft bf16 weights+autocast", 1, **bf),
        Row("  batch", mid, **bf),
        Row("  batch", big, **bf),
        Row("  batch ×2", 2 * big, **bf),
        Row("  classic attention (no SDPA)", big, setup=classic_attention, undo=sdpa_attention, **bf),
        Row("  channels-last", big, channels_last=True, undo=contiguous, **bf),
        Row("  unfused Adam", big, fused_optimizer=False, **bf),
        Row("  loss read every step (sync)", big, log_every=1, **bf),
        Row("  no text-encoder sharing", big, dedup_text=False, **bf),
        Row("  gradient checkpointing", 1, gradient_checkpointing=True, undo=no_checkpointing, **bf),
    ]
    if compile_rows:
        rows += [Row("  torch.compile default", big, compile="default", compile_backend=backend, **bf),
                 Row("  torch.compile reduce-overhead", big, compile="reduce-overhead", compile_backend=backend, **bf)]
    return rows


def run_row(bb: Any, images: list[Any], row: Row, *, steps: int, warmup: int) -> dict[str, Any]:
    if row.setup:
        row.setup(bb)
    try:
        if row.reference:
            out = measure_reference(bb, images, steps=steps, warmup=warmup, batch=row.batch, count_flops=False)
        else:
            out = measure_ticraft(bb, images, steps=steps, warmup=warmup + (2 if "compile" in row.options else 0),
                                  count_flops=False, batch_size=row.batch, **row.options)
        out["status"] = "ok"
    except torch.OutOfMemoryError:
        out = {"status": "OOM"}
    except Exception as exc:  # a lever that breaks must not hide the others
        traceback.print_exc()
        out = {"status": f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"}
    finally:
        if row.undo:
            row.undo(bb)
        if bb.device.type == "cuda":
            torch.cuda.empty_cache()
    return {"name": row.name, "batch": row.batch, **out}


def model_flops(bb: Any, images: list[Any], batch: int) -> float | None:
    """Model FLOPs per sample of ticraft's step (forward + input-only backward), counted once."""
    try:
        r = measure_ticraft(bb, images, steps=1, warmup=0, count_flops=True, batch_size=batch,
                            mixed_precision="bf16")
        return r["flops_per_sample"]
    except Exception:
        traceback.print_exc()
        return None


def print_table(title: str, rows: list[dict[str, Any]], flops: float | None, ref_speed: float | None) -> None:
    print(f"\n## {title}" + (f"  (model FLOPs/sample {flops / 1e12:.3f} TFLOP)" if flops else ""))
    print(f"{'row':36s} {'batch':>5s} {'samples/s':>10s} {'× ref':>7s} {'peak GiB':>9s} {'TFLOP/s':>8s}  status")
    for r in rows:
        s = r.get("samples_s")
        ratio = s / ref_speed if s and ref_speed else None
        tflops = s * flops / 1e12 if s and flops else None
        print(f"{r['name']:36s} {r['batch']:5d} {fmt(s):>10s} {fmt(ratio, '.1f'):>7s} {fmt(r.get('peak_gib')):>9s} "
              f"{fmt(tflops, '.3g'):>8s}  {r['status']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="ticraft trainer GPU suite (issue 8)")
    ap.add_argument("--quick", action="store_true", help="tiny models on CPU (checks that everything runs)")
    ap.add_argument("--compile", action="store_true", help="with --quick: include the torch.compile rows")
    ap.add_argument("--compile-backend", default=None,
                    help="torch.compile backend (default: inductor on GPU, aot_eager with --quick: traces fwd+bwd fast)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (GPU)")
    ap.add_argument("--no-sdxl", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    quiet()
    cuda = torch.cuda.is_available() and not args.quick
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)
    steps = args.steps or (10 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    arch, xl_arch = ("sd15", "sdxl") if cuda else ("tiny", "tiny-sdxl")
    big, mid = (32, 8) if cuda else (4, 2)
    compile_rows = (cuda and not args.no_compile) or (args.quick and args.compile)
    card = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()})"
    print(f"# ticraft trainer suite — {card}, torch {torch.__version__}, python {platform.python_version()}")
    t0 = time.perf_counter()
    report: dict[str, Any] = {"device": card, "torch": torch.__version__, "quick": not cuda}

    # ---- SD-1.5 architecture
    bb = build_backbone(arch, device, torch.float32)
    size = native_size(bb)
    images = make_images(4, size)
    print(f"built {arch}: {size} px in {time.perf_counter() - t0:.0f} s")
    fp32_rows = [run_row(bb, images, Row("ticraft fp32 (no autocast)", 1, mixed_precision="no"), steps=steps, warmup=warmup),
                 run_row(bb, images, Row("ticraft bf16 autocast, fp32 weights", 1, mixed_precision="bf16"),
                         steps=steps, warmup=warmup)]
    bb.to(dtype=torch.bfloat16)
    report["sd_correctness"] = check_correctness(bb, images, batch=2, mp="bf16")
    print("correctness:", json.dumps(report["sd_correctness"]))
    flops = model_flops(bb, images, batch=mid)
    rows = []
    backend = args.compile_backend or ("inductor" if cuda else "aot_eager")
    for row in sd_rows(big, mid, compile_rows, backend):
        rows.append(run_row(bb, images, row, steps=steps, warmup=warmup))
        r = rows[-1]
        print(f"  {r['name']:36s} b{r['batch']:<3d} {fmt(r.get('samples_s'))} samples/s  {r['status']}", flush=True)
    rows = rows[:1] + fp32_rows + rows[1:]
    ref = rows[0].get("samples_s")
    report["sd"] = {"arch": arch, "resolution": size, "flops_per_sample": flops, "rows": rows}
    del bb
    if cuda:
        torch.cuda.empty_cache()

    # ---- SDXL architecture
    xl_rows: list[dict[str, Any]] = []
    xl_flops = None
    if not args.no_sdxl:
        xl = build_backbone(xl_arch, device, torch.bfloat16)
        xl_size = native_size(xl)
        xl_images = make_images(2, xl_size)
        report["sdxl_correctness"] = check_correctness(xl, xl_images, batch=1, mp="bf16")
        print("sdxl correctness:", json.dumps(report["sdxl_correctness"]))
        xl_flops = model_flops(xl, xl_images, batch=1)
        for row in [Row("ticraft SDXL bf16", 1, mixed_precision="bf16"), Row("  batch", 4, mixed_precision="bf16"),
                    Row("  gradient checkpointing", 1, mixed_precision="bf16", gradient_checkpointing=True,
                        undo=no_checkpointing)]:
            xl_rows.append(run_row(xl, xl_images, row, steps=max(2, steps // 2), warmup=warmup))
        report["sdxl"] = {"arch": xl_arch, "resolution": xl_size, "flops_per_sample": xl_flops, "rows": xl_rows}
        del xl

    print_table(f"{arch} at {size} px — {card}", rows, flops, ref)
    if xl_rows:
        print_table(f"{xl_arch} at {report['sdxl']['resolution']} px — {card}", xl_rows, xl_flops, None)
    ok = report["sd_correctness"]["ok"] and report.get("sdxl_correctness", {"ok": True})["ok"]
    print(f"\ncorrectness: {'ok' if ok else 'FAILED'}; total {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
