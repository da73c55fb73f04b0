"""`ticraft models` / ticraft.models.listing and `ticraft config show|set|unset|path`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.models.listing import ModelInfo, file_family, find_models, human_size, is_default
from ticraft.user_config import config_path, get_config_value

runner = CliRunner()

# Just enough keys in the original layout for the cheap, header-only family detection.
SD1_KEYS = {
    "model.diffusion_model.input_blocks.0.0.weight": (8, 4, 3, 3),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (8, 768),
    "first_stage_model.decoder.conv_out.weight": (3, 8, 3, 3),
    "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
}
SDXL_KEYS = {
    "model.diffusion_model.input_blocks.0.0.weight": (8, 4, 3, 3),
    "first_stage_model.decoder.conv_out.weight": (3, 8, 3, 3),
    "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": (768,),
    "conditioner.embedders.1.model.ln_final.weight": (1280,),
}


def _write(path: Path, keys: dict[str, tuple[int, ...]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.zeros(s) for k, s in keys.items()}, str(path))
    return path


def _fake_hf_cache(root: Path, repo: str, source: Path) -> Path:
    snap = root / ("models--" + repo.replace("/", "--")) / "snapshots" / "0123abc"
    shutil.copytree(source, snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("0123abc")
    return snap


def _invoke(*args: str):
    """Run the CLI; the text is the output plus the message of a user error.

    (The error boundary in cli/common.py turns TicraftError into a one-line message; whether that
    lands in the captured output or in ``result.exception`` depends on the Click/Typer version.)
    """
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += "\n" + str(result.exception)
    return result, text


@pytest.fixture()
def model_dir(tmp_path, tiny_sd_dir):
    """A folder as users keep them: checkpoints, a nested one, a diffusers folder, a LoRA, an embedding."""
    d = tmp_path / "models"
    _write(d / "v1-5.safetensors", SD1_KEYS)
    _write(d / "xl" / "sdxl-base.safetensors", SDXL_KEYS)
    _write(d / "lora.safetensors", {"lora_unet_down_blocks_0_attentions_0.alpha": (1,)})
    torch.save({"emb_params": torch.zeros(1, 768)}, d / "embedding.pt")
    torch.save({"state_dict": {k: torch.zeros(1) for k in SD1_KEYS}}, d / "old.ckpt")
    shutil.copytree(tiny_sd_dir, d / "tiny-sd")
    shutil.copytree(tiny_sd_dir, d / "configs-only", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return d


# --------------------------------------------------------------- find_models
def test_find_models_in_dirs_and_cache(model_dir, tmp_path, tiny_sdxl_dir, monkeypatch):
    cache = tmp_path / "hub"
    _fake_hf_cache(cache, "org/tiny-xl", tiny_sdxl_dir)
    cfg_only = _fake_hf_cache(cache, "org/configs-only", tiny_sdxl_dir)
    for p in cfg_only.rglob("*.safetensors"):
        p.unlink()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    found = {m.name: m for m in find_models([model_dir])}
    assert {"v1-5.safetensors", "sdxl-base.safetensors", "old.ckpt", "tiny-sd", "org/tiny-xl"} <= set(found)
    assert "lora.safetensors" not in found and "embedding.pt" not in found  # not models
    assert "org/configs-only" not in found and "configs-only" not in found  # weights missing: not loadable
    assert found["v1-5.safetensors"].family == "sd1" and found["v1-5.safetensors"].kind == "file"
    assert found["sdxl-base.safetensors"].family == "sdxl"
    assert found["old.ckpt"].family == "sd1"  # from a pickle-opcode scan; nothing unpickled
    assert (found["tiny-sd"].family, found["tiny-sd"].kind) == ("custom", "folder")
    xl = found["org/tiny-xl"]
    assert (xl.family, xl.kind, xl.spec) == ("sdxl", "cache", "org/tiny-xl")
    assert xl.size_bytes > 10_000 and found["tiny-sd"].size_bytes > 10_000


def test_model_dirs_setting_and_default_are_listed_once(model_dir, tmp_path):
    result, out = _invoke("config", "set", "model_dirs", str(model_dir))
    assert result.exit_code == 0, out
    result, out = _invoke("config", "set", "model", str(model_dir / "v1-5.safetensors"))
    assert result.exit_code == 0, out
    found = find_models()
    names = [m.name for m in found]
    assert names.count("v1-5.safetensors") == 1
    default = get_config_value("model")
    assert [m.name for m in found if is_default(m, default)] == ["v1-5.safetensors"]


def test_configured_default_outside_the_dirs_is_shown(tmp_path):
    ckpt = _write(tmp_path / "elsewhere" / "mine.safetensors", SD1_KEYS)
    _invoke("config", "set", "model", str(ckpt))
    # The shipped toy model is always listed too; the default outside every folder appears once.
    assert [m.name for m in find_models() if m.kind != "toy"] == ["mine.safetensors"]


def test_file_family_is_cheap_and_safe(tmp_path):
    evil = tmp_path / "evil.ckpt"
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1)}, "p": Payload()}, evil)
    file_family(evil)
    assert not marker.exists()
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x01")
    assert file_family(broken) == "unknown"


def test_human_size():
    assert human_size(512) == "512 B" and human_size(1536) == "1.5 KB" and human_size(3 * 1024**3) == "3.0 GB"


# --------------------------------------------------------------------- CLI
def test_models_table_and_json(model_dir):
    _invoke("config", "set", "model", str(model_dir / "tiny-sd"))
    result, out = _invoke("models", "--dir", str(model_dir))
    assert result.exit_code == 0, out
    for text in ("v1-5.safetensors", "sdxl-base.safetensors", "tiny-sd", "sd1", "sdxl", "custom", "default model"):
        assert text in out
    result, out = _invoke("models", "--dir", str(model_dir), "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["tiny-sd"]["default"] is True and rows["v1-5.safetensors"]["default"] is False
    assert rows["v1-5.safetensors"]["spec"] == str((model_dir / "v1-5.safetensors").resolve())


def test_models_with_nothing_found_says_where_it_looked(tmp_path, monkeypatch):
    import ticraft.models.listing as ml

    monkeypatch.setattr(ml, "TOY_WEIGHTS", tmp_path / "no-toy")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    result, out = _invoke("models")
    assert result.exit_code == 0 and "No models found" in out and "model_dirs" in out


def test_config_set_model_validates(tmp_path, tiny_sd_dir, monkeypatch):
    result, out = _invoke("config", "set", "model", str(tmp_path / "missing.safetensors"))
    assert result.exit_code != 0 and "not found" in out and "Traceback" not in out
    (tmp_path / "plain").mkdir()
    result, out = _invoke("config", "set", "model", str(tmp_path / "plain"))
    assert result.exit_code != 0 and "model_index.json" in out
    (tmp_path / "notes.txt").write_text("x")
    result, out = _invoke("config", "set", "model", str(tmp_path / "notes.txt"))
    assert result.exit_code != 0 and "not a checkpoint" in out
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    result, out = _invoke("config", "set", "model", "org/not-cached")
    assert result.exit_code != 0 and "not in the local Hugging Face cache" in out
    assert get_config_value("model") is None  # nothing stored on error
    _fake_hf_cache(tmp_path / "hub", "org/cached", tiny_sd_dir)
    result, out = _invoke("config", "set", "model", "org/cached")
    assert result.exit_code == 0, out
    assert get_config_value("model") == "org/cached"
    result, out = _invoke("config", "set", "model", "toy")
    assert result.exit_code == 0 and get_config_value("model") == "toy"


def test_config_set_stores_absolute_paths(tmp_path, tiny_sd_dir, monkeypatch):
    monkeypatch.chdir(tiny_sd_dir.parent)
    result, out = _invoke("config", "set", "model", tiny_sd_dir.name)
    assert result.exit_code == 0, out
    assert get_config_value("model") == str(tiny_sd_dir.resolve())


def test_config_show_unset_path_and_other_keys(tmp_path):
    result, out = _invoke("config", "path")
    assert out.strip() == str(config_path()) == os.environ["TICRAFT_CONFIG"]
    assert _invoke("config", "set", "device", "cuda:1")[0].exit_code == 0
    result, out = _invoke("config", "set", "device", "gpu")
    assert result.exit_code != 0 and "cuda:N" in out
    result, out = _invoke("config", "set", "model_dirs", str(tmp_path / "nope"))
    assert result.exit_code != 0 and "not a folder" in out
    result, out = _invoke("config", "set", "colour", "red")
    assert result.exit_code != 0 and "unknown setting" in out
    assert _invoke("config", "set", "library", str(tmp_path / "lib"))[0].exit_code == 0
    result, out = _invoke("config", "show")
    assert result.exit_code == 0 and "cuda:1" in out and "model_dirs" in out and "not set" in out
    result, out = _invoke("config", "show", "--json")
    assert json.loads(out) == {"device": "cuda:1", "library": str((tmp_path / "lib").resolve())}
    assert _invoke("config", "unset", "device")[0].exit_code == 0
    assert get_config_value("device") is None
    # a stale key from another version can still be removed
    config_path().write_text(json.dumps({"old_key": 1}))
    assert _invoke("config", "unset", "old_key")[0].exit_code == 0
    assert json.loads(config_path().read_text()) == {}


def test_every_model_option_falls_back_to_the_configured_default(tiny_sd_dir):
    from ticraft.models.load import load_backbone

    assert _invoke("config", "set", "model", str(tiny_sd_dir))[0].exit_code == 0
    assert load_backbone(None).source == str(tiny_sd_dir.resolve())


def test_listing_models_does_not_import_torch():
    code = ("import sys, ticraft.models.listing, ticraft.models.single_file, ticraft.cli.models_cmd;"
            "ticraft.models.listing.find_models();"
            "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules];"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr


def test_model_info_spec():
    assert ModelInfo("toy", "toy", "toy", Path("/x"), 1).spec == "toy"
    assert ModelInfo("a/b", "sd1", "cache", Path("/x"), 1).spec == "a/b"
    assert ModelInfo("f", "sd1", "file", Path("/m/f.safetensors"), 1).spec == "/m/f.safetensors"
