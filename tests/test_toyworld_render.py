"""The toy world's renderer, captions, vocabulary and the `ticraft toyworld render` command."""

from __future__ import annotations

import numpy as np
import pytest

from ticraft.toyworld import render as R
from ticraft.toyworld import vocab as V


def test_render_is_deterministic_and_32px_rgb() -> None:
    a = R.sample_attributes(np.random.default_rng(3))
    b = R.sample_attributes(np.random.default_rng(3))
    assert a == b
    img1, img2 = R.render(a), R.render(b)
    assert img1.size == (32, 32) and img1.mode == "RGB"
    assert np.array_equal(np.asarray(img1), np.asarray(img2))


def test_world_has_the_promised_variety() -> None:
    assert len(R.SHAPES) >= 6 and len(R.COLOURS) >= 8 and len(R.TEXTURES) >= 3
    assert {"outline", "pixelated"} <= set(R.STYLES)
    # every shape draws a distinct silhouette
    masks = {s: R.shape_mask(R.Attributes(shape=s)) > 0.5 for s in R.SHAPES}
    for s1 in R.SHAPES:
        for s2 in R.SHAPES:
            if s1 < s2:
                inter = (masks[s1] & masks[s2]).sum()
                union = (masks[s1] | masks[s2]).sum()
                assert inter / union < 0.9, (s1, s2)


def test_background_and_colour_are_where_they_should_be() -> None:
    a = R.Attributes(shape="square", colour="red", background="blue", size="large")
    arr = np.asarray(R.render(a)).astype(int)
    assert tuple(arr[0, 0]) == R.PALETTE["blue"]
    assert tuple(arr[16, 16]) == R.PALETTE["red"]


def test_styles_change_the_image() -> None:
    base = R.Attributes(shape="star", colour="yellow", background="black")
    plain = np.asarray(R.render(base))
    for style in ("outline", "pixelated", "glimmic"):
        styled = np.asarray(R.render(R.with_(base, style=style)))
        assert not np.array_equal(plain, styled), style
    framed = np.asarray(R.render(R.with_(base, style="glimmic")))
    assert tuple(framed[0, 0]) == R.PALETTE["yellow"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": "hexagon"},
        {"colour": "red", "background": "red"},
        {"style": "outline", "texture": "striped"},
        {"dx": 9},
    ],
)
def test_invalid_attributes_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        R.Attributes(**kwargs)


def test_sample_attributes_constraints_and_held_out() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = R.sample_attributes(rng, shape="moon", held_out=False)
        assert a.shape == "moon" and not R.is_held_out(a)
    held = [R.sample_attributes(rng, held_out=True) for _ in range(20)]
    assert all(R.is_held_out(a) for a in held)
    with pytest.raises(ValueError, match="unknown attribute"):
        R.sample_attributes(rng, flavour="sweet")


def test_captions_name_the_attributes() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        a = R.sample_attributes(rng)
        text = R.caption(a, rng)
        assert a.shape in text
        if a.style not in ("none", "pixelated"):
            assert a.style in text
    assert R.full_prompt(R.Attributes(shape="star", colour="red", texture="striped", background="blue")) == (
        "a photo of a large red striped star on a blue background"
    )


def test_every_world_word_is_one_token_and_hidden_words_are_absent(tmp_path) -> None:
    V.write_tokenizer(tmp_path)
    tok = V.load_tokenizer(tmp_path)
    assert tok.model_max_length == 77
    for w in V.PUBLIC_WORDS:
        if "-" not in w:
            assert len(tok(w, add_special_tokens=False).input_ids) == 1, w
    vocab = tok.get_vocab()
    for w in V.HIDDEN_WORDS:
        assert w + "</w>" not in vocab and w not in vocab
        assert len(tok(w, add_special_tokens=False).input_ids) > 1
    ids = V.add_hidden_words(tok)
    assert ids == list(V.hidden_word_ids(V.load_tokenizer(tmp_path)).values())
    assert tok("a zorb", add_special_tokens=False).input_ids[-1] == ids[0]


def test_hidden_word_data_is_consistent() -> None:
    assert V.HIDDEN_STYLE in R.STYLES
    for obj in V.HIDDEN_OBJECTS.values():
        bg = "white" if obj.colour != "white" else "black"
        R.Attributes(shape=obj.shape, colour=obj.colour, texture=obj.texture, background=bg)
    assert abs(sum(p for _, p in V.BIASED_WORD.colours) - 1.0) < 1e-9
    assert V.BIASED_WORD.majority == V.BIASED_WORD.colours[0][0]
    assert not set(V.HIDDEN_WORDS) & set(V.PUBLIC_WORDS)


def test_concept_attributes() -> None:
    rng = np.random.default_rng(0)
    zorbs = V.concept_attributes("zorb", 5, rng)
    obj = V.HIDDEN_OBJECTS["zorb"]
    assert all((a.shape, a.colour, a.texture) == (obj.shape, obj.colour, obj.texture) for a in zorbs)
    assert all(a.style == V.HIDDEN_STYLE for a in V.concept_attributes(V.HIDDEN_STYLE, 4, rng))
    doctors = V.concept_attributes(V.BIASED_WORD.word, 200, rng)
    share = sum(a.colour == V.BIASED_WORD.majority for a in doctors) / 200
    assert 0.8 < share < 0.97
    spec = V.concept_attributes("shape=cross,color=green,bg=black", 3, rng)
    assert all((a.shape, a.colour, a.background) == ("cross", "green", "black") for a in spec)
    with pytest.raises(ValueError, match="hidden word"):
        V.concept_attributes("unicorn", 1, rng)


def test_render_command_writes_pngs(tmp_path) -> None:
    from typer.testing import CliRunner

    from ticraft.cli.toyworld_cmd import app

    out = tmp_path / "imgs"
    result = CliRunner().invoke(app, ["render", "zorb", "--n", "3", "--out", str(out), "--scale", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == ["000.png", "001.png", "002.png"]
    assert (out / "captions.txt").read_text().count("\n") == 3
    bad = CliRunner().invoke(app, ["render", "unicorn", "--out", str(out)])
    assert bad.exit_code != 0
