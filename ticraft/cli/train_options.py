"""``ticraft train``'s way to every :class:`~ticraft.training.config.TrainConfig` field.

The common knobs have typed flags (``--steps``, ``--lr-schedule``, …); every other field is reachable with
``--set key=value``, whose value is parsed by the field's type. Help texts show each preset's value, read
from the presets themselves (``ticraft.training.config`` imports nothing heavy), so they never go stale.

>>> parse_sets(["lr=0.01", "max_grad_norm=none", "flip=false"], given={})
{'lr': 0.01, 'max_grad_norm': None, 'flip': False}
>>> parse_sets(["stepz=3"], given={})
Traceback (most recent call last):
...
ticraft.training.config.ConfigError: --set stepz=3: unknown training option 'stepz' (did you mean 'steps'?)
"""

from __future__ import annotations

import difflib
import json
import typing
from dataclasses import fields
from typing import Any, Iterable

from ticraft.training.config import PRESETS, ConfigError, TrainConfig, show_value

#: Fields that ``--set`` does not take: ``preset`` is ``--preset``; ``extra`` holds notes, not options.
NOT_SETTABLE = {"preset": "choose the preset with --preset", "extra": "it holds notes, not options"}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig)}


def preset_values(name: str) -> str:
    """Each preset's value of field ``name``: ``"400"`` when all agree, else ``"fast 400, paper 5000, …"``.

    >>> preset_values("optimizer")
    'fast adam, paper adamw, diffusers adamw'
    """
    shown = {p: show_value(getattr(make(), name)) for p, make in PRESETS.items()}
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{p} {v}" for p, v in shown.items())


def preset_hint(name: str) -> str:
    """`` [presets: …]`` for a help text (parentheses: Rich would read square brackets as markup)."""
    return f" (presets: {preset_values(name)})"


def settable_fields(typed: Iterable[str]) -> list[str]:
    """The fields only ``--set`` reaches (those without a typed flag)."""
    skip = set(typed) | set(NOT_SETTABLE)
    return [f.name for f in fields(TrainConfig) if f.name not in skip]


def set_help(typed: Iterable[str]) -> str:
    """The ``--set`` help: every field without a typed flag, with the presets' values."""
    rows = [f"{name} ({preset_values(name)})" for name in settable_fields(typed)]
    return "Any other training option, KEY=VALUE (repeatable; true/false, numbers, none): " + "; ".join(rows) + "."


def parse_value(key: str, text: str, kind: Any) -> Any:
    """``text`` as a value of the field's type ``kind``; a :class:`ConfigError` naming ``key`` when it is not."""
    args = typing.get_args(kind)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), kind) if args else kind
    low = text.strip().lower()
    if optional and low in ("none", "null", ""):
        return None
    try:
        if base is bool:
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if base is int:
            return int(low)
        if base is float:
            return float(low)
        if base is str:
            return text
        return json.loads(text)
    except ValueError:
        words = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
        want = words.get(base, "JSON")
        raise ConfigError(f"--set {key}={text}: {key} takes {want}{' or none' if optional else ''}") from None


def parse_sets(items: Iterable[str], *, given: dict[str, Any]) -> dict[str, Any]:
    """``["key=value", …]`` → ``{key: typed value}``; one clear error for a bad item.

    ``given`` are the options set by typed flags: a key set both ways is refused (which should win?).
    """
    types = _field_types()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE (e.g. --set max_grad_norm=1.0), got {item!r}")
        if key in NOT_SETTABLE:
            raise ConfigError(f"--set {item}: {key} cannot be set this way ({NOT_SETTABLE[key]})")
        if key not in types:
            close = difflib.get_close_matches(key, sorted(types), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"--set {item}: unknown training option {key!r}{hint}")
        if given.get(key) is not None:
            raise ConfigError(f"--set {item}: {key} is already given by its own flag; give it once")
        if key in out:
            raise ConfigError(f"--set {item}: {key} is set twice")
        out[key] = parse_value(key, text, types[key])
    return out


def given_options(options: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """Only the options given on the command line: a flag left out (``None``) is dropped, so that it means "the
    preset's value" for a new run and "the checkpoint's" for a resumed one; ``--set key=none`` stays (it sets none).

    >>> given_options({"steps": 5, "progressive": None, "max_grad_norm": None}, ["max_grad_norm=none"])
    {'steps': 5, 'max_grad_norm': None}
    """
    from_sets = {item.partition("=")[0].strip().replace("-", "_") for item in sets}
    return {k: v for k, v in options.items() if v is not None or k in from_sets}


def learned_text(concept: Any) -> str:
    """What was learned, for the summary line: "3 vectors", "3 vectors per layer × 16 layers (xti)", or
    "3 direction-only vectors (norm 0.41)"."""
    from ticraft.concept_checks import vectors_text

    text = vectors_text(concept.num_vectors)
    if concept.layers > 1:
        return f"{text} per layer × {concept.layers} layers (xti)"
    if concept.meta.get("method") == "directional":
        norms = ", ".join(f"{float(v):.3g}" for v in (concept.meta.get("norm") or {}).values())
        return f"{concept.num_vectors} direction-only {text.split(' ', 1)[1]}" + (f" (norm {norms})" if norms else "")
    return text
