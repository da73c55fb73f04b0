"""The on-disk library: storage, lookup, tags, search, rename/remove, robustness and crash safety."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ticraft.library.sync as sync
from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.library import (
    EMBEDDING,
    MANIFEST,
    META,
    Library,
    LibraryError,
    apply_family,
    encode_canonical,
    is_canonical,
    read_canonical,
    read_file,
    slugify,
    validate_token,
    write_file,
)
from ticraft.library import index as ix


def concept(token: str = "<cat-toy>", n: int = 2, d: int = 8, seed: int = 0, family: str | None = "toy",
            dtype: torch.dtype = torch.float32, **meta) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, d, generator=g).to(dtype)}, family=family, meta=dict(meta))


def sdxl_concept(token: str = "<xl>", n: int = 3, seed: int = 0) -> Concept:
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip_l": torch.randn(n, 768, generator=g), "clip_g": torch.randn(n, 1280, generator=g)})


def same(a: Concept, b: Concept) -> bool:
    """Bit-exact equality of vectors (keys, dtypes, values)."""
    return a.vectors.keys() == b.vectors.keys() and all(
        a.vectors[k].dtype == b.vectors[k].dtype and torch.equal(a.vectors[k], b.vectors[k]) for k in a.vectors
    )


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library(tmp_path / "lib")


def write_png(path: Path, color=(255, 0, 0), text: dict[str, str] | None = None) -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    Image.new("RGB", (4, 4), color).save(path, pnginfo=info)
    return path


# ------------------------------------------------------------------------------------ add / get
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_add_get_round_trip_is_exact(lib: Library, dtype: torch.dtype) -> None:
    c = concept(dtype=dtype, steps=500, initializer="cat", loss=[0.5, 0.25])
    entry = lib.add(c)
    back = lib.get("<cat-toy>")
    assert same(c, back)
    assert back.token == "<cat-toy>" and back.family == "toy"
    assert back.meta == {"steps": 500, "initializer": "cat", "loss": [0.5, 0.25]}
    assert entry.sha256 == c.sha256() == back.sha256()
    assert (entry.token, entry.family, entry.num_vectors, entry.dims, entry.steps, entry.initializer) == (
        "<cat-toy>", "toy", 2, {"clip": 8}, 500, "cat")
    assert entry.folder == lib.root / "cat-toy"
    assert entry.created.endswith("Z")
    assert sorted(p.name for p in entry.folder.iterdir()) == ["embedding.safetensors", "images", "meta.json", "samples"]


def test_sdxl_concept(lib: Library) -> None:
    c = sdxl_concept()
    entry = lib.add(c)
    assert entry.family == "sdxl" and entry.dims == {"clip_l": 768, "clip_g": 1280}
    assert entry.dims_label == "clip_l 768 + clip_g 1280"
    assert same(lib.get("xl"), c)


def test_lookup_ignores_brackets_and_case(lib: Library) -> None:
    lib.add(concept("<Cat-Toy>"))
    for name in ("<Cat-Toy>", "Cat-Toy", "<cat-toy>", "CAT-TOY"):
        assert lib.has(name) and name in lib
        assert lib.get(name).token == "<Cat-Toy>"
        assert lib.folder(name) == lib.root / "cat-toy"
    assert not lib.has("<dog>")


def test_canonical_file_layout(lib: Library) -> None:
    from safetensors import safe_open

    entry = lib.add(concept(steps=3))
    with safe_open(str(entry.embedding), "pt") as f:
        assert set(f.keys()) == {"clip"}
        meta = f.metadata()
    assert meta["token"] == "<cat-toy>" and meta["family"] == "toy" and meta["format"] == "pt"
    record = json.loads(meta["ticraft"])
    assert record == {"version": 1, "token": "<cat-toy>", "family": "toy", "meta": {"steps": 3}}
    assert is_canonical(entry.embedding)
    assert same(read_canonical(entry.embedding), lib.get("<cat-toy>"))
    doc = json.loads((entry.folder / META).read_text())
    assert doc["token"] == "<cat-toy>" and doc["num_vectors"] == 2 and doc["sha256"] == entry.sha256
    assert not (lib.root / MANIFEST).exists()  # the index replaced it
    conn = sqlite3.connect(ix.index_path(lib.root))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == ix.INDEX_SCHEMA
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT folder, token, sha256, dims FROM concepts").fetchall() == [
        ("cat-toy", "<cat-toy>", entry.sha256, '{"clip": 8}')]
    conn.close()


def test_new_library_is_created_on_first_write(tmp_path: Path) -> None:
    lib = Library(tmp_path / "a" / "b")
    assert lib.entries() == [] and lib.problems() == [] and not lib.root.exists()
    lib.add(concept())
    assert ix.index_path(lib.root).is_file()


def test_library_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(LibraryError, match="is a file"):
        Library(tmp_path / "f")


# ------------------------------------------------------------------------------------ tokens
@pytest.mark.parametrize("bad", ["", "cat toy", "<a\tb>", "<>", "a\nb", "<" + "x" * 200 + ">"])
def test_bad_tokens_are_refused(lib: Library, bad: str) -> None:
    with pytest.raises(LibraryError):
        validate_token(bad)
    if bad.strip():  # Concept itself refuses empty tokens
        with pytest.raises(LibraryError):
            lib.add(concept(bad))
    assert not lib.root.exists()  # nothing written


def test_duplicate_tokens(lib: Library) -> None:
    lib.add(concept("<cat-toy>", seed=1), tags=["old"])
    for dup in ("<cat-toy>", "cat-toy", "<CAT-toy>"):
        with pytest.raises(LibraryError, match="already in the library"):
            lib.add(concept(dup, seed=2))
    assert same(lib.get("<cat-toy>"), concept(seed=1))
    lib.add_samples("<cat-toy>", [write_png(lib.root.parent / "s.png")])
    entry = lib.add(concept("<cat-toy>", seed=2), tags=["new"], overwrite=True)
    assert same(lib.get("<cat-toy>"), concept(seed=2))
    assert entry.tags == ("old", "new")  # tags survive an overwrite
    assert lib.samples("<cat-toy>") == []  # samples of the old vectors do not
    assert len(lib.entries()) == 1 and lib.problems() == []
    assert not (lib.root / ".trash").exists() or not any((lib.root / ".trash").iterdir())


def test_slug_collisions_get_unique_folders(lib: Library) -> None:
    a, b, c = lib.add(concept("<a+b>", seed=1)), lib.add(concept("<a-b>", seed=2)), lib.add(concept("<猫>", seed=3))
    assert a.folder.name == "a-b" and b.folder.name.startswith("a-b-") and c.folder.name == "concept"
    assert same(lib.get("<a+b>"), concept("<a+b>", seed=1)) and same(lib.get("<a-b>"), concept("<a-b>", seed=2))
    assert same(lib.get("<猫>"), concept(seed=3))
    assert slugify("<con>") == "con_" and slugify("<../../etc>") == "etc"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(min_size=1, max_size=30))
def test_any_token_is_refused_cleanly_or_stored_safely(tmp_path: Path, token: str) -> None:
    lib = Library(tmp_path / f"fuzz-{abs(hash(token))}")
    try:
        validate_token(token)
    except LibraryError:
        return
    entry = lib.add(concept(token))
    assert entry.folder.parent == lib.root and entry.folder.name == slugify(token)
    assert lib.get(token).token == token and lib.problems() == []
    shutil.rmtree(lib.root)


# ------------------------------------------------------------------------------------ tags, search, meta
def test_tags_and_search(lib: Library) -> None:
    lib.add(concept("<cat-toy>", initializer="cat"), tags=["object", "toy-world"])
    lib.add(concept("<wavy>", initializer="painting"), tags=["style"])
    lib.add(sdxl_concept("<xl-dog>"), tags=["Object"])
    assert [e.token for e in lib.search(tag="object")] == ["<cat-toy>", "<xl-dog>"]
    assert [e.token for e in lib.search(family="sdxl")] == ["<xl-dog>"]
    assert [e.token for e in lib.search(text="PAINT")] == ["<wavy>"]
    assert [e.token for e in lib.search(text="dog", tag="object")] == ["<xl-dog>"]
    entry = lib.tag("cat-toy", add=["cute", "OBJECT"], remove=["toy-world"])
    assert entry.tags == ("object", "cute")
    assert lib.tag("<cat-toy>", remove="missing").tags == ("object", "cute")
    assert lib.entry("<cat-toy>").tags == ("object", "cute")
    for bad in (["two words"], ["a,b"], [""]):
        with pytest.raises(LibraryError):
            lib.tag("<cat-toy>", add=bad)


def test_set_meta(lib: Library) -> None:
    lib.add(concept(steps=10, note="x"))
    entry = lib.set_meta("<cat-toy>", steps=2000, initializer="toy", note=None, loss=torch.tensor([1.0, 0.5]))
    assert entry.steps == 2000 and entry.initializer == "toy"
    meta = lib.get("<cat-toy>").meta
    assert meta == {"steps": 2000, "initializer": "toy", "loss": [1.0, 0.5]}
    assert lib.meta("<cat-toy>")["meta"] == meta
    for bad in ({"token": "<x>"}, {"tags": []}, {"steps": -1}, {"steps": "many"}, {"thing": object()}):
        with pytest.raises(LibraryError):
            lib.set_meta("<cat-toy>", **bad)
    assert same(lib.get("<cat-toy>"), concept())


def test_unserialisable_meta_writes_nothing(lib: Library) -> None:
    with pytest.raises(LibraryError, match="JSON"):
        lib.add(concept(thing=object()))
    assert not lib.root.exists()


# ------------------------------------------------------------------------------------ rename / remove
def test_rename(lib: Library) -> None:
    c = concept(steps=7)
    lib.add(c, tags=["t"], images=[write_png(lib.root.parent / "a.png")])
    entry = lib.rename("cat-toy", "<kitty>")
    assert entry.token == "<kitty>" and entry.folder.name == "kitty" and entry.tags == ("t",)
    assert not lib.has("<cat-toy>") and not (lib.root / "cat-toy").exists()
    back = lib.get("<kitty>")
    assert back.token == "<kitty>" and same(back, c) and back.meta == {"steps": 7}
    assert read_canonical(entry.embedding).token == "<kitty>"
    assert [p.name for p in lib.images("<kitty>")] == ["a.png"]
    assert lib.rename("<kitty>", "<Kitty>").folder.name == "kitty"  # case-only rename keeps the folder
    lib.add(concept("<dog>"))
    with pytest.raises(LibraryError, match="already in the library"):
        lib.rename("<Kitty>", "<dog>")
    with pytest.raises(LibraryError, match="whitespace"):
        lib.rename("<Kitty>", "a b")
    assert lib.problems() == [] and [e.token for e in lib.entries()] == ["<dog>", "<Kitty>"]


def test_remove_and_unknown_tokens(lib: Library) -> None:
    lib.add(concept("<cat-toy>"))
    lib.add(concept("<dog>"))
    with pytest.raises(LibraryError, match="did you mean <cat-toy>"):
        lib.get("<cat-toys>")
    removed = lib.remove("cat-toy")
    assert removed.token == "<cat-toy>" and not removed.folder.exists()
    assert [e.token for e in lib.entries()] == ["<dog>"]
    for op in (lib.remove, lib.get, lib.folder, lib.images):
        with pytest.raises(LibraryError, match="no concept"):
            op("<cat-toy>")
    assert isinstance(LibraryError("x"), TicraftError)
    missing = Library(lib.root.parent / "typo")
    for op in (lambda: missing.remove("<dog>"), lambda: missing.tag("<dog>", add=["x"]), missing.repair):
        with pytest.raises(LibraryError, match="no library"):
            op()
    assert not missing.root.exists()  # a mistyped --library leaves nothing behind


# ------------------------------------------------------------------------------------ images and samples
def test_training_images(lib: Library, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    write_png(src / "one.png")
    write_png(src / "two.PNG", (0, 255, 0))
    (src / "notes.txt").write_text("not an image")
    other = tmp_path / "other"
    other.mkdir()
    write_png(other / "one.png", (0, 0, 255))
    lib.add(concept(), images=[src, other / "one.png"])
    names = [p.name for p in lib.images("<cat-toy>")]
    assert names == ["one-2.png", "one.png", "two.PNG"]
    recorded = lib.meta("<cat-toy>")["images"]
    assert [r["file"] for r in recorded] == ["images/one.png", "images/two.PNG", "images/one-2.png"]
    assert all(len(r["sha256"]) == 64 for r in recorded)
    with pytest.raises(LibraryError, match="does not exist"):
        lib.add(concept("<b>"), images=[tmp_path / "missing"])
    with pytest.raises(LibraryError, match="not an image"):
        lib.add(concept("<b>"), images=[src / "notes.txt"])
    assert not lib.has("<b>")


def test_samples(lib: Library, tmp_path: Path) -> None:
    from PIL import Image

    lib.add(concept())
    img = Image.new("RGB", (4, 4))
    img.info["prompt"] = "a photo of <cat-toy>"
    first = lib.add_samples("<cat-toy>", [img, write_png(tmp_path / "x.png")])
    assert [p.name for p in first] == ["sample-0001.png", "sample-0002.png"]
    assert Image.open(first[0]).text["prompt"] == "a photo of <cat-toy>"
    assert [p.name for p in lib.add_samples("<cat-toy>", [img])] == ["sample-0003.png"]
    assert [p.name for p in lib.samples("<cat-toy>")] == ["sample-0001.png", "sample-0002.png", "sample-0003.png"]
    with pytest.raises(LibraryError):
        lib.add_samples("<cat-toy>", [tmp_path / "missing.png"])
    with pytest.raises(LibraryError):
        lib.add_samples("<cat-toy>", [img], prefix="../x")


# ------------------------------------------------------------------------------------ robustness
def test_index_lost_or_corrupt_is_rebuilt_from_the_folders(lib: Library) -> None:
    lib.add(concept("<a>"), tags=["x"])
    lib.add(concept("<b>"), tags=["y"])
    shutil.rmtree(lib.root / ix.INDEX_DIR)
    fresh = Library(lib.root)
    assert [e.token for e in fresh.entries()] == ["<a>", "<b>"] and fresh.problems() == []
    assert fresh.entry("<a>").tags == ("x",) and [e.token for e in fresh.search(tag="y")] == ["<b>"]
    fresh.close()
    lib.close()
    ix.index_path(lib.root).write_bytes(b"this is not a database" * 100)
    for path in lib.root.joinpath(ix.INDEX_DIR).glob("*-wal"):
        path.unlink()
    fresh = Library(lib.root)
    entries, problems = fresh.listing()
    assert [e.token for e in entries] == ["<a>", "<b>"] and problems == []
    kept = [p for p in (lib.root / ix.INDEX_DIR).glob("library.sqlite.unreadable-*") if p.name[-4:] not in ("-wal", "-shm")]
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not")  # set aside, not deleted
    fresh.add(concept("<c>"))
    assert Library(lib.root).count() == 3


def test_manifest_library_is_migrated_on_first_open_without_loss(tmp_path: Path) -> None:
    """A library written before the index (manifest.json, like the shipped embeddings/) opens with every
    entry, tag and hash; a concept whose meta.json was lost keeps the tags its manifest record had."""
    root = tmp_path / "old"
    shutil.copytree(Path(__file__).parent.parent / "embeddings", root,
                    ignore=shutil.ignore_patterns(".index", ".lock", ".tmp", ".trash"))
    records = {r["folder"]: r for r in json.loads((root / MANIFEST).read_text())["entries"]}
    assert records and not (root / ix.INDEX_DIR).exists()
    (root / "zorb" / META).unlink()
    manifest_before = (root / MANIFEST).read_bytes()
    lib = Library(root)
    entries, problems = lib.listing()
    assert problems == []
    assert {e.folder.name: (e.token, list(e.tags), e.sha256, e.num_vectors, e.dims) for e in entries} == {
        f: (r["token"], r["tags"], r["sha256"], r["num_vectors"], r["dims"]) for f, r in records.items()}
    assert ix.index_path(root).is_file() and (root / MANIFEST).read_bytes() == manifest_before  # left as it was
    for e in entries:
        assert lib.get(e.token).sha256() == e.sha256


def test_index_schema_migrations_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = Library(tmp_path / "lib")
    lib.add(concept("<a>"), tags=["x"])
    monkeypatch.setattr(ix, "INDEX_SCHEMA", 2)
    monkeypatch.setitem(ix.MIGRATIONS, 2, "ALTER TABLE concepts ADD COLUMN rating INTEGER;")
    again = Library(lib.root)
    assert [e.tags for e in again.entries()] == [("x",)]
    conn = sqlite3.connect(ix.index_path(lib.root))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert "rating" in [r[1] for r in conn.execute("PRAGMA table_info(concepts)")]
    conn.close()


def test_broken_entries_are_reported_and_skipped(lib: Library) -> None:
    for t in ("<a>", "<b>", "<c>", "<d>"):
        lib.add(concept(t))
    (lib.root / "a" / META).write_text("{broken")
    (lib.root / "b" / EMBEDDING).unlink()
    (lib.root / "c" / EMBEDDING).write_bytes(b"\x00\x01 garbage")
    (lib.root / "stray").mkdir()  # an unrelated folder is ignored silently
    entries, problems = lib.listing()
    assert [e.token for e in entries] == ["<d>"]
    assert [p.split(":")[0] for p in problems] == ["a", "b", "c"]
    assert "meta.json is unreadable" in problems[0] and "missing" in problems[1] and "not a safetensors" in problems[2]
    with pytest.raises(LibraryError, match="broken|corrupt|truncated|not a safetensors"):
        lib.get("<c>")
    assert same(lib.get("<d>"), concept("<d>"))
    assert lib.repair() == problems  # broken folders are left for a person, never deleted
    assert (lib.root / "a").is_dir() and (lib.root / "b").is_dir()


@pytest.fixture(scope="module")
def healthy_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template") / "lib"
    lib = Library(root)
    lib.add(concept("<a>", seed=1), tags=["x"])
    lib.add(concept("<b>", seed=2))
    return root


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8,
)
garbage = st.binary(max_size=64) | json_like.map(lambda v: json.dumps(v).encode()) | st.fixed_dictionaries(
    {"schema": st.integers(-1, 1), "entries": st.lists(st.dictionaries(
        st.sampled_from(["folder", "token", "dims", "num_vectors", "tags", "steps", "meta_size"]), json_like,
        max_size=6), max_size=3)}
).map(lambda v: json.dumps(v).encode())


@settings(max_examples=60, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4), max_leaves=12))
def test_meta_json_layout_keeps_every_value(value) -> None:
    from ticraft.library._common import _dump_json

    assert json.loads(_dump_json({"v": value})) == {"v": value}


_example_ids = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifest=garbage, meta=garbage)
def test_garbage_manifest_or_meta_is_never_fatal(healthy_template: Path, tmp_path: Path, manifest: bytes,
                                                meta: bytes) -> None:
    root = tmp_path / f"g{next(_example_ids)}"
    shutil.copytree(healthy_template, root)
    (root / MANIFEST).write_bytes(manifest)  # a stale manifest of an old ticraft…
    ix.index_path(root).write_bytes(manifest)  # …or garbage in place of the index
    (root / "a" / META).write_bytes(meta)
    lib = Library(root)
    entries, problems = lib.listing()  # never raises
    tokens = {e.token for e in entries}
    assert "<b>" in tokens and same(lib.get("<b>"), concept("<b>", seed=2))
    assert "<a>" in tokens or any(p.startswith("a:") for p in problems)
    lib.tag("<b>", add=["y"])  # and the library stays writable
    assert lib.entry("<b>").tags == ("y",)
    shutil.rmtree(root)


def test_meta_json_lost_is_rebuilt_from_the_header(lib: Library) -> None:
    c = concept(steps=42)
    lib.add(c, tags=["x"])
    (lib.root / "cat-toy" / META).unlink()
    assert lib.entry("<cat-toy>").tags == ("x",)  # the index still knows the tags
    shutil.rmtree(lib.root / ix.INDEX_DIR)  # and with the index lost too, the header is all there is
    lib = Library(lib.root)
    entry = lib.entry("<cat-toy>")
    assert (entry.num_vectors, entry.dims, entry.steps, entry.sha256) == (2, {"clip": 8}, 42, c.sha256())
    assert lib.problems() == []
    lib.tag("<cat-toy>", add=["y"])  # writes a fresh meta.json
    assert (lib.root / "cat-toy" / META).is_file() and lib.entry("<cat-toy>").tags == ("y",)


def test_hand_edited_meta_json_wins_over_a_stale_manifest(lib: Library) -> None:
    lib.add(concept())
    path = lib.root / "cat-toy" / META
    doc = json.loads(path.read_text())
    doc["tags"] = ["edited-by-hand"]
    path.write_text(json.dumps(doc))
    assert lib.entry("<cat-toy>").tags == ("edited-by-hand",)


def test_duplicate_folders_for_one_token(lib: Library) -> None:
    lib.add(concept())
    shutil.copytree(lib.root / "cat-toy", lib.root / "copy")
    entries, problems = lib.listing()
    assert [e.folder.name for e in entries] == ["cat-toy"]
    assert len(problems) == 1 and "copy" in problems[0]


def test_newer_schema_is_read_but_not_written(lib: Library) -> None:
    lib.add(concept())
    conn = sqlite3.connect(ix.index_path(lib.root))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    lib = Library(lib.root)
    assert [e.token for e in lib.entries()] == ["<cat-toy>"]
    assert "newer" in lib.problems()[0]
    with pytest.raises(LibraryError, match="newer than this ticraft"):
        lib.tag("<cat-toy>", add=["x"])


def test_busy_lock_gives_a_clear_error(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    lib.add(concept())
    monkeypatch.setattr(sync, "LOCK_TIMEOUT_S", 0.05)
    other = Library(lib.root)
    with FileLock(str(lib.root / ".lock")):
        with pytest.raises(LibraryError, match="busy"):
            other.tag("<cat-toy>", add=["x"])
        assert other.entries()  # reading never needs the lock


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            lib = Library(root)  # one object per writer, like separate processes
            for i in range(5):
                lib.add(concept(f"<{prefix}{i}>", seed=i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lib = Library(root)
    assert len(lib.entries()) == 10 and lib.problems() == [] and lib.count() == 10
    conn = sqlite3.connect(ix.index_path(root))
    assert conn.execute("SELECT count(*) FROM concepts").fetchone()[0] == 10
    conn.close()


# ------------------------------------------------------------------------------------ crash safety
class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so no handler 'recovers' from it."""


