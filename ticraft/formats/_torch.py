"""Read and write torch-pickled embedding files (.pt/.bin/.ckpt) without ever running code from them.

Loading is two locks deep:

1. Before anything is unpickled, every pickle in the file is *scanned* (``pickletools``, which
   only parses opcodes) and the Python objects it would import are checked against a short
   allow-list: tensor/storage rebuilders, ``OrderedDict``, ``set`` and ``nn.ParameterDict`` (the
   paper code's container). Anything else — ``os.system``, ``builtins.exec``, a TorchScript
   archive — refuses the file with a :class:`FormatError` that says it contains code.
2. The file is then loaded with ``torch.load(weights_only=True)``, torch's own restricted
   unpickler, with ``nn.ParameterDict`` admitted only for that one call.

A ParameterDict comes back as an inert object whose ``__dict__`` was filled from plain data; we
read its ``_parameters`` mapping directly and never call its methods.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import threading
import zipfile
from pathlib import Path
from typing import Any

import torch

from ticraft.formats._common import FormatError, where

#: The legacy (pre-zip) torch format opens with a pickle of this number.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

#: Exact globals an embedding pickle may import (module.name, after protocol-2 name fixing).
_ALLOWED = frozenset({
    "collections.OrderedDict",
    "builtins.set",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch.nn.parameter.Parameter",
    "torch.nn.modules.container.ParameterDict",
    "torch.storage.UntypedStorage",
    "torch.Size",
    "_codecs.encode",  # how protocol 2 stores bytes objects
})
_TORCH_DTYPE_NAMES = frozenset({"float16", "bfloat16", "float32", "float64", "half", "float", "double",
                                "int64", "int32", "int16", "int8", "uint8", "bool", "long", "int"})
_LEGACY_STORAGES = frozenset(t.__name__ for t in torch._storage_classes if t.__name__.endswith("Storage"))
_MAX_PICKLE_BYTES = 64 << 20  # an embedding's pickle is a few KB; refuse zip bombs early
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                         "STRING", "BINSTRING", "SHORT_BINSTRING"})
_NO_PUSH_OPS = frozenset({"PROTO", "FRAME", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_PARAMETER_DICT = "torch.nn.modules.container.ParameterDict"
# torch's safe_globals() edits one process-wide list and restores it on exit: two threads
# overlapping would drop each other's entry, so our admissions take turns.
_SAFE_GLOBALS_LOCK = threading.Lock()


def _allowed(name: str) -> bool:
    if name in _ALLOWED:
        return True
    module, _, attr = name.rpartition(".")
    return module == "torch" and (attr in _LEGACY_STORAGES or attr in _TORCH_DTYPE_NAMES)


def pickle_imports(data: bytes, start: int = 0) -> tuple[list[str], int]:
    """The globals one pickle would import, and the offset just past its STOP.

    Parses opcodes only (nothing is executed). ``STACK_GLOBAL`` names are followed through the
    memo; a name that cannot be resolved statically is reported as ``"<dynamic import>"``.

    >>> pickle_imports(pickle.dumps(print))[0]
    ['builtins.print']
    """
    found: list[str] = []
    pushes: list[Any] = []  # value of each push-like opcode (str or None), newest last
    memo: dict[int, Any] = {}
    stream = io.BytesIO(data)
    stream.seek(start)
    end = start
    for op, arg, pos in pickletools.genops(stream):
        name = op.name
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            found.append(_fix_name(module, attr))
        elif name == "STACK_GLOBAL":
            mod_name, attr_name = (pushes[-2], pushes[-1]) if len(pushes) >= 2 else (None, None)
            if isinstance(mod_name, str) and isinstance(attr_name, str):
                found.append(_fix_name(mod_name, attr_name))
            else:
                found.append("<dynamic import>")
        elif name in ("OBJ", "EXT1", "EXT2", "EXT4"):
            found.append(f"<{name} opcode>")  # builds an object from a class on the stack / registry
        if name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushes[-1] if pushes else None  # type: ignore[arg-type]  # PUT ops carry an int
        elif name == "MEMOIZE":
            memo[len(memo)] = pushes[-1] if pushes else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushes.append(memo.get(int(arg)))  # type: ignore[arg-type]  # GET ops carry an int
        elif name in _STRING_OPS:
            pushes.append(arg if isinstance(arg, str) else None)
        elif name not in _NO_PUSH_OPS:
            pushes.append(None)
        if name == "STOP":
            end = stream.tell() if pos is None else pos + 1
    return found, end


def _fix_name(module: str, attr: str) -> str:
    # Protocol-2 pickles name Python 2 modules; the unpickler maps them the same way.
    module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
    return f"{module}.{attr}"


def _zip_pickles(data: bytes, path: str | Path) -> list[bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if any("/code/" in n or n.endswith("constants.pkl") for n in names):
                raise FormatError(
                    f"{where(path)}: refused: this is a TorchScript archive, which contains code; it was not loaded"
                )
            pickles = [i for i in infos if i.filename.endswith(".pkl")]
            if not any(i.filename.endswith("data.pkl") for i in pickles):
                raise FormatError(f"{where(path)}: a zip file, but not a torch checkpoint (no data.pkl inside)")
            for info in pickles:
                if info.file_size > _MAX_PICKLE_BYTES:
                    raise FormatError(
                        f"{where(path)}: {info.filename} is {info.file_size} bytes; too large for an embedding")
            return [zf.read(i) for i in pickles]
    except FormatError:
        raise
    except Exception as exc:  # BadZipFile, CRC errors, truncated members, ...
        raise FormatError(f"{where(path)}: damaged torch zip file ({type(exc).__name__}: {exc})") from exc


def scan(data: bytes, path: str | Path) -> set[str]:
    """Refuse ``data`` unless every pickle in it imports only allow-listed tensor/container types.

    Returns the (allowed) globals the file imports.
    """
    imports: list[str] = []
    if data[:4] == b"PK\x03\x04":
        for blob in _zip_pickles(data, path):
            try:
                imports += pickle_imports(blob)[0]
            except Exception as exc:
                raise FormatError(f"{where(path)}: damaged pickle inside the torch file ({exc})") from exc
    else:
        # Legacy format: magic, protocol, sys_info, object, storage keys, then raw storage bytes.
        # The first pickle decides; later ones are scanned while they parse (torch's restricted
        # unpickler stands behind this scan anyway).
        try:
            found, offset = pickle_imports(data)
        except Exception as exc:
            raise FormatError(f"{where(path)}: not a valid torch/pickle file ({exc})") from exc
        imports += found
        for _ in range(4):
            if offset >= len(data) or data[offset] != 0x80:
                break
            try:
                found, offset = pickle_imports(data, offset)
            except Exception:
                break
            imports += found
    bad = sorted({name for name in imports if not _allowed(name)})
    if bad:
        raise FormatError(
            f"{where(path)}: refused: the file contains code (its pickle would import {', '.join(bad)}); "
            "it was not loaded. Embedding files hold only tensors, dicts and nn.ParameterDict."
        )
    return set(imports)


def load(data: bytes, path: str | Path) -> Any:
    """Unpickle a torch file's bytes safely (see the module docstring) and return the object."""
    imports = scan(data, path)
    try:
        if _PARAMETER_DICT not in (imports or ()):
            return _weights_only_load(data)
        with _SAFE_GLOBALS_LOCK, torch.serialization.safe_globals([torch.nn.ParameterDict]):
            return _weights_only_load(data)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "call reduce for unrecognized" in text:
            raise FormatError(
                f"{where(path)}: refused: the file contains code; it was not loaded ({_last_line(text)})") from exc
        if "persistent_load" in text:  # legacy torch.save pickles nn.Modules with their source code
            raise FormatError(
                f"{where(path)}: refused: a legacy (pre-zip) torch file that pickles a module; it was not loaded "
                "(re-save it with torch >= 1.6, or export it as A1111/diffusers from the tool that made it)"
            ) from exc
        raise FormatError(f"{where(path)}: damaged torch file ({_last_line(text)})") from exc
    except Exception as exc:
        raise FormatError(f"{where(path)}: damaged torch file ({type(exc).__name__}: {_last_line(str(exc))})") from exc


def _weights_only_load(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True, mmap=False)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    useful = [ln for ln in lines if "WeightsUnpickler error" in ln or "Unsupported" in ln]
    line = (useful or lines or [""])[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def parameter_dict_items(obj: Any) -> dict[str, Any] | None:
    """The name → tensor mapping of an unpickled ``nn.ParameterDict`` (``None`` if ``obj`` is not one).

    Reads the ``_parameters`` attribute the unpickler restored instead of calling ParameterDict
    methods on an object built from untrusted data.
    """
    if not isinstance(obj, torch.nn.ParameterDict):
        return None
    params = vars(obj).get("_parameters")
    if not isinstance(params, dict):
        return {}
    return dict(params)


def dumps(obj: Any) -> bytes:
    """``torch.save`` to bytes (zip format), for atomic writing."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
