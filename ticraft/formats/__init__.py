"""Read and write every textual-inversion embedding layout; detect layouts; load files safely.

=================  ====================================================  ==========================
layout             what the file holds                                   written by
=================  ====================================================  ==========================
diffusers          ``{token: Tensor[N, D]}`` (.safetensors or .bin)       diffusers examples
diffusers-sdxl     two such files: ``x`` (clip_l) and ``x_2`` (clip_g)    diffusers SDXL example
a1111              ``string_to_param`` dict + name/step (.pt;             AUTOMATIC1111
                   .safetensors: ``emb_params`` + header fields)
a1111-png          PNG text chunk ``sd-ti-embedding`` (base64 JSON)       AUTOMATIC1111
kohya              ``{"emb_params": T}``                                  kohya-ss sd-scripts
kohya-sdxl         ``{"clip_l": T, "clip_g": T}``                         sd-scripts, A1111, ComfyUI
paper              ``string_to_param`` as a pickled ``nn.ParameterDict``  rinongal/textual_inversion
=================  ====================================================  ==========================

Layouts are detected from content, never from the suffix. Every problem — a missing, empty,
truncated or damaged file, an unknown layout, vectors of the wrong width, a pickle that would
run code — is one :class:`FormatError` naming the file.

Safety: no full unpickler ever runs. Torch files are scanned opcode by opcode first and refused
if their pickle imports anything beyond tensors, dicts and ``nn.ParameterDict``; then
``torch.load(weights_only=True)`` loads them (see :mod:`ticraft.formats._torch`).

Round trips are exact (vectors bit for bit, dtype kept). Token, family and meta travel in a
``"ticraft"`` metadata record where the layout has room for one (safetensors headers, A1111 .pt,
PNG); a diffusers ``.bin`` keeps the token only, a kohya ``.pt`` nothing but the vectors.

>>> import tempfile, torch
>>> from ticraft.concept import Concept
>>> c = Concept("<cat-toy>", {"clip": torch.randn(2, 768)}, meta={"steps": 500})
>>> d = tempfile.mkdtemp()
>>> [p.name for p in write_concept(c, d + "/cat-toy.pt", layout="a1111")]
['cat-toy.pt']
>>> detect_layout(d + "/cat-toy.pt")
'a1111'
>>> back = read_concept(d + "/cat-toy.pt")
>>> back.token, back.family, back.meta, torch.equal(back.vectors["clip"], c.vectors["clip"])
('<cat-toy>', 'sd1', {'steps': 500}, True)
"""

from __future__ import annotations

from pathlib import Path

from ticraft.concept import Concept, ConceptError, check_finite
from ticraft.formats import a1111, diffusers, kohya, png, sd3_flux, xti
from ticraft.formats._common import FLOAT_DTYPES, LAYOUTS, FormatError, atomic_write, encoder_keys_ok, where
from ticraft.formats._load import Loaded, classify, load
from ticraft.formats.png import read_png_embedding, write_png_embedding

#: Layouts :func:`write_concept` can produce (the paper code's pickled ParameterDict is read-only).
WRITABLE = ("diffusers", "diffusers-sdxl", "a1111", "a1111-png", "kohya", "kohya-sdxl", "kohya-xti",
            "ticraft-xti") + sd3_flux.WRITABLE


def detect_layout(path: str | Path) -> str:
    """The layout of an embedding file, one of :data:`LAYOUTS`.

    A diffusers file with a companion (``x.safetensors`` + ``x_2.safetensors``) or with SDXL-only
    widths is ``"diffusers-sdxl"``. Raises :class:`FormatError` for unknown, damaged or empty files.

    >>> import tempfile, torch
    >>> from ticraft.concept import Concept
    >>> p = write_concept(Concept("<x>", {"clip": torch.zeros(1, 768)}), tempfile.mkdtemp() + "/x.bin")[0]
    >>> detect_layout(p)
    'diffusers'
    """
    loaded = load(path)
    layout = classify(loaded)
    if layout == "diffusers" and diffusers.find_pair(loaded) is not None:
        return "diffusers-sdxl"
    if layout == "a1111-png":
        png.embedded_json(loaded.path, loaded.data)  # a PNG is only an embedding if it carries one
    return layout


