"""Methods compared over several seeds of the concept suite (issue 15): one seed is too noisy to pick a default.

    python benchmarks/seeds.py benchmarks/results/state/{search_a,search_b,seed2}.json … --write-results

Reads bench result JSONs (``ticraft bench --json``), groups their 4-picture runs by the seed in their settings and by
method, and writes the section "Concept suite over seeds" of RESULTS.md and ``results/concept_suite_seeds.png`` (a
concept × seed map of good points per method). Per method and seed: concepts good within the ladder, the suite median
in samples and CPU seconds, the hidden object's good point; pooled over seeds: the median over every concept × seed;
paired: on how many concept × seed cells one method got good and the other did not, with a two-sided sign test.
Only concepts every compared method ran on every seed are counted.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTION = "## Concept suite over seeds"

Cells = dict[tuple[str, int, str], dict[str, Any]]  # (method, seed, concept) → run


def load(paths: list[Path]) -> Cells:
    """Every 4-picture run of the files, keyed by method, seed and concept; a cell recorded twice is an error."""
    cells: Cells = {}
    for path in paths:
        result = json.loads(path.read_text(encoding="utf-8"))
        seed = int(result["settings"]["seed"])
        for run in result["runs"]:
            if int(run.get("shots", 4)) != 4:
                continue
            key = (run["method"], seed, run["concept"])
            if key in cells:
                sys.exit(f"{path}: {key[0]} on {key[2]} with seed {seed} is recorded twice")
            cells[key] = run
    return cells


def common_concepts(cells: Cells, methods: list[str], seeds: list[int]) -> list[str]:
    concepts = dict.fromkeys(c for (_, _, c) in cells)
    return [c for c in concepts if all((m, s, c) in cells for m in methods for s in seeds)]


def _median(xs: list[float]) -> float | None:
    m = statistics.median(xs) if xs else math.inf
    return None if math.isinf(m) else m


def _late(run: dict[str, Any], key: str) -> float:
    return math.inf if run[key] is None else float(run[key])


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven when both methods are alike."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def tables(cells: Cells, methods: list[str], seeds: list[int], concepts: list[str]) -> str:
    rows = ["| method | seed | good within the ladder | samples to good (median) | seconds to good (median) | "
            "hidden object good at |", "|---|---:|---:|---:|---:|---:|"]
    for m in methods:
        for s in [*seeds, None]:
            use = [cells[(m, x, c)] for x in (seeds if s is None else [s]) for c in concepts]
            good = sum(r["good_samples"] is not None for r in use)
            samples = _median([_late(r, "good_samples") for r in use])
            seconds = _median([_late(r, "good_seconds") for r in use])
            zorb = [cells[(m, x, "zorb")] for x in (seeds if s is None else [s]) if (m, x, "zorb") in cells]
            hidden = ", ".join("no" if r["good_samples"] is None else f"{r['good_samples']} ({r['good_seconds']:.1f} s)"
                               for r in zorb)
            label = "all, pooled" if s is None else str(s)
            per = _goods(cells, m, seeds, concepts)
            count = f"{good}/{len(use)}" + (f" (per seed {statistics.fmean(per):.1f} ± {statistics.pstdev(per):.1f})"
                                             if s is None else "")
            rows.append(f"| {m} | {label} | {count} | {'not reached' if samples is None else f'{samples:.0f}'} | "
                        f"{'not reached' if seconds is None else f'{seconds:.1f}'} | {hidden or '—'} |")
    return "\n".join(rows)


def _goods(cells: Cells, m: str, seeds: list[int], concepts: list[str]) -> list[int]:
    return [sum(cells[(m, s, c)]["good_samples"] is not None for c in concepts) for s in seeds]


def paired(cells: Cells, methods: list[str], seeds: list[int], concepts: list[str]) -> str:
    lines = []
    base = methods[0]
    for other in methods[1:]:
        wins = sum(cells[(other, s, c)]["good_samples"] is not None and cells[(base, s, c)]["good_samples"] is None
                   for s in seeds for c in concepts)
        losses = sum(cells[(other, s, c)]["good_samples"] is None and cells[(base, s, c)]["good_samples"] is not None
                     for s in seeds for c in concepts)
        lines.append(f"* `{other}` against `{base}`: good where `{base}` was not on {wins} concept × seed cells, the "
                     f"reverse on {losses} (two-sided sign test p = {sign_test(wins, losses):.2f}).")
    return "\n".join(lines)


def concept_table(cells: Cells, methods: list[str], seeds: list[int], concepts: list[str]) -> str:
    head = "| concept | " + " | ".join(f"{m} (seeds {', '.join(map(str, seeds))})" for m in methods) + " |"
    rows = [head, "|---|" + "---:|" * len(methods)]
    for c in concepts:
        parts = []
        for m in methods:
            got = [cells[(m, s, c)]["good_samples"] for s in seeds]
            parts.append(f"{sum(g is not None for g in got)}/{len(seeds)}: "
                         + " · ".join("–" if g is None else str(g) for g in got))
        rows.append(f"| {c} | " + " | ".join(parts) + " |")
    return "\n".join(rows)


def picture(cells: Cells, methods: list[str], seeds: list[int], concepts: list[str], path: Path) -> Path:
    """Rows concepts, columns method × seed; the colour is the good point (log2 samples), grey never good."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(concepts), len(methods) * len(seeds)), np.nan)
    for j, (m, s) in enumerate((m, s) for m in methods for s in seeds):
        for i, c in enumerate(concepts):
            g = cells[(m, s, c)]["good_samples"]
            if g is not None:
                grid[i, j] = math.log2(g)
    fig, ax = plt.subplots(figsize=(2.5 + 0.6 * grid.shape[1], 1.2 + 0.3 * len(concepts)))
    cmap = matplotlib.colormaps["viridis_r"].copy()
    cmap.set_bad("#d0d0d0")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto", vmin=6, vmax=11)
    ax.set_yticks(range(len(concepts)), concepts)
    ax.set_xticks(range(grid.shape[1]), [f"{m}\nseed {s}" for m in methods for s in seeds], fontsize=7)
    for k in range(1, len(methods)):
        ax.axvline(k * len(seeds) - 0.5, color="white", lw=3)
    bar = fig.colorbar(im, ax=ax, ticks=range(6, 12))
    bar.ax.set_yticklabels([str(2 ** k) for k in range(6, 12)])
    bar.set_label("good after (samples)")
    ax.set_title("Good point per concept and seed (grey: not within the ladder)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="bench result JSONs (any seeds and methods)")
    parser.add_argument("--methods", default=None, help="comma-separated, the baseline first (default: all)")
    parser.add_argument("--note", default="", help="a paragraph written under the command")
    parser.add_argument("--command", default=None, help="the command line shown in RESULTS.md")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    cells = load(args.results)
    methods = args.methods.split(",") if args.methods else list(dict.fromkeys(m for (m, _, _) in cells))
    seeds = sorted({s for (_, s, _) in cells})
    concepts = common_concepts(cells, methods, seeds)
    if not concepts:
        sys.exit(f"no concept was run by every method ({', '.join(methods)}) on every seed ({seeds})")
    png = picture(cells, methods, seeds, concepts, RESULTS / "concept_suite_seeds.png")
    body = "\n\n".join([
        SECTION,
        f"`{args.command or 'python benchmarks/seeds.py ' + ' '.join(map(str, args.results))}` — seeds "
        f"{', '.join(map(str, seeds))}, {len(concepts)} concepts from 4 pictures (ladder and judge as in the main "
        "table: good = reconstruction ≥ 90 % and faithful editability ≥ 80 %; seconds are CPU seconds of the "
        "training steps, one torch thread; a concept never good counts as infinitely late).",
        args.note,
        tables(cells, methods, seeds, concepts),
        paired(cells, methods, seeds, concepts),
        concept_table(cells, methods, seeds, concepts),
        f"![good point per concept and seed](results/{png.name})",
    ])
    print(body)
    if args.write_results:
        write_section(body)


if __name__ == "__main__":
    main()
