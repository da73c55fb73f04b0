"""The on-disk concept library: a folder of learned concepts with a SQLite index, tags and search.

Layout::

    <root>/
      .index/library.sqlite    the index: one row per concept, FTS5 search, a write journal (WAL mode;
                               schema-versioned, migrated on open; rebuilt from the folders if lost)
      manifest.json            only in libraries made before the index: read once to build it, then left alone
      .lock                    file lock guarding every change
      .tmp/, .trash/           transient: folders being built / being replaced or removed
      <slug>/                  one folder per concept, named after a filesystem-safe slug of its token
        embedding.safetensors  canonical vectors: "clip" (sd1/sd2/toy) or "clip_l" + "clip_g" (sdxl);
                               header metadata (str→str): token, family, and "ticraft", the JSON
                               record {version, token, family, meta} that ticraft.formats also writes
        meta.json              token, family, num_vectors, dims, tags, created, steps, initializer,
                               source, sha256, image hashes, the concept's meta
        images/                training images
        samples/               generated images
        loss.png, train.log    optional, written by the trainer

Safety: every file is written to a temp file and moved in with :func:`os.replace`; a new concept
folder is built under ``.tmp/`` and renamed in; a folder being replaced or removed is parked under
``.trash/`` until the index no longer lists it; the folders an operation will touch are written to
the index's journal first. A process killed at any point therefore leaves a library that opens,
and the next process re-reads exactly the folders the dead one announced. The concept folders are
the source of truth: ``Library.repair()`` rebuilds the index from them. A broken entry is reported
by :meth:`Library.problems` / :meth:`Library.check` and skipped, never fatal.

Tokens: any string without whitespace; ``<name>`` is recommended. Lookups ignore the brackets and
letter case (``"cat-toy"`` finds ``<Cat-Toy>``), so two entries can never differ only in those.

Listing, lookup and search read only the index (:meth:`Library.page` and :meth:`Library.count` cost
the same with 10 or 10,000 concepts; folders added or removed by hand are noticed through the library
folder's mtime, a hand-edited meta.json when its entry is shown), and this package imports neither
torch nor any model code at the top, so ``ticraft library list`` is instant; tagging, renaming and
removing never load torch either (headers are edited as bytes). :meth:`Library.matrix` reads the
mean vectors of a whole library into one cached matrix for nearest-concept search and maps.
Reading vectors (:meth:`Library.get`) imports torch on demand; other embedding layouts go through
:mod:`ticraft.formats` (:func:`read_file`, :func:`write_file`).

Modules: :mod:`~ticraft.library.store` (the :class:`Library`), :mod:`~ticraft.library.index` (SQLite),
:mod:`~ticraft.library.sync` (keeping the index in step), :mod:`~ticraft.library.folders`,
:mod:`~ticraft.library.health`, :mod:`~ticraft.library.vectors`, :mod:`~ticraft.library.bulk`
(importing folders), :mod:`~ticraft.library.entry`,
:mod:`~ticraft.library.canonical` (the embedding file), :mod:`~ticraft.library.naming` (tokens, tags,
slugs), :mod:`~ticraft.library.interop` (other layouts), :mod:`~ticraft.library._common`.

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

from ticraft.library._common import (
    CANONICAL_KEYS,
    EMBEDDING,
    ENV_VAR,
    EXPORT_LAYOUTS,
    IMAGES,
    MANIFEST,
    META,
    SAMPLES,
    SCHEMA,
    LibraryError,
    atomic_write_bytes,
    collect_images,
    to_jsonable,
)
from ticraft.library.canonical import encode_canonical, is_canonical, read_canonical, read_safetensors_header
from ticraft.library.entry import Entry, filter_entries
from ticraft.library.interop import apply_family, read_file, write_file
from ticraft.library.naming import bare_token, natural_key, normalize_tags, slugify, token_key, validate_token
from ticraft.library.store import Library, default_library_path, resolve_library
from ticraft.library.sync import RepairReport

__all__ = [
    "CANONICAL_KEYS",
    "EMBEDDING",
    "ENV_VAR",
    "EXPORT_LAYOUTS",
    "IMAGES",
    "MANIFEST",
    "META",
    "SAMPLES",
    "SCHEMA",
    "Entry",
    "Library",
    "LibraryError",
    "apply_family",
    "atomic_write_bytes",
    "bare_token",
    "collect_images",
    "RepairReport",
    "default_library_path",
    "encode_canonical",
    "filter_entries",
    "is_canonical",
    "natural_key",
    "normalize_tags",
    "read_canonical",
    "read_file",
    "read_safetensors_header",
    "resolve_library",
    "slugify",
    "to_jsonable",
    "token_key",
    "validate_token",
    "write_file",
]
