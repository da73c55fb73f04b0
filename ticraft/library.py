"""The on-disk concept library: a folder of learned concepts with a manifest, tags and search.

Layout::

    <root>/
      manifest.json            index of every entry (schema-versioned; rebuilt from the folders if lost)
      .lock                    file lock guarding every change
      <slug>/                  one folder per concept, named after a filesystem-safe slug of its token
        embedding.safetensors  canonical vectors: "clip" (sd1/sd2/toy) or "clip_l" + "clip_g" (sdxl);
                               header metadata (str→str): token, family, ticraft (the concept meta, JSON)
        meta.json              token, family, num_vectors, dims, tags, created, steps, initializer,
                               source, sha256, image hashes, the concept's meta
        images/                training images
        samples/               generated images
        loss.png, train.log    optional, written by the trainer

Safety: every file is written to a temp file and moved in with :func:`os.replace`; a new concept
folder is built under ``.tmp/`` and renamed in; a folder being replaced or removed is parked under
``.trash/`` until the manifest no longer lists it. A process killed at any point therefore leaves
a readable library, and the next change tidies up after it. A broken entry is reported by
:meth:`Library.problems` and skipped, never fatal.

Listing reads only ``manifest.json`` (plus a ``stat`` per folder to notice out-of-date records),
and this module imports neither torch nor any model code at the top, so ``ticraft library list``
is instant. Reading vectors (:meth:`Library.get`) imports torch on demand.

>>> import tempfile, torch
>>> from ticraft.concept import Concept
>>> lib = Library(tempfile.mkdtemp())
>>> entry = lib.add(Concept("<cat-toy>", {"clip": torch.ones(2, 8)}, family="toy"), tags=["object"])
>>> entry.token, entry.num_vectors, entry.folder.name
('<cat-toy>', 2, 'cat-toy')
>>> lib.get("cat-toy").vectors["clip"].shape
torch.Size([2, 8])
>>> [e.token for e in lib.search(tag="object")]
['<cat-toy>']
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from ticraft.errors import TicraftError

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported lazily
    from ticraft.concept import Concept

#: Version of manifest.json / meta.json / the embedding header this code writes.
SCHEMA = 1
MANIFEST = "manifest.json"
EMBEDDING = "embedding.safetensors"
META = "meta.json"
IMAGES = "images"
SAMPLES = "samples"
LOCK = ".lock"
TMP_DIR = ".tmp"
TRASH_DIR = ".trash"
ENV_VAR = "TICRAFT_LIBRARY"
LOCK_TIMEOUT_S = 30.0
MAX_TOKEN_LEN = 100
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
#: Encoder-key sets the canonical file may hold.
CANONICAL_KEYS = ({"clip"}, {"clip_l", "clip_g"})
#: Layouts :meth:`Library.export` can write, with the file suffix used when given a folder.
EXPORT_LAYOUTS = {"diffusers": ".safetensors", "a1111": ".pt", "kohya": ".safetensors"}
#: meta fields that only dedicated methods may change.
_RESERVED_META = frozenset({"token", "family", "tags", "num_vectors", "dims", "sha256", "created", "images", "schema"})
#: safetensors dtype names → the ``str(torch.dtype)`` that Concept.sha256 hashes.
_ST_DTYPES = {
    "F64": "torch.float64", "F32": "torch.float32", "F16": "torch.float16", "BF16": "torch.bfloat16",
    "F8_E4M3": "torch.float8_e4m3fn", "F8_E5M2": "torch.float8_e5m2",
}
_WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})
_BAD_TOKEN_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
_BAD_TAG_CHARS = re.compile(r"[\s,\x00-\x1f\x7f]")
_MAX_HEADER = 100 * 1024 * 1024


class LibraryError(TicraftError):
    """A library operation failed because of bad input or a broken library (message says which)."""


# --------------------------------------------------------------------------- tokens, tags, slugs
def bare_token(token: str) -> str:
    """The token without its angle brackets.

    >>> bare_token("<cat-toy>"), bare_token("cat-toy")
    ('cat-toy', 'cat-toy')
    """
    return token[1:-1] if len(token) >= 2 and token.startswith("<") and token.endswith(">") else token


def token_key(token: str) -> str:
    """Identity of a token inside a library: brackets and letter case do not matter.

    ``<Cat>``, ``<cat>`` and ``cat`` name the same entry (CLIP tokenizers lower-case prompts, and
    folder names must not collide on case-insensitive filesystems).

    >>> token_key("<Cat-Toy>") == token_key("cat-toy")
    True
    """
    return bare_token(token).casefold()


def validate_token(token: object) -> str:
    """Return ``token`` if it can name a concept, else raise :class:`LibraryError`.

    A token is a non-empty string without whitespace or control characters; ``<name>`` is the
    recommended form because it never collides with a real word.

    >>> validate_token("<cat-toy>")
    '<cat-toy>'
    >>> validate_token("cat toy")
    Traceback (most recent call last):
    ...
    ticraft.library.LibraryError: token 'cat toy' contains whitespace or control characters; try '<cat-toy>'
    """
    if not isinstance(token, str) or not token:
        raise LibraryError("a token must be a non-empty string such as '<cat-toy>'")
    if _BAD_TOKEN_CHARS.search(token):
        raise LibraryError(f"token {token!r} contains whitespace or control characters; try '<{slugify(token)}>'")
    if len(token) > MAX_TOKEN_LEN:
        raise LibraryError(f"token {token[:20]!r}… is {len(token)} characters long; the limit is {MAX_TOKEN_LEN}")
    if not bare_token(token):
        raise LibraryError("token '<>' has no name; use e.g. '<cat-toy>'")
    return token


def slugify(token: str) -> str:
    """A filesystem-safe folder name for ``token`` (lower-case ASCII letters, digits, ``.``, ``_``, ``-``).

    >>> slugify("<Cat Toy!>"), slugify("<猫>"), slugify("<con>")
    ('cat-toy', 'concept', 'con_')
    """
    text = unicodedata.normalize("NFKD", bare_token(token)).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9._-]+", "-", text).strip("-._")[:60].rstrip("-._") or "concept"
    if slug.split(".")[0] in _WINDOWS_RESERVED:
        slug += "_"
    return slug


def normalize_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Validate and de-duplicate tags (case-insensitively, first spelling wins, order kept).

    >>> normalize_tags(["style", " Style", "object"])
    ['style', 'object']
    """
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    seen: set[str] = set()
    for raw in tags:
        if not isinstance(raw, str) or not raw.strip():
            raise LibraryError(f"a tag must be a non-empty string, got {raw!r}")
        tag = raw.strip()
        if _BAD_TAG_CHARS.search(tag) or len(tag) > 64:
            raise LibraryError(f"tag {tag!r} must be at most 64 characters, without spaces or commas")
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    return out


