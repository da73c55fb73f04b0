"""Training checkpoints: everything needed to continue a run bit for bit.

A checkpoint holds the learned rows (all of them, including not-yet-active progressive rows and the
per-image tokens), the optimiser state, both random generators, the step, the loss/evaluation
histories, and the identity of the run: the model fingerprint, the token and the training images'
hashes. Resuming on another model, with another token or other images is refused with a clear error.

A resumed run continues as it was started: :func:`resume_config` builds its options from the checkpoint's recorded
config (and preset), with only the options given explicitly on top, so a preset retuned since (the ``fast`` preset's
``num_vectors`` went from 1 to 3) does not change a run in flight. An explicit option that would change the state's
shape or meaning (:data:`RESUME_KEYS`) is refused by :func:`check_compatible`.

Files are written atomically (temp file + ``os.replace``) and read with ``torch.load(weights_only=True)``
so a checkpoint can never run code.
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from ticraft.errors import TicraftError
from ticraft.training.config import TrainConfig, preset_config, show_value

FORMAT = "ticraft-train-checkpoint"
VERSION = 1

#: Options that change the shape or meaning of the state; a resume must keep them.
RESUME_KEYS = ("num_vectors", "progressive", "per_image", "batch_size", "grad_accum", "style", "captions",
               "resolution", "flip", "crops", "seed", "method", "norm", "timestep_bias")
#: What checkpoints written before method/norm/timestep_bias existed trained with (plain runs, uniform timesteps).
_LEGACY = {"method": "plain", "norm": None, "timestep_bias": "none"}
#: Where a run writes as it goes: without an output folder a resumed run writes nothing (the preset's 0), whatever
#: the checkpoint's run did.
_OUTPUT_KEYS = ("save_every", "preview_every")


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


def resume_config(state: dict[str, Any], *, preset: str | None = None, options: dict[str, Any] | None = None,
                  outputs: bool = True, path: str | os.PathLike = "checkpoint") -> tuple[TrainConfig, str | None]:
    """The options a run resumed from ``state`` continues with, and a note of what came from the checkpoint.

    The base is the checkpoint's recorded config (a field it lacks, from an older ticraft, takes its preset's
    value); ``options`` are the ones given explicitly (``None`` = not given, as in
    :meth:`TrainConfig.with_options`) and go on top. ``preset`` may be left out; given, it must be the recorded one.
    Without an output folder (``outputs=False``) ``save_every``/``preview_every`` are not taken (nothing to write
    into). The note (``None`` when there is nothing to say) names the fields taken from the checkpoint that differ
    from the preset's current values, e.g. ``resuming with the checkpoint's num_vectors 1 (the fast preset says 3)``.
    Options that conflict with the state are refused later, by :func:`check_compatible`.
    """
    options = dict(options or {})
    saved = dict(state.get("config") or {})
    recorded = saved.get("preset")
    if preset is not None and recorded is not None and preset != recorded:
        raise CheckpointError(f"{path} was trained with the {recorded} preset, not {preset}; leave the preset out "
                              f"(or give {recorded}) to resume it")
    reference = preset_config(recorded or preset or "fast")
    names = {f.name for f in fields(TrainConfig)}
    taken = {k: v for k, v in {**_LEGACY, **saved}.items() if k in names}
    if not outputs:
        for key in _OUTPUT_KEYS:
            taken.pop(key, None)
    given = TrainConfig.given(options)  # unknown names raise here
    cfg = replace(reference, **taken).with_options(**given)
    differ = [k for k in taken if k not in given and k not in ("preset", "extra")
              and getattr(cfg, k) != getattr(reference, k)]
    if not differ:
        return cfg, None
    ours = ", ".join(f"{k} {show_value(getattr(cfg, k))}" for k in differ)
    says = ", ".join((f"{k} " if len(differ) > 1 else "") + show_value(getattr(reference, k)) for k in differ)
    return cfg, f"resuming with the checkpoint's {ours} (the {reference.preset or 'fast'} preset says {says})"


def check_compatible(state: dict[str, Any], *, fingerprint: str, token: str, image_hashes: list[str],
                     config: dict[str, Any], path: str | os.PathLike = "checkpoint", given: bool = False,
                     sources: dict[str, str] | None = None) -> None:
    """Refuse to resume ``state`` into a different run (model, token, images or state-shaping options).

    ``given``: ``config`` was built by :func:`resume_config`, so a differing option was given explicitly and the
    error says to leave it out. ``sources`` names where an option came from when the user did not type it as one
    (train-many's ``concepts.toml`` keys), so the error names that instead of the option.
    """
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
    saved = {**_LEGACY, **saved}
    changed = [k for k in RESUME_KEYS if saved.get(k) != config.get(k)]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} → {config.get(k)!r}" for k in changed)
        named = [(sources or {}).get(k, k) for k in changed]
        fix = (f"leave {' and '.join(named)} out to continue with the checkpoint's "
               f"{'value' if len(changed) == 1 else 'values'}, or give the original" if given else
               "resume with the original ones")
        raise CheckpointError(f"{path} used different options ({diffs}); {fix}")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:07d}.pt"


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The highest-step ``checkpoint-*.pt`` in ``folder`` (``None`` if there is none)."""
    files = sorted(Path(folder).glob("checkpoint-*.pt"))
    return files[-1] if files else None
