"""Methods compared over several seeds of the concept suite: one seed is too noisy to pick a method by.

On the toy suite single concepts flip between "good after 256 samples" and "never" with the seed, so a difference
of two concepts between methods on one seed is within noise. :func:`compare_seeds` takes bench results (one per seed,
or any split of methods and concepts over files) and reports, per method and seed, the concepts good within the
ladder, the suite medians and the hidden object's good point; pooled over seeds; and, against the first method, on
how many concept × seed cells each other method got good where it did not and the reverse, with a two-sided exact
sign test; with diffusers' recipe among the methods, the seconds-to-good ratio against it, paired over the same
cells (:mod:`ticraft.bench.seeds_speedup`). Only the main picture count (the most pictures of a result, 4 by
default) is compared, on the concepts every method ran on every seed.

The good point is a run's *first* good ladder point, and on the toy suite a word can be good at one point and not at
the next (the vectors keep moving at the constant rate). So the comparison also counts, at every ladder point, the
cells good *there*: the word a user gets when the run stops at that many samples (``at_points``).

>>> sign_test(5, 3)            # 5 cells won, 3 lost: no evidence either way
0.7265625
>>> compare_seeds([result_seed0, result_seed1], methods=["plain", "earlier-t"])   # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ticraft.bench.seeds_speedup import REFERENCE, speedup_markdown, speedup_over_seeds
from ticraft.bench.suite import BenchError

Cells = dict[tuple[str, int, str], dict[str, Any]]  # (method, seed, concept) → run


def collect(results: Sequence[dict[str, Any]]) -> Cells:
    """Every main run of ``results`` (the most pictures; few-shot runs aside), keyed by method, seed (from each
    result's settings) and concept."""
    from ticraft.bench.summary import main_shots

    cells: Cells = {}
    for result in results:
        seed = int(result["settings"]["seed"])
        main = main_shots(result["runs"])
        for run in result["runs"]:
            if int(run.get("shots", 4)) != main:
                continue
            key = (run["method"], seed, run["concept"])
            if key in cells:
                raise BenchError(f"{key[0]} on {key[2]} with seed {seed} is in two of the results; give each once")
            cells[key] = run
    return cells


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven when both methods are alike."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _median(xs: list[float]) -> float | None:
    m = statistics.median(xs) if xs else math.inf
    return None if math.isinf(m) else float(m)


def _late(run: dict[str, Any], key: str) -> float:
    return math.inf if run[key] is None else float(run[key])


def _row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"good": sum(r["good_samples"] is not None for r in runs), "of": len(runs),
            "samples_median": _median([_late(r, "good_samples") for r in runs]),
            "seconds_median": _median([_late(r, "good_seconds") for r in runs])}


def compare_seeds(results: Sequence[dict[str, Any]], methods: Sequence[str] | None = None) -> dict[str, Any]:
    """Per method × seed, pooled and paired numbers over every seed the results hold (see the module doc).

    Args:
        results: bench results (``ticraft bench --json``), any mix of seeds, methods and concepts.
        methods: the methods to compare, the baseline first (default: all, in the order first seen).

    Raises:
        BenchError: fewer than two seeds, an unknown method, or no concept every method ran on every seed.
    """
    cells = collect(results)
    seen = list(dict.fromkeys(m for (m, _, _) in cells))
    names = list(methods) if methods else seen
    if unknown := [m for m in names if m not in seen]:
        raise BenchError(f"no runs of method {unknown[0]!r} in these results (they have: {', '.join(seen)})")
    seeds = sorted({s for (_, s, _) in cells})
    if len(seeds) < 2:
        raise BenchError(f"comparing over seeds needs results of at least two seeds, got {seeds}")
    concepts = [c for c in dict.fromkeys(c for (_, _, c) in cells)
                if all((m, s, c) in cells for m in names for s in seeds)]
    if not concepts:
        raise BenchError(f"no concept was run by every method ({', '.join(names)}) on every seed ({seeds})")
    per: dict[str, Any] = {}
    for m in names:
        by_seed = {str(s): _row([cells[(m, s, c)] for c in concepts]) for s in seeds}
        for s in seeds:
            z = cells.get((m, s, "zorb"))
            by_seed[str(s)]["hidden"] = None if z is None else [z["good_samples"], z["good_seconds"]]
        goods = [by_seed[str(s)]["good"] for s in seeds]
        pooled = _row([cells[(m, s, c)] for s in seeds for c in concepts])
        pooled.update(per_seed_mean=statistics.fmean(goods), per_seed_sd=statistics.pstdev(goods))
        per[m] = {"seeds": by_seed, "pooled": pooled,
                  "concepts": {c: [cells[(m, s, c)]["good_samples"] for s in seeds] for c in concepts}}
    paired = {}
    at_points = _at_points(cells, names, seeds, concepts)
    for other in names[1:]:
        wins = sum(per[other]["concepts"][c][i] is not None and per[names[0]]["concepts"][c][i] is None
                   for c in concepts for i in range(len(seeds)))
        losses = sum(per[other]["concepts"][c][i] is None and per[names[0]]["concepts"][c][i] is not None
                     for c in concepts for i in range(len(seeds)))
        paired[other] = {"against": names[0], "wins": wins, "losses": losses, "p": sign_test(wins, losses)}
    out = {"methods": names, "seeds": seeds, "concepts": concepts, "per_method": per, "paired": paired,
           "at_points": at_points}
    if REFERENCE in names[1:]:  # the ≥ 5× goal, paired over the same seeds and concepts
        out["speedup"] = speedup_over_seeds(cells, names[0], REFERENCE, seeds=seeds, concepts=concepts)
    return out


