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
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass
from functools import reduce
from typing import Any, Callable, Literal, Union

from ticraft.concept import Concept, concat, keep_norm, lerp, match_count, slerp
from ticraft.errors import TicraftError

MAX_LENGTH = 10_000  # characters; longer input is refused before lexing
MAX_NUMBER = 1e30  # larger literals only ever overflow float32 vectors (max ~3.4e38) to inf
MAX_DEPTH = 64  # nesting of parentheses, unary signs and calls (keeps the parser's recursion bounded)

Value = Union[int, float, Concept]


class ExprError(TicraftError):
    """A syntax or evaluation error in a mix expression, with the 0-based ``column`` it refers to."""

    def __init__(self, message: str, source: str, column: int) -> None:
        self.message = message
        self.source = source
        self.column = max(0, min(column, len(source)))
        shown = re.sub(r"\s", " ", source)  # tabs/newlines would misplace the caret
        caret = self.column
        if len(shown) > 100:  # a window around the column, not the whole of a 10,000-character input
            start = max(0, caret - 50)
            head, tail = ("…" if start else ""), ("…" if start + 100 < len(shown) else "")
            shown, caret = head + shown[start:start + 100] + tail, caret - start + len(head)
        super().__init__(f"{message} (column {self.column + 1})\n  {shown}\n  {' ' * caret}^")


# ----------------------------------------------------------------------------------------------------- lexing
@dataclass(frozen=True)
class Token:
    kind: Literal["num", "concept", "name", "string", "op", "end"]
    text: str
    col: int
    value: int | float | None = None


_NUMBER = re.compile(r"(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[^\W\d]\w*")
_CONCEPT = re.compile(r"<[^<>\s]+>")
_OPS = {"+": "+", "-": "-", "*": "*", "/": "/", "(": "(", ")": ")", ",": ",", "\u2212": "-", "\u00d7": "*",
        "\u00f7": "/"}
