"""Judge inputs that the toy judge silently ignored are refused in one sentence, before anything renders.

* ``eval --prompt`` (``evaluate_concept(prompts=…)``): the toy judge scores its own judgeable edits;
* ``probe bias --template`` (``make_classifier(template=…)``): the toy judge has no prompt to fill;
* ``--judge toy --clip DIR`` (``uses_toy_judge``): the toy judge never loads CLIP.

The normal toy-judge paths still run, in Python and through the CLI on the shipped toy model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli

from ticraft.analysis import metrics, probes
from ticraft.analysis.judges import JudgeError, choose_judge, uses_toy_judge
from ticraft.concept import Concept
from ticraft.toyworld.render import Attributes, render

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT_REFUSED = "--prompt is read by the CLIP judge only"
TEMPLATE_REFUSED = "--template is read by the CLIP judge only"
CLIP_REFUSED = "--clip is read by the CLIP judge only"


def zorb_image(background: str = "green"):
    """What the toy world draws for the concept below: an orange striped star."""
    return render(Attributes(shape="star", colour="orange", texture="striped", size="large", background=background,
                             style="none"))


class FakeToy:
    """A stand-in backbone: with a renderer given, the measures read only ``.family``."""

    family = "toy"


class CountingRenderer:
    """``(prompts, seeds) -> images`` drawing the concept for every prompt, counting calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompts, seeds):
        self.calls += 1
        return [zorb_image() for _ in prompts]


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------------------------------------- Python
@pytest.fixture()
def zorb() -> Concept:
    return Concept("<zorb>", {"clip": torch.zeros(1, 64)}, family="toy")


def test_evaluate_refuses_prompts_for_the_toy_judge(zorb):
    refs = [zorb_image(bg) for bg in ("green", "blue")]
    for scorer in ("auto", "toy"):
        rnd = CountingRenderer()
        with pytest.raises(metrics.MetricError, match=PROMPT_REFUSED) as err:
            metrics.evaluate_concept(FakeToy(), zorb, references=refs, n=1, scorer=scorer,  # type: ignore[arg-type]
                                     prompts=["a photo of {} at night"], renderer=rnd)
        assert "--judge clip --clip" in one_line(err) and rnd.calls == 0
    # still refused when the references are missing too: the judge choice is the first thing checked
    with pytest.raises(metrics.MetricError, match=PROMPT_REFUSED):
        metrics.evaluate_concept(FakeToy(), zorb, references=[], prompts=["{} at night"],  # type: ignore[arg-type]
                                 renderer=CountingRenderer())


def test_evaluate_with_the_toy_judge_still_runs(zorb):
    rnd = CountingRenderer()
    rep = metrics.evaluate_concept(FakeToy(), zorb, references=[zorb_image()], n=2, renderer=rnd,  # type: ignore[arg-type]
                                   prompts=[])  # empty: nothing given, like the CLI without --prompt
    assert rep.scorer == "toy judge" and rep.reconstruction == 1.0 and rnd.calls == 1 + len(rep.edits)


def test_toy_judge_with_a_clip_folder_is_refused(zorb, tmp_path):
    with pytest.raises(JudgeError, match=CLIP_REFUSED) as err:
        uses_toy_judge("toy", "toy", tmp_path)
    assert str(tmp_path) in one_line(err) and "--judge clip" in str(err.value)
    with pytest.raises(JudgeError, match=CLIP_REFUSED):
        choose_judge("toy", "sd1", tmp_path)
    rnd = CountingRenderer()
    with pytest.raises(metrics.MetricError, match=CLIP_REFUSED) as err:
        metrics.evaluate_concept(FakeToy(), zorb, references=[zorb_image()], scorer="toy",  # type: ignore[arg-type]
                                 clip=tmp_path, renderer=rnd)
    assert "--scorer clip" in one_line(err) and rnd.calls == 0
    with pytest.raises(probes.ProbeError, match=CLIP_REFUSED):
        probes.make_classifier("toy", "colour", judge="toy", clip=tmp_path)
    with pytest.raises(probes.ProbeError, match=CLIP_REFUSED):
        probes.probe_style(FakeToy(), zorb, ["a red circle"], references=[zorb_image()], judge="toy",  # type: ignore[arg-type]
                           clip=tmp_path, renderer=rnd)
    assert rnd.calls == 0
    # auto with a folder still means CLIP (that is how a toy model is scored with CLIP), and toy alone the toy judge
    assert uses_toy_judge("auto", "toy", tmp_path) is False and uses_toy_judge("toy", "sd1", None) is True


