"""`ticraft train`'s knobs: every new flag reaches the run, `--set` reaches every other TrainConfig field with one
clear error for a bad item, previews can be skipped, a copy of the toy weights is the toy model, and the output
is ticraft's own (no third-party bars or notices)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from train_images import write_images
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.cli.train_options import parse_sets, preset_values, settable_fields
from ticraft.training.config import PRESETS, ConfigError, TrainConfig
from ticraft.training.loop import Trainer

runner = CliRunner()


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images")


@pytest.fixture
def captured(monkeypatch):
    """The Trainer each run used and the learning rate it applied at every step."""
    seen: dict = {"trainers": [], "lrs": []}
    original = Trainer.run

    def run(self, callback=None, *, on_step=None):
        seen["trainers"].append(self)

        def hook(tr):
            seen["lrs"].append(tr.optimizer.param_groups[0]["lr"])
            if on_step is not None:
                on_step(tr)

        return original(self, callback, on_step=hook)

    monkeypatch.setattr(Trainer, "run", run)
    return seen


def train(images: Path, model: Path, *args: str):
    return runner.invoke(app, ["train", str(images), "--token", "<knob>", "--init", "toy", "--model", str(model),
                               "--batch", "2", *map(str, args)], env={"COLUMNS": "200"})


def test_new_flags_reach_the_trainer(tmp_path, images, tiny_sd_dir, captured):
    r = train(images, tiny_sd_dir, "--steps", "4", "--lr", "0.01", "--lr-schedule", "constant", "--warmup", "2",
              "--optimizer", "adamw", "--weight-decay", "0.02", "--scale-lr", "--no-flip", "--previews", "0",
              "--set", "max_grad_norm=1.5", "--set", "crops=1", "--library", tmp_path / "lib")
    assert r.exit_code == 0, r.output
    tr = captured["trainers"][0]
    cfg = tr.cfg
    assert (cfg.lr_schedule, cfg.warmup_steps, cfg.optimizer, cfg.weight_decay, cfg.scale_lr, cfg.flip,
            cfg.previews, cfg.max_grad_norm, cfg.crops) == ("constant", 2, "adamw", 0.02, True, False, 0, 1.5, 1)
    assert type(tr.optimizer) is torch.optim.AdamW
    assert tr.optimizer.param_groups[0]["weight_decay"] == 0.02
    base = 0.01 * 2  # --scale-lr: lr × batch × grad-accum
    assert captured["lrs"] == pytest.approx([base / 2, base, base, base])  # 2 warm-up steps, then constant
    assert tr.cache.num_variants == 2  # no flips: the centre crop and one random crop (--set crops=1)
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")
    assert lib.has("<knob>")  # --previews 0 still saves the result …
    assert not any((lib.folder("<knob>") / "samples").glob("*.png"))  # … without preview samples


def test_defaults_and_the_other_choices_reach_the_trainer(tmp_path, images, tiny_sd_dir, captured):
    r = train(images, tiny_sd_dir, "--steps", "4", "--lr", "0.01", "--lr-schedule", "linear", "--warmup", "0",
              "--optimizer", "adam", "--previews", "0", "--no-library", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    tr = captured["trainers"][0]
    assert type(tr.optimizer) is torch.optim.Adam
    assert captured["lrs"] == pytest.approx([0.01, 0.0075, 0.005, 0.0025])  # linear decay, no warm-up, not scaled
    assert tr.cache.num_variants == 2  # flips on (the preset's default)
    run = tmp_path / "run"
    assert (run / "knob.safetensors").is_file()  # the result is saved …
    assert not list(run.glob("sample-*.png")) and not (run / "previews").exists()  # … with no previews at all
    both = train(images, tiny_sd_dir, "--steps", "4", "--previews", "0", "--preview-every", "2", "--no-library",
                 "--out", tmp_path / "run2")  # asking for previews every 2 steps and for none is refused
    assert both.exit_code == 1 and "would render nothing" in both.output, both.output


def test_typed_flags_and_set_fill_every_trainconfig_field():
    from ticraft.cli.train_cmd import TYPED_FIELDS

    names = {f.name for f in fields(TrainConfig)}
    reachable = set(TYPED_FIELDS) | set(settable_fields(TYPED_FIELDS))
    assert names - reachable == {"preset", "extra"}  # --preset, and free-form notes
    assert set(TYPED_FIELDS) <= names  # no flag maps to a field that does not exist


def test_help_shows_every_field_with_the_presets_values():
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "400"})
    assert r.exit_code == 0
    text = " ".join(r.output.replace("│", " ").split())
    for name in ("steps", "lr_schedule", "warmup_steps", "optimizer", "weight_decay", "scale_lr", "flip", "previews"):
        assert preset_values(name) in text, name
    from ticraft.cli.train_cmd import TYPED_FIELDS

    for name in settable_fields(TYPED_FIELDS):
        assert f"{name} ({preset_values(name)})" in text, name
    for flag in ("--lr-schedule", "--warmup", "--optimizer", "--weight-decay", "--scale-lr", "--no-flip", "--previews",
                 "--set"):
        assert flag in text


def test_preset_values_come_from_the_presets():
    steps = {name: make().steps for name, make in PRESETS.items()}
    assert preset_values("steps") == ", ".join(f"{p} {v}" for p, v in steps.items())
    assert preset_values("adam_eps") == "1e-08"  # one value when every preset agrees


def test_set_parses_by_field_type():
    got = parse_sets(["max_grad_norm=2", "flip=no", "fused_optimizer=none", "compile_backend=aot_eager",
                      "early-stop-window=7", "log_every=3"], given={})
    assert got == {"max_grad_norm": 2.0, "flip": False, "fused_optimizer": None, "compile_backend": "aot_eager",
                   "early_stop_window": 7, "log_every": 3}
    assert isinstance(got["max_grad_norm"], float) and isinstance(got["log_every"], int)


@pytest.mark.parametrize("item, message", [
    ("stepz=3", "--set stepz=3: unknown training option 'stepz' (did you mean 'steps'?)"),
    ("log_every=fast", "--set log_every=fast: log_every takes a whole number"),
    ("max_grad_norm=big", "--set max_grad_norm=big: max_grad_norm takes a number or none"),
    ("flip=maybe", "--set flip=maybe: flip takes true or false"),
    ("crops", "--set takes KEY=VALUE (e.g. --set max_grad_norm=1.0), got 'crops'"),
    ("preset=paper", "--set preset=paper: preset cannot be set this way (choose the preset with --preset)"),
])
def test_set_errors_name_the_item(item, message):
    with pytest.raises(ConfigError) as err:
        parse_sets([item], given={})
    assert str(err.value) == message


def test_set_refuses_a_key_given_twice():
    with pytest.raises(ConfigError, match="steps is already given by its own flag"):
        parse_sets(["steps=3"], given={"steps": 5})
    with pytest.raises(ConfigError, match="crops is set twice"):
        parse_sets(["crops=1", "crops=2"], given={})


@pytest.mark.parametrize("args, message", [
    (["--set", "stepz=3"], "unknown training option 'stepz' (did you mean 'steps'?)"),
    (["--set", "lr=abc"], "--set lr=abc: lr takes a number"),
    (["--set", "eval_every=0"], "eval_every must be an integer ≥ 1, got 0"),
    (["--steps", "3", "--set", "steps=4"], "steps is already given by its own flag"),
    (["--warmup", "-1"], "warmup_steps must be an integer ≥ 0, got -1"),
])
def test_cli_rejects_bad_options_with_one_line_before_loading(images, args, message):
    r = runner.invoke(app, ["train", str(images), "--token", "<x>", "--init", "toy", "--model", "/no/such/model",
                            "--no-library", *args], env={"COLUMNS": "300"})
    assert r.exit_code == 1, r.output
    assert message in r.output and "Traceback" not in r.output
    assert "/no/such/model" not in r.output  # refused before the model was looked for


def test_enum_flags_refuse_unknown_choices(images):
    r = runner.invoke(app, ["train", str(images), "--token", "<x>", "--init", "toy", "--optimizer", "sgd"])
    assert r.exit_code == 2 and "sgd" in r.output


def test_a_copy_of_the_toy_weights_is_the_toy_family(tmp_path):
    from ticraft.models.backbone import detect_family
    from ticraft.models.listing import folder_family
    from ticraft.models.load import load_backbone
    from ticraft.models.paths import TOY_WEIGHTS

    copy = tmp_path / "my-models" / "weights-copy"
    shutil.copytree(TOY_WEIGHTS, copy)
    bb = load_backbone(str(copy))
    assert bb.family == "toy" and folder_family(copy) == "toy"
    # the family comes from what the folder holds, not where it lies: without the toy world's record it is custom
    (copy / "ticraft_toyworld.json").unlink()
    assert folder_family(copy) == "custom"
    assert detect_family({"_class_name": "StableDiffusionPipeline"}, [bb.encoders[0].dim], folder=copy) == "custom"


THIRD_PARTY = ("Loading weights", "it/s]", "%|", "[transformers]", "torchvision", "There are modules",
               "should be kept in float32", "Loading pipeline components")


def test_train_output_is_ticrafts_own(tmp_path, images):
    """A fresh process, the user's environment (no verbosity variables): no third-party bars or notices."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY")}
    env.update(OMP_NUM_THREADS="1", COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "ticraft.cli.main", "train", str(images), "--token", "<quiet>", "--init", "toy",
         "--model", "toy", "--steps", "1", "--batch", "2", "--previews", "1", "--set", "preview_steps=1",
         "--no-library", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "learned <quiet>" in proc.stdout and (tmp_path / "run" / "sample-0.png").is_file()  # a preview was made
    leaked = [s for s in THIRD_PARTY if s in out]
    assert not leaked, f"third-party output leaked: {leaked}\n{out[-3000:]}"


def test_train_device_falls_back_to_the_configured_one():
    from ticraft.cli.train_cmd import train_options
    from ticraft.user_config import set_config_value

    assert train_options(sets=[], device=None)["device"] == "auto"
    set_config_value("device", "cpu")  # the user's config is a temporary one (conftest)
    assert train_options(sets=[], device=None)["device"] == "cpu"
    assert train_options(sets=[], device="cuda:1")["device"] == "cuda:1"  # --device wins
    assert train_options(sets=["device=mps"], device=None)["device"] == "mps"  # so does --set device=…
