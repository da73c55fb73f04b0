"""Library and probe inputs that were accepted and then ignored or misreported are refused in one sentence.

* ``library import FILE --recursive``: the flag is read for folders only;
* ``library list --all --limit N``: --all means no limit, so the pair is a contradiction;
* ``library tag T --add x --remove x``: the add won and the remove was dropped;
* ``probe bias --labels`` the judge never reads, and ``--compare ""``;
* ``probe style --template ""`` and ``-c ""``; ``--reference`` naming a folder without pictures.

Library refusals leave the library as it was; probe refusals come before anything renders.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli

from ticraft.analysis import probes
from ticraft.concept import Concept
from ticraft.formats import write_concept
from ticraft.library import Library
from ticraft.toyworld.render import Attributes, render

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def refused(result, *phrases: str) -> str:
    """One clean error (no traceback) holding every phrase; returns the output with wrapping removed."""
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)
    assert result.exit_code != 0, result.output
    assert "Error" in text and "Traceback" not in result.output, result.output
    for phrase in phrases:
        assert phrase in text, (phrase, result.output)
    return text


# ------------------------------------------------------------------------------------------------ library
def concept(token: str, seed: int = 0) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(1, 768, generator=g)})


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    lib = Library(tmp_path / "lib")
    lib.add(concept("<a>", 1), tags=["keep"])
    lib.add(concept("<b>", 2))
    return lib


def state(lib: Library) -> list[tuple[str, tuple[str, ...]]]:
    """What a refused command must not change: the tokens and their tags."""
    return [(e.token, tuple(e.tags)) for e in Library(lib.root).page(0, None)]


def test_import_of_a_file_refuses_recursive(lib: Library, tmp_path: Path) -> None:
    before = state(lib)
    path = tmp_path / "c.pt"
    write_concept(concept("<c>", 3), path, layout="a1111")
    r = run_cli("library", "import", path, "--recursive", "-L", lib.root)
    refused(r, "--recursive reads the sub-folders of one folder", "is a file")
    assert state(lib) == before
    assert run_cli("library", "import", path, "-L", lib.root).exit_code == 0  # without the flag it imports
    assert "<c>" in [t for t, _ in state(lib)]


def test_list_refuses_all_with_limit(lib: Library) -> None:
    before = state(lib)
    r = run_cli("library", "list", "--all", "--limit", "1", "-L", lib.root)
    refused(r, "--all shows every row and --limit caps them")
    assert state(lib) == before
    for args in (["--all"], ["--limit", "1"]):
        assert run_cli("library", "list", *args, "-L", lib.root).exit_code == 0
    assert "showing 1–1" in run_cli("library", "list", "--limit", "1", "-L", lib.root).output


def test_tag_refuses_a_tag_both_added_and_removed(lib: Library) -> None:
    before = state(lib)
    r = run_cli("library", "tag", "<a>", "--add", "x", "--remove", "X", "-L", lib.root)  # tags compare case-insensitively
    refused(r, "--add and --remove both name x")
    r = run_cli("library", "tag", "<a>", "--add", "keep", "--remove", "keep", "-L", lib.root)
    refused(r, "--add and --remove both name keep")
    assert state(lib) == before
    assert run_cli("library", "tag", "<a>", "--add", "x", "--remove", "keep", "-L", lib.root).exit_code == 0
    assert dict(state(lib))["<a>"] == ("x",)


# -------------------------------------------------------------------------------------------------- probes
def zorb_image(background: str = "green"):
    """What the toy world draws for <zorb>: an orange striped star."""
    return render(Attributes(shape="star", colour="orange", texture="striped", size="large", background=background,
                             style="none"))


class CountingRenderer:
    """``(prompts, seeds) -> images`` drawing <zorb> for every prompt, counting calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompts, seeds):
        self.calls += 1
        return [zorb_image() for _ in prompts]


class FakeToy:
    """A stand-in backbone: with a renderer given, the probes read only ``.family``."""

    family = "toy"


