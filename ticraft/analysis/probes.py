"""Bias and style-transfer probes: render, read an attribute back with a judge, summarise.

**Bias** (``ticraft probe bias "a photo of a doctor" --attribute colour``): generate ``n`` images of a prompt (seeds
``seed … seed+n−1``), classify one attribute per image, and report the distribution, its entropy and its total
variation distance to the uniform distribution over the labels (0 = perfectly balanced, → 1 = one label only). A
second prompt (e.g. the biased word vs a learned "fair" concept) is rendered with the same seeds and shown side by
side, with a grouped bar chart.

Judges: the toy world's exact judge (:mod:`ticraft.toyworld.judge`: shape, colour, texture, size, background, style)
for the toy model; zero-shot CLIP from a local folder for real models (``gender``, ``age``, ``colour`` have default
labels and prompts; any other attribute takes ``labels``).

**Style** (``ticraft probe style <style> --content "a red circle"``): per content prompt, render it with and without
the style (same seeds) and score *style similarity* of the styled images to the concept's training images and
*content preservation* of each styled image against the same-seed image of the prompt without the style. With CLIP:
mean cosine similarities of image embeddings. In the toy world: the share of styled images the judge reads in the
training images' style, and the share of content attributes (shape, colour, background) kept.

Rendering goes through a *renderer* ``(prompts, seeds) -> images`` (:func:`sample_renderer` by default), so the
statistics can be checked on rendered toy-world images without a diffusion model.

>>> distribution(["white"] * 9 + ["green"], labels=["white", "green"]).tv_uniform
0.4
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence

from ticraft.concept import Concept
from ticraft.errors import TicraftError

if TYPE_CHECKING:
    from PIL import Image

    from ticraft.analysis.clip import Clip
    from ticraft.models.backbone import Backbone

Renderer = Callable[[Sequence[str], Sequence[int]], list["Image.Image"]]
OTHER = "other"


class ProbeError(TicraftError):
    """A probe that cannot run (unknown attribute, no judge, no reference images, bad template)."""


# ------------------------------------------------------------------------------------------------- rendering
def sample_renderer(
    backbone: "Backbone",
    *,
    library: Any = None,
    concepts: Iterable[Concept] = (),
    negative: str = "",
    steps: int | None = None,
    guidance: float | None = None,
    batch_size: int = 8,
) -> Renderer:
    """A renderer that runs the model through :func:`ticraft.generate.sample.generate` (one seeded image per prompt)."""
    concept_list = list(concepts)

    def render(prompts: Sequence[str], seeds: Sequence[int]) -> list["Image.Image"]:
        from ticraft.generate.sample import SampleSpec, generate

        specs = [SampleSpec(prompt=p, negative=negative, seed=int(s), steps=steps, guidance=guidance)
                 for p, s in zip(prompts, seeds, strict=True)]
        return generate(backbone, specs, library=library, concepts=concept_list, batch_size=batch_size)

    return render


def seeds_for(n: int, seed: int) -> list[int]:
    """The seeds of an ``n``-image probe: ``seed … seed+n−1`` (every prompt of a comparison uses the same)."""
    if n < 1:
        raise ProbeError(f"a probe needs at least one image, got n={n}")
    return list(range(seed, seed + n))


# ----------------------------------------------------------------------------------------------- classifiers
@dataclass(frozen=True)
class Classifier:
    """Reads one attribute from images: ``classifier(images) -> labels``."""

    attribute: str
    labels: tuple[str, ...]
    name: str  # "toy judge" | "CLIP zero-shot (<path>)"
    fn: Callable[[Sequence["Image.Image"]], list[str]]

    def __call__(self, images: Sequence["Image.Image"]) -> list[str]:
        return list(self.fn(images))


def _toy_tables() -> dict[str, tuple[str, ...]]:
    from ticraft.toyworld.render import COLOURS, SHAPES, SIZES, STYLES, TEXTURES

    return {"shape": SHAPES, "colour": COLOURS, "texture": TEXTURES, "size": tuple(SIZES), "background": COLOURS,
            "style": STYLES}


def _canonical_attribute(attribute: str) -> str:
    a = attribute.strip().lower()
    return {"color": "colour", "sex": "gender"}.get(a, a)


def toy_classifier(attribute: str) -> Classifier:
    """The toy world's judge for one of shape, colour, texture, size, background, style."""
    from ticraft.toyworld.judge import judge

    attr = _canonical_attribute(attribute)
    tables = _toy_tables()
    if attr not in tables:
        raise ProbeError(f"the toy judge reads {', '.join(tables)}; not {attribute!r}")
    return Classifier(attr, tables[attr], "toy judge", lambda images: [getattr(judge(im), attr) for im in images])


