"""Which concepts a ``train-many`` folder holds: one sub-folder of pictures per concept, optional ``concepts.toml``.

A folder like::

    catalogue/
      concepts.toml          # optional
      red-mug/  a.png b.png c.png
      blue-vase/ 1.jpg 2.jpg 3.jpg
      watercolour/ ...

gives one concept per sub-folder (hidden folders are skipped), in name order. Without ``concepts.toml``
a concept's token is ``<folder-name>`` and its initializer is the folder name's words (``red mug``).
``concepts.toml`` may set, for all concepts (``[defaults]``) or one (``[concepts.<folder>]``):

.. code-block:: toml

    [defaults]
    init = "object"        # initializer word(s)
    style = false          # style templates instead of object templates

    [concepts.red-mug]
    token = "<my-mug>"
    init = "mug"
    vectors = 2            # vectors per text encoder
    seed = 3

    [concepts.watercolour]
    style = true
    init = "painting"

Options given in Python or on the command line (``init=``/``--init``, ``style=``/``--style``) are the
defaults that ``[defaults]`` and the per-concept tables override.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ticraft.errors import TicraftError

SPEC_FILE = "concepts.toml"
#: Keys a concept's table may set (``[defaults]`` takes the same, except ``token``).
CONCEPT_KEYS = ("token", "init", "style", "vectors", "seed", "tags")


class ManySpecError(TicraftError):
    """A train-many folder or its concepts.toml cannot be used."""


@dataclass
class ConceptSpec:
    """One concept of a train-many run.

    >>> ConceptSpec("red-mug", Path("cat/red-mug")).token
    '<red-mug>'
    """

    name: str
    """The sub-folder's name (the key in ``concepts.toml``)."""
    images: Path | Any
    """Its pictures: a folder, or anything :func:`ticraft.training.data.load_images` accepts."""
    token: str = ""
    init: str = ""
    style: bool | None = None
    """Style templates (``None``: the run's ``style``, off unless given; a resumed run's, its checkpoint's)."""
    vectors: int | None = None
    """Vectors per text encoder (``None``: the run's ``num_vectors``)."""
    seed: int | None = None
    """Random seed (``None``: the run's ``seed``)."""
    tags: list[str] = field(default_factory=list)
    init_given: bool = field(default=False, init=False, repr=False, compare=False)
    """Whether ``init`` was given (else it is the name's words, and a run's ``init=`` may replace it)."""

    def __post_init__(self) -> None:
        if not self.token:
            self.token = default_token(self.name)
        self.init_given = bool(self.init)
        if not self.init:
            self.init = " ".join(re.split(r"[\s_\-.]+", self.name)).strip() or self.name

    def options(self) -> dict[str, Any]:
        """The TrainConfig fields this concept overrides."""
        out: dict[str, Any] = {}
        if self.style is not None:
            out["style"] = self.style
        if self.vectors is not None:
            out["num_vectors"] = self.vectors
        if self.seed is not None:
            out["seed"] = self.seed
        return out


def with_defaults(spec: ConceptSpec, *, init: str | None = None, style: bool | None = None) -> ConceptSpec:
    """``spec`` with a run's ``init``/``style`` where it leaves them unset — what a folder's concepts get from
    ``train_many(folder, init=…, style=…)``, for a list of specs.

    >>> with_defaults(ConceptSpec("mug", "pics"), init="cup", style=True).init
    'cup'
    >>> with_defaults(ConceptSpec("mug", "pics", init="red mug"), init="cup").init
    'red mug'
    """
    changes: dict[str, Any] = {}
    if init is not None and not spec.init_given:
        changes["init"] = init
    if style is not None and spec.style is None:
        changes["style"] = style
    return replace(spec, **changes) if changes else spec


def default_token(name: str) -> str:
    """``<name>`` with runs of spaces and brackets turned into ``-`` (and no ``_<digit>`` ending).

    >>> default_token("red mug"), default_token("sku_12")
    ('<red-mug>', '<sku_12-x>')
    """
    inner = re.sub(r"[\s<>]+", "-", name).strip("-") or "concept"
    if re.search(r"_\d+$", inner):  # "<a_1>" would read as the second vector of "<a>"
        inner += "-x"
    return f"<{inner}>"


def discover_concepts(folder: str | os.PathLike, *, init: str | None = None, style: bool | None = None
                      ) -> list[ConceptSpec]:
    """The concepts of a train-many folder (see the module docstring), in sub-folder name order.

    Raises :class:`ManySpecError` for a missing folder, no sub-folders, a malformed ``concepts.toml``
    (unknown keys, a table naming no sub-folder) or two concepts with the same token.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ManySpecError(f"no such folder: {root} (train-many wants a folder with one sub-folder of pictures "
                            f"per concept)")
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise ManySpecError(f"{root} has no sub-folders; put each concept's pictures in a sub-folder of its own")
    table = _read_spec_file(root / SPEC_FILE)
    defaults = _checked(table.get("defaults", {}), "[defaults]", root / SPEC_FILE, allow_token=False)
    per = table.get("concepts", {})
    if not isinstance(per, dict):
        raise ManySpecError(f"{root / SPEC_FILE}: 'concepts' must be a table of [concepts.<folder>] tables")
    names = {p.name for p in subs}
    unknown = [k for k in per if k not in names]
    if unknown:
        raise ManySpecError(f"{root / SPEC_FILE} names [concepts.{unknown[0]}], but {root} has no sub-folder "
                            f"{unknown[0]!r}")
    base: dict[str, Any] = {}
    if init is not None:
        base["init"] = init
    if style is not None:
        base["style"] = style
    specs = []
    for p in subs:
        own = _checked(per.get(p.name, {}), f"[concepts.{p.name}]", root / SPEC_FILE, allow_token=True)
        specs.append(ConceptSpec(name=p.name, images=p, **{**base, **defaults, **own}))
    check_unique(specs)
    return specs


def check_unique(specs: list[ConceptSpec]) -> None:
    """Two concepts may not share a token (their vectors would overwrite each other)."""
    seen: dict[str, str] = {}
    for s in specs:
        if s.token in seen:
            raise ManySpecError(f"concepts {seen[s.token]!r} and {s.name!r} both use the token {s.token}; give one "
                                f"another token in {SPEC_FILE}")
        seen[s.token] = s.name


def _read_spec_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManySpecError(f"{path} is not valid TOML ({exc})") from exc
    extra = [k for k in data if k not in ("defaults", "concepts")]
    if extra:
        raise ManySpecError(f"{path}: unknown table {extra[0]!r} (use [defaults] and [concepts.<folder>])")
    return data


def _checked(table: Any, where: str, path: Path, *, allow_token: bool) -> dict[str, Any]:
    """Validate one table's keys and value types; return it as ConceptSpec keyword arguments."""
    if not isinstance(table, dict):
        raise ManySpecError(f"{path}: {where} must be a table")
    allowed = CONCEPT_KEYS if allow_token else tuple(k for k in CONCEPT_KEYS if k != "token")
    for key, value in table.items():
        if key not in allowed:
            raise ManySpecError(f"{path}: unknown key {key!r} in {where} (allowed: {', '.join(allowed)})")
        kind: type = {"token": str, "init": str, "style": bool, "vectors": int, "seed": int, "tags": list}[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ManySpecError(f"{path}: {key} in {where} must be a {kind.__name__}, got {value!r}")
        if isinstance(value, str) and not value.strip():
            raise ManySpecError(f"{path}: {key} in {where} is empty")
        if isinstance(value, list) and not all(isinstance(t, str) for t in value):
            raise ManySpecError(f"{path}: tags in {where} must be a list of strings")
    return dict(table)
