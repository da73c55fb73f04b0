"""The trainer's GPU suite (issues 8 and 18): correctness, then every performance lever, one table per model.

One short run on a random-weight SD-1.5-architecture model at 512 px and an SDXL-architecture model at
1024 px (both text encoders), built offline from ``ticraft/models/configs``:

1. correctness — after a few bf16 steps the vectors moved, every token table is bitwise unchanged, no table
   got a gradient, the loss is finite (SD-1.5 and SDXL);
2. SD-1.5 rows: the diffusers-example-style reference at batch 1; fp32 and bf16-autocast-only at batch 1;
   bf16 weights + autocast at batch 1, 4, 16, 64; the VAE kept on the device (``offload_vae=False``) at
   batch 1 — each with the latent-cache peak and the training peak apart;
3. the latent-cache peak itself: the VAE encoder on 8 images at once (before) and 512×512 px at a time (now);
4. SDXL at 1024 px, batch 1 (VAE offloaded and kept), batch 4;
5. the default preset's whole ``ticraft train`` on a saved SD-1.5 folder, timed as a user runs it (a fresh
   process: start, model load, latent cache, 400 steps, previews, saving);
6. train-many with 32 concepts (``ConceptGroup``): samples/s of all concepts together;
7. ``torch.compile`` default and reduce-overhead (CUDA graphs) at batch 1, 4, 16, 64 (one trainer per mode,
   so a new batch size re-specialises the graph instead of compiling from scratch);
8. ``--all-levers``: issue 8's other rows (classic attention, channels-last, unfused Adam, a host sync every
   step, no text-encoder sharing, gradient checkpointing), measured on an H100 on 2026-11-26.

Every row has samples/s, the cache and training peaks (``torch.cuda.max_memory_allocated``), TFLOP/s (model
FLOPs per sample counted once with ``FlopCounterMode``) and its share of the device's bf16 peak. ``--budget``
seconds (default 450 on a GPU) bound the run: a row that would start later is recorded as skipped, and the
slow compile rows come last, so the suite ends in under 8 minutes on one H100/H200.

Usage::

    python benchmarks/gpu_suite.py --json $OUT/gpu_suite.json --markdown $OUT/gpu_suite.md   # GPU
    python benchmarks/gpu_suite.py --quick                            # CPU, tiny models, same code paths
    python benchmarks/gpu_suite.py --quick --compile                  # … and torch.compile (aot_eager backend)
    python benchmarks/gpu_suite.py --from-json results/x.json --write # RESULTS.md section from a device run
    python benchmarks/gpu_suite.py --write                            # the section with nothing measured yet

The exact device command is in benchmarks/RESULTS.md (``gpu_suite_report.DEVICE_COMMAND``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_suite_parts as parts  # noqa: E402
from gpu_suite_report import section  # noqa: E402
from results_md import write_section  # noqa: E402
from train_throughput import build_backbone, make_images, measure_reference, native_size, quiet  # noqa: E402

#: Dense bf16 tensor-core peaks (TFLOP/s) by device-name fragment, for the "% of peak" column.
PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


class Budget:
    """Seconds left of the suite's budget; rows that would start after it are skipped."""

    def __init__(self, seconds: float) -> None:
        self.start, self.seconds = time.perf_counter(), seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


