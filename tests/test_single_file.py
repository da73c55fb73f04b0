"""Single-file checkpoints (ticraft.models.single_file): detection, shipped configs, CLIP tokenizer, safe
loading, offline loading of tiny SD-1/SD-2/SDXL-layout files, the local HF cache.

The tiny checkpoints are real diffusers pipelines written in the original key layout
(tests/ldm_layout.py) and read back through diffusers' ``from_single_file`` converters; they load
with a tiny config folder (``config_dir=``) because the shipped configs describe the full-size
architectures. The shipped configs themselves are checked on the meta device (parameter counts,
key coverage of diffusers' converters); loading a full-size random SD-1.5/SD-2 file through them is
the ``slow`` test at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ldm_layout import clip_to_ldm, open_clip_to_ldm, pipeline_to_ldm, unet_to_ldm, vae_to_ldm
from ticraft.models import single_file as sf
from ticraft.models.backbone import BackboneError
from ticraft.models.load import load_backbone
from tiny_models import tiny_sd_pipeline, tiny_sdxl_pipeline


# ------------------------------------------------------------------ fixtures
def _config_only_copy(pipe, dest: Path) -> Path:
    """save_pretrained, then drop every weight file: the weights must come from the single file."""
    pipe.save_pretrained(dest)
    for p in list(dest.rglob("*")):
        if p.suffix in (".safetensors", ".bin"):
            p.unlink()
    return dest


def _save(sd: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{layout: (pipeline, checkpoint file, config folder)} for sd1 / sd2 / sdxl layouts."""
    root = tmp_path_factory.mktemp("single_file")
    out = {}
    for layout, make in (("sd1", tiny_sd_pipeline), ("sd2", tiny_sd_pipeline), ("sdxl", tiny_sdxl_pipeline)):
        pipe = make(root / f"{layout}-build", seed=3)
        ckpt = _save(pipeline_to_ldm(pipe, layout), root / f"tiny-{layout}.safetensors")
        out[layout] = (pipe, ckpt, _config_only_copy(pipe, root / f"{layout}-config"))
    return out


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # The Backbone wraps the token table in a SplicedEmbedding (".base." in the key); compare through it.
    return {k.replace(".base.", "."): v for k, v in module.state_dict().items()}


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = _state(a), _state(b)
    assert set(sa) == set(sb)
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


# ------------------------------------------------- tiny files, full load path
def test_sd1_layout_loads_bitwise_and_generates_the_same_image(tiny):
    pipe, ckpt, cfg = tiny["sd1"]
    bb = sf.load_single_file(ckpt, config_dir=cfg)
    assert bb.family == "sd1" and [e.key for e in bb.encoders] == ["clip"]
    assert bb.source == str(ckpt) and bb.extra["single_file"] and bb.extra["prediction_type"] == "epsilon"
    for ours, ref in ((bb.unet, pipe.unet), (bb.vae, pipe.vae), (bb.encoders[0].model, pipe.text_encoder)):
        _assert_same_weights(ours, ref)
        assert not any(p.requires_grad for p in ours.parameters())
    assert bb.encoders[0].tokenizer.get_vocab() == pipe.tokenizer.get_vocab()
    kwargs = dict(prompt="a photo of a cat", num_inference_steps=2, height=16, width=16, output_type="np")
    ours = bb.pipeline("text2img")(generator=torch.Generator().manual_seed(0), **kwargs).images
    ref = pipe(generator=torch.Generator().manual_seed(0), **kwargs).images
    assert abs(ours - ref).max() < 1e-5


def test_sd2_layout_open_clip_text_encoder_and_v_pred_marker(tiny, tmp_path):
    pipe, ckpt, cfg = tiny["sd2"]
    from safetensors.torch import load_file

    sd = load_file(str(ckpt))
    sd["v_pred"] = torch.tensor([])  # the marker ComfyUI/A1111 put into v-prediction checkpoints
    bb = sf.load_single_file(_save(sd, tmp_path / "tiny-sd2-v.safetensors"), config_dir=cfg)
    assert bb.family == "sd2"
    _assert_same_weights(bb.encoders[0].model, pipe.text_encoder)  # fused qkv split back exactly
    _assert_same_weights(bb.unet, pipe.unet)
    assert bb.scheduler.config.prediction_type == "v_prediction"
    assert bb.extra["prediction_type_why"] == "v_pred key"


