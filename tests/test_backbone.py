"""ticraft.models.backbone: loading tiny diffusers folders, family detection, errors, concepts spliced in,
pipelines built from the loaded components."""

from __future__ import annotations

import shutil

import pytest
import torch

from ticraft.models.backbone import (
    Backbone,
    BackboneError,
    components_from_pipeline,
    detect_family,
    load_diffusers_folder,
)
from ticraft.models.load import load_backbone, resolve_model_spec
from ticraft.concept import Concept
from ticraft.user_config import set_config_value


@pytest.fixture(scope="module")
def sd(tiny_sd_dir) -> Backbone:
    return load_backbone(str(tiny_sd_dir))


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl_dir) -> Backbone:
    return load_backbone(str(tiny_sdxl_dir))


def _clean(bb: Backbone) -> Backbone:
    for token in list(bb.loaded_concepts):
        bb.unload_concept(token)
    return bb


# ------------------------------------------------------------------ loading
def test_load_tiny_sd_folder(sd, tiny_sd_dir):
    assert sd.family == "custom" and sd.name == tiny_sd_dir.name and sd.source == str(tiny_sd_dir)
    assert [e.key for e in sd.encoders] == ["clip"] and sd.dims == {"clip": 32}
    assert sd.pipeline_class == "StableDiffusionPipeline"
    for module in sd.modules():
        assert not module.training and not any(p.requires_grad for p in module.parameters())
    assert sd.device == torch.device("cpu") and sd.dtype == torch.float32
    assert sd.fingerprint() == load_backbone(str(tiny_sd_dir)).fingerprint()


def test_load_tiny_sdxl_folder(sdxl):
    assert sdxl.family == "sdxl" and [e.key for e in sdxl.encoders] == ["clip_l", "clip_g"]
    assert sdxl.dims == {"clip_l": 32, "clip_g": 64}
    assert sdxl.encoder("clip_g").dim == 64
    with pytest.raises(BackboneError, match="no text encoder 'clip'"):
        sdxl.encoder("clip")


@pytest.mark.parametrize("index, widths, family", [
    ({"_class_name": "StableDiffusionPipeline"}, [768], "sd1"),
    ({"_class_name": "StableDiffusionPipeline"}, [1024], "sd2"),
    ({"_class_name": "StableDiffusionXLPipeline"}, [768, 1280], "sdxl"),
    ({"_class_name": "StableDiffusionPipeline"}, [32], "custom"),
    ({}, [512], "custom"),
])
def test_detect_family_from_configs(index, widths, family):
    assert detect_family(index, widths) == family


def test_family_from_folder_configs_and_override(tiny_sd_dir, tmp_path):
    assert load_diffusers_folder(tiny_sd_dir, family="sd1").family == "sd1"
    assert load_backbone(str(tiny_sd_dir), family="toy").family == "toy"


def test_missing_components_are_named(tiny_sd_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sd_dir, broken)
    shutil.rmtree(broken / "vae")
    shutil.rmtree(broken / "unet")
    with pytest.raises(BackboneError, match="lacks unet, vae"):
        load_backbone(str(broken))


def test_unreadable_component_is_a_clear_error(tiny_sd_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sd_dir, broken)
    (broken / "unet" / "config.json").write_text("{ not json")
    with pytest.raises(BackboneError, match="could not load the model"):
        load_backbone(str(broken))


