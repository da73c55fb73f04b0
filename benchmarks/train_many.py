"""train-many on a CPU: 8 concepts in one run against 8 one-concept runs with the same samples each.

On the shipped toy model (``--model toy``, 32 px) with 8 toy-world concepts of 4 pictures:

* **as a user runs it** — ``ticraft train-many DIR`` once, against ``ticraft train DIR/<concept>`` eight
  times, each a fresh process (interpreter start, imports, model load, latent cache, training, writing the
  embedding file; no library, no previews, so both arms do the same work). Both arms use the same options
  and seed, so every concept sees the same samples; the script checks that the learned vectors agree
  (max |Δ|). Wall seconds, and CPU seconds (user + system of the processes: the figure a shared machine's
  load distorts least, since each process uses one thread);
* **per step** — CPU milliseconds of one optimiser step of one concept against one step of all 8 in one
  :class:`~ticraft.training.many.ConceptGroup`, at several batch sizes: where the gain of packing concepts
  into one forward pass comes from, and where it ends (once a step is compute-bound).

    python benchmarks/train_many.py                  # print the tables
    python benchmarks/train_many.py --write          # also update "## train-many (CPU)" in RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from results_md import write_section  # noqa: E402

SECTION = "## train-many (CPU)"
CONCEPTS = [("star", "red"), ("moon", "blue"), ("cross", "green"), ("diamond", "purple"),
            ("triangle", "orange"), ("square", "pink"), ("circle", "cyan"), ("star", "black")]


def make_concepts(root: Path, count: int, pictures: int) -> list[tuple[str, str]]:
    """``count`` toy-world concepts (a shape in a colour), ``pictures`` renders each; returns (folder, init)."""
    from ticraft.toyworld.render import render
    from ticraft.toyworld.vocab import concept_attributes

    out = []
    for i in range(count):
        shape, colour = CONCEPTS[i % len(CONCEPTS)]
        name = f"{colour}-{shape}-{i}"
        folder = root / name
        folder.mkdir(parents=True)
        for j, attrs in enumerate(concept_attributes(f"shape={shape},colour={colour}", pictures,
                                                     np.random.default_rng(i))):
            render(attrs).save(folder / f"{j:02d}.png")
        out.append((name, shape))
    (root / "concepts.toml").write_text("".join(f'[concepts.{n}]\ninit = "{init}"\n' for n, init in out))
    return out


def cli_args(args: argparse.Namespace) -> list[str]:
    return ["--model", "toy", "--steps", str(args.steps), "--batch", str(args.batch), "--device", "cpu",
            "--previews", "0", "--no-library"]


def run_cli(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def as_a_user(root: Path, concepts: list[tuple[str, str]], args: argparse.Namespace, work: Path,
              rnd: int) -> dict[str, float]:
    """8 `ticraft train` processes against one `ticraft train-many`: wall and CPU seconds, max |Δ| of the vectors."""
    from safetensors.torch import load_file

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "HF_HUB_OFFLINE": "1"}
    exe = [sys.executable, "-m", "ticraft.cli.main"]
    many_out, one_out = work / f"many-{rnd}", work / f"one-{rnd}"
    many_wall, many_cpu = run_cli(exe + ["train-many", str(root), *cli_args(args), "--out", str(many_out)], env)
    one_wall = one_cpu = 0.0
    for name, init in concepts:
        w, c = run_cli(exe + ["train", str(root / name), "--token", f"<{name}>", "--init", init, *cli_args(args),
                              "--out", str(one_out / name)], env)
        one_wall, one_cpu = one_wall + w, one_cpu + c
    # Control: concept 0's one-concept run again with only the floating-point order changed (text encoder on
    # every sample's prompt, not once per distinct prompt). Adam divides by √v, so gradient components near
    # zero turn rounding differences into ±lr steps: this is the size of "equal" between two runs.
    name0, init0 = concepts[0]
    run_cli(exe + ["train", str(root / name0), "--token", f"<{name0}>", "--init", init0, *cli_args(args),
                   "--set", "dedup_text=false", "--out", str(work / f"control-{rnd}")], env)

    def vec(folder: Path, name: str) -> torch.Tensor:
        return load_file(str(next(folder.glob("*.safetensors"))))[f"<{name}>"]

    diff = rel = 0.0
    for name, _ in concepts:
        a, b = vec(many_out / name, name), vec(one_out / name, name)
        diff, rel = max(diff, float((a - b).abs().max())), max(rel, float((a - b).norm() / b.norm()))
    a, b = vec(work / f"control-{rnd}", name0), vec(one_out / name0, name0)
    return {"one_wall": one_wall, "many_wall": many_wall, "one_cpu": one_cpu, "many_cpu": many_cpu, "diff": diff,
            "rel": rel, "control_diff": float((a - b).abs().max()), "control_rel": float((a - b).norm() / b.norm())}


def per_step(root: Path, concepts: list[tuple[str, str]], batch: int, steps: int) -> dict[str, float]:
    """CPU ms of one concept's step and of a step of all concepts in one ConceptGroup (after one warm-up step)."""
    from ticraft.models.load import load_backbone
    from ticraft.training.config import TrainConfig
    from ticraft.training.data import load_images
    from ticraft.training.loop import Trainer
    from ticraft.training.many import ConceptGroup

    bb = load_backbone("toy", device="cpu")
    cfg = TrainConfig.from_options(steps=10**6, batch_size=batch, device="cpu", previews=0, log_every=10**6)
    trainers = [Trainer(bb, load_images(root / n), f"<{n}>", init, cfg) for n, init in concepts]
    group = ConceptGroup(trainers, max_batch=64)
    try:
        trainers[0].train_step()
        start = time.process_time()
        for _ in range(steps):
            trainers[0].train_step()
        one = (time.process_time() - start) / steps
        group.train_step()
        start = time.process_time()
        for _ in range(steps):
            group.train_step()
        many = (time.process_time() - start) / steps
    finally:
        group.close()
    return {"batch": batch, "one_ms": one * 1000, "group_ms": many * 1000, "ratio": len(concepts) * one / many}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concepts", type=int, default=8)
    ap.add_argument("--pictures", type=int, default=4)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4, help="samples per step per concept in the as-a-user arm")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--step-batches", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--step-count", type=int, default=3, help="timed steps per per-step row")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="update the RESULTS.md section")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"settings": vars(args), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                              "torch": torch.__version__, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="ticraft-many-") as tmp:
        work = Path(tmp)
        root = work / "concepts"
        concepts = make_concepts(root, args.concepts, args.pictures)
        steps = []
        for b in args.step_batches:
            steps.append(per_step(root, concepts, b, args.step_count))
            print(f"per step, batch {b}: {steps[-1]}", flush=True)
        users = []
        for rnd in range(args.rounds):
            users.append(as_a_user(root, concepts, args, work, rnd))
            print(f"as a user, round {rnd + 1}: {users[-1]}", flush=True)
    result["per_step"] = steps
    result["user"] = {k: statistics.median(u[k] for u in users) for k in users[0]}
    for key in ("diff", "rel", "control_diff", "control_rel"):
        result["user"][key] = max(u[key] for u in users)
    result["user_rounds"] = users
    result["load_after"] = os.getloadavg()[0]
    body = section(result, args)
    print("\n" + body)
    if args.write:
        print(f"wrote {write_section(body)}")
    return result