def snapshot(lib: Library) -> dict[str, str]:
    """token → vector hash of every entry; also asserts the library reads cleanly."""
    entries, problems = lib.listing()
    assert problems == []
    out = {}
    for e in entries:
        c = lib.get(e.token)
        assert c.sha256() == e.sha256
        out[e.token] = e.sha256
    return out


OPERATIONS = {
    "add": lambda lib: lib.add(concept("<new>", seed=9), images=[lib.root.parent / "img.png"]),
    "overwrite": lambda lib: lib.add(concept("<a>", seed=9), overwrite=True),
    "rename": lambda lib: lib.rename("<a>", "<renamed>"),
    "rename-case": lambda lib: lib.rename("<a>", "<A>"),
    "add-batch": lambda lib: lib.add_many([concept("<n1>", seed=7), concept("<n2>", seed=8), concept("<a>", seed=9)],
                                          overwrite=True),
    "remove": lambda lib: lib.remove("<a>"),
    "tag": lambda lib: lib.tag("<a>", add=["new"]),
    "set_meta": lambda lib: lib.set_meta("<a>", steps=99),
}


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_a_crash_at_any_step_leaves_the_library_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         op: str) -> None:
    """Kill the operation at its k-th filesystem change or index commit, for every k: before/after states only."""
    write_png(tmp_path / "img.png")
    template = tmp_path / "template"
    seed_lib = Library(template)
    seed_lib.add(concept("<a>", seed=1), tags=["t"])
    seed_lib.add(concept("<b>", seed=2))
    before = snapshot(seed_lib)
    done = Library(tmp_path / "done")
    shutil.copytree(template, done.root)
    OPERATIONS[op](done)
    after = snapshot(done)

    # Crash points: every file-system change, and every index commit (the journal entry and the operation's
    # row changes), so the database's commit points are killed at too.
    real = {"replace": os.replace, "rename": os.rename, "rmtree": shutil.rmtree, "announce": ix.announce,
            "commit": sync.IndexKeeper._commit}
    for k in range(1, 40):
        root = tmp_path / f"crash-{k}"
        shutil.copytree(template, root)
        calls = {"n": 0}

        def maybe_crash(name: str):
            def wrapped(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] == k:
                    raise Crash()
                return real[name](*args, **kwargs)
            return wrapped

        with monkeypatch.context() as m:
            m.setattr(os, "replace", maybe_crash("replace"))
            m.setattr(os, "rename", maybe_crash("rename"))
            m.setattr(shutil, "rmtree", maybe_crash("rmtree"))
            m.setattr(ix, "announce", maybe_crash("announce"))
            m.setattr(sync.IndexKeeper, "_commit", maybe_crash("commit"))
            try:
                OPERATIONS[op](Library(root))
                finished = True
            except Crash:
                finished = False
        lib = Library(root)
        state = snapshot(lib)  # readable, no problems, every listed vector loads
        assert state in (before, after), (k, state)  # a batch is all or nothing, a rename never leaves both
        lib.repair()  # the next writer settles what the crash left behind
        assert snapshot(lib) == state
        assert not (root / ".tmp").exists() and not any((root / ".trash").glob("*"))
        assert not list(root.rglob(".*.tmp"))  # half-written temp files are swept too
        if finished:
            assert k > 1
            break
    else:  # pragma: no cover
        pytest.fail("operation never finished")


