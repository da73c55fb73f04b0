"""How the library scales: CLI commands on 10 vs 10,000 concepts, a 1,000-file webui import, the vector matrix.

Ratios are measured in one run: every command is timed as a subprocess (CLI start-up included) alternately on a
10-concept and an N-concept library, ``--reps`` times each, and the medians are compared; the issue's target is
a ratio of at most 1.5 for list, show, tag, rename, rm and one add. The N-concept library is built through the
bulk path (``Library.add_many`` in batches of 1,000: folders built under ``.tmp/``, one ``os.sync`` and one
index transaction per batch). Then a folder of 1,000 A1111 files (half ``.pt``, half ``.safetensors``, plus 20
byte-identical copies under other names) is imported with ``ticraft library import DIR --recursive``, and the
vector matrix of the big library is built cold, read back warm and queried.

    nice -n 10 python benchmarks/library_scale.py                 # full run: writes the RESULTS.md section
    python benchmarks/library_scale.py --concepts 1000 --reps 3 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import write_section  # noqa: E402

from ticraft.concept import Concept  # noqa: E402
from ticraft.library import Library  # noqa: E402

D = 768  # an SD 1.x-wide concept, one vector: the common webui case


def make(token: str, seed: int, n: int = 1) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, D, generator=g)}, family="sd1", meta={"steps": seed})


def build(root: Path, n: int, batch: int = 1000) -> float:
    """A library of ``n`` concepts <c0> … through the bulk path; returns seconds."""
    lib = Library(root)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        lib.add_many(
            [make(f"<c{i}>", i, 1 + i % 3) for i in range(start, stop)],
            tags=[[f"t{i % 7}"] + (["style"] if i % 5 == 0 else []) for i in range(start, stop)],
        )
    return time.perf_counter() - t0


def cli(*args: str) -> float:
    """Wall seconds of one ``python -m ticraft …`` (fails loudly on a non-zero exit)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("TICRAFT_LIBRARY", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ticraft", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ticraft {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall


def ops(root: Path, rep: int, payload: Path) -> dict[str, tuple[str, ...]]:
    """The commands of repetition ``rep`` (each changes a different concept, so every run does real work)."""
    lib = ("-L", str(root))
    return {
        "list": ("library", "list", *lib),
        "show": ("library", "show", "<c5>", *lib),
        "tag": ("library", "tag", f"<c{rep % 5}>", "--add", f"bench{rep}", *lib),
        "rename": ("library", "rename", *(("<c6>", "<renamed>") if rep % 2 == 0 else ("<renamed>", "<c6>")), *lib),
        "rm": ("library", "rm", f"<rm{rep}>", "--yes", *lib),
        "add": ("library", "import", str(payload), "--token", f"<added{rep}>", *lib),
    }


def measure_ops(small: Path, large: Path, reps: int, payload: Path) -> dict[str, dict[str, float]]:
    for root in (small, large):  # concepts for rm to remove
        Library(root).add_many([make(f"<rm{r}>", 10_000_000 + r) for r in range(reps)])
    times: dict[str, dict[str, list[float]]] = {}
    for rep in range(reps):
        for name in ops(small, rep, payload):
            for label, root in (
                (("small", small), ("large", large)) if rep % 2 == 0 else (("large", large), ("small", small))
            ):
                times.setdefault(name, {}).setdefault(label, []).append(cli(*ops(root, rep, payload)[name]))
    return {name: {label: statistics.median(v) for label, v in by.items()} for name, by in times.items()}


def import_folder_bench(tmp: Path, files: int) -> dict[str, float]:
    from ticraft.formats import write_concept

    src = tmp / "webui-embeddings"
    for i in range(files):
        sub = src / f"group{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 2:
            write_concept(make(f"<w{i}>", 500_000 + i), sub / f"w{i}.pt", layout="a1111")
        else:
            write_concept(make(f"<w{i}>", 500_000 + i), sub / f"w{i}.safetensors", layout="kohya")
    dups = min(20, files)
    for i in range(dups):
        original = next((src / f"group{i % 10}").glob(f"w{i}.*"))
        shutil.copyfile(original, src / f"group{i % 10}" / f"copy-of-w{i}{original.suffix}")
    lib = tmp / "imported"
    env = {**os.environ, "COLUMNS": "200"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ticraft", "library", "import", str(src), "--recursive", "-L", str(lib)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{proc.stdout}\n{proc.stderr}")
    n = Library(lib).count()
    reported = proc.stdout.count("same vectors as")
    return {"files": files + dups, "seconds": wall, "imported": n, "duplicates_reported": reported}


def matrix_bench(root: Path) -> dict[str, float]:
    shutil.rmtree(root / ".index" / "vectors-clip768.safetensors", ignore_errors=True)
    lib = Library(root)
    t0 = time.perf_counter()
    m = lib.matrix(dims={"clip": D})
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    m2 = Library(root).matrix(dims={"clip": D})
    warm = time.perf_counter() - t0
    query = lib.get("<c5>")
    t0 = time.perf_counter()
    for _ in range(10):
        m2.nearest(query, k=5)
    nearest = (time.perf_counter() - t0) / 10
    return {"rows": len(m), "cold_s": cold, "warm_s": warm, "nearest_s": nearest}


def first_page_seconds(root: Path) -> float:
    """A fresh process: import the library, count, read the first 50 rows (what a list view needs first)."""
    code = (
        f"import time; t=time.perf_counter(); from ticraft.library import Library; lib=Library({str(root)!r}); "
        "n=lib.count(); rows=lib.page(0, 50); print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concepts", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--import-files", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="ticraft-scale-") as tmp_name:
        tmp = Path(tmp_name)
        small, large = tmp / "small", tmp / "large"
        build(small, 10)
        build_s = build(large, args.concepts)
        print(f"built {args.concepts} concepts in {build_s:.1f} s", flush=True)
        payload = tmp / "payload.safetensors"
        from ticraft.formats import write_concept

        write_concept(make("<payload>", 424242), payload, layout="diffusers")
        cmd = measure_ops(small, large, args.reps, payload)
        for name, by in cmd.items():
            print(
                f"{name:7s} small {by['small']:.3f} s  large {by['large']:.3f} s  "
                f"ratio {by['large'] / by['small']:.2f}",
                flush=True,
            )
        page_s = statistics.median(first_page_seconds(large) for _ in range(3))
        imp = import_folder_bench(tmp, args.import_files)
        print(f"import {imp}", flush=True)
        mat = matrix_bench(large)
        print(f"matrix {mat}", flush=True)
    machine = f"{os.cpu_count()}-core CPU, this sandbox ({platform.machine()}, Python {platform.python_version()})"
    rows = "\n".join(
        f"| `library {name}` | {by['small']:.2f} s | {by['large']:.2f} s | **{by['large'] / by['small']:.2f}×** |"
        for name, by in cmd.items()
    )
    body = f"""## Library scale

`benchmarks/library_scale.py` (`nice -n 10`, {machine}, other jobs sharing the cores). Each command is one
`python -m ticraft …` subprocess (CLI start-up included), run alternately on a 10-concept and a
{args.concepts:,}-concept library, median of {args.reps}; the big library was built through the bulk path
(`Library.add_many`, batches of 1,000, one `os.sync` and one index transaction per batch: {build_s:.0f} s).
Target: ratio ≤ 1.5.

| command | 10 concepts | {args.concepts:,} concepts | ratio |
|---|---|---|---|
{rows}

- `library import DIR --recursive` of {imp["files"]:.0f} files ({args.import_files // 2} A1111 `.pt`,
  {args.import_files // 2} kohya-layout `.safetensors` (webui reads both), 20 byte-identical copies, 10 sub-folders):
  **{imp["seconds"]:.1f} s** (target ≤ 60 s on 2 cores);
  {imp["imported"]:.0f} concepts imported, {imp["duplicates_reported"]:.0f} duplicates reported by content hash.
- A fresh process opening the {args.concepts:,}-concept library, counting it and reading its first 50 rows
  (`Library.count()` + `Library.page(0, 50)`, imports included): {page_s:.2f} s.
- `Library.matrix()` over {mat["rows"]:.0f} concepts: {mat["cold_s"]:.1f} s cold (every file read once),
  {mat["warm_s"]:.2f} s warm (a new process reads `.index/vectors-*.safetensors`); one nearest-concept query
  {mat["nearest_s"] * 1000:.1f} ms.
"""
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(body)}")
    print(json.dumps({"commands": cmd, "import": imp, "matrix": mat, "first_page_s": page_s}))


if __name__ == "__main__":
    main()