def test_sdxl_layout_two_encoders(tiny):
    pipe, ckpt, cfg = tiny["sdxl"]
    bb = sf.load_single_file(ckpt, config_dir=cfg)
    assert bb.family == "sdxl" and [e.key for e in bb.encoders] == ["clip_l", "clip_g"]
    assert bb.dims == {"clip_l": 32, "clip_g": 64}
    _assert_same_weights(bb.encoders[0].model, pipe.text_encoder)
    _assert_same_weights(bb.encoders[1].model, pipe.text_encoder_2)  # incl. the transposed text_projection
    _assert_same_weights(bb.unet, pipe.unet)
    assert bb.extra["force_zeros_for_empty_prompt"] is True
    assert type(bb.pipeline("text2img")).__name__ == "StableDiffusionXLPipeline"


def test_ckpt_is_read_weights_only_and_nested_state_dict_unwrapped(tiny, tmp_path):
    pipe, ckpt, cfg = tiny["sd1"]
    from safetensors.torch import load_file

    legacy = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(str(ckpt)), "global_step": 470000}, legacy)
    bb = sf.load_single_file(legacy, config_dir=cfg)
    _assert_same_weights(bb.unet, pipe.unet)


def test_ema_weights_are_the_ones_loaded(tiny, tmp_path):
    """Full (non-pruned) SD-1 files carry training and EMA UNet weights; EMA is what inference wants."""
    pipe, ckpt, cfg = tiny["sd1"]
    from safetensors.torch import load_file

    sd = load_file(str(ckpt))
    for key in [k for k in sd if k.startswith(sf.UNET_PREFIX)]:
        sd["model_ema." + "".join(key.split(".")[1:])] = sd[key] + 1.0  # LDM's flattened EMA names
    bb = sf.load_single_file(_save(sd, tmp_path / "with-ema.safetensors"), config_dir=cfg)
    assert torch.equal(bb.unet.conv_out.weight, pipe.unet.conv_out.weight + 1.0)
    _assert_same_weights(bb.vae, pipe.vae)


def test_family_override_reaches_single_files_through_load_backbone(tiny):
    _, ckpt, _ = tiny["sd2"]
    with pytest.raises(BackboneError, match="sd2 checkpoint .* not sdxl"):
        load_backbone(str(ckpt), family="sdxl")


def test_ckpt_with_lightning_callbacks_and_numpy_scalars_loads(tmp_path, monkeypatch):
    """Many SD-1 .ckpt files pickle a Lightning ModelCheckpoint and numpy scalars next to the weights."""
    import numpy as np

    name = "pytorch_lightning.callbacks.model_checkpoint"
    module = types.ModuleType(name)

    class ModelCheckpoint:  # stands in for Lightning's class while the file is written
        def __init__(self) -> None:
            self.best_model_score = 0.25

    ModelCheckpoint.__module__, ModelCheckpoint.__qualname__ = name, "ModelCheckpoint"
    module.ModelCheckpoint = ModelCheckpoint
    for mod in ("pytorch_lightning", "pytorch_lightning.callbacks", name):
        monkeypatch.setitem(sys.modules, mod, module if mod == name else types.ModuleType(mod))
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.w": torch.ones(2)}, "epoch": np.int64(6),
                "callbacks": {ModelCheckpoint: {"best": 1.0}}, "checkpoint_callback": ModelCheckpoint()}, path)
    for mod in ("pytorch_lightning", "pytorch_lightning.callbacks", name):
        monkeypatch.delitem(sys.modules, mod)
    assert list(sf.load_state_dict_safely(path)) == ["model.diffusion_model.w"]


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.w": torch.ones(1)}, "x": Payload()}, path)
    with pytest.raises(BackboneError, match="needs code to load"):
        sf.load_single_file(path)
    assert not marker.exists()


