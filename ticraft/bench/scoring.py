"""Judging one learned concept exactly: reconstruction, the paper's editability and faithful editability.

Every prompt is a :class:`Probe`: the prompt (``{}`` = the concept's token), what it asks for (``asked``: attribute
→ value the edit requests) and what must survive (``kept``: identity attributes the edit does not override).

* reconstruction — "a photo of a S*" (objects) or held-out content "in S* style" (styles): the share of the
  concept's identity attributes each sample shows (the paper's measure, read exactly);
* paper editability — the share of edited samples that obey the edit (the looser measure of the paper);
* faithful editability — the share that obey the edit **and** keep every identity attribute the edit does not
  override ("S* on a green background" must keep shape, colour, texture and style; "S* in outline style" must keep
  shape and colour). Recolouring ("a photo of a purple S*": recolour, keep shape, texture and style) is judged and
  reported apart (``recolour_faithful``), not averaged in: the toy base model never saw a colour word next to an
  object word, so even the true hidden word scores 0 % on it.

>>> [p.prompt for p in edit_probes({"shape": "star", "colour": "orange", "texture": "striped", "style": "none"})]
['a photo of a {} on a green background', 'a photo of a {} on a blue background', 'a photo of a small {}', \
'a photo of a {} in outline style', 'a photo of a purple {}']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from PIL import Image

    from ticraft.bench.suite import SuiteConcept
    from ticraft.concept import Concept
    from ticraft.models.backbone import Backbone

#: Styles that replace the surface: an edit into one of them overrides texture.
_SURFACE_STYLES = ("outline", "pixelated")


@dataclass(frozen=True)
class Probe:
    """One judged prompt: ``asked`` must be shown, ``kept`` must survive.

    ``kind``: ``rec`` (reconstruction), ``edit`` (averaged into both editabilities), ``style`` (a style concept's
    probe: both), ``extra`` (judged and reported, not averaged in) or ``pair`` (two-concept prompts).
    """

    prompt: str
    kind: str
    asked: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)


def _other_colours(exclude: str | None, k: int, pool: Sequence[str]) -> list[str]:
    return [c for c in pool if c != exclude][:k]


def edit_probes(identity: dict[str, str]) -> list[Probe]:
    """Object edits: two backgrounds, small size, a new style, a new colour — each with what must be kept."""
    colour = identity.get("colour")
    style = identity.get("style", "none")
    out = [Probe(f"a photo of a {{}} on a {bg} background", "edit", {"background": bg}, dict(identity))
           for bg in _other_colours(colour, 2, ("green", "blue", "yellow", "black"))]
    if style != "pixelated":  # pixelated objects are always drawn large
        out.append(Probe("a photo of a small {}", "edit", {"size": "small"}, dict(identity)))
    new_style = "outline" if style != "outline" else "pixelated"
    kept = {k: v for k, v in identity.items() if k not in ("style", "texture")}
    out.append(Probe(f"a photo of a {{}} in {new_style} style", "edit", {"style": new_style}, kept))
    # Recolouring is judged and reported but not averaged in (kind "extra"): the base model never saw a colour word
    # next to an object word (hidden words replace colour + texture + shape in its captions), so even the true
    # hidden word scores 0 % on it — it measures the base model, not the inversion.
    new_colour = _other_colours(colour, 1, ("purple", "cyan", "white"))[0]
    kept = {k: v for k, v in identity.items() if k != "colour"}
    out.append(Probe(f"a photo of a {new_colour} {{}}", "extra", {"colour": new_colour}, kept))
    return out


def style_contents(n: int, seed: int) -> list[Any]:
    """Held-out content (shape, colour, background, size) for style prompts, style field left as ``none``."""
    import numpy as np

    from ticraft.toyworld.render import sample_attributes

    rng = np.random.default_rng(10_000 + seed)
    return [sample_attributes(rng, style="none", texture="plain") for _ in range(n)]


def probes_for(concept: "SuiteConcept", n: int) -> list[tuple[Probe, int]]:
    """Every (probe, samples) pair judging ``concept``: its reconstruction prompt and its edits.

    A style concept's probes are held-out content prompts "a photo of a small red circle on a blue background in
    S* style" (one sample each): reconstruction = the style shows; editability = the content is obeyed.
    """
    if concept.kind == "style":
        from ticraft.toyworld.render import full_prompt

        out = []
        for a in style_contents(n, concept.seed):
            content = {"shape": a.shape, "colour": a.colour, "background": a.background}
            out.append((Probe(full_prompt(a) + " in {} style", "style", content, dict(concept.identity)), 1))
        return out
    return [(Probe("a photo of a {}", "rec", {}, dict(concept.identity)), n)] + [(p, n) for p in
                                                                               edit_probes(concept.identity)]


@dataclass
class Scores:
    """The judge's verdicts on one concept at one point: the three measures and per-prompt detail."""

    reconstruction: float
    faithful: float
    paper: float
    detail: dict[str, dict[str, float]] = field(default_factory=dict)
    recolour: float | None = None
    """Faithful score of the recolouring edit (reported apart, see :func:`edit_probes`)."""

    def to_dict(self) -> dict[str, Any]:
        return {"reconstruction": self.reconstruction, "faithful_editability": self.faithful,
                "paper_editability": self.paper, "recolour_faithful": self.recolour, "prompts": self.detail}


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def judge_probe(images: Sequence["Image.Image"], probe: Probe) -> dict[str, float]:
    """Per probe: ``identity`` (share of ``kept`` shown), ``obeyed`` (all of ``asked``), ``faithful`` (both)."""
    from ticraft.toyworld.judge import judge

    ident, obeyed, faithful = [], [], []
    for im in images:
        j = judge(im)
        kept = [getattr(j, f) == v for f, v in probe.kept.items()]
        asked = all(getattr(j, f) == v for f, v in probe.asked.items())
        ident.append(sum(kept) / len(kept) if kept else 1.0)
        obeyed.append(float(asked))
        faithful.append(float(asked and all(kept)))
    return {"identity": _mean(ident), "obeyed": _mean(obeyed), "faithful": _mean(faithful), "n": float(len(images))}


