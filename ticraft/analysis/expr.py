"""A small, safe arithmetic language over concepts and words (``ticraft mix``).

Grammar (usual precedence; ``+ - * /`` associate to the left; unary minus binds tighter than ``*``, as in Python)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | primary
    primary := NUMBER | CONCEPT | WORD | STRING | NAME "(" [expr ("," expr)*] ")" | "(" expr ")"

* ``NUMBER``: ``2``, ``0.7``, ``.5``, ``1e-3``.
* ``CONCEPT``: a library token in angle brackets, ``<cat-toy>``.
* ``WORD``: a vocabulary word, ``painting``; ``STRING`` quotes anything else, ``"oil painting"``. A word's token rows
  are averaged into one vector (``words="mean"``, default) or kept as one vector per token (``words="vectors"``).
* Functions: ``slerp(a, b, t)``, ``lerp(a, b, t)``, ``norm(a)`` / ``norm(a, x)`` (rescale every vector to norm x;
  default each encoder's mean norm), ``vec(a, i)`` (vector i), ``concat(a, b, …)``, ``mean(a)`` (a's vectors averaged
  into one), ``mean(a, b, …)`` (element-wise ``(a + b + …) / n``), ``pad(a, n)`` / ``merge(a, n)`` (bring to n
  vectors).
* ``−``, ``×`` and ``÷`` are accepted for ``-``, ``*`` and ``/``.
* Vector counts broadcast as numpy's size-1 axes do: a one-vector operand (a word, ``mean(x)``, ``vec(x, i)``) meets
  an N-vector concept as N copies of its vector, exactly ``pad(x, N)``; other unequal counts (2 and 3) are an
  error that names ``pad(x, n)``, ``merge(x, n)``, ``mean(x)`` and ``vec(x, i)``.

It is parsed by a recursive-descent parser into a tiny tree and evaluated with the very Python operators of
:class:`~ticraft.concept.Concept`, so ``mix("0.7*<a> + 0.3*painting", …)`` equals ``0.7*a + 0.3*painting`` bit for
bit. Nothing is ever passed to ``eval``: there are no names other than the functions above, no attributes, no
subscripts, no keywords. Every error is an :class:`ExprError` that points at the column::

    >>> try:
    ...     parse("0.7*<a> + )")
    ... except ExprError as exc:
    ...     print(exc)
    expected a number, concept, word or '(' but found ')' (column 11)
      0.7*<a> + )
                ^

Broadcasting, with ``<a3>`` a three-vector concept and ``painting`` a word::

    >>> import torch
    >>> a3 = Concept("<a3>", {"clip": torch.zeros(3, 2)}, family="toy")
    >>> painting = Concept("painting", {"clip": torch.tensor([[1.0, 2.0]])}, family="toy")
    >>> evaluate("<a3> + painting", concepts={"<a3>": a3}.__getitem__, words={"painting": painting}.__getitem__
    ...          ).vectors["clip"].tolist()
    [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
"""

from __future__ import annotations

import math
from functools import reduce
from typing import Any, Callable, Union

from ticraft.analysis.expr_lexer import (  # noqa: F401 (re-exported)
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NUMBER,
    ExprError,
    Token,
    tokenize,
)
from ticraft.analysis.expr_parser import (  # noqa: F401 (re-exported)
    FUNCTIONS,
    Call,
    Chain,
    ConceptRef,
    Function,
    Neg,
    Node,
    Num,
    Word,
    concept_tokens,
    parse,
    words,
)
from ticraft.concept import Concept, VectorCountError, concat, count_error, keep_norm, lerp, match_count, slerp
from ticraft.errors import TicraftError

Value = Union[int, float, Concept]

#: How an expression brings two vector counts together (the functions of this language, not Python's methods).
COUNT_FIX = "bring them to one count first with pad(x, n), merge(x, n), mean(x) or vec(x, i)"


# --------------------------------------------------------------------------------------------------- evaluation
ConceptResolver = Callable[[str], Concept]
WordResolver = Callable[[str], Concept]


