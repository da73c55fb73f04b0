"""Find the text-to-image models this machine holds, without loading any weights.

:func:`find_models` looks at the shipped toy model, the local Hugging Face hub cache (diffusers
pipelines only), the folders named in the ``model_dirs`` setting and any extra folders, and the
configured default model. Families come from config JSONs and safetensors headers (a few KB per
file), and from a scan of pickle opcodes for ``.ckpt`` files (nothing is unpickled). Importing this
module does not import torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ticraft.models import single_file as sf
from ticraft.models.paths import TOY_WEIGHTS

MAX_SCAN_DEPTH = 2  # how deep below a model dir to look (A1111 keeps checkpoints in subfolders)


@dataclass(frozen=True)
class ModelInfo:
    """One model found on disk."""

    name: str  # what to show; for kind "cache" the hub id, which is also what --model takes
    family: str  # toy | sd1 | sd2 | sdxl | custom | unknown
    kind: str  # toy | folder | file | cache
    path: Path
    size_bytes: int

    @property
    def spec(self) -> str:
        """What to pass to ``--model`` / ``ticraft config set model`` for this model."""
        if self.kind == "toy":
            return "toy"
        if self.kind == "cache":
            return self.name
        return str(self.path)

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["spec"] = self.spec
        return d


# ------------------------------------------------------------------ families
def folder_family(folder: Path) -> str:
    """Family of a diffusers pipeline folder from its JSON configs (same rule as ``backbone.detect_family``)."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "unknown"
    if folder.resolve() == TOY_WEIGHTS.resolve() or (folder / "ticraft_toyworld.json").is_file():
        return "toy"  # a copy of the toy weights too: its provenance record is part of the model
    if "XL" in str(index.get("_class_name", "")):
        return "sdxl"
    from ticraft.models.mmdit import family_of_index

    if flow := family_of_index(index):  # SD3/SD3.5, Flux
        return flow
    try:
        hidden = json.loads((folder / "text_encoder" / "config.json").read_text()).get("hidden_size")
    except (OSError, json.JSONDecodeError):
        return "unknown"
    return {768: "sd1", 1024: "sd2"}.get(hidden, "custom")


def file_family(path: Path) -> str | None:
    """Family of a checkpoint file from its keys, or None when it is not a full SD model (LoRA, VAE, …)."""
    try:
        shapes = sf.checkpoint_shapes(path)
    except (OSError, ValueError):  # BackboneError is a ValueError: an unreadable header
        return "unknown"
    if not shapes:
        return "unknown"  # a pickle we could not scan: show it, do not guess
    try:
        return sf.detect_checkpoint(shapes, source=path.name).family
    except ValueError:
        return None


# --------------------------------------------------------------------- sizes
def tree_size(path: Path) -> int:
    """Bytes under ``path``, following the hub cache's symlinks into blobs once each."""
    if path.is_file():
        return path.stat().st_size
    seen: set[Path] = set()
    total = 0
    for p in path.rglob("*"):
        try:
            real = p.resolve()
            if real in seen or not real.is_file():
                continue
            seen.add(real)
            total += real.stat().st_size
        except OSError:
            continue
    return total


# ------------------------------------------------------------------- scanning
def configured_model_dirs() -> list[Path]:
    """Folders from the ``model_dirs`` setting (``os.pathsep``-separated string or a JSON list)."""
    from ticraft.user_config import get_config_value

    raw = get_config_value("model_dirs")
    if not raw:
        return []
    items = raw if isinstance(raw, list) else str(raw).split(os.pathsep)
    return [Path(str(i)).expanduser() for i in items if str(i).strip()]


