"""SD3 and Flux backbones: loading, the splice through T5 and CLIP, conditioning equal to diffusers' bit for bit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from ticraft.concept import Concept
from ticraft.generate.sample import prepare_pipeline
from ticraft.models import mmdit
from ticraft.models.backbone import BackboneError
from ticraft.models.load import load_backbone

PROMPTS = ["a photo of <c> on the beach", "a red <c> toy"]


@pytest.fixture(scope="module")
def sd3(tiny_sd3_dir, one_torch_thread):
    return load_backbone(str(tiny_sd3_dir))


@pytest.fixture(scope="module")
def flux(tiny_flux_dir, one_torch_thread):
    return load_backbone(str(tiny_flux_dir))


def _word_concept(bb, word: str, token: str = "<c>") -> Concept:
    """A concept whose vector in every encoder is the table row of ``word`` (a one-token word everywhere)."""
    vecs = bb.token_vector(word)
    assert all(v.shape[0] == 1 for v in vecs.values()), vecs
    return Concept(token, vecs, family=bb.family)


@pytest.mark.parametrize("which", ["sd3", "flux"])
def test_loaded_encoders_and_family(which, request):
    bb = request.getfixturevalue(which)
    want = {"sd3": {"clip_l": 32, "clip_g": 48, "t5": 96}, "flux": {"clip_l": 32, "t5": 96}}[which]
    assert bb.family == which and bb.dims == want
    assert bb.encoder("t5").kind == "t5" and bb.encoder("clip_l").kind == "clip"
    assert all(not p.requires_grad for m in bb.modules() for p in m.parameters())


@pytest.mark.parametrize("which", ["sd3", "flux"])
def test_conditioning_equals_diffusers_encode_prompt(which, request):
    """With a concept spliced in every encoder, our differentiable encoding == the pipeline's, bit for bit."""
    bb = request.getfixturevalue(which)
    g = torch.Generator().manual_seed(3)
    concept = Concept("<c>", {k: torch.randn(2, d, generator=g) for k, d in bb.dims.items()}, family=bb.family)
    bb.load_concept(concept)
    try:
        expanded = [p.replace("<c>", "<c> <c>_1") for p in PROMPTS]
        ids = mmdit.tokenize(bb, expanded)
        # the placeholder really is in every encoder's input
        for e in bb.encoders:
            assert (ids[e.key] == e.tokenizer.convert_tokens_to_ids("<c>_1")).sum() == 2
        with torch.no_grad():
            ours, pooled = mmdit.encode(bb, ids)
            pipe = prepare_pipeline(bb)  # diffusers' own TI prompt rewrite off, as ticraft samples
            if which == "sd3":
                ref, _, ref_pooled, _ = pipe.encode_prompt(expanded, None, None, do_classifier_free_guidance=False)
            else:
                ref, ref_pooled, _ = pipe.encode_prompt(expanded, None)
        assert torch.equal(ours, ref) and torch.equal(pooled, ref_pooled)
        assert ours.shape[1] == (77 if which == "sd3" else 0) + bb.extra["max_sequence_length"]
    finally:
        bb.unload_concept("<c>")


@pytest.mark.parametrize("which", ["sd3", "flux"])
def test_inserted_token_is_seen_exactly_as_the_real_word(which, request):
    """A placeholder holding the row of 'cat' gives the conditioning of the word 'cat' itself, bit for bit.

    T5 has no position table: the relative attention bias depends on positions only, so the placeholder at
    the word's position must give identical outputs; CLIP likewise (its position table is untouched).
    """
    bb = request.getfixturevalue(which)
    bb.load_concept(_word_concept(bb, "cat"))
    try:
        with torch.no_grad():
            a = mmdit.encode(bb, mmdit.tokenize(bb, ["a photo of <c> on the beach"]))
            b = mmdit.encode(bb, mmdit.tokenize(bb, ["a photo of cat on the beach"]))
            c = mmdit.encode(bb, mmdit.tokenize(bb, ["a photo of dog on the beach"]))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], c[0])  # the word matters: the test can fail
    finally:
        bb.unload_concept("<c>")


