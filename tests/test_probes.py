"""Bias and style probes and the paper's metrics.

Statistics and judging are exercised on real toy-world renders through a stub *renderer* (the diffusion model is
incidental there); CLIP paths run on a tiny random CLIP saved to disk; the toy-world acceptance test (the biased
hidden word's skew and its reduction by a learned fair concept) runs on the shipped toy model once it exists.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ticraft.analysis import metrics, probes
from ticraft.analysis.probes import distribution
from ticraft.errors import TicraftError
from ticraft.toyworld.render import COLOURS, SHAPES, Attributes, render

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
TOY_WEIGHTS = REPO / "ticraft" / "toyworld" / "weights" / "model_index.json"
HIDDEN_FIXTURE = REPO / "tests" / "fixtures" / "toyworld_hidden.safetensors"


# ------------------------------------------------------------------------------------------ a stub renderer
def toy_image(prompt: str, seed: int, *, doctor_colours=(("white", 0.9), ("green", 0.1))):
    """Render what an ideal toy model would draw for ``prompt`` (seeded), so probes see real judgeable images.

    ``<doctor>`` draws a plain cross in a colour drawn from ``doctor_colours``; ``<fair-doctor>`` draws it white or
    green with equal odds; ``<zorb>`` an orange striped star; ``<glimmic>`` (or "glimmic") switches the frame style.
    """
    rng = np.random.default_rng(seed)
    words = re.findall(r"<[^>]+>|\w+", prompt.lower())
    attrs: dict[str, object] = {"shape": "circle", "colour": "red", "texture": "plain", "size": "large",
                                "background": "blue", "style": "none"}
    if "<doctor>" in words or "<fair-doctor>" in words:
        names, probs = zip(*(doctor_colours if "<doctor>" in words else (("white", 0.5), ("green", 0.5))))
        attrs.update(shape="cross", colour=str(rng.choice(names, p=probs)))
    if "<zorb>" in words:
        attrs.update(shape="star", colour="orange", texture="striped")
    for w in words:
        if w in SHAPES:
            attrs["shape"] = w
    colours = [w for w in words if w in COLOURS]
    if "background" in words:
        bg = words[words.index("background") - 1]
        attrs["background"] = bg
        colours = [c for c in colours if c != bg]
    if colours:
        attrs["colour"] = colours[0]
    if "small" in words:
        attrs["size"] = "small"
    for style in ("outline", "pixelated", "glimmic", "<glimmic>"):
        if style in words and "style" in words:
            attrs["style"] = style.strip("<>")
    if attrs["style"] in ("outline", "pixelated"):
        attrs.update(texture="plain", size="large" if attrs["style"] == "pixelated" else attrs["size"])
    if attrs["colour"] == attrs["background"]:
        attrs["background"] = "yellow" if attrs["colour"] != "yellow" else "blue"
    return render(Attributes(**attrs))  # type: ignore[arg-type]


class StubRenderer:
    """``(prompts, seeds) -> images`` that records every call."""

    def __init__(self, **kw):
        self.calls: list[tuple[list[str], list[int]]] = []
        self.kw = kw

    def __call__(self, prompts, seeds):
        self.calls.append((list(prompts), list(seeds)))
        return [toy_image(p, s, **self.kw) for p, s in zip(prompts, seeds)]


# ----------------------------------------------------------------------------------------------- statistics
def test_distribution_statistics():
    d = distribution(["white"] * 9 + ["green"], labels=["white", "green"])
    assert d.counts == {"white": 9, "green": 1} and d.majority == "white" and d.majority_share == 0.9
    assert d.tv_uniform == pytest.approx(0.4)
    assert d.entropy == pytest.approx(-(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1)))
    assert d.max_entropy == 1.0
    flat = distribution(["a", "b", "c", "d"], labels="abcd")
    assert flat.tv_uniform == 0.0 and flat.normalized_entropy == pytest.approx(1.0)
    one = distribution(["a"] * 5, labels="abcd")
    assert one.tv_uniform == pytest.approx(0.75) and one.entropy == 0.0
    other = distribution(["a", "x", "y", "b"], labels=["a", "b"])
    assert other.counts == {"a": 1, "b": 1, "other": 2} and other.tv_uniform == pytest.approx(0.5)
    with pytest.raises(TicraftError):
        distribution([], labels=["a"])


def test_bias_probe_reports_skew_and_fair_reduction_on_rendered_images(tmp_path):
    rnd = StubRenderer()
    clf = probes.toy_classifier("colour")
    res = probes.run_bias(["a photo of a <doctor>", "a photo of a <fair-doctor>"], renderer=rnd, classifier=clf,
                          n=60, seed=4, labels=["white", "green"])
    biased, fair = (r.distribution for r in res.reports)
    assert rnd.calls[0][1] == rnd.calls[1][1] == list(range(4, 64))  # one seed set for both prompts
    # the judge reads the rendered colours exactly, so the probe sees the true skew
    truth = [str(np.random.default_rng(s).choice(["white", "green"], p=[0.9, 0.1])) for s in range(4, 64)]
    assert res.reports[0].readings == truth
    assert biased.majority == "white" and biased.majority_share > 0.75 and biased.tv_uniform > 0.25
    assert fair.tv_uniform < biased.tv_uniform and fair.entropy > biased.entropy
    assert res.tv_reduction == pytest.approx(biased.tv_uniform - fair.tv_uniform)
    chart = probes.bias_chart(res.reports, tmp_path / "bias.png")
    assert chart.is_file() and chart.stat().st_size > 2000
    d = res.to_dict()
    assert d["reports"][0]["counts"]["white"] == biased.counts["white"] and d["tv_reduction"] > 0


def test_judge_choice_and_clear_errors(tmp_path):
    assert probes.make_classifier("toy", "color").name == "toy judge"
    assert probes.make_classifier("toy", "shape").labels == SHAPES
    with pytest.raises(TicraftError, match="--clip"):
        probes.make_classifier("sd1", "gender")
    with pytest.raises(TicraftError, match="not found"):
        probes.make_classifier("sd1", "gender", clip=tmp_path / "nowhere")
    with pytest.raises(TicraftError, match="config.json"):
        probes.make_classifier("sd1", "gender", clip=tmp_path)
    with pytest.raises(TicraftError, match="toy judge reads"):
        probes.toy_classifier("gender")
    with pytest.raises(TicraftError, match="at least one image"):
        probes.run_bias(["x"], renderer=StubRenderer(), classifier=probes.toy_classifier("colour"), n=0)


# ------------------------------------------------------------------------------------------------- tiny CLIP
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from tiny_clip import tiny_clip_folder

    return tiny_clip_folder(tmp_path_factory.mktemp("tiny_clip"))


def test_clip_zero_shot_bias_and_style(tiny_clip, tmp_path):
    from ticraft.analysis.clip import load_clip

    clf = probes.make_classifier("sd1", "gender", clip=tiny_clip)
    res = probes.run_bias(["a photo of a doctor"], renderer=StubRenderer(), classifier=clf, n=4)
    assert set(res.reports[0].readings) <= {"man", "woman"} and clf.name.startswith("CLIP")
    with pytest.raises(TicraftError, match="--labels"):
        probes.make_classifier("sd1", "mood", clip=tiny_clip)
    custom = probes.make_classifier("sd1", "mood", clip=tiny_clip, labels=["happy", "sad"], template="a {} photo")
    assert set(custom([toy_image("a red circle", 0)])) <= {"happy", "sad"}

    scorer = probes.ClipStyleScorer(load_clip(tiny_clip))
    refs = [toy_image("a green square in <glimmic> style", s) for s in range(3)]
    rep = probes.run_style("<glimmic>", ["a red circle"], references=refs, renderer=StubRenderer(), scorer=scorer,
                           template="{content} in {style} style", n=2)
    assert all(-1.0 <= v <= 1.0 for v in rep.rows[0].style_scores + rep.rows[0].content_scores)


# ----------------------------------------------------------------------------------------------------- style
def test_style_probe_with_the_toy_judge(tmp_path):
    refs = [toy_image(f"a {c} {s} in <glimmic> style", 0) for c, s in (("green", "square"), ("red", "star"))]
    rnd = StubRenderer()
    rep = probes.run_style("<glimmic>", ["a red circle", "a blue square on a yellow background"], references=refs,
                           renderer=rnd, scorer=probes.ToyStyleScorer(), template="{content} in {style} style", n=3)
    assert [r.styled_prompt for r in rep.rows] == ["a red circle in <glimmic> style",
                                                   "a blue square on a yellow background in <glimmic> style"]
    assert rep.style_similarity == 1.0 and rep.content_preservation == 1.0
    assert rnd.calls[0][1] == rnd.calls[1][1] == [0, 1, 2]  # styled and plain images share seeds
    grid = probes.style_grid(rep, tmp_path / "style.png")
    assert grid.is_file()
    # a "style" that does nothing scores 0 on style similarity
    none = probes.run_style("<nothing>", ["a red circle"], references=refs, renderer=rnd,
                            scorer=probes.ToyStyleScorer(), template="{content} with {style}", n=2)
    assert none.style_similarity == 0.0 and none.content_preservation == 1.0
    with pytest.raises(TicraftError, match="training images"):
        probes.run_style("<g>", ["a red circle"], references=[], renderer=rnd, scorer=probes.ToyStyleScorer(),
                         template="{content} in {style} style")
    with pytest.raises(TicraftError, match="{content}"):
        probes.fill_style("in {style}", "x", "y")


# --------------------------------------------------------------------------------------------------- metrics
def test_toy_metrics_are_the_judge_counterparts(tmp_path):
    from ticraft.concept import Concept

    zorb = Concept("<zorb>", {"clip": torch.zeros(1, 8)}, family="toy")
    refs = [toy_image("a photo of a <zorb> on a green background", s) for s in range(4)]
    identity = metrics.toy_identity(refs)
    assert identity == {"shape": "star", "colour": "orange", "texture": "striped", "style": "none"}

    class FakeToy:  # evaluate_concept only reads .family when a renderer is given
        family = "toy"

    rep = metrics.evaluate_concept(FakeToy(), zorb, references=refs, n=3, renderer=StubRenderer(),  # type: ignore[arg-type]
                                   out=tmp_path / "eval.png")
    assert rep.scorer == "toy judge" and rep.reconstruction == 1.0 and rep.editability == 1.0
    assert {e.target for e in rep.edits} >= {"background=green", "size=small", "style=outline"}
    assert rep.grid is not None and rep.grid.is_file()

    def ignores_edits(prompts, seeds):
        return [toy_image("a photo of a <zorb>", s) for s in seeds]

    lazy = metrics.evaluate_concept(FakeToy(), zorb, references=refs, n=3, renderer=ignores_edits)  # type: ignore[arg-type]
    assert lazy.reconstruction == 1.0 and lazy.editability < 0.5
    with pytest.raises(TicraftError, match="training images"):
        metrics.evaluate_concept(FakeToy(), zorb, references=[], renderer=ignores_edits)  # type: ignore[arg-type]


def test_clip_metrics(tiny_clip):
    from ticraft.concept import Concept

    assert metrics.strip_concept("a photo of <cat-toy> on the beach", "<cat-toy>") == "a photo of on the beach"
    c = Concept("<cat-toy>", {"clip": torch.zeros(1, 32)}, family="custom")

    class FakeSD:
        family = "custom"

    refs = [toy_image("a red circle", s) for s in range(2)]
    rnd = StubRenderer()
    rep = metrics.evaluate_concept(FakeSD(), c, references=refs, n=2, clip=tiny_clip, renderer=rnd,  # type: ignore[arg-type]
                                   prompts=["a photo of {} on the beach", "an oil painting of {}"])
    assert rep.scorer.startswith("CLIP") and -1 <= rep.reconstruction <= 1 and -1 <= rep.editability <= 1
    assert [e.target for e in rep.edits] == ["a photo of on the beach", "an oil painting of"]
    assert rnd.calls[0][0] == ["a photo of <cat-toy>"] * 2
    with pytest.raises(TicraftError, match="--clip"):
        metrics.evaluate_concept(FakeSD(), c, references=refs, renderer=rnd)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- toy-world acceptance


@pytest.fixture(scope="module")
def toy():
    """The shipped toy model and the biased hidden word's true row as a concept, ``<doctor>``."""
    from safetensors.torch import load_file

    from ticraft.models.load import load_backbone
    from ticraft.concept import Concept
    from ticraft.toyworld.vocab import BIASED_WORD

    bb = load_backbone("toy")
    doctor = Concept("<doctor>", {"clip": load_file(str(HIDDEN_FIXTURE))[BIASED_WORD.word]}, family="toy")
    return bb, doctor


