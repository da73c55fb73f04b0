"""The style probe: style similarity to the concept's pictures and content kept, with and without the style."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol, Sequence

from ticraft.concept import Concept
from ticraft.errors import TicraftError

if TYPE_CHECKING:
    from PIL import Image

    from ticraft.analysis.clip import Clip
    from ticraft.models.backbone import Backbone

from ticraft.analysis.probe_common import ProbeError, Renderer, sample_renderer, seeds_for


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


def _check_template(template: str) -> None:
    if "{content}" not in template or "{style}" not in template:
        raise ProbeError(f"the style template {template!r} needs both {{content}} and {{style}}")


def check_style_inputs(contents: Sequence[str], template: str | None = None) -> None:
    """Refuse what would quietly change the probe: an empty content prompt (scored as if the style were perfect)
    and an empty template (falsy, so the default one would be used instead)."""
    if not contents:
        raise ProbeError("give at least one content prompt (--content \"a red circle\")")
    if any(not c.strip() for c in contents):
        raise ProbeError("a --content prompt is empty: give what to draw, e.g. --content \"a red circle\"")
    if template is not None:
        if not template.strip():
            raise ProbeError("--template is empty: give one with {content} and {style}, or leave it out for the "
                             "default")
        _check_template(template)


def fill_style(template: str, content: str, style: str) -> str:
    """``template`` with ``{content}`` and ``{style}`` filled (plain replacement: other braces are left alone).

    >>> fill_style("{content} in {style} style", "a red circle", "<glimmic>")
    'a red circle in <glimmic> style'
    """
    _check_template(template)
    return template.replace("{content}", content).replace("{style}", style)


def run_style(style_token: str, contents: Sequence[str], *, references: Sequence["Image.Image"], renderer: Renderer,
              scorer: StyleScorer, template: str, n: int = 4, seed: int = 0) -> StyleReport:
    """Render each content prompt with and without the style (same seeds) and score both measures."""
    check_style_inputs(contents, template)
    if not references:
        raise ProbeError(f"{style_token} has no training images to compare the style with; add them to the library "
                         f"entry or pass --reference")
    seeds = seeds_for(n, seed)
    rows = []
    for content in contents:
        styled_prompt = fill_style(template, content, style_token)
        originals = renderer([content] * n, seeds)
        styled = renderer([styled_prompt] * n, seeds)
        rows.append(StyleRow(content, styled_prompt, scorer.style(styled, references),
                             scorer.content(styled, originals), list(originals), list(styled)))
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


PICTURE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")


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
        if not p.is_dir():
            files.append(p)
            continue
        pictures = sorted(q for q in p.iterdir() if q.suffix.lower() in PICTURE_SUFFIXES)
        if not pictures:
            # said here: later, an empty list reads as "the concept has no training images"
            raise ProbeError(f"the reference folder {p} has no pictures ({', '.join(PICTURE_SUFFIXES)})")
        files += pictures
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
    check_style_inputs(contents, template)  # before the judge or the renderer load
    refs = list(references) if references is not None else reference_images(library, style.token)
    if scorer is None:
        from ticraft.analysis.judges import choose_judge

        model = choose_judge(judge, backbone.family, clip, what="the style probe", error=ProbeError)
        scorer = ToyStyleScorer() if model is None else ClipStyleScorer(model)  # type: ignore[assignment]
    assert scorer is not None
    rnd = renderer or sample_renderer(backbone, library=library, concepts=[style], steps=steps, guidance=guidance,
                                      batch_size=batch_size)
    report = run_style(style.token, contents, references=refs, renderer=rnd, scorer=scorer,
                       template=style_template(backbone.family) if template is None else template, n=n, seed=seed)
    if out is not None:
        report.grid = style_grid(report, out)
    return report


__all__ = [
    "ClipStyleScorer",
    "StyleReport",
    "StyleRow",
    "ToyStyleScorer",
    "check_style_inputs",
    "fill_style",
    "probe_style",
    "reference_images",
    "run_style",
    "style_grid",
    "style_template",
]