# --------------------------------------------------------------------------- small file helpers
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # torch / numpy tensors and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def to_jsonable(value: Mapping[str, Any], what: str = "metadata") -> dict[str, Any]:
    """A JSON-clean copy of ``value`` (paths → str, tensors → lists); unserialisable → LibraryError."""
    try:
        return json.loads(json.dumps(dict(value), default=_json_default))
    except (TypeError, ValueError) as exc:
        raise LibraryError(f"{what} must be JSON-serialisable: {exc}") from exc


def _dump_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n").encode()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{path.name} is unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise LibraryError(f"{path.name} does not hold a JSON object")
    return data


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def collect_images(images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None) -> list[Path]:
    """Expand files and folders into a sorted list of image files; missing paths raise LibraryError.

    Folders contribute their image files (by suffix, not recursively); files are taken as given.
    """
    if images is None:
        return []
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    out: list[Path] = []
    for item in images:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise LibraryError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
            out.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise LibraryError(f"{path} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out.append(path)
        else:
            raise LibraryError(f"image path {path} does not exist")
    return out


# --------------------------------------------------------------------------- canonical embedding file
def read_safetensors_header(data: bytes, name: str = "file") -> tuple[dict[str, Any], int]:
    """Parse a safetensors header without torch: ``(header, data_start)``.

    Raises :class:`LibraryError` for a truncated or corrupt file.
    """
    if len(data) < 8:
        raise LibraryError(f"{name} is truncated ({len(data)} bytes): not a safetensors file")
    size = int.from_bytes(data[:8], "little")
    if size > _MAX_HEADER or 8 + size > len(data):
        raise LibraryError(f"{name} is truncated or not a safetensors file (header size {size})")
    try:
        header = json.loads(data[8 : 8 + size])
    except ValueError as exc:
        raise LibraryError(f"{name} has a corrupt safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise LibraryError(f"{name} has a corrupt safetensors header")
    return header, 8 + size


def _with_header_metadata(data: bytes, metadata: Mapping[str, str], name: str) -> bytes:
    """``data`` (a safetensors file) with its ``__metadata__`` replaced; tensor bytes untouched.

    Tensor offsets are relative to the end of the header, so only the header is rewritten: no torch
    needed to rename or re-tag a concept.
    """
    header, start = read_safetensors_header(data, name)
    header["__metadata__"] = dict(metadata)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep tensor data 8-byte aligned, as safetensors does
    return len(raw).to_bytes(8, "little") + raw + data[start:]


def _tensor_sha256(header: Mapping[str, Any], data: bytes, start: int, name: str) -> str:
    """Concept.sha256() computed from the file bytes (same keys, shapes, dtype names and raw bytes)."""
    h = hashlib.sha256()
    for key in sorted(k for k in header if k != "__metadata__"):
        info = header[key]
        try:
            begin, end = (int(x) for x in info["data_offsets"])
            dtype = _ST_DTYPES[info["dtype"]]
            shape = tuple(int(x) for x in info["shape"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LibraryError(f"{name}: tensor {key!r} has a malformed header entry") from exc
        if not 0 <= begin <= end <= len(data) - start:
            raise LibraryError(f"{name}: tensor {key!r} lies outside the file (truncated?)")
        h.update(key.encode())
        h.update(str(shape).encode())
        h.update(dtype.encode())
        h.update(data[start + begin : start + end])
    return h.hexdigest()


def _header_metadata(concept: "Concept", meta: Mapping[str, Any]) -> dict[str, str]:
    return {
        "format": "pt",  # the conventional safetensors marker; other tools expect it
        "ticraft_schema": str(SCHEMA),
        "token": concept.token,
        "family": concept.family or "",
        "ticraft": json.dumps(dict(meta), ensure_ascii=False),
    }


def encode_canonical(concept: "Concept", meta: Mapping[str, Any] | None = None) -> bytes:
    """The canonical ``embedding.safetensors`` bytes of ``concept`` (vectors stored as they are)."""
    keys = set(concept.vectors)
    if keys not in CANONICAL_KEYS:
        raise LibraryError(
            f"concept {concept.token!r} has encoders {sorted(keys)}; a library stores 'clip' or 'clip_l' + 'clip_g'"
        )
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in concept.vectors.items()}
    return save(tensors, metadata=_header_metadata(concept, concept.meta if meta is None else meta))


def is_canonical(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a library ``embedding.safetensors`` (checked from the header only)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return False
            size = int.from_bytes(head, "little")
            if size > _MAX_HEADER:
                return False
            header = json.loads(fh.read(size))
    except (OSError, ValueError):
        return False
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(meta, dict) and "ticraft_schema" in meta and "token" in meta


def read_canonical(path: str | os.PathLike[str]) -> "Concept":
    """Load a library ``embedding.safetensors`` as a :class:`~ticraft.concept.Concept`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LibraryError(f"cannot read {path}: {exc}") from exc
    header, _ = read_safetensors_header(data, str(path))
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("token"), str):
        raise LibraryError(f"{path} has no ticraft token in its header: not a library embedding")
    try:
        concept_meta = json.loads(meta.get("ticraft") or "{}")
    except ValueError as exc:
        raise LibraryError(f"{path}: the 'ticraft' header field is not JSON ({exc})") from exc
    from safetensors import SafetensorError
    from safetensors.torch import load

    from ticraft.concept import Concept

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise LibraryError(f"{path} is corrupt: {exc}") from exc
    if set(tensors) not in CANONICAL_KEYS:
        raise LibraryError(f"{path} holds tensors {sorted(tensors)}; expected 'clip' or 'clip_l' + 'clip_g'")
    return Concept(meta["token"], tensors, family=meta.get("family") or None,
                   meta=concept_meta if isinstance(concept_meta, dict) else {})


# --------------------------------------------------------------------------- entries
@dataclass(frozen=True)
class Entry:
    """What a listing knows about one concept, without loading its vectors.

    ``folder`` is the concept's folder; ``tags`` keep their spelling; ``steps`` is ``None`` for
    concepts that did not come from a ticraft training run.
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
        """Case-insensitive substring match on token, tags, family, initializer and source."""
        needle = text.casefold()
        hay = [self.token, *self.tags, self.family or "", self.initializer or "", self.source or ""]
        return any(needle in h.casefold() for h in hay)

    def to_record(self) -> dict[str, Any]:
        """The JSON record the manifest keeps (folder stored by name)."""
        return {
            "token": self.token, "family": self.family, "num_vectors": self.num_vectors, "dims": self.dims,
            "tags": list(self.tags), "steps": self.steps, "created": self.created, "updated": self.updated,
            "folder": self.folder.name, "sha256": self.sha256, "initializer": self.initializer, "source": self.source,
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
        opt = lambda k: rec.get(k) if isinstance(rec.get(k), str) else None  # noqa: E731
        return cls(token=token, family=family, num_vectors=num, dims=dims, tags=tags, steps=steps,
                   created=opt("created") or "", folder=folder, sha256=opt("sha256") or "",
                   initializer=opt("initializer"), source=opt("source"), updated=opt("updated"))


def _summary_fields(concept_meta: Mapping[str, Any]) -> dict[str, Any]:
    """steps / initializer / source pulled out of a concept's meta for listing."""
    steps = concept_meta.get("steps", concept_meta.get("step"))
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    init = concept_meta.get("initializer")
    src = concept_meta.get("source")
    return {
        "steps": steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
        "initializer": init if isinstance(init, str) else (None if init is None else str(init)),
        "source": src if isinstance(src, str) else (None if src is None else str(src)),
    }


@dataclass
class _State:
    """A consistent view of the library: entries by folder name, and what is broken."""

    entries: dict[str, Entry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    manifest_names: set[str] | None = None  # None when the manifest is missing or unreadable
    newer_schema: bool = False

    def find(self, token: str) -> Entry | None:
        exact = [e for e in self.entries.values() if e.token == token]
        if exact:
            return exact[0]
        key = token_key(token)
        return next((e for e in self.entries.values() if token_key(e.token) == key), None)


# --------------------------------------------------------------------------- the library
def default_library_path() -> Path:
    """The per-user library folder (platformdirs' user data dir, ``…/ticraft/library``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("ticraft", appauthor=False)) / "library"


class Library:
    """A folder of concepts. Creating the object touches nothing; the folder appears on first write.

    >>> import tempfile
    >>> lib = Library(Path(tempfile.mkdtemp()) / "new")
    >>> lib.entries(), lib.root.exists()
    ([], False)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        if self.root.exists() and not self.root.is_dir():
            raise LibraryError(f"{self.root} is a file, not a library folder")
        self._lock_obj: Any = None

    def __repr__(self) -> str:
        return f"Library({str(self.root)!r})"

    # ------------------------------------------------------------ location
    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> "Library":
        """The library the user meant: ``path`` > ``$TICRAFT_LIBRARY`` > ``./embeddings`` (if it holds a
        manifest) > the user data dir (see :func:`default_library_path`)."""
        if path is not None and str(path):
            return cls(path)
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            return cls(env)
        local = Path.cwd() / "embeddings"
        if (local / MANIFEST).is_file():
            return cls(local)
        return cls(default_library_path())

    # ------------------------------------------------------------ reading
    def entries(self) -> list[Entry]:
        """Every readable entry, sorted by token (case-insensitive). Never raises for broken entries."""
        return sorted(self._scan().entries.values(), key=lambda e: (e.token.casefold(), e.token))

    def problems(self) -> list[str]:
        """Human-readable descriptions of broken entries and manifest trouble (empty when healthy)."""
        return list(self._scan().problems)

    def listing(self) -> tuple[list[Entry], list[str]]:
        """``(entries(), problems())`` from a single scan."""
        state = self._scan()
        return sorted(state.entries.values(), key=lambda e: (e.token.casefold(), e.token)), list(state.problems)

    def __len__(self) -> int:
        return len(self._scan().entries)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.has(token)

    def has(self, token: str) -> bool:
        """Whether ``token`` (``"<tok>"`` or ``"tok"``, any case) names an entry."""
        return self._scan().find(token) is not None

    def entry(self, token: str) -> Entry:
        """The :class:`Entry` for ``token``; an unknown token raises LibraryError with suggestions."""
        return self._require(self._scan(), token)

    def folder(self, token: str) -> Path:
        """The folder holding ``token``'s files."""
        return self.entry(token).folder

    def get(self, token: str) -> "Concept":
        """Load ``token``'s concept (reads one safetensors file).

        The concept's ``meta`` is the training metadata; tags and other library bookkeeping live in
        :meth:`entry`.
        """
        if not isinstance(token, str) or not token:
            raise LibraryError("give a token such as '<cat-toy>'")
        # Fast path: the folder is usually the token's slug, so no scan is needed.
        guess = self.root / slugify(token) / EMBEDDING
        if guess.is_file():
            with contextlib.suppress(TicraftError):
                concept = read_canonical(guess)
                if token_key(concept.token) == token_key(token):
                    return concept
        entry = self.entry(token)
        try:
            return read_canonical(entry.embedding)
        except TicraftError as exc:
            raise LibraryError(f"entry {entry.token} is broken: {exc}") from exc

    def search(self, text: str | None = None, tag: str | None = None, family: str | None = None) -> list[Entry]:
        """Entries matching every given filter: ``text`` (substring of token/tags/initializer/source),
        ``tag`` (exact, case-insensitive), ``family`` (exact)."""
        out = self.entries()
        if text:
            out = [e for e in out if e.matches(text)]
        if tag:
            out = [e for e in out if tag.casefold() in {t.casefold() for t in e.tags}]
        if family:
            out = [e for e in out if (e.family or "").casefold() == family.casefold()]
        return out

    def images(self, token: str) -> list[Path]:
        """Training images stored with ``token``."""
        return self._files(self.folder(token) / IMAGES)

    def samples(self, token: str) -> list[Path]:
        """Generated samples stored with ``token``."""
        return self._files(self.folder(token) / SAMPLES)

    def meta(self, token: str) -> dict[str, Any]:
        """The full ``meta.json`` of ``token`` (rebuilt from the embedding header if it was lost)."""
        return self._read_meta(self.folder(token))

    # ------------------------------------------------------------ writing
    def add(self, concept: "Concept", *, images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
            tags: Iterable[str] | str = (), overwrite: bool = False) -> Entry:
        """Store ``concept`` (and copies of its training ``images``) as a new entry.

        A token already in the library (brackets and case ignored) raises LibraryError unless
        ``overwrite``; an overwritten entry keeps its tags (plus ``tags``) and loses its old samples.
        """
        token = validate_token(concept.token)
        new_tags = normalize_tags(tags)
        image_files = collect_images(images)
        concept_meta = to_jsonable(concept.meta, f"the metadata of {token}")
        payload = encode_canonical(concept, concept_meta)  # fails before anything is written
        sha = concept.sha256()
        with self._writing() as state:
            old = state.find(token)
            if old is not None and not overwrite:
                raise LibraryError(
                    f"{old.token} is already in the library ({old.folder}); pick another token or overwrite it "
                    "(--overwrite / overwrite=True)"
                )
            name = old.folder.name if old is not None else self._unique_name(token)
            now = _now()
            meta: dict[str, Any] = {
                "schema": SCHEMA, "token": token, "family": concept.family, "num_vectors": concept.num_vectors,
                "dims": concept.dims, "tags": normalize_tags([*(old.tags if old else ()), *new_tags]),
                "created": now, "updated": now, **_summary_fields(concept_meta), "sha256": sha,
                "images": [], "meta": concept_meta,
            }
            build = self._build_dir(name)
            (build / IMAGES).mkdir()
            (build / SAMPLES).mkdir()
            atomic_write_bytes(build / EMBEDDING, payload)
            meta["images"] = self._copy_images(image_files, build / IMAGES)
            atomic_write_bytes(build / META, _dump_json(meta))
            self._swap_in(build, name, replacing=old is not None)
            entry = Entry.from_record(meta, self.root / name)
            state.entries[name] = entry
            self._write_manifest(state)
        return entry

    def import_file(self, path: str | os.PathLike[str], *, token: str | None = None, family: str | None = None,
                    tags: Iterable[str] | str = (), images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
                    overwrite: bool = False) -> list[Entry]:
        """Import every concept in an embedding file of any layout (see :func:`read_file`).

        ``token`` renames (single-concept files only), ``family`` sets or checks the family,
        ``images`` are files or folders of training images to keep with the concept. Nothing is
        written unless every concept in the file can be added.
        """
        concepts = read_file(path, token=token, family=family)
        image_files = collect_images(images)
        if image_files and len(concepts) > 1:
            raise LibraryError(f"{path} holds {len(concepts)} concepts; --images needs a single-concept file")
        normalize_tags(tags)
        state = self._scan()
        seen: set[str] = set()
        for c in concepts:
            validate_token(c.token)
            if token_key(c.token) in seen:
                raise LibraryError(f"{path} holds token {c.token} twice")
            seen.add(token_key(c.token))
            existing = state.find(c.token)
            if existing is not None and not overwrite:
                raise LibraryError(
                    f"{existing.token} is already in the library ({existing.folder}); rename with --token or overwrite "
                    "(--overwrite / overwrite=True)"
                )
        return [self.add(c, images=image_files, tags=tags, overwrite=overwrite) for c in concepts]

    def export(self, token: str, path: str | os.PathLike[str], layout: str = "diffusers", *,
               overwrite: bool = False) -> list[Path]:
        """Write ``token`` to ``path`` in ``layout`` (``diffusers``, ``a1111`` or ``kohya``).

        A folder ``path`` gets ``<slug>.safetensors`` / ``<slug>.pt``. Returns the files written
        (SDXL in diffusers layout gives two).
        """
        return write_file(self.get(token), path, layout, overwrite=overwrite)

    def rename(self, old: str, new: str) -> Entry:
        """Give ``old``'s entry the token ``new`` (folder, header and meta.json follow; vectors untouched)."""
        validate_token(new)
        with self._writing() as state:
            src = self._require(state, old)
            other = state.find(new)
            if other is not None and other.folder != src.folder:
                raise LibraryError(f"{other.token} is already in the library ({other.folder}); remove it first")
            if src.token == new:
                return src
            same_folder = slugify(new) == src.folder.name or token_key(new) == token_key(src.token)
            name = src.folder.name if same_folder else self._unique_name(new)
            build = self._build_dir(name)
            build.rmdir()
            shutil.copytree(src.folder, build, ignore=shutil.ignore_patterns(".*.tmp"))
            meta = self._read_meta(build)
            meta["token"], meta["updated"] = new, _now()
            self._rewrite_header(build / EMBEDDING, token=new)
            atomic_write_bytes(build / META, _dump_json(meta))
            if same_folder:
                self._swap_in(build, name, replacing=True)
            else:
                # New folder first, old one parked after: a crash in between leaves both, never neither.
                os.rename(build, self.root / name)
                self._park(src.folder.name)
                del state.entries[src.folder.name]
            entry = Entry.from_record(meta, self.root / name)
            state.entries[name] = entry
            self._write_manifest(state)
            self._empty_trash()
        return entry

    def remove(self, token: str) -> Entry:
        """Delete ``token``'s entry with all its files; returns what was removed."""
        with self._writing() as state:
            entry = self._require(state, token)
            self._park(entry.folder.name)
            del state.entries[entry.folder.name]
            self._write_manifest(state)
            self._empty_trash()
        return entry

    def tag(self, token: str, add: Iterable[str] | str = (), remove: Iterable[str] | str = ()) -> Entry:
        """Add and remove tags (case-insensitive); removing an absent tag is not an error."""
        to_add, to_remove = normalize_tags(add), {t.casefold() for t in normalize_tags(remove)}
        with self._writing() as state:
            entry = self._require(state, token)
            meta = self._read_meta(entry.folder)
            kept = [t for t in normalize_tags(meta.get("tags") or []) if t.casefold() not in to_remove]
            meta["tags"] = normalize_tags([*kept, *to_add])
            meta["updated"] = _now()
            atomic_write_bytes(entry.folder / META, _dump_json(meta))
            new = Entry.from_record(meta, entry.folder)
            state.entries[entry.folder.name] = new
            self._write_manifest(state)
        return new

    def set_meta(self, token: str, **fields: Any) -> Entry:
        """Update the concept's metadata (steps, initializer, loss, …); ``None`` deletes a field.

        Both meta.json and the embedding header are updated, so :meth:`get` sees the change.
        Tokens, tags and shapes have their own methods and cannot be set here.
        """
        bad = sorted(set(fields) & _RESERVED_META)
        if bad:
            raise LibraryError(f"set_meta cannot change {', '.join(bad)}: use rename()/tag(), or add(overwrite=True)")
        if "steps" in fields and fields["steps"] is not None and (
            isinstance(fields["steps"], bool) or not isinstance(fields["steps"], int) or fields["steps"] < 0
        ):
            raise LibraryError(f"steps must be a non-negative integer, got {fields['steps']!r}")
        clean = to_jsonable(fields, "set_meta fields")
        with self._writing() as state:
            entry = self._require(state, token)
            meta = self._read_meta(entry.folder)
            cmeta = dict(meta.get("meta") or {})
            for key, value in clean.items():
                if value is None:
                    cmeta.pop(key, None)
                else:
                    cmeta[key] = value
            meta.update(_summary_fields(cmeta), meta=cmeta, updated=_now())
            self._rewrite_header(entry.embedding, concept_meta=cmeta)
            atomic_write_bytes(entry.folder / META, _dump_json(meta))
            new = Entry.from_record(meta, entry.folder)
            state.entries[entry.folder.name] = new
            self._write_manifest(state)
        return new

    def add_samples(self, token: str, images: Iterable[Any], *, prefix: str = "sample") -> list[Path]:
        """Store generated images (PIL images or image files) under ``samples/``, numbered after the
        existing ones (``sample-0001.png``, …). PNG text chunks of PIL images are kept."""
        items = list(images)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", prefix):
            raise LibraryError(f"sample prefix {prefix!r} must be letters, digits, '_' or '-'")
        for item in items:
            if not _is_pil(item):
                collect_images([item])  # validates paths before anything is written
        written: list[Path] = []
        with self._locked():
            folder = self._require(self._scan(), token).folder / SAMPLES
            folder.mkdir(exist_ok=True)
            pattern = re.compile(rf"{re.escape(prefix)}-(\d+)\.")
            taken = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
            number = max(taken, default=0)
            for item in items:
                number += 1
                if _is_pil(item):
                    target = folder / f"{prefix}-{number:04d}.png"
                    atomic_write_bytes(target, _png_bytes(item))
                else:
                    src = Path(item)
                    target = folder / f"{prefix}-{number:04d}{src.suffix.lower()}"
                    atomic_write_bytes(target, src.read_bytes())
                written.append(target)
        return written

    def repair(self) -> list[str]:
        """Finish or undo interrupted writes and rewrite the manifest from the folders.

        Returns the problems that remain (entries that are broken beyond repair are left in place
        for a person to inspect, never deleted).
        """
        with self._writing() as state:
            self._write_manifest(state)
            return list(state.problems)

    # ------------------------------------------------------------ internals: scanning
    def _scan(self) -> _State:
        state = _State()
        records = self._read_manifest(state)
        try:
            on_disk = {d.name for d in os.scandir(self.root) if d.is_dir() and not d.name.startswith(".")}
        except FileNotFoundError:
            on_disk = set()
        except OSError as exc:
            state.problems.append(f"cannot read the library folder {self.root}: {exc}")
            return state
        for name in sorted(on_disk | set(records)):
            folder = self.root / name
            if name not in on_disk:
                parked = self.root / TRASH_DIR / name
                if not parked.is_dir():
                    state.problems.append(f"{name}: listed in the manifest, but its folder is missing")
                    continue
                folder = parked  # an interrupted replace/remove: the old version still counts
            try:
                entry = self._load_entry(folder, records.get(name))
            except LibraryError as exc:
                state.problems.append(f"{name}: {exc}")
                continue
            if entry is None:
                if name in records:
                    state.problems.append(f"{name}: listed in the manifest, but the folder holds no {EMBEDDING}")
                continue
            twin = state.find(entry.token)
            if twin is not None and token_key(twin.token) == token_key(entry.token):
                keep, drop = (entry, twin) if name == slugify(entry.token) else (twin, entry)
                state.entries.pop(twin.folder.name, None)
                state.entries[keep.folder.name] = keep
                state.problems.append(
                    f"{drop.folder.name}: token {drop.token} is also in folder {keep.folder.name}; skipped this copy"
                )
                continue
            state.entries[name] = entry
        return state

    def _read_manifest(self, state: _State) -> dict[str, dict[str, Any]]:
        path = self.root / MANIFEST
        try:
            data = _read_json(path)
            schema = data.get("schema")
            if not isinstance(schema, int) or not isinstance(data.get("entries"), list):
                raise LibraryError(f"{MANIFEST} lacks a schema number or an entries list")
        except FileNotFoundError:
            return {}
        except (LibraryError, OSError) as exc:
            state.problems.append(f"{exc}; listing the concept folders instead (any change rewrites it)")
            return {}
        if schema > SCHEMA:
            state.newer_schema = True
            state.problems.append(
                f"{MANIFEST} has schema {schema}, newer than this ticraft understands ({SCHEMA}); "
                "reading the concept folders instead, changes are refused: upgrade ticraft"
            )
            return {}
        records = {
            rec["folder"]: rec for rec in data["entries"]
            if isinstance(rec, dict) and isinstance(rec.get("folder"), str)
            and rec["folder"] and not rec["folder"].startswith(".") and "/" not in rec["folder"]
        }
        state.manifest_names = set(records)
        return records

    def _load_entry(self, folder: Path, record: Mapping[str, Any] | None) -> Entry | None:
        try:
            st = (folder / META).stat()
        except FileNotFoundError:
            st = None
        if not (folder / EMBEDDING).is_file():
            if st is None:
                return None  # not a concept folder (e.g. a stray directory): ignore it
            raise LibraryError(f"{EMBEDDING} is missing")
        if (record is not None and st is not None and record.get("meta_mtime_ns") == st.st_mtime_ns
                and record.get("meta_size") == st.st_size):
            return Entry.from_record(record, folder)
        return Entry.from_record(self._read_meta(folder), folder)

    def _read_meta(self, folder: Path) -> dict[str, Any]:
        """meta.json, or a reconstruction from the embedding header when meta.json was lost."""
        try:
            return _read_json(folder / META)
        except FileNotFoundError:
            pass
        path = folder / EMBEDDING
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LibraryError(f"{META} is missing and {EMBEDDING} is unreadable ({exc})") from exc
        header, start = read_safetensors_header(data, EMBEDDING)
        hmeta = header.get("__metadata__") or {}
        if not isinstance(hmeta, dict) or not isinstance(hmeta.get("token"), str):
            raise LibraryError(f"{META} is missing and {EMBEDDING} carries no token")
        try:
            cmeta = json.loads(hmeta.get("ticraft") or "{}")
        except ValueError:
            cmeta = {}
        cmeta = cmeta if isinstance(cmeta, dict) else {}
        keys = sorted(k for k in header if k != "__metadata__")
        try:
            shapes = {k: [int(x) for x in header[k]["shape"]] for k in keys}
        except (KeyError, TypeError, ValueError) as exc:
            raise LibraryError(f"{EMBEDDING} has a malformed header") from exc
        if not shapes or any(len(s) != 2 for s in shapes.values()):
            raise LibraryError(f"{EMBEDDING} does not hold [N, D] vectors")
        return {
            "schema": SCHEMA, "token": hmeta["token"], "family": hmeta.get("family") or None,
            "num_vectors": shapes[keys[0]][0], "dims": {k: s[1] for k, s in shapes.items()}, "tags": [],
            "created": "", **_summary_fields(cmeta), "sha256": _tensor_sha256(header, data, start, EMBEDDING),
            "images": [], "meta": cmeta,
        }

    @staticmethod
    def _files(folder: Path) -> list[Path]:
        try:
            return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def _require(self, state: _State, token: str) -> Entry:
        if not isinstance(token, str) or not token:
            raise LibraryError("give a token such as '<cat-toy>'")
        found = state.find(token)
        if found is not None:
            return found
        known = sorted(e.token for e in state.entries.values())
        close = difflib.get_close_matches(token, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else (
            f"; it holds {len(known)} concept(s) (see `ticraft library list`)" if known else "; it is empty"
        )
        raise LibraryError(f"no concept {token!r} in the library at {self.root}{hint}")

    # ------------------------------------------------------------ internals: writing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the library's file lock; OS errors become one clear LibraryError."""
        from filelock import FileLock, Timeout

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(f"cannot create the library folder {self.root}: {exc}") from exc
        if self._lock_obj is None:
            self._lock_obj = FileLock(str(self.root / LOCK), timeout=LOCK_TIMEOUT_S)
        try:
            self._lock_obj.acquire()
        except Timeout as exc:
            raise LibraryError(
                f"the library at {self.root} is busy: another ticraft process holds {LOCK}; try again"
            ) from exc
        except OSError as exc:
            raise LibraryError(f"cannot lock the library at {self.root}: {exc}") from exc
        try:
            yield
        except OSError as exc:
            raise LibraryError(f"could not write to the library at {self.root}: {exc}") from exc
        finally:
            self._lock_obj.release()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[_State]:
        """Lock, tidy up after interrupted writers, and yield a fresh view to change."""
        with self._locked():
            self._recover()
            state = self._scan()
            if state.newer_schema:
                raise LibraryError(f"{self.root / MANIFEST} was written by a newer ticraft; upgrade to change it")
            yield state

    def _recover(self) -> None:
        """Clear half-built folders and settle parked ones (called under the lock).

        A parked folder whose name is back in place, or that the manifest no longer lists, was
        replaced or removed on purpose: delete it. Otherwise the writer died mid-way: restore it.
        """
        shutil.rmtree(self.root / TMP_DIR, ignore_errors=True)
        trash = self.root / TRASH_DIR
        if not trash.is_dir():
            return
        listed = self._read_manifest(_State())
        manifest_ok = (self.root / MANIFEST).is_file() and bool(listed) or self._manifest_readable()
        for item in trash.iterdir():
            if (self.root / item.name).exists() or (manifest_ok and item.name not in listed):
                shutil.rmtree(item, ignore_errors=True)
            else:
                os.rename(item, self.root / item.name)

    def _manifest_readable(self) -> bool:
        state = _State()
        self._read_manifest(state)
        return state.manifest_names is not None

    def _write_manifest(self, state: _State) -> None:
        records = []
        for name, entry in sorted(state.entries.items()):
            rec = entry.to_record()
            rec["folder"] = name
            with contextlib.suppress(OSError):
                st = (self.root / name / META).stat()
                rec["meta_mtime_ns"], rec["meta_size"] = st.st_mtime_ns, st.st_size
            records.append(rec)
        doc = {"schema": SCHEMA, "kind": "ticraft-library", "updated": _now(), "entries": records}
        atomic_write_bytes(self.root / MANIFEST, _dump_json(doc))

    def _unique_name(self, token: str) -> str:
        """The token's slug, made unique (case-insensitively) among the root's current folders."""
        taken = {p.name.casefold() for p in self.root.iterdir()} if self.root.is_dir() else set()
        slug = slugify(token)
        if slug.casefold() not in taken:
            return slug
        slug = f"{slug}-{hashlib.sha1(token.encode()).hexdigest()[:8]}"
        candidate, n = slug, 2
        while candidate.casefold() in taken:
            candidate, n = f"{slug}-{n}", n + 1
        return candidate

    def _build_dir(self, name: str) -> Path:
        tmp = self.root / TMP_DIR
        tmp.mkdir(exist_ok=True)
        build = tmp / f"{name}.{secrets.token_hex(4)}"
        build.mkdir()
        return build

    def _park(self, name: str) -> None:
        """Move folder ``name`` into ``.trash/`` (same name); it is deleted once the manifest agrees."""
        trash = self.root / TRASH_DIR
        trash.mkdir(exist_ok=True)
        target = trash / name
        if target.exists():
            shutil.rmtree(target)
        os.rename(self.root / name, target)

    def _swap_in(self, build: Path, name: str, *, replacing: bool) -> None:
        """Move a finished ``build`` folder to ``root/name``, parking the folder it replaces."""
        if replacing and (self.root / name).exists():
            self._park(name)  # a crash right here is undone by _recover (the manifest still lists it)
        os.rename(build, self.root / name)
        self._empty_trash_item(name)

    def _empty_trash(self) -> None:
        shutil.rmtree(self.root / TRASH_DIR, ignore_errors=True)

    def _empty_trash_item(self, name: str) -> None:
        shutil.rmtree(self.root / TRASH_DIR / name, ignore_errors=True)

    def _rewrite_header(self, path: Path, *, token: str | None = None,
                        concept_meta: Mapping[str, Any] | None = None) -> None:
        data = path.read_bytes()
        header, _ = read_safetensors_header(data, EMBEDDING)
        meta = dict(header.get("__metadata__") or {})
        if token is not None:
            meta["token"] = token
        if concept_meta is not None:
            meta["ticraft"] = json.dumps(dict(concept_meta), ensure_ascii=False)
        meta.setdefault("ticraft_schema", str(SCHEMA))
        atomic_write_bytes(path, _with_header_metadata(data, meta, EMBEDDING))

    @staticmethod
    def _copy_images(files: Sequence[Path], dest: Path) -> list[dict[str, str]]:
        """Copy training images into ``dest`` (names kept, clashes numbered) and hash them."""
        records, used = [], set()
        for src in files:
            name, n = src.name, 1
            while name.casefold() in used:
                n += 1
                name = f"{src.stem}-{n}{src.suffix}"
            used.add(name.casefold())
            shutil.copyfile(src, dest / name)
            records.append({"file": f"{IMAGES}/{name}", "sha256": _sha256_file(dest / name)})
        return records


def _is_pil(item: Any) -> bool:
    return hasattr(item, "save") and hasattr(item, "mode") and hasattr(item, "size")


def _png_bytes(image: Any) -> bytes:
    """PNG bytes of a PIL image, keeping its text chunks (prompt, seed, … written by the sampler)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (getattr(image, "text", None) or image.info or {}).items():
        if isinstance(key, str) and isinstance(value, str):
            info.add_text(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


# --------------------------------------------------------------------------- files in other layouts
def apply_family(concept: "Concept", family: str | None) -> "Concept":
    """``concept`` with ``family`` set, after checking that its encoders and widths fit that family."""
    if family is None or family == concept.family:
        return concept
    from ticraft.concept import FAMILY_ENCODERS, Concept

    if family not in FAMILY_ENCODERS:
        raise LibraryError(f"unknown family {family!r}; known: {', '.join(FAMILY_ENCODERS)}")
    want = FAMILY_ENCODERS[family]
    if set(want) != set(concept.dims) or any(w is not None and w != concept.dims[k] for k, w in want.items()):
        expect = ", ".join(f"{k}={w or 'any'}" for k, w in want.items())
        have = ", ".join(f"{k}={d}" for k, d in concept.dims.items())
        raise LibraryError(f"{concept.token}: family {family} expects {expect}, but the vectors are {have}")
    return Concept(concept.token, concept.vectors, family=family, meta=dict(concept.meta))


def read_file(path: str | os.PathLike[str], *, token: str | None = None, family: str | None = None) -> list["Concept"]:
    """Every concept in an embedding file of any layout (library files included).

    ``token`` renames the concept (single-concept files only); ``family`` sets it, after checking
    the widths. The source file name and layout are recorded in each concept's meta.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise LibraryError(f"no such file: {path}")
    if path.is_dir():
        raise LibraryError(f"{path} is a folder; give an embedding file")
    if is_canonical(path):
        concepts, layout = [read_canonical(path)], "ticraft"
    else:
        from ticraft import formats

        layout = formats.detect_layout(path)
        concepts = list(formats.read_concepts(path))
    if not concepts:
        raise LibraryError(f"{path} holds no embedding")
    if token is not None:
        validate_token(token)
        if len(concepts) > 1:
            names = ", ".join(c.token for c in concepts)
            raise LibraryError(f"{path} holds {len(concepts)} concepts ({names}); --token can rename only one")
        concepts = [concepts[0].replace(token=token)]
    out = []
    for c in concepts:
        c = apply_family(c, family)
        c.meta.setdefault("source", path.name)
        c.meta.setdefault("source_layout", layout)
        out.append(c)
    return out


def write_file(concept: "Concept", path: str | os.PathLike[str], layout: str = "diffusers", *,
               overwrite: bool = False) -> list[Path]:
    """Write ``concept`` in ``layout`` (``diffusers``, ``a1111`` or ``kohya``) to a file or folder."""
    if layout not in EXPORT_LAYOUTS:
        raise LibraryError(f"unknown export format {layout!r}; choose one of {', '.join(EXPORT_LAYOUTS)}")
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / f"{slugify(concept.token)}{EXPORT_LAYOUTS[layout]}"
    if path.exists() and not overwrite:
        raise LibraryError(f"{path} already exists; choose another name or overwrite it (--force / overwrite=True)")
    if not path.parent.is_dir():
        raise LibraryError(f"folder {path.parent} does not exist")
    from ticraft import formats

    return [Path(p) for p in formats.write_concept(concept, path, layout=layout)]


def resolve_library(path: str | os.PathLike[str] | None = None) -> Library:
    """Alias of :meth:`Library.resolve`."""
    return Library.resolve(path)


__all__ = [
    "CANONICAL_KEYS", "EXPORT_LAYOUTS", "ENV_VAR", "Entry", "Library", "LibraryError", "SCHEMA",
    "apply_family", "bare_token", "collect_images", "default_library_path", "encode_canonical",
    "is_canonical", "normalize_tags", "read_canonical", "read_file", "resolve_library", "slugify",
    "token_key", "validate_token", "write_file",
]
