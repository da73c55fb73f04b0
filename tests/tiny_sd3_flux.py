"""Tiny, random, offline SD3 and Flux pipelines for tests (nothing is downloaded).

Widths are all different so that family/encoder detection is tested for real: CLIP-L 32, CLIP-G 48,
T5 96. The T5 tokenizer is a small unigram (SentencePiece-style) model built with the ``tokenizers``
library and wrapped as transformers' ``T5TokenizerFast``; its words are single pieces (``▁cat``),
anything else falls back to single characters.

>>> pipe = tiny_sd3_pipeline(tmp)                 # doctest: +SKIP
>>> folder = tiny_flux_folder(tmp)                # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch
from tiny_models import WORDS, _text_encoder, tiny_tokenizer

CLIP_L, CLIP_G, T5_WIDTH = 32, 48, 96


def tiny_t5_tokenizer(folder: str | Path):
    """A T5TokenizerFast (unigram, ``</s>`` appended, pad 0 / eos 1 / unk 2) saved in ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    for w in WORDS:
        pieces.append(("▁" + w, -1.0))
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789<>-_,.":
        pieces.append((ch, -5.0))
        pieces.append(("▁" + ch, -5.5))
    pieces = list(dict(pieces).items())
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    fast = T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                           extra_ids=0, model_max_length=512)
    folder = Path(folder)
    fast.save_pretrained(folder)
    return T5TokenizerFast.from_pretrained(folder)


def _t5_encoder(vocab_size: int, seed: int = 0):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=vocab_size, d_model=T5_WIDTH, d_ff=64, d_kv=16, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, relative_attention_max_distance=20, pad_token_id=0,
                   eos_token_id=1, decoder_start_token_id=0, feed_forward_proj="gated-gelu")
    return T5EncoderModel(cfg)


def _vae(latent: int, seed: int, *, shift: float | None):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    extra = {"shift_factor": shift, "use_quant_conv": False, "use_post_quant_conv": False} if shift is not None else {}
    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=latent, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16,
        scaling_factor=1.5, **extra,
    )


def tiny_sd3_pipeline(tmp_path: str | Path, seed: int = 0):
    """A StableDiffusion3Pipeline: CLIP-L (32) + CLIP-G (48) with projections, T5 (96), 16 px images."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    tmp = Path(tmp_path)
    tok, tok2 = tiny_tokenizer(tmp / "tok_l"), tiny_tokenizer(tmp / "tok_g")
    tok3 = tiny_t5_tokenizer(tmp / "tok_t5")
    te = _text_encoder(len(tok), CLIP_L, projection=True, seed=seed)
    te2 = _text_encoder(len(tok2), CLIP_G, projection=True, seed=seed + 1)
    te3 = _t5_encoder(len(tok3), seed=seed + 2)
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, out_channels=4, num_layers=1, attention_head_dim=8,
        num_attention_heads=4, joint_attention_dim=T5_WIDTH, caption_projection_dim=32,
        pooled_projection_dim=CLIP_L + CLIP_G, pos_embed_max_size=16,
    )
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=sched, vae=_vae(4, seed, shift=0.1),
        text_encoder=te, tokenizer=tok, text_encoder_2=te2, tokenizer_2=tok2, text_encoder_3=te3, tokenizer_3=tok3,
    )


def tiny_flux_pipeline(tmp_path: str | Path, seed: int = 0, guidance_embeds: bool = True):
    """A FluxPipeline (dev-like: guidance embedding, dynamic shift): CLIP-L (32) pooled + T5 (96).

    ``guidance_embeds=False`` is FLUX.1-schnell's layout (no guidance input)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    tmp = Path(tmp_path)
    tok = tiny_tokenizer(tmp / "tok_l")
    tok2 = tiny_t5_tokenizer(tmp / "tok_t5")
    te = _text_encoder(len(tok), CLIP_L, seed=seed)
    te2 = _t5_encoder(len(tok2), seed=seed + 2)
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=T5_WIDTH, pooled_projection_dim=CLIP_L, guidance_embeds=guidance_embeds,
        axes_dims_rope=(4, 4, 8),
    )
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                            base_image_seq_len=256, max_image_seq_len=4096)
    return FluxPipeline(transformer=transformer, scheduler=sched, vae=_vae(4, seed, shift=0.1),
                        text_encoder=te, tokenizer=tok, text_encoder_2=te2, tokenizer_2=tok2)


def _save(pipe, out: Path, size: int) -> Path:
    import json

    pipe.save_pretrained(out)
    # Sampling defaults for the tiny model: small pictures, few steps (read by ticraft's model_defaults).
    (out / "ticraft.json").write_text(json.dumps({"sampling": {"steps": 2, "size": size}}))
    return out


def tiny_sd3_folder(tmp_path: str | Path, seed: int = 0) -> Path:
    """Save :func:`tiny_sd3_pipeline` as a diffusers folder (with small sampling defaults)."""
    return _save(tiny_sd3_pipeline(tmp_path, seed), Path(tmp_path) / "tiny-sd3", 16)


def tiny_flux_folder(tmp_path: str | Path, seed: int = 0, guidance_embeds: bool = True) -> Path:
    """Save :func:`tiny_flux_pipeline` as a diffusers folder (with small sampling defaults)."""
    return _save(tiny_flux_pipeline(tmp_path, seed, guidance_embeds), Path(tmp_path) / "tiny-flux", 16)
