"""Training checkpoints: everything needed to continue a run bit for bit.

A checkpoint holds the learned rows (all of them, including not-yet-active progressive rows and the
per-image tokens), the optimiser state, both random generators, the step, the loss/evaluation
histories, and the identity of the run: the model fingerprint, the token and the training images'
hashes. Resuming on another model, with another token or other images is refused with a clear error.

Files are written atomically (temp file + ``os.replace``) and read with ``torch.load(weights_only=True)``
so a checkpoint can never run code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ticraft.errors import TicraftError

FORMAT = "ticraft-train-checkpoint"
VERSION = 1

#: Options that change the shape or meaning of the state; a resume must keep them.
RESUME_KEYS = ("num_vectors", "progressive", "per_image", "batch_size", "grad_accum", "style", "captions",
               "resolution", "flip", "crops", "seed", "method", "norm", "timestep_bias")


class CheckpointError(TicraftError):
    """A checkpoint is unreadable or belongs to another run."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (see :meth:`ticraft.training.loop.Trainer.state_dict`) atomically to ``path``."""
    from ticraft.io import atomic_file

    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **state}
    with atomic_file(path) as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint file (tensors and plain data only)."""
    path = Path(path)
    if path.is_dir():
        path = latest_checkpoint(path) or path
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, refused globals
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable ticraft checkpoint ({first})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ticraft training checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer ticraft (checkpoint version {state['version']})")
    return state


def check_compatible(state: dict[str, Any], *, fingerprint: str, token: str, image_hashes: list[str],
                     config: dict[str, Any], path: str | os.PathLike = "checkpoint") -> None:
    """Refuse to resume ``state`` into a different run (model, token, images or state-shaping options)."""
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path} was trained on another model (fingerprint {state.get('fingerprint')} from "
            f"{state.get('model', '?')}, this model is {fingerprint}); resume with the same --model"
        )
    if state.get("token") != token:
        raise CheckpointError(f"{path} trains {state.get('token')!r}, not {token!r}")
    if list(state.get("images", [])) != list(image_hashes):
        raise CheckpointError(f"{path} was trained on other images; resume with the same image folder")
    saved = state.get("config", {})
    # checkpoints written before method/norm/timestep_bias existed are plain runs with uniform timesteps
    saved = {"method": "plain", "norm": None, "timestep_bias": "none", **saved}
    changed = [k for k in RESUME_KEYS if saved.get(k) != config.get(k)]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} → {config.get(k)!r}" for k in changed)
        raise CheckpointError(f"{path} used different options ({diffs}); resume with the original ones")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:07d}.pt"


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The highest-step ``checkpoint-*.pt`` in ``folder`` (``None`` if there is none)."""
    files = sorted(Path(folder).glob("checkpoint-*.pt"))
    return files[-1] if files else None
