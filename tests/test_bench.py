"""ticraft bench: the suite's coverage, exact scoring, the summary's arithmetic, bad input, and a tiny real run."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ticraft.bench.methods import METHODS, check_ladder, get_methods
from ticraft.bench.scoring import Probe, combine, edit_probes, judge_probe, probes_for
from ticraft.bench.suite import COMPOSITES, BenchError, all_concepts, build_suite, composite
from ticraft.bench.summary import dvar_verdict, summarize
from ticraft.toyworld.render import COLOURS, SHAPES, STYLES, TEXTURES, Attributes, render


# ------------------------------------------------------------------------------------------------ the suite
def test_composites_cover_every_value_and_none_dominates():
    assert len(COMPOSITES) >= 16
    for i, values in enumerate((SHAPES, COLOURS, TEXTURES, STYLES)):
        counts = Counter(c[i] for c in COMPOSITES)
        assert set(counts) == set(values), f"missing {set(values) - set(counts)}"
        # no value takes more than its fair share plus a little (styles: "none" carries the textures)
        assert max(counts.values()) <= len(COMPOSITES) / len(values) * (2.5 if i == 3 else 1.5)
    for c in all_concepts():
        assert 3 <= len(c.identity) or c.kind == "style"


def test_concept_images_are_fixed_and_few_shot_sets_nest():
    c = composite("c05")
    a, b = c.train_images(), c.train_images()
    assert [x.sha256 for x in a] == [x.sha256 for x in b]
    one = c.with_shots(1).train_images()
    assert one[0].sha256 == a[0].sha256 and len(one) == 1 and len(a) == 4
    for attrs in c.attributes():  # every picture shows the whole identity
        assert all(getattr(attrs, k) == v for k, v in c.identity.items())
    style = build_suite(names=["glimmic"])[0]
    assert all("{}" in im.caption for im in style.train_images())


def test_quick_and_named_suites():
    assert [c.key for c in build_suite(quick=True, shots=[1, 4])] == ["zorb@1", "glimmic@1", "c01@1", "zorb",
                                                                      "glimmic", "c01"]
    assert len(build_suite()) == 2 + len(COMPOSITES)


# ----------------------------------------------------------------------------------------------- scoring
def _img(**kw):
    return render(Attributes(**kw))


def test_faithful_edit_needs_the_identity_kept_paper_edit_does_not():
    ident = {"shape": "star", "colour": "orange", "texture": "striped", "style": "none"}
    probe = next(p for p in edit_probes(ident) if p.asked == {"background": "green"})
    good = _img(shape="star", colour="orange", texture="striped", background="green")
    wrong_shape = _img(shape="circle", colour="orange", texture="striped", background="green")
    r = judge_probe([good, wrong_shape], probe)
    assert r["obeyed"] == 1.0 and r["faithful"] == 0.5
    colour = next(p for p in edit_probes(ident) if "colour" in p.asked)
    assert "colour" not in colour.kept and colour.kept["shape"] == "star" and colour.kind == "extra"
    style = next(p for p in edit_probes(ident) if "style" in p.asked)
    assert "texture" not in style.kept  # outline draws no texture: not held against the edit
    outline = _img(shape="star", colour="orange", style="outline", background="white")
    assert judge_probe([outline], style)["faithful"] == 1.0


def test_combine_counts_reconstruction_and_both_editabilities():
    rec = Probe("a photo of a {}", "rec", {}, {"shape": "star"})
    e = Probe("a photo of a small {}", "edit", {"size": "small"}, {"shape": "star"})
    x = Probe("a photo of a blue {}", "extra", {"colour": "blue"}, {"shape": "star"})
    s = combine([(rec, {"identity": 0.5, "obeyed": 1.0, "faithful": 0.5}),
                 (e, {"identity": 1.0, "obeyed": 1.0, "faithful": 0.25}),
                 (x, {"identity": 0.0, "obeyed": 0.0, "faithful": 0.0})])
    assert (s.reconstruction, s.paper, s.faithful, s.recolour) == (0.5, 1.0, 0.25, 0.0)


def test_style_probes_ask_content_and_keep_the_style():
    jobs = probes_for(build_suite(names=["glimmic"])[0], 3)
    assert len(jobs) == 3 and all(p.kept == {"style": "glimmic"} and "shape" in p.asked for p, _ in jobs)


# ------------------------------------------------------------------------------------------------ summary
def _run(method, concept, good, dvar_stop=None, dvar=True):
    points = [{"samples": s, "seconds": s / 100, "reconstruction": 1.0, "faithful_editability": 1.0,
               "paper_editability": 1.0} for s in (256, 512, 1024)]
    return {"method": method, "concept": concept, "points": points, "good_samples": good,
            "good_seconds": None if good is None else good / 100, "dvar": dvar, "dvar_stop_samples": dvar_stop,
            "startup_seconds": 1.0}


def test_summary_medians_dvar_verdicts_and_speedup_bound():
    runs = [_run("plain", "a", 256, dvar_stop=200), _run("plain", "b", 512, dvar_stop=600),
            _run("plain", "c", None, dvar_stop=None),
            _run("diffusers-recipe", "a", None, dvar=False), _run("diffusers-recipe", "b", None, dvar=False),
            _run("diffusers-recipe", "c", 1024, dvar=False)]
    runs[1]["points"][2]["samples"] = 1024
    assert [dvar_verdict(r) for r in runs[:3]] == ["before", "at", "no good point"]
    assert dvar_verdict(_run("plain", "d", 256, dvar_stop=1024)) == "after"
    assert dvar_verdict(_run("plain", "d", 256, dvar_stop=None)) == "never"
    s = summarize({"runs": runs, "settings": {"ladder": [256, 512, 1024]}})
    plain, ref = s["methods"]["plain"], s["methods"]["diffusers-recipe"]
    assert plain["good_samples_median"] == 512 and plain["reached"] == 2
    assert ref["good_samples_median"] is None  # 2 of 3 never good: the median is not reached
    assert s["speedup"]["bound"] == ">" and s["speedup"]["ratio"] == pytest.approx(10.24 / 5.12)


def test_merge_results_of_per_method_runs():
    from ticraft.bench.summary import merge_results

    settings = {"ladder": [256, 512, 1024], "n": 4, "eval_steps": 10, "threads": 1, "seed": 0, "quick": True,
                "shots": [4], "methods": []}
    a = {"settings": {**settings, "methods": ["plain"]}, "methods": {"plain": "p"}, "runs": [_run("plain", "a", 256)],
         "pairs": [{"method": "true words"}], "total_seconds": 5.0, "cpu_seconds": [1.0]}
    b = {"settings": {**settings, "methods": ["diffusers-recipe"]}, "methods": {"diffusers-recipe": "d"},
         "runs": [_run("diffusers-recipe", "a", 1024, dvar=False)], "pairs": [{"method": "true words"}],
         "total_seconds": 7.0, "cpu_seconds": [2.0]}
    m = merge_results([a, b])
    assert m["settings"]["methods"] == ["plain", "diffusers-recipe"] and len(m["runs"]) == 2
    assert m["cpu_seconds"] == [1.0, 2.0]  # one entry per process, the first not counted twice
    assert len(m["pairs"]) == 1 and m["total_seconds"] == 7.0
    assert m["summary"]["speedup"]["ratio"] == pytest.approx(4.0)
    with pytest.raises(BenchError, match="n differs"):
        merge_results([a, {**b, "settings": {**b["settings"], "n": 8}}])


def test_merge_across_picture_counts_keeps_few_shot_apart():
    from ticraft.bench.report import full_markdown
    from ticraft.bench.summary import merge_results

    settings = {"ladder": [256, 512, 1024], "n": 4, "eval_steps": 10, "threads": 1, "seed": 0, "quick": False}
    few = [dict(_run("plain", k, g), shots=1) for k, g in (("a@1", 1024), ("b@1", None))]
    a = {"settings": {**settings, "methods": ["plain"], "shots": [4, 1]}, "methods": {"plain": "p"},
         "concepts": {"a": {"shots": 4}, "a@1": {"shots": 1}, "b@1": {"shots": 1}},
         "runs": [dict(_run("plain", "a", 256), shots=4), *few], "total_seconds": 5.0,
         "references": [{"word": "zorb", "reconstruction": 1.0, "faithful_editability": 1.0,
                         "paper_editability": 1.0}]}
    b = {"settings": {**settings, "methods": ["diffusers-recipe"], "shots": [4]},
         "methods": {"diffusers-recipe": "d"}, "concepts": {"a": {"shots": 4}},
         "runs": [dict(_run("diffusers-recipe", "a", 1024, dvar=False), shots=4)], "total_seconds": 9.0,
         "references": [{"word": "zorb", "reconstruction": 1.0, "faithful_editability": 1.0,
                         "paper_editability": 1.0}]}
    m = merge_results([a, b])
    assert m["settings"]["shots"] == [4, 1] and len(m["references"]) == 1 and set(m["concepts"]) == {"a", "a@1", "b@1"}
    s = m["summary"]
    assert s["shots"] == 4 and s["methods"]["plain"]["runs"] == 1  # the main table: 4 pictures only
    assert s["few_shot"]["plain"]["1"]["reached"] == 1 and s["few_shot"]["plain"]["1"]["runs"] == 2
    assert s["speedup"]["ratio"] == pytest.approx(4.0) and s["speedup"]["per_concept_median"] == pytest.approx(4.0)
    text = full_markdown(m)
    assert "| plain | 1 | 1/2 |" in text and "a@1" not in text.split("| method | pictures")[0]
    # a rerun of the same concept × method: the later result wins, nothing is counted twice
    again = merge_results([a, b, {**b, "runs": [dict(_run("diffusers-recipe", "a", 512, dvar=False), shots=4)]}])
    assert len(again["runs"]) == 4 and again["summary"]["speedup"]["ratio"] == pytest.approx(2.0)


def test_speedup_reports_where_only_one_got_good():
    runs = [_run("plain", "a", 256), _run("plain", "b", 256), _run("plain", "c", None),
            _run("diffusers-recipe", "a", 1024, dvar=False), _run("diffusers-recipe", "b", None, dvar=False),
            _run("diffusers-recipe", "c", 512, dvar=False)]
    sp = summarize({"runs": runs, "settings": {"ladder": [256, 512, 1024]}})["speedup"]
    assert (sp["both_good"], sp["only_ours"], sp["only_ref"]) == (1, 1, 1)
    assert sp["per_concept_median"] == pytest.approx(4.0)


def test_bench_state_keeps_final_concepts_and_refuses_other_settings(tmp_path):
    import torch

    from ticraft.bench.state import BenchState
    from ticraft.concept import Concept

    state = BenchState(tmp_path / "s", {"ladder": [8, 16], "n": 1})
    assert state.load() is None and state.load_final("plain", "zorb@1") is None
    c = Concept("<x>", {"clip": torch.randn(2, 8)}, family="toy", meta={"method": "xti", "layers": 2})
    state.save_final("plain", "zorb@1", c)
    state.save({"settings": {"ladder": [8, 16], "n": 1}, "runs": []})
    back = state.load_final("plain", "zorb@1")
    assert back is not None and torch.equal(back.vectors["clip"], c.vectors["clip"])
    assert (back.token, back.family, back.meta) == ("<x>", "toy", c.meta)
    with pytest.raises(BenchError, match=r"other settings \(n: 1 now 2\)"):
        BenchState(tmp_path / "s", {"ladder": [8, 16], "n": 2}).load()
    (tmp_path / "f").write_text("")
    with pytest.raises(BenchError, match="is a file"):
        BenchState(tmp_path / "f", {}).load()


# -------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, words", [
    (lambda: get_methods("plain,nope"), "unknown method 'nope'"),
    (lambda: build_suite(names=[]), "suite is empty"),
    (lambda: build_suite(names=["c99"]), "unknown suite concept 'c99'"),
    (lambda: check_ladder([512, 256], [METHODS["plain"]]), "strictly increasing"),
    (lambda: check_ladder([], [METHODS["plain"]]), "ladder is empty"),
    (lambda: check_ladder([102], [METHODS["plain"]]), "not a whole number of plain's steps"),
    (lambda: composite("c01").with_shots(5), "1 to 4 pictures"),
])
def test_bad_input_is_one_clear_sentence(call, words):
    with pytest.raises(BenchError, match=words):
        call()


def test_cli_bad_input_prints_one_sentence():
    from typer.testing import CliRunner

    from ticraft.cli.main import app

    res = CliRunner().invoke(app, ["bench", "--methods", "plain,nope", "--ladder", "16"])
    assert res.exit_code != 0
    assert "unknown method 'nope'" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["bench", "--ladder", "300,200"])
    assert res.exit_code != 0 and "strictly increasing" in res.output


def test_cli_resume_into_a_file_is_refused_before_anything_runs(tmp_path):
    from typer.testing import CliRunner

    from ticraft.cli.main import app

    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    res = CliRunner().invoke(app, ["bench", "--quick", "--resume", str(target), "-o", str(tmp_path / "out")])
    assert res.exit_code != 0 and "the resume folder is a file" in res.output and "Traceback" not in res.output
    assert target.read_text() == "keep me" and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ a tiny real run
def test_tiny_bench_run_writes_the_schema_and_pictures(tmp_path, one_torch_thread):
    from ticraft.bench.ladder import BenchSettings, run_bench
    from ticraft.bench.report import full_markdown, write_pictures
    from ticraft.models.load import load_backbone

    bb = load_backbone("toy")
    table = bb.encoders[0].table.clone()
    settings = BenchSettings(methods=["plain", "diffusers-recipe"], concepts=["zorb"], ladder=[16, 32], n=1,
                             eval_steps=2, dvar=True, pairs=True)
    res = run_bench(settings, say=lambda _t: None, backbone=bb)
    assert torch_equal(bb.encoders[0].table, table)  # the reference's whole-table updates never leak
    assert not bb.loaded_concepts
    assert [r["method"] for r in res["runs"]] == ["plain", "diffusers-recipe"]
    for r in res["runs"]:
        assert [p["samples"] for p in r["points"]] == [16, 32]
        for p in r["points"]:
            for key in ("reconstruction", "faithful_editability", "paper_editability", "samples", "seconds"):
                assert isinstance(p[key], (int, float))
            assert 0.0 <= p["faithful_editability"] <= p["paper_editability"] <= 1.0
        assert 0 < r["points"][0]["seconds"] < r["points"][1]["seconds"]
    assert res["references"] and res["references"][0]["word"] == "zorb"
    assert set(res["summary"]["methods"]) == {"plain", "diffusers-recipe"}
    assert res["cpu_seconds"][0] > 0
    json.dumps(res)  # JSON-able as is
    paths = write_pictures(res, tmp_path)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    assert "| plain |" in full_markdown(res)


def test_resume_skips_finished_runs(tmp_path, one_torch_thread, monkeypatch):
    """A killed run continues: finished concept × method runs come from the folder, their trainer never runs."""
    from dataclasses import replace

    from ticraft.bench.ladder import BenchSettings, run_bench
    from ticraft.models.load import load_backbone

    bb = load_backbone("toy")
    settings = BenchSettings(methods=["plain"], concepts=["zorb", "glimmic"], ladder=[16], n=1, eval_steps=2,
                             dvar=False, pairs=True)
    first = run_bench(settings, say=lambda _t: None, backbone=bb, resume=tmp_path / "state")

    def boom(ctx):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setitem(METHODS, "plain", replace(METHODS["plain"], run=boom))
    said: list[str] = []
    again = run_bench(settings, say=said.append, backbone=bb, resume=tmp_path / "state")
    assert any("2 runs already there" in t for t in said)
    assert again["runs"] == first["runs"] and again["pairs"] == first["pairs"]  # pairs from the kept concepts
    # a run with another concept list adds to the folder and keeps what was there
    monkeypatch.undo()  # the real trainer again
    run_bench(BenchSettings(**{**settings.__dict__, "concepts": ["c01"], "pairs": False}), say=lambda _t: None,
              backbone=bb, resume=tmp_path / "state")
    kept = json.loads((tmp_path / "state" / "partial.json").read_text())
    assert sorted(r["concept"] for r in kept["runs"]) == ["c01", "glimmic", "zorb"]
    with pytest.raises(BenchError, match="other settings"):
        run_bench(BenchSettings(**{**settings.__dict__, "ladder": [32]}), say=lambda _t: None, backbone=bb,
                  resume=tmp_path / "state")
    # a method whose options changed since (e.g. a new default preset) is refused before anything trains
    monkeypatch.setitem(METHODS, "plain", replace(METHODS["plain"], run=boom,
                                                  options={**METHODS["plain"].options, "lr": 0.123}))
    with pytest.raises(BenchError, match=r"its plain run of \w+ used other options than plain means now \(lr: 0.005 → 0.123\)"):
        run_bench(settings, say=lambda _t: None, backbone=bb, resume=tmp_path / "state")


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.slow
def test_quick_bench_plain_gets_the_hidden_object_good(tmp_path):
    """The documented quick run: ticraft's default reaches the good point on the hidden object within the ladder."""
    from typer.testing import CliRunner

    from ticraft.cli.main import app

    out = tmp_path / "out.json"
    res = CliRunner().invoke(app, ["bench", "--quick", "--json", str(out), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    zorb = next(r for r in data["runs"] if r["method"] == "plain" and r["concept"] == "zorb")
    assert zorb["good_samples"] is not None
    assert (tmp_path / "fig10.png").is_file() and (tmp_path / "quality_vs_seconds.png").is_file()


# ------------------------------------------------------------------------------------------ over seeds
def _seed_result(seed: int, goods: dict[tuple[str, str], int | None]) -> dict:
    runs = [{"method": m, "concept": c, "shots": 4, "good_samples": g, "good_seconds": None if g is None else g / 32}
            for (m, c), g in goods.items()]
    return {"settings": {"seed": seed}, "runs": runs}


def test_compare_seeds_counts_medians_and_the_paired_sign_test():
    from ticraft.bench.seeds import compare_seeds, seeds_markdown, sign_test

    a = _seed_result(0, {("plain", "zorb"): 128, ("plain", "c01"): None, ("plain", "c02"): 256,
                         ("new", "zorb"): 64, ("new", "c01"): 512, ("new", "c02"): None})
    b = _seed_result(1, {("plain", "zorb"): 512, ("plain", "c01"): None, ("plain", "c02"): None,
                         ("new", "zorb"): 512, ("new", "c01"): 256, ("new", "c02"): None,
                         ("new", "c03"): 64})  # c03 only on one seed and for one method: left out
    got = compare_seeds([a, b], methods=["plain", "new"])
    assert got["seeds"] == [0, 1] and got["concepts"] == ["zorb", "c01", "c02"]
    plain, new = got["per_method"]["plain"], got["per_method"]["new"]
    assert [plain["seeds"][s]["good"] for s in ("0", "1")] == [2, 1] and plain["pooled"]["good"] == 3
    assert plain["seeds"]["0"]["samples_median"] == 256 and plain["seeds"]["1"]["samples_median"] is None
    assert plain["seeds"]["1"]["hidden"] == [512, 16.0]
    assert new["concepts"]["c01"] == [512, 256]
    # new is good where plain is not on c01 (both seeds); plain where new is not on c02 (seed 0)
    assert got["paired"]["new"] == {"against": "plain", "wins": 2, "losses": 1, "p": sign_test(2, 1)}
    assert sign_test(2, 1) == 1.0 and sign_test(8, 0) == pytest.approx(2 / 256) and sign_test(0, 0) == 1.0
    text = seeds_markdown(got)
    assert "| plain | all, pooled | 3/6 (per seed 1.5 ± 0.5) |" in text
    assert "| c01 | 0/2: – · – | 2/2: 512 · 256 |" in text
    assert "`new` against `plain`: good where `plain` was not on 2 concept × seed cells, the reverse on 1" in text


def _point(samples: int, good: bool) -> dict:
    return {"samples": samples, "seconds": samples / 32, "reconstruction": 1.0 if good else 0.5,
            "faithful_editability": 0.9}


def test_compare_seeds_counts_the_cells_good_at_each_ladder_point():
    """A word good at 64 samples and not at 128 counts at 64 only: the table says what a run stopped there gives."""
    from ticraft.bench.seeds import compare_seeds, seeds_markdown, sign_test

    def result(seed: int, flips: dict[str, list[bool]]) -> dict:
        runs = []
        for m, g in flips.items():
            first = 64 if g[0] else (128 if g[1] else None)
            runs.append({"method": m, "concept": "zorb", "shots": 4, "good_samples": first,
                         "good_seconds": None if first is None else first / 32,
                         "points": [_point(64, g[0]), _point(128, g[1])]})
        return {"settings": {"seed": seed}, "runs": runs}

    got = compare_seeds([result(0, {"plain": [True, False], "new": [True, True]}),
                         result(1, {"plain": [False, False], "new": [False, True]})], methods=["plain", "new"])
    first, second = got["at_points"]
    assert first["samples"] == 64 and second["samples"] == 128
    assert first["methods"]["plain"] == {"good": 1, "of": 2, "seconds_mean": 2.0}
    assert second["methods"]["plain"]["good"] == 0
    assert second["methods"]["new"] == {"good": 2, "of": 2, "seconds_mean": 4.0, "wins": 2, "losses": 0,
                                        "p": sign_test(2, 0)}
    text = seeds_markdown(got)
    assert "| method | 64 samples | 128 samples |" in text
    assert "| plain | 1/2 (2.0 s) | 0/2 (4.0 s) |" in text
    assert "| new | 1/2 (2.0 s), +0 −0 | 2/2 (4.0 s), +2 −0 |" in text


def test_compare_seeds_pairs_the_speedup_against_the_recipe():
    """Pooled over seed × concept cells: a measured ratio when the recipe's median is finite, a lower bound from its
    seconds to the ladder's top when it is not, per seed too, and the per-cell ratio where both got good."""
    from ticraft.bench.seeds import compare_seeds, seeds_markdown

    def result(seed: int, goods: dict[tuple[str, str], float | None]) -> dict:
        runs = [{"method": m, "concept": c, "shots": 4, "good_samples": None if g is None else 64,
                 "good_seconds": g, "points": [_point(64, g is not None) | {"seconds": 2.0},
                                               _point(2048, g is not None) | {"seconds": 100.0}]}
                for (m, c), g in goods.items()]
        return {"settings": {"seed": seed}, "runs": runs}

    rec = "diffusers-recipe"
    got = compare_seeds([result(0, {("plain", "a"): 10.0, ("plain", "b"): 20.0, (rec, "a"): 5.0, (rec, "b"): None}),
                         result(1, {("plain", "a"): 30.0, ("plain", "b"): None, (rec, "a"): 60.0, (rec, "b"): 90.0})],
                        methods=["plain", rec])
    s = got["speedup"]
    # plain pooled median of 10, 20, 30, inf = 25; recipe of 5, inf, 60, 90 = 75 → 3.0×, measured
    assert (s["ratio"], s["bound"], s["ours_seconds"], s["ref_seconds"]) == (3.0, "=", 25.0, 75.0)
    # seed 0: recipe median of 5, inf = inf → bound from its top (100 s) ÷ plain's 15 s; seed 1: plain's median inf
    assert s["per_seed"]["0"]["bound"] == ">" and s["per_seed"]["0"]["ratio"] == pytest.approx(100 / 15)
    assert s["per_seed"]["1"]["ratio"] is None
    # both good on (0, a) 0.5× and (1, a) 2.0× → median 1.25; only plain on (0, b), only the recipe on (1, b)
    assert (s["both_good"], s["cells_median"], s["only_ours"], s["only_ref"]) == (2, 1.25, 1, 1)
    text = seeds_markdown(got)
    assert "pooled over 4 concept × seed cells: **3.0× (75.0 s ÷ 25.0 s)**" in text
    assert "seed 0: > 6.7× (100.0 s ÷ 15.0 s)" in text and "median per-cell ratio is **1.2×**" in text
    assert "speedup" not in compare_seeds([result(0, {("plain", "a"): 1.0}), result(1, {("plain", "a"): 2.0})])


@pytest.mark.parametrize("results, methods, words", [
    ([_seed_result(0, {("plain", "zorb"): 64})], None, "at least two seeds"),
    ([_seed_result(0, {("plain", "zorb"): 64}), _seed_result(1, {("plain", "zorb"): 64})], ["nope"],
     "no runs of method 'nope'"),
    ([_seed_result(0, {("plain", "zorb"): 64}), _seed_result(0, {("plain", "zorb"): 64})], None, "in two of the"),
    ([_seed_result(0, {("plain", "zorb"): 64}), _seed_result(1, {("plain", "c01"): 64})], None, "no concept was run"),
])
def test_compare_seeds_bad_input_is_one_sentence(results, methods, words):
    from ticraft.bench.seeds import compare_seeds

    with pytest.raises(BenchError, match=words):
        compare_seeds(results, methods=methods)


def test_cli_seeds_runs_each_seed_and_compares(tmp_path, one_torch_thread):
    """`ticraft bench --seeds 0,1`: one folder per seed, the comparison as Markdown, PNG and JSON, resumable."""
    from typer.testing import CliRunner

    from ticraft.cli.main import app

    args = ["bench", "--methods", "plain", "--concepts", "zorb,glimmic", "--ladder", "16", "-n", "1",
            "--eval-steps", "2", "--no-dvar", "--no-pairs", "--jobs", "1", "--seeds", "0,1", "-o", str(tmp_path / "out"),
            "--json", str(tmp_path / "seeds.json"), "--resume", str(tmp_path / "state")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    assert "| plain | all, pooled |" in res.output and "| plain | 1 |" in res.output
    assert (out / "seeds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "seeds_at_points.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| method | 16 samples |" in (out / "seeds.md").read_text()  # good at each ladder point
    assert "| zorb |" in (out / "seeds.md").read_text()
    assert (out / "seed-0" / "bench.md").is_file() and (out / "seed-1" / "fig10.png").is_file()
    data = json.loads((tmp_path / "seeds.json").read_text())
    assert data["schema"] == "ticraft-bench-seeds/1" and data["seeds"] == [0, 1]
    assert [data["results"][s]["settings"]["seed"] for s in ("0", "1")] == [0, 1]
    assert data["comparison"]["concepts"] == ["zorb", "glimmic"]
    again = CliRunner().invoke(app, args)  # every run is kept per seed: nothing trains again
    assert again.exit_code == 0 and again.output.count("already there") == 2, again.output


@pytest.mark.parametrize("extra, words", [(["--seeds", "1"], "at least two different seeds"),
                                          (["--seeds", "1,1"], "at least two different seeds"),
                                          (["--seeds", "0,x"], "--seeds must be comma-separated whole numbers"),
                                          (["--seed", "3", "--seeds", "0,1"], "give --seed or --seeds, not both"),
                                          (["--seed", "0", "--seeds", "1,2"], "give --seed or --seeds, not both")])
def test_cli_seeds_bad_input(extra, words, tmp_path):
    from typer.testing import CliRunner

    from ticraft.cli.main import app

    res = CliRunner().invoke(app, ["bench", "--quick", "-o", str(tmp_path / "out"), *extra])
    assert res.exit_code != 0 and words in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_a_method_that_grows_needs_two_steps_on_the_ladder():
    from ticraft.bench.methods import check_ladder, get_methods

    with pytest.raises(BenchError, match="progressive needs at least 2 steps: .* at least 32 samples, got 16"):
        check_ladder([16], get_methods("progressive"))
    assert check_ladder([16, 32], get_methods("progressive")) == [16, 32]


def test_an_averaged_method_yields_the_moving_average_and_records_its_decay(one_torch_thread):
    """``average`` judges the vectors' moving average (the first step's vectors, then d·mean + (1 − d)·now)."""
    import torch

    from ticraft.bench.methods import RunContext, trainer_method
    from ticraft.bench.suite import build_suite
    from ticraft.models.load import load_backbone

    bb = load_backbone("toy")
    concept = build_suite(names=["zorb"])[0]
    last, averaged = (trainer_method(n, "", average=a, batch_size=4, num_vectors=1, init_search=0)
                      for n, a in (("last", 0.0), ("averaged", 0.9)))
    snaps = {}
    for m in (last, averaged):
        ctx = RunContext(bb, concept, concept.train_images(), "<zorb-t>", ladder=[4, 8])
        snaps[m.name] = [s.concept.vectors for s in m.run(ctx)]
        if m is averaged:
            assert ctx.events["config"]["average"] == 0.9
    assert averaged.options["average"] == 0.9 and "average" not in last.options
    first, second = (s[next(iter(s))] for s in snaps["last"])  # the plain run after 1 and 2 steps, same seed
    first_avg, second_avg = (s[next(iter(s))] for s in snaps["averaged"])
    assert torch.allclose(first_avg, first)  # one step: the average is that step's vectors
    d = min(0.9, 3 / 12)
    assert not torch.allclose(second_avg, second)
    assert torch.allclose(second_avg, d * first + (1 - d) * second, atol=1e-6)
