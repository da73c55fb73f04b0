"""What a bench run shows: a Markdown table, the paper's Fig. 10 as a PNG, and quality-vs-seconds curves.

>>> print(markdown_table(result))                      # doctest: +SKIP
| method | good point (samples, median) | seconds (median) | reached | ...
>>> write_pictures(result, Path("bench-out"))          # doctest: +SKIP
[PosixPath('bench-out/fig10.png'), PosixPath('bench-out/quality_vs_seconds.png')]
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any


def _pct(x: float | None) -> str:
    return "—" if x is None or x != x else f"{x:.0%}"


def _num(x: float | None, fmt: str = "{:.0f}") -> str:
    return "not reached" if x is None else fmt.format(x)


def markdown_table(result: dict[str, Any]) -> str:
    """Per method: median samples and seconds to a good concept, quality at the top of the ladder, DVAR."""
    methods = result["summary"]["methods"]
    top = result["settings"]["ladder"][-1]
    lines = [f"| method | samples to good (median) | seconds to good (median) | good within {top} | samples/s | "
             f"reconstruction @{top} | faithful edit @{top} | paper edit @{top} | recolour @{top} | DVAR stop: "
             "before / at / after / never |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in methods.items():
        t = m["top"]
        d = m["dvar"]
        dv = " / ".join(str(d.get(k, 0)) for k in ("before", "at", "after", "never")) if d else "—"
        if d.get("no good point"):
            dv += f" ({d['no good point']} never good)"
        sps = m["samples_per_second"]
        lines.append(
            f"| {name} | {_num(m['good_samples_median'])} | {_num(m['good_seconds_median'], '{:.1f}')} | "
            f"{m['reached']}/{m['runs']} | {'—' if sps is None else f'{sps:.0f}'} | "
            f"{_pct(t['reconstruction'])} ± {_pct(t['reconstruction_sd'])} | "
            f"{_pct(t['faithful_editability'])} ± {_pct(t['faithful_editability_sd'])} | "
            f"{_pct(t['paper_editability'])} ± {_pct(t['paper_editability_sd'])} | {_pct(t.get('recolour_faithful'))} "
            f"| {dv} |")
    for ref in result.get("references", []):
        lines.append(f"| true word '{ref['word']}' (reference) | — | — | — | — | {_pct(ref['reconstruction'])} | "
                     f"{_pct(ref['faithful_editability'])} | {_pct(ref['paper_editability'])} | "
                     f"{_pct(ref.get('recolour_faithful'))} | — |")
    sp = result["summary"].get("speedup")
    if sp:
        lines += ["", speedup_sentence(sp)]
    return "\n".join(lines)


def speedup_sentence(sp: dict[str, Any]) -> str:
    """The reference-vs-ours line: the ratio of medians, and the per-concept ratios where both got good."""
    if sp.get("ratio"):
        # a lower bound is rounded down, so the printed bound still holds
        shown = f">{math.floor(sp['ratio'] * 10) / 10:.1f}" if sp["bound"] == ">" else f"{sp['ratio']:.1f}"
        head = f"Seconds to a good concept, {sp['note']}: **{shown}×**."
    else:
        head = f"Seconds to a good concept: no ratio of medians ({sp['note']})."
    per = sp.get("per_concept") or {}
    if sp.get("per_concept_median") is not None:
        ratios = ", ".join(f"{c} {r:.1f}×" for c, r in per.items() if r)
        head += (f" Over the {sp['both_good']} concepts both got good the median per-concept ratio is "
                 f"**{sp['per_concept_median']:.1f}×** ({ratios})")
        if sp.get("only_ours") or sp.get("only_ref"):
            head += (f"; only ticraft got good on {sp.get('only_ours', 0)}, "
                     f"only the reference on {sp.get('only_ref', 0)}")
        head += "."
    return head


def few_shot_table(result: dict[str, Any]) -> str:
    """Per method × number of pictures: how many got good, the median good point, quality at the top."""
    few = result["summary"].get("few_shot")
    if not few:
        return ""
    top = result["settings"]["ladder"][-1]
    lines = [f"| method | pictures | good within {top} | samples to good (median) | seconds to good (median) | "
             f"reconstruction @{top} | faithful edit @{top} | paper edit @{top} |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, per in few.items():
        for shots, m in per.items():
            t = m["top"]
            lines.append(f"| {name} | {shots} | {m['reached']}/{m['runs']} | {_num(m['good_samples_median'])} | "
                         f"{_num(m['good_seconds_median'], '{:.1f}')} | {_pct(t['reconstruction'])} | "
                         f"{_pct(t['faithful_editability'])} | {_pct(t['paper_editability'])} |")
    return "\n".join(lines)


def concept_table(result: dict[str, Any]) -> str:
    """Per concept × method: the good point as 'samples (seconds)'."""
    methods = list(result["summary"]["methods"])
    main = result["summary"].get("shots", 4)
    mains = [r for r in result["runs"] if int(r.get("shots", 4)) == main]  # few-shot runs: few_shot_table
    runs = {(r["concept"], r["method"]): r for r in mains}
    concepts = list(dict.fromkeys(r["concept"] for r in mains))
    lines = ["| concept | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for c in concepts:
        cells = []
        for m in methods:
            r = runs.get((c, m))
            if r is None:
                cells.append("")
            elif r["good_samples"] is None:
                p = r["points"][-1]
                cells.append(f"no ({_pct(p['reconstruction'])}/{_pct(p['faithful_editability'])})")
            else:
                cells.append(f"{r['good_samples']} ({r['good_seconds']:.1f} s)")
        desc = result["concepts"].get(c, {}).get("description", "")
        lines.append(f"| {c} {desc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pairs_table(result: dict[str, Any]) -> str:
    rows = result.get("pairs") or []
    if not rows:
        return ""
    lines = ["| concept | method | in learned style: obeyed / faithful | with the biased word: identity kept |",
             "|---|---|---:|---:|"]
    for r in rows:
        a, b = r["in learned style"], r["with biased word"]
        lines.append(f"| {r['concept']} | {r['method']} | {_pct(a['obeyed'])} / {_pct(a['faithful'])} | "
                     f"{_pct(b['identity'])} |")
    return "\n".join(lines)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fig10(result: dict[str, Any], path: Path) -> Path:
    """Reconstruction (x) vs editability (y) at the ladder's top, one point per method, error bars over the suite."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    for i, (name, m) in enumerate(result["summary"]["methods"].items()):
        t = m["top"]
        colour = f"C{i}"
        ax.errorbar(t["reconstruction"], t["faithful_editability"], xerr=t["reconstruction_sd"],
                    yerr=t["faithful_editability_sd"], fmt="o", color=colour, capsize=3, label=f"{name} (faithful)")
        ax.errorbar(t["reconstruction"], t["paper_editability"], yerr=t["paper_editability_sd"], fmt="o",
                    mfc="none", color=colour, capsize=3, alpha=0.6, label=f"{name} (paper)")
    for ref in result.get("references", []):
        ax.scatter([ref["reconstruction"]], [ref["faithful_editability"]], marker="*", s=180, color="black", zorder=5)
        ax.annotate(f"true '{ref['word']}'", (ref["reconstruction"], ref["faithful_editability"]),
                    textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xlabel("reconstruction (identity attributes shown)")
    ax.set_ylabel("editability (filled: faithful, hollow: paper)")
    ax.set_xlim(-0.02, 1.05)
    ax.set_ylim(-0.02, 1.05)
    ax.axvline(0.9, color="grey", lw=0.5, ls="--")
    ax.axhline(0.8, color="grey", lw=0.5, ls="--")
    top = result["settings"]["ladder"][-1]
    main = result["summary"].get("shots", 4)
    count = sum(1 for c in result["concepts"].values() if int(c.get("shots", 4)) == main)
    ax.set_title(f"Fig. 10, toy world: {count} concepts ({main} pictures each) at {top} samples", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def quality_curves(result: dict[str, Any], path: Path) -> Path:
    """Median-over-suite seconds (x, log) against mean reconstruction and faithful editability, per method."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100, sharex=True)
    by_method: dict[str, list[dict[str, Any]]] = {}
    main = result["summary"].get("shots", 4)
    for r in result["runs"]:
        if int(r.get("shots", 4)) == main:  # the main suite's curves (few-shot runs have their own table)
            by_method.setdefault(r["method"], []).append(r)
    for i, (name, runs) in enumerate(by_method.items()):
        ladder = [p["samples"] for p in runs[0]["points"]]
        xs, rec, fai = [], [], []
        for k in range(len(ladder)):
            pts = [r["points"][k] for r in runs if len(r["points"]) > k]
            xs.append(statistics.median(p["seconds"] for p in pts))
            rec.append(statistics.fmean(p["reconstruction"] for p in pts))
            fai.append(statistics.fmean(p["faithful_editability"] for p in pts))
        axes[0].plot(xs, rec, "o-", color=f"C{i}", label=name)
        axes[1].plot(xs, fai, "o-", color=f"C{i}", label=name)
    for ax, label, line in ((axes[0], "reconstruction", 0.9), (axes[1], "faithful editability", 0.8)):
        ax.set_xscale("log")
        ax.set_xlabel("training seconds (CPU, median over the suite)")
        ax.set_ylabel(f"{label} (mean over the suite)")
        ax.axhline(line, color="grey", lw=0.5, ls="--")
        ax.set_ylim(-0.02, 1.05)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_pictures(result: dict[str, Any], folder: Path) -> list[Path]:
    return [fig10(result, folder / "fig10.png"), quality_curves(result, folder / "quality_vs_seconds.png")]


def full_markdown(result: dict[str, Any]) -> str:
    parts = [markdown_table(result), "", concept_table(result)]
    ft = few_shot_table(result)
    if ft:
        parts += ["", ft]
    pt = pairs_table(result)
    if pt:
        parts += ["", pt]
    return "\n".join(parts)
