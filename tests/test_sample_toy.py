"""Acceptance in the toy world: "a photo of <hidden-object>" is judged to show the hidden object.

The hidden object word ("zorb": an orange striped star) was removed from the shipped tokenizer. A concept
that holds its true row (saved by the base trainer in ``tests/fixtures/toyworld_hidden.safetensors``) is
what a perfect inversion would find: sampling with it must bring the object back (fast test). The slow
test trains the concept from rendered pictures with ``ticraft.training`` and checks the same.

The toy weights, the fixture, the judge and the trainer are all shipped: a missing one fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "toyworld_hidden.safetensors"
TOKEN = "<hidden-object>"
PROMPT = f"a photo of {TOKEN}"
N_SAMPLES = 12


def _toy_backbone():
    from ticraft.models.load import load_backbone

    return load_backbone("toy")  # shipped: a missing or broken toy model fails the test


def _judge():
    from ticraft.toyworld.judge import judge
    from ticraft.toyworld.vocab import HIDDEN_OBJECTS

    return judge, HIDDEN_OBJECTS["zorb"]


@pytest.fixture(scope="module")
def toy():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32 px model on a shared machine: threads only add barrier waits
    yield _toy_backbone()
    torch.set_num_threads(before)


def judged_correct(images, obj, judge) -> tuple[int, dict[str, int]]:
    """How many images show the object (its colour, and its shape or texture) + per-attribute counts."""
    js = [judge(im) for im in images]
    counts = {f: sum(getattr(j, f) == getattr(obj, f) for j in js) for f in ("shape", "colour", "texture")}
    ok = sum(j.colour == obj.colour and (j.shape == obj.shape or j.texture == obj.texture) for j in js)
    return ok, counts


def _sample(bb, concept):
    import ticraft

    return ticraft.sample(PROMPT, concepts=[concept], model=bb, n=N_SAMPLES, seed=0, batch_size=N_SAMPLES)


def test_true_vector_concept_is_judged_correct(toy):
    judge, obj = _judge()
    assert FIXTURE.is_file(), f"the hidden-word fixture is shipped in {FIXTURE}"
    from safetensors.torch import load_file

    from ticraft.concept import Concept

    row = load_file(str(FIXTURE))[obj.word].float()
    concept = Concept(TOKEN, {"clip": row.reshape(1, -1)}, family="toy")
    images = _sample(toy, concept)
    assert images[0].size == (32, 32)
    ok, counts = judged_correct(images, obj, judge)
    assert ok > N_SAMPLES // 2, f"{ok}/{N_SAMPLES} judged correct; per attribute {counts}"
    # Without the concept the prompt names nothing: the object should appear less often by chance.
    import ticraft

    baseline = ticraft.sample("a photo of a thing", model=toy, n=N_SAMPLES, seed=0, batch_size=N_SAMPLES)
    base_ok, _ = judged_correct(baseline, obj, judge)
    assert base_ok < ok


@pytest.mark.slow
def test_trained_concept_is_judged_correct(toy, tmp_path):
    judge, obj = _judge()
    from ticraft.toyworld.render import render, sample_attributes
    from ticraft.training.api import train
    rng = np.random.default_rng(0)
    pictures = [render(sample_attributes(rng, shape=obj.shape, colour=obj.colour, texture=obj.texture, style="none"))
                for _ in range(6)]
    concept = train(pictures, TOKEN, "shape", model=toy, preset="fast", seed=0)
    images = _sample(toy, concept)
    ok, counts = judged_correct(images, obj, judge)
    assert ok > N_SAMPLES // 2, f"{ok}/{N_SAMPLES} judged correct after training; per attribute {counts}"