def section(result: dict[str, Any], args: argparse.Namespace) -> str:
    """The RESULTS.md section, with the settings and the machine."""
    u = result["user"]
    n = args.concepts
    wall, cpu = u["one_wall"] / u["many_wall"], u["one_cpu"] / u["many_cpu"]
    verdict = "met" if wall >= 3 else "not met on this CPU"
    rows = "\n".join(f"| {r['batch']} | {r['one_ms']:.0f} ms | {r['group_ms']:.0f} ms | {n * r['one_ms']:.0f} ms | "
                     f"**{r['ratio']:.2f}×** |" for r in result["per_step"])
    command = (f"python benchmarks/train_many.py --steps {args.steps} --batch {args.batch} --rounds {args.rounds} "
               f"--step-batches {' '.join(map(str, args.step_batches))} --write")
    return f"""{SECTION}

`{command}` — the shipped toy model (32 px), {n} toy-world concepts (a shape in a colour, initializer = the
shape's word) of {args.pictures} renders each, fast preset otherwise, seed 0, {args.threads} torch thread per process;
2-core CPU, this sandbox ({result['machine']}, torch {result['torch']}), shared with seven other engineers' work
(load average {result['load_before']:.0f} before, {result['load_after']:.0f} after), so wall times are stretched
and CPU seconds are the steadier figure.

**As a user runs it** — `ticraft train-many DIR` once against `ticraft train DIR/<concept>` {n} times (each a
fresh process: start, imports, model load, latents, {args.steps} steps at batch {args.batch} per concept, embedding
file; `--previews 0 --no-library` in both). Every concept saw the same samples in both arms; the learned vectors
differ by at most {u['rel']:.1e} relative (‖Δ‖/‖v‖; max |Δ| {u['diff']:.1e}): rounding. For scale, two
one-concept runs that differ only in floating-point order (the control: `--set dedup_text=false`) differ by
{u['control_rel']:.1e} relative (max |Δ| {u['control_diff']:.1e}). `tests/test_train_many.py` checks 1e-5 on the
tiny SD and SDXL models.

| | {n} one-concept runs | one train-many run | less |
|---|---:|---:|---:|
| wall time | {u['one_wall']:.1f} s | {u['many_wall']:.1f} s | **{u['one_wall'] / u['many_wall']:.2f}×** |
| CPU time (user + system) | {u['one_cpu']:.1f} s | {u['many_cpu']:.1f} s | **{u['one_cpu'] / u['many_cpu']:.2f}×** |

**Per optimiser step** (CPU ms, {args.step_count} steps after a warm-up step): one concept, against all {n}
concepts in one `ConceptGroup` (their samples in one forward pass of at most 64).

| batch per concept | one concept | {n} concepts together | {n} × one concept | less |
|---:|---:|---:|---:|---:|
{rows}

Against the issue's goal (≥ 3× less wall time): **{verdict}** ({wall:.1f}× wall, {cpu:.1f}× CPU
time at these settings). The toy model on a CPU is
compute-bound as soon as a step holds a few samples: a sample costs about the same whether it shares its
forward pass with other concepts' samples or not, so packing {n} concepts into one pass saves only the per-step
overhead (most at batch 1) and, against separate processes, each run's start-up (interpreter, imports, model
load). Packing pays where one concept's step leaves the device idle — a GPU at batch 1–16 (one H100 ran 8.3
samples/s at batch 1 and 116 at batch 64) — which `benchmarks/gpu_suite.py` measures (train-many with 32
concepts); not measured yet.
"""


if __name__ == "__main__":
    main()