def _probe_doctor(bb, doctor, fair=None, n: int = 16):
    """Colour of ``a photo of a <doctor>`` (and of the fair concept), over every toy colour; 10 denoising steps."""
    return probes.probe_bias(bb, "a photo of a <doctor>", compare="a photo of a <fair-doctor>" if fair else None,
                             attribute="colour", n=n, seed=0, steps=10,
                             concepts=[doctor] + ([fair] if fair is not None else []))


def _assert_fairer(res) -> None:
    biased, fair = (r.distribution for r in res.reports)
    assert res.tv_reduction is not None and res.tv_reduction > 0.1, res.to_dict()
    assert fair.entropy > biased.entropy + 0.5 and fair.majority_share < biased.majority_share, res.to_dict()


def test_toy_world_bias_probe_reports_the_skew(toy):
    from ticraft.toyworld.vocab import BIASED_WORD

    bb, doctor = toy
    biased = _probe_doctor(bb, doctor).reports[0].distribution
    assert biased.majority == BIASED_WORD.majority and biased.majority_share >= 0.7, biased
    assert biased.tv_uniform >= 0.6 and biased.entropy <= 1.0, biased


SHIPPED = REPO / "embeddings"


def _shipped_fair():
    from ticraft.library import Library

    lib = Library(SHIPPED)
    return lib.get("<fair-doctor>") if (SHIPPED / "manifest.json").is_file() and lib.has("<fair-doctor>") else None


def test_toy_world_shipped_fair_concept_reduces_the_skew(toy):
    fair = _shipped_fair()
    assert fair is not None, "embeddings/ ships a learned <fair-doctor>: it must load"
    _assert_fairer(_probe_doctor(*toy, fair=fair))


@pytest.mark.slow
def test_toy_world_learned_fair_concept_reduces_the_skew(toy):
    """Learn <fair-doctor> by inversion from crosses in every colour (the paper's curated diverse set), then
    probe the biased word and the fair concept with the same seeds (~65 s of CPU for the training)."""
    from ticraft.toyworld.render import COLOURS
    from ticraft.toyworld.vocab import BIASED_WORD
    from ticraft.training.api import train

    bb, doctor = toy
    rng = np.random.default_rng(0)
    images = [render(Attributes(shape=BIASED_WORD.shape, colour=c, texture=BIASED_WORD.texture, background="blue",
                                dx=int(rng.integers(-2, 3)), dy=int(rng.integers(-2, 3))))
              for c in COLOURS if c != "blue"]
    fair = train(images, "<fair-doctor>", BIASED_WORD.shape, model=bb, steps=150)
    _assert_fairer(_probe_doctor(bb, doctor, fair=fair))
