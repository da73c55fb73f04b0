"""Resumable bench runs: the partial result and each finished run's last concept, kept in one folder.

A full suite takes hours on a small machine. With a state folder (``ticraft bench --resume DIR``) every finished
concept × method is written there at once — ``partial.json`` (the result so far) and ``finals/<method>__<concept>
.safetensors`` (the concept at the ladder's top, which the two-concept prompts need at the end) — and a rerun with
the same settings skips what is there. A folder made with other settings is refused rather than mixed in.

>>> import tempfile
>>> state = BenchState(Path(tempfile.mkdtemp()), {"ladder": [64, 128], "n": 2})
>>> state.load() is None   # a new folder
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticraft.bench.suite import BenchError

if TYPE_CHECKING:
    from ticraft.concept import Concept

#: Settings that must match for a folder's runs to be reused (methods and concepts may grow: new ones just run).
SAME = ("ladder", "n", "eval_steps", "threads", "seed", "quick", "dvar", "model")


class BenchState:
    """The state folder of one resumable bench run (see the module docstring)."""

    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.result_path = self.folder / "partial.json"

    def load(self) -> dict[str, Any] | None:
        """The partial result written earlier, or None for a new folder; other settings raise one BenchError."""
        if self.folder.exists() and not self.folder.is_dir():
            raise BenchError(f"{self.folder}: the resume folder is a file; give a folder")
        if not self.result_path.is_file():
            return None
        try:
            prior = json.loads(self.result_path.read_text())
            old = prior["settings"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"{self.result_path}: not a bench result this version can resume ({exc})") from None
        for key in SAME:
            if old.get(key) != self.settings.get(key):
                raise BenchError(f"{self.folder}: holds a bench run with other settings ({key}: {old.get(key)} now "
                                 f"{self.settings.get(key)}); resume with the same settings or use another folder")
        return prior

    def save(self, result: dict[str, Any]) -> None:
        """Write the result so far (atomically: a run killed while writing leaves the previous one)."""
        from ticraft.io import atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.result_path, json.dumps(result, indent=1, default=str) + "\n")

    def _final_path(self, method: str, key: str) -> Path:
        return self.folder / "finals" / f"{method}__{key.replace('@', '-')}.safetensors"

    def save_final(self, method: str, key: str, concept: "Concept") -> None:
        """Keep the concept a run ended with (its vectors, family and layout meta)."""
        from safetensors.torch import save

        from ticraft.io import atomic_write_bytes

        path = self._final_path(method, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"token": concept.token, "family": concept.family or "", "meta": json.dumps(concept.meta)}
        atomic_write_bytes(path, save({k: v.contiguous() for k, v in concept.vectors.items()}, metadata=meta))

    def load_final(self, method: str, key: str) -> "Concept | None":
        """The concept a finished run ended with, or None when it was not kept."""
        from safetensors import safe_open

        from ticraft.concept import Concept

        path = self._final_path(method, key)
        if not path.is_file():
            return None
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            vectors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items())
        return Concept(meta.get("token") or f"<{key}>", vectors, family=meta.get("family") or None,
                       meta=json.loads(meta.get("meta") or "{}"))
