"""Using SD3/Flux concepts: sampling, reproduce, compose, img2img edit, eval, neighbours and maps per encoder."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ticraft.concept import Concept
from ticraft.generate.edit import edit
from ticraft.generate.pngmeta import read_parameters
from ticraft.generate.sample import SampleError, SampleSpec, compose, generate, reproduce
from ticraft.models.load import load_backbone


@pytest.fixture(scope="module", params=["sd3", "flux"])
def bb(request, one_torch_thread):
    folder = request.getfixturevalue(f"tiny_{request.param}_dir")
    return load_backbone(str(folder))


def _cat(bb, token: str = "<c>") -> Concept:
    """A concept whose vector in every encoder is the row of the one-token word 'cat'."""
    return Concept(token, {k: v.clone() for k, v in bb.token_vector("cat").items()}, family=bb.family)


def _random(bb, token: str = "<r>") -> Concept:
    g = torch.Generator().manual_seed(5)
    return Concept(token, {k: torch.randn(2, d, generator=g) for k, d in bb.dims.items()}, family=bb.family)


def _pixels(im: Image.Image) -> bytes:
    return im.tobytes()


def test_sampling_reads_the_concept_in_every_encoder(bb):
    """<c> holding 'cat' rows renders exactly what the word renders; another concept renders differently."""
    specs = [SampleSpec("a photo of <c> on the beach", seed=3), SampleSpec("a photo of cat on the beach", seed=3),
             SampleSpec("a photo of <r> on the beach", seed=3)]
    a, b, c = generate(bb, specs, concepts=[_cat(bb), _random(bb)], batch_size=1)
    assert _pixels(a) == _pixels(b) and _pixels(a) != _pixels(c)
    assert "Sampler: Flow Euler" in a.info["parameters"] and a.size == (16, 16)


def test_reproduce_from_metadata_is_bit_exact(bb):
    [im] = generate(bb, [SampleSpec("a red <r> toy", seed=11)], concepts=[_random(bb)])
    again = reproduce(bb, read_parameters(im), concepts=[_random(bb)])
    assert _pixels(again) == _pixels(im)


def test_unet_samplers_are_refused_in_one_sentence(bb):
    with pytest.raises(SampleError, match="flow_euler") as err:
        generate(bb, [SampleSpec("a cat", scheduler="dpm++")])
    assert "\n" not in str(err.value)


def test_compose_grid(bb):
    r = compose(bb, ["<r>", "cat"], ["a photo of {}", "a painting of {}"], seeds=[0], concepts=[_random(bb)])
    assert len(r.images) == 2 and len(r.images[0]) == 2 and r.grid.size[0] > 32


def test_img2img_edit_with_a_concept(bb, monkeypatch):
    """img2img runs at the source's size (SD3/Flux pipelines would default to their own) and reads the concept."""
    src = Image.new("RGB", (16, 16), (200, 30, 30))
    seen = []
    encode = bb.vae.encode
    monkeypatch.setattr(bb.vae, "encode", lambda x, *a, **k: seen.append(tuple(x.shape[-2:])) or encode(x, *a, **k))
    out = edit(bb, src, "a photo of <r>", strength=1.0, steps=2, concepts=[_random(bb)])
    assert seen and set(seen) == {(16, 16)}
    other = edit(bb, src, "a photo of <r>", strength=0.5, steps=2, concepts=[_random(bb)])
    assert out[0].size == (16, 16) and "Edit: img2img" in out[0].info["parameters"]
    assert _pixels(out[0]) != _pixels(other[0])


def test_neighbors_in_t5_and_clip_vocabularies(bb):
    from ticraft.analysis.neighbors import find_neighbors

    report = find_neighbors(bb, _cat(bb), k=3, disk_cache=False)
    by_key = {row.key: row for row in report.rows}
    assert set(by_key) == set(bb.dims)
    for key, row in by_key.items():
        assert row.matches[0].token == "cat", (key, row.matches[:3])  # T5's '▁cat' shown as 'cat'


@pytest.mark.parametrize("key", ["t5", "clip_l"])
def test_maps_per_encoder(bb, key):
    from ticraft.analysis.maps import build_map

    m = build_map(bb, [_cat(bb), _random(bb)], method="pca", vocab=40, key=key, cache=False)
    assert m.key == key and [p.label for p in m.of_kind("concept")] == ["<c>", "<r>"]
    assert len(m.of_kind("vocab")) > 0


def test_eval_scores_with_clip(bb, tmp_path_factory):
    from tiny_clip import tiny_clip_folder

    from ticraft.analysis.metrics import evaluate_concept

    clip = tiny_clip_folder(tmp_path_factory.mktemp("clip_eval"))
    refs = [Image.new("RGB", (16, 16), (200, 30, 30))]
    report = evaluate_concept(bb, _random(bb), references=refs, n=1, clip=clip, steps=1, prompts=["a photo of {}"])
    assert report.scorer.startswith("CLIP") and -1 <= report.reconstruction <= 1 and -1 <= report.editability <= 1
    assert len(report.images) > 0


def test_analysis_cli_neighbors_mix_and_t5_map(bb, tmp_path):
    """`ticraft neighbors` reports every encoder (T5 included), `mix` works, `map --encoder t5` maps T5's table."""
    import json

    from typer.testing import CliRunner

    from ticraft.cli.main import app
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")
    lib.add(_cat(bb, "<a>"))
    model = bb.source

    def run(*args):
        result = CliRunner().invoke(app, [str(a) for a in (*args, "--model", model, "--library", lib.root)],
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result

    run("neighbors", "<a>", "-k", "2", "--json", tmp_path / "n.json")
    rows = json.loads((tmp_path / "n.json").read_text())["rows"]
    assert {r["key"] for r in rows} == set(bb.dims) and all(r["matches"][0]["token"] == "cat" for r in rows)
    run("mix", "0.5*<a> + 0.5*dog", "--as", "<ad>")
    assert set(lib.get("<ad>").vectors) == set(bb.dims)
    # `--concepts all` reads the library's vector matrix, which matches widths by the JSON of the encoder keys:
    # the mixed concept (built from a library file's vectors) must come out with the same key order
    run("map", "--encoder", "t5", "--method", "pca", "--vocab", "30", "--concepts", "all", "--no-cache",
        "--out", tmp_path / "map.png")
    data = json.loads((tmp_path / "map.json").read_text())
    assert data["key"] == "t5" and {p["label"] for p in data["points"] if p["kind"] == "concept"} == {"<a>", "<ad>"}
