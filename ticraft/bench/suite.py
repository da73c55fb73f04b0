"""The concept suite: toy-world concepts with fixed seeds and image sets, each judged exactly by the toy judge.

* the two hidden words the shipped tokenizer does not know — the object ``zorb`` and the style ``glimmic`` — whose
  true rows (``tests/fixtures/toyworld_hidden.safetensors``) are the reference points;
* :data:`COMPOSITES` — 16 made-up concepts that pack 3–4 attributes (shape + colour + texture, or + a style) into one
  new token, spread so every shape, colour, texture and style occurs and no value dominates;
* few-shot variants of each (1, 2 and 4 pictures: the first k of the same 4 renders).

>>> [c.name for c in build_suite(quick=True)]
['zorb', 'glimmic', 'c01']
>>> composite("c03").identity
{'shape': 'triangle', 'colour': 'green', 'texture': 'plain', 'style': 'outline'}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Sequence

from ticraft.errors import TicraftError

if TYPE_CHECKING:
    from ticraft.training.data import TrainImage


class BenchError(TicraftError):
    """The benchmark cannot run as asked (unknown method or concept, empty suite, impossible ladder)."""


#: (shape, colour, texture, style) of the 16 composite concepts. Shapes cycle through all 7, colours through all 10,
#: each texture and each style appears; untextured styles (outline, pixelated) carry texture "plain".
COMPOSITES: tuple[tuple[str, str, str, str], ...] = (
    ("circle", "red", "striped", "none"),
    ("square", "orange", "dotted", "none"),
    ("triangle", "green", "plain", "outline"),
    ("star", "blue", "plain", "pixelated"),
    ("cross", "purple", "striped", "glimmic"),
    ("moon", "pink", "dotted", "none"),
    ("diamond", "yellow", "plain", "none"),
    ("circle", "cyan", "dotted", "glimmic"),
    ("square", "black", "plain", "outline"),
    ("triangle", "white", "striped", "none"),
    ("star", "purple", "dotted", "none"),
    ("cross", "yellow", "plain", "pixelated"),
    ("moon", "red", "plain", "outline"),
    ("diamond", "green", "striped", "none"),
    ("circle", "black", "striped", "none"),
    ("square", "pink", "plain", "glimmic"),
)
SHOTS_MAX = 4


@dataclass(frozen=True)
class SuiteConcept:
    """One concept of the suite: what its pictures share (``identity``), how they are drawn, and how it is learned.

    ``kind`` is ``object`` (a noun: "a photo of a S*") or ``style`` (a style word, learned from captioned renders
    with S* in place of the style). ``hidden`` names the hidden word whose true row is the reference point.
    """

    name: str
    kind: str
    identity: dict[str, str]
    init: str
    seed: int
    shots: int = SHOTS_MAX
    hidden: str | None = None
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """Unique name including the number of pictures (``zorb`` or ``zorb@1``)."""
        return self.name if self.shots == SHOTS_MAX else f"{self.name}@{self.shots}"

    @property
    def token(self) -> str:
        return f"<bench-{self.key.replace('@', '-')}>"

    def with_shots(self, shots: int) -> "SuiteConcept":
        if not 1 <= shots <= SHOTS_MAX:
            raise BenchError(f"a concept is learned from 1 to {SHOTS_MAX} pictures, not {shots}")
        return replace(self, shots=shots)

    def attributes(self) -> list[object]:
        """The attributes of the first ``shots`` of this concept's 4 pictures (deterministic from ``seed``)."""
        import numpy as np

        from ticraft.toyworld.render import sample_attributes

        rng = np.random.default_rng(self.seed)
        if self.kind == "style":
            out = [sample_attributes(rng, style=self.identity["style"]) for _ in range(SHOTS_MAX)]
        else:
            fixed: dict[str, Any] = dict(self.identity)
            out = [sample_attributes(rng, None, **fixed) for _ in range(SHOTS_MAX)]
        return list(out[: self.shots])

    def train_images(self) -> list["TrainImage"]:
        """The training pictures as :class:`~ticraft.training.data.TrainImage` (style: captioned with ``{}``)."""
        from ticraft.toyworld.render import full_prompt, render
        from ticraft.training.data import TrainImage

        out = []
        for i, a in enumerate(self.attributes()):
            img = render(a)  # type: ignore[arg-type]
            caption = None
            if self.kind == "style":
                caption = full_prompt(a).replace(f" in {self.identity['style']} style", " in {} style")  # type: ignore[arg-type]
            digest = hashlib.sha256(img.tobytes() + (caption or "").encode()).hexdigest()
            out.append(TrainImage(name=f"{self.key}-{i}", image=img, sha256=digest, caption=caption))
        return out


def hidden_object() -> SuiteConcept:
    from ticraft.toyworld.vocab import HIDDEN_OBJECTS

    z = HIDDEN_OBJECTS["zorb"]
    ident = {"shape": z.shape, "colour": z.colour, "texture": z.texture, "style": "none"}
    return SuiteConcept("zorb", "object", ident, "shape", seed=0, hidden="zorb",
                        description=f"hidden object word ({z.colour} {z.texture} {z.shape})", tags=("hidden",))


def hidden_style() -> SuiteConcept:
    from ticraft.toyworld.vocab import HIDDEN_STYLE

    return SuiteConcept("glimmic", "style", {"style": HIDDEN_STYLE}, "style", seed=2, hidden=HIDDEN_STYLE,
                        description="hidden style word (a frame in the object's colour)", tags=("hidden",))


def composite(name: str) -> SuiteConcept:
    """Composite concept ``c01`` … ``c16`` (see :data:`COMPOSITES`)."""
    try:
        i = int(name.lstrip("c")) - 1
        if not name.startswith("c") or i < 0:
            raise ValueError
        shape, colour, texture, style = COMPOSITES[i]
    except (ValueError, IndexError):
        raise BenchError(f"unknown suite concept {name!r}; composites are c01 … c{len(COMPOSITES):02d}") from None
    ident = {"shape": shape, "colour": colour, "texture": texture, "style": style}
    desc = " ".join(w for w in (colour, texture if texture != "plain" else "", shape) if w)
    desc += f" in {style} style" if style != "none" else ""
    return SuiteConcept(f"c{i + 1:02d}", "object", ident, "shape", seed=100 + i, description=desc,
                        tags=("composite",))


def all_concepts() -> list[SuiteConcept]:
    """Every base concept (4 pictures each): the two hidden words, then the composites."""
    return [hidden_object(), hidden_style(), *(composite(f"c{i + 1:02d}") for i in range(len(COMPOSITES)))]


def build_suite(*, quick: bool = False, names: Sequence[str] | None = None,
                shots: Sequence[int] = (SHOTS_MAX,)) -> list[SuiteConcept]:
    """The concepts to run: ``names`` (``zorb``, ``glimmic``, ``c01``…, ``all``), else the quick or full set,
    each at every number of pictures in ``shots``."""
    if names is None:
        names = ["zorb", "glimmic", "c01"] if quick else ["all"]
    base = {c.name: c for c in all_concepts()}
    chosen: list[SuiteConcept] = []
    for n in names:
        n = n.strip()
        if n == "all":
            chosen += list(base.values())
        elif n in base:
            chosen.append(base[n])
        elif n:
            composite(n)  # raises the clear error
    chosen = list({c.name: c for c in chosen}.values())
    if not chosen or not shots:
        raise BenchError("the suite is empty: name at least one concept (zorb, glimmic, c01 … c16 or all) and one "
                         "picture count")
    return [c.with_shots(k) for k in shots for c in chosen]
