"""Nearest-token lookup speed on an SD-1.5-sized table (49,408 × 768): one matmul vs a naive per-row loop.

What is timed (random table, seeded; CPU):

* ``index build`` — normalising the table once (what the per-model cache saves);
* ``disk cache load`` — reading the normalised table back from the safetensors cache instead;
* ``one matmul`` — :func:`ticraft.analysis.neighbors.nearest_rows` for Q query vectors (k=20, cosine), i.e.
  ``[Q, D] @ [D, V]`` + mask + ``topk``;
* ``naive loop`` — cosine similarity row by row in Python (``torch.nn.functional.cosine_similarity`` per row), for
  one query, then sorted: what a straightforward implementation does.

Run::

    python benchmarks/neighbors_speed.py            # print the table
    python benchmarks/neighbors_speed.py --write    # also replace the "## Neighbors" section of benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

from results_md import write_section

import torch

V, D, K = 49_408, 768, 20


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time of ``repeat`` runs (seconds).

    CPU time (this process, all threads) is the steadier number on a shared machine, where wall time mostly
    measures how long the scheduler kept us waiting.
    """
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(wall), statistics.median(cpu)


def ms(t: tuple[float, float], scale: float = 1.0, digits: int = 1) -> str:
    return f"{t[0] * scale * 1e3:,.{digits}f} ms | {t[1] * scale * 1e3:,.{digits}f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=8, help="query vectors per matmul call (a concept's vectors + mean)")
    ap.add_argument("--naive-rows", type=int, default=V, help="rows the naive loop visits (extrapolated to V)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: comparable CPU times)")
    ap.add_argument("--write", action="store_true", help="write the section into benchmarks/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from safetensors.torch import load_file, save_file

    from ticraft.analysis.neighbors import _index_from_table, nearest_rows

    g = torch.Generator().manual_seed(0)
    table = torch.randn(V, D, generator=g) * 0.4
    tokens = [f"t{i}" for i in range(V)]
    queries = torch.randn(args.queries, D, generator=g) * 0.4

    build = best_of(lambda: _index_from_table("clip", "bench", tokens, table), args.repeat)
    index = _index_from_table("clip", "bench", tokens, table)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "unit.safetensors")
        save_file({"unit": index.unit}, path)
        disk = best_of(lambda: load_file(path)["unit"].sum(), args.repeat)  # .sum(): really read the bytes

    nearest_rows(index, queries, K)  # warm-up
    matmul = best_of(lambda: nearest_rows(index, queries, K), args.repeat)
    per_query = (matmul[0] / args.queries, matmul[1] / args.queries)

    q = queries[0]
    rows = min(args.naive_rows, V)

    def naive() -> None:
        scores = [float(torch.nn.functional.cosine_similarity(q, table[i], dim=0)) for i in range(rows)]
        sorted(range(rows), key=scores.__getitem__, reverse=True)[:K]

    once = best_of(naive, 1)  # one pass is slow enough to time reliably
    naive_t = (once[0] * V / rows, once[1] * V / rows)

    # the two agree
    s, i = nearest_rows(index, q[None], K)
    exact = torch.nn.functional.cosine_similarity(q[None], table, dim=1).topk(K).indices
    assert i[0].tolist() == exact.tolist()

    extrapolated = "" if rows == V else f" (extrapolated from {rows:,} rows)"
    section = f"""## Neighbors

`python benchmarks/neighbors_speed.py` — nearest vocabulary tokens on a random 49,408 × 768 table (SD-1.5's
size), k={K}, cosine, CPU ({platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)),
medians of {args.repeat} runs. The machine was shared with other jobs, so wall times are inflated; CPU time is
the steadier measure.

| step | wall | CPU |
|---|---|---|
| index build (normalise the table; once per model, then cached) | {ms(build)} |
| disk cache load (normalised table, safetensors) | {ms(disk)} |
| one matmul + top-k, {args.queries} queries | {ms(matmul, digits=2)} |
| one matmul + top-k, per query | {ms(per_query, digits=2)} |
| naive per-row Python loop, 1 query{extrapolated} | {ms(naive_t, digits=0)} |
| **speed-up per query** | **{naive_t[0] / per_query[0]:,.0f}×** | **{naive_t[1] / per_query[1]:,.0f}×** |

The matmul path returns the same top-{K} ids as an exact `cosine_similarity` over the whole table (asserted).
"""
    print(section)
    if args.write:
        print(f"wrote {write_section(section)}")


if __name__ == "__main__":
    main()
