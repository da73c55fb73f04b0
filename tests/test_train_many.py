"""train-many: every concept's result equals its one-concept run; resume is exact; a bad concept is reported
and the others go on; results land in the library; concepts.toml; the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ticraft
from ticraft.errors import TicraftError
from ticraft.training.many_specs import ConceptSpec, ManySpecError, default_token, discover_concepts

FAST = dict(steps=4, batch_size=2, lr=1e-2, lr_schedule="cosine", warmup_steps=1, log_every=2, previews=0, device="cpu")


def write_pictures(folder: Path, n: int = 2, seed: int = 0, size: int = 20) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def catalogue(tmp_path) -> Path:
    """Three concepts (one a style with two vectors and its own seed) and one folder of broken pictures."""
    root = tmp_path / "catalogue"
    write_pictures(root / "red-mug", 2, seed=1)
    write_pictures(root / "blue-vase", 3, seed=2)
    write_pictures(root / "paint", 2, seed=3)
    (root / "broken").mkdir()
    (root / "broken" / "a.png").write_bytes(b"not a png")
    (root / "concepts.toml").write_text(
        '[defaults]\ninit = "toy"\n\n[concepts.paint]\ntoken = "<my-paint>"\nstyle = true\nvectors = 2\nseed = 5\n'
        'tags = ["style"]\n'
    )
    return root


def single(folder: Path, token: str, model: Path, **options) -> ticraft.concept.Concept:
    return ticraft.train(folder, token, options.pop("init", "toy"), model=str(model), **{**FAST, **options})


def test_each_concept_equals_its_one_concept_run(catalogue, tiny_sd_dir, tmp_path):
    lib = tmp_path / "lib"
    result = ticraft.train_many(catalogue, model=str(tiny_sd_dir), library=str(lib), tags=["batch"], **FAST)
    assert list(result.concepts) == ["<blue-vase>", "<my-paint>", "<red-mug>"]
    assert list(result.failed) == ["broken"] and "could not read" in result.failed["broken"]
    alone = {
        "<blue-vase>": single(catalogue / "blue-vase", "<blue-vase>", tiny_sd_dir),
        "<my-paint>": single(catalogue / "paint", "<my-paint>", tiny_sd_dir, style=True, num_vectors=2, seed=5),
        "<red-mug>": single(catalogue / "red-mug", "<red-mug>", tiny_sd_dir),
    }
    for token, concept in result.concepts.items():
        ref = alone[token]
        assert concept.vectors["clip"].shape == ref.vectors["clip"].shape
        assert torch.allclose(concept.vectors["clip"], ref.vectors["clip"], atol=1e-5, rtol=1e-4), token
        assert np.allclose([v for _, v in concept.meta["loss_curve"]], [v for _, v in ref.meta["loss_curve"]], rtol=1e-4)
        assert concept.meta["config"]["seed"] == ref.meta["config"]["seed"]
    # the concepts really differ from each other (their own data, prompts and seeds)
    assert not torch.allclose(result.concepts["<blue-vase>"].vectors["clip"], result.concepts["<red-mug>"].vectors["clip"])
    from ticraft.library import Library

    library = Library(lib)
    assert all(library.has(t) for t in result.concepts) and not library.has("<broken>")
    assert "style" in library.entry("<my-paint>").tags and "batch" in library.entry("<red-mug>").tags


def test_sdxl_packs_of_any_size_give_the_same_vectors(tmp_path, tiny_sdxl_dir):
    root = tmp_path / "xl"
    for i, name in enumerate(["a-thing", "b-thing", "c-thing"]):
        write_pictures(root / name, 2, seed=i, size=24)
    opts = dict(FAST, steps=3, init="toy")
    one_pass = ticraft.train_many(root, model=str(tiny_sdxl_dir), max_batch=64, **opts)
    three_passes = ticraft.train_many(root, model=str(tiny_sdxl_dir), max_batch=2, **opts)
    ref = single(root / "b-thing", "<b-thing>", tiny_sdxl_dir, steps=3)
    for key in ("clip_l", "clip_g"):
        for token in one_pass.concepts:
            assert torch.allclose(one_pass.concepts[token].vectors[key], three_passes.concepts[token].vectors[key],
                                  atol=1e-5, rtol=1e-4)
        assert torch.allclose(one_pass.concepts["<b-thing>"].vectors[key], ref.vectors[key], atol=1e-5, rtol=1e-4)


def test_resume_is_exact(tmp_path, tiny_sd_dir):
    root = tmp_path / "two"
    write_pictures(root / "one", 2, seed=1)
    write_pictures(root / "two", 2, seed=2)
    opts = dict(FAST, steps=6, init="toy", save_every=2)
    full = ticraft.train_many(root, model=str(tiny_sd_dir), output_dir=tmp_path / "full", **opts)
    run = tmp_path / "cut"
    ticraft.train_many(root, model=str(tiny_sd_dir), output_dir=run, callback=lambda step, total, losses: step == 3, **opts)
    assert sorted(p.name for p in run.glob("checkpoint-*.pt")) == ["checkpoint-0000002.pt", "checkpoint-0000003.pt"]
    resumed = ticraft.train_many(root, model=str(tiny_sd_dir), output_dir=run, resume=run, **opts)
    for token, concept in full.concepts.items():
        assert torch.equal(concept.vectors["clip"], resumed.concepts[token].vectors["clip"]), token
        # the interrupted run read the loss at step 3 when it stopped (as `ticraft train` does), so its point
        # at step 4 averages one step, not two; the points before and after are the same
        curve = dict((int(s), v) for s, v in resumed.concepts[token].meta["loss_curve"])
        assert [curve[2], curve[6]] == [v for s, v in concept.meta["loss_curve"] if s in (2, 6)]
    assert (run / "one" / "one.safetensors").is_file() or any((run / "one").glob("*.safetensors"))
    # a checkpoint of other concepts is refused with a sentence naming the concept
    write_pictures(root / "three", 2, seed=3)
    with pytest.raises(TicraftError, match="no state for <three>"):
        ticraft.train_many(root, model=str(tiny_sd_dir), output_dir=run, resume=run, **opts)


def test_deterministic_reaches_the_packed_steps(tmp_path, tiny_sd_dir):
    """--deterministic holds inside train-many's steps as in `ticraft train`'s, and is restored afterwards."""
    root = tmp_path / "two"
    write_pictures(root / "one", 2, seed=1)
    write_pictures(root / "two", 2, seed=2)
    seen: list[bool] = []

    def spy(step, total, losses):
        seen.append(torch.are_deterministic_algorithms_enabled())

    before = torch.are_deterministic_algorithms_enabled()
    ticraft.train_many(root, model=str(tiny_sd_dir), init="toy", callback=spy, deterministic=True, **FAST)
    assert seen and all(seen)
    assert torch.are_deterministic_algorithms_enabled() == before
    seen.clear()
    ticraft.train_many(root, model=str(tiny_sd_dir), init="toy", callback=spy, **FAST)
    assert seen and not any(seen)


def test_every_concept_failing_is_reported(tmp_path, tiny_sd_dir):
    root = tmp_path / "bad"
    (root / "empty").mkdir(parents=True)
    write_pictures(root / "cat", 1)
    result = ticraft.train_many(root, model=str(tiny_sd_dir), **{**FAST, "steps": 1},
                                init="toy", library=None)
    assert list(result.concepts) == ["<cat>"] and "no readable training images" in result.failed["empty"]


def test_several_vectors_from_two_pictures_warn_per_concept(tmp_path, tiny_sd_dir):
    """As ``ticraft train`` does: the warning names the concept; one vector (concepts.toml) says nothing."""
    import warnings

    root = tmp_path / "few"
    write_pictures(root / "pair", 2)
    write_pictures(root / "solo-vector", 2, seed=1)
    (root / "concepts.toml").write_text('[concepts.solo-vector]\nvectors = 1\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ticraft.train_many(root, model=str(tiny_sd_dir), init="toy", library=None,
                                    **{**FAST, "steps": 1, "num_vectors": 3})
    said = [str(w.message) for w in caught if "vectors from 2 pictures" in str(w.message)]
    assert said == ["<pair>: 3 vectors from 2 pictures: with fewer than three pictures one vector kept edits more "
                    "often on the toy concept suite (--vectors 1)"], said
    assert sorted(result.concepts) == ["<pair>", "<solo-vector>"]


# --------------------------------------------------------------------- concepts.toml (no model needed)
def test_discover_defaults_and_overrides(tmp_path):
    root = tmp_path / "c"
    for name in ("red mug", "sku_12", "wave"):
        (root / name).mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "concepts.toml").write_text('[defaults]\nstyle = true\n[concepts.wave]\ntoken = "<w>"\ninit = "sea"\nstyle = false\n')
    specs = discover_concepts(root, init=None)
    assert [(s.name, s.token, s.init, s.style) for s in specs] == [
        ("red mug", "<red-mug>", "red mug", True), ("sku_12", "<sku_12-x>", "sku 12", True), ("wave", "<w>", "sea", False)]
    assert discover_concepts(root, init="thing")[0].init == "thing"  # the caller's default, under concepts.toml's
    assert default_token("a<b>") == "<a-b>" and ConceptSpec("x", root).options() == {}
    # style is an option of its own only where it was given (else the run's; resumed, the checkpoint's)
    assert ConceptSpec("x", root, style=False, vectors=2).options() == {"style": False, "num_vectors": 2}


@pytest.mark.parametrize("text, message", [
    ('[concepts.nope]\ninit = "x"\n', "no sub-folder 'nope'"),
    ('[concepts.a]\ninti = "x"\n', "unknown key 'inti'"),
    ('[concepts.a]\nvectors = "2"\n', "vectors in \\[concepts.a\\] must be a int"),
    ('[defaults]\ntoken = "<x>"\n', "unknown key 'token' in \\[defaults\\]"),
    ('[concepts.a]\ntoken = "<b>"\n', "both use the token <b>"),
    ('init = \n', "not valid TOML"),
])
def test_bad_concepts_toml_is_one_sentence(tmp_path, text, message):
    root = tmp_path / "c"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "concepts.toml").write_text(text)
    with pytest.raises(ManySpecError, match=message):
        discover_concepts(root)


def test_not_a_concept_folder(tmp_path):
    with pytest.raises(ManySpecError, match="no such folder"):
        discover_concepts(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    write_pictures(tmp_path / "flat", 1).joinpath("img0.png")
    with pytest.raises(ManySpecError, match="no sub-folders"):
        discover_concepts(tmp_path / "flat")


# ------------------------------------------------------------------------------------------- CLI
def test_cli_train_many(catalogue, tiny_sd_dir, tmp_path):
    from ticraft.cli.main import app

    runner = CliRunner()
    lib = tmp_path / "cli-lib"
    res = runner.invoke(app, ["train-many", str(catalogue), "--model", str(tiny_sd_dir), "--steps", "2", "--batch", "2",
                              "--device", "cpu", "--previews", "0", "--library", str(lib), "--out", str(tmp_path / "run")])
    text = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert res.exit_code == 1, text  # one concept failed: reported, the others saved
    assert "learned <blue-vase>" in text and "learned <my-paint>" in text and "failed broken" in text
    assert "3 learned, 1 failed" in text
    assert (tmp_path / "run" / "my-paint").is_dir()
    again = runner.invoke(app, ["train-many", str(catalogue / "nowhere"), "--model", str(tiny_sd_dir)])
    assert again.exit_code == 1 and "no such folder" in again.output + (again.stderr or "")


def test_cli_deterministic_and_device_reach_train_many(tmp_path, monkeypatch):
    """train-many shares train's --deterministic and --device options, and both reach ticraft.train_many."""
    import ticraft.training.many_api as many_api
    from ticraft.cli.main import app

    seen: dict = {}

    def fake(folder, model, **kwargs):
        seen.update(kwargs)
        raise TicraftError("stopped by the test")  # the CLI prints it and exits 1

    monkeypatch.setattr(many_api, "train_many", fake)
    root = write_pictures(tmp_path / "c" / "one", 2).parent
    res = CliRunner().invoke(app, ["train-many", str(root), "--deterministic", "--device", "cpu", "--no-library"])
    assert res.exit_code == 1 and "stopped by the test" in res.output + (res.stderr or "")
    assert seen.get("deterministic") is True and seen.get("device") == "cpu", seen
    bad = CliRunner().invoke(app, ["train-many", str(root), "--device", "gpu9"])
    assert bad.exit_code == 2 and "gpu9" in bad.output + (bad.stderr or "")


