"""What a listing knows about a concept, without loading its vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ticraft.errors import TicraftError
from ticraft.library._common import EMBEDDING, LibraryError
from ticraft.library.naming import normalize_tags, validate_token


def _opt_str(rec: Mapping[str, Any], key: str) -> str | None:
    value = rec.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Entry:
    """What a listing knows about one concept, without loading its vectors.

    ``folder`` is the concept's folder; ``tags`` keep their spelling; ``steps`` is ``None`` for
    concepts that did not come from a ticraft training run; ``method`` says how the vectors were
    made (``ticraft`` training, ``mix``, or the layout they were imported from); ``notes`` is the
    free text set with ``Library.set_meta(token, notes=...)``.
    """

    token: str
    family: str | None
    num_vectors: int
    dims: dict[str, int]
    tags: tuple[str, ...]
    steps: int | None
    created: str
    folder: Path
    sha256: str
    initializer: str | None = None
    source: str | None = None
    updated: str | None = None
    method: str | None = None
    notes: str | None = None

    def __hash__(self) -> int:  # dims is a dict, so hash the identity fields
        return hash((self.token, self.folder, self.sha256))

    @property
    def embedding(self) -> Path:
        """Path of the canonical ``embedding.safetensors``."""
        return self.folder / EMBEDDING

    @property
    def dims_label(self) -> str:
        """``"768"`` for one encoder, ``"clip_l 768 + clip_g 1280"`` for several."""
        if len(self.dims) == 1:
            return str(next(iter(self.dims.values())))
        return " + ".join(f"{k} {d}" for k, d in self.dims.items())

    def matches(self, text: str) -> bool:
        """Case-insensitive substring match on token, tags, family, initializer, source and notes."""
        needle = text.casefold()
        hay = [self.token, *self.tags, self.family or "", self.initializer or "", self.source or "", self.notes or ""]
        return any(needle in h.casefold() for h in hay)

    def to_record(self) -> dict[str, Any]:
        """The JSON record the manifest keeps (folder stored by name)."""
        return {
            "token": self.token,
            "family": self.family,
            "num_vectors": self.num_vectors,
            "dims": self.dims,
            "tags": list(self.tags),
            "steps": self.steps,
            "created": self.created,
            "updated": self.updated,
            "folder": self.folder.name,
            "sha256": self.sha256,
            "initializer": self.initializer,
            "source": self.source,
            "method": self.method,
            "notes": self.notes,
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], folder: Path) -> "Entry":
        """Build from a meta.json or manifest record, validating every field (LibraryError if malformed)."""
        try:
            token = validate_token(rec["token"])
            dims = {str(k): int(v) for k, v in dict(rec["dims"]).items()}
            num = int(rec["num_vectors"])
            tags = tuple(normalize_tags(rec.get("tags") or []))
            steps = rec.get("steps")
            family = rec.get("family") or None
            if num < 1 or not dims or any(d < 1 for d in dims.values()):
                raise ValueError("vector count and widths must be positive")
            if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
                raise ValueError(f"steps must be an integer, got {steps!r}")
            if family is not None and not isinstance(family, str):
                raise ValueError("family must be a string")
        except (KeyError, TypeError, ValueError, TicraftError) as exc:
            raise LibraryError(f"malformed metadata ({exc.__class__.__name__}: {exc})") from exc
        return cls(
            token=token,
            family=family,
            num_vectors=num,
            dims=dims,
            tags=tags,
            steps=steps,
            created=_opt_str(rec, "created") or "",
            folder=folder,
            sha256=_opt_str(rec, "sha256") or "",
            initializer=_opt_str(rec, "initializer"),
            source=_opt_str(rec, "source"),
            updated=_opt_str(rec, "updated"),
            method=_opt_str(rec, "method"),
            notes=_opt_str(rec, "notes"),
        )


def filter_entries(
    entries: Iterable[Entry], text: str | None = None, tag: str | None = None, family: str | None = None
) -> list[Entry]:
    """The entries matching every given filter (see :meth:`Library.search`).

    >>> e = Entry("<a>", "toy", 1, {"clip": 8}, ("style",), None, "", Path("a"), "")
    >>> [x.token for x in filter_entries([e], tag="STYLE")], filter_entries([e], family="sd1")
    (['<a>'], [])
    """
    out = list(entries)
    if text:
        out = [e for e in out if e.matches(text)]
    if tag:
        out = [e for e in out if tag.casefold() in {t.casefold() for t in e.tags}]
    if family:
        out = [e for e in out if (e.family or "").casefold() == family.casefold()]
    return out


def _summary_fields(concept_meta: Mapping[str, Any]) -> dict[str, Any]:
    """steps / initializer / source / method / notes pulled out of a concept's meta for listing."""
    steps = concept_meta.get("steps", concept_meta.get("step"))
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    init = concept_meta.get("initializer")
    src = concept_meta.get("source")
    method = (
        concept_meta.get("method")
        or concept_meta.get("trainer")
        or ("mix" if "expression" in concept_meta else concept_meta.get("source_layout"))
    )
    notes = concept_meta.get("notes")
    return {
        "method": method if isinstance(method, str) else None,
        "notes": notes if isinstance(notes, str) else None,
        "steps": steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
        "initializer": init if isinstance(init, str) else (None if init is None else str(init)),
        "source": src if isinstance(src, str) else (None if src is None else str(src)),
    }
