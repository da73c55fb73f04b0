"""The one place that turns a ``--model`` spec into a loaded, frozen :class:`Backbone`.

A spec is ``"toy"`` (the shipped toy model), a diffusers pipeline folder, a single-file
``.safetensors``/``.ckpt`` checkpoint (:mod:`ticraft.models.single_file`), or a hub id already in the
local Hugging Face cache; ``None`` means the configured default (``ticraft config set model …``).
Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ticraft.models.backbone import Backbone, BackboneError, load_diffusers_folder
from ticraft.models.paths import TOY_WEIGHTS


def resolve_model_spec(spec: str | os.PathLike | None) -> str:
    """Turn ``--model`` (or the configured default, or ``toy``) into a concrete spec string."""
    if spec is None or str(spec) == "":
        from ticraft.user_config import get_config_value

        spec = get_config_value("model") or "toy"
    return str(spec)


def quiet_model_libraries() -> None:
    """Keep transformers' and diffusers' own output out of ticraft's: errors only, no progress bars.

    They print a "Loading weights" bar for every text encoder, a notice that torchvision is missing when a
    pipeline is built, and float32-module notices on ``.to(dtype)``; none of it is actionable for a ticraft
    user, and it breaks up ticraft's own progress display. Called by :func:`load_backbone`, the one place
    ticraft loads models, so the CLI, the TUI and Python callers get the same quiet output. A verbosity the
    user chose (``TRANSFORMERS_VERBOSITY`` / ``DIFFUSERS_VERBOSITY``) is left alone; their bars are always off
    (ticraft draws its own).
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for env, lib in (("TRANSFORMERS_VERBOSITY", transformers_logging), ("DIFFUSERS_VERBOSITY", diffusers_logging)):
        if not os.environ.get(env):
            lib.set_verbosity_error()
        lib.disable_progress_bar()


def load_backbone(spec: str | os.PathLike | None = None, *, device: str | torch.device | None = None,
                  dtype: torch.dtype | None = None, family: str | None = None) -> Backbone:
    """Load a model by spec (see module docstring); all weights frozen, eval mode.

    Args:
        spec: ``"toy"``, a folder, a checkpoint file, or a cached hub id; ``None`` → configured default.
        device: where to put it (default CPU).
        dtype: weight dtype (default float32; use bf16/fp16 on GPUs).
        family: override the detected family.
    """
    spec = resolve_model_spec(spec)
    quiet_model_libraries()
    if spec == "toy":
        if not (TOY_WEIGHTS / "model_index.json").is_file():
            raise BackboneError(
                f"the toy model's weights are missing from {TOY_WEIGHTS}; train them with `ticraft toyworld train-base`"
            )
        bb = load_diffusers_folder(TOY_WEIGHTS, family=family or "toy", name="toy")
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            bb = load_diffusers_folder(path, family=family)
        elif path.is_file():
            from ticraft.models.single_file import load_single_file

            bb = load_single_file(path, family=family, dtype=dtype)
        elif path.suffix in (".safetensors", ".ckpt", ".pt", ".bin") or (
                os.sep in str(spec) and not _looks_like_hub_id(str(spec))):
            raise BackboneError(f"model file or folder not found: {path}")
        elif _looks_like_hub_id(str(spec)):
            from ticraft.models.single_file import find_in_hf_cache

            folder = find_in_hf_cache(str(spec))
            bb = load_diffusers_folder(folder, family=family, name=str(spec))
        else:
            raise BackboneError(
                f"unknown model {spec!r}: give 'toy', a diffusers folder, a .safetensors/.ckpt file or a cached hub id"
            )
    if device is not None or dtype is not None:
        bb.to(device=device, dtype=dtype)
    return bb


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/", "~"))
