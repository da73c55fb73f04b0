"""The on-disk concept library: a folder of learned concepts with a manifest, tags and search.

Layout::

    <root>/
      manifest.json            index of every entry (schema-versioned; rebuilt from the folders if lost)
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
``.trash/`` until the manifest no longer lists it. A process killed at any point therefore leaves
a readable library, and the next change tidies up after it. A broken entry is reported by
:meth:`Library.problems` and skipped, never fatal.

Tokens: any string without whitespace; ``<name>`` is recommended. Lookups ignore the brackets and
letter case (``"cat-toy"`` finds ``<Cat-Toy>``), so two entries can never differ only in those.

Listing reads only ``manifest.json`` (plus a ``stat`` per folder to notice out-of-date records),
and this package imports neither torch nor any model code at the top, so ``ticraft library list``
is instant; tagging, renaming and removing never load torch either (headers are edited as bytes).
Reading vectors (:meth:`Library.get`) imports torch on demand; other embedding layouts go through
:mod:`ticraft.formats` (:func:`read_file`, :func:`write_file`).

Modules: :mod:`~ticraft.library.store` (the :class:`Library`), :mod:`~ticraft.library.entry`,
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
    CANONICAL_KEYS, EMBEDDING, ENV_VAR, EXPORT_LAYOUTS, IMAGES, MANIFEST, META, SAMPLES, SCHEMA, LibraryError,
    atomic_write_bytes, collect_images, to_jsonable,
)
from ticraft.library.canonical import encode_canonical, is_canonical, read_canonical, read_safetensors_header
from ticraft.library.entry import Entry, filter_entries
from ticraft.library.interop import apply_family, read_file, write_file
from ticraft.library.naming import bare_token, normalize_tags, slugify, token_key, validate_token
from ticraft.library.store import Library, default_library_path, resolve_library

__all__ = [
    "CANONICAL_KEYS", "EMBEDDING", "ENV_VAR", "EXPORT_LAYOUTS", "IMAGES", "MANIFEST", "META", "SAMPLES", "SCHEMA",
    "Entry", "Library", "LibraryError", "apply_family", "atomic_write_bytes", "bare_token", "collect_images",
    "default_library_path", "encode_canonical", "filter_entries", "is_canonical", "normalize_tags",
    "read_canonical", "read_file", "read_safetensors_header", "resolve_library", "slugify", "to_jsonable",
    "token_key", "validate_token", "write_file",
]