class _Evaluator:
    def __init__(self, source: str, concepts: ConceptResolver | None, words: WordResolver | None) -> None:
        self.source = source
        self.concepts = concepts
        self.words = words
        self.cache: dict[tuple[str, str], Concept] = {}

    def fail(self, message: str, col: int) -> ExprError:
        return ExprError(message, self.source, col)

    def evaluate_node(self, node: Node) -> Value:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, ConceptRef):
            return self.lookup("concept", node.token, node.col)
        if isinstance(node, Word):
            return self.lookup("word", node.text, node.col)
        if isinstance(node, Neg):
            v = self.evaluate_node(node.operand)
            return v if node.plus else self.apply(lambda: -v, node.col)
        if isinstance(node, Chain):
            acc = self.evaluate_node(node.first)
            for op, operand, col in node.rest:
                acc = self.binary(op, acc, self.evaluate_node(operand), col)
            return acc
        if isinstance(node, Call):
            return self.call(node)
        raise self.fail(f"internal: unknown node {type(node).__name__}", 0)  # pragma: no cover

    def lookup(self, kind: str, name: str, col: int) -> Concept:
        if (kind, name) in self.cache:
            return self.cache[(kind, name)]
        resolver = self.concepts if kind == "concept" else self.words
        if resolver is None:
            what = "concept tokens (no library)" if kind == "concept" else "vocabulary words (no model loaded)"
            raise self.fail(f"this expression cannot use {what}: {name!r}", col)
        try:
            value = resolver(name)
        except TicraftError as exc:
            raise self.fail(f"{kind} {name!r}: {exc}", col) from exc
        except (KeyError, LookupError, FileNotFoundError) as exc:
            raise self.fail(f"unknown {kind} {name!r} ({exc})", col) from exc
        if not isinstance(value, Concept):
            raise self.fail(f"{kind} {name!r} did not resolve to vectors", col)
        self.cache[(kind, name)] = value
        return value

    def apply(self, fn: Callable[[], Value], col: int) -> Value:
        try:
            out = fn()
        except ExprError:
            raise
        except VectorCountError as exc:  # Concept's message names Python methods: name this language's functions
            raise self.fail(str(count_error(exc.tokens, exc.counts, COUNT_FIX)), col) from exc
        except TicraftError as exc:
            raise self.fail(str(exc), col) from exc
        except ZeroDivisionError:
            raise self.fail("division by zero", col) from None
        except OverflowError:
            raise self.fail("number too large", col) from None
        except TypeError as exc:  # pragma: no cover - every operand mix is checked before
            raise self.fail(f"unsupported operands ({exc})", col) from None
        if out is NotImplemented:  # pragma: no cover - Concept's operators raise instead
            raise self.fail("unsupported operands", col)
        return out

    def binary(self, op: str, a: Value, b: Value, col: int) -> Value:
        # The very Python operators: results equal what a script writes with Concept's operators. Python itself
        # refuses number ± concept and number / concept (TypeError): say so in words.
        if not isinstance(a, Concept) and isinstance(b, Concept):
            if op in ("+", "-"):
                raise self.fail(f"cannot {op} a number and a concept; scale a concept with * or / instead", col)
            if op == "/":
                raise self.fail("cannot divide a number by a concept; divide a concept by a number", col)
        x: Any = a  # a number or a concept: the refused pairs were ruled out above
        if op == "+":
            return self.apply(lambda: x + b, col)
        if op == "-":
            return self.apply(lambda: x - b, col)
        if op == "*":
            return self.apply(lambda: x * b, col)
        return self.apply(lambda: x / b, col)

    def call(self, node: Call) -> Value:
        spec = FUNCTIONS[node.name]
        args = [self.evaluate_node(a) for a in node.args]
        if len(args) < spec.min_args or (spec.max_args is not None and len(args) > spec.max_args):
            raise self.fail(f"{spec.signature} takes {spec.arity()}, got {len(args)}", node.col)
        for i, v in enumerate(args):
            if spec.kind(i) == "c" and not isinstance(v, Concept):
                raise self.fail(f"argument {i + 1} of {spec.signature} must be a concept or word, not a number",
                                _arg_col(node, i))
            if spec.kind(i) == "n" and isinstance(v, Concept):
                raise self.fail(f"argument {i + 1} of {spec.signature} must be a number", _arg_col(node, i))
        return self.apply(lambda: _CALLS[node.name](self, node, args), node.col)


