"""A single-token approximation of a per-layer (XTI) concept, for tools that cannot load per-layer files.

AUTOMATIC1111, ComfyUI and diffusers condition every cross-attention layer on one prompt encoding, so a
per-layer concept must become one vector set. :func:`flatten` starts from the mean of the layers' vectors and
refines it (Adam) to minimise the mean, over layers and matching templates, of the squared difference between the
text encoder's output for the flat token and for each layer's own vectors. It reports that loss next to its
*floor* — the same measure for the mean of the layers' encodings, which no single token can beat — and the loss of
the plain mean it started from, so the cost of flattening is measured, not assumed.

>>> result = flatten(bb, xti_concept)        # doctest: +SKIP
>>> result.loss, result.floor, result.start_loss   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from ticraft.concept import Concept, layout_meta
from ticraft.concept_checks import vectors_text
from ticraft.errors import TicraftError
from ticraft.prompts import expand_prompt

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.models.backbone import Backbone

TEMPLATES = ("a photo of {}", "a photo of a {} on the table", "a painting of {} in the style of art", "{}")


class FlattenError(TicraftError):
    """A concept cannot be flattened as asked."""


@dataclass
class FlattenResult:
    """The flat concept and its measured text-encoder loss (see the module docstring)."""

    concept: Concept
    loss: float
    floor: float
    start_loss: float


def flatten(backbone: "Backbone", concept: Concept, *, steps: int = 100, lr: float = 1e-2,
            templates: Sequence[str] = TEMPLATES) -> FlattenResult:
    """One vector set standing in for every layer of ``concept`` (which must fit ``backbone``)."""
    from ticraft.models.layers import check_layout

    if concept.layers <= 1:
        n = concept.num_vectors
        raise FlattenError(f"concept {concept.token} is not a per-layer (XTI) concept: its {vectors_text(n)} "
                           f"{'serves' if n == 1 else 'serve'} every layer already, so there is nothing to flatten")
    L, N = check_layout(backbone, concept), concept.num_vectors
    token = concept.token
    per = {k: v.float().reshape(L, N, v.shape[1]) for k, v in concept.vectors.items()}
    was_loaded = token in backbone.loaded_concepts
    backbone.unload_concept(token)
    text = [expand_prompt(t.format(token), {token: N}) for t in templates]

    def encode() -> dict[str, torch.Tensor]:
        out = {}
        for e in backbone.encoders:
            max_len = int(e.tokenizer.model_max_length)
            ids = e.tokenizer(text, padding="max_length", max_length=max_len, truncation=True,
                              return_tensors="pt").input_ids.to(backbone.device)
            h = e.model(input_ids=ids)[0].float()
            out[e.key] = h.reshape(h.shape[0], -1, max_len, h.shape[-1])[:, 0]  # (packed while XTI is loaded)
        return out

    try:
        targets = []
        with torch.no_grad():
            for layer in range(L):
                backbone.add_placeholder(token, {k: v[layer].to(backbone.device) for k, v in per.items()})
                targets.append(encode())
        mean_target = {k: torch.stack([t[k] for t in targets]).mean(0) for k in per}

        def measure(got: dict[str, torch.Tensor]) -> torch.Tensor:
            return sum((torch.stack([(got[k] - t[k]).pow(2).mean() for t in targets]).mean() for k in per),
                       torch.zeros((), device=backbone.device))

        floor = float(measure(mean_target))
        params = {k: nn.Parameter(v.mean(0).to(backbone.device)) for k, v in per.items()}
        backbone.add_placeholder(token, dict(params))
        opt = torch.optim.Adam(list(params.values()), lr=lr)
        with torch.no_grad():
            start = float(measure(encode()))
        best = (start, {k: p.detach().clone() for k, p in params.items()})
        for _ in range(steps):
            loss = measure(encode())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                value = float(measure(encode()))
            if value < best[0]:
                best = (value, {k: p.detach().clone() for k, p in params.items()})
    finally:
        backbone.unload_concept(token)
        for e in backbone.encoders:
            e.embedding.remove_block(token)
        if was_loaded:
            backbone.load_concept(concept)
    meta = {k: v for k, v in concept.meta.items() if k not in layout_meta(concept) and k != "xti_layer_modules"}
    meta.update({"flattened_from": "xti", "flatten_loss": best[0], "flatten_floor": floor,
                 "flatten_start_loss": start, "flatten_layers": L})
    flat = Concept(token, {k: v.cpu() for k, v in best[1].items()}, family=concept.family, meta=meta)
    return FlattenResult(flat, best[0], floor, start)


__all__ = ["FlattenError", "FlattenResult", "flatten"]
