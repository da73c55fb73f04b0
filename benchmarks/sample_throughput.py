"""Sampling throughput: ticraft's batched `generate` against a plain diffusers pipeline call per image.

Same model, same process, same prompts (with a 2-vector concept), steps, guidance and scheduler. The
reference is the loop people write first: ``pipe(prompt, generator=torch.Generator().manual_seed(s))``
once per image. ticraft groups the specs into batches (one UNet call denoises ``B`` images × 2 for
classifier-free guidance), seeds each image by its own generator, and on CUDA runs in bf16/fp16.

Rows: the reference per image (the model's dtype, and fp32 on CUDA: what a default pipeline gets),
then ticraft at each batch size. Columns: images/s and × the same-dtype reference. A sanity check
compares a batched image with the same spec generated alone (equal up to last-bit rounding).

Models are built offline with random weights (see ``train_throughput.build_backbone``):
``tiny`` (16 px, the tests' model), ``small`` (128 px, CPU-sized SD shape), ``sd15`` (SD-1.5 architecture,
512 px), ``sdxl`` (1024 px).

Usage::

    python benchmarks/sample_throughput.py                               # CPU: tiny, ratios only
    python benchmarks/sample_throughput.py --arch sd15 --batch 1 8 16    # GPU: 512 px
    python benchmarks/sample_throughput.py --write                       # update benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from results_md import write_section
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import build_backbone, quiet  # noqa: E402

from ticraft.concept import Concept  # noqa: E402
from ticraft.prompts import expand_prompt  # noqa: E402
from ticraft.generate.sample import (  # noqa: E402
    SampleSpec, default_dtype, generate, make_scheduler, model_defaults, prepare_pipeline,
)

RESULTS = Path(__file__).parent / "RESULTS.md"
PROMPTS = ["a photo of <bench-toy>", "a painting of <bench-toy> on the beach", "a <bench-toy> in the style of art"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_specs(n: int, steps: int, guidance: float, scheduler: str, size: int) -> list[SampleSpec]:
    return [SampleSpec(PROMPTS[i % len(PROMPTS)], seed=1000 + i, steps=steps, guidance=guidance, scheduler=scheduler,
                       width=size, height=size) for i in range(n)]


def reference(bb: Any, specs: list[SampleSpec], counts: dict[str, int]) -> tuple[float, list[Any]]:
    """One plain pipeline call per image (the concept already spliced in: only the loop differs)."""
    pipe = prepare_pipeline(bb, "text2img")
    pipe.scheduler = make_scheduler(bb, specs[0].scheduler)
    _sync(bb.device)
    t0 = time.perf_counter()
    images = []
    for s in specs:
        out = pipe(prompt=expand_prompt(s.prompt, counts), num_inference_steps=s.steps, guidance_scale=s.guidance,
                   width=s.width, height=s.height, generator=torch.Generator("cpu").manual_seed(s.seed),
                   output_type="pil")
        images.append(out.images[0])
    _sync(bb.device)
    return time.perf_counter() - t0, images


def batched(bb: Any, specs: list[SampleSpec], concept: Concept, batch: int) -> tuple[float, list[Any]]:
    _sync(bb.device)
    t0 = time.perf_counter()
    images = generate(bb, specs, concepts=[concept], batch_size=batch, distributed=False)
    _sync(bb.device)
    return time.perf_counter() - t0, images


def run(args: argparse.Namespace) -> dict[str, Any]:
    quiet()
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    arch = args.arch or ("sd15" if device.type == "cuda" else "tiny")
    dtype = default_dtype(device, args.dtype)
    bb = build_backbone(arch, device=device, dtype=dtype)
    d = model_defaults(bb)
    size = args.size or d["width"]
    g = torch.Generator().manual_seed(0)
    concept = Concept("<bench-toy>", {e.key: torch.randn(2, e.dim, generator=g) * 0.02 for e in bb.encoders})
    bb.load_concept(concept)
    counts = {"<bench-toy>": 2}
    specs = make_specs(args.n, args.steps, args.guidance, args.scheduler, size)
    batches = args.batch or ([1, 8, 16] if device.type == "cuda" else [1, 4, 8])

    # Warm-up: kernels, allocator, oneDNN primitives for every batch shape (not timed).
    warm = specs[: max(batches)]
    reference(bb, warm[:1], counts)
    for b in batches:
        batched(bb, warm[:b], concept, b)

    # Methods take turns for `repeat` rounds and each keeps its best time, so a busy machine's
    # load swings hit every method alike.
    methods: dict[str, Any] = {
        f"diffusers, 1 call per image ({str(dtype).replace('torch.', '')})": lambda: reference(bb, specs, counts),
    }
    for b in batches:
        methods[f"ticraft generate, batch {b}"] = lambda b=b: batched(bb, specs, concept, b)
    best: dict[str, float] = {}
    outputs: dict[str, list[Any]] = {}
    for _ in range(args.repeat):
        for name, fn in methods.items():
            seconds, outputs[name] = fn()
            best[name] = min(seconds, best.get(name, float("inf")))
    rows: list[dict[str, Any]] = [{"method": name, "seconds": best[name]} for name in methods]
    t_ref = rows[0]["seconds"]
    ref_images = outputs[rows[0]["method"]]
    images = outputs[rows[-1]["method"]]
    if device.type == "cuda" and dtype != torch.float32 and not args.no_fp32:
        bb.to(dtype=torch.float32)  # what a default (fp32) pipeline gets, for comparison
        reference(bb, warm[:1], counts)
        t32 = min(reference(bb, specs, counts)[0] for _ in range(args.repeat))
        rows.insert(1, {"method": "diffusers, 1 call per image (float32)", "seconds": t32})
        bb.to(dtype=dtype)
    # Same spec, same generator: batched vs alone differ at most by last-bit rounding.
    alone = generate(bb, specs[1], concepts=[concept], batch_size=1, distributed=False)[0]
    sanity = int(np.abs(np.asarray(images[1], dtype=int) - np.asarray(alone, dtype=int)).max())
    for r in rows:
        r["images_per_s"] = args.n / r["seconds"]
        r["x_reference"] = t_ref / r["seconds"]
    return {
        "arch": arch, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(), "dtype": str(dtype).replace("torch.", ""), "size": size, "images": args.n,
        "steps": args.steps, "guidance": args.guidance, "scheduler": args.scheduler, "threads": torch.get_num_threads(),
        "repeat": args.repeat,
        "rows": rows, "max_pixel_diff_batched_vs_alone": sanity,
        "note": "reference image 0 vs ticraft image 0 max diff: "
                f"{int(np.abs(np.asarray(ref_images[0], dtype=int) - np.asarray(images[0], dtype=int)).max())}",
    }


def table(res: dict[str, Any]) -> str:
    lines = [
        f"{res['arch']} at {res['size']} px on {res['device']} ({res['dtype']}, {res['threads']} CPU threads), "
        f"{res['images']} images × {res['steps']} {res['scheduler']} steps, CFG {res['guidance']}; "
        f"best of {res['repeat']} interleaved rounds:",
        "",
        "| method | images/s | × reference |",
        "|---|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['method']} | {r['images_per_s']:.2f} | {r['x_reference']:.2f} |")
    lines.append("")
    lines.append(f"Batched vs alone, same spec: max pixel difference {res['max_pixel_diff_batched_vs_alone']} "
                 f"(last-bit rounding of other batch shapes; `--from` replays the recorded batch size to be exact).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default=None, help="tiny | small | sd15 | sdxl (default: sd15 on CUDA, tiny on CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", help="auto (bf16/fp16 on CUDA, fp32 on CPU) | fp32 | fp16 | bf16")
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="ticraft batch sizes")
    ap.add_argument("-n", type=int, default=16, help="images per method")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default 20 on CUDA, 4 on CPU)")
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--scheduler", default="dpm++")
    ap.add_argument("--size", type=int, default=None, help="image size (default: the model's)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; each method keeps its best time")
    ap.add_argument("--no-fp32", action="store_true", help="skip the fp32 reference row on CUDA")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument("--write", action="store_true", help="replace the section in benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    if args.steps is None:
        args.steps = 20 if torch.cuda.is_available() and args.device != "cpu" else 4
    res = run(args)
    body = table(res)
    print(body)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    if args.write:
        write_section(f"## Sampling throughput\n\n{body}")
        print(f"wrote {RESULTS}")
    return res


if __name__ == "__main__":
    main()
