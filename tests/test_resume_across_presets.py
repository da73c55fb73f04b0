"""Resuming a run after its preset was retuned: the run continues with its checkpoint's options.

The ``fast`` preset's ``num_vectors`` went from 1 to 3; a checkpoint written under the old default must resume with
one vector (bit for bit the uninterrupted run), saying once what it took from the checkpoint. Options given explicitly
still have to agree with the checkpoint where they shape the state. The presets are patched here (old: 1 vector,
new: 3) so that the tests keep meaning the same after the next retune.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from train_images import write_images
from typer.testing import CliRunner

import ticraft
from ticraft.cli.main import app
from ticraft.errors import TicraftError
from ticraft.training import config as config_module
from ticraft.training.checkpoint import CheckpointError, load_checkpoint, resume_config

# no num_vectors here: it comes from the preset (first run) or the checkpoint (resumed)
OPTS = dict(steps=4, batch_size=2, lr=1e-2, lr_schedule="constant", warmup_steps=0, log_every=1, previews=0,
            init_search=0)
NOTE = "resuming with the checkpoint's num_vectors 1 (the fast preset says 3)"
_FAST = config_module.PRESETS["fast"]


def fast_with(monkeypatch: pytest.MonkeyPatch, vectors: int) -> None:
    """The fast preset as it is, except for its vector count (the retune under test)."""
    monkeypatch.setitem(config_module.PRESETS, "fast", lambda: replace(_FAST(), num_vectors=vectors))


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images", n=2)


@pytest.fixture
def old_run(tmp_path, images, tiny_sd_dir, monkeypatch):
    """An uninterrupted run under the old default (one vector), checkpoints every 2 steps; then the preset changes."""
    fast_with(monkeypatch, 1)
    full = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "old", save_every=2,
                         **OPTS)
    fast_with(monkeypatch, 3)
    assert full.vectors["clip"].shape == (1, 32)
    return full, tmp_path / "old" / "checkpoint-0000002.pt"


def test_resume_continues_with_the_checkpoints_vector_count(old_run, images, tiny_sd_dir, tmp_path, caplog):
    full, ckpt = old_run
    assert config_module.preset_config("fast").num_vectors == 3
    with caplog.at_level(logging.INFO, logger="ticraft"):
        resumed = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "new",
                                resume=ckpt, **OPTS)
    assert resumed.vectors["clip"].shape == (1, 32)
    assert torch.equal(full.vectors["clip"], resumed.vectors["clip"])
    assert full.meta["loss_curve"] == resumed.meta["loss_curve"]
    assert resumed.meta["config"]["num_vectors"] == 1 and resumed.meta["config"]["preset"] == "fast"
    # said once; save_every (2) came from the checkpoint too, and is named with it: the run keeps checkpointing
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resuming with")]
    assert notes == ["resuming with the checkpoint's num_vectors 1, save_every 2 (the fast preset says num_vectors 3, "
                     "save_every 0)"]
    assert (tmp_path / "new" / "checkpoint-0000004.pt").is_file()
    # without an output folder the resumed run writes nothing (no save_every error), and is the same run
    again = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, **OPTS)
    assert torch.equal(full.vectors["clip"], again.vectors["clip"])
    # the options given explicitly that may change still apply: more steps continue the run
    longer = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, **{**OPTS, "steps": 6})
    assert longer.meta["steps"] == 6 and longer.vectors["clip"].shape == (1, 32)


def test_explicit_options_must_still_agree(old_run, images, tiny_sd_dir):
    _, ckpt = old_run
    with pytest.raises(CheckpointError) as err:
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, num_vectors=2, **OPTS)
    message = str(err.value)
    assert message == (f"{ckpt} used different options (num_vectors: 1 → 2); leave num_vectors out to continue with "
                       "the checkpoint's value, or give the original")
    with pytest.raises(CheckpointError, match=r"\(batch_size: 2 → 4, seed: 0 → 1\); leave batch_size and seed out"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, **{**OPTS, "batch_size": 4},
                      seed=1)
    # the preset recorded in the checkpoint is the run's: another one is refused before anything loads
    with pytest.raises(CheckpointError, match="trained with the fast preset, not paper; leave the preset out"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, preset="paper", **OPTS)
    # a full config= says every option: it is compared as given (the retuned preset's 3 vectors are refused)
    cfg = config_module.TrainConfig.from_options(**OPTS)
    with pytest.raises(CheckpointError, match=r"num_vectors: 1 → 3\); resume with the original ones"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, config=cfg)


def test_resume_config_takes_unset_fields_from_the_checkpoint(old_run):
    _, ckpt = old_run
    state = load_checkpoint(ckpt)
    cfg, note = resume_config(state, options={**OPTS, "steps": 9, "num_vectors": None}, outputs=False)
    assert (cfg.num_vectors, cfg.steps, cfg.batch_size, cfg.save_every, cfg.preset) == (1, 9, 2, 0, "fast")
    assert note == NOTE
    # every field not given comes from the checkpoint, and the note names each that the preset would set otherwise
    bare, said = resume_config(state, options={}, outputs=False)
    assert (bare.batch_size, bare.lr, bare.init_search, bare.steps) == (2, 1e-2, 0, 4)
    assert said is not None and said.startswith(NOTE.split(" (")[0] + ", init_search 0, steps 4, batch_size 2, lr 0.01")
    same, quiet = resume_config(state, preset="fast", options={**OPTS, "num_vectors": 1}, outputs=False)
    assert same.num_vectors == 1 and quiet is None  # nothing taken differs from the preset: nothing to say
    # an older checkpoint without method/norm/timestep_bias: a plain run with uniform timesteps
    legacy = {**state, "config": {k: v for k, v in state["config"].items()
                                  if k not in ("method", "norm", "timestep_bias")}}
    old, _ = resume_config(legacy, outputs=False)
    assert (old.method, old.norm, old.timestep_bias, old.num_vectors) == ("plain", None, "none", 1)
    with pytest.raises(TicraftError, match="unknown training option 'stepz'"):
        resume_config(state, options={"stepz": 3})


def test_cli_resume_without_vectors(old_run, images, tiny_sd_dir, tmp_path):
    full, ckpt = old_run
    runner = CliRunner()
    base = ["train", str(images), "--token", "<thing>", "--init", "toy", "--model", str(tiny_sd_dir),
            "--resume", str(ckpt), "--no-library"]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "cli")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    # the note, once (every option was left out here, so it names each one the checkpoint set otherwise)
    said = " ".join(r.output.split())
    assert said.count("resuming with the checkpoint's") == 1
    assert "resuming with the checkpoint's num_vectors 1, init_search 0, steps 4, batch_size 2" in said
    assert "(the fast preset says num_vectors 3, init_search 3, steps 64, batch_size 16" in said
    assert "learned <thing>: 1 vector (" in r.output and "4 steps" in r.output
    from safetensors.torch import load_file

    written = list(load_file(str(tmp_path / "cli" / "thing.safetensors")).values())
    assert len(written) == 1 and torch.equal(full.vectors["clip"], written[0])
    # the reported command itself: no --out, no --vectors (the resumed run writes no further checkpoints)
    r = runner.invoke(app, base, env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "learned <thing>: 1 vector (" in r.output, r.output
    # an explicit --vectors that disagrees: the one-sentence error, no traceback
    r = runner.invoke(app, [*base, "--vectors", "2"], env={"COLUMNS": "200"})
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "used different options (num_vectors: 1 → 2); leave num_vectors out" in " ".join(r.output.split())
    # and another --preset is refused before the model loads
    r = runner.invoke(app, [*base, "--preset", "diffusers"], env={"COLUMNS": "200"})
    assert r.exit_code != 0 and "trained with the fast preset, not diffusers" in " ".join(r.output.split())


def test_train_many_resume_keeps_each_concepts_options(tmp_path, tiny_sd_dir, monkeypatch, caplog):
    root = tmp_path / "two"
    write_images(root / "one", n=2, seed=1)
    write_images(root / "two", n=2, seed=2)
    (root / "concepts.toml").write_text("[concepts.two]\nvectors = 2\n")  # a per-concept override, kept on resume
    fast_with(monkeypatch, 1)
    full = ticraft.train_many(root, model=str(tiny_sd_dir), output_dir=tmp_path / "full", init="toy", save_every=2,
                              **OPTS)
    fast_with(monkeypatch, 3)
    with caplog.at_level(logging.INFO, logger="ticraft"):
        resumed = ticraft.train_many(root, model=str(tiny_sd_dir), output_dir=tmp_path / "full", init="toy",
                                     resume=tmp_path / "full" / "checkpoint-0000002.pt", **OPTS)
    assert not resumed.failed
    for token, vectors in (("<one>", 1), ("<two>", 2)):
        assert resumed.concepts[token].vectors["clip"].shape == (vectors, 32)
        assert torch.equal(full.concepts[token].vectors["clip"], resumed.concepts[token].vectors["clip"]), token
    notes = [r.getMessage() for r in caplog.records if "resuming with" in r.getMessage()]
    assert notes == ["<one>: resuming with the checkpoint's num_vectors 1, save_every 2 (the fast preset says "
                     "num_vectors 3, save_every 0)", "<two>: resuming with the checkpoint's save_every 2 (the fast "
                     "preset says 0)"]
    with pytest.raises(CheckpointError, match=r"num_vectors: 1 → 3\); leave num_vectors out"):
        ticraft.train_many(root, model=str(tiny_sd_dir), init="toy", resume=tmp_path / "full", num_vectors=3, **OPTS)
    # a per-concept option that came from concepts.toml is named as it is spelled there, not as a flag
    (root / "concepts.toml").write_text("[concepts.two]\nvectors = 3\n")
    with pytest.raises(CheckpointError, match=r"num_vectors: 2 → 3\); leave vectors in concepts.toml's "
                                              r"\[concepts.two\] out"):
        ticraft.train_many(root, model=str(tiny_sd_dir), init="toy", resume=tmp_path / "full", **OPTS)
    # a train-many checkpoint given to `ticraft train` says which command resumes it
    with pytest.raises(CheckpointError, match="is a train-many checkpoint; resume it with `ticraft train-many"):
        ticraft.train(root / "one", "<one>", "toy", model=str(tiny_sd_dir), resume=tmp_path / "full", **OPTS)


def test_tui_resumes_a_run_of_the_old_default(tmp_path, monkeypatch):
    """The TUI's Resume (its Vectors field left blank) continues the cancelled run with the checkpoint's vector
    count and its checkpoint cadence (not one worked out from today's preset's run length)."""
    pytest.importorskip("textual")
    from ticraft.library import Library
    from ticraft_tui.backend import RealBackend
    from ticraft_tui.protocol import TrainRequest

    monkeypatch.setenv("TICRAFT_CACHE", str(tmp_path / "cache"))
    images = write_images(tmp_path / "imgs", n=2, size=32)
    backend = RealBackend(Library(tmp_path / "lib"), "toy", train_options={"batch_size": 2, "previews": 0})
    fast_with(monkeypatch, 1)
    # the run the TUI started and cancelled at step 2 (its folder, its options)
    ticraft.train(images, "<tui>", "shape", model="toy", output_dir=backend.run_folder("<tui>"), steps=4,
                  batch_size=2, previews=0, save_every=2, callback=lambda step, *_: step == 2)
    fast_with(monkeypatch, 3)
    backend.train(TrainRequest(str(images), "<tui>", "shape", resume=True))
    concept = backend.library.get("<tui>")
    assert concept.num_vectors == 1 and concept.meta["steps"] == 4
    assert concept.meta["config"]["save_every"] == 2  # the cancelled run's, not max(1, 64 // 5) from the preset