def scan_dir(root: Path, depth: int = MAX_SCAN_DEPTH) -> Iterator[ModelInfo]:
    """Diffusers folders and full SD checkpoint files at or below ``root`` (``depth`` levels)."""
    root = Path(root).expanduser()
    if (root / "model_index.json").is_file():
        # A pipeline's sub-folders are its components, not more models; a configs-only copy is not loadable.
        if not _incomplete(root):
            yield ModelInfo(root.name, folder_family(root), "folder", root.resolve(), tree_size(root))
        return
    if root.is_file():
        fam = file_family(root) if root.suffix in sf.CHECKPOINT_SUFFIXES else None
        if fam is not None:
            yield ModelInfo(root.name, fam, "file", root.resolve(), root.stat().st_size)
        return
    if not root.is_dir():
        return
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and depth > 0:
            yield from scan_dir(entry, depth - 1)
        elif entry.is_file() and entry.suffix in (".safetensors", ".ckpt"):
            yield from scan_dir(entry, 0)


def _incomplete(folder: Path) -> bool:
    """True when a pipeline folder lacks weight files for a model component (or its index is unreadable)."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError):
        return True
    return bool(sf.missing_weights(folder, index))


def scan_hf_cache(cache_dir: Path | None = None) -> Iterator[ModelInfo]:
    """Diffusers pipelines in the hub cache (those with weights for every model component)."""
    for repo_id, snap in sf.cached_pipelines(cache_dir):
        if _incomplete(snap):  # configs-only downloads cannot be loaded
            continue
        yield ModelInfo(repo_id, folder_family(snap), "cache", snap, tree_size(snap))


def info_for_spec(spec: str) -> ModelInfo | None:
    """A ModelInfo for a ``--model`` spec (toy, folder, file, cached hub id), or None if it is not found."""
    if spec == "toy":
        if (TOY_WEIGHTS / "model_index.json").is_file():
            return ModelInfo("toy", "toy", "toy", TOY_WEIGHTS, tree_size(TOY_WEIGHTS))
        return None
    path = Path(spec).expanduser()
    if path.is_dir():
        fam = folder_family(path) if (path / "model_index.json").is_file() else "unknown"
        return ModelInfo(path.name, fam, "folder", path.resolve(), tree_size(path))
    if path.is_file():
        return ModelInfo(path.name, file_family(path) or "unknown", "file", path.resolve(), path.stat().st_size)
    snap = sf.cached_snapshot(spec) if "/" in spec and not spec.startswith((".", "/", "~")) else None
    if snap is not None and (snap / "model_index.json").is_file():
        return ModelInfo(sf.split_revision(spec)[0], folder_family(snap), "cache", snap, tree_size(snap))
    return None


def find_models(extra_dirs: Iterable[str | os.PathLike] = ()) -> list[ModelInfo]:
    """Every model ticraft can find: toy, HF cache, ``model_dirs``, ``extra_dirs``, the configured default.

    Duplicates (the same path reached twice) are listed once.
    """
    from ticraft.user_config import get_config_value

    found: list[ModelInfo] = []
    toy = info_for_spec("toy")
    if toy:
        found.append(toy)
    found += scan_hf_cache()
    for d in [*configured_model_dirs(), *(Path(e) for e in extra_dirs)]:
        found += scan_dir(Path(d))
    default = get_config_value("model")
    if default:
        info = info_for_spec(str(default))
        if info:
            found.append(info)
    unique: dict[tuple[str, str], ModelInfo] = {}
    for m in found:
        unique.setdefault((m.kind if m.kind in ("toy", "cache") else "path", str(m.path)), m)
    return list(unique.values())


def is_default(model: ModelInfo, default: str | None) -> bool:
    """Whether ``model`` is the configured default spec (compared as paths where they are paths)."""
    if not default:
        return model.kind == "toy"  # no setting: commands fall back to the toy model
    if model.kind in ("toy", "cache"):
        return default == model.spec or (model.kind == "cache" and sf.split_revision(default)[0] == model.name)
    try:
        return Path(default).expanduser().resolve() == model.path.resolve()
    except OSError:
        return False


def human_size(n: int) -> str:
    """1536 → '1.5 KB'."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
