"""The one place a ``--device`` / ``--dtype`` / ``--mixed-precision`` choice becomes a torch object.

Every command, the Python API, training, sampling and the toy world's base-model trainer call these, so the
same words mean the same thing everywhere:

- device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``; nothing given means
  the ``ticraft config`` ``device`` value, else ``auto``. Under torchrun each process takes the GPU of its
  ``LOCAL_RANK``.
- dtype of frozen weights: ``auto`` (bf16 on CUDA where supported, else fp16 on CUDA; fp32 elsewhere — bf16
  first because SDXL's VAE overflows in fp16), ``fp32``, ``fp16``, ``bf16`` (also spelled ``float32`` …).
- autocast dtype for training: ``auto`` (bf16 on CUDA where supported, otherwise none), ``bf16``, ``fp16``,
  ``no``.

Bad words are a :class:`DeviceError` naming the word and the choices.

>>> resolve_device("cpu")
device(type='cpu')
>>> parse_dtype("bf16")
torch.bfloat16
>>> resolve_dtype("auto", torch.device("cpu"))
torch.float32
>>> autocast_dtype("auto", torch.device("cpu")) is None
True
"""

from __future__ import annotations

import os

import torch

from ticraft.errors import TicraftError

__all__ = ["DeviceError", "DTYPES", "resolve_device", "parse_dtype", "resolve_dtype", "autocast_dtype",
           "cuda_bf16"]


class DeviceError(TicraftError):
    """A device or dtype that is not a known word, or a device this machine does not have."""


DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def cuda_bf16() -> bool:
    """Whether this machine has a CUDA device that computes in bf16."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_device(name: str | torch.device | None = None, *, use_config: bool = True) -> torch.device:
    """``--device`` → torch device: explicit name > ``ticraft config`` ``device`` > CUDA if present > CPU.

    ``auto`` and a bare ``cuda`` pick this process's GPU (``LOCAL_RANK`` under torchrun, else 0).
    With ``use_config=False`` an empty name means ``auto`` (the config file is not read).
    """
    if isinstance(name, torch.device):
        return name
    if not name and use_config:
        from ticraft.user_config import get_config_value

        name = get_config_value("device") or "auto"
    name = (name or "auto").strip().lower()
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name == "auto":
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name} was asked for, but CUDA is not available here; use --device cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device {name} was asked for, but MPS is not available here; use --device cpu")
    return dev


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``fp32|fp16|bf16`` (or ``float32|float16|bfloat16``) → torch dtype; a :class:`DeviceError` otherwise."""
    if isinstance(name, torch.dtype):
        return name
    key = name.strip().lower()
    if key not in DTYPES:
        raise DeviceError(f"unknown dtype {name!r}: use auto, fp32, fp16 or bf16")
    return DTYPES[key]


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Weights dtype: an explicit one, else bf16 (or fp16) on CUDA and fp32 elsewhere."""
    if name is not None and name != "auto":
        return parse_dtype(name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def autocast_dtype(mixed_precision: str, device: torch.device) -> torch.dtype | None:
    """Training's autocast dtype: ``auto`` → bf16 on a bf16-capable CUDA device, else none; ``no`` → none."""
    mp = mixed_precision.strip().lower()
    if mp == "auto":
        mp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    if mp == "no":
        return None
    if mp not in ("bf16", "fp16"):
        raise DeviceError(f"unknown mixed precision {mixed_precision!r}: use auto, no, bf16 or fp16")
    return DTYPES[mp]
