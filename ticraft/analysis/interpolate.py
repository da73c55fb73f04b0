"""Interpolation between two concepts: the vector path, and a rendered strip with one seed across it.

The path is ``steps`` frames at ``t = i / (steps − 1)``, so the first frame is ``a`` and the last is ``b`` exactly
(bit-equal copies). Spherical interpolation (``slerp``, default) keeps the norm on a straight line between the two
norms while turning the direction; ``lerp`` is the straight line, whose midpoint of two far-apart vectors is shorter
than either.

A concept with a single vector (a plain word) broadcasts against one with N: its vector is repeated N times, the
same as ``match="pad"``. Other different vector counts (2 and 3) cannot be interpolated row by row: pass
``match="pad"`` (repeat the last vector of the shorter one) or ``match="merge"`` (resample it), see
:func:`ticraft.concept.match_count`; the shorter concept's endpoint is then its padded/merged form.

>>> import torch
>>> a = Concept("<a>", {"clip": torch.tensor([[1.0, 0.0]])}, family="toy")
>>> b = Concept("<b>", {"clip": torch.tensor([[0.0, 2.0]])}, family="toy")
>>> [round(f.t, 2) for f in interpolation_path(a, b, steps=3)]
[0.0, 0.5, 1.0]
>>> round(interpolation_path(a, b, steps=3)[1].concept.norms()["clip"][0], 4)   # slerp: norm halfway from 1 to 2
1.5
>>> three = Concept("<c>", {"clip": torch.ones(3, 2)}, family="toy")
>>> interpolation_path(a, three, steps=3)[0].concept.vectors["clip"].tolist()   # a's one vector, repeated
[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

from ticraft.concept import (
    FAMILY_ENCODERS,
    Concept,
    ConceptError,
    VectorCountError,
    broadcast,
    keep_norm,
    layout_meta,
    lerp,
    match_count,
    slerp,
    vectors_text,
)

if TYPE_CHECKING:
    from PIL import Image

    from ticraft.generate.sample import ProgressCallback
    from ticraft.models.backbone import Backbone

Mode = Literal["slerp", "lerp"]
Match = Literal["pad", "merge"]
MODES: tuple[str, ...] = ("slerp", "lerp")
#: PNG text chunk holding how an analysis image was made (JSON).
ANALYSIS_CHUNK = "ticraft-analysis"


@dataclass(frozen=True)
class Frame:
    """One point of the path: ``t`` and the concept there (token ``<interp-i>`` so frames can share a prompt)."""

    t: float
    concept: Concept


def frame_ts(steps: int) -> list[float]:
    """``steps`` values from 0 to 1 with exact endpoints.

    >>> frame_ts(5)
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if steps < 2:
        raise ConceptError(f"an interpolation needs at least 2 steps (the two endpoints), got {steps}")
    return [i / (steps - 1) for i in range(steps)]


def match_advice(tokens: tuple[str, str], counts: tuple[int, int], spelling: str = 'match="{}"') -> str:
    """Why two vector counts need a choice and how to make it; ``spelling`` writes a mode (the CLI: ``--match {}``).

    >>> match_advice(("<a>", "<b>"), (2, 3), "--match {}")[:70]
    '<a> has 2 vectors and <b> has 3: choose how to match them, --match pad'
    """
    return (f"{tokens[0]} has {vectors_text(counts[0])} and {tokens[1]} has {counts[1]}: choose how to match them, "
            f"{spelling.format('pad')} (repeat the last vector / truncate) or {spelling.format('merge')} "
            "(resample the vectors); a single vector needs no choice (it is repeated)")


def match_pair(a: Concept, b: Concept, match: Match | None, count: int | None = None) -> tuple[Concept, Concept]:
    """Bring ``a`` and ``b`` to one vector count (``count``, default the larger), or explain how to.

    With ``match=None`` a single vector broadcasts (is repeated to the other's count, as ``match="pad"`` does).

    Raises:
        VectorCountError: the counts differ, neither is 1, and ``match`` is ``None`` (the message names
            ``match="pad"`` / ``match="merge"``; :func:`match_advice` words it otherwise).
    """
    a.check_compatible(b, same_count=False)
    if a.num_vectors == b.num_vectors and count is None:
        return a, b
    if match is None and count is None and 1 in (a.num_vectors, b.num_vectors):
        return broadcast(a, b)
    if match is None:
        tokens, counts = (a.token, b.token), (a.num_vectors, b.num_vectors)
        raise VectorCountError(match_advice(tokens, counts), tokens, counts)
    if match not in ("pad", "merge"):
        raise ConceptError(f"unknown match mode {match!r}: use 'pad' or 'merge'")
    n = count or max(a.num_vectors, b.num_vectors)
    return match_count(a, n, match), match_count(b, n, match)