def test_cli_set_reaches_train_many(tmp_path, monkeypatch):
    """`--set key=value` reaches every TrainConfig field without a flag, typed as in `ticraft train`; a field given
    twice or unknown is one sentence and nothing runs."""
    import ticraft.training.many_api as many_api
    from ticraft.cli.main import app

    seen: dict = {}

    def fake(folder, model, **kwargs):
        seen.update(kwargs)
        raise TicraftError("stopped by the test")

    monkeypatch.setattr(many_api, "train_many", fake)
    root = write_pictures(tmp_path / "c" / "one", 2).parent
    res = CliRunner().invoke(app, ["train-many", str(root), "--no-library", "--set", "lr_schedule=cosine",
                                   "--set", "warmup_steps=20", "--set", "max_grad_norm=none", "--set", "flip=false",
                                   "--set", "style=true"])
    assert res.exit_code == 1 and "stopped by the test" in res.output + (res.stderr or "")
    assert (seen["lr_schedule"], seen["warmup_steps"], seen["flip"]) == ("cosine", 20, False), seen
    assert "max_grad_norm" in seen and seen["max_grad_norm"] is None
    assert seen["style"] is True  # train_many's own argument, given once (it was passed twice: a TypeError)
    seen.clear()
    for argv, message in ((["--steps", "5", "--set", "steps=6"], "already given by its own flag"),
                          (["--set", "stepz=6"], "did you mean 'steps'"),
                          (["--set", "warmup_steps=many"], "warmup_steps takes")):
        bad = CliRunner().invoke(app, ["train-many", str(root), "--no-library", *argv])
        assert bad.exit_code != 0 and message in bad.output + (bad.stderr or ""), (argv, bad.output)
        assert not seen  # refused before anything trains


