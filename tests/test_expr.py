"""The mix language: exact agreement with Concept's Python operators, rejection of code, caret errors, fuzzing."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticraft.analysis.expr import ExprError, concept_tokens, evaluate, mix, parse, words
from ticraft.concept import Concept, concat, lerp, match_count, slerp
from ticraft.errors import TicraftError


def _concept(token: str, n: int = 1, seed: int = 0, d: int = 8) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, d, generator=g)}, family="toy")


A, B, C = _concept("<a>", seed=1), _concept("<b>", seed=2), _concept("<c>", seed=3)
A3 = _concept("<a3>", n=3, seed=4)
WORDS = {"painting": _concept("painting", seed=5), "blurry": _concept("blurry", seed=6),
         "oil painting": _concept("oil painting", seed=7), "import": _concept("import", seed=8)}
CONCEPTS = {c.token: c for c in (A, B, C, A3)}


def ev(text: str):
    return evaluate(text, concepts=CONCEPTS.__getitem__, words=WORDS.__getitem__)


def same(x: Concept, y: Concept) -> bool:
    return x.vectors.keys() == y.vectors.keys() and all(torch.equal(x.vectors[k], y.vectors[k]) for k in x.vectors)


W, Z = WORDS["painting"], WORDS["blurry"]


@pytest.mark.parametrize(
    ("text", "python"),
    [
        ("0.7*<a> + 0.3*painting - 0.2*blurry", lambda: 0.7 * A + 0.3 * W - 0.2 * Z),
        ("<a> - <b> - <c>", lambda: A - B - C),
        ("<a> - (<b> - <c>)", lambda: A - (B - C)),
        ("-<a>*2", lambda: -A * 2),
        ("-0.2*<b>", lambda: -0.2 * B),
        ("<a> / 3 * 2", lambda: A / 3 * 2),
        ("(1/3)*<a>", lambda: (1 / 3) * A),
        ("2*3*<a>", lambda: 2 * 3 * A),
        ("+<a>", lambda: +A if hasattr(A, "__pos__") else A),
        ("1e-3 * <a> + .5*<b>", lambda: 1e-3 * A + 0.5 * B),
        ("<a> − <b> × 2 ÷ 4", lambda: A - B * 2 / 4),
        ("slerp(<a>, <b>, 0.3)", lambda: slerp(A, B, 0.3)),
        ("lerp(<a>, painting, 0.25)", lambda: lerp(A, W, 0.25)),
        ("norm(<a>, 0.5)", lambda: A.normalized(0.5)),
        ("norm(<a3>)", lambda: A3.normalized()),
        ("vec(<a3>, 1)", lambda: A3[1]),
        ("vec(<a3>, -1)", lambda: A3[-1]),
        ("concat(<a>, <b>, painting)", lambda: concat(A, B, W)),
        ("mean(<a3>)", lambda: A3.mean_vector()),
        ("mean(<a>, <b>, <c>)", lambda: (A + B + C) / 3),
        ("pad(<a>, 3)", lambda: match_count(A, 3, "pad")),
        ("merge(<a3>, 2)", lambda: match_count(A3, 2, "merge")),
        ("0.5*'oil painting' + 0.5*\"import\"", lambda: 0.5 * WORDS["oil painting"] + 0.5 * WORDS["import"]),
        ("slerp(mean(<a3>), 2*(<b> - <c>), 0.5) / 2", lambda: slerp(A3.mean_vector(), 2 * (B - C), 0.5) / 2),
    ],
)
def test_results_equal_python_operators_exactly(text, python):
    assert same(ev(text), python())


def test_numbers_follow_python():
    assert ev("7 / 2") == 7 / 2
    assert ev("10000000000000001 - 10000000000000000") == 1  # ints stay ints, like Python literals
    assert ev("-(2 - 5) * 1.5") == -(2 - 5) * 1.5


def test_mix_with_real_words_equals_python(tiny_sd_dir):
    from ticraft.analysis.neighbors import word_concept
    from ticraft.models.load import load_backbone

    bb = load_backbone(str(tiny_sd_dir))
    a = Concept("<cat-toy>", {"clip": torch.randn(1, 32)}, family=bb.family)
    got = mix("0.7*<cat-toy> + 0.3*painting - 0.2*blurry", concepts={a.token: a}.__getitem__,
              words=lambda w: word_concept(bb, w), token="<cat-paint>")
    want = 0.7 * a + 0.3 * word_concept(bb, "painting") - 0.2 * word_concept(bb, "blurry")
    assert got.token == "<cat-paint>" and same(got, want)
    assert got.meta["expression"].startswith("0.7*")
    # a multi-token word kept as vectors
    vec = evaluate("blurry", words=lambda w: word_concept(bb, w, mode="vectors"))
    assert vec.num_vectors == len(bb.encoders[0].tokenizer("blurry", add_special_tokens=False)["input_ids"]) > 1
    assert same(evaluate("blurry", words=lambda w: word_concept(bb, w)), vec.mean_vector())


@pytest.mark.parametrize(
    ("text", "hint", "column"),
    [
        ('__import__("os")', "'__'", 1),
        ("<a>.__class__", "attribute", 4),
        ("painting.upper", "attribute", 9),
        ("<a>[0]", "subscripts", 4),
        ("lambda x: x", "no lambdas", 9),
        ("lambda", "keyword", 1),
        ("open('f')", "unknown function 'open'", 1),
        ("eval('1')", "unknown function 'eval'", 1),
        ("<a>(1)", "only the functions", 4),
        ("2**3", "powers", 2),
        ("x = 1", "assignments", 3),
        ("{1: 2}", "braces", 1),
        ("0.7*<a> + * 2", "expected a number", 11),
        ("slerp(<a>, <b>)", "takes 3 arguments", 1),
        ("slerp(<a>, <b>, <c>)", "must be a number", 17),
        ("vec(<a3>, 1.5)", "whole number", 11),
        ("vec(<a3>, 7)", "out of range", 1),
        ("<a> + 1", "cannot +", 5),
        ("<a> * <b>", "cannot multiply", 5),
        ("<a> / 0", "division", 5),
        ("1 / 0", "division by zero", 3),
        ("concat(<a>, <b>) + <a3>", "pad(x, n)", 18),  # 2 against 3 vectors (a single vector broadcasts)
        ("<nope> + <a>", "unknown concept '<nope>'", 1),
        ("(<a>", "expected ')'", 5),
        ("", "empty expression", 1),
        ("<a", "unterminated concept", 1),
        ("'oil", "unterminated quoted", 1),
        ("3 4", "expected an operator", 3),
    ],
)
def test_errors_point_at_the_column(text, hint, column):
    with pytest.raises(ExprError) as info:
        ev(text)
    err = info.value
    assert isinstance(err, TicraftError)
    assert hint in str(err), str(err)
    assert err.column + 1 == column, str(err)
    lines = str(err).splitlines()
    assert f"(column {column})" in lines[0]
    assert lines[2].index("^") - 2 == err.column  # the caret sits under the column


def test_a_number_is_not_a_concept():
    with pytest.raises(ExprError, match="number"):
        mix("1 + 2", concepts=CONCEPTS.__getitem__)


def test_no_resolvers_means_clear_errors():
    with pytest.raises(ExprError, match="vocabulary words"):
        evaluate("painting")
    with pytest.raises(ExprError, match="concept tokens"):
        evaluate("<a>")


def test_library_errors_become_expr_errors(tmp_path):
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")
    lib.add(A)
    assert same(evaluate("2*<a>", concepts=lib.get), 2 * A)
    with pytest.raises(ExprError, match="<missing>") as info:
        evaluate("<a> + <missing>", concepts=lib.get)
    assert info.value.column == 6


def test_tree_helpers():
    tree = parse("slerp(<a>, painting, .5) + <b> - 'oil painting' * 2 + <a>")
    assert concept_tokens(tree) == ["<a>", "<b>"]
    assert words(tree) == ["painting", "oil painting"]


def test_deep_and_long_inputs_are_bounded():
    with pytest.raises(ExprError, match="nested too deeply"):
        ev("(" * 200 + "1" + ")" * 200)
    with pytest.raises(ExprError, match="nested too deeply"):
        ev("-" * 200 + "<a>")
    assert ev("+".join(["1"] * 3000)) == 3000  # long flat chains evaluate without recursion
    with pytest.raises(ExprError, match="too long"):
        ev("1" * 20_000)


GRAMMAR = st.text(alphabet=list("0123456789.eE+-*/()<>,'\" abc_[]:=@lambdasrpvecnomtg\u2212\t"), max_size=40)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _resolver(_: str) -> Concept:
    return A


@FUZZ
@given(st.text(max_size=60))
def test_fuzz_any_text_gives_a_value_or_expr_error(text):
    try:
        out = evaluate(text, concepts=_resolver, words=_resolver)
    except ExprError as err:
        assert 0 <= err.column <= len(text)
    else:
        assert isinstance(out, (int, float, Concept))


@FUZZ
@given(GRAMMAR)
def test_fuzz_grammar_like_text(text):
    try:
        out = evaluate(text, concepts=_resolver, words=_resolver)
    except ExprError as err:
        assert 0 <= err.column <= len(text)
    else:
        assert isinstance(out, (int, float, Concept))


@pytest.mark.parametrize(("text", "column"), [("0 - <a>", 3), ("1 + painting", 3), ("2 / <a>", 3)])
def test_number_and_concept_mixes_python_refuses(text, column):
    with pytest.raises(ExprError) as info:
        ev(text)
    assert info.value.column + 1 == column