_HINTS = {
    ".": "attribute access is not part of the language",
    "[": "subscripts are not part of the language; use vec(a, i)",
    "]": "subscripts are not part of the language; use vec(a, i)",
    "=": "assignments are not part of the language",
    ":": "':' is not part of the language (no lambdas, slices or annotations)",
    "@": "'@' is not part of the language",
    "%": "'%' is not part of the language",
    "^": "'^' is not part of the language",
    "{": "braces are not part of the language",
    "}": "braces are not part of the language",
}


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, or raise :class:`ExprError` at the first character that fits none."""
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression too long ({len(source)} characters; the limit is {MAX_LENGTH})", source, 0)
    out: list[Token] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if m := _NUMBER.match(source, i):
            out.append(Token("num", m.group(), i, _number(m.group(), source, i)))
            i = m.end()
            if i < len(source) and (source[i].isalnum() or source[i] in "_."):
                raise ExprError(f"malformed number {source[m.start():i + 1]!r}", source, i)
            continue
        if m := _NAME.match(source, i):
            out.append(Token("name", m.group(), i))
            i = m.end()
            continue
        if ch == "<":
            m = _CONCEPT.match(source, i)
            if not m:
                raise ExprError("unterminated concept token: write it as <name> (no spaces inside)", source, i)
            out.append(Token("concept", m.group(), i))
            i = m.end()
            continue
        if ch in "\"'":
            end = source.find(ch, i + 1)
            if end < 0:
                raise ExprError(f"unterminated quoted word: add the closing {ch}", source, i)
            if not source[i + 1:end].strip():
                raise ExprError("an empty quoted word", source, i)
            out.append(Token("string", source[i + 1:end], i))
            i = end + 1
            continue
        if ch in _OPS:
            out.append(Token("op", _OPS[ch], i))
            i += 1
            continue
        raise ExprError(_HINTS.get(ch, f"unexpected character {ch!r}"), source, i)
    out.append(Token("end", "", len(source)))
    return out


def _number(text: str, source: str, col: int) -> int | float:
    # Integers stay ints, as Python literals do, so number-only sub-expressions match Python exactly.
    try:
        value = int(text) if text.isdigit() else float(text)
    except ValueError:  # ints beyond Python's digit limit
        raise ExprError("number too long", source, col) from None
    # 1e999999 reads as inf in Python; a concept scaled by it is all inf/NaN, so refuse it here, by name.
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ExprError(f"number {text} is too large (the limit is {MAX_NUMBER:g})", source, col)
    return value


# ---------------------------------------------------------------------------------------------------- the tree
@dataclass(frozen=True)
class Num:
    value: int | float
    col: int


@dataclass(frozen=True)
class ConceptRef:
    token: str
    col: int


@dataclass(frozen=True)
class Word:
    text: str
    col: int


@dataclass(frozen=True)
class Neg:
    operand: "Node"
    col: int
    plus: bool = False  # unary "+": kept so the tree prints back faithfully; evaluates to the operand


@dataclass(frozen=True)
class Chain:
    """``first op1 x1 op2 x2 …`` of one precedence level, evaluated left to right without recursion."""

    first: "Node"
    rest: tuple[tuple[str, "Node", int], ...]  # (operator, operand, operator column)


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple["Node", ...]
    col: int


Node = Union[Num, ConceptRef, Word, Neg, Chain, Call]


# --------------------------------------------------------------------------------------------------- functions
@dataclass(frozen=True)
class Function:
    """A whitelisted function: argument kinds (``c`` concept or word, ``n`` number; the last kind repeats)."""

    kinds: str
    min_args: int
    max_args: int | None  # None: any number
    signature: str
    doc: str

    def kind(self, i: int) -> str:
        return self.kinds[min(i, len(self.kinds) - 1)]

    def arity(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args} argument" + ("s" if self.min_args != 1 else "")
        if self.min_args == self.max_args:
            return f"{self.min_args} argument" + ("s" if self.min_args != 1 else "")
        return f"{self.min_args} to {self.max_args} arguments"


FUNCTIONS: dict[str, Function] = {
    "slerp": Function("ccn", 3, 3, "slerp(a, b, t)", "spherical interpolation, t=0 gives a, t=1 gives b"),
    "lerp": Function("ccn", 3, 3, "lerp(a, b, t)", "linear interpolation"),
    "norm": Function("cn", 1, 2, "norm(a[, x])", "rescale each vector to norm x (default: the mean norm)"),
    "vec": Function("cn", 2, 2, "vec(a, i)", "vector i of a (0-based; negative counts from the end)"),
    "concat": Function("c", 1, None, "concat(a, b, ...)", "stack the vectors of several concepts"),
    "mean": Function("c", 1, None, "mean(a[, b, ...])",
                     "mean(a): a's vectors averaged into one; mean(a, b, ...): (a + b + ...) / n"),
    "pad": Function("cn", 2, 2, "pad(a, n)", "repeat the last vector (or truncate) to n vectors"),
    "merge": Function("cn", 2, 2, "merge(a, n)", "resample the vectors to n by linear interpolation"),
}


# ------------------------------------------------------------------------------------------------------ parsing
class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.pos = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def error(self, message: str, col: int | None = None) -> ExprError:
        return ExprError(message, self.source, self.tok.col if col is None else col)

    def describe(self, t: Token) -> str:
        return "the expression ends" if t.kind == "end" else f"found {t.text!r}"

    def take(self, text: str) -> Token:
        t = self.tok
        if t.kind != "op" or t.text != text:
            raise self.error(f"expected {text!r} but {self.describe(t)}")
        self.pos += 1
        return t

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("empty expression: write e.g. 0.7*<cat-toy> + 0.3*painting")
        node = self.expr()
        if self.tok.kind != "end":
            t = self.tok
            if t.text == "*" and self.tokens[self.pos - 1].text == "*":
                raise self.error("powers (**) are not part of the language")
            if t.text == "(":
                raise self.error("only the functions " + ", ".join(FUNCTIONS) + " can be called")
            raise self.error(f"expected an operator (+ - * /) but {self.describe(t)}")
        return node

    def expr(self) -> Node:
        return self.chain(("+", "-"), self.term)

    def term(self) -> Node:
        return self.chain(("*", "/"), self.unary)

    def chain(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        first = operand()
        rest: list[tuple[str, Node, int]] = []
        while self.tok.kind == "op" and self.tok.text in ops:
            op = self.tok
            self.pos += 1
            if self.tok.kind == "op" and op.text == "*" and self.tok.text == "*":
                raise self.error("powers (**) are not part of the language", op.col)
            rest.append((op.text, operand(), op.col))
        return first if not rest else Chain(first, tuple(rest))

    def unary(self) -> Node:
        t = self.tok
        if t.kind == "op" and t.text in ("-", "+"):
            self.pos += 1
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return Neg(operand, t.col, plus=t.text == "+")
        return self.primary()

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.pos += 1
            assert t.value is not None
            return Num(t.value, t.col)
        if t.kind == "concept":
            self.pos += 1
            return ConceptRef(t.text, t.col)
        if t.kind == "string":
            self.pos += 1
            return Word(t.text, t.col)
        if t.kind == "name":
            return self.name()
        if t.kind == "op" and t.text == "(":
            self.pos += 1
            self.enter()
            inner = self.expr()
            self.depth -= 1
            self.take(")")
            return inner
        raise self.error(f"expected a number, concept, word or '(' but {self.describe(t)}")

    def name(self) -> Node:
        t = self.tok
        if t.text.startswith("__"):
            raise self.error(f"names starting with '__' are not part of the language ({t.text!r})")
        is_call = self.tokens[self.pos + 1].kind == "op" and self.tokens[self.pos + 1].text == "("
        if not is_call:
            if keyword.iskeyword(t.text):
                raise self.error(f"{t.text!r} is a Python keyword, not part of the language; "
                                 f"to use the word, quote it: '{t.text}'")
            self.pos += 1
            return Word(t.text, t.col)
        if t.text not in FUNCTIONS:
            raise self.error(f"unknown function {t.text!r}; the functions are " +
                             ", ".join(f.signature for f in FUNCTIONS.values()))
        self.pos += 2
        self.enter()
        args: list[Node] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            args.append(self.expr())
            while self.tok.kind == "op" and self.tok.text == ",":
                self.pos += 1
                args.append(self.expr())
        self.depth -= 1
        self.take(")")
        return Call(t.text, tuple(args), t.col)


def parse(source: str) -> Node:
    """Parse an expression into its tree, or raise :class:`ExprError` pointing at the column.

    >>> parse("2 * <a>")
    Chain(first=Num(value=2, col=0), rest=(('*', ConceptRef(token='<a>', col=4), 2),))
    """
    return _Parser(source).parse()


def concept_tokens(node: Node) -> list[str]:
    """Concept tokens the tree refers to (first-appearance order), e.g. to load them before evaluating."""
    return list(dict.fromkeys(_walk(node, ConceptRef)))


def words(node: Node) -> list[str]:
    """Vocabulary words the tree refers to (first-appearance order); none means no model is needed."""
    return list(dict.fromkeys(_walk(node, Word)))


def _walk(node: Node, kind: type) -> list[str]:
    out: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ConceptRef) and kind is ConceptRef:
            out.append(n.token)
        elif isinstance(n, Word) and kind is Word:
            out.append(n.text)
        elif isinstance(n, Neg):
            stack.append(n.operand)
        elif isinstance(n, Chain):
            stack.extend(reversed([n.first, *[x for _, x, _ in n.rest]]))
        elif isinstance(n, Call):
            stack.extend(reversed(n.args))
    return out


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
