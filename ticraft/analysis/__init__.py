"""Concepts as data: nearest tokens, arithmetic, interpolation, maps, bias/style probes and the paper's metrics.

Each module is importable on its own and keeps heavy imports (diffusers, umap, matplotlib, CLIP) inside the
functions that need them, so ``import ticraft.analysis`` stays cheap:

* :mod:`ticraft.analysis.neighbors` — k nearest vocabulary tokens and library concepts, norm percentiles;
* :mod:`ticraft.analysis.expr` — a safe arithmetic language over concepts and words (``ticraft mix``);
* :mod:`ticraft.analysis.interpolate` — slerp/lerp paths and rendered strips (``ticraft interp``);
* :mod:`ticraft.analysis.maps` — UMAP/PCA maps of concepts among the vocabulary (``ticraft map``);
* :mod:`ticraft.analysis.probes` — bias and style-transfer probes (``ticraft probe``);
* :mod:`ticraft.analysis.metrics` — the paper's reconstruction and editability (``ticraft eval``).
"""

from __future__ import annotations

__all__ = ["cache", "expr", "interpolate", "maps", "metrics", "neighbors", "probes"]
