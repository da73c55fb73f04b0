"""Bias and style-transfer probes: render, read an attribute back with a judge, summarise.

**Bias** (``ticraft probe bias "a photo of a doctor" --attribute colour``): generate ``n`` images of a prompt (seeds
``seed … seed+n−1``), classify one attribute per image, and report the distribution, its entropy and its total
variation distance to the uniform distribution over the labels (0 = perfectly balanced, → 1 = one label only). A
second prompt (e.g. the biased word vs a learned "fair" concept) is rendered with the same seeds and shown side by
side, with a grouped bar chart.

Judges: the toy world's exact judge (:mod:`ticraft.toyworld.judge`: shape, colour, texture, size, background, style)
for the toy model; zero-shot CLIP from a local folder for real models (``gender``, ``age``, ``colour`` have default
labels and prompts; any other attribute takes ``labels``).

**Style** (``ticraft probe style <style> --content "a red circle"``): per content prompt, render it with and without
the style (same seeds) and score *style similarity* of the styled images to the concept's training images and
*content preservation* of each styled image against the same-seed image of the prompt without the style. With CLIP:
mean cosine similarities of image embeddings. In the toy world: the share of styled images the judge reads in the
training images' style, and the share of content attributes (shape, colour, background) kept.

Rendering goes through a *renderer* ``(prompts, seeds) -> images`` (:func:`sample_renderer` by default), so the
statistics can be checked on rendered toy-world images without a diffusion model.

The code lives in :mod:`~ticraft.analysis.probe_common` (renderer, judges as classifiers),
:mod:`~ticraft.analysis.bias_probe` and :mod:`~ticraft.analysis.style_probe`; this module re-exports them.

>>> distribution(["white"] * 9 + ["green"], labels=["white", "green"]).tv_uniform
0.4
"""


from __future__ import annotations

from ticraft.analysis.bias_probe import (  # noqa: F401 (re-exported)
    BiasReport,
    BiasResult,
    Distribution,
    bias_chart,
    distribution,
    probe_bias,
    run_bias,
)
from ticraft.analysis.probe_common import (  # noqa: F401 (re-exported)
    ZERO_SHOT,
    Classifier,
    ProbeError,
    Renderer,
    clip_classifier,
    make_classifier,
    sample_renderer,
    seeds_for,
    toy_classifier,
)
from ticraft.analysis.style_probe import (  # noqa: F401 (re-exported)
    ClipStyleScorer,
    StyleReport,
    StyleRow,
    ToyStyleScorer,
    fill_style,
    probe_style,
    reference_images,
    run_style,
    style_grid,
    style_template,
)

__all__ = [
    "BiasReport",
    "BiasResult",
    "Classifier",
    "ClipStyleScorer",
    "Distribution",
    "ProbeError",
    "Renderer",
    "StyleReport",
    "StyleRow",
    "ToyStyleScorer",
    "ZERO_SHOT",
    "bias_chart",
    "clip_classifier",
    "distribution",
    "fill_style",
    "make_classifier",
    "probe_bias",
    "probe_style",
    "reference_images",
    "run_bias",
    "run_style",
    "sample_renderer",
    "seeds_for",
    "style_grid",
    "style_template",
    "toy_classifier",
]
