"""A backend for tests and demos: the real library, fake model work.

:class:`FakeModelBackend` keeps every library operation real (it *is* a :class:`RealBackend`) but
replaces what needs a model — generation, training, neighbours, maps — with deterministic,
fast stand-ins that still drive the progress callback step by step, so the UI's workers,
progress bars, cancellation and error paths can be tested without torch or weights.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any, Sequence

from .backend import GenerateRequest, MapPoint, Progress, RealBackend, TrainRequest


WORDS = ["red", "circle", "square", "blue", "stripes", "small", "large", "green", "dots", "star"]


def _colour(text: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(text.encode()).digest()
    return digest[0], digest[1], digest[2]


def fake_image(text: str, size: int = 32) -> Any:
    """A small deterministic picture for ``text``: a coloured square with a diagonal band."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), _colour(text))
    ImageDraw.Draw(img).line([(0, 0), (size, size)], fill=_colour(text[::-1]), width=max(2, size // 6))
    return img


class FakeModelBackend(RealBackend):
    """RealBackend with instant, deterministic model work.

    Args:
        step_delay: seconds each fake loop step sleeps (lets tests cancel mid-job).
        steps: steps each fake loop runs.
        fail: name of a method (``"generate"``, ``"train"``…) that raises, to test error paths.
    """

    def __init__(self, library: Any = None, model: str | None = "fake", *, step_delay: float = 0.0,
                 steps: int = 5, fail: str | None = None) -> None:
        super().__init__(library, model)
        self.step_delay = step_delay
        self.steps = steps
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []

    def _loop(self, name: str, callback: Progress | None, total: int | None = None) -> None:
        total = total or self.steps
        for step in range(1, total + 1):
            if self.fail == name and step == max(1, total // 2):
                raise RuntimeError(f"fake {name} failure")
            time.sleep(self.step_delay)
            if callback is not None:
                callback(step, total, 1.0 / step, None)

    def backbone(self) -> Any:
        return None

    def neighbors(self, token: str, k: int = 8) -> list[tuple[str, list[tuple[str, float]]]]:
        self.calls.append(("neighbors", token))
        n = self.library.entry(token).num_vectors
        labels = ["mean"] + ([f"vector {i}" for i in range(n)] if n > 1 else [])
        return [(label, [(WORDS[(i + j) % len(WORDS)], round(0.9 - 0.05 * j, 2)) for j in range(k)])
                for i, label in enumerate(labels)]

    def generate(self, request: GenerateRequest, callback: Progress | None = None) -> list[Any]:
        self.calls.append(("generate", request))
        self._loop("generate", callback)
        return [fake_image(f"{request.prompt}|{request.seed + i}") for i in range(max(1, request.count))]

    def interpolate(self, a: str, b: str, frames: int, request: GenerateRequest,
                    callback: Progress | None = None) -> list[Any]:
        self.calls.append(("interpolate", (a, b, frames)))
        self._loop("interpolate", callback, frames)
        return [fake_image(f"{a}|{b}|{i}") for i in range(frames)]

    def presets(self) -> list[str]:
        return ["fast", "paper"]

    def previews(self, request: TrainRequest) -> list[Path]:
        return []

    def train(self, request: TrainRequest, callback: Progress | None = None) -> str:
        self.calls.append(("train", request))
        from ticraft.concept import Concept
        import torch

        self._loop("train", callback, request.steps or self.steps)
        concept = Concept(request.token, {"clip": torch.ones(1, 8)}, family="toy",
                          meta={"initializer": request.initializer, "steps": request.steps or self.steps})
        self.library.add(concept, images=request.images, overwrite=True)
        return concept.token

    def map_points(self, method: str = "pca") -> list[MapPoint]:
        self.calls.append(("map", method))
        points = [MapPoint(w, math.cos(i), math.sin(i), "neighbor" if i < 2 else "vocab") for i, w in enumerate(WORDS)]
        for i, entry in enumerate(self.library.entries()):
            points.append(MapPoint(entry.token, 0.5 * math.cos(2 * i + 1), 0.5 * math.sin(2 * i + 1), "concept"))
        return points


def make_library(root: str | Path, count: int = 5, *, images: bool = True, seed_tags: Sequence[str] = ("object", "style")) -> Any:
    """A library of ``count`` small toy concepts with fixed dates (for stable snapshots) and images."""
    import json

    import torch
    from ticraft.concept import Concept
    from ticraft.library import Library

    lib = Library(root)
    names = ["red-ball", "blue-cube", "striped-star", "dotted-ring", "green-kite", "tiny-moon", "big-sun"]
    gen = torch.Generator().manual_seed(0)
    src = Path(root).parent / f".{Path(root).name}-images"
    for i in range(count):
        name = names[i] if i < len(names) else f"concept-{i:03d}"
        n = 1 + i % 3
        concept = Concept(f"<{name}>", {"clip": torch.randn(n, 8, generator=gen)}, family="toy",
                          meta={"initializer": name.split("-")[-1], "steps": 100 * (i + 1)})
        files: list[Path] = []
        if images and i < 3:
            src.mkdir(parents=True, exist_ok=True)
            for j in range(2):
                path = src / f"{name}-{j}.png"
                fake_image(f"{name}{j}", 48).save(path)
                files.append(path)
        lib.add(concept, images=files, tags=[seed_tags[i % len(seed_tags)]])
    # Fixed dates so the detail pane (and snapshots) never depend on when the test ran.
    for entry in lib.entries():
        meta_path = entry.folder / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta["created"] = meta["updated"] = "2026-01-01T00:00:00Z"
        meta_path.write_text(json.dumps(meta))  # the manifest notices the new mtime and rereads it
    return lib
