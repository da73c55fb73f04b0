"""The one choice of judge for every measure that reads pictures: the toy world's exact judge, or CLIP.

The bias probe, the style probe and the paper's metrics (``ticraft probe``, ``ticraft eval``, the TUI) all
take ``judge="auto" | "toy" | "clip"`` and an optional local CLIP folder; :func:`choose_judge` turns
those into either the toy judge (``None``: the caller uses :mod:`ticraft.toyworld.judge`) or a loaded
:class:`~ticraft.analysis.clip.Clip`. ``auto`` means the toy judge for the toy model when no CLIP folder
is given, CLIP otherwise. A real model without a CLIP folder is an error that says what to pass: nothing is
ever downloaded.

>>> choose_judge("auto", "toy", None) is None
True
>>> choose_judge("toy", "toy", "models/clip")
Traceback (most recent call last):
...
ticraft.analysis.judges.JudgeError: --clip is read by the CLIP judge only; the toy judge would ignore models/clip ...
>>> choose_judge("clip", "sd1", None, what="the bias probe")
Traceback (most recent call last):
...
ticraft.analysis.judges.JudgeError: a sd1 model has no built-in judge: the bias probe needs CLIP; pass --clip ...
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ticraft.errors import TicraftError

if TYPE_CHECKING:
    from ticraft.analysis.clip import Clip

__all__ = ["JUDGES", "JudgeError", "uses_toy_judge", "choose_judge"]

#: The judge names every command accepts.
JUDGES = ("auto", "toy", "clip")


class JudgeError(TicraftError):
    """An unknown judge name, or a measure that needs CLIP on a model without a built-in judge."""


def uses_toy_judge(judge: str, family: str, clip: str | os.PathLike[str] | None, *,
                   error: type[TicraftError] = JudgeError, kind: str = "judge") -> bool:
    """Whether ``judge`` (``auto``/``toy``/``clip``) means the toy judge for a ``family`` model.

    ``error`` is the exception class raised for an unknown name (callers keep their own error family);
    ``kind`` names the option in that message (``judge`` or ``scorer``). ``toy`` with a ``clip`` folder is
    refused: the toy judge never loads CLIP, so the folder would be silently ignored.
    """
    if judge not in JUDGES:
        raise error(f"unknown {kind} {judge!r}: use auto, toy or clip")
    if judge == "toy" and clip is not None:
        raise error(f"--clip is read by the CLIP judge only; the toy judge would ignore {os.fspath(clip)} "
                    f"(drop --clip, or pass --{kind} clip)")
    return judge == "toy" or (judge == "auto" and family == "toy" and clip is None)


def choose_judge(judge: str, family: str, clip: str | os.PathLike[str] | None, *, what: str = "this measure",
                 error: type[TicraftError] = JudgeError, kind: str = "judge") -> Clip | None:
    """``None`` for the toy judge, else the CLIP model loaded from ``clip`` (once per folder and device).

    Raises ``error`` naming ``what`` needs CLIP when a model other than the toy one has no ``clip`` folder.
    """
    if uses_toy_judge(judge, family, clip, error=error, kind=kind):
        return None
    from ticraft.analysis.clip import CLIP_HELP, load_clip

    if clip is None:
        raise error(f"a {family} model has no built-in judge: {what} needs CLIP; {CLIP_HELP}")
    return load_clip(clip)