def test_loading_never_opens_a_socket(tiny, monkeypatch):
    """No network, even though diffusers' from_single_file would fetch configs: HF_HUB_OFFLINE in-process."""
    import huggingface_hub.constants as hc

    before = (hc.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"))
    seen: list[bool] = []

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    real = sf._build_backbone

    def spy(*args, **kwargs):
        seen.append(hc.is_offline_mode() and os.environ.get("HF_HUB_OFFLINE") == "1")
        return real(*args, **kwargs)

    monkeypatch.setattr(sf, "_build_backbone", spy)
    _, ckpt, cfg = tiny["sd1"]
    sf.load_single_file(ckpt, config_dir=cfg)
    assert seen == [True]
    assert hc.HF_HUB_OFFLINE is False  # restored afterwards
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", before[0])


def test_missing_tensors_are_named(tiny, tmp_path):
    _, ckpt, cfg = tiny["sd1"]
    from safetensors.torch import load_file

    sd = load_file(str(ckpt))
    del sd["model.diffusion_model.out.2.weight"]
    with pytest.raises(BackboneError, match="unet"):
        sf.load_single_file(_save(sd, tmp_path / "cut.safetensors"), config_dir=cfg)
    no_vae = {k: v for k, v in load_file(str(ckpt)).items() if not k.startswith("first_stage_model.")}
    with pytest.raises(BackboneError, match="VAE"):
        sf.load_single_file(_save(no_vae, tmp_path / "novae.safetensors"), config_dir=cfg)


def test_load_backbone_dispatches_files(tiny, tmp_path):
    with pytest.raises(BackboneError, match="not found"):
        load_backbone(str(tmp_path / "absent.safetensors"))
    bad = tmp_path / "notes.safetensors"
    bad.write_bytes(b"\x00" * 4)
    with pytest.raises(BackboneError):
        load_backbone(str(bad))


# --------------------------------------------------------- detection (keys)
@pytest.fixture(scope="module")
def real_layouts():
    """Key → meta tensor dicts in the original layout for the full-size shipped architectures."""
    import diffusers
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    out = {}
    for name in ("sd1", "sd2-v", "sdxl"):
        root = sf.CONFIG_ROOT / name
        with init_empty_weights():
            unet = diffusers.UNet2DConditionModel.from_config(diffusers.UNet2DConditionModel.load_config(root / "unet"))
            vae = diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(root / "vae"))
            te = CLIPTextModel(CLIPTextConfig.from_pretrained(root / "text_encoder"))
            te2 = (CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(root / "text_encoder_2"))
                   if name == "sdxl" else None)
        sd = unet_to_ldm(unet.state_dict(), unet.config)
        sd.update(vae_to_ldm(vae.state_dict(), vae.config))
        if name == "sd1":
            sd.update(clip_to_ldm(te.state_dict(), sf.SD1_TEXT_PREFIX))
        elif name == "sd2-v":
            sd.update(open_clip_to_ldm(te.state_dict(), sf.SD2_TEXT_PREFIX,
                                       projection=torch.empty(1024, 1024, device="meta")))
        else:
            sd.update(clip_to_ldm(te.state_dict(), sf.SDXL_TEXT_L_PREFIX))
            sd.update(open_clip_to_ldm(te2.state_dict(), sf.SDXL_TEXT_G_PREFIX))
        out[name] = (sd, unet, vae, te, te2)
    return out


