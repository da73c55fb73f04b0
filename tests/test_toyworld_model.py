"""The shipped toy base model: a standard diffusers folder, no leaked hidden words, judged quality; and the
base trainer's determinism and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ticraft.toyworld import base as B
from ticraft.toyworld import vocab as V
from ticraft.toyworld.render import Attributes

WEIGHTS = B.WEIGHTS_DIR
FIXTURE = Path(__file__).parent / "fixtures" / "toyworld_hidden.safetensors"



@pytest.fixture(scope="module")
def pipe():
    return B.load_pipeline(WEIGHTS)  # one torch thread, like every test (conftest)


def test_folder_is_a_small_standard_pipeline() -> None:
    index = json.loads((WEIGHTS / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == [None, None] and index["feature_extractor"] == [None, None]
    for sub in ("tokenizer", "text_encoder", "unet", "vae", "scheduler"):
        assert (WEIGHTS / sub).is_dir(), sub
    assert not list(WEIGHTS.rglob("*.bin")) and not list(WEIGHTS.rglob("*.pt"))
    total = sum(p.stat().st_size for p in WEIGHTS.rglob("*") if p.is_file())
    assert total <= 25 * 1024 * 1024, total


def test_loads_with_plain_diffusers_and_transformers(pipe) -> None:
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(WEIGHTS / "tokenizer"))
    te = CLIPTextModel.from_pretrained(str(WEIGHTS / "text_encoder"))
    assert tok.model_max_length == 77
    assert te.get_input_embeddings().weight.shape[0] == len(tok) + len(V.HIDDEN_WORDS)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.unet.config.sample_size * pipe.vae_scale_factor == 32


def test_hidden_words_are_gone_and_their_rows_leak_nothing(pipe) -> None:
    from safetensors import safe_open

    tok = pipe.tokenizer
    vocab = tok.get_vocab()
    assert not any(w in vocab or w + "</w>" in vocab for w in V.HIDDEN_WORDS)
    table = pipe.text_encoder.get_input_embeddings().weight.detach()
    ids = V.hidden_word_ids(tok)
    public_mean = table[: len(tok)].mean(dim=0)
    with safe_open(str(FIXTURE), framework="pt") as f:
        assert json.loads(f.metadata()["ids"]) == ids
        for word, i in ids.items():
            assert torch.allclose(table[i], public_mean, atol=1e-5), word
            true = f.get_tensor(word)
            assert true.shape == (1, table.shape[1])
            assert not torch.allclose(true[0], table[i], atol=1e-3), word


def _quality(pipe, n: int, seed: int) -> dict[str, float]:
    acc, _ = B.evaluate(pipe, B.eval_prompts(n, seed=seed), seed=seed)
    return acc


def test_fast_quality_on_held_out_prompts(pipe) -> None:
    acc = _quality(pipe, 24, seed=11)
    # the targets less a margin for 24 samples (the full 200-prompt figures are in the slow test/RESULTS.md)
    assert acc["background"] >= 0.85 and acc["colour"] >= 0.85 and acc["shape"] >= 0.75, acc
    assert acc["texture"] >= 0.65 and acc["style"] >= 0.7, acc


def test_true_row_brings_the_hidden_object_back(pipe) -> None:
    from safetensors.torch import load_file

    from ticraft.toyworld.judge import judge

    obj = V.HIDDEN_OBJECTS["zorb"]
    tok = pipe.tokenizer
    V.add_hidden_words(tok)  # ids land on the rows the fixture was saved from
    try:
        rows = load_file(str(FIXTURE))
        table = pipe.text_encoder.get_input_embeddings().weight
        i = tok.convert_tokens_to_ids("zorb")
        saved = table[i].detach().clone()
        with torch.no_grad():
            table[i] = rows["zorb"][0]
        images = B.generate(pipe, ["a photo of a zorb on a black background"] * 12, seed=3)
        with torch.no_grad():
            table[i] = saved
    finally:
        pipe.tokenizer = V.load_tokenizer(WEIGHTS / "tokenizer")
    js = [judge(im) for im in images]
    assert sum(j.colour == obj.colour for j in js) >= 9
    assert sum(j.shape == obj.shape for j in js) >= 9
    assert sum(j.background == "black" for j in js) >= 10


@pytest.mark.slow
def test_full_quality_targets(pipe) -> None:
    acc = _quality(pipe, 200, seed=0)
    assert acc["colour"] >= 0.90 and acc["shape"] >= 0.85 and acc["background"] >= 0.90, acc
    assert acc["texture"] >= 0.75 and acc["style"] >= 0.80, acc


# --- the trainer ------------------------------------------------------------------------------------------------


def _tiny(seed: int = 0) -> B.BaseConfig:
    return B.BaseConfig(
        seed=seed, n_images=32, vae_steps=2, decoder_steps=2, vae_batch=4, unet_steps=4, unet_batch=4, warmup=1,
        checkpoint_every=2,
        text_dim=32, unet_channels=(16, 16, 32), vae_channels=(16, 32),
    )  # fmt: skip


def _small() -> B.BaseConfig:
    """A small run that still stops mid-way and resumes: 1 step per VAE stage, 4 UNet steps."""
    return B.BaseConfig(**{**_tiny().__dict__, "n_images": 8, "vae_steps": 1, "decoder_steps": 1})


def test_train_base_writes_a_loadable_pipeline(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    cfg = _small()
    a = B.train_base(tmp_path / "a", cfg, work=tmp_path / "wa", device="cpu", fixture=tmp_path / "a.safetensors")
    assert set(load_file(str(tmp_path / "a.safetensors"))) == set(V.HIDDEN_WORDS)
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in a.rglob("*.safetensors"))  # readable by everyone
    pipe = B.load_pipeline(a)
    out = B.generate(pipe, ["a red star"], steps=2)
    assert out[0].shape == (32, 32, 3)
    with pytest.raises(ValueError, match="different config"):
        B.train_base(tmp_path / "a2", _tiny(seed=1), work=tmp_path / "wa")


@pytest.mark.slow  # three toy trainings; the fast test above runs one
def test_train_base_is_deterministic_and_resumable(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    cfg = _small()
    a = B.train_base(tmp_path / "a", cfg, work=tmp_path / "wa", device="cpu")
    B.train_base(tmp_path / "b", cfg, work=tmp_path / "wb", device="cpu", stop_after=2)
    b = B.train_base(tmp_path / "b", cfg, work=tmp_path / "wb", device="cpu", resume=True)
    parts = (("unet", "diffusion_pytorch_model"), ("text_encoder", "model"), ("vae", "diffusion_pytorch_model"))
    for sub, name in parts:
        ta, tb = load_file(str(a / sub / f"{name}.safetensors")), load_file(str(b / sub / f"{name}.safetensors"))
        assert ta.keys() == tb.keys()
        # equal up to float rounding: CPU kernels may sum in another order in a fresh process (memory alignment)
        assert all(torch.allclose(ta[k], tb[k], rtol=0, atol=1e-6) for k in ta), sub


def test_missing_weights_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train-base"):
        B.load_pipeline(tmp_path)


def test_eval_prompts_are_held_out_and_fully_specified() -> None:
    from ticraft.toyworld.render import full_prompt, is_held_out

    attrs = B.eval_prompts(50)
    assert all(is_held_out(a) for a in attrs)
    assert isinstance(attrs[0], Attributes) and attrs[0].shape in full_prompt(attrs[0])
    assert np.unique([full_prompt(a) for a in attrs]).size > 40


def test_train_base_command_refuses_a_bad_device(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ticraft.cli.toyworld_cmd import app

    result = CliRunner().invoke(app, ["train-base", "--out", str(tmp_path / "w"), "--device", "tpu"])
    assert result.exit_code != 0
    assert "auto, cpu or cuda" in result.output


def test_time_budget_fits_the_schedule() -> None:
    assert B._fit_steps(1000, 10, per_step=0.5, left_s=10.0) == 10 + int(0.97 * 20)
    assert B._fit_steps(15, 10, per_step=0.01, left_s=100.0) == 15  # never above the plan
    assert B._fit_steps(1000, 10, per_step=1.0, left_s=-5.0) == 10  # never below the step reached


@pytest.mark.slow  # four toy trainings of 8-10 steps (minutes on 2 busy cores); the fitting itself is tested above
def test_time_budget_is_recorded_and_never_refitted(tmp_path: Path) -> None:
    import json

    cfg = B.BaseConfig(**{**_tiny().__dict__, "unet_steps": 500, "warmup": 8, "checkpoint_every": 100})
    with pytest.warns(UserWarning, match="ran out during warmup"):
        out = B.train_base(tmp_path / "m", cfg, work=tmp_path / "w", device="cpu", time_budget_s=0.0)
    meta = json.loads((out / "ticraft_toyworld.json").read_text())
    assert meta["unet_steps_done"] == meta["config"]["unet_steps"] == 8  # stopped when warmup ended
    assert meta["unet_steps_requested"] == 500 and meta["time_budget_s"] == 0.0 and meta["device"] == "cpu"
    # re-exporting the finished run keeps its provenance (the budget came from the checkpoint, not this call)
    again = B.train_base(tmp_path / "m2", cfg, work=tmp_path / "w", device="cpu")
    meta2 = json.loads((again / "ticraft_toyworld.json").read_text())
    assert meta2["time_budget_s"] == 0.0 and meta2["config"]["unet_steps"] == 8
    # a checkpoint past warmup that no budget fitted cannot be fitted any more: one clear error
    B.train_base(tmp_path / "n", cfg, work=tmp_path / "w2", device="cpu", stop_after=10)
    with pytest.raises(ValueError, match="checkpoint in .* is at step 10 and was not fitted"):
        B.train_base(tmp_path / "n", cfg, work=tmp_path / "w2", device="cpu", time_budget_s=60.0)


def test_train_base_presets() -> None:
    gpu = B.BaseConfig.preset("gpu", seed=3)
    assert gpu.unet_batch > B.BaseConfig().unet_batch and gpu.seed == 3
    assert B.BaseConfig.preset("cpu") == B.BaseConfig()
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        B.BaseConfig.preset("tpu")


def test_train_base_command_applies_the_presets_time_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ticraft.cli.toyworld_cmd import app

    seen: list[tuple] = []

    def fake_train_base(out, cfg, **kw):
        seen.append((cfg.unet_batch, kw["time_budget_s"]))
        return out

    monkeypatch.setattr(B, "train_base", fake_train_base)
    runner = CliRunner()
    for args in ([], ["--preset", "gpu"], ["--time-budget", "inf"], ["--time-budget", "60"]):
        result = runner.invoke(app, ["train-base", "--out", str(tmp_path / "w"), *args])
        assert result.exit_code == 0, result.output
    assert seen == [(32, B.PRESET_BUDGETS["cpu"]), (512, None), (32, float("inf")), (32, 60.0)]
