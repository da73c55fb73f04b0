"""What both probes share: the renderer (prompts and seeds to images), the judges as attribute classifiers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

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

    A real model without ``clip`` gets a clear error (nothing is downloaded); so does a ``template`` for the
    toy judge, which reads the attribute from the picture and has no prompt to fill.
    """
    from ticraft.analysis.judges import choose_judge

    model = choose_judge(judge, family, clip, what=f"reading {attribute!r}", error=ProbeError)
    if model is None and template:
        raise ProbeError("--template is read by the CLIP judge only; the toy judge reads the attribute from the "
                         "picture itself (pass --judge clip --clip DIR)")
    return toy_classifier(attribute) if model is None else clip_classifier(model, attribute, labels, template)


__all__ = [
    "Classifier",
    "ProbeError",
    "Renderer",
    "ZERO_SHOT",
    "clip_classifier",
    "make_classifier",
    "sample_renderer",
    "seeds_for",
    "toy_classifier",
    "OTHER",
]