@pytest.fixture(scope="module")
def toy_lib(tmp_path_factory) -> Path:
    """A library holding ``<zorb>`` for the shipped toy model, with two training pictures."""
    from ticraft.models.load import load_backbone

    root = tmp_path_factory.mktemp("toy_lib")
    imgs = []
    for i, bg in enumerate(("green", "blue")):
        imgs.append(root / f"{i}.png")
        zorb_image(bg).save(imgs[-1])
    lib = Library(root / "lib")
    lib.add(Concept("<zorb>", load_backbone("toy").token_vector("star"), family="toy"), images=imgs)
    return lib.root


def toy(*args: object, lib: Path, out: Path):
    return run_cli(*args, "-n", "2", "--sample-steps", "1", "--model", "toy", "--library", lib, "--out", out)


def test_bias_refuses_labels_the_judge_never_reads(toy_lib: Path, tmp_path: Path) -> None:
    out = tmp_path / "bias.png"
    r = toy("probe", "bias", "a photo of <zorb>", "--labels", "circle,square", lib=toy_lib, out=out)
    refused(r, "never reads 'circle', 'square' for colour", "--labels must be among red,")
    assert not out.exists()
    rnd = CountingRenderer()
    with pytest.raises(probes.ProbeError, match="never reads 'circle'"):
        probes.run_bias(["x"], renderer=rnd, classifier=probes.toy_classifier("colour"), n=2, labels=["circle"])
    assert rnd.calls == 0
    r = toy("probe", "bias", "a photo of <zorb>", "--labels", "orange,red", lib=toy_lib, out=out)
    assert r.exit_code == 0 and "orange" in r.output and out.is_file(), r.output  # labels the judge reads run


def test_bias_refuses_an_empty_compare(toy_lib: Path, tmp_path: Path) -> None:
    out = tmp_path / "bias.png"
    for empty in ("", "  "):
        r = toy("probe", "bias", "a photo of <zorb>", "--compare", empty, lib=toy_lib, out=out)
        refused(r, "--compare is empty")
    assert not out.exists()
    rnd = CountingRenderer()
    with pytest.raises(probes.ProbeError, match="--compare is empty"):
        probes.probe_bias(FakeToy(), "a photo of <zorb>", compare="", n=2, renderer=rnd)  # type: ignore[arg-type]
    assert rnd.calls == 0


@pytest.mark.parametrize(("args", "needle"), [
    (["--content", "a red circle", "--template", ""], "--template is empty"),
    (["--content", "a red circle", "--template", "{content} only"], "needs both {content} and {style}"),
    (["--content", ""], "a --content prompt is empty"),
    (["--content", "a red circle", "-c", " "], "a --content prompt is empty"),
], ids=["empty-template", "template-without-style", "empty-content", "blank-second-content"])
def test_style_refuses_empty_template_and_content(toy_lib: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "style.png"
    refused(toy("probe", "style", "<zorb>", *args, lib=toy_lib, out=out), needle)
    assert not out.exists()


def test_style_probe_in_python_refuses_before_rendering() -> None:
    zorb = Concept("<zorb>", {"clip": torch.zeros(1, 64)}, family="toy")
    rnd = CountingRenderer()
    for kwargs, needle in (({"contents": ["a red circle"], "template": ""}, "--template is empty"),
                           ({"contents": [""]}, "a --content prompt is empty")):
        with pytest.raises(probes.ProbeError, match=needle):
            probes.probe_style(FakeToy(), zorb, references=[zorb_image()], renderer=rnd,  # type: ignore[arg-type]
                               scorer=probes.ToyStyleScorer(), **kwargs)  # type: ignore[arg-type]
    assert rnd.calls == 0


def test_style_names_the_empty_reference_folder(toy_lib: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no pictures"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a picture")
    out = tmp_path / "style.png"
    r = toy("probe", "style", "<zorb>", "-c", "a red circle", "--reference", empty, lib=toy_lib, out=out)
    text = refused(r, "the reference folder", "has no pictures (.png, .jpg, .jpeg, .webp)")
    assert "has no training images" not in text and not out.exists()
    r = toy("probe", "style", "<zorb>", "-c", "a red circle", lib=toy_lib, out=out)
    assert r.exit_code == 0 and out.is_file(), r.output  # the library's pictures still serve