def combine(results: Sequence[tuple[Probe, dict[str, float]]]) -> Scores:
    """The three measures from judged probes (style probes count for all three: style kept, content obeyed)."""
    rec = [r["identity"] for p, r in results if p.kind in ("rec", "style")]
    edits = [(p, r) for p, r in results if p.kind in ("edit", "style")]
    detail = {p.prompt: r for p, r in results}
    extra = [r["faithful"] for p, r in results if p.kind == "extra"]
    return Scores(reconstruction=_mean(rec), faithful=_mean([r["faithful"] for _, r in edits]),
                  paper=_mean([r["obeyed"] for _, r in edits]), detail=detail,
                  recolour=_mean(extra) if extra else None)


def render_probes(backbone: "Backbone", token_concepts: Sequence["Concept"], jobs: Sequence[tuple[Probe, int]],
                  token: str, *, seed: int, steps: int, batch_size: int = 64) -> list[list["Image.Image"]]:
    """Sample every probe (``{}`` → ``token``) in one batched call; seeds ``seed`` … per probe."""
    from ticraft.generate.sample import SampleSpec, generate

    specs: list[SampleSpec] = []
    spans: list[tuple[int, int]] = []
    for probe, n in jobs:
        start = len(specs)
        specs += [SampleSpec(probe.prompt.replace("{}", token), seed=seed + i, steps=steps) for i in range(n)]
        spans.append((start, len(specs)))
    images = generate(backbone, specs, concepts=list(token_concepts), batch_size=batch_size)
    return [images[a:b] for a, b in spans]


def score_concept(backbone: "Backbone", concept: "Concept", suite_concept: "SuiteConcept", *, n: int, seed: int = 0,
                  steps: int = 10) -> Scores:
    """Judge ``concept`` (learned for ``suite_concept``) on its reconstruction and edit prompts."""
    jobs = probes_for(suite_concept, n)
    images = render_probes(backbone, [concept], jobs, concept.token, seed=seed, steps=steps)
    return combine([(p, judge_probe(ims, p)) for (p, _), ims in zip(jobs, images, strict=True)])


def pair_probes(obj: "SuiteConcept", obj_token: str, style_token: str, bias_token: str) -> list[Probe]:
    """Two-concept prompts for an object concept: in a learned style, and next to the biased word.

    The toy world draws one object per picture, so "two learned objects side by side" has no judgeable answer and
    is not probed. With the biased word ("doctor": mostly a white cross) the object must keep its own identity.
    """
    ident = {k: v for k, v in obj.identity.items() if k != "style"}
    return [
        Probe(f"a photo of a {obj_token} in {style_token} style", "pair", {"style": "glimmic"}, ident),
        Probe(f"a photo of a {bias_token} {obj_token}", "pair", {}, dict(obj.identity)),
    ]