def test_progressive_for_every_concept_with_its_own_vectors(tmp_path, tiny_sd_dir):
    """concepts.toml gives each concept 2 vectors and the run asks for progressive extension: the shared options are
    checked against those counts (they were checked against the preset's 1 vector and refused)."""
    specs = [ConceptSpec("a", write_pictures(tmp_path / "a", 2, seed=1), init="toy", vectors=2),
             ConceptSpec("b", write_pictures(tmp_path / "b", 2, seed=2), init="toy", vectors=3)]
    result = ticraft.train_many(specs, str(tiny_sd_dir), **{**FAST, "progressive": 1})
    assert {t: c.num_vectors for t, c in result.concepts.items()} == {"<a>": 2, "<b>": 3}


def test_a_list_of_specs_takes_the_runs_init_and_style_where_it_leaves_them_unset(tmp_path, tiny_sd_dir):
    """train_many(list, init=…, style=…) gives them to the specs that set none, as it does to a folder's concepts
    (they were dropped: a list's concepts trained as objects from their names' words whatever was asked)."""
    specs = [ConceptSpec("a", write_pictures(tmp_path / "a", 2, seed=1)),
             ConceptSpec("b", write_pictures(tmp_path / "b", 2, seed=2), init="toy", style=False)]
    result = ticraft.train_many(specs, str(tiny_sd_dir), init="thing", style=True, **FAST)
    a, b = result.concepts["<a>"], result.concepts["<b>"]
    assert a.meta["initializer"] == "thing" and a.meta["config"]["style"] is True
    assert b.meta["initializer"] == "toy" and b.meta["config"]["style"] is False