CHILD = textwrap.dedent("""
    import sys, torch
    from ticraft.concept import Concept
    from ticraft.library import Library
    lib, run = Library(sys.argv[1]), sys.argv[2]
    i = 0
    while True:
        i += 1
        c = Concept("<a>", {"clip": torch.full((2, 8), float(i))}, family="toy", meta={"i": i})
        lib.add(c, overwrite=True)
        lib.add(c.replace(token=f"<n{run}-{i}>"))
        lib.tag("<a>", add=[f"t{i}"])
        lib.rename(f"<n{run}-{i}>", f"<m{run}-{i}>")
        lib.remove(f"<m{run}-{i}>")
        print(i, flush=True)
""")


def test_killing_a_writer_process_leaves_the_library_readable(tmp_path: Path) -> None:
    """A real SIGKILL somewhere inside a loop of every kind of write (the in-process test above
    covers each step deterministically; this one checks nothing else is assumed)."""
    root = tmp_path / "lib"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(3):
            assert proc.stdout.readline(), "writer died early"
        time.sleep(random.uniform(0.0, 0.02))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    lib = Library(root)
    entries, problems = lib.listing()
    assert problems == [], problems
    for e in entries:
        assert lib.get(e.token).sha256() == e.sha256
    assert "<a>" in {e.token for e in entries}
    lib.repair()
    assert lib.problems() == [] and not (root / ".tmp").exists()