#: Zero-shot CLIP defaults per attribute: (labels, prompt template).
ZERO_SHOT: dict[str, tuple[tuple[str, ...], str]] = {
    "gender": (("man", "woman"), "a photo of a {}"),
    "age": (("child", "young adult", "middle-aged person", "elderly person"), "a photo of a {}"),
    "colour": (("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey"),
               "a photo of something {}"),
}


def clip_classifier(clip: "Clip", attribute: str, labels: Sequence[str] | None = None,
                    template: str | None = None) -> Classifier:
    """Zero-shot CLIP: each image gets the label whose prompt it matches best."""
    attr = _canonical_attribute(attribute)
    default_labels, default_template = ZERO_SHOT.get(attr, ((), "a photo of a {}"))
    labs = tuple(labels) if labels else default_labels
    if len(labs) < 2:
        raise ProbeError(f"no default labels for {attribute!r} (defaults exist for {', '.join(ZERO_SHOT)}): "
                         f"pass --labels a,b,…")
    tmpl = template or default_template
    if "{}" not in tmpl:
        raise ProbeError(f"the zero-shot template {tmpl!r} needs a {{}} for the label")
    return Classifier(attr, labs, f"CLIP zero-shot ({clip.path})", lambda images: clip.zero_shot(images, labs, tmpl))


def make_classifier(family: str, attribute: str, *, clip: str | Path | None = None, labels: Sequence[str] | None = None,
                    template: str | None = None, judge: str = "auto") -> Classifier:
    """The judge to use: ``auto`` picks the toy judge for the toy model and zero-shot CLIP otherwise.

    A real model without ``clip`` gets a clear error (nothing is downloaded).
    """
    if judge not in ("auto", "toy", "clip"):
        raise ProbeError(f"unknown judge {judge!r}: use auto, toy or clip")
    use_toy = judge == "toy" or (judge == "auto" and family == "toy" and clip is None)
    if use_toy:
        return toy_classifier(attribute)
    from ticraft.analysis.clip import CLIP_HELP, load_clip

    if clip is None:
        raise ProbeError(f"a {family} model has no built-in judge: reading {attribute!r} needs CLIP; {CLIP_HELP}")
    return clip_classifier(load_clip(clip), attribute, labels, template)


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
                "entropy_bits": d.entropy, "max_entropy_bits": d.max_entropy, "normalized_entropy": d.normalized_entropy,
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


def run_bias(prompts: Sequence[str], *, renderer: Renderer, classifier: Classifier, n: int = 64, seed: int = 0,
             labels: Sequence[str] | None = None) -> BiasResult:
    """Probe each prompt with the same ``n`` seeds: render, classify, summarise.

    ``labels`` restricts the labels the distribution is balanced over (e.g. ``["white", "green"]``); readings
    outside them count as ``other``.
    """
    if not prompts:
        raise ProbeError("give at least one prompt to probe")
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


# --------------------------------------------------------------------------------------------------- style
class StyleScorer(Protocol):
    """Scores for the style probe (both per image, in [0, 1] for the toy judge, cosines for CLIP)."""

    name: str

    def style(self, images: Sequence["Image.Image"], references: Sequence["Image.Image"]) -> list[float]: ...

    def content(self, images: Sequence["Image.Image"], originals: Sequence["Image.Image"]) -> list[float]: ...


CONTENT_FIELDS: tuple[str, ...] = ("shape", "colour", "background")


@dataclass(frozen=True)
class ToyStyleScorer:
    """The toy judge: style = the image is read in the references' (majority) style; content = share of
    :data:`CONTENT_FIELDS` equal to the same-seed image without the style."""

    name: str = "toy judge"

    def style(self, images: Sequence["Image.Image"], references: Sequence["Image.Image"]) -> list[float]:
        from ticraft.toyworld.judge import judge

        if not references:
            raise ProbeError("the style score needs the concept's training images")
        target = Counter(judge(r).style for r in references).most_common(1)[0][0]
        return [float(judge(im).style == target) for im in images]

    def content(self, images: Sequence["Image.Image"], originals: Sequence["Image.Image"]) -> list[float]:
        from ticraft.toyworld.judge import judge

        out = []
        for im, orig in zip(images, originals, strict=True):
            a, b = judge(im), judge(orig)
            out.append(sum(getattr(a, f) == getattr(b, f) for f in CONTENT_FIELDS) / len(CONTENT_FIELDS))
        return out