def guarded(name: str, batch: int, budget: Budget, need: float, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one row: its numbers, or OOM / the error / skipped (so a breaking lever never hides the others)."""
    if budget.left() < need:
        out: dict[str, Any] = {"status": f"skipped (time budget: {budget.left():.0f} s left, needs ~{need:.0f})"}
    else:
        try:
            out = fn()
            out.setdefault("status", "ok")
        except torch.OutOfMemoryError:
            out = {"status": "OOM"}
        except Exception as exc:
            traceback.print_exc()
            text = str(exc).splitlines()[0][:100] if str(exc) else ""
            out = {"status": f"error: {type(exc).__name__}: {text}"}
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    row = {"name": name, "batch": batch, **out}
    print(f"  {name:40s} b{batch:<3d} {parts.fmt(row.get('samples_s'))} samples/s  cache "
          f"{parts.fmt(row.get('cache_peak_gib'))} train {parts.fmt(row.get('train_peak_gib'))} GiB  {row['status']}",
          flush=True)
    return row


def sd_section(bb: Any, images: list[Any], args: argparse.Namespace, budget: Budget, cuda: bool) -> dict[str, Any]:
    """Correctness, FLOPs and the eager rows on the SD-1.5-architecture model (fp32 rows first, then bf16)."""
    steps, warmup = args.steps, args.warmup
    small, batches = (1, (1, 4, 16, 64)) if cuda else (1, (1, 2, 4))
    rows = [guarded("reference: diffusers example", 1, budget, 20,
                    lambda: {**measure_reference(bb, images, steps=steps, warmup=warmup, batch=1, count_flops=False),
                             "reference": True})]
    rows.append(guarded("ticraft fp32 (no autocast)", small, budget, 20,
                        lambda: parts.measure(bb, images, steps=steps, warmup=warmup, batch_size=small,
                                              mixed_precision="no")))
    rows.append(guarded("ticraft bf16 autocast, fp32 weights", small, budget, 20,
                        lambda: parts.measure(bb, images, steps=steps, warmup=warmup, batch_size=small,
                                              mixed_precision="bf16")))
    bb.to(dtype=torch.bfloat16)
    correctness = parts.check_correctness(bb, images, batch=2, mp="bf16")
    print("correctness:", json.dumps(correctness), flush=True)
    flops = parts.model_flops(bb, images, batch=4 if cuda else 2)
    for b in batches:
        rows.append(guarded("ticraft bf16 weights + autocast", b, budget, 25,
                            lambda b=b: parts.measure(bb, images, steps=steps, warmup=warmup, batch_size=b,
                                                      mixed_precision="bf16")))
    rows.append(guarded("  … VAE kept on the device", small, budget, 20,
                        lambda: parts.measure(bb, images, steps=steps, warmup=warmup, batch_size=small,
                                              mixed_precision="bf16", offload_vae=False)))
    if args.all_levers:
        for name, b, extra in parts.old_levers(max(batches) // 2):
            rows.append(guarded(name, b, budget, 25,
                                lambda b=b, extra=extra: parts.measure(bb, images, steps=steps, warmup=warmup,
                                                                       batch_size=b, mixed_precision="bf16", **extra)))
    return {"arch": args.arch, "resolution": native_size(bb), "flops_per_sample": flops, "rows": rows,
            "correctness": correctness}


def sdxl_section(args: argparse.Namespace, budget: Budget, device: torch.device) -> dict[str, Any] | None:
    """SDXL at its native size with both encoders: correctness, batch 1 (VAE offloaded / kept), batch 4."""
    if args.no_sdxl or budget.left() < 60:
        return {"rows": [], "status": "skipped"} if not args.no_sdxl else None
    xl = build_backbone(args.xl_arch, device, torch.bfloat16)
    try:
        images = make_images(2, native_size(xl))
        correctness = parts.check_correctness(xl, images, batch=1, mp="bf16")
        print("sdxl correctness:", json.dumps(correctness), flush=True)
        flops = parts.model_flops(xl, images, batch=1)
        steps = max(2, args.steps // 2)
        rows = [guarded("ticraft SDXL bf16", 1, budget, 30,
                        lambda: parts.measure(xl, images, steps=steps, warmup=args.warmup, batch_size=1,
                                              mixed_precision="bf16")),
                guarded("  … VAE kept on the device", 1, budget, 30,
                        lambda: parts.measure(xl, images, steps=steps, warmup=args.warmup, batch_size=1,
                                              mixed_precision="bf16", offload_vae=False)),
                guarded("  batch 4", 4, budget, 30,
                        lambda: parts.measure(xl, images, steps=steps, warmup=args.warmup, batch_size=4,
                                              mixed_precision="bf16"))]
        return {"arch": args.xl_arch, "resolution": native_size(xl), "flops_per_sample": flops, "rows": rows,
                "correctness": correctness}
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="ticraft trainer GPU suite (issues 8 and 18)")
    ap.add_argument("--quick", action="store_true", help="tiny models on CPU (checks that everything runs)")
    ap.add_argument("--compile", action="store_true", help="with --quick: include the torch.compile rows")
    ap.add_argument("--compile-backend", default=None, help="default: inductor on GPU, aot_eager with --quick")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    ap.add_argument("--no-sdxl", action="store_true")
    ap.add_argument("--all-levers", action="store_true", help="also issue 8's other lever rows")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole suite (GPU default 450)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--concepts", type=int, default=None, help="train-many concepts (GPU 32, --quick 4)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's bf16 peak (default: by name)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None, help="write the RESULTS.md section here")
    ap.add_argument("--from-json", type=Path, default=None, help="render the section from a saved run, no measuring")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md with the section")
    args = ap.parse_args(argv)
    if args.from_json is not None or (args.write and not args.quick and not torch.cuda.is_available()):
        saved = json.loads(args.from_json.read_text()) if args.from_json is not None else None
        print(f"wrote {write_section(section(saved))}")
        return 0
    quiet()
    cuda = torch.cuda.is_available() and not args.quick
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)
    args.steps = args.steps or (10 if cuda else 2)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    args.arch, args.xl_arch = ("sd15", "sdxl") if cuda else ("tiny", "tiny-sdxl")
    budget = Budget(args.budget or (450.0 if cuda else 1e9))
    card = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()})"
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if cuda and k in card), None)
    print(f"# ticraft trainer suite — {card}, torch {torch.__version__}, python {platform.python_version()}",
          flush=True)
    report: dict[str, Any] = {"device": card, "torch": torch.__version__, "quick": not cuda, "peak_tflops": peak,
                              "date": datetime.date.today().isoformat(), "budget_s": budget.seconds}

    bb = build_backbone(args.arch, device, torch.float32)
    images = make_images(4, native_size(bb))
    report["sd"] = sd_section(bb, images, args, budget, cuda)
    report["latent_cache"] = [guarded(name, 1, budget, 15, lambda chunk=chunk: parts.cache_peak(bb, images, chunk))
                              for name, chunk in (("VAE on 8 images at once (before)", 8),
                                                  ("512×512 px at a time (now)", None))]
    report["sdxl"] = sdxl_section(args, budget, device)
    if cuda:
        torch.cuda.empty_cache()  # the SDXL model is gone with its function's frame
    report["user_train"] = guarded("default preset `ticraft train`, as a user runs it", 16, budget, 90,
                                   lambda: parts.user_train(args.arch, device, quick=not cuda))
    concepts = args.concepts or (32 if cuda else 4)
    report["train_many"] = {"concepts": concepts, "rows": [
        guarded(f"train-many, {concepts} concepts × batch {b}, passes of ≤ 64", concepts * b, budget, 40,
                lambda b=b: parts.measure_many(bb, concepts, b, steps=max(2, args.steps // 2), warmup=2))
        for b in ((2, 16) if cuda else (1,))]}
    if (cuda and not args.no_compile) or (args.quick and args.compile):
        backend = args.compile_backend or ("inductor" if cuda else "aot_eager")
        batches = (1, 4, 16, 64) if cuda else (1, 2)
        for mode in ("default", "reduce-overhead"):
            report["sd"]["rows"] += parts.compiled_rows(bb, images, mode, backend, batches, steps=args.steps,
                                                        budget_left=budget.left)
    report["wall_s"] = budget.elapsed()
    ok = report["sd"]["correctness"]["ok"] and (report.get("sdxl") or {}).get("correctness", {"ok": True})["ok"]
    if args.json:  # first: a bug in rendering must not lose a device run's numbers
        args.json.write_text(json.dumps(report, indent=2, default=str))
    text = section(report)
    print("\n" + text)
    print(f"\ncorrectness: {'ok' if ok else 'FAILED'}; total {budget.elapsed():.0f} s")
    if args.markdown:
        args.markdown.write_text(text)
    if args.write and cuda:
        print(f"wrote {write_section(text)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
