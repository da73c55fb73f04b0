"""Per-method summary of a bench result: seconds to a good concept, quality at the top, DVAR's verdicts.

* **good point** of a run: its first ladder point with reconstruction ≥ 90 % and faithful editability ≥ 80 %;
* **median over the suite** of the good points, in samples and in seconds; a run that never got good counts as
  infinitely late (so the median is "not reached" when more than half never did);
* **DVAR**: where the early-stopping rule would have stopped the run — *before* the good point, *at* it (between the
  good point and the next ladder point), *after* it, or never within the ladder; runs that never got good are counted
  apart.
"""

from __future__ import annotations

import math
import statistics
from typing import Any


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    m = statistics.median(values)
    return None if math.isinf(m) else float(m)


def dvar_verdict(run: dict[str, Any]) -> str | None:
    """``before`` / ``at`` / ``after`` / ``never`` (no stop in the ladder) / ``no good point``; None without DVAR."""
    if not run.get("dvar"):
        return None
    good, stop = run.get("good_samples"), run.get("dvar_stop_samples")
    if good is None:
        return "no good point"
    if stop is None:
        return "never"
    samples = [p["samples"] for p in run["points"]]
    later = [x for x in samples if x > good]
    if stop < good:
        return "before"
    if not later or stop < later[0]:
        return "at"
    return "after"


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.pstdev(xs) if len(xs) > 1 else 0.0)


def _method_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    samples = [float(r["good_samples"]) if r["good_samples"] is not None else math.inf for r in runs]
    seconds = [float(r["good_seconds"]) if r["good_seconds"] is not None else math.inf for r in runs]
    total_samples = sum(r["points"][-1]["samples"] for r in runs if r["points"])
    total_seconds = sum(r["points"][-1]["seconds"] for r in runs if r["points"])
    tops = [r["points"][-1] for r in runs if r["points"]]
    verdicts: dict[str, int] = {}
    for r in runs:
        v = dvar_verdict(r)
        if v is not None:
            verdicts[v] = verdicts.get(v, 0) + 1
    rec, rec_sd = _mean_sd([p["reconstruction"] for p in tops])
    fai, fai_sd = _mean_sd([p["faithful_editability"] for p in tops])
    pap, pap_sd = _mean_sd([p["paper_editability"] for p in tops])
    recol = [p["recolour_faithful"] for p in tops if p.get("recolour_faithful") is not None]
    return {
        "runs": len(runs),
        "reached": sum(1 for r in runs if r["good_samples"] is not None),
        "good_samples_median": _median(samples),
        "good_seconds_median": _median(seconds),
        "samples_per_second": total_samples / total_seconds if total_seconds > 0 else None,
        "top": {"reconstruction": rec, "reconstruction_sd": rec_sd, "faithful_editability": fai,
                "faithful_editability_sd": fai_sd, "paper_editability": pap, "paper_editability_sd": pap_sd,
                "recolour_faithful": statistics.fmean(recol) if recol else None},
        "dvar": verdicts,
        "startup_seconds_median": _median([r["startup_seconds"] for r in runs if r.get("startup_seconds") is not None]),
    }


def main_shots(runs: list[dict[str, Any]]) -> int:
    """The picture count of the main suite: the most pictures any run had (4 unless only few-shot runs are there)."""
    return max((int(r.get("shots", 4)) for r in runs), default=4)


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """``{method: {...}}`` over the main suite (the most pictures), ``few_shot`` per method × picture count when
    several counts ran, and the speed-up of ticraft's default over the reference recipe when both ran."""
    main = main_shots(result["runs"])
    out: dict[str, Any] = {"methods": {}, "shots": main}
    by_method: dict[str, list[dict[str, Any]]] = {}
    for run in result["runs"]:
        if int(run.get("shots", 4)) == main:
            by_method.setdefault(run["method"], []).append(run)
    for name, runs in by_method.items():
        out["methods"][name] = _method_summary(runs)
    counts = sorted({int(r.get("shots", 4)) for r in result["runs"]})
    if len(counts) > 1:
        few: dict[str, dict[str, Any]] = {}
        for run in result["runs"]:
            few.setdefault(run["method"], {}).setdefault(str(run.get("shots", 4)), []).append(run)
        out["few_shot"] = {m: {k: _method_summary(v) for k, v in sorted(per.items(), key=lambda kv: -int(kv[0]))}
                           for m, per in few.items()}
    main_runs = [r for r in result["runs"] if int(r.get("shots", 4)) == main]
    out["speedup"] = speedup(out["methods"], result["settings"]["ladder"], runs=main_runs)
    return out


def merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs of the same ladder and judge with different methods, concepts or picture counts
    (for example one process per method, or a few-shot run beside the main one); the summary is recomputed."""
    from ticraft.bench.suite import BenchError

    first = results[0]
    for r in results[1:]:
        for key in ("ladder", "n", "eval_steps", "threads", "seed", "quick"):
            if r["settings"][key] != first["settings"][key]:
                raise BenchError(f"cannot merge bench results: {key} differs ({r['settings'][key]} vs "
                                 f"{first['settings'][key]})")
    out = {**first, "methods": {}, "runs": [], "pairs": [], "total_seconds": 0.0, "concepts": {}, "references": [],
           "cpu_seconds": []}
    out["settings"] = {**first["settings"], "methods": [], "shots": []}
    seen: set[tuple[str, str]] = set()
    for r in results:
        out["methods"].update(r["methods"])
        out["concepts"].update(r.get("concepts") or {})
        words = {x["word"] for x in out["references"]}
        out["references"] += [x for x in r.get("references") or [] if x["word"] not in words]
        for key in ("methods", "shots"):
            out["settings"][key] += [x for x in r["settings"][key] if x not in out["settings"][key]]
        for run in r["runs"]:  # the same concept × method twice (a rerun): the later file wins
            if (run["method"], run["concept"]) in seen:
                out["runs"] = [x for x in out["runs"] if (x["method"], x["concept"]) != (run["method"], run["concept"])]
            seen.add((run["method"], run["concept"]))
            out["runs"].append(run)
        have_truth = any(q["method"] == "true words" for q in out["pairs"])
        out["pairs"] += [p for p in r.get("pairs") or [] if p["method"] != "true words" or not have_truth]
        out["total_seconds"] = max(out["total_seconds"], r["total_seconds"])
        out["cpu_seconds"] += list(r.get("cpu_seconds") or [])
    out["summary"] = summarize(out)
    return out


def speedup(methods: dict[str, Any], ladder: list[int], ours: str = "plain", ref: str = "diffusers-recipe",
            runs: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """Median seconds to a good concept, reference ÷ ours, over the concepts both ran (``per_concept`` ratios too);
    a lower bound when the reference never got there."""
    if ours not in methods or ref not in methods:
        return None
    a, b = dict(methods[ours]), dict(methods[ref])
    per_concept: dict[str, float | None] = {}
    if runs is not None:
        mine = {r["concept"]: r for r in runs if r["method"] == ours}
        theirs = {r["concept"]: r for r in runs if r["method"] == ref}
        common = [c for c in mine if c in theirs]

        def secs(r: dict[str, Any]) -> float:
            return float(r["good_seconds"]) if r["good_seconds"] is not None else math.inf

        a["good_seconds_median"] = _median([secs(mine[c]) for c in common])
        b["good_seconds_median"] = _median([secs(theirs[c]) for c in common])
        for c in common:
            x, y = secs(mine[c]), secs(theirs[c])
            per_concept[c] = y / x if math.isfinite(x) and math.isfinite(y) else None
    # where both got good: the typical per-concept ratio, and how often only one of them got there
    both = [r for r in per_concept.values() if r is not None]
    extra = {"per_concept": per_concept, "both_good": len(both),
             "per_concept_median": statistics.median(both) if both else None,
             "only_ours": sum(1 for c, r in per_concept.items() if r is None and mine[c]["good_seconds"] is not None)
             if runs is not None else 0,
             "only_ref": sum(1 for c, r in per_concept.items() if r is None and theirs[c]["good_seconds"] is not None)
             if runs is not None else 0}
    if a["good_seconds_median"] is None:
        return {"ratio": None, "bound": None, **extra,
                "note": f"{ours} did not reach the good point within the ladder on most concepts"}
    if b["good_seconds_median"] is not None:
        return {"ratio": b["good_seconds_median"] / a["good_seconds_median"], "bound": "=", **extra,
                "note": f"{ref} ÷ {ours}, median seconds to a good concept over the concepts both ran"}
    # the reference never got good: it needs more than its whole ladder
    top = ladder[-1] / b["samples_per_second"] if b["samples_per_second"] else None
    return {"ratio": top / a["good_seconds_median"] if top else None, "bound": ">", **extra,
            "note": f"{ref} did not reach the good point within {ladder[-1]} samples (median); ratio is a lower bound"}