def read_concepts(path: str | Path, *, token: str | None = None, family: str | None = None,
                  companion: str | Path | None = None) -> list[Concept]:
    """Every concept in an embedding file (a diffusers dict may hold several tokens).

    Args:
        path: the file; its layout is detected.
        token: rename the concept of a one-concept file; in a several-token file, keep only this token.
        family: the model family (``"sd1"``, ``"sd2"``, ``"sdxl"``, ``"toy"``, ``"custom"``); it must fit
            the vectors' widths. Default: the file's ticraft metadata, else guessed from the widths.
        companion: the other file of a diffusers SDXL pair, when it is not named ``x`` / ``x_2``.
    """
    loaded = load(path)
    layout = classify(loaded)
    if companion is not None and layout != "diffusers":
        raise FormatError(f"{where(path)}: companion= applies to diffusers SDXL pairs, but this file is {layout!r}")
    concepts = _parse(loaded, layout, family=family, companion=companion)
    return _apply_token(concepts, token, loaded.path)


def read_concept(path: str | Path, *, token: str | None = None, family: str | None = None,
                 companion: str | Path | None = None) -> Concept:
    """The one concept in an embedding file (see :func:`read_concepts` for the arguments).

    Its token is ``token=`` if given, else the file's own (ticraft metadata, A1111 ``name``,
    diffusers key), else the file stem as ``"<stem>"``. A file holding several tokens needs
    ``token=`` to pick one; the error lists them.

    >>> import tempfile, torch
    >>> from ticraft.concept import Concept
    >>> p = write_concept(Concept("<a>", {"clip": torch.ones(1, 1024)}), tempfile.mkdtemp() + "/a.safetensors")[0]
    >>> read_concept(p).family, read_concept(p, token="<b>").token
    ('sd2', '<b>')
    """
    concepts = read_concepts(path, token=token, family=family, companion=companion)
    if len(concepts) > 1:
        tokens = ", ".join(c.token for c in concepts)
        raise FormatError(f"{where(path)}: the file holds {len(concepts)} tokens ({tokens}); pick one with token=")
    return concepts[0]


def _parse(loaded: Loaded, layout: str, *, family: str | None, companion: str | Path | None) -> list[Concept]:
    if layout == "diffusers":
        pair = diffusers.find_pair(loaded, companion)
        if isinstance(pair, str):
            raise FormatError(pair)
        if pair is not None:
            return diffusers.parse_pair(*pair, family=family)
        return diffusers.parse(loaded, family=family)
    if layout in ("a1111", "paper"):
        return a1111.parse(loaded, family=family, layout=layout)
    if layout in ("kohya", "kohya-sdxl"):
        return kohya.parse(loaded, family=family)
    if layout == "a1111-png":
        return png.parse(loaded.path, loaded.data, family=family)
    if layout in sd3_flux.LAYOUTS:
        return sd3_flux.parse(loaded, layout, family=family)
    if layout in ("kohya-xti", "ticraft-xti"):
        return xti.parse(loaded, family=family, layout=layout)
    raise FormatError(f"{where(loaded.path)}: no reader for layout {layout!r}")  # unreachable


def _apply_token(concepts: list[Concept], token: str | None, path: Path) -> list[Concept]:
    if token is None:
        return concepts
    if not isinstance(token, str) or not token.strip():
        raise FormatError(f"{where(path)}: token= must be a non-empty string, got {token!r}")
    if len(concepts) == 1:
        only = concepts[0]
        return [only if only.token == token else only.replace(token=token)]
    picked = [c for c in concepts if c.token == token]
    if not picked:
        tokens = ", ".join(c.token for c in concepts)
        raise FormatError(f"{where(path)}: no token {token!r} in the file; it holds {tokens}")
    return picked


