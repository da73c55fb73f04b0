"""The tree, the whitelisted functions and the recursive-descent parser of the ``ticraft mix`` language.

Split out of :mod:`ticraft.analysis.expr`, which re-exports every name here.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from typing import Callable, Union

from ticraft.analysis.expr_lexer import MAX_DEPTH, ExprError, Token, tokenize
from ticraft.wording import counted


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
            return f"at least {counted(self.min_args, 'argument')}"
        if self.min_args == self.max_args:
            return counted(self.min_args, "argument")
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

