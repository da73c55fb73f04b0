"""Issue 13, items 1-2: every run either learns or says why.

A caption that pushes the placeholder past CLIP's window, a concept named in the initializer or a caption,
one picture, an initializer the model splits into pieces: each used to train silently (or save the
initializer unchanged); now each is a clear error or a one-line TrainWarning.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from train_images import write_images
from typer.testing import CliRunner

import ticraft
from ticraft.concept import Concept
from ticraft.errors import TicraftError, TicraftWarning
from ticraft.training import inputs
from ticraft.training.inputs import TrainWarning

# one vector, so the messages below name one placeholder row (the fast preset learns 3)
FAST = dict(steps=2, batch_size=2, log_every=1, previews=0, num_vectors=1)


LONG = "a photo of " + "red " * 80  # 83 tokens of the tiny tokenizer: the placeholder at the end is cut off


def test_placeholder_past_the_window_is_one_clear_error(tmp_path, tiny_sd_dir):
    """Before: trained the whole run and saved a vector identical to the initializer (exit 0)."""
    from ticraft.library import Library

    images = write_images(tmp_path / "im", captions=[LONG + "{}", "a photo of {}"])
    lib = Library(tmp_path / "lib")
    with pytest.raises(TicraftError, match=r"the caption of img0\.png .* 84 tokens long.*reads only 75") as info:
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), captions=True, library=lib, **FAST)
    assert "\n" not in str(info.value)
    assert not lib.has("<thing>")


def test_long_prompt_with_the_placeholder_inside_the_window_warns(tmp_path, tiny_sd_dir):
    images = write_images(tmp_path / "im", captions=["{} " + LONG, "a photo of {}"])
    with pytest.warns(TrainWarning, match=r"near or past the 75-token limit \(longest: the caption of img0\.png"):
        c = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), captions=True, **FAST)
    assert any("75-token limit" in w for w in c.meta["warnings"])


def test_a_vector_that_did_not_move_is_an_error(tmp_path, tiny_sd_dir, monkeypatch):
    """Even when the prompt check is bypassed, the result check catches a run that learned nothing."""
    from ticraft.library import Library

    monkeypatch.setattr(inputs, "check_prompt_budget", lambda *a, **k: None)
    images = write_images(tmp_path / "im", captions=[LONG + "{}", LONG + "{}"])
    lib = Library(tmp_path / "lib")
    with pytest.raises(TicraftError, match=r"vector 0 of 1 did not move from the initializer in 2 steps"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), captions=True, library=lib, **FAST)
    assert not lib.has("<thing>")
    start = {"clip": torch.zeros(2, 4)}
    inputs.check_moved("<t>", start, {"clip": torch.ones(2, 4)}, 3)  # moved: fine
    with pytest.raises(TicraftError, match="diverged"):
        inputs.check_moved("<t>", start, {"clip": torch.full((2, 4), float("nan"))}, 3)


def test_one_picture_and_a_multi_piece_initializer_warn(tmp_path, tiny_sd_dir):
    images = write_images(tmp_path / "im", n=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = ticraft.train(images, "<thing>", "zorb", model=str(tiny_sd_dir), **FAST)
    ours = [str(w.message) for w in caught if issubclass(w.category, TicraftWarning)]
    assert any("one picture (img0.png)" in m for m in ours), ours
    assert any("'zorb' is not one token of the model but 4 pieces (z + o + r + b)" in m for m in ours), ours
    assert all("\n" not in m for m in ours)
    assert c.meta["warnings"] == ours


def test_several_vectors_from_fewer_than_three_pictures_warn(tmp_path, tiny_sd_dir):
    """The preset's three vectors over-fit one or two pictures on the suite: said once, the count is not changed."""
    images = write_images(tmp_path / "im", n=2)
    for vectors, expected in ((3, True), (1, False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            c = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **{**FAST, "num_vectors": vectors})
        said = [str(w.message) for w in caught if "3 vectors from 2 pictures" in str(w.message)]
        assert bool(said) == expected and c.num_vectors == vectors, said
        assert not said or "(--vectors 1)" in said[0]


def test_cli_prints_the_warnings_as_one_line_each(tmp_path, tiny_sd_dir):
    from ticraft.cli.main import app

    images = write_images(tmp_path / "im", n=1)
    result = CliRunner().invoke(app, ["train", str(images), "-t", "<thing>", "-i", "zorb", "-m", str(tiny_sd_dir),
                                      "--steps", "2", "--batch", "2", "--no-library"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("warning:")]
    assert any("one picture" in ln for ln in lines) and any("4 pieces" in ln for ln in lines), result.output


@pytest.fixture
def library_with(tmp_path):
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")
    g = torch.Generator().manual_seed(0)
    lib.add(Concept("<ok>", {"clip": torch.randn(2, 32, generator=g)}, family="custom"))
    lib.add(Concept("<kohya>", {"clip": torch.randn(1, 768, generator=g)}, family="sd1"))
    lib.add(Concept("<toyish>", {"clip": torch.randn(1, 64, generator=g)}, family="toy"))
    return lib


@pytest.mark.parametrize("init, message", [
    ("<kohya>", r"initializer names concept <kohya> .*\{'clip': 768\}.*expects \{'clip': 32\}"),
    ("toy <toyish>", r"initializer names concept <toyish> .*\{'clip': 64\}.*expects \{'clip': 32\}"),
    ("<nowhere>", r"unknown concept <nowhere> \(in the initializer '<nowhere>'\)"),
    ("<thing>", r"names <thing>, the token being trained"),
])
def test_concepts_in_the_initializer_are_checked(tmp_path, tiny_sd_dir, library_with, init, message):
    """Before: '<kohya>' was read as plain text ('<', 'k', 'o', ...) and trained without a word."""
    images = write_images(tmp_path / "im")
    with pytest.raises(TicraftError, match=message):
        ticraft.train(images, "<thing>", init, model=str(tiny_sd_dir), library=library_with, **FAST)


def test_a_concept_of_the_right_family_starts_the_vectors(tiny_sd_dir, library_with, one_torch_thread):
    from ticraft.models.load import load_backbone

    bb = load_backbone(str(tiny_sd_dir))
    ok = library_with.get("<ok>")
    start = inputs.initial_vectors(bb, "<ok>", 2, {"<ok>": ok})
    assert torch.equal(start["clip"], ok.vectors["clip"])
    mean = inputs.initial_vectors(bb, "<ok>", 1, {"<ok>": ok})
    assert torch.allclose(mean["clip"], ok.vectors["clip"].mean(0, keepdim=True))


def test_concepts_in_captions_are_checked_and_used(tmp_path, tiny_sd_dir, library_with):
    wrong = write_images(tmp_path / "wrong", captions=["{} next to <kohya>", "a photo of {}"])
    with pytest.raises(TicraftError, match=r"a caption names concept <kohya> .*768.*expects \{'clip': 32\}"):
        ticraft.train(wrong, "<thing>", "toy", model=str(tiny_sd_dir), captions=True, library=library_with, **FAST)
    unknown = write_images(tmp_path / "unknown", captions=["{} next to <gone>", "a photo of {}"])
    with pytest.raises(TicraftError, match=r"unknown concept <gone> \(in the caption of img0\.png\)"):
        ticraft.train(unknown, "<thing>", "toy", model=str(tiny_sd_dir), captions=True, library=library_with, **FAST)
    right = write_images(tmp_path / "right", captions=["{} next to <ok>", "a photo of {}"])
    c = ticraft.train(right, "<thing>", "toy", model=str(tiny_sd_dir), captions=True, library=library_with, **FAST)
    assert c.meta["steps"] == 2


def test_more_vectors_than_a_prompt_holds_is_refused(tmp_path, tiny_sd_dir):
    images = write_images(tmp_path / "im")
    with pytest.raises(TicraftError, match="num_vectors is 76, more than 75"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **{**FAST, "num_vectors": 76})
    with pytest.raises(TicraftError, match=r"the prompt .* reads only 75"):  # 70 vectors + a template > 75
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **{**FAST, "num_vectors": 70})
