"""Generation parameters in PNG files, in the text form AUTOMATIC1111-style readers show.

Every image ticraft writes carries a ``parameters`` text chunk::

    a photo of <cat-toy> on the beach
    Negative prompt: blurry
    Steps: 25, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: 3f2a9c01b7, Model: toy, …

(one line in the file, going on with ``TI hashes: "<cat-toy>: 5d41402abc4b", Version: ticraft 0.1.0``).
The last line is ``key: value`` pairs; values holding ``,`` ``:`` or a newline are JSON-quoted (A1111's
rule), so the text parses back exactly::

    >>> text = format_parameters("a <x>", "ugly", steps=4, sampler="euler_a", cfg=7.5, seed=3, width=32, height=32,
    ...                          concept_hashes={"<x>": "abc"})
    >>> p = parse_parameters(text)
    >>> p["prompt"], p["negative"], p["sampler"], p["cfg"], p["size"], p["concept_hashes"]
    ('a <x>', 'ugly', 'euler_a', 7.5, (32, 32), {'<x>': 'abc'})

This module needs only Pillow (``ticraft info`` stays instant).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from PIL import Image

from ticraft.errors import TicraftError
from ticraft.imaging import read_png_text, save_png_text

PARAMETERS_KEY = "parameters"
NEGATIVE_PREFIX = "Negative prompt:"

#: ticraft scheduler name → the sampler label A1111 shows (and reads back).
SAMPLER_LABELS: dict[str, str] = {
    "ddim": "DDIM",
    "ddpm": "DDPM",
    "euler": "Euler",
    "euler_a": "Euler a",
    "heun": "Heun",
    "dpm++": "DPM++ 2M",
    "dpm++_sde": "DPM++ 2M SDE",
    "unipc": "UniPC",
    "pndm": "PLMS",
    "lms": "LMS",
    "flow_euler": "Flow Euler",  # SD3/Flux: FlowMatchEulerDiscreteScheduler (the only sampler they take)
}
_LABEL_TO_NAME = {label.lower(): name for name, label in SAMPLER_LABELS.items()}

# A1111's own pattern for the key/value line (modules/infotext_utils.py), with '+' allowed in keys.
_RE_PARAM = re.compile(r'\s*(\w[\w \-/+]*):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


class MetadataError(TicraftError):
    """An image has no (or unreadable) generation parameters."""


@lru_cache(maxsize=1)
def ticraft_version() -> str:
    """The installed ticraft version (``dev`` when running from a bare checkout)."""
    try:
        from importlib.metadata import version

        return version("ticraft")
    except Exception:  # noqa: BLE001 - not installed: metadata must still be writable
        return "dev"


def quote(value: Any) -> str:
    """A1111's quoting: JSON-quote values that hold ``,`` ``:`` or newlines.

    >>> quote("DDIM"), quote("<a>: 1, <b>: 2")
    ('DDIM', '"<a>: 1, <b>: 2"')
    """
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text and not text.startswith('"'):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return str(json.loads(text))
    except json.JSONDecodeError:
        return text


def format_number(x: float) -> str:
    """Shortest exact text of a float (``7`` for 7.0, ``7.5``, ``0.1``): parses back to the same float."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def sampler_label(name: str) -> str:
    return SAMPLER_LABELS.get(name, name)


def sampler_name(label: str) -> str:
    """Map an A1111 sampler label (or a ticraft name) to the ticraft scheduler name."""
    if label in SAMPLER_LABELS:
        return label
    return _LABEL_TO_NAME.get(label.strip().lower(), label.strip().lower())


def format_parameters(prompt: str, negative: str = "", *, steps: int, sampler: str, cfg: float, seed: int,
                      width: int, height: int, model: str | None = None, model_hash: str | None = None,
                      concept_hashes: Mapping[str, str] | None = None,
                      extra: Mapping[str, Any] | None = None) -> str:
    """The A1111-style parameters text for one image (see the module docstring)."""
    fields: dict[str, Any] = {
        "Steps": int(steps),
        "Sampler": sampler_label(sampler),
        "CFG scale": format_number(cfg),
        "Seed": int(seed),
        "Size": f"{int(width)}x{int(height)}",
    }
    if model_hash:
        fields["Model hash"] = model_hash
    if model:
        fields["Model"] = model
    if concept_hashes:
        fields["TI hashes"] = ", ".join(f"{tok}: {h}" for tok, h in concept_hashes.items())
    for key, value in (extra or {}).items():
        fields[key] = format_number(value) if isinstance(value, float) else value
    fields["Version"] = f"ticraft {ticraft_version()}"
    lines = [prompt]
    if negative:
        lines.append(f"{NEGATIVE_PREFIX} {negative}")
    lines.append(", ".join(f"{k}: {quote(v)}" for k, v in fields.items()))
    return "\n".join(lines)