def _shapes(sd):
    return {k: tuple(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize("name, family, config, diffusers_type", [
    ("sd1", "sd1", "sd1", "v1"), ("sd2-v", "sd2", "sd2-v", "v2"), ("sdxl", "sdxl", "sdxl", "xl_base"),
])
def test_detect_real_layouts_agrees_with_diffusers(real_layouts, name, family, config, diffusers_type):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    sd = real_layouts[name][0]
    info = sf.detect_checkpoint(_shapes(sd))
    assert (info.family, info.config) == (family, config)
    assert infer_diffusers_model_type(sd) == diffusers_type  # diffusers' own detection, on the same keys
    assert sf._cross_attention_width(_shapes(sd)) == sf.CROSS_ATTN_WIDTH[family]


@pytest.mark.parametrize("name", ["sd1", "sd2-v", "sdxl"])
def test_shipped_configs_fit_diffusers_converters_for_every_key(real_layouts, name):
    """diffusers' LDM→diffusers converters, run with our shipped configs, produce exactly each model's keys."""
    from diffusers.loaders import single_file_utils as U

    sd, unet, vae, te, te2 = real_layouts[name]
    for conv, ref in ((U.convert_ldm_unet_checkpoint(sd, dict(unet.config)), unet.state_dict()),
                      (U.convert_ldm_vae_checkpoint(sd, dict(vae.config)), vae.state_dict())):
        assert set(conv) == set(ref)
        assert all(conv[k].shape == ref[k].shape for k in ref)
    te_ref = {("text_model." + k if not k.startswith("text_model.") else k): v for k, v in te.state_dict().items()
              if not k.endswith("position_ids")}
    if name == "sd2-v":
        text = U.convert_open_clip_checkpoint(te, sd, prefix=sf.SD2_TEXT_PREFIX)
        assert set(text) - {"text_projection.weight"} == set(te_ref)
    else:
        text = U.convert_ldm_clip_checkpoint(sd)
        assert set(text) == set(te_ref)
    if te2 is not None:
        text2 = U.convert_open_clip_checkpoint(te2, sd, prefix=sf.SDXL_TEXT_G_PREFIX)
        assert set(text2) == {k for k in te2.state_dict() if not k.endswith("position_ids")}


def test_sd2_prediction_type_from_probe_override_and_family(real_layouts):
    shapes = _shapes(real_layouts["sd2-v"][0])
    assert sf.SD2_V_PROBE_KEY in shapes
    assert sf.detect_checkpoint(shapes, v_probe_std=0.2).config == "sd2-v"
    eps = sf.detect_checkpoint(shapes, v_probe_std=0.01)
    assert (eps.config, eps.prediction_type) == ("sd2-base", "epsilon")
    assert sf.detect_checkpoint(shapes, family="sd2-base", v_probe_std=0.2).config == "sd2-base"
    assert sf.detect_checkpoint(shapes, prediction_type="v_prediction").prediction_type == "v_prediction"
    with pytest.raises(BackboneError, match="sd2 checkpoint .* not sd1"):
        sf.detect_checkpoint(shapes, family="sd1")
    with pytest.raises(BackboneError, match="unknown family"):
        sf.detect_checkpoint(shapes, family="sd3")


def test_detect_refuses_partial_and_variant_files(real_layouts):
    sd1 = _shapes(real_layouts["sd1"][0])
    inpaint = dict(sd1, **{"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)})
    with pytest.raises(BackboneError, match="9 input channels"):
        sf.detect_checkpoint(inpaint)
    refiner = {k.replace(sf.SDXL_TEXT_G_PREFIX, sf.SDXL_REFINER_PREFIX): v
               for k, v in _shapes(real_layouts["sdxl"][0]).items() if not k.startswith(sf.SDXL_TEXT_L_PREFIX)}
    with pytest.raises(BackboneError, match="refiner"):
        sf.detect_checkpoint(refiner)
    with pytest.raises(BackboneError, match="LoRA"):
        sf.detect_checkpoint({"lora_unet_down_blocks_0.alpha": ()})
    unet_only = {k: v for k, v in sd1.items() if k.startswith(sf.UNET_PREFIX)}
    with pytest.raises(BackboneError, match="no text encoder.*suggests sd1"):
        sf.detect_checkpoint(unet_only)
    mixed = dict(_shapes(real_layouts["sd2-v"][0]))
    mixed = {k: v for k, v in mixed.items() if not k.startswith(sf.SD2_TEXT_PREFIX)}
    mixed[sf.SD1_TEXT_PREFIX + "text_model.final_layer_norm.weight"] = (768,)
    with pytest.raises(BackboneError, match="cross-attention is 1024-d"):
        sf.detect_checkpoint(mixed)


def test_ema_weights_are_noticed():
    keys = {sf.UNET_PREFIX + "x": (1,), sf.VAE_PREFIX + "x": (1,), sf.SD1_TEXT_PREFIX + "x": (1,)}
    keys.update({f"model_ema.k{i}": (1,) for i in range(101)})
    assert sf.detect_checkpoint(keys).has_ema


# ---------------------------------------------------------- cheap key reading
def test_checkpoint_shapes_without_loading(tiny, tmp_path):
    _, ckpt, _ = tiny["sd1"]
    shapes = sf.checkpoint_shapes(ckpt)
    assert shapes["model.diffusion_model.input_blocks.0.0.weight"][1] == 4
    legacy = tmp_path / "k.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.a.weight": torch.ones(1), "cond_stage_model.model.b": torch.ones(1)}},
               legacy)
    assert {"model.diffusion_model.a.weight", "cond_stage_model.model.b"} <= set(sf.checkpoint_shapes(legacy))
    old_format = tmp_path / "legacy.ckpt"  # torch < 1.6 files: consecutive pickles, no zip
    torch.save({"state_dict": {"model.diffusion_model.c": torch.ones(1)}}, old_format,
               _use_new_zipfile_serialization=False)
    assert "model.diffusion_model.c" in sf.checkpoint_shapes(old_format)
    assert list(sf.load_state_dict_safely(old_format)) == ["model.diffusion_model.c"]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(BackboneError, match="not a valid .safetensors"):
        sf.checkpoint_shapes(junk)


# ------------------------------------------------------------------ configs
def test_shipped_configs_have_the_published_parameter_counts():
    """Built on the meta device from ticraft/configs: the counts of the real SD-1.5 / SD-2.x / SDXL models."""
    import diffusers
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def count(m):
        return sum(p.numel() for p in m.parameters())

    expected = {  # unet, vae, text_encoder(, text_encoder_2)
        "sd1": (859_520_964, 83_653_863, 123_060_480),
        "sd2-v": (865_910_724, 83_653_863, 340_387_840),
        "sd2-base": (865_910_724, 83_653_863, 340_387_840),
        "sdxl": (2_567_463_684, 83_653_863, 123_060_480, 694_659_840),
    }
    for name, want in expected.items():
        root = sf.CONFIG_ROOT / name
        with init_empty_weights():
            got = [count(diffusers.UNet2DConditionModel.from_config(diffusers.UNet2DConditionModel.load_config(root / "unet"))),
                   count(diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(root / "vae"))),
                   count(CLIPTextModel(CLIPTextConfig.from_pretrained(root / "text_encoder")))]
            if name == "sdxl":
                got.append(count(CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(root / "text_encoder_2"))))
        assert tuple(got) == want, name
    sched = json.loads((sf.CONFIG_ROOT / "sd2-v" / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == "v_prediction"
    assert json.loads((sf.CONFIG_ROOT / "sd2-base" / "scheduler" / "scheduler_config.json").read_text())[
        "prediction_type"] == "epsilon"


def test_clip_tokenizer_from_open_clip_vocabulary():
    from transformers import CLIPTokenizer

    folder = sf.clip_tokenizer_files()
    vocab = json.loads((folder / "vocab.json").read_text())
    assert len(vocab) == 49408 and vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    merges = (folder / "merges.txt").read_text().splitlines()
    assert merges[0].startswith("#version") and len(merges) == 1 + 48894
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    # Ids as in openai/clip-vit-large-patch14 (and so every SD tokenizer).
    assert tok("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert sf.clip_tokenizer_files() == folder  # built once, then reused


def test_cached_config_dirs_carry_tokenizers_with_the_right_pad():
    sdxl = sf.cached_config_dir("sdxl")
    assert sdxl.parent.parent == sf.ticraft_cache_dir()
    tok = sf.load_clip_tokenizer(sdxl / "tokenizer")
    tok2 = sf.load_clip_tokenizer(sdxl / "tokenizer_2")
    assert len(tok) == len(tok2) == 49408 and tok.model_max_length == 77
    assert tok.pad_token == "<|endoftext|>" and tok2.pad_token == "!" and tok2.pad_token_id == 0
    assert sf.load_clip_tokenizer(sf.cached_config_dir("sd2-v") / "tokenizer").pad_token == "!"
    # A config folder without vocabulary (e.g. the shipped one) gets CLIP's.
    shipped = sf.load_clip_tokenizer(sf.CONFIG_ROOT / "sd2-base" / "tokenizer")
    assert shipped.pad_token == "!" and len(shipped) == 49408
    with pytest.raises(BackboneError, match="ships no config"):
        sf.cached_config_dir("sd3")


def test_missing_open_clip_says_what_to_install(monkeypatch):
    import importlib.metadata
    import importlib.util

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackboneError, match="pip install open-clip-torch"):
        sf.clip_bpe_path()


# --------------------------------------------------------------- HF cache
def _fake_cache(root: Path, repo: str, source: Path | None, *, commit: str = "abc123", ref: bool = True) -> Path:
    """models--org--name/snapshots/<commit>/… (+ refs/main), as huggingface_hub lays it out."""
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    snap = repo_dir / "snapshots" / commit
    if source is not None:
        shutil.copytree(source, snap)
    else:
        snap.mkdir(parents=True)
    if ref:
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / "main").write_text(commit)
    return snap


def test_find_in_hf_cache_honours_env_and_refs(tiny_sd_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snap = _fake_cache(cache, "org/tiny-sd", tiny_sd_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert sf.find_in_hf_cache("org/tiny-sd") == snap
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # HF_HOME/hub
    assert sf.hf_hub_cache_dir() == cache and sf.find_in_hf_cache("org/tiny-sd") == snap
    assert sf.find_in_hf_cache("org/tiny-sd@abc123") == snap
    bb = load_backbone("org/tiny-sd")  # backbone.py's hub-id branch
    assert bb.name == "org/tiny-sd" and bb.dims == {"clip": 32}


def test_find_in_hf_cache_errors_name_repo_cache_and_remedy(tiny_sd_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(BackboneError) as err:
        sf.find_in_hf_cache("runwayml/stable-diffusion-v1-5")
    msg = str(err.value)
    assert "runwayml/stable-diffusion-v1-5" in msg and str(cache) in msg and "--model" in msg and "download" in msg
    # configs only (what from_single_file's config download leaves): not loadable
    configs_only = _fake_cache(cache, "org/configs-only", tiny_sd_dir)
    for p in configs_only.rglob("*.safetensors"):
        p.unlink()
    with pytest.raises(BackboneError, match="without weights for unet, vae, text_encoder"):
        sf.find_in_hf_cache("org/configs-only")
    snap = _fake_cache(cache, "org/not-a-pipeline", None)
    (snap / "config.json").write_text("{}")
    with pytest.raises(BackboneError, match="not a diffusers pipeline"):
        sf.find_in_hf_cache("org/not-a-pipeline")


def test_cache_without_refs_uses_latest_snapshot(tiny_sd_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snap = _fake_cache(cache, "org/copied", tiny_sd_dir, ref=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert sf.find_in_hf_cache("org/copied") == snap
    assert [r for r, _ in sf.cached_pipelines()] == ["org/copied"]


# ------------------------------------------- full size through shipped configs
@pytest.mark.slow
@pytest.mark.parametrize("name, layout", [("sd1", "sd1"), ("sd2-v", "sd2")])
def test_full_size_random_checkpoint_through_shipped_config(name, layout, tmp_path):
    """A random-weight model of the real architecture, written as one fp16 file, loaded with no config given.

    ~1.1-1.3 B parameters: several GB of RAM and a minute or two on CPU, hence `slow`.
    """
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel

    root = sf.CONFIG_ROOT / name
    gen = torch.Generator().manual_seed(0)

    def random_model(build):
        with torch.device("meta"):
            model = build()
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.02, generator=gen)
        return model.half()

    unet = random_model(lambda: diffusers.UNet2DConditionModel.from_config(diffusers.UNet2DConditionModel.load_config(root / "unet")))
    vae = random_model(lambda: diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(root / "vae")))
    te = random_model(lambda: CLIPTextModel(CLIPTextConfig.from_pretrained(root / "text_encoder")))
    sd = unet_to_ldm(unet.state_dict(), unet.config)
    sd.update(vae_to_ldm(vae.state_dict(), vae.config))
    if layout == "sd1":
        sd.update(clip_to_ldm(te.state_dict(), sf.SD1_TEXT_PREFIX))
    else:
        sd.update(open_clip_to_ldm(te.state_dict(), sf.SD2_TEXT_PREFIX, projection=torch.zeros(1024, 1024).half()))
        sd[sf.SD2_V_PROBE_KEY] = torch.randn(sd[sf.SD2_V_PROBE_KEY].shape, generator=gen).half()  # std 1 → "768-v"
    probe = {k: sd[k].clone() for k in ("model.diffusion_model.out.2.weight", "first_stage_model.decoder.conv_out.bias")}
    path = _save(sd, tmp_path / f"random-{name}.safetensors")
    del sd, unet, vae
    bb = sf.load_single_file(path)  # shipped config + open-clip tokenizer, offline
    assert bb.family == layout and bb.extra["config"] == name
    assert torch.equal(bb.unet.conv_out.weight.half(), probe["model.diffusion_model.out.2.weight"])
    assert torch.equal(bb.vae.decoder.conv_out.bias.half(), probe["first_stage_model.decoder.conv_out.bias"])
    enc = bb.encoders[0]
    assert enc.dim == (768 if layout == "sd1" else 1024) and enc.table.shape[0] == 49408
    assert torch.equal(enc.table.half(), te.get_input_embeddings().weight)
    ids = enc.tokenizer("a photo of a cat", return_tensors="pt").input_ids
    assert ids.tolist() == [[49406, 320, 1125, 539, 320, 2368, 49407]]
    with torch.no_grad():
        assert enc.model(ids).last_hidden_state.shape == (1, 7, enc.dim)
    if layout == "sd2":
        assert bb.scheduler.config.prediction_type == "v_prediction"