def test_bias_template_is_refused_for_the_toy_judge():
    with pytest.raises(probes.ProbeError, match=TEMPLATE_REFUSED) as err:
        probes.make_classifier("toy", "colour", template="a photo of a {} thing")
    assert "--judge clip --clip" in one_line(err)
    rnd = CountingRenderer()
    with pytest.raises(probes.ProbeError, match=TEMPLATE_REFUSED):
        probes.probe_bias(FakeToy(), "a photo of a <zorb>", template="a {} thing", n=2,  # type: ignore[arg-type]
                          renderer=rnd)
    assert rnd.calls == 0
    res = probes.probe_bias(FakeToy(), "a photo of a <zorb>", n=2, renderer=rnd)  # type: ignore[arg-type]
    assert res.reports[0].distribution.majority == "orange" and rnd.calls == 1


def test_bias_with_a_given_classifier_refuses_the_judge_options(tmp_path):
    """classifier= replaces the built-in judges: clip/template/judge beside it were accepted and never read."""
    clf = probes.make_classifier("toy", "colour")
    rnd = CountingRenderer()
    for extra in ({"clip": tmp_path}, {"template": "a {} thing"}, {"judge": "clip"}):
        with pytest.raises(probes.ProbeError, match="with classifier= given they are not read"):
            probes.probe_bias(FakeToy(), "a photo of a <zorb>", n=2, renderer=rnd, classifier=clf,  # type: ignore[arg-type]
                              **extra)
    assert rnd.calls == 0
    res = probes.probe_bias(FakeToy(), "a photo of a <zorb>", n=2, renderer=rnd, classifier=clf)  # type: ignore[arg-type]
    assert res.reports[0].distribution.majority == "orange"


# ---------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def toy_lib(tmp_path_factory) -> Path:
    """A library holding ``<zorb>`` for the shipped toy model, with two training pictures."""
    from ticraft.library import Library
    from ticraft.models.load import load_backbone

    root = tmp_path_factory.mktemp("toy_lib")
    imgs = []
    for i, bg in enumerate(("green", "blue")):
        imgs.append(root / f"{i}.png")
        zorb_image(bg).save(imgs[-1])
    bb = load_backbone("toy")
    lib = Library(root / "lib")
    lib.add(Concept("<zorb>", bb.token_vector("star"), family="toy"), images=imgs)
    return lib.root


def refused(result, needle: str) -> None:
    assert result.exit_code != 0, result.output
    assert needle in result.output and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(("args", "needle"), [
    (["eval", "<zorb>", "--prompt", "a photo of {} at night"], PROMPT_REFUSED),
    (["eval", "<zorb>", "--judge", "toy", "--clip", "{clip}"], CLIP_REFUSED),
    (["probe", "bias", "a photo of a <zorb>", "--template", "a photo of a {} thing"], TEMPLATE_REFUSED),
    (["probe", "bias", "a photo of a <zorb>", "--judge", "toy", "--clip", "{clip}"], CLIP_REFUSED),
    (["probe", "style", "<zorb>", "--content", "a red circle", "--judge", "toy", "--clip", "{clip}"], CLIP_REFUSED),
], ids=["eval-prompt", "eval-clip", "bias-template", "bias-clip", "style-clip"])
def test_cli_refuses(toy_lib, tmp_path, args, needle):
    args = [str(tmp_path) if a == "{clip}" else a for a in args]
    r = run_cli(*args, "--model", "toy", "--library", toy_lib, "--out", tmp_path / "out.png")
    refused(r, needle)
    assert not (tmp_path / "out.png").exists()


def test_cli_toy_judge_still_runs(toy_lib, tmp_path):
    r = run_cli("eval", "<zorb>", "-n", "1", "--sample-steps", "1", "--model", "toy", "--library", toy_lib)
    assert r.exit_code == 0 and "toy judge" in r.output, r.output
    r = run_cli("probe", "bias", "a photo of a <zorb>", "-n", "2", "--sample-steps", "1", "--model", "toy",
            "--library", toy_lib, "--out", tmp_path / "bias.png")
    assert r.exit_code == 0 and (tmp_path / "bias.png").is_file(), r.output