def _at_points(cells: Cells, names: Sequence[str], seeds: list[int], concepts: list[str]) -> list[dict[str, Any]]:
    """Per ladder point every compared run judged at: per method the cells good there, the mean CPU seconds to it,
    and against the first method the cells good there where it was not and the reverse (with the sign test)."""
    from ticraft.bench.ladder import is_good

    keys = [(s, c) for s in seeds for c in concepts]

    def at(m: str) -> dict[tuple[int, str], dict[int, dict[str, Any]]]:
        return {k: {int(p["samples"]): p for p in cells[(m, *k)].get("points") or []} for k in keys}

    points = {m: at(m) for m in names}
    ladder = sorted(set.intersection(*(set(points[m][k]) for m in names for k in keys)))
    rows = []
    for n in ladder:
        row: dict[str, Any] = {"samples": n, "methods": {}}
        good = {m: [is_good(points[m][k][n]) for k in keys] for m in names}
        for m in names:
            row["methods"][m] = {"good": sum(good[m]), "of": len(keys),
                                 "seconds_mean": statistics.fmean(float(points[m][k][n]["seconds"]) for k in keys)}
            if m != names[0]:
                wins = sum(g and not b for g, b in zip(good[m], good[names[0]], strict=True))
                losses = sum(b and not g for g, b in zip(good[m], good[names[0]], strict=True))
                row["methods"][m].update(wins=wins, losses=losses, p=sign_test(wins, losses))
        rows.append(row)
    return rows


def _n(x: float | None, fmt: str) -> str:
    return "not reached" if x is None else fmt.format(x)


def seeds_markdown(comparison: dict[str, Any]) -> str:
    """The per-seed table, the paired sentences and the concept × seed table, as Markdown."""
    seeds, concepts = comparison["seeds"], comparison["concepts"]
    rows = ["| method | seed | good within the ladder | samples to good (median) | seconds to good (median) | "
            "hidden object good at |", "|---|---:|---:|---:|---:|---:|"]
    for m in comparison["methods"]:
        per = comparison["per_method"][m]
        hidden = []
        for s in seeds:
            row = per["seeds"][str(s)]
            h = row["hidden"]
            text = "—" if h is None else ("no" if h[0] is None else f"{h[0]} ({h[1]:.1f} s)")
            hidden.append(text)
            rows.append(f"| {m} | {s} | {row['good']}/{row['of']} | {_n(row['samples_median'], '{:.0f}')} | "
                        f"{_n(row['seconds_median'], '{:.1f}')} | {text} |")
        p = per["pooled"]
        rows.append(f"| {m} | all, pooled | {p['good']}/{p['of']} (per seed {p['per_seed_mean']:.1f} ± "
                    f"{p['per_seed_sd']:.1f}) | {_n(p['samples_median'], '{:.0f}')} | "
                    f"{_n(p['seconds_median'], '{:.1f}')} | {', '.join(hidden)} |")
    lines = [f"* `{other}` against `{v['against']}`: good where `{v['against']}` was not on {v['wins']} concept × "
             f"seed cells, the reverse on {v['losses']} (two-sided sign test p = {v['p']:.2g})."
             for other, v in comparison["paired"].items()]
    if "speedup" in comparison:
        lines.append(speedup_markdown(comparison["speedup"]))
    stops = _at_points_markdown(comparison)
    head = ("| concept | " + " | ".join(f"{m} (seeds {', '.join(map(str, seeds))})" for m in comparison["methods"])
            + " |")
    table = [head, "|---|" + "---:|" * len(comparison["methods"])]
    for c in concepts:
        parts = []
        for m in comparison["methods"]:
            got = comparison["per_method"][m]["concepts"][c]
            parts.append(f"{sum(g is not None for g in got)}/{len(seeds)}: "
                         + " · ".join("–" if g is None else str(g) for g in got))
        table.append(f"| {c} | " + " | ".join(parts) + " |")
    return "\n\n".join(["\n".join(rows), "\n".join(lines), *stops, "\n".join(table)])


