"""Seconds to a good concept against the reference recipe, paired over seeds (issue 15's "≥ 5×" goal).

One seed's ratio swings with which concepts happen to get good. Over seeds the comparison pools every concept × seed
cell both methods ran: the ratio of the pooled medians of seconds to a good concept (reference ÷ ours). When the
reference got good on fewer than half of the cells its median is "later than its whole ladder", and the ratio is a
lower bound: the median CPU seconds the reference spent to the top of its ladder ÷ ours. The same per seed, and the
median of the per-cell ratios over the cells both got good — the easy concepts, where the reference's small early
updates can win — so a reader sees both sides.

>>> speedup_over_seeds(cells, "plain", "diffusers-recipe", seeds=[0, 1, 2], concepts=["zorb", "c01"])  # doctest: +SKIP
{'ratio': 6.4, 'bound': '>', 'per_seed': {...}, 'cells_median': 0.7, 'both_good': 21, ...}
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

REFERENCE = "diffusers-recipe"


def _seconds(run: dict[str, Any]) -> float:
    return math.inf if run["good_seconds"] is None else float(run["good_seconds"])


def _top_seconds(run: dict[str, Any]) -> float | None:
    """CPU seconds to the run's last judged ladder point (``None`` for a run recorded without points)."""
    points = run.get("points") or []
    return float(max(points, key=lambda p: int(p["samples"]))["seconds"]) if points else None


def _ratio(ours: list[dict[str, Any]], ref: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled-median ratio of two aligned lists of runs: ``=`` measured, ``>`` a lower bound, or ``None``."""
    mine = statistics.median(_seconds(r) for r in ours)
    theirs = statistics.median(_seconds(r) for r in ref)
    if math.isinf(mine):
        return {"ratio": None, "bound": None, "ours_seconds": None, "ref_seconds": None}
    if math.isfinite(theirs):
        return {"ratio": theirs / mine, "bound": "=", "ours_seconds": mine, "ref_seconds": theirs}
    tops = [t for t in (_top_seconds(r) for r in ref) if t is not None]
    top = statistics.median(tops) if tops else None
    return {"ratio": None if top is None else top / mine, "bound": ">", "ours_seconds": mine, "ref_seconds": top}


def speedup_over_seeds(cells: dict[tuple[str, int, str], dict[str, Any]], ours: str, ref: str, *,
                       seeds: Sequence[int], concepts: Sequence[str]) -> dict[str, Any]:
    """Reference ÷ ours in seconds to a good concept, pooled over every seed × concept cell, per seed, and per cell.

    Args:
        cells: runs keyed by (method, seed, concept), as :func:`ticraft.bench.seeds.collect` gives them.
        ours, ref: the method compared and the reference (both must have run every seed × concept).
        seeds, concepts: the cells to pool.

    Returns:
        ``ratio`` and ``bound`` (``"="`` measured, ``">"`` lower bound because the reference was not good on most
        cells within its ladder, ``None`` when ours was not), the seconds behind them, ``per_seed`` (the same per
        seed), and over the cells both got good ``cells_median`` (median per-cell ratio) with ``both_good``,
        ``only_ours`` and ``only_ref`` counts.
    """
    keys = [(s, c) for s in seeds for c in concepts]
    pooled = _ratio([cells[(ours, *k)] for k in keys], [cells[(ref, *k)] for k in keys])
    per_seed = {str(s): _ratio([cells[(ours, s, c)] for c in concepts], [cells[(ref, s, c)] for c in concepts])
                for s in seeds}
    both = [_seconds(cells[(ref, *k)]) / _seconds(cells[(ours, *k)]) for k in keys
            if math.isfinite(_seconds(cells[(ref, *k)])) and math.isfinite(_seconds(cells[(ours, *k)]))]
    only_ours = sum(cells[(ours, *k)]["good_seconds"] is not None and cells[(ref, *k)]["good_seconds"] is None
                    for k in keys)
    only_ref = sum(cells[(ref, *k)]["good_seconds"] is not None and cells[(ours, *k)]["good_seconds"] is None
                   for k in keys)
    return {"ours": ours, "ref": ref, **pooled, "per_seed": per_seed, "cells": len(keys), "both_good": len(both),
            "cells_median": statistics.median(both) if both else None, "only_ours": only_ours, "only_ref": only_ref}


def speedup_markdown(s: dict[str, Any]) -> str:
    """One paragraph: the pooled ratio (or bound), per seed, and the per-cell counterpoint."""
    def text(r: dict[str, Any]) -> str:
        if r["ratio"] is None:
            return "no ratio (ours not good on most cells)" if r["bound"] is None else "no ratio (no ladder points)"
        sign = "> " if r["bound"] == ">" else ""
        return f"{sign}{r['ratio']:.1f}× ({r['ref_seconds']:.1f} s ÷ {r['ours_seconds']:.1f} s)"

    seeds = ", ".join(f"seed {k}: {text(v)}" for k, v in s["per_seed"].items())
    bound = ("; the reference was good on fewer than half the cells, so its median is later than its whole ladder "
             "and the ratio is a lower bound (its median seconds to the ladder's top ÷ ours)"
             if s["bound"] == ">" else "")
    cells = ("" if s["cells_median"] is None else
             f" Over the {s['both_good']} cells both got good the median per-cell ratio is "
             f"**{s['cells_median']:.1f}×**;")
    return (f"* Seconds to a good concept, `{s['ref']}` ÷ `{s['ours']}`, pooled over {s['cells']} concept × seed "
            f"cells: **{text(s)}**{bound}. Per seed: {seeds}.{cells} only `{s['ours']}` got good on "
            f"{s['only_ours']} cells, only `{s['ref']}` on {s['only_ref']}.")


__all__ = ["REFERENCE", "speedup_markdown", "speedup_over_seeds"]