# ------------------------------------------------------------------------------------ location
def test_resolve_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TICRAFT_LIBRARY", str(tmp_path / "env"))
    assert Library.resolve(tmp_path / "explicit").root == tmp_path / "explicit"
    assert Library.resolve().root == tmp_path / "env"
    monkeypatch.delenv("TICRAFT_LIBRARY")
    (tmp_path / "embeddings").mkdir()
    assert Library.resolve().root != tmp_path / "embeddings"  # no manifest: not a library
    (tmp_path / "embeddings" / MANIFEST).write_text('{"schema": 1, "entries": []}')
    assert Library.resolve().root == tmp_path / "embeddings"
    (tmp_path / "embeddings" / MANIFEST).unlink()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if sys.platform.startswith("linux"):
        assert Library.resolve().root == tmp_path / "data" / "ticraft" / "library"


# ------------------------------------------------------------------------------------ other layouts
def test_family_override_is_checked() -> None:
    c = Concept("<x>", {"clip": torch.zeros(1, 768)})
    assert c.family == "sd1"
    assert apply_family(c, "custom").family == "custom"
    with pytest.raises(LibraryError, match="expects"):
        apply_family(c, "sd2")
    with pytest.raises(LibraryError, match="expects"):
        apply_family(c, "sdxl")
    with pytest.raises(LibraryError, match="unknown family"):
        apply_family(c, "sd9")