def interpolation_path(
    a: Concept,
    b: Concept,
    *,
    steps: int = 8,
    mode: Mode = "slerp",
    match: Match | None = None,
    count: int | None = None,
    token_prefix: str = "interp",
) -> list[Frame]:
    """The ``steps`` frames from ``a`` to ``b`` (first frame equals ``a``, last equals ``b``, exactly).

    Args:
        mode: ``slerp`` (spherical, norms interpolated linearly) or ``lerp`` (straight line).
        match: how to reconcile different vector counts (``pad`` or ``merge``); ``None`` broadcasts a single
            vector (repeats it, as ``pad``) and refuses other different counts.
        count: vector count to match to (default: the larger of the two).
        token_prefix: frame ``i`` is named ``<{token_prefix}-{i}>``.
    """
    if mode not in MODES:
        raise ConceptError(f"unknown interpolation mode {mode!r}: use slerp or lerp")
    a2, b2 = match_pair(a, b, match, count)
    # Record the match only where it changed a count: equal counts pass through untouched, and a frame saying
    # "merge" then would claim a resampling that never happened.
    applied = match if (a2.num_vectors, b2.num_vectors) != (a.num_vectors, b.num_vectors) else None
    fn = slerp if mode == "slerp" else lerp
    frames = []
    for i, t in enumerate(frame_ts(steps)):
        c = keep_norm(fn(a2, b2, t))  # directional concepts stay on their norm
        c = c.replace(token=f"<{token_prefix}-{i}>",
                      meta={**layout_meta(c), "derived": mode, "t": t, "from": a.token, "to": b.token,
                            **({"match": applied} if applied else {})})
        frames.append(Frame(t, c))
    return frames


@dataclass
class StripResult:
    """A rendered interpolation: the frames, one image per frame, the labelled strip and where it was saved."""

    frames: list[Frame]
    images: list["Image.Image"]
    strip: "Image.Image"
    path: Path | None = None
    vector_paths: list[Path] = field(default_factory=list)


def check_prompt(prompt: str) -> None:
    """Refuse a strip prompt without ``{}`` (callers run it before writing anything, e.g. ``--save-vectors``).

    >>> check_prompt("a photo of {}")
    >>> check_prompt("a photo")
    Traceback (most recent call last):
    ...
    ticraft.concept_checks.ConceptError: the prompt 'a photo' needs a {} where the interpolated concept goes
    """
    if "{}" not in prompt:
        raise ConceptError(f"the prompt {prompt!r} needs a {{}} where the interpolated concept goes")


def render_interpolation(
    backbone: "Backbone",
    a: Concept,
    b: Concept,
    *,
    steps: int = 8,
    mode: Mode = "slerp",
    match: Match | None = None,
    prompt: str = "a photo of {}",
    negative: str = "",
    seed: int = 0,
    sample_steps: int | None = None,
    guidance: float | None = None,
    batch_size: int = 8,
    out: str | Path | None = None,
    library: Any = None,
    callback: "ProgressCallback | None" = None,
) -> StripResult:
    """Render one image per frame with the same seed (only the concept changes along the strip).

    ``callback(step, total)`` follows every denoising iteration, as in :func:`ticraft.generate.sample.generate`; raising
    from it (e.g. a UI's cancel) stops the strip.

    ``prompt`` holds ``{}`` where the interpolated concept goes; other ``<tokens>`` in it come from ``library``.
    The strip is labelled with ``t`` and, when ``out`` is given, saved there as PNG with the settings in its
    metadata.

    >>> res = render_interpolation(bb, a, b, steps=5, seed=7, out="strip.png")   # doctest: +SKIP
    """
    from ticraft.generate.sample import SampleSpec, generate
    from ticraft.imaging import make_strip, save_png_text

    check_prompt(prompt)
    frames = interpolation_path(a, b, steps=steps, mode=mode, match=match)
    specs = [SampleSpec(prompt=prompt.replace("{}", f.concept.token), negative=negative, seed=seed, steps=sample_steps,
                        guidance=guidance) for f in frames]
    images = generate(backbone, specs, library=library, concepts=[f.concept for f in frames], batch_size=batch_size,
                      callback=callback)
    strip = make_strip(images, [f"t={f.t:.2f}" for f in frames])
    result = StripResult(frames=frames, images=list(images), strip=strip)
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        settings = {"kind": "interpolation", "from": a.token, "to": b.token, "mode": mode, "steps": steps,
                    "match": frames[0].concept.meta.get("match"), "prompt": prompt, "negative": negative, "seed": seed,
                    "sample_steps": sample_steps, "guidance": guidance, "t": [f.t for f in frames]}
        save_png_text(strip, path, {ANALYSIS_CHUNK: json.dumps(settings)})
        result.path = path
    return result


