"""Pieces every layout module shares: the error type, tensor checks, family rules, metadata, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from ticraft.concept import FAMILY_ENCODERS, Concept, ConceptError, guess_family
from ticraft.errors import TicraftError

#: Every layout ticraft can read; ``detect_layout`` returns one of these.
LAYOUTS = ("diffusers", "diffusers-sdxl", "a1111", "a1111-png", "kohya", "kohya-sdxl", "paper",
           "comfyui", "diffusers-t5", "onetrainer",  # these three: SD3/Flux (formats/sd3_flux.py)
           "kohya-xti", "ticraft-xti")  # per-layer (P+/XTI) concepts, formats/xti.py

#: Float dtypes an embedding may hold; round trips keep them bit for bit.
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

#: Safetensors header key holding ticraft's own JSON (token, family, meta).
META_KEY = "ticraft"
META_VERSION = 1

#: A1111 stores the CLIP id of its placeholder "*" (265 in the SD-1 vocabulary) beside the vectors.
A1111_STAR_ID = 265

SDXL_KEYS = ("clip_l", "clip_g")


class FormatError(TicraftError):
    """An embedding file could not be read or written; the message names the file and what is wrong.

    >>> raise FormatError("x.pt: the file is empty")
    Traceback (most recent call last):
    ...
    ticraft.formats.FormatError: x.pt: the file is empty
    """


FormatError.__module__ = "ticraft.formats"  # its public home (tracebacks, pickling)


def where(path: str | Path) -> str:
    """The file name as messages show it."""
    return str(path)


def token_from_stem(path: str | Path) -> str:
    """The default token for a file that names none: its stem in angle brackets.

    >>> token_from_stem("embeds/cat-toy.safetensors"), token_from_stem("<dog>.pt")
    ('<cat-toy>', '<dog>')
    """
    stem = Path(path).stem
    if stem.startswith("<") and stem.endswith(">"):
        return stem
    return f"<{stem}>"


def as_matrix(value: Any, path: str | Path, what: str) -> torch.Tensor:
    """Check one stored embedding and return it as a plain ``[N, D]`` CPU tensor (dtype kept).

    ``what`` says where in the file the value sits (``"key 'emb_params'"``) for the error message.
    """
    if not isinstance(value, torch.Tensor):
        raise FormatError(f"{where(path)}: {what} should be a tensor of vectors, found {type(value).__name__}")
    if value.layout != torch.strided or value.is_quantized:
        raise FormatError(f"{where(path)}: {what} is a {value.layout} tensor; expected a dense float tensor")
    if value.dtype not in FLOAT_DTYPES:
        raise FormatError(
            f"{where(path)}: {what} has dtype {value.dtype}; embeddings are float16, bfloat16, float32 or float64"
        )
    t = value.detach()
    if type(t) is not torch.Tensor:  # a Parameter or another subclass: keep the data only
        t = t.as_subclass(torch.Tensor)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise FormatError(f"{where(path)}: {what} has shape {tuple(value.shape)}; expected [N, D] vectors")
    # Own the memory: nothing may alias a loader's buffers or another key's storage.
    return t.to("cpu").contiguous().clone()


def encoder_keys_ok(keys: Iterable[str]) -> bool:
    keys = set(keys)
    return keys == {"clip"} or keys == set(SDXL_KEYS)


def check_family(family: str, dims: Mapping[str, int], path: str | Path, source: str) -> None:
    """Raise unless vectors of widths ``dims`` can belong to ``family``.

    Families are told apart by their encoder keys; single-encoder families with a fixed width
    (sd1 768, sd2 1024) must match it. SDXL is recognised by its two keys alone, so tiny test
    pipelines that stand in for it (e.g. 32/64 wide) stay readable.
    """
    if family not in FAMILY_ENCODERS:
        raise FormatError(f"{where(path)}: unknown family {family!r} ({source}); known: {', '.join(FAMILY_ENCODERS)}")
    expected = FAMILY_ENCODERS[family]
    if set(expected) != set(dims):
        raise FormatError(
            f"{where(path)}: family {family!r} ({source}) needs encoders {sorted(expected)}, "
            f"the file has {sorted(dims)}"
        )
    if family == "sdxl":
        return
    for key, width in dims.items():
        want = expected[key]
        if want is not None and want != width:
            raise FormatError(
                f"{where(path)}: vectors are {width}-wide but family {family!r} ({source}) needs {want}-wide vectors"
            )


def resolve_family(dims: Mapping[str, int], path: str | Path, *, argument: str | None,
                   declared: str | None) -> str | None:
    """The concept's family: the caller's ``family=`` if given, else the file's metadata, else a guess.

    Whatever is asserted must fit the vectors (see :func:`check_family`); the guess uses the
    encoder keys (``clip_l`` + ``clip_g`` → sdxl) and, for one encoder, the width.
    """
    if argument is not None:
        check_family(argument, dims, path, "given family=")
        return argument
    if declared is not None:
        check_family(declared, dims, path, "from the file's metadata")
        return declared
    if set(dims) == set(SDXL_KEYS):
        return "sdxl"
    return guess_family(dims)


def make_concept(token: str, vectors: dict[str, torch.Tensor], path: str | Path, *, family_arg: str | None,
                 declared_family: str | None = None, meta: dict[str, Any] | None = None) -> Concept:
    """Build a :class:`Concept`, turning every complaint into a :class:`FormatError` about ``path``."""
    family = resolve_family({k: int(v.shape[1]) for k, v in vectors.items()}, path,
                            argument=family_arg, declared=declared_family)
    try:
        return Concept(token=token, vectors=vectors, family=family, meta=dict(meta or {}))
    except ConceptError as exc:
        raise FormatError(f"{where(path)}: {exc}") from exc


# ---------------------------------------------------------------------------------------- metadata
def encode_meta(concept: Concept, **extra: Any) -> str:
    """ticraft's JSON record of a concept (token, family, meta) for a file header.

    >>> c = Concept("<a>", {"clip": torch.zeros(1, 4)}, family="toy", meta={"steps": 3})
    >>> decode_meta(encode_meta(c), "x")["meta"]
    {'steps': 3}
    """
    record = {"version": META_VERSION, "token": concept.token, "family": concept.family, "meta": concept.meta, **extra}
    try:
        return json.dumps(record, ensure_ascii=False, allow_nan=True, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"concept {concept.token!r}: its meta cannot be stored as JSON ({exc})") from exc


def decode_meta(text: Any, path: str | Path) -> dict[str, Any] | None:
    """Parse ticraft's JSON record; ``None`` when absent. A malformed record is an error, not ignored."""
    if text is None:
        return None
    try:
        record = json.loads(text) if isinstance(text, (str, bytes)) else text
    except ValueError as exc:
        raise FormatError(f"{where(path)}: the {META_KEY!r} metadata is not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise FormatError(f"{where(path)}: the {META_KEY!r} metadata should be a JSON object")
    token, family, meta = record.get("token"), record.get("family"), record.get("meta", {})
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise FormatError(f"{where(path)}: the {META_KEY!r} metadata has a bad token {token!r}")
    if family is not None and not isinstance(family, str):
        raise FormatError(f"{where(path)}: the {META_KEY!r} metadata has a bad family {family!r}")
    if not isinstance(meta, dict):
        raise FormatError(f"{where(path)}: the {META_KEY!r} metadata has a non-object 'meta'")
    return record


# ------------------------------------------------------------------------------------------ writing
def atomic_write(files: list[tuple[Path, bytes]]) -> list[Path]:
    """Write each ``(path, data)`` atomically: a temp file in the same folder, fsync, then ``os.replace``.

    All temp files are written before any is moved into place, so a crash leaves either the old
    files or the new ones (a pair of files is swapped back to back, not as one transaction).
    """
    from ticraft.io import atomic_write_many

    try:
        return atomic_write_many(files)
    except OSError as exc:
        raise FormatError(f"{files[0][0]}: could not write ({exc})") from exc