def _arg_col(node: Call, i: int) -> int:
    return _first_col(node.args[i])


def _first_col(node: Node) -> int:
    while isinstance(node, Chain):
        node = node.first
    return node.col


def _as_index(ev: _Evaluator, node: Call, value: Value, what: str) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value)):
        raise ev.fail(f"{what} must be a whole number, got {value!r}", _arg_col(node, 1))
    return int(value)


def _mean(ev: _Evaluator, node: Call, args: list) -> Concept:
    if len(args) == 1:
        return args[0].mean_vector()
    # exactly (a + b + ...) / n with Concept's operators
    return reduce(lambda x, y: x + y, args) / len(args)


_CALLS: dict[str, Callable[[_Evaluator, Call, list], Value]] = {
    "slerp": lambda ev, n, a: slerp(a[0], a[1], a[2]),
    "lerp": lambda ev, n, a: lerp(a[0], a[1], a[2]),
    "norm": lambda ev, n, a: a[0].normalized(a[1] if len(a) > 1 else None),
    "vec": lambda ev, n, a: a[0][_as_index(ev, n, a[1], "the vector index")],
    "concat": lambda ev, n, a: concat(*a),
    "mean": _mean,
    "pad": lambda ev, n, a: match_count(a[0], _as_index(ev, n, a[1], "the vector count"), "pad"),
    "merge": lambda ev, n, a: match_count(a[0], _as_index(ev, n, a[1], "the vector count"), "merge"),
}


def evaluate(
    source: str | Node,
    *,
    concepts: ConceptResolver | None = None,
    words: WordResolver | None = None,
    text: str | None = None,
) -> Value:
    """Evaluate an expression (or a parsed tree) to a number or a :class:`Concept`.

    Args:
        source: the expression text, or a tree from :func:`parse` (then pass ``text`` for error messages).
        concepts: ``"<token>" -> Concept`` (e.g. ``library.get``); errors become :class:`ExprError`.
        words: ``"word" -> Concept`` (e.g. ``lambda w: word_concept(backbone, w)``).

    >>> import torch
    >>> a = Concept("<a>", {"clip": torch.ones(1, 2)}, family="toy")
    >>> evaluate("-(2 * <a>) / 4", concepts={"<a>": a}.__getitem__).vectors["clip"].tolist()
    [[-0.5, -0.5]]
    """
    src = source if isinstance(source, str) else (text or "")
    tree = parse(source) if isinstance(source, str) else source
    return _Evaluator(src, concepts, words).evaluate_node(tree)


def mix(
    source: str,
    *,
    concepts: ConceptResolver | None = None,
    words: WordResolver | None = None,
    token: str | None = None,
) -> Concept:
    """Evaluate ``source`` to a concept named ``token`` (metadata records the expression).

    A result that is a plain number is an :class:`ExprError`: there is nothing to save.
    """
    value = evaluate(source, concepts=concepts, words=words)
    if not isinstance(value, Concept):
        raise ExprError(f"the expression gives the number {value!r}, not a concept", source, 0)
    out = keep_norm(value)  # a mix of directional concepts stays on their norm
    out = out.replace(token=token) if token else out
    out.meta = {**{k: v for k, v in out.meta.items() if k != "derived"}, "expression": source, "derived": "mix"}
    return out


__all__ = [
    "COUNT_FIX",
    "Chain",
    "Call",
    "ConceptRef",
    "ExprError",
    "FUNCTIONS",
    "Neg",
    "Num",
    "Word",
    "concept_tokens",
    "evaluate",
    "mix",
    "parse",
    "tokenize",
    "words",
]