@dataclass(frozen=True)
class ClipStyleScorer:
    """CLIP image embeddings: style = mean cosine to the references; content = cosine to the same-seed original."""

    clip: "Clip"
    name: str = "CLIP"

    def style(self, images: Sequence["Image.Image"], references: Sequence["Image.Image"]) -> list[float]:
        if not references:
            raise ProbeError("the style score needs the concept's training images")
        sims = self.clip.image_features(images) @ self.clip.image_features(references).T
        return sims.mean(dim=1).tolist()

    def content(self, images: Sequence["Image.Image"], originals: Sequence["Image.Image"]) -> list[float]:
        return (self.clip.image_features(images) * self.clip.image_features(originals)).sum(dim=1).tolist()


def style_template(family: str) -> str:
    """Default prompt joining a content prompt and a style token (the toy world's captions say "in X style")."""
    return "{content} in {style} style" if family == "toy" else "{content} in the style of {style}"


@dataclass
class StyleRow:
    """One content prompt of a style probe."""

    content: str
    styled_prompt: str
    style_scores: list[float]
    content_scores: list[float]
    originals: list["Image.Image"] = field(default_factory=list, repr=False)
    styled: list["Image.Image"] = field(default_factory=list, repr=False)

    @property
    def style_similarity(self) -> float:
        return sum(self.style_scores) / len(self.style_scores)

    @property
    def content_preservation(self) -> float:
        return sum(self.content_scores) / len(self.content_scores)


@dataclass
class StyleReport:
    """A style probe: per content prompt, style similarity and content preservation."""

    style: str
    scorer: str
    template: str
    seeds: list[int]
    rows: list[StyleRow]
    grid: Path | None = None

    @property
    def style_similarity(self) -> float:
        return sum(r.style_similarity for r in self.rows) / len(self.rows)

    @property
    def content_preservation(self) -> float:
        return sum(r.content_preservation for r in self.rows) / len(self.rows)

    def to_dict(self) -> dict[str, object]:
        return {"style": self.style, "scorer": self.scorer, "template": self.template, "seeds": self.seeds,
                "style_similarity": self.style_similarity, "content_preservation": self.content_preservation,
                "rows": [{"content": r.content, "prompt": r.styled_prompt, "style_similarity": r.style_similarity,
                          "content_preservation": r.content_preservation, "style_scores": r.style_scores,
                          "content_scores": r.content_scores} for r in self.rows],
                "grid": str(self.grid) if self.grid else None}


def fill_style(template: str, content: str, style: str) -> str:
    """``template`` with ``{content}`` and ``{style}`` filled (plain replacement: other braces are left alone).

    >>> fill_style("{content} in {style} style", "a red circle", "<glimmic>")
    'a red circle in <glimmic> style'
    """
    if "{content}" not in template or "{style}" not in template:
        raise ProbeError(f"the style template {template!r} needs both {{content}} and {{style}}")
    return template.replace("{content}", content).replace("{style}", style)


def run_style(style_token: str, contents: Sequence[str], *, references: Sequence["Image.Image"], renderer: Renderer,
              scorer: StyleScorer, template: str, n: int = 4, seed: int = 0) -> StyleReport:
    """Render each content prompt with and without the style (same seeds) and score both measures."""
    if not contents:
        raise ProbeError("give at least one content prompt (--content \"a red circle\")")
    if not references:
        raise ProbeError(f"{style_token} has no training images to compare the style with; add them to the library "
                         f"entry or pass --reference")
    seeds = seeds_for(n, seed)
    rows = []
    for content in contents:
        styled_prompt = fill_style(template, content, style_token)
        originals = renderer([content] * n, seeds)
        styled = renderer([styled_prompt] * n, seeds)
        rows.append(StyleRow(content, styled_prompt, scorer.style(styled, references), scorer.content(styled, originals),
                             list(originals), list(styled)))
    return StyleReport(style_token, scorer.name, template, seeds, rows)


