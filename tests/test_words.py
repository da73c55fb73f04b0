"""Hard prompts (PEZ): K whole vocabulary words, the search lowers the matching loss, per-layer concepts work,
K beyond the prompt budget is one sentence, the CLI prints the words and writes JSON."""

from __future__ import annotations

import json

import pytest

from ticraft.analysis.words import WordsError, hard_prompt
from ticraft.concept import Concept


def _word_concept(bb, word: str, token: str = "<w>") -> Concept:
    return Concept(token, bb.token_vector(word), family=bb.family)


def test_words_are_whole_vocabulary_words_and_the_search_helps(bb):
    c = _word_concept(bb, "toy cat").mean_vector()
    r = hard_prompt(bb, c, length=2, steps=30, seed=1)
    assert len(r.ids) == len(r.words) == len(r.checks) == 2
    vocab = bb.encoders[0].tokenizer.get_vocab()
    assert all(w + "</w>" in vocab and w.isalpha() for w in r.words)
    assert r.loss <= r.initial_loss and r.retokenizes
    assert r.text == " ".join(r.words)
    assert all(-1.0 <= ch.cosine <= 1.0 and ch.token == w for ch, w in zip(r.checks, r.words, strict=True))
    assert "<ticraft-pez>" not in bb.encoders[0].embedding.blocks()  # nothing left spliced


def test_a_real_word_is_found_again(bb):
    """A concept that *is* the row of one word: the best one-word prompt has (near) zero loss and is that word."""
    c = _word_concept(bb, "cat")
    r = hard_prompt(bb, c, length=1, steps=60, seed=0, lr=0.3)
    assert r.words == ["cat"] and r.loss < 1e-8


def test_per_layer_concepts_are_matched_per_layer(bb):
    from ticraft.models.layers import layer_count

    L = layer_count(bb.unet)
    rows = bb.token_vector("toy")["clip"].repeat(L, 1)
    c = Concept("<lay>", {"clip": rows}, family=bb.family, meta={"method": "xti", "xti_layers": L})
    r = hard_prompt(bb, c, length=1, steps=40, lr=0.3)
    assert r.words == ["toy"] and r.loss < 1e-8
    bb.unload_concept("<lay>")


def test_too_many_words_is_one_sentence(bb):
    c = _word_concept(bb, "cat")
    with pytest.raises(WordsError, match=r"--length 80 is more than a prompt allows here: .* at most \d+ words"):
        hard_prompt(bb, c, length=80, steps=1)


def test_cli_words(tiny_sd_dir, tmp_path):
    from typer.testing import CliRunner

    from ticraft.cli.main import app
    from ticraft.library import Library
    from ticraft.models.load import load_backbone

    bb = load_backbone(str(tiny_sd_dir))
    Library(tmp_path / "lib").add(Concept("<w>", bb.token_vector("toy"), family=bb.family))
    out = tmp_path / "w.json"
    res = CliRunner().invoke(app, ["words", "<w>", "--model", str(tiny_sd_dir), "--library", str(tmp_path / "lib"),
                                   "--length", "1", "--steps", "40", "--lr", "0.3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "<w> ≈ toy" in res.output and "nearest-token check" in res.output
    data = json.loads(out.read_text())
    assert data["words"] == ["toy"] and len(data["checks"]) == 1
    res = CliRunner().invoke(app, ["words", "<w>", "--model", str(tiny_sd_dir), "--library", str(tmp_path / "lib"),
                                   "--length", "99"])
    assert res.exit_code != 0 and "--length 99 is more than a prompt allows" in res.output


@pytest.mark.slow
def test_toy_hidden_object_words_are_judged(tmp_path):
    from pathlib import Path

    from ticraft.analysis.words import judge_words
    from ticraft.formats import read_concept
    from ticraft.models.load import load_backbone

    bb = load_backbone("toy")
    fixture = Path(__file__).parent / "fixtures" / "toyworld_hidden.safetensors"
    c = read_concept(fixture, token="zorb", family="toy").replace(token="<zorb>")
    r = hard_prompt(bb, c, length=4, steps=150)
    scores = judge_words(bb, c, r.text, n=4)
    assert scores["concept"] == 1.0 and 0.0 <= scores["words"] <= 1.0
    assert "orange" in r.words or "star" in r.words


def test_tui_library_words_key(tmp_path):
    """Library screen: `w` shows the hard prompt where the nearest tokens go (fake model backend)."""
    import asyncio

    from ticraft_tui.app import TicraftApp
    from ticraft_tui.testing import FakeModelBackend, make_library
    from ticraft_tui.widgets.concept_list import ConceptList

    backend = FakeModelBackend(make_library(tmp_path / "lib", 3))

    async def go() -> None:
        app = TicraftApp(backend)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            app.screen.query_one(ConceptList).focus()
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.press("w")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            shown = str(app.screen.query_one("#neighbors").render())
            assert "Words (PEZ" in shown and "loss 0.1000" in shown
            assert any(c[0] == "hard_prompt" for c in backend.calls)

    asyncio.run(go())
