"""SD3 / SD3.5 conditioning from token ids, differentiable, equal to ``StableDiffusion3Pipeline.encode_prompt``.

SD3 reads three encoders: CLIP-L and CLIP-G (both with projection) give their penultimate hidden
states, concatenated along the width and zero-padded to T5's width, then T5's last hidden state is
appended along the sequence; the pooled vector is the two CLIP projections concatenated. A model
saved without T5 (``text_encoder_3`` null) gets zeros there, as in diffusers.

``tests/test_sd3_flux_backbone.py`` checks :func:`encode` against diffusers' ``encode_prompt`` bit for bit.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Collection

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

#: ``StableDiffusion3Pipeline``'s default T5 length (its ``max_sequence_length``).
MAX_SEQUENCE_LENGTH = 256


def encode(bb: "Backbone", ids: dict[str, torch.Tensor],
           frozen: Collection[str] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt_embeds [B, 77+L, D_t5], pooled [B, D_l+D_g])`` for tokenised prompts (ids per encoder key).

    Gradients flow into spliced placeholder vectors; nothing else needs grad. Encoders named in ``frozen`` run
    without autograd (their vectors are not being learned: no activations are kept for a backward pass).
    """
    hidden, pooled = [], []
    for key in ("clip_l", "clip_g"):
        enc = bb.encoder(key)
        with torch.no_grad() if key in frozen else nullcontext():
            out = enc.model(ids[key], output_hidden_states=True)
        pooled.append(out[0])
        hidden.append(out.hidden_states[-2].to(dtype=bb.encoders[0].model.dtype))
    clip = torch.cat(hidden, dim=-1)
    keys = [e.key for e in bb.encoders]
    if "t5" in keys:
        t5 = bb.encoder("t5").model
        with torch.no_grad() if "t5" in frozen else nullcontext():
            t5_out = t5(ids["t5"])[0].to(dtype=t5.dtype)
    else:  # SD3 saved without T5: the pipeline uses zeros of the transformer's joint width
        length = int(bb.extra.get("max_sequence_length", MAX_SEQUENCE_LENGTH))
        config: Any = bb.unet.config
        width = int(config.joint_attention_dim)
        t5_out = torch.zeros(clip.shape[0], length, width, device=clip.device, dtype=clip.dtype)
    clip = F.pad(clip, (0, t5_out.shape[-1] - clip.shape[-1]))
    return torch.cat([clip, t5_out], dim=-2), torch.cat(pooled, dim=-1)


__all__ = ["MAX_SEQUENCE_LENGTH", "encode"]