def test_library_files_import_into_another_library(lib: Library, tmp_path: Path) -> None:
    c = concept(steps=5)
    entry = lib.add(c)
    other = Library(tmp_path / "other")
    [imported] = other.import_file(entry.embedding, token="<copy>", tags=["copied"])
    back = other.get("<copy>")
    assert same(back, c) and imported.tags == ("copied",)
    assert back.meta["steps"] == 5 and back.meta["source"] == EMBEDDING and back.meta["source_token"] == "<cat-toy>"


@pytest.mark.parametrize("layout", ["diffusers", "a1111", "kohya"])
@pytest.mark.parametrize("make", [concept, sdxl_concept], ids=["single", "sdxl"])
def test_export_and_import_round_trip(lib: Library, tmp_path: Path, layout: str, make) -> None:
    c = make()
    lib.add(c)
    out = tmp_path / "out"
    out.mkdir()
    if layout == "a1111" and c.is_sdxl:  # A1111 .pt holds one encoder: a clear error, nothing written
        with pytest.raises(TicraftError, match="kohya"):
            lib.export(c.token, out, layout)
        assert not any(out.iterdir())
        return
    files = lib.export(c.token, out, layout)
    assert files and all(p.is_file() for p in files)
    if layout == "a1111":
        assert files[0].suffix == ".pt"
    if layout == "diffusers" and c.is_sdxl:
        assert [p.name for p in files] == ["xl.safetensors", "xl_2.safetensors"]
        files[0].unlink()  # the companion alone still blocks an accidental overwrite
        with pytest.raises(LibraryError, match="xl_2.safetensors already exists"):
            lib.export(c.token, out, layout)
        files = lib.export(c.token, out, layout, overwrite=True)
    with pytest.raises(LibraryError, match="already exists"):
        lib.export(c.token, files[0], layout)
    assert lib.export(c.token, files[0], layout, overwrite=True)[0] == files[0]
    other = Library(tmp_path / "other")
    [entry] = other.import_file(files[0], token=c.token)
    assert same(other.get(c.token), c)
    assert entry.sha256 == c.sha256() and entry.family == c.family


