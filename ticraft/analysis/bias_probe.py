"""The bias probe: the distribution of one attribute over a prompt's images, its entropy and distance to uniform."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ticraft.concept import Concept

if TYPE_CHECKING:
    from PIL import Image

    from ticraft.models.backbone import Backbone

from ticraft.analysis.probe_common import (
    OTHER,
    Classifier,
    ProbeError,
    Renderer,
    make_classifier,
    sample_renderer,
    seeds_for,
)


# ------------------------------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Distribution:
    """How often each label was read, and how far that is from balanced.

    ``labels`` are the declared labels (plus ``other`` when some reading fell outside them); ``entropy`` is in bits;
    ``tv_uniform`` is the total variation distance to the uniform distribution over the declared labels.
    """

    labels: tuple[str, ...]
    counts: dict[str, int]
    shares: dict[str, float]
    entropy: float
    max_entropy: float
    tv_uniform: float
    majority: str
    majority_share: float

    @property
    def normalized_entropy(self) -> float:
        """Entropy over its maximum (1 = balanced over the declared labels)."""
        return self.entropy / self.max_entropy if self.max_entropy > 0 else 0.0


def distribution(values: Sequence[str], labels: Sequence[str]) -> Distribution:
    """Summarise ``values`` over ``labels`` (readings outside ``labels`` count as ``other``).

    >>> d = distribution(["a", "a", "b", "zzz"], labels=["a", "b"])
    >>> d.counts, round(d.entropy, 3), d.tv_uniform, d.majority
    ({'a': 2, 'b': 1, 'other': 1}, 1.5, 0.25, 'a')
    """
    if not values:
        raise ProbeError("no readings to summarise")
    declared = tuple(dict.fromkeys(labels))
    if not declared:
        raise ProbeError("no labels to summarise over")
    raw = Counter(values)
    counts = {lab: raw.get(lab, 0) for lab in declared}
    other = sum(c for v, c in raw.items() if v not in counts)
    if other:
        counts[OTHER] = other
    n = len(values)
    shares = {lab: c / n for lab, c in counts.items()}
    entropy = -sum(p * math.log2(p) for p in shares.values() if p > 0) + 0.0
    u = 1.0 / len(declared)
    tv = 0.5 * (sum(abs(shares[lab] - u) for lab in declared) + shares.get(OTHER, 0.0))
    majority = max(counts, key=lambda lab: (counts[lab], -list(counts).index(lab)))
    return Distribution(labels=tuple(counts), counts=counts, shares=shares, entropy=entropy,
                        max_entropy=math.log2(len(declared)), tv_uniform=round(tv, 12),
                        majority=majority, majority_share=shares[majority])


# ---------------------------------------------------------------------------------------------------- bias
@dataclass
class BiasReport:
    """One prompt's bias probe."""

    prompt: str
    attribute: str
    judge: str
    seeds: list[int]
    readings: list[str]
    distribution: Distribution
    images: list["Image.Image"] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        d = self.distribution
        return {"prompt": self.prompt, "attribute": self.attribute, "judge": self.judge, "n": len(self.readings),
                "seeds": [self.seeds[0], self.seeds[-1]], "counts": d.counts, "shares": d.shares,
                "entropy_bits": d.entropy, "max_entropy_bits": d.max_entropy,
                "normalized_entropy": d.normalized_entropy,
                "tv_uniform": d.tv_uniform, "majority": d.majority, "majority_share": d.majority_share,
                "readings": self.readings}


@dataclass
class BiasResult:
    """A bias probe of one or more prompts (same seeds), with the chart path once saved."""

    reports: list[BiasReport]
    chart: Path | None = None

    @property
    def tv_reduction(self) -> float | None:
        """How much closer to uniform the second prompt is than the first (positive = fairer)."""
        if len(self.reports) < 2:
            return None
        return self.reports[0].distribution.tv_uniform - self.reports[1].distribution.tv_uniform

    def to_dict(self) -> dict[str, object]:
        return {"reports": [r.to_dict() for r in self.reports], "tv_reduction": self.tv_reduction,
                "chart": str(self.chart) if self.chart else None}


def check_compare(compare: str | None) -> None:
    """Refuse an empty second prompt: it is falsy, so the probe would quietly run the first prompt alone."""
    if compare is not None and not compare.strip():
        raise ProbeError("--compare is empty: give a second prompt to probe, or leave the option out")


def check_labels(labels: Sequence[str], classifier: Classifier) -> None:
    """Refuse labels the judge never reads for its attribute: every image would land in 'other' with no error."""
    unknown = [lab for lab in labels if lab not in classifier.labels]
    if unknown:
        raise ProbeError(f"the {classifier.name} never reads {', '.join(map(repr, unknown))} for "
                         f"{classifier.attribute}; --labels must be among {', '.join(classifier.labels)}")


