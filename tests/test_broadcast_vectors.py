"""Vector-count broadcasting: a one-vector operand (a plain word, a shipped concept) meets an N-vector concept as N
copies of its vector, exactly ``match_count(x, N, "pad")``, in Concept arithmetic, lerp/slerp, the mix language,
``ticraft mix`` and interpolation (``ticraft interp`` without ``--match``). Unequal counts above one (2 and 3) keep
an explicit error, worded for where it comes from: Python names ``match_count``/``match="pad"``, the mix language
its functions ``pad(x, n)``/``mean(x)``/``vec(x, i)``, the CLI ``--match``."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import cli_error, run_cli

from ticraft.analysis.expr import ExprError, evaluate, mix
from ticraft.analysis.interpolate import interpolation_path, match_pair
from ticraft.concept import Concept, ConceptError, VectorCountError, broadcast, lerp, match_count, slerp
from ticraft.library import Library


def _c(token: str, n: int, seed: int, d: int = 8, **meta) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, d, generator=g)}, family="toy", meta=dict(meta))


def _xl(token: str, n: int, seed: int) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip_l": torch.randn(n, 768, generator=g), "clip_g": torch.randn(n, 1280, generator=g)})


def same(x: Concept, y: Concept) -> bool:
    return x.vectors.keys() == y.vectors.keys() and all(torch.equal(x.vectors[k], y.vectors[k]) for k in x.vectors)


ZORB = _c("<zorb>", 3, seed=1, method="plain", steps=500)  # the default preset's three vectors
WORD, WORD2 = _c("painting", 1, seed=2, word="painting"), _c("blurry", 1, seed=3, word="blurry")
BDOT = _c("<bdot>", 1, seed=4)  # a shipped one-vector concept
DUO = _c("<duo>", 2, seed=5)


def pad3(c: Concept) -> Concept:
    return match_count(c, 3, "pad")


# ------------------------------------------------------------------------------------------- Python operators
@pytest.mark.parametrize(
    ("broadcast_", "explicit"),
    [
        (lambda: ZORB + WORD, lambda: ZORB + pad3(WORD)),
        (lambda: ZORB - WORD, lambda: ZORB - pad3(WORD)),
        (lambda: WORD + ZORB, lambda: pad3(WORD) + ZORB),
        (lambda: WORD - ZORB, lambda: pad3(WORD) - ZORB),
        (lambda: 0.7 * ZORB + 0.3 * WORD - 0.2 * WORD2, lambda: 0.7 * ZORB + 0.3 * pad3(WORD) - 0.2 * pad3(WORD2)),
        (lambda: ZORB + BDOT, lambda: ZORB + pad3(BDOT)),
        (lambda: (WORD + WORD2) + ZORB, lambda: pad3(WORD + WORD2) + ZORB),  # one-vector results broadcast too
    ],
)
def test_arithmetic_equals_the_padded_version_exactly(broadcast_, explicit):
    got, want = broadcast_(), explicit()
    assert got.num_vectors == 3 and same(got, want)
    assert got.meta == want.meta and got.token == want.token and got.family == want.family


@pytest.mark.parametrize("fn", [slerp, lerp])
@pytest.mark.parametrize("t", [0.0, 0.3, 0.5, 1.0])
def test_slerp_and_lerp_equal_the_padded_version_exactly(fn, t):
    assert same(fn(ZORB, BDOT, t), fn(ZORB, pad3(BDOT), t))
    assert same(fn(BDOT, ZORB, t), fn(pad3(BDOT), ZORB, t))
    assert fn(BDOT, ZORB, t).meta == fn(pad3(BDOT), ZORB, t).meta


def test_two_encoders_broadcast_each_encoder():
    z, w = _xl("<z>", 3, seed=6), _xl("w", 1, seed=7)
    got = z - w
    assert got.family == "sdxl" and {k: v.shape[0] for k, v in got.vectors.items()} == {"clip_l": 3, "clip_g": 3}
    assert same(got, z - match_count(w, 3, "pad"))


def test_broadcast_gives_both_at_one_count():
    a, b = broadcast(BDOT, ZORB)
    assert b is ZORB and same(a, pad3(BDOT)) and a.meta["derived"] == "broadcast"
    assert broadcast(ZORB, DUO[0])[0] is ZORB
    x, y = broadcast(DUO, DUO)
    assert x is DUO and y is DUO


def test_two_against_three_keeps_a_python_error():
    ops = (lambda x, y: x + y, lambda x, y: x - y, lambda x, y: slerp(x, y, 0.5), lambda x, y: lerp(x, y, 0.5))
    for x, y in ((DUO, ZORB), (ZORB, DUO)):
        for op in ops:
            with pytest.raises(VectorCountError) as info:
                op(x, y)
            text = str(info.value)
            assert "(2 vectors)" in text and "(3 vectors)" in text and "match_count(c, n" in text
            assert "mean_vector()" in text and "only a single vector repeats" in text
            assert set(info.value.counts) == {2, 3} and set(info.value.tokens) == {"<duo>", "<zorb>"}


def test_the_strict_check_says_one_vector():
    with pytest.raises(ConceptError) as info:
        ZORB.check_compatible(WORD)
    assert "(1 vector)" in str(info.value) and "1 vectors" not in str(info.value)


# --------------------------------------------------------------------------------------- per-layer concepts
def _lay(token: str, per_layer: int, layers: int = 4, seed: int = 0) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(layers * per_layer, 8, generator=g)}, family="toy",
                   meta={"method": "xti", "xti_layers": layers})


def test_per_layer_single_vector_repeats_within_each_layer():
    three, one = _lay("<x3>", 3, seed=1), _lay("<x1>", 1, seed=2)
    got = three + one
    assert got.layers == 4 and got.num_vectors == 3
    # each layer's one vector repeated three times inside that layer's block (layer-major rows)
    rows = one.vectors["clip"].reshape(4, 1, 8).expand(4, 3, 8).reshape(12, 8)
    assert torch.equal(got.vectors["clip"], three.vectors["clip"] + rows)
    assert torch.equal(slerp(one, three, 0.0).vectors["clip"], rows)
    assert torch.equal((one - three).vectors["clip"], rows - three.vectors["clip"])
    with pytest.raises(VectorCountError, match="2 vectors"):
        _ = _lay("<x2>", 2, seed=3) + three


def test_a_plain_word_and_a_per_layer_concept_stay_a_clear_error():
    lay = _lay("<x3>", 3, seed=1)
    word = _c("blurry", 1, seed=3)
    for op in (lambda: lay - word, lambda: word + lay, lambda: lerp(lay, word, 0.5)):
        with pytest.raises(ConceptError, match="same layer count") as info:
            op()
        assert "(4 layers)" in str(info.value) and "(1 layer)" in str(info.value)
    with pytest.raises(ExprError, match="same layer count"):
        evaluate("<x3> - blurry", concepts={"<x3>": lay}.__getitem__, words={"blurry": word}.__getitem__)


# ------------------------------------------------------------------------------------------- mix language
CONCEPTS = {c.token: c for c in (ZORB, BDOT, DUO)}
WORDS = {"painting": WORD, "blurry": WORD2, "orange": _c("orange", 1, seed=8), "blue": _c("blue", 1, seed=9)}


def ev(text: str):
    return evaluate(text, concepts=CONCEPTS.__getitem__, words=WORDS.__getitem__)


@pytest.mark.parametrize(
    ("text", "python"),
    [
        ("0.7*<zorb> + 0.3*painting - 0.2*blurry", lambda: 0.7 * ZORB + 0.3 * pad3(WORD) - 0.2 * pad3(WORD2)),
        ("<zorb> - orange + blue", lambda: ZORB - pad3(WORDS["orange"]) + pad3(WORDS["blue"])),
        ("<zorb> + <bdot>", lambda: ZORB + pad3(BDOT)),
        ("slerp(<zorb>, <bdot>, 0.5)", lambda: slerp(ZORB, pad3(BDOT), 0.5)),
        ("lerp(painting, <zorb>, 0.25)", lambda: lerp(pad3(WORD), ZORB, 0.25)),
        ("mean(<zorb>, painting)", lambda: (ZORB + pad3(WORD)) / 2),
        ("<zorb> + vec(<duo>, 1)", lambda: ZORB + pad3(DUO[1])),
    ],
)
def test_expressions_broadcast_like_pad(text, python):
    assert same(ev(text), python())
    assert same(ev(text), ev(text.replace("painting", "pad(painting, 3)").replace("<bdot>", "pad(<bdot>, 3)")))


@pytest.mark.parametrize(("text", "column"), [("<zorb> + <duo>", 8), ("slerp(<duo>, <zorb>, 0.5)", 1)])
def test_expression_count_errors_name_the_language_functions(text, column):
    with pytest.raises(ExprError) as info:
        ev(text)
    text_ = str(info.value)
    assert "(2 vectors)" in text_ and "(3 vectors)" in text_
    assert "pad(x, n)" in text_ and "mean(x)" in text_ and "vec(x, i)" in text_ and "merge(x, n)" in text_
    assert "mean_vector" not in text_ and "match_count" not in text_ and "slice" not in text_
    assert info.value.column + 1 == column


def test_mix_keeps_its_metadata_with_a_broadcast():
    got = mix("0.7*<zorb> + 0.3*painting", concepts=CONCEPTS.__getitem__, words=WORDS.__getitem__,
              token="<zorb-paint>")
    assert got.token == "<zorb-paint>" and got.num_vectors == 3
    assert got.meta == {"method": "plain", "expression": "0.7*<zorb> + 0.3*painting", "derived": "mix"}


# ------------------------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("mode", ["slerp", "lerp"])
def test_interpolation_broadcasts_without_match_like_pad(mode):
    for a, b in ((ZORB, BDOT), (BDOT, ZORB)):
        got = interpolation_path(a, b, steps=4, mode=mode)
        want = interpolation_path(a, b, steps=4, mode=mode, match="pad")
        assert all(same(g.concept, w.concept) for g, w in zip(got, want, strict=True))
        assert all(f.concept.num_vectors == 3 for f in got) and "match" not in got[1].concept.meta
    a2, b2 = match_pair(BDOT, ZORB, None)
    assert same(a2, pad3(BDOT)) and b2 is ZORB


def test_interpolation_two_against_three_names_the_python_argument():
    with pytest.raises(VectorCountError) as info:
        interpolation_path(DUO, ZORB, steps=3)
    text = str(info.value)
    assert 'match="pad"' in text and 'match="merge"' in text and "--match" not in text
    assert "<duo> has 2 vectors and <zorb> has 3" in text and "vector(s)" not in text
    assert interpolation_path(DUO, ZORB, steps=3, match="merge")[0].concept.num_vectors == 3


# ------------------------------------------------------------------------------------------------------- CLI


@pytest.fixture()
def lib(tmp_path, bb):
    lib = Library(tmp_path / "lib")
    rows = torch.cat([bb.token_vector(w)["clip"] for w in ("cat", "dog", "toy")])
    lib.add(Concept("<zorb>", {"clip": rows * 1.5}, family=bb.family, meta={"method": "plain"}))
    lib.add(Concept("<bdot>", {"clip": bb.token_vector("red")["clip"]}, family=bb.family))
    lib.add(Concept("<duo>", {"clip": rows[:2] - 0.5}, family=bb.family))
    return lib


def test_cli_mix_readme_example_on_a_three_vector_concept(tiny_sd_dir, lib, bb):
    from ticraft.analysis.neighbors import word_concept

    r = run_cli("mix", "0.7*<zorb> + 0.3*painting - 0.2*blurry", "--as", "<zorb-paint>", "--model", tiny_sd_dir,
            "--library", lib.root)
    assert r.exit_code == 0, r.output
    z = lib.get("<zorb>")
    want = 0.7 * z + 0.3 * pad3(word_concept(bb, "painting")) - 0.2 * pad3(word_concept(bb, "blurry"))
    got = lib.get("<zorb-paint>")
    assert got.num_vectors == 3 and torch.equal(got.vectors["clip"], want.vectors["clip"])
    for expression, python in (("<zorb> + <bdot>", lambda: z + pad3(lib.get("<bdot>"))),
                               ("slerp(<zorb>, <bdot>, 0.5)", lambda: slerp(z, pad3(lib.get("<bdot>")), 0.5))):
        r = run_cli("mix", expression, "--as", "<m>", "--overwrite", "--library", lib.root)  # no words: no model
        assert r.exit_code == 0, r.output
        assert torch.equal(lib.get("<m>").vectors["clip"], python().vectors["clip"])


def test_cli_mix_words_vectors(tiny_sd_dir, lib, bb):
    from ticraft.analysis.neighbors import word_concept

    # "painting" is one token of the tiny vocabulary: it broadcasts
    r = run_cli("mix", "<zorb> - 0.5*painting", "--words", "vectors", "--as", "<zv>", "--model", tiny_sd_dir,
            "--library", lib.root)
    assert r.exit_code == 0, r.output
    want = lib.get("<zorb>") - 0.5 * pad3(word_concept(bb, "painting", mode="vectors"))
    assert torch.equal(lib.get("<zv>").vectors["clip"], want.vectors["clip"])
    # "blurry" is four tokens there: four against three is an error that names the language's functions
    r = run_cli("mix", "<zorb> - blurry", "--words", "vectors", "--as", "<zb>", "--model", tiny_sd_dir,
            "--library", lib.root)
    text = cli_error(r)
    assert "(3 vectors)" in text and "(4 vectors)" in text and "pad(x, n)" in text and "mean(x)" in text
    assert not lib.has("<zb>")


def test_cli_interp_broadcasts_without_match_and_says_match_otherwise(tiny_sd_dir, lib, tmp_path):
    from ticraft.formats import read_concept

    outs = {}
    for name, extra in (("plain", ()), ("pad", ("--match", "pad"))):
        r = run_cli("interp", "<zorb>", "circle", "--steps", "3", "--no-render", "--save-vectors", tmp_path / name,
                *extra, "--model", tiny_sd_dir, "--library", lib.root)
        assert r.exit_code == 0, r.output
        outs[name] = [read_concept(p) for p in sorted((tmp_path / name).glob("*.safetensors"))]
    assert len(outs["plain"]) == 3 and all(c.num_vectors == 3 for c in outs["plain"])
    assert all(torch.equal(x.vectors["clip"], y.vectors["clip"]) for x, y in zip(outs["plain"], outs["pad"], strict=True))
    r = run_cli("interp", "<duo>", "<zorb>", "--steps", "3", "--no-render", "--model", tiny_sd_dir, "--library", lib.root)
    text = cli_error(r)
    assert "--match pad" in text and "--match merge" in text and 'match="pad"' not in text
    assert "<duo> has 2 vectors and <zorb> has 3" in text
