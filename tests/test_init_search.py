"""Choosing the initializer from the pictures (`init_search`): it finds the words the pictures show on the toy model,
starts the run there, keeps the given initializer when no word does better, is recorded, and is reachable from the
CLI; bad values get one clear error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from train_images import write_images
from typer.testing import CliRunner

import ticraft
from ticraft.cli.main import app
from ticraft.models.load import load_backbone
from ticraft.training import init_search
from ticraft.training.init_search import InitSearch
from ticraft.training.config import ConfigError, TrainConfig
from ticraft.training.data import load_images
from ticraft.training.loop import Trainer
from ticraft.training.methods import method_trainer

# num_vectors 1: these state the one-vector rule (the start is the chosen words' mean); the fast preset learns 3
FAST = dict(steps=2, batch_size=4, lr=1e-2, lr_schedule="constant", warmup_steps=0, previews=0, num_vectors=1)


def test_whole_words_are_alphabetic_word_tokens():
    tokens = ["cat</w>", "ca", "a</w>", "▁dog", "<|endoftext|>", "12</w>", "ré</w>", "tree</w>"]
    assert init_search.whole_words(tokens) == [(0, "cat"), (3, "dog"), (7, "tree")]


def test_the_search_finds_the_pictures_words_on_the_toy_model():
    from ticraft.bench.suite import composite

    bb = load_backbone("toy")
    c = composite("c01")  # a red striped circle, started from the generic word "shape"
    cfg = TrainConfig.from_options(preset="fast", init_search=2, previews=0, num_vectors=1)
    tr = method_trainer(bb, c.train_images(), c.token, "shape", cfg)
    try:
        tr.train_step()
        choice = tr.init_choice
        assert choice is not None and "red" in choice.words, choice
        assert choice.loss < choice.given_loss
        enc = bb.encoders[0]
        ids = enc.tokenizer(choice.text, add_special_tokens=False)["input_ids"]
        start = enc.table[torch.tensor(ids)].detach().float().mean(0, keepdim=True)
        assert torch.allclose(tr.init_vectors[enc.key], start)  # the run's start (and reg target) is the choice
        assert torch.allclose(tr._reg_target[enc.key].cpu(), start)
    finally:
        tr.close()


def test_the_given_initializer_is_kept_when_no_word_does_better(tiny_sd_dir, tmp_path, monkeypatch):
    bb = load_backbone(str(tiny_sd_dir))
    cfg = TrainConfig.from_options(**FAST, init_search=2)
    tr = Trainer(bb, load_images(write_images(tmp_path / "im", n=2)), "<kept>", "toy", cfg)
    given = {k: v.clone() for k, v in tr.init_vectors.items()}

    def loss_of(self, vectors):  # every word does worse than the initializer
        init_search._set_rows(tr, vectors)
        return 1.0 if all(torch.equal(vectors[k].cpu(), given[k]) for k in given) else 2.0

    monkeypatch.setattr(init_search._Probe, "loss_of", loss_of)
    try:
        choice = init_search.search_initializer(tr, 2)
        assert choice.words == [] and choice.loss == choice.given_loss and choice.text == ""
        assert all(torch.equal(tr.rows[k][0].detach().cpu(), given[k]) for k in given)
        assert all(torch.equal(tr.init_vectors[k], given[k]) for k in given)
    finally:
        tr.close()


def test_the_choice_is_recorded_in_the_concept_and_logged_when_made(tiny_sd_dir, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="ticraft"):
        concept = ticraft.train(write_images(tmp_path / "im", n=2), "<rec>", "toy", model=str(tiny_sd_dir), **FAST,
                                init_search=2)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("ticraft.training")]
    assert said == [InitSearch.from_dict(concept.meta["init_search"]).sentence("<rec>", "toy")]
    assert said[0].startswith("<rec> started from")
    rec = concept.meta["init_search"]
    assert set(rec) == {"words", "loss", "given_loss", "ranked"}
    assert len(rec["words"]) <= 2 and rec["loss"] <= rec["given_loss"] and rec["ranked"]
    assert concept.meta["config"]["init_search"] == 2 and concept.meta["initializer"] == "toy"


def test_a_resumed_run_keeps_the_start_and_equals_the_whole_run(tiny_sd_dir, tmp_path, monkeypatch, caplog):
    images = write_images(tmp_path / "im", n=2)
    opts = dict(FAST, steps=4, save_every=2, reg_weight=1.0, init_search=2)
    full = ticraft.train(images, "<res>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "a", **opts)

    def no_search(*args, **kwargs):
        raise AssertionError("a resumed run searched again")

    monkeypatch.setattr("ticraft.training.loop.search_initializer", no_search)
    with caplog.at_level(logging.INFO, logger="ticraft"):
        resumed = ticraft.train(images, "<res>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "b",
                                resume=tmp_path / "a" / "checkpoint-0000002.pt", **opts)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("ticraft.training")]
    assert len(said) == 1 and said[0].endswith("chosen when the run began")  # it still says where it started
    assert torch.equal(full.vectors["clip"], resumed.vectors["clip"])  # the reg target is the searched start too
    assert resumed.meta["init_search"] == full.meta["init_search"]


def test_a_negative_word_count_is_one_sentence():
    with pytest.raises(ConfigError, match="init_search is a number of words"):
        TrainConfig.from_options(init_search=-1)


@pytest.mark.parametrize("method", ["xti", "directional"])
def test_the_start_takes_the_methods_layout(tiny_sd_dir, tmp_path, method):
    from ticraft.training.init_search import _word_rows

    bb = load_backbone(str(tiny_sd_dir))
    cfg = TrainConfig.from_options(**FAST, init_search=2, method=method)
    tr = method_trainer(bb, load_images(write_images(tmp_path / "im", n=2)), f"<{method}>", "toy", cfg)
    try:
        tr.begin_step()  # the search runs here, before the first pass
        choice = tr.init_choice
        assert choice is not None
        rows = torch.cat([p.detach() for p in tr.rows["clip"]]).cpu()
        if choice.words:
            assert torch.allclose(rows, _word_rows(tr, choice.words)["clip"].cpu())
        assert torch.allclose(rows, tr.init_vectors["clip"])
        if method == "xti":  # every layer starts from the same vector
            assert rows.shape[0] == tr.layers and torch.allclose(rows, rows[:1].expand_as(rows))
        else:  # on the sphere
            assert torch.allclose(rows.norm(dim=1), torch.full((1,), tr.norms["clip"]), atol=1e-5)
    finally:
        tr.close()


def test_cli_flag_reaches_the_run_and_says_what_it_chose(tiny_sd_dir, tmp_path):
    images: Path = write_images(tmp_path / "im", n=2)
    r = CliRunner().invoke(app, ["train", str(images), "--token", "<cli>", "--init", "toy", "--model",
                                 str(tiny_sd_dir), "--batch", "2", "--steps", "2", "--previews", "0",
                                 "--init-search", "2", "--library", str(tmp_path / "lib")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "<cli> started from" in r.output and "as given" in r.output
    help_text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert "--init-search" in help_text


def test_the_probe_runs_in_passes_of_the_runs_batch_with_the_same_result(tiny_sd_dir, tmp_path):
    bb = load_backbone(str(tiny_sd_dir))
    images = load_images(write_images(tmp_path / "im", n=2))
    results = []
    for batch in (16, 3):  # one pass, then six passes of at most 3 samples
        cfg = TrainConfig.from_options(**{**FAST, "batch_size": batch}, init_search=1)
        tr = Trainer(bb, images, f"<chunk{batch}>", "toy", cfg)
        try:
            probe = init_search._Probe(tr, 16)
            assert max(p.stop - p.start for p in probe.chunks()) == min(batch, 16)
            loss = probe.loss_of(tr.init_vectors)
            (grad,) = probe.gradient(tr.rows["clip"][:1])
            results.append((loss, grad))
        finally:
            tr.close()
    assert abs(results[0][0] - results[1][0]) < 1e-6
    assert torch.allclose(results[0][1], results[1][1], atol=1e-7, rtol=1e-4)


def test_a_vocabulary_without_whole_words_keeps_the_given_start(tiny_sd_dir, tmp_path, monkeypatch):
    bb = load_backbone(str(tiny_sd_dir))
    cfg = TrainConfig.from_options(**FAST, init_search=2)
    tr = Trainer(bb, load_images(write_images(tmp_path / "im", n=2)), "<bytes>", "toy", cfg)
    given = {k: v.clone() for k, v in tr.init_vectors.items()}
    monkeypatch.setattr(init_search, "_vocabulary", lambda tokenizer: None)
    try:
        choice = init_search.search_initializer(tr, 2)
        assert choice.words == [] and choice.ranked == [] and choice.loss == choice.given_loss
        assert torch.equal(tr.rows["clip"][0].detach().cpu(), given["clip"])
    finally:
        tr.close()