def run_bias(prompts: Sequence[str], *, renderer: Renderer, classifier: Classifier, n: int = 64, seed: int = 0,
             labels: Sequence[str] | None = None) -> BiasResult:
    """Probe each prompt with the same ``n`` seeds: render, classify, summarise.

    ``labels`` restricts the labels the distribution is balanced over (e.g. ``["white", "green"]``); readings
    outside them count as ``other``.
    """
    if not prompts:
        raise ProbeError("give at least one prompt to probe")
    if labels:
        check_labels(labels, classifier)  # before anything renders
    seeds = seeds_for(n, seed)
    labs = tuple(labels) if labels else classifier.labels
    reports = []
    for prompt in prompts:
        images = renderer([prompt] * n, seeds)
        readings = classifier(images)
        reports.append(BiasReport(prompt, classifier.attribute, classifier.name, seeds, readings,
                                  distribution(readings, labs), list(images)))
    return BiasResult(reports)


def probe_bias(
    backbone: "Backbone",
    prompt: str,
    *,
    compare: str | None = None,
    attribute: str = "colour",
    n: int = 64,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    clip: str | Path | None = None,
    template: str | None = None,
    judge: str = "auto",
    library: Any = None,
    concepts: Iterable[Concept] = (),
    steps: int | None = None,
    guidance: float | None = None,
    batch_size: int = 8,
    out: str | Path | None = None,
    renderer: Renderer | None = None,
    classifier: Classifier | None = None,
) -> BiasResult:
    """Bias probe of ``prompt`` (and ``compare``), with a bar chart written to ``out`` when given.

    >>> res = probe_bias(bb, "a photo of a <doctor>", compare="a photo of a <fair-doctor>",
    ...                  attribute="colour", labels=["white", "green"], n=64, out="bias.png")   # doctest: +SKIP
    >>> res.reports[0].distribution.majority, res.tv_reduction                                 # doctest: +SKIP
    ('white', 0.38)
    """
    check_compare(compare)
    if classifier is not None and (unread := [k for k, v in (("clip", clip), ("template", template)) if v is not None]
                                   + (["judge"] if judge != "auto" else [])):
        # a given classifier replaces the built-in judges, so these would be accepted and never read
        raise ProbeError(f"{', '.join(unread)} choose the built-in judge; with classifier= given they are not "
                         "read: pass one or the other")
    clf = classifier or make_classifier(backbone.family, attribute, clip=clip, labels=labels, template=template,
                                        judge=judge)
    rnd = renderer or sample_renderer(backbone, library=library, concepts=concepts, steps=steps, guidance=guidance,
                                      batch_size=batch_size)
    result = run_bias([prompt] + ([compare] if compare else []), renderer=rnd, classifier=clf, n=n, seed=seed,
                      labels=labels)
    if out is not None:
        result.chart = bias_chart(result.reports, out)
    return result


def bias_chart(reports: Sequence[BiasReport], path: str | Path, *, title: str | None = None) -> Path:
    """A grouped bar chart of the reports' label shares (one colour per prompt), as PNG."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global state

    if not reports:
        raise ProbeError("nothing to chart")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ProbeError(f"charts are written as PNG: use a .png name, not {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = list(dict.fromkeys(lab for r in reports for lab in r.distribution.labels))
    x = np.arange(len(labels))
    width = 0.8 / len(reports)
    fig = Figure(figsize=(max(6.0, 0.7 * len(labels) * len(reports) + 2), 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for i, r in enumerate(reports):
        d = r.distribution
        ys = [d.shares.get(lab, 0.0) for lab in labels]
        name = f"{r.prompt}  (H={d.entropy:.2f} bits, TV={d.tv_uniform:.2f})"
        ax.bar(x + (i - (len(reports) - 1) / 2) * width, ys, width, label=name)
    if labels and reports:
        declared = [lab for lab in reports[0].distribution.labels if lab != OTHER]
        ax.axhline(1.0 / max(1, len(declared)), color="black", linestyle="--", linewidth=0.8, label="uniform")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
    ax.set_ylabel("share of images")
    ax.set_ylim(0, 1.05)
    ax.set_title(title or f"{reports[0].attribute} · n={len(reports[0].readings)} · {reports[0].judge}")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


__all__ = [
    "BiasReport",
    "BiasResult",
    "Distribution",
    "bias_chart",
    "check_compare",
    "check_labels",
    "distribution",
    "probe_bias",
    "run_bias",
]
