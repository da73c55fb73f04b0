"""What a run leaves behind: library entry (images, loss curve, previews), an embedding file that
diffusers loads, checkpoints, early stopping; and the `ticraft train` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_images import write_images

import ticraft
from ticraft.training.early_stop import DVAR

FAST = dict(steps=4, batch_size=2, log_every=2, previews=2, preview_steps=2)


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images")


def test_library_entry_has_images_loss_curve_and_previews(tmp_path, images, tiny_sd_dir):
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")
    concept = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), library=lib, tags=["object"],
                            num_vectors=2, **FAST)
    assert lib.has("<thing>")
    stored = lib.get("<thing>")
    assert torch.equal(stored.vectors["clip"], concept.vectors["clip"])
    folder = lib.folder("<thing>")
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "step\tloss" in (folder / "train.log").read_text()
    assert len(lib.images("<thing>")) == 2 and len(lib.samples("<thing>")) == 2
    meta = lib.meta("<thing>")
    assert "object" in meta["tags"] and meta["meta"]["initializer"] == "toy"
    assert meta["meta"]["config"]["num_vectors"] == 2 and meta["meta"]["loss_curve"]


def test_pil_images_go_to_the_library_too(tmp_path, tiny_sd_dir):
    from PIL import Image

    from ticraft.library import Library

    pictures = [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]
    lib = Library(tmp_path / "lib")
    ticraft.train(pictures, "<thing>", "toy", model=str(tiny_sd_dir), library=str(lib.root), **{**FAST, "previews": 0})
    assert [p.name for p in lib.images("<thing>")] == ["image-000.png", "image-001.png"]


def test_embedding_file_loads_in_diffusers(tmp_path, images, tiny_sd_dir):
    from diffusers import StableDiffusionPipeline

    out = tmp_path / "run"
    concept = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=out, num_vectors=3,
                            **{**FAST, "previews": 1})
    path = out / "thing.safetensors"
    assert path.is_file() and (out / "loss.png").is_file() and (out / "sample-0.png").is_file()
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd_dir, safety_checker=None, requires_safety_checker=False)
    pipe.load_textual_inversion(str(path), token="<thing>")
    tok = pipe.tokenizer
    ids = tok.convert_tokens_to_ids(["<thing>", "<thing>_1", "<thing>_2"])
    rows = pipe.text_encoder.get_input_embeddings().weight[ids]
    assert torch.equal(rows.detach(), concept.vectors["clip"])
    # diffusers' multi-vector expansion of the prompt matches ours
    assert pipe.maybe_convert_prompt("a <thing>", tok) == "a <thing> <thing>_1 <thing>_2"


def test_checkpoints_and_previews_every_k_steps(tmp_path, images, tiny_sd_dir):
    from ticraft.training.checkpoint import load_checkpoint

    out = tmp_path / "run"
    ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=out, save_every=2, preview_every=4,
                  **{**FAST, "previews": 1})
    assert sorted(p.name for p in out.glob("checkpoint-*.pt")) == ["checkpoint-0000002.pt", "checkpoint-0000004.pt"]
    assert sorted(p.name for p in (out / "previews").iterdir()) == ["step-0000004-0.png"]
    state = load_checkpoint(out)  # a folder means its latest checkpoint
    assert state["step"] == 4 and state["token"] == "<thing>" and "optimizer" in state and "rng" in state


def test_dvar_criterion():
    s = DVAR(window=3, threshold=0.2)
    flags = [s.update(x) for x in [1.0, 0.6, 0.4, 0.3, 0.25, 0.25, 0.25, 0.25]]
    assert flags.index(True) > 3 and s.ratio() < 0.2
    assert DVAR(window=3).update(1.0) is False  # not enough history yet


def test_early_stop_stops_on_a_flat_evaluation_loss(tmp_path, images, tiny_sd_dir):
    # lr tiny → the evaluation loss does not move → its recent variance is ~0 relative to the whole
    concept = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), early_stop=True, lr=1e-9,
                            eval_every=1, early_stop_window=3, **{**FAST, "steps": 50})
    assert concept.meta["stopped"] == "early_stop" and concept.meta["steps"] < 50
    assert len(concept.meta["eval_curve"]) == concept.meta["steps"]


def test_cli_train(tmp_path, images, tiny_sd_dir):
    from typer.testing import CliRunner

    from ticraft.cli.main import app
    from ticraft.library import Library

    lib = tmp_path / "lib"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(images), "--token", "<cli-thing>", "--init", "toy", "--model",
                                 str(tiny_sd_dir), "--steps", "3", "--batch", "2", "--vectors", "2", "--library",
                                 str(lib), "--tag", "object", "--out", str(tmp_path / "run"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "learned <cli-thing>: 2 vectors (" in result.output
    assert Library(lib).has("<cli-thing>") and (tmp_path / "run" / "cli-thing.safetensors").is_file()
    bad = runner.invoke(app, ["train", str(images), "--token", "<x>", "--init", " ", "--model", str(tiny_sd_dir),
                              "--no-library"])
    assert bad.exit_code == 1 and "initializer text is empty" in message(bad) and "Traceback" not in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(app, ["train", str(empty), "--token", "<x>", "--init", "toy", "--model", str(tiny_sd_dir)])
    assert none.exit_code == 1 and "no readable training images" in message(none)


def message(result) -> str:
    """The user-facing error text (printed by the CLI's error boundary, or carried by the exception)."""
    return result.output + str(result.exception or "")