def _at_points_markdown(comparison: dict[str, Any]) -> list[str]:
    """The sentence and table of ``at_points`` (nothing when the runs carry no ladder points)."""
    rows = comparison.get("at_points") or []
    if not rows:
        return []
    base = comparison["methods"][0]
    out = ["| method | " + " | ".join(f"{r['samples']} samples" for r in rows) + " |",
           "|---|" + "---:|" * len(rows)]
    for m in comparison["methods"]:
        cells = []
        for r in rows:
            v = r["methods"][m]
            text = f"{v['good']}/{v['of']} ({v['seconds_mean']:.1f} s)"
            if m != base:
                text += f", +{v['wins']} −{v['losses']}"
            cells.append(text)
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return [f"Good *at* each ladder point — the word a run stopped there gives — pooled over the seeds (mean CPU "
            f"seconds to the point; +won −lost: cells good there where `{base}` was not, and the reverse):",
            "\n".join(out)]


def seeds_picture(comparison: dict[str, Any], path: Path) -> Path:
    """Rows concepts, columns method × seed; the colour is the good point (samples, log scale), grey never good."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    methods, seeds, concepts = comparison["methods"], comparison["seeds"], comparison["concepts"]
    grid = np.full((len(concepts), len(methods) * len(seeds)), np.nan)
    for j, (m, i) in enumerate((m, i) for m in methods for i in range(len(seeds))):
        for r, c in enumerate(concepts):
            g = comparison["per_method"][m]["concepts"][c][i]
            if g is not None:
                grid[r, j] = math.log2(g)
    fig, ax = plt.subplots(figsize=(2.5 + 0.6 * grid.shape[1], 1.2 + 0.3 * len(concepts)))
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="#d0d0d0")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def at_points_picture(comparison: dict[str, Any], path: Path) -> Path | None:
    """Share of concept × seed cells good at each ladder point against the mean CPU seconds to it, one line per
    method: what a run stopped at that point gives (``None`` when the runs carry no ladder points)."""
    rows = comparison.get("at_points") or []
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for m in comparison["methods"]:
        xs = [r["methods"][m]["seconds_mean"] for r in rows]
        ys = [r["methods"][m]["good"] / r["methods"][m]["of"] for r in rows]
        ax.plot(xs, ys, marker="o", label=m)
        for r, x, y in zip(rows, xs, ys, strict=True):
            ax.annotate(str(r["samples"]), (x, y), fontsize=6, textcoords="offset points", xytext=(3, 3))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))  # seconds, not 10^x
    # label the 2s, 3s and 5s between decades only: all eight minor labels run into each other near the top decade
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda x, _: f"{x:g}" if f"{x:g}".lstrip("0.")[:1] in ("2", "3", "5") else ""))
    ax.set_xlabel("CPU seconds of training to the ladder point (mean over cells; labels: samples)")
    ax.set_ylabel("share of concept × seed cells good there")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Good at each ladder point, seeds {', '.join(map(str, comparison['seeds']))}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["at_points_picture", "collect", "compare_seeds", "seeds_markdown", "seeds_picture", "sign_test"]