#: Encoder-key sets a frame file can hold: those of a known family (one CLIP, SDXL, SD3, Flux).
_FILE_KEY_SETS = {frozenset(encoders) for encoders in FAMILY_ENCODERS.values()}


def frame_layout(concept: Concept) -> str:
    """The embedding-file layout a frame of ``concept``'s kind is written in (see :mod:`ticraft.formats`).

    Per-layer (XTI) concepts: ``kohya-xti`` (16 layers of one CLIP) or ``ticraft-xti``; SD3/Flux: ``comfyui``
    (``clip_l``, ``clip_g``, ``t5xxl``); otherwise ``kohya`` (``emb_params``) or ``kohya-sdxl`` (``clip_l`` +
    ``clip_g`` in one file), which A1111 and ComfyUI read too. Each holds every encoder and ticraft's record
    (token, family, meta), so :func:`ticraft.formats.read_concept` gives the frame back whole.

    Raises:
        FormatError: no layout holds this kind of concept whole (checked before anything is written).

    >>> import torch
    >>> frame_layout(Concept("<a>", {"clip_l": torch.ones(1, 8), "t5": torch.ones(1, 16)}, family="flux"))
    'comfyui'
    """
    from ticraft.formats import FormatError, sd3_flux, xti

    keys = sorted(concept.vectors)
    if frozenset(keys) not in _FILE_KEY_SETS:
        raise FormatError(f"no embedding-file layout holds a concept with encoders {keys}: a file holds one model "
                          "family's (clip; clip_l + clip_g; clip_l + clip_g + t5; clip_l + t5)")
    per_layer = xti.layout_for(concept)
    if per_layer is not None and sd3_flux.handles(concept):
        # xti's own layout names CLIP encoders only: T5 rows would be written but never read back.
        raise FormatError("no embedding-file layout holds a per-layer (XTI) concept with T5 vectors (per-layer "
                          "files hold CLIP encoders only); flatten the endpoints to one token first")
    if per_layer is not None:
        return per_layer
    if sd3_flux.handles(concept):
        return "comfyui"
    return "kohya-sdxl" if concept.is_sdxl else "kohya"


def save_frames(frames: Sequence[Frame], folder: str | Path) -> list[Path]:
    """Write each frame as one embedding file in ticraft's layout for its kind (:func:`frame_layout`).

    Every encoder is written (SD3's and Flux's T5 too) and a per-layer concept keeps its layers; ticraft's record
    in each file carries the frame's token, family and meta (``t``, the endpoints, the method), so
    :func:`ticraft.formats.read_concept` loads back exactly the frame (``ticraft library import`` reads them too).

    A kind that no file holds whole is refused before anything is written; the files are written beside
    each other in a hidden folder and moved in together, so a failure part-way leaves none of them.
    """
    import os
    import tempfile

    from ticraft.formats import FormatError, write_concept

    layouts = [frame_layout(f.concept) for f in frames]  # refuse up front, before the folder exists
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FormatError(f"{folder} is a file; give a folder to save the frames in")
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"interp_{i:02d}_t{f.t:.3f}.safetensors" for i, f in enumerate(frames)]
    with tempfile.TemporaryDirectory(dir=folder, prefix=".interp-") as staging:
        staged = [p for f, name, layout in zip(frames, names, layouts, strict=True)
                  for p in write_concept(f.concept, Path(staging) / name, layout=layout)]
        paths = []
        for p in staged:
            os.replace(p, folder / p.name)
            paths.append(folder / p.name)
    return paths


__all__ = [
    "Frame",
    "MODES",
    "StripResult",
    "check_prompt",
    "frame_layout",
    "frame_ts",
    "interpolation_path",
    "match_advice",
    "match_pair",
    "render_interpolation",
    "save_frames",
]
