"""The judge reads every attribute back from fresh renders (≥ 98 %), and degrades gracefully on noisy images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ticraft.toyworld import judge as J
from ticraft.toyworld import render as R


@pytest.fixture(scope="module")
def fresh() -> tuple[list[R.Attributes], list[J.Judgement]]:
    rng = np.random.default_rng(20240607)
    attrs = [R.sample_attributes(rng) for _ in range(400)]
    return attrs, [J.judge(R.render(a)) for a in attrs]


def test_judge_is_at_least_98_percent_right_on_fresh_renders(fresh) -> None:
    attrs, judgements = fresh
    acc = J.accuracy(judgements, attrs)
    for field in J.JUDGED_FIELDS:
        assert acc[field] >= 0.98, (field, acc)


def test_judge_reads_position(fresh) -> None:
    attrs, judgements = fresh
    right = sum((j.dx, j.dy) == (a.dx, a.dy) for a, j in zip(attrs, judgements, strict=True))
    assert right / len(attrs) >= 0.95


@pytest.mark.parametrize("style", ["none", "outline", "pixelated", "glimmic"])
def test_every_style_is_recognised(style: str) -> None:
    rng = np.random.default_rng(5)
    attrs = [R.sample_attributes(rng, style=style) for _ in range(40)]
    assert all(J.judge(R.render(a)).style == style for a in attrs)


def test_judge_tolerates_noise_and_other_sizes() -> None:
    rng = np.random.default_rng(9)
    attrs = [R.sample_attributes(rng, style="none") for _ in range(100)]
    right = {"shape": 0, "colour": 0, "background": 0}
    for a in attrs:
        noisy = R.render_array(a) + rng.normal(0, 12, (32, 32, 3))
        big = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).resize((64, 64), Image.NEAREST)
        j = J.judge(big)
        for f in right:
            right[f] += getattr(j, f) == getattr(a, f)
    assert right["colour"] >= 95 and right["background"] >= 98 and right["shape"] >= 90, right


def test_judge_accepts_unit_float_arrays() -> None:
    a = R.Attributes(shape="cross", colour="green", background="black")
    j = J.judge(R.render_array(a) / 255.0)
    assert (j.shape, j.colour, j.background) == ("cross", "green", "black")
    assert j.matches(a)["shape"]


def test_bad_inputs_and_helpers() -> None:
    with pytest.raises(ValueError, match="RGB"):
        J.judge(np.zeros((32, 32)))
    with pytest.raises(ValueError):
        J.accuracy([], [R.Attributes()])
    js = [J.judge(R.render(R.Attributes(colour=c, background="black"))) for c in ("red", "red", "white")]
    dist = J.colour_distribution(js)
    assert dist["red"] == pytest.approx(2 / 3) and dist["white"] == pytest.approx(1 / 3)
    # an empty canvas still yields a judgement (the model may draw nothing)
    blank = J.judge(np.full((32, 32, 3), 200.0))
    assert blank.background in R.COLOURS