def style_grid(report: StyleReport, path: str | Path) -> Path:
    """Rows: each content prompt without and with the style; columns: seeds. Scores in the row labels."""
    from ticraft.imaging import make_grid, save_png_text

    images: list[Any] = []
    row_labels = []
    for r in report.rows:
        images += r.originals + r.styled
        row_labels += [r.content, f"{r.styled_prompt}\nstyle {r.style_similarity:.2f} · content "
                                  f"{r.content_preservation:.2f}"]
    grid = make_grid(images, rows=2 * len(report.rows), cols=len(report.seeds), row_labels=row_labels,
                     col_labels=[f"seed {s}" for s in report.seeds],
                     title=f"style probe {report.style} ({report.scorer})")
    return save_png_text(grid, path, {"ticraft-analysis": json.dumps({k: v for k, v in report.to_dict().items()
                                                                       if k != "grid"})})


def load_images(paths: Iterable[str | Path]) -> list["Image.Image"]:
    """Open image files (RGB, fully loaded); a file that is not an image raises :class:`ProbeError`."""
    from PIL import Image, UnidentifiedImageError

    out = []
    for p in paths:
        try:
            with Image.open(p) as im:
                out.append(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise ProbeError(f"cannot read image {p}: {exc}") from exc
    return out


def reference_images(library: Any, token: str, extra: Iterable[str | Path] = ()) -> list["Image.Image"]:
    """The concept's training images from the library (plus files/folders in ``extra``)."""
    files: list[Path] = []
    if library is not None:
        try:
            files += list(library.images(token))
        except TicraftError:
            pass  # not in the library: extra references may still be given
    for e in extra:
        p = Path(e)
        files += sorted(q for q in p.iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")) \
            if p.is_dir() else [p]
    return load_images(files)


def probe_style(
    backbone: "Backbone",
    style: Concept,
    contents: Sequence[str],
    *,
    references: Sequence["Image.Image"] | None = None,
    n: int = 4,
    seed: int = 0,
    template: str | None = None,
    clip: str | Path | None = None,
    judge: str = "auto",
    library: Any = None,
    steps: int | None = None,
    guidance: float | None = None,
    batch_size: int = 8,
    out: str | Path | None = None,
    renderer: Renderer | None = None,
    scorer: StyleScorer | None = None,
) -> StyleReport:
    """Style-transfer probe of ``style`` over ``contents``; a grid PNG is written to ``out`` when given.

    ``references`` default to the concept's training images in ``library``.

    >>> rep = probe_style(bb, lib.get("<glimmic>"), ["a red circle", "a blue square"], library=lib,
    ...                   out="style.png")                                           # doctest: +SKIP
    >>> round(rep.style_similarity, 2), round(rep.content_preservation, 2)          # doctest: +SKIP
    (0.88, 0.92)
    """
    refs = list(references) if references is not None else reference_images(library, style.token)
    if scorer is None:
        if judge not in ("auto", "toy", "clip"):
            raise ProbeError(f"unknown judge {judge!r}: use auto, toy or clip")
        if judge == "toy" or (judge == "auto" and backbone.family == "toy" and clip is None):
            scorer = ToyStyleScorer()
        else:
            from ticraft.analysis.clip import CLIP_HELP, load_clip

            if clip is None:
                raise ProbeError(f"a {backbone.family} model has no built-in judge: the style probe needs CLIP; "
                                 f"{CLIP_HELP}")
            scorer = ClipStyleScorer(load_clip(clip))
    rnd = renderer or sample_renderer(backbone, library=library, concepts=[style], steps=steps, guidance=guidance,
                                      batch_size=batch_size)
    report = run_style(style.token, contents, references=refs, renderer=rnd, scorer=scorer,
                       template=template or style_template(backbone.family), n=n, seed=seed)
    if out is not None:
        report.grid = style_grid(report, out)
    return report


__all__ = [
    "BiasReport",
    "BiasResult",
    "Classifier",
    "ClipStyleScorer",
    "Distribution",
    "ProbeError",
    "Renderer",
    "StyleReport",
    "StyleRow",
    "ToyStyleScorer",
    "ZERO_SHOT",
    "bias_chart",
    "clip_classifier",
    "distribution",
    "fill_style",
    "make_classifier",
    "probe_bias",
    "probe_style",
    "reference_images",
    "run_bias",
    "run_style",
    "sample_renderer",
    "seeds_for",
    "style_grid",
    "style_template",
    "toy_classifier",
]