def test_gradients_reach_only_the_spliced_vectors(sd3):
    rows = {k: torch.nn.Parameter(torch.randn(1, d)) for k, d in sd3.dims.items()}
    tables = {e.key: e.table.detach().clone() for e in sd3.encoders}
    sd3.add_placeholder("<g>", rows)
    try:
        emb, pooled = mmdit.encode(sd3, mmdit.tokenize(sd3, ["a photo of <g>"]))
        (emb.square().sum() + pooled.square().sum()).backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rows.values())
        assert all(e.table.grad is None and torch.equal(e.table, tables[e.key]) for e in sd3.encoders)
    finally:
        sd3.unload_concept("<g>")


def test_t5_vocabulary_strings_are_readable(flux):
    words = flux.encoder("t5").token_strings()
    assert "cat" in words and not any(w.startswith("▁") for w in words)


@pytest.mark.parametrize("victim, named", [
    ("tokenizer_2/tokenizer.json", "tokenizer.json"),
    ("text_encoder_2/config.json", "config.json"),
    ("text_encoder/model.safetensors", "model.safetensors"),
])
def test_missing_files_are_named(tiny_flux_dir, tmp_path, victim, named):
    copy = tmp_path / "flux"
    shutil.copytree(tiny_flux_dir, copy)
    (copy / victim).unlink()
    with pytest.raises(BackboneError, match=named.replace(".", r"\.")) as err:
        load_backbone(str(copy))
    assert "\n" not in str(err.value)


def test_sd3_without_t5_uses_zeros(tiny_sd3_dir, tmp_path):
    copy = tmp_path / "sd3"
    shutil.copytree(tiny_sd3_dir, copy)
    index = json.loads((copy / "model_index.json").read_text())
    index["text_encoder_3"] = index["tokenizer_3"] = [None, None]
    (copy / "model_index.json").write_text(json.dumps(index))
    bb = load_backbone(str(copy))
    assert [e.key for e in bb.encoders] == ["clip_l", "clip_g"]
    with torch.no_grad():
        emb, _ = mmdit.encode(bb, mmdit.tokenize(bb, ["a cat"]))
        ref, _, _, _ = bb.pipeline().encode_prompt("a cat", None, None, do_classifier_free_guidance=False)
    assert torch.equal(emb, ref) and emb[:, 77:].abs().sum() == 0


def test_models_lists_sd3_and_flux_and_cached_hub_ids_load(tiny_sd3_dir, tiny_flux_dir, tmp_path, monkeypatch):
    from ticraft.models.listing import find_models

    cache = tmp_path / "hub"
    for repo, src in (("org/tiny-sd3", tiny_sd3_dir), ("org/tiny-flux", tiny_flux_dir)):
        snap = cache / ("models--" + repo.replace("/", "--")) / "snapshots" / "0123abc"
        shutil.copytree(src, snap)
        (snap.parent.parent / "refs").mkdir()
        (snap.parent.parent / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    found = {m.name: m for m in find_models(extra_dirs=[tiny_sd3_dir.parent])}
    assert found["org/tiny-sd3"].family == "sd3" and found["org/tiny-flux"].family == "flux"
    assert any(m.family == "sd3" and m.kind == "folder" for m in found.values())
    bb = load_backbone("org/tiny-flux")
    assert bb.family == "flux" and bb.name == "org/tiny-flux"
    # a cached snapshot without the transformer's weights is refused, naming the component
    (cache / "models--org--tiny-sd3" / "snapshots" / "0123abc" / "transformer" /
     "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(BackboneError, match="transformer"):
        load_backbone("org/tiny-sd3")


@pytest.mark.parametrize("key, family", [("model.diffusion_model.joint_blocks.0.attn.qkv.weight", "SD3"),
                                         ("double_blocks.0.img_attn.qkv.weight", "Flux")])
def test_single_files_say_exactly_what_is_missing(key, family, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({key: torch.zeros(2, 2)}, str(path))
    with pytest.raises(BackboneError, match=f"single-file {family} checkpoint.*spiece.model.*hf download") as err:
        load_backbone(str(path))
    assert "\n" not in str(err.value)
