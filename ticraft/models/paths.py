"""Where the shipped model files live (no heavy imports: the CLI's listing reads these at start-up)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent

TOY_WEIGHTS = _PACKAGE / "toyworld" / "weights"
"""The shipped toy model, a diffusers pipeline folder."""

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"
"""Shipped diffusers configs, one folder per known architecture (no weights, no vocabulary)."""