def test_not_a_folder_and_unknown_specs(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(BackboneError, match="model_index.json is missing"):
        load_backbone(str(tmp_path / "plain"))
    with pytest.raises(BackboneError, match="not found"):
        load_backbone(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(BackboneError, match="unknown model 'weird'"):
        load_backbone("weird")
    with pytest.raises(BackboneError, match="not in the local Hugging Face cache"):
        load_backbone("someorg/somemodel")


def test_toy_weights_missing_says_how_to_make_them(monkeypatch, tmp_path):
    import ticraft.models.load as load

    monkeypatch.setattr(load, "TOY_WEIGHTS", tmp_path / "weights")
    with pytest.raises(BackboneError, match="train-base"):
        load_backbone("toy")


def test_default_model_comes_from_the_config(tiny_sd_dir):
    assert resolve_model_spec(None) == "toy"
    set_config_value("model", str(tiny_sd_dir))
    assert resolve_model_spec(None) == str(tiny_sd_dir)
    assert resolve_model_spec("toy") == "toy"  # --model wins
    assert load_backbone().source == str(tiny_sd_dir)


def test_device_and_dtype(tiny_sd_dir):
    bb = load_backbone(str(tiny_sd_dir), dtype=torch.bfloat16)
    assert bb.dtype == torch.bfloat16 and bb.encoders[0].table.dtype == torch.bfloat16


# ----------------------------------------------------------------- concepts
def test_concept_with_wrong_dims_is_refused(sd, sdxl):
    with pytest.raises(BackboneError, match=r"has vectors \{'clip': 768\}.*expects \{'clip': 32\}"):
        sd.load_concept(Concept("<big>", {"clip": torch.randn(1, 768)}))
    with pytest.raises(BackboneError, match="expects"):
        sdxl.load_concept(Concept("<one>", {"clip": torch.randn(1, 32)}))
    with pytest.raises(BackboneError, match="learned for sd1"):
        sdxl.load_concept(Concept("<sd1>", {"clip": torch.randn(1, 768)}, family="sd1"))


def test_token_already_a_word_is_refused(sd):
    bb = _clean(sd)
    n_tokens = len(bb.encoders[0].tokenizer)
    for word in ("cat", "<|endoftext|>"):  # "cat</w>" is the tiny vocabulary's entry; a special token too
        with pytest.raises(BackboneError, match="already a word"):
            bb.add_placeholder(word, {"clip": torch.randn(1, 32)})
    assert len(bb.encoders[0].tokenizer) == n_tokens  # nothing was added on the way


def test_concept_can_be_reloaded_after_unloading(sd):
    bb = _clean(sd)
    concept = Concept("<again>", {"clip": torch.randn(1, 32)}, family="custom")
    first = bb.load_concept(concept)
    assert bb.load_concept(concept) == first  # reload in place
    bb.unload_concept("<again>")
    assert bb.load_concept(concept) == first  # and after unloading: same ids, no "already a word"
    bb.unload_concept("<again>")


def test_spliced_concept_changes_text_output_but_not_the_table(sd):
    bb = _clean(sd)
    enc = bb.encoders[0]
    table_before = enc.table.detach().clone()
    vocab_before = len(enc.tokenizer)

    def encode(prompt: str) -> torch.Tensor:
        ids = enc.tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt").input_ids
        with torch.no_grad():
            return enc.model(ids).last_hidden_state

    base = encode("a photo of a cat")
    concept = Concept("<thing>", {"clip": torch.randn(2, 32)}, family="custom")
    ids = bb.load_concept(concept)
    assert len(ids["clip"]) == 2 and min(ids["clip"]) >= vocab_before  # new ids after the vocabulary
    assert "<thing>" in bb.loaded_concepts
    with_concept = encode("a photo of <thing> <thing>_1")
    assert not torch.allclose(with_concept, encode("a photo of a cat"))
    assert torch.equal(encode("a photo of a cat"), base)  # prompts without the token are untouched
    assert torch.equal(enc.table, table_before)  # the frozen table never changes, bitwise
    # the spliced rows are exactly the concept's vectors
    got = enc.model.get_input_embeddings()(torch.tensor([ids["clip"]]))[0]
    assert torch.equal(got, concept.vectors["clip"])
    # reloading replaces; unloading removes
    bb.load_concept(concept.replace(vectors={"clip": torch.zeros(2, 32)}))
    assert torch.equal(enc.model.get_input_embeddings()(torch.tensor([ids["clip"]]))[0], torch.zeros(2, 32))
    bb.unload_concept("<thing>")
    assert "<thing>" not in bb.loaded_concepts and torch.equal(enc.table, table_before)


def test_token_vector_reads_table_rows(sd):
    rows = _clean(sd).token_vector("cat")
    ids = sd.encoders[0].tokenizer("cat", add_special_tokens=False)["input_ids"]
    assert torch.equal(rows["clip"], sd.encoders[0].table[ids])
    with pytest.raises(BackboneError, match="no tokens"):
        sd.token_vector("")


def test_sdxl_concept_splices_both_encoders(sdxl):
    bb = _clean(sdxl)
    ids = bb.load_concept(Concept("<xl>", {"clip_l": torch.randn(1, 32), "clip_g": torch.randn(1, 64)}))
    assert set(ids) == {"clip_l", "clip_g"}
    bb.unload_concept("<xl>")


# ---------------------------------------------------------------- pipelines
@pytest.mark.parametrize("kind, cls", [("text2img", "StableDiffusionPipeline"),
                                       ("img2img", "StableDiffusionImg2ImgPipeline"),
                                       ("inpaint", "StableDiffusionInpaintPipeline")])
def test_sd_pipelines(sd, kind, cls):
    pipe = sd.pipeline(kind)
    assert type(pipe).__name__ == cls
    assert pipe.unet is sd.unet and pipe.text_encoder is sd.encoders[0].model  # shared, not copied


@pytest.mark.parametrize("kind, cls", [("text2img", "StableDiffusionXLPipeline"),
                                       ("img2img", "StableDiffusionXLImg2ImgPipeline"),
                                       ("inpaint", "StableDiffusionXLInpaintPipeline")])
def test_sdxl_pipelines(sdxl, kind, cls):
    pipe = sdxl.pipeline(kind)
    assert type(pipe).__name__ == cls
    assert pipe.text_encoder_2 is sdxl.encoders[1].model and pipe.tokenizer_2 is sdxl.encoders[1].tokenizer


def test_text2img_runs_with_a_concept(sd):
    bb = _clean(sd)
    bb.load_concept(Concept("<run>", {"clip": torch.randn(1, 32)}, family="custom"))
    out = bb.pipeline()("a photo of <run>", num_inference_steps=2, height=16, width=16, output_type="np",
                        generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (1, 16, 16, 3)
    bb.unload_concept("<run>")


def test_components_from_pipeline_wraps_a_built_pipeline(tmp_path):
    from tiny_models import tiny_sdxl_pipeline

    bb = components_from_pipeline(tiny_sdxl_pipeline(tmp_path), name="mem")
    assert bb.family == "sdxl" and bb.name == "mem" and bb.dims == {"clip_l": 32, "clip_g": 64}
