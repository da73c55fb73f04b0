"""Models already in the local Hugging Face cache, found with huggingface_hub's own cache readers; never a download.

``--model org/name[@revision]`` resolves to a snapshot folder of the hub cache
(``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``): :func:`find_in_hf_cache` asks
``huggingface_hub.try_to_load_from_cache`` for the pipeline's ``model_index.json`` (following
``refs/<revision>``), and falls back on ``huggingface_hub.scan_cache_dir`` for the cases it does not cover
(a commit given directly, a hand-copied cache without ``refs/``, a snapshot that is not a pipeline), so
that each error names the repo, the cache searched and what to do. :func:`offline_hub` switches the
Hugging Face libraries offline while a model loads.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ticraft.models.checkpoints import _error

__all__ = ["offline_hub", "hf_hub_cache_dir", "split_revision", "cached_snapshot", "missing_weights",
           "find_in_hf_cache", "cached_pipelines"]

INDEX = "model_index.json"


@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """Force Hugging Face libraries offline for the duration (env vars and already-imported flags).

    huggingface_hub reads ``HF_HUB_OFFLINE`` once at import, and diffusers copies the flag into some
    modules, so setting the environment alone is not enough in a running process.
    """
    import huggingface_hub.constants as hf_constants

    env_keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in env_keys}
    patched: list[tuple[Any, Any]] = [(hf_constants, hf_constants.HF_HUB_OFFLINE)]
    for k in env_keys:
        os.environ[k] = "1"
    hf_constants.HF_HUB_OFFLINE = True
    with contextlib.suppress(ImportError):
        import diffusers.utils.hub_utils as d_hub

        patched.append((d_hub, d_hub.HF_HUB_OFFLINE))
        d_hub.HF_HUB_OFFLINE = True
    if not hf_constants.is_offline_mode():  # the check every hub request goes through
        raise RuntimeError("could not switch huggingface_hub to offline mode")
    try:
        yield
    finally:
        for module, value in patched:
            module.HF_HUB_OFFLINE = value
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub resolves it (read from the environment *now*)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def split_revision(repo_id: str) -> tuple[str, str]:
    """`org/name@rev` → (`org/name`, `rev`); the revision defaults to `main`."""
    repo, _, rev = repo_id.partition("@")
    return repo, rev or "main"


def _scan(cache: Path) -> dict[str, Any]:
    """``{repo_id: CachedRepoInfo}`` of the model repos in ``cache`` (huggingface_hub's scan; empty when absent)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    if not cache.is_dir():
        return {}
    try:
        info = scan_cache_dir(cache)
    except CacheNotFound:
        return {}
    return {r.repo_id: r for r in info.repos if r.repo_type == "model"}


def _pick_revision(repo: Any, rev: str) -> Path | None:
    """The snapshot of ``rev`` (a ref or a commit) in a scanned repo; for ``main`` without refs, the latest pipeline."""
    for r in repo.revisions:
        if rev in r.refs or r.commit_hash == rev:
            return Path(r.snapshot_path)
    if rev != "main":
        return None
    found = [r for r in repo.revisions if (Path(r.snapshot_path) / INDEX).is_file()]
    return Path(max(found, key=lambda r: r.last_modified).snapshot_path) if found else None


def cached_snapshot(repo_id: str, cache_dir: Path | None = None) -> Path | None:
    """The snapshot folder of ``repo_id`` (``org/name[@revision]``) in the hub cache, or None.

    Follows ``refs/<revision>`` like huggingface_hub; without refs (a hand-copied cache) it takes the
    most recent snapshot that has a ``model_index.json``.
    """
    from huggingface_hub import try_to_load_from_cache

    repo, rev = split_revision(repo_id)
    cache = cache_dir or hf_hub_cache_dir()
    try:
        hit = try_to_load_from_cache(repo, INDEX, cache_dir=str(cache), revision=rev)
    except ValueError:  # not a valid repo id
        return None
    if isinstance(hit, str):
        return Path(hit).parent
    scanned = _scan(cache).get(repo)
    return _pick_revision(scanned, rev) if scanned is not None else None


def missing_weights(folder: Path, index: dict[str, Any]) -> list[str]:
    """Model components of a pipeline folder whose weight files are absent (e.g. a configs-only download)."""
    weight_globs = ("*.safetensors", "*.bin")
    out = []
    for comp in ("unet", "transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        entry = index.get(comp)
        if not (isinstance(entry, list) and entry and entry[0]):
            continue
        d = folder / comp
        # Cache files are symlinks into blobs/: is_file() is False for a dangling (half-downloaded) one.
        if not any(p.is_file() for g in weight_globs for p in d.glob(g)):
            out.append(comp)
    return out


def find_in_hf_cache(repo_id: str) -> Path:
    """The local snapshot folder of a diffusers pipeline ``org/name`` already in the HF cache.

    Nothing is downloaded. Raises :class:`BackboneError` naming the repo, the cache searched, and
    what to do when the repo is absent, is not a diffusers pipeline, or lacks weight files.
    """
    cache = hf_hub_cache_dir()
    repo, rev = split_revision(repo_id)
    snap = cached_snapshot(repo_id, cache)
    hint = (
        "ticraft never downloads: fetch it on a machine with internet access "
        f"(`hf download {repo}`), copy the folder here and pass it with --model /path/to/folder, "
        "or point HF_HUB_CACHE at a cache that holds it."
    )
    if snap is None:
        where = f"{repo}{'@' + rev if rev != 'main' else ''}"
        raise _error(f"model {where} is not in the local Hugging Face cache ({cache}). {hint}")
    index_path = snap / "model_index.json"
    if not index_path.is_file():
        raise _error(f"{repo} is in the Hugging Face cache ({snap}) but is not a diffusers pipeline "
                     f"(no model_index.json). {hint}")
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise _error(f"{index_path} is unreadable ({exc}); re-download {repo}") from exc
    missing = missing_weights(snap, index)
    if missing:
        raise _error(
            f"{repo} is in the Hugging Face cache ({snap}) without weights for {', '.join(missing)} "
            f"(configs only, or an interrupted download). {hint}"
        )
    return snap


def cached_pipelines(cache_dir: Path | None = None) -> list[tuple[str, Path]]:
    """``(repo_id, snapshot folder)`` of every diffusers pipeline in the hub cache (weights not checked)."""
    out = []
    for repo_id, repo in sorted(_scan(cache_dir or hf_hub_cache_dir()).items()):
        snap = _pick_revision(repo, "main")
        if snap is not None and (snap / INDEX).is_file():
            out.append((repo_id, snap))
    return out
