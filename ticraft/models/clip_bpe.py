"""CLIP's tokenizer and the shipped diffusers configs, assembled offline into ticraft's cache.

A single-file checkpoint carries weights only. ticraft ships the small diffusers configs of the families it
knows (``ticraft/models/configs/``) and builds CLIP's BPE vocabulary (``vocab.json`` + ``merges.txt``) from
the file that the ``open-clip-torch`` package carries (found without importing it); the byte alphabet is
transformers' own. Both are assembled once into a cache folder (:func:`cached_config_dir`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ticraft.io import atomic_folder
from ticraft.models.checkpoints import SHIPPED_CONFIGS, _error
from ticraft.models.paths import CONFIG_ROOT

__all__ = ["clip_bpe_path", "clip_vocab_and_merges", "ticraft_cache_dir", "clip_tokenizer_files",
           "cached_config_dir", "load_clip_tokenizer"]


# --------------------------------------------------------------------- tokenizer
def clip_bpe_path() -> Path:
    """open-clip-torch's ``bpe_simple_vocab_16e6.txt.gz`` (located without importing open_clip)."""
    import importlib.metadata
    import importlib.util

    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution("open_clip_torch")
        candidates.append(Path(str(dist.locate_file("open_clip/bpe_simple_vocab_16e6.txt.gz"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("open_clip")  # finds the folder; does not run open_clip/__init__.py
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "bpe_simple_vocab_16e6.txt.gz" for p in spec.submodule_search_locations]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise _error(
        "building the CLIP tokenizer for a single-file checkpoint needs CLIP's BPE vocabulary, which ticraft takes "
        "from the open-clip-torch package: `pip install open-clip-torch` (or `pip install ticraft[clip]`). "
        "Alternatively pass a diffusers folder, which carries its own tokenizer."
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte-level alphabet (byte → printable character), as transformers defines it."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return dict(bytes_to_unicode())


def clip_vocab_and_merges(bpe_gz: Path) -> tuple[dict[str, int], list[str]]:
    """CLIP's 49408-token vocabulary and its BPE merges, as OpenAI's tokenizer builds them."""
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # line 0 is a version header; 48894 merges
    base = list(_bytes_to_unicode().values())
    vocab = base + [b + "</w>" for b in base] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def ticraft_cache_dir() -> Path:
    """ticraft's cache folder: ``$XDG_CACHE_HOME/ticraft`` or the platform's user cache dir."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "ticraft"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ticraft"))


def clip_tokenizer_files(cache: Path | None = None) -> Path:
    """A folder holding CLIP's ``vocab.json`` and ``merges.txt`` (built once from open-clip's BPE file)."""
    folder = (cache or ticraft_cache_dir()) / "clip-bpe"
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder
    vocab, merges = clip_vocab_and_merges(clip_bpe_path())
    with atomic_folder(folder) as tmp:
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


def cached_config_dir(name: str, cache: Path | None = None) -> Path:
    """A complete diffusers config folder for shipped config ``name`` (configs + tokenizer vocabulary).

    Lives in the cache under a hash of the shipped files, so an upgraded ticraft rebuilds it.
    """
    src = CONFIG_ROOT / name
    if name not in SHIPPED_CONFIGS or not (src / "model_index.json").is_file():
        raise _error(
            f"ticraft ships no config {name!r} (known: {', '.join(SHIPPED_CONFIGS)}); is the install complete?")
    files = sorted(p for p in src.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(src)).encode())
        digest.update(p.read_bytes())
    cache = cache or ticraft_cache_dir()
    dest = cache / "configs" / f"{name}-{digest.hexdigest()[:12]}"
    if (dest / "model_index.json").is_file():
        return dest
    bpe = clip_tokenizer_files(cache)
    with atomic_folder(dest) as tmp:
        for p in files:
            out = tmp / p.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, out)
        for tok_dir in (d for d in tmp.iterdir() if d.name.startswith("tokenizer")):
            shutil.copyfile(bpe / "vocab.json", tok_dir / "vocab.json")
            shutil.copyfile(bpe / "merges.txt", tok_dir / "merges.txt")
    return dest


def load_clip_tokenizer(folder: Path) -> Any:
    """A ``CLIPTokenizer`` from ``folder``; where it has no vocabulary, CLIP's own (open-clip BPE)."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    # transformers ≥ 5 saves tokenizer.json only; older saves (and our cache) have vocab.json + merges.txt.
    if (folder / "vocab.json").is_file() or (folder / "tokenizer.json").is_file():
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    bpe = clip_tokenizer_files()
    special: dict[str, Any] = {}
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text())
        names = ("pad_token", "bos_token", "eos_token", "unk_token")
        special = {k: data[k] for k in names if isinstance(data.get(k), str)}
    return CLIPTokenizer(str(bpe / "vocab.json"), str(bpe / "merges.txt"), model_max_length=77, **special)


