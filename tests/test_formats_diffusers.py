"""Files ticraft writes load in diffusers' own ``load_textual_inversion`` (tiny offline pipelines).

SD: one call per file. SDXL: one call per text encoder, as the diffusers docs show — either
both halves of a single kohya-style file, or the two files of a diffusers-sdxl export.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from ticraft.concept import Concept
from ticraft.formats import write_concept

import diffusers  # noqa: F401,E402 (a core dependency: missing is a failure, not a skip)
from tiny_models import tiny_sd_pipeline, tiny_sdxl_pipeline  # noqa: E402


def rows(tokenizer, text_encoder, token: str, n: int) -> torch.Tensor:
    """The embedding rows diffusers gave ``token`` (multi-vector tokens are token, token_1, ...)."""
    names = [token] + [f"{token}_{i}" for i in range(1, n)]
    ids = tokenizer.convert_tokens_to_ids(names)
    assert tokenizer.unk_token_id not in ids
    return text_encoder.get_input_embeddings().weight[ids].detach()


def concept(token: str, widths: dict[str, int], n: int = 3) -> Concept:
    g = torch.Generator().manual_seed(len(token))
    return Concept(token, {k: torch.randn(n, d, generator=g) for k, d in widths.items()},
                   family="sdxl" if len(widths) == 2 else "custom")


@pytest.mark.parametrize("layout,name,needs_token", [
    ("diffusers", "learned_embeds.safetensors", False),
    ("diffusers", "learned_embeds.bin", False),
    ("a1111", "emb.pt", False),
    ("a1111", "emb.safetensors", True),  # one tensor "emb_params": diffusers takes its token from token=
    ("kohya", "emb.safetensors", True),
])
def test_sd_pipeline_loads_our_exports(tmp_path, layout, name, needs_token):
    pipe = tiny_sd_pipeline(tmp_path)
    c = concept("<cat-toy>", {"clip": 32})
    path = write_concept(c, tmp_path / name, layout=layout)[0]
    pipe.load_textual_inversion(str(path), **({"token": c.token} if needs_token else {}))
    assert torch.equal(rows(pipe.tokenizer, pipe.text_encoder, c.token, 3), c.vectors["clip"])
    prompt = pipe.maybe_convert_prompt("a photo of <cat-toy>", pipe.tokenizer)
    assert prompt == "a photo of <cat-toy> <cat-toy>_1 <cat-toy>_2"
    embeds, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
    assert embeds.shape == (1, 77, 32) and torch.isfinite(embeds).all()


def test_sdxl_pipeline_loads_single_file_one_call_per_encoder(tmp_path):
    pipe = tiny_sdxl_pipeline(tmp_path)
    c = concept("<xl-toy>", {"clip_l": 32, "clip_g": 64})
    path = write_concept(c, tmp_path / "xl.safetensors", layout="kohya-sdxl")[0]
    state = load_file(path)
    pipe.load_textual_inversion(state["clip_l"], token=c.token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(state["clip_g"], token=c.token, text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    assert torch.equal(rows(pipe.tokenizer, pipe.text_encoder, c.token, 3), c.vectors["clip_l"])
    assert torch.equal(rows(pipe.tokenizer_2, pipe.text_encoder_2, c.token, 3), c.vectors["clip_g"])
    embeds, _, pooled, _ = pipe.encode_prompt("a photo of <xl-toy>", device="cpu", do_classifier_free_guidance=False)
    assert embeds.shape == (1, 77, 96) and pooled.shape == (1, 64)


def test_sdxl_pipeline_loads_diffusers_pair_one_call_per_file(tmp_path):
    pipe = tiny_sdxl_pipeline(tmp_path)
    c = concept("<xl-pair>", {"clip_l": 32, "clip_g": 64})
    lp, gp = write_concept(c, tmp_path / "learned_embeds.safetensors", layout="diffusers-sdxl")
    pipe.load_textual_inversion(str(lp), text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(str(gp), text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
    assert torch.equal(rows(pipe.tokenizer, pipe.text_encoder, c.token, 3), c.vectors["clip_l"])
    assert torch.equal(rows(pipe.tokenizer_2, pipe.text_encoder_2, c.token, 3), c.vectors["clip_g"])
