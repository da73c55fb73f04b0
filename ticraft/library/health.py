"""Health checks of library embedding files: a cheap one (header + size) and a full one (every byte).

:func:`check_embedding` reads the 8-byte length, the JSON header and the file size, never the
vectors: missing, truncated, not-safetensors and header-disagrees-with-the-index files are found
for the price of one small read, so ``ticraft library list`` runs it on every row it shows.
:func:`verify_embedding` reads every vector, recomputes the content hash the index records and
checks that every value is finite (``ticraft library verify``).

>>> from pathlib import Path
>>> from ticraft.library.entry import Entry
>>> check_embedding(Entry("<a>", "toy", 1, {"clip": 8}, (), None, "", Path("/nonexistent"), ""))
'embedding.safetensors is missing'
"""

from __future__ import annotations

import json
import os
from typing import Any

from ticraft.io import MAX_HEADER, SafetensorsHeaderError, parse_safetensors_header
from ticraft.library._common import _ST_DTYPES, EMBEDDING
from ticraft.library.entry import Entry
from ticraft.wording import counted


def _shape_label(dims: dict[str, int], n: int) -> str:
    return ", ".join(f"{k} {n}×{d}" for k, d in sorted(dims.items()))


def _header_problem(header: Any, size: int, start: int, entry: Entry) -> str | None:
    """What is wrong with a parsed header, given the file size and where tensor data starts."""
    if not isinstance(header, dict):
        return f"{EMBEDDING} is not a safetensors file (its header is not a JSON object)"
    end, dims, counts = 0, {}, set()
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            begin, stop = (int(x) for x in info["data_offsets"])
            shape = [int(x) for x in info["shape"]]
            if info["dtype"] not in _ST_DTYPES:
                return f"{EMBEDDING}: tensor {key!r} has dtype {info['dtype']!r}, not a float type"
        except (KeyError, TypeError, ValueError):
            return f"{EMBEDDING} is not a safetensors file (tensor {key!r} has a malformed header entry)"
        if len(shape) != 2:
            return f"{EMBEDDING}: tensor {key!r} has shape {shape}, not [vectors, width]"
        end = max(end, stop, begin)
        dims[key] = shape[1]
        counts.add(shape[0])
    if not dims:
        return f"{EMBEDDING} holds no tensors"
    if start + end > size:
        return f"{EMBEDDING} is truncated: {size} bytes, but its header describes {start + end}"
    if start + end < size:
        return f"{EMBEDDING} has {size - start - end} unexpected bytes after its tensor data"
    layers = _layers(header.get("__metadata__"))  # a per-layer (XTI) concept stores layers × vectors rows
    if dims != entry.dims or counts != {entry.num_vectors * layers}:
        have = ", ".join(f"{k} {sorted(counts)[0] if len(counts) == 1 else '?'}×{d}" for k, d in sorted(dims.items()))
        return f"{EMBEDDING} header holds {have}, but the index says {_shape_label(entry.dims, entry.num_vectors)}"
    meta = header.get("__metadata__")
    record: Any = {}
    if isinstance(meta, dict):
        try:
            record = json.loads(meta.get("ticraft") or "{}")
        except ValueError:
            record = {}
    token = (record.get("token") if isinstance(record, dict) else None) or (meta or {}).get("token")
    if token != entry.token:
        return f"{EMBEDDING} header names token {token!r}, but the index says {entry.token!r}"
    return None


def _layers(meta: Any) -> int:
    """``xti_layers`` of the ticraft record in a safetensors header (1 for ordinary concepts)."""
    try:
        value = json.loads(meta.get("ticraft") or "{}").get("meta", {}).get("xti_layers", 1)
    except (AttributeError, ValueError):
        return 1
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def check_embedding(entry: Entry) -> str | None:
    """The cheap check: ``None`` when the file looks healthy, else one sentence saying what is wrong.

    Reads the header and the size only: a missing file, a truncated one, one that is not
    safetensors, or whose tensors/token disagree with the index (``entry``) are reported.
    """
    path = entry.embedding
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                return f"{EMBEDDING} is truncated ({size} bytes): not a safetensors file"
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER:
                return f"{EMBEDDING} is not a safetensors file (it declares a {n}-byte header)"
            if 8 + n > size:
                return f"{EMBEDDING} is truncated ({size} bytes; its header alone needs {8 + n})"
            raw = fh.read(n)
    except FileNotFoundError:
        return f"{EMBEDDING} is missing"
    except IsADirectoryError:
        return f"{EMBEDDING} is a folder, not a file"
    except OSError as exc:
        return f"{EMBEDDING} is unreadable ({exc.strerror or exc})"
    try:
        header, start = parse_safetensors_header(head + raw, EMBEDDING)
    except SafetensorsHeaderError as exc:
        if exc.__cause__ is None and "not a JSON object" in str(exc):  # valid JSON, but not an object
            return f"{EMBEDDING} is not a safetensors file (its header is not a JSON object)"
        return f"{EMBEDDING} is not a safetensors file (its header is not JSON)"
    return _header_problem(header, size, start, entry)


def verify_embedding(entry: Entry) -> str | None:
    """The full check: the cheap one, then every vector read, hashed and checked for NaN/inf.

    ``None`` when the vectors hash to the sha256 the index records and every value is finite.
    """
    problem = check_embedding(entry)
    if problem:
        return problem
    from ticraft.library.canonical import _tensor_sha256, read_safetensors_header

    try:
        data = entry.embedding.read_bytes()
    except OSError as exc:
        return f"{EMBEDDING} is unreadable ({exc.strerror or exc})"
    try:
        header, start = read_safetensors_header(data, EMBEDDING)
        sha = _tensor_sha256(header, data, start, EMBEDDING)
    except Exception as exc:  # a file changed between the two reads: report, never crash a verify run
        return str(exc)
    if entry.sha256 and sha != entry.sha256:
        return (
            f"{EMBEDDING} vectors hash to {sha[:12]}…, but the index records {entry.sha256[:12]}… (changed or damaged)"
        )
    import torch
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types for damaged payloads
        return f"{EMBEDDING} cannot be decoded ({exc})"
    for key, t in sorted(tensors.items()):
        bad = int((~torch.isfinite(t.float())).sum())
        if bad:
            return f"{EMBEDDING}: {counted(bad, 'value')} of {key!r} {'is' if bad == 1 else 'are'} NaN or infinite"
    return None
