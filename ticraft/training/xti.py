"""Per-layer inversion (P+ / XTI): one vector set per UNet cross-attention layer, trained together.

Voynov et al., *P+: Extended Textual Conditioning* (arXiv 2303.09522), and kohya's
``train_textual_inversion_XTI.py`` learn ``L × N`` vectors: the prompt is encoded once per layer with that
layer's vectors, and cross-attention layer ``l`` reads encoding ``l``. :class:`XTITrainer` is the ordinary
:class:`~ticraft.training.loop.Trainer` with ``L·N`` one-row parameters instead of ``N`` (layer-major, every
layer starting from the initializer) and the routing of :mod:`ticraft.models.layers` switched on: the
trainer's text-encoder and UNet calls are unchanged, the routing packs and slices the per-layer encodings.
Everything else — cached latents, one Adam state per row, checkpoints and exact resume — is shared.

>>> concept = ticraft.train("pics/", "<zorb-x>", "shape", model="toy", method="xti", steps=100)  # doctest: +SKIP
>>> concept.layers, concept.num_vectors, concept.vectors["clip"].shape                         # doctest: +SKIP
(7, 1, torch.Size([7, 64]))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ticraft.models.layers import LAYERS_KEY, cross_attention_layers, splice_layers, unsplice_layers
from ticraft.training.loop import Trainer, TrainError


class XTITrainer(Trainer):
    """A :class:`Trainer` whose concept has one vector set per cross-attention layer."""

    def __init__(self, backbone: Any, images: Any, token: str, init: str, config: Any, **kwargs: Any) -> None:
        self.layer_modules = cross_attention_layers(backbone.unet)
        self.layers = len(self.layer_modules)
        if self.layers < 2:
            raise TrainError(f"method xti needs a UNet with cross-attention layers; {backbone.name} has "
                             f"{self.layers}")
        self._layered = False
        super().__init__(backbone, images, token, init, config, **kwargs)

    def _activate(self, count: int) -> None:
        # Called by Trainer.__init__ before the optimiser exists: grow every encoder's N rows to L·N here,
        # so the optimiser, checkpoints and resume see all of them as ordinary rows.
        if not self._layered:
            L = self.layers
            for k in self.keys:
                first = self.rows[k]
                self.rows[k] = first + [nn.Parameter(p.detach().clone()) for _ in range(1, L) for p in first]
            self.init_vectors = {k: v.repeat(L, 1) for k, v in self.init_vectors.items()}
            self._reg_target = {k: v.repeat(L, 1) for k, v in self._reg_target.items()}
            self._layered = True
        splice_layers(self.bb, self.token, {k: list(self.rows[k]) for k in self.keys}, self.layers)
        self._active = count
        if count not in self._tables:
            self._tables[count] = self._tokenize(self.prompts.prompts, count)

    def start_layout(self, vectors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every layer starts from the same ``N`` vectors (as the initializer's rows do)."""
        return {k: v.repeat(self.layers, 1) for k, v in vectors.items()}

    def current_vectors(self) -> dict[str, torch.Tensor]:
        """All ``L·N`` rows per encoder, layer-major, detached."""
        return {k: torch.cat([p.detach() for p in self.rows[k]]) for k in self.keys}

    def current_rows(self) -> dict[str, torch.Tensor]:
        return {k: torch.cat(list(self.rows[k])) for k in self.keys}

    def method_meta(self) -> dict[str, Any]:
        """What the concept records about its layout (read back by :mod:`ticraft.models.layers`)."""
        return {"method": "xti", LAYERS_KEY: self.layers, "xti_layer_modules": list(self.layer_modules)}

    def close(self) -> None:
        unsplice_layers(self.bb, self.token, self.layers, self.cfg.num_vectors)
        super().close()


__all__ = ["XTITrainer"]