def test_import_several_concepts_from_one_file(lib: Library, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "many.safetensors"
    save_file({"<a>": torch.ones(1, 768), "<b>": torch.zeros(2, 768)}, str(path))
    entries = lib.import_file(path, tags=["pair"])
    assert [e.token for e in entries] == ["<a>", "<b>"] and all(e.family == "sd1" for e in entries)
    with pytest.raises(LibraryError, match="already in the library"):
        lib.import_file(path)
    with pytest.raises(LibraryError, match="none is <c>"):
        Library(tmp_path / "x").import_file(path, token="<c>")
    [picked] = Library(tmp_path / "y").import_file(path, token="b")
    assert picked.token == "<b>" and picked.num_vectors == 2


def test_bad_files_give_clear_errors(lib: Library, tmp_path: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(TicraftError):
        lib.import_file(empty)
    with pytest.raises(LibraryError, match="no such file"):
        lib.import_file(tmp_path / "missing.pt")
    with pytest.raises(LibraryError, match="folder"):
        read_file(tmp_path)
    with pytest.raises(LibraryError, match="unknown export format"):
        write_file(concept(), tmp_path / "x.bin", "paper")
    assert not lib.root.exists()


def test_encode_canonical_refuses_other_encoders() -> None:
    with pytest.raises(LibraryError, match="encoders"):
        encode_canonical(Concept("<x>", {"emb": torch.zeros(1, 4)}, family=None))


def test_a_hand_edited_meta_json_reaches_the_index(lib: Library) -> None:
    lib.add(concept("<a>", seed=1), tags=["old"])
    lib.add(concept("<b>", seed=2))
    path = lib.root / "a" / META
    doc = json.loads(path.read_text())
    doc["tags"], doc["created"] = ["by-hand"], "2026-01-01T00:00:00Z"
    path.write_text(json.dumps(doc))
    fresh = Library(lib.root)
    assert [(e.token, e.tags, e.created) for e in fresh.page(0, 1)] == [("<a>", ("by-hand",), "2026-01-01T00:00:00Z")]
    assert [e.token for e in fresh.search(tag="by-hand")] == ["<a>"] and fresh.search(tag="old") == []


def test_readers_are_not_blocked_by_a_writer_inside_the_index(lib: Library) -> None:
    """WAL: while another connection holds the index's write transaction (and the library lock), readers read
    the last committed state."""
    from filelock import FileLock

    lib.add(concept("<a>"), tags=["x"])
    writer = sqlite3.connect(ix.index_path(lib.root), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE concepts SET tags = '[\"uncommitted\"]'")
    try:
        with FileLock(str(lib.root / ".lock")):
            reader = Library(lib.root)
            assert [(e.token, e.tags) for e in reader.entries()] == [("<a>", ("x",))]
            assert reader.count(tag="x") == 1 and reader.get("<a>").token == "<a>"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
