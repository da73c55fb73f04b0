"""The paper's two measures of a learned concept (Gal et al. 2022, §5), with CLIP or with the toy judge.

* **Reconstruction** — how well samples of ``"A photo of S*"`` look like the training images: the mean pairwise CLIP
  image-embedding cosine similarity between every sample and every training image.
* **Editability** — how well prompts that *use* S* are obeyed: for each edited prompt (``"a photo of S* on the
  beach"``), the CLIP cosine between the samples and the prompt's text with S* removed (``"a photo of on the
  beach"``), averaged.

In the toy world the judge gives the exact counterparts: reconstruction is the share of the concept's *identity*
attributes (those its training images agree on, e.g. shape star, colour orange, texture striped) that each sample
shows; editability is the share of edited samples showing the requested attribute (``"a photo of a S* on a green
background"`` → background green).

>>> rep = evaluate_concept(bb, lib.get("<zorb>"), references=imgs, n=8)     # doctest: +SKIP
>>> rep.reconstruction, rep.editability                                       # doctest: +SKIP
(0.95, 0.81)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ticraft.concept import Concept
from ticraft.errors import TicraftError

if TYPE_CHECKING:
    from PIL import Image

    from ticraft.analysis.clip import Clip
    from ticraft.analysis.probes import Renderer
    from ticraft.models.backbone import Backbone

#: The paper's reconstruction prompt.
RECONSTRUCTION_PROMPT = "a photo of {}"
#: Edited prompts in the spirit of the paper's editability set (``{}`` = the concept).
CLIP_EDIT_PROMPTS: tuple[str, ...] = (
    "a photo of {} on the beach",
    "a photo of {} in the jungle",
    "a photo of {} in the snow",
    "an oil painting of {}",
    "a pencil sketch of {}",
    "a photo of {} on top of a wooden table",
)
#: Toy-world attributes a concept can be identified by, and how much its training images must agree on one.
IDENTITY_FIELDS: tuple[str, ...] = ("shape", "colour", "texture", "style")
IDENTITY_AGREEMENT = 0.75


class MetricError(TicraftError):
    """The metrics cannot be computed (no training images, no judge, bad prompt)."""


@dataclass(frozen=True)
class Edit:
    """A toy-world edit: the prompt (``{}`` = concept) and the attribute value it asks for."""

    prompt: str
    field: str
    value: str


@dataclass
class PromptScore:
    """One evaluated prompt: the filled prompt, what it was scored against, and the mean score."""

    prompt: str
    target: str
    score: float
    scores: list[float] = field(default_factory=list)


@dataclass
class EvalReport:
    """``ticraft eval``: reconstruction and editability with their per-prompt breakdown."""

    concept: str
    scorer: str
    n: int
    seed: int
    reconstruction: float
    editability: float
    reconstruction_detail: PromptScore
    edits: list[PromptScore]
    identity: dict[str, str] = field(default_factory=dict)  # toy only
    images: dict[str, list["Image.Image"]] = field(default_factory=dict, repr=False)
    grid: Path | None = None

    def to_dict(self) -> dict[str, object]:
        def ps(p: PromptScore) -> dict[str, object]:
            return {"prompt": p.prompt, "target": p.target, "score": p.score, "scores": p.scores}

        return {"concept": self.concept, "scorer": self.scorer, "n": self.n, "seed": self.seed,
                "reconstruction": self.reconstruction, "editability": self.editability,
                "reconstruction_detail": ps(self.reconstruction_detail), "edits": [ps(e) for e in self.edits],
                "identity": self.identity, "grid": str(self.grid) if self.grid else None}


# ------------------------------------------------------------------------------------------------------ CLIP
def strip_concept(prompt: str, token: str) -> str:
    """The prompt with the concept removed, as the paper scores editability.

    >>> strip_concept("a photo of <cat-toy> on the beach", "<cat-toy>")
    'a photo of on the beach'
    """
    return re.sub(r"\s+", " ", prompt.replace(token, " ")).strip(" ,")


def clip_reconstruction(clip: "Clip", samples: Sequence["Image.Image"], references: Sequence["Image.Image"]
                        ) -> list[float]:
    """Per sample: mean cosine to every training image (their overall mean is the paper's score)."""
    return (clip.image_features(samples) @ clip.image_features(references).T).mean(dim=1).tolist()


def clip_editability(clip: "Clip", samples: Sequence["Image.Image"], text: str) -> list[float]:
    """Per sample: cosine to the text (the prompt with S* removed)."""
    return (clip.image_features(samples) @ clip.text_features([text]).T)[:, 0].tolist()


# ------------------------------------------------------------------------------------------------------- toy
def toy_identity(references: Sequence["Image.Image"], fields: Sequence[str] = IDENTITY_FIELDS,
                 agreement: float = IDENTITY_AGREEMENT) -> dict[str, str]:
    """Attributes the training images agree on (majority share ≥ ``agreement``): the concept's identity."""
    from ticraft.toyworld.judge import judge

    if not references:
        raise MetricError("no training images to read the concept's identity from")
    js = [judge(r) for r in references]
    out = {}
    for f in fields:
        value, count = Counter(getattr(j, f) for j in js).most_common(1)[0]
        if count / len(js) >= agreement:
            out[f] = value
    return out


def toy_edits(identity: dict[str, str]) -> list[Edit]:
    """Edits whose requested value differs from the identity (so obeying them is visible to the judge)."""
    colour = identity.get("colour")
    backgrounds = [c for c in ("green", "blue", "yellow", "black") if c != colour][:2]
    edits = [Edit(f"a photo of a {{}} on a {bg} background", "background", bg) for bg in backgrounds]
    style = identity.get("style", "none")
    if style != "pixelated":  # pixelated objects are always drawn large
        edits.append(Edit("a photo of a small {}", "size", "small"))
    new_style = "outline" if style != "outline" else "pixelated"
    edits.append(Edit(f"a photo of a {{}} in {new_style} style", "style", new_style))
    return edits


def toy_reconstruction(samples: Sequence["Image.Image"], identity: dict[str, str]) -> list[float]:
    """Per sample: share of the identity attributes it shows."""
    from ticraft.toyworld.judge import judge

    if not identity:
        raise MetricError("the training images agree on no attribute (shape, colour, texture, style): "
                          "the toy judge cannot tell what the concept is")
    out = []
    for im in samples:
        j = judge(im)
        out.append(sum(getattr(j, f) == v for f, v in identity.items()) / len(identity))
    return out


def toy_edit_scores(samples: Sequence["Image.Image"], edit: Edit) -> list[float]:
    """Per sample: 1 when the judge reads the requested value."""
    from ticraft.toyworld.judge import judge

    return [float(getattr(judge(im), edit.field) == edit.value) for im in samples]


# ------------------------------------------------------------------------------------------------- evaluate
def _fill(template: str, token: str) -> str:
    if "{}" not in template:
        raise MetricError(f"the prompt {template!r} needs a {{}} where the concept goes")
    return template.replace("{}", token)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def evaluate_concept(
    backbone: "Backbone",
    concept: Concept,
    *,
    references: Sequence["Image.Image"],
    n: int = 8,
    seed: int = 0,
    scorer: str = "auto",
    clip: str | Path | None = None,
    prompts: Sequence[str] | None = None,
    reconstruction_prompt: str | None = None,
    library: Any = None,
    steps: int | None = None,
    guidance: float | None = None,
    batch_size: int = 8,
    out: str | Path | None = None,
    renderer: "Renderer | None" = None,
) -> EvalReport:
    """The paper's reconstruction and editability of ``concept`` (``n`` samples per prompt, seeds from ``seed``).

    Args:
        references: the concept's training images.
        scorer: ``auto`` (toy judge for the toy model without ``clip``, else CLIP), ``toy`` or ``clip``.
        clip: local CLIP folder (required for real models).
        prompts: edited prompts with ``{}`` for the concept (CLIP only, refused with the toy judge, which picks
            judgeable edits itself).
        reconstruction_prompt: default ``"a photo of {}"`` (``"a photo of a {}"`` in the toy world).
        out: write a grid PNG (one row per prompt) there.
    """
    from ticraft.analysis.judges import choose_judge, uses_toy_judge
    from ticraft.analysis.probes import sample_renderer, seeds_for

    use_toy = uses_toy_judge(scorer, backbone.family, clip, error=MetricError, kind="scorer")  # a bad name fails first
    if use_toy and prompts:
        # the toy judge can only score edits it can read (toy_edits), so it never looks at the user's prompts
        raise MetricError("--prompt is read by the CLIP judge only; the toy judge scores its own edits "
                          "(pass --judge clip --clip DIR)")
    if not references:
        raise MetricError(f"{concept.token} has no training images to compare with; add them to its library entry "
                          f"or pass --reference")
    seeds = seeds_for(n, seed)
    rnd = renderer or sample_renderer(backbone, library=library, concepts=[concept], steps=steps, guidance=guidance,
                                      batch_size=batch_size)
    images: dict[str, list[Any]] = {}
    if use_toy:
        identity = toy_identity(references)
        rec_prompt = _fill(reconstruction_prompt or "a photo of a {}", concept.token)
        images[rec_prompt] = rnd([rec_prompt] * n, seeds)
        rec_scores = toy_reconstruction(images[rec_prompt], identity)
        rec = PromptScore(rec_prompt, ", ".join(f"{k}={v}" for k, v in identity.items()), _mean(rec_scores), rec_scores)
        edits = []
        for e in toy_edits(identity):
            p = _fill(e.prompt, concept.token)
            images[p] = rnd([p] * n, seeds)
            s = toy_edit_scores(images[p], e)
            edits.append(PromptScore(p, f"{e.field}={e.value}", _mean(s), s))
        name = "toy judge"
    else:
        model = choose_judge(scorer, backbone.family, clip, what="the paper's metrics", error=MetricError,
                             kind="scorer")
        assert model is not None  # uses_toy_judge said CLIP
        rec_prompt = _fill(reconstruction_prompt or RECONSTRUCTION_PROMPT, concept.token)
        images[rec_prompt] = rnd([rec_prompt] * n, seeds)
        rec_scores = clip_reconstruction(model, images[rec_prompt], references)
        rec = PromptScore(rec_prompt, f"{len(references)} training images", _mean(rec_scores), rec_scores)
        edits = []
        for template in prompts or CLIP_EDIT_PROMPTS:
            p = _fill(template, concept.token)
            text = strip_concept(p, concept.token)
            images[p] = rnd([p] * n, seeds)
            s = clip_editability(model, images[p], text)
            edits.append(PromptScore(p, text, _mean(s), s))
        identity = {}
        name = f"CLIP ({model.path})"
    report = EvalReport(concept=concept.token, scorer=name, n=n, seed=seed, reconstruction=rec.score,
                        editability=_mean([e.score for e in edits]), reconstruction_detail=rec, edits=edits,
                        identity=identity, images=images)
    if out is not None:
        report.grid = eval_grid(report, out)
    return report


def eval_grid(report: EvalReport, path: str | Path) -> Path:
    """One row per evaluated prompt (score in the label), one column per seed."""
    import json

    from ticraft.imaging import make_grid, save_png_text

    rows = [report.reconstruction_detail, *report.edits]
    cells: list[Any] = []
    for r in rows:
        cells += report.images[r.prompt]
    grid = make_grid(cells, rows=len(rows), cols=report.n,
                     row_labels=[f"{r.prompt}\n{r.score:.2f}" for r in rows],
                     col_labels=[f"seed {report.seed + i}" for i in range(report.n)],
                     title=f"{report.concept}: reconstruction {report.reconstruction:.2f}, "
                           f"editability {report.editability:.2f} ({report.scorer})")
    data = {k: v for k, v in report.to_dict().items() if k != "grid"}
    return save_png_text(grid, path, {"ticraft-analysis": json.dumps(data)})


__all__ = [
    "CLIP_EDIT_PROMPTS",
    "Edit",
    "EvalReport",
    "IDENTITY_FIELDS",
    "MetricError",
    "PromptScore",
    "RECONSTRUCTION_PROMPT",
    "clip_editability",
    "clip_reconstruction",
    "eval_grid",
    "evaluate_concept",
    "strip_concept",
    "toy_edit_scores",
    "toy_edits",
    "toy_identity",
    "toy_reconstruction",
]
