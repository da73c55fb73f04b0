"""The toy world: ticraft's embedded default (ARCHITECTURE.md, "The toy world").

- :mod:`ticraft.toyworld.render`: procedural 32 px images of one object (``Attributes``, ``render``,
  ``sample_attributes``, ``caption``, ``full_prompt``);
- :mod:`ticraft.toyworld.vocab`: the vocabulary, the hidden words (``HIDDEN_OBJECTS``, ``HIDDEN_STYLE``,
  ``BIASED_WORD``, ``HIDDEN_WORDS``) and the offline CLIP BPE;
- :mod:`ticraft.toyworld.judge`: reads attributes back from any image (``judge``, ``accuracy``);
- :mod:`ticraft.toyworld.base`: trains the shipped base model (``train_base``) and samples it (``load_pipeline``,
  ``generate``, ``evaluate``); heavy imports happen inside its functions.

``WEIGHTS_DIR`` is the shipped diffusers pipeline folder.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"

__all__ = ["WEIGHTS_DIR"]
