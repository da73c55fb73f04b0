"""Flux conditioning from token ids (equal to ``FluxPipeline.encode_prompt``) and its latent packing.

Flux reads CLIP-L's *pooled* output (``pooler_output``, no projection) and T5's last hidden state
as the token sequence; text position ids are zeros. Latents ``[B, C, H, W]`` enter the transformer
as 2×2 patches ``[B, H/2·W/2, 4C]`` with ``(0, row, col)`` position ids, the way ``FluxPipeline``
packs them.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Collection

import torch

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

#: ``FluxPipeline``'s default T5 length (its ``max_sequence_length``).
MAX_SEQUENCE_LENGTH = 512


def encode(bb: "Backbone", ids: dict[str, torch.Tensor],
           frozen: Collection[str] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt_embeds [B, L, D_t5], pooled [B, D_l])`` for tokenised prompts (ids per encoder key).

    Encoders named in ``frozen`` run without autograd (see :func:`ticraft.models.sd3.encode`).
    """
    clip = bb.encoder("clip_l").model
    with torch.no_grad() if "clip_l" in frozen else nullcontext():
        pooled = clip(ids["clip_l"], output_hidden_states=False).pooler_output.to(dtype=clip.dtype)
    t5 = bb.encoder("t5").model
    with torch.no_grad() if "t5" in frozen else nullcontext():
        embeds = t5(ids["t5"], output_hidden_states=False)[0].to(dtype=t5.dtype)
    return embeds, pooled


def text_ids(length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Position ids of the text tokens: zeros ``[L, 3]``."""
    return torch.zeros(length, 3, device=device, dtype=dtype)


def pack(latents: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` → ``[B, H/2·W/2, 4C]`` (FluxPipeline's ``_pack_latents``)."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`pack` for latents of height ``h`` and width ``w``."""
    b, _, d = tokens.shape
    x = tokens.view(b, h // 2, w // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, d // 4, h, w)


def image_ids(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Position ids of the packed latent tokens: ``(0, row, col)`` per 2×2 patch, ``[H/2·W/2, 3]``."""
    ids = torch.zeros(h // 2, w // 2, 3)
    ids[..., 1] = torch.arange(h // 2)[:, None]
    ids[..., 2] = torch.arange(w // 2)[None, :]
    return ids.reshape(-1, 3).to(device=device, dtype=dtype)


__all__ = ["MAX_SEQUENCE_LENGTH", "encode", "image_ids", "pack", "text_ids", "unpack"]