def _split_fields(line: str) -> dict[str, str]:
    return {k.strip(): unquote(v.strip()) for k, v in _RE_PARAM.findall(line)}


def parse_parameters(text: str) -> dict[str, Any]:
    """Parse A1111-style parameters text into a dict.

    Keys: ``prompt``, ``negative``, ``seed``, ``steps``, ``cfg``, ``sampler`` (ticraft name), ``size``
    (``(w, h)``), ``width``, ``height``, ``model``, ``model_hash``, ``concept_hashes`` (``{token: hash}``),
    ``batch_size``, ``batch_pos``, ``denoising_strength``, ``edit`` when present, ``fields`` (every raw
    key/value of the last line) and ``text`` (the input).
    """
    head, sep, last = text.rpartition("\n")
    if not sep:
        head, last = "", text
    if len(_RE_PARAM.findall(last)) < 3:  # no key/value line: the whole text is prompt (+ negative)
        head, last = text, ""
    lines = head.split("\n") if head else []
    neg_at = next((i for i, line in enumerate(lines) if line.startswith(NEGATIVE_PREFIX)), None)
    if neg_at is None:
        prompt, negative = "\n".join(lines), ""
    else:
        first = lines[neg_at][len(NEGATIVE_PREFIX):]
        first = first[1:] if first.startswith(" ") else first
        prompt, negative = "\n".join(lines[:neg_at]), "\n".join([first, *lines[neg_at + 1:]])

    fields = _split_fields(last) if last else {}
    out: dict[str, Any] = {"prompt": prompt, "negative": negative, "fields": fields, "text": text}
    conversions: list[tuple[str, str, Any]] = [
        ("Seed", "seed", int), ("Steps", "steps", int), ("CFG scale", "cfg", float),
        ("Batch size", "batch_size", int), ("Batch pos", "batch_pos", int),
        ("Denoising strength", "denoising_strength", float),
    ]
    for key, name, conv in conversions:
        if key in fields:
            try:
                out[name] = conv(fields[key])
            except ValueError:
                raise MetadataError(f"parameters field {key!r} is not a number: {fields[key]!r}") from None
    if "Sampler" in fields:
        out["sampler"] = sampler_name(fields["Sampler"])
    if "Size" in fields:
        m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", fields["Size"])
        if not m:
            raise MetadataError(f"parameters field 'Size' is not WxH: {fields['Size']!r}")
        out["width"], out["height"] = int(m.group(1)), int(m.group(2))
        out["size"] = (out["width"], out["height"])
    for key, name in (("Model", "model"), ("Model hash", "model_hash"), ("Edit", "edit"), ("Version", "version")):
        if key in fields:
            out[name] = fields[key]
    hashes: dict[str, str] = {}
    for part in fields.get("TI hashes", "").split(","):
        tok, colon, h = part.strip().rpartition(":")
        if colon and tok.strip():
            hashes[tok.strip()] = h.strip()
    out["concept_hashes"] = hashes
    return out


def read_parameters(source: str | os.PathLike | Image.Image) -> dict[str, Any]:
    """Read and parse the ``parameters`` chunk of a PNG (path or opened image); see :func:`parse_parameters`."""
    text = read_png_text(source).get(PARAMETERS_KEY)
    if text is None:
        where = source if not isinstance(source, Image.Image) else "the image"
        raise MetadataError(f"{where} carries no generation parameters (no '{PARAMETERS_KEY}' text chunk)")
    try:
        return parse_parameters(text)
    except MetadataError as exc:  # name the file: "field 'Seed' is not a number" alone does not say where
        where = source if not isinstance(source, Image.Image) else "the image"
        raise MetadataError(f"{where}: {exc}") from None


def save_png(image: Image.Image, path: str | os.PathLike, parameters: str | None = None) -> Path:
    """Save ``image`` as PNG with its ``parameters`` chunk (``parameters`` or ``image.info['parameters']``)."""
    return save_png_text(image, path, {PARAMETERS_KEY: parameters} if parameters is not None else None)