def write_concept(concept: Concept, path: str | Path, layout: str = "diffusers") -> list[Path]:
    """Write ``concept`` in ``layout`` atomically and return the files written.

    ``diffusers``: ``.safetensors`` or ``.bin`` by suffix; an SDXL concept becomes two files,
    ``x.safetensors`` (clip_l) and ``x_2.safetensors`` (clip_g) — ``diffusers-sdxl`` says the same and
    insists on SDXL. ``a1111``: ``.pt`` (or ``.safetensors``). ``kohya``: one file, ``emb_params``
    or, for SDXL, ``clip_l`` + ``clip_g`` (``kohya-sdxl`` insists on SDXL). ``a1111-png``: a ``.png``.

    >>> import tempfile, torch
    >>> from ticraft.concept import Concept
    >>> xl = Concept("<xl>", {"clip_l": torch.zeros(1, 768), "clip_g": torch.zeros(1, 1280)})
    >>> [p.name for p in write_concept(xl, tempfile.mkdtemp() + "/xl.safetensors")]
    ['xl.safetensors', 'xl_2.safetensors']
    """
    if not isinstance(concept, Concept):
        raise FormatError(f"{where(path)}: write_concept needs a Concept, got {type(concept).__name__}")
    if layout not in WRITABLE:
        hint = "; the paper layout is read-only: write 'a1111', which holds the same dict" if layout == "paper" else ""
        raise FormatError(f"{where(path)}: cannot write layout {layout!r}{hint}; writable: {', '.join(WRITABLE)}")
    flow = sd3_flux.handles(concept) or layout in sd3_flux.WRITABLE  # SD3/Flux: T5 vectors, their own layouts
    if not flow and not encoder_keys_ok(concept.vectors):
        raise FormatError(
            f"{where(path)}: concept {concept.token!r} has encoders {sorted(concept.vectors)}; "
            "files hold 'clip' (one encoder) or 'clip_l' + 'clip_g' (SDXL)"
        )
    for key, t in concept.vectors.items():
        if t.dtype not in FLOAT_DTYPES:
            raise FormatError(
                f"{where(path)}: concept {concept.token!r} vectors[{key!r}] have unsupported dtype {t.dtype}")
        try:  # vectors may have been edited in place since the Concept checked them
            check_finite(t, f"concept {concept.token!r} vectors[{key!r}]")
        except ConceptError as exc:
            raise FormatError(f"{where(path)}: {exc}") from None
    if layout.endswith("-sdxl") and not concept.is_sdxl:
        raise FormatError(f"{where(path)}: layout {layout!r} needs an SDXL concept (clip_l + clip_g vectors)")
    p = Path(path)
    if layout in ("kohya-xti", "ticraft-xti"):
        return atomic_write(xti.build(concept, p, layout))
    if concept.layers > 1:  # other tools would read L·N rows as one N-vector word
        raise FormatError(f"{where(path)}: concept {concept.token!r} has vectors per cross-attention layer "
                          f"({concept.layers} layers); write layout {xti.layout_for(concept)!r}, or flatten it to one "
                          "token first")
    if flow:
        return atomic_write(sd3_flux.build(concept, p, layout))
    if layout == "a1111-png":
        return [write_png_embedding(concept, p)]
    builder = {"diffusers": diffusers.build, "diffusers-sdxl": diffusers.build, "a1111": a1111.build,
               "kohya": kohya.build, "kohya-sdxl": kohya.build}[layout]
    return atomic_write(builder(concept, p))


__all__ = [
    "LAYOUTS",
    "WRITABLE",
    "FormatError",
    "detect_layout",
    "read_concept",
    "read_concepts",
    "read_png_embedding",
    "write_concept",
    "write_png_embedding",
]
