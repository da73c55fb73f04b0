"""A backend for tests and demos: the real library, fake model work.

:class:`FakeModelBackend` keeps every library operation real (it *is* a :class:`RealBackend`) but
replaces what needs a model — generation, training, neighbours, maps — with deterministic,
fast stand-ins that still drive the progress callback step by step, so the UI's workers,
progress bars, cancellation and error paths can be tested without torch or weights.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from .backend import GenerateRequest, MapPoint, NeighborRows, Progress, RealBackend, TrainRequest

WORDS = ["red", "circle", "square", "blue", "stripes", "small", "large", "green", "dots", "star"]
#: Strings that break markup, layouts or terminals: tokens and neighbours of the hostile-library tests.
HOSTILE = ["[", "[/]", "🎨🖌️", "שלום", "x\\", "[b]", "[red]x[/red]", "[@click=app.quit]q[/]", "\\", "[/b]bold",
           "مرحبا", "a\u202eb", "$var", "**md**", "`code`", "<|endoftext|>", "%s{0}", "ﷺ"]



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
        fail: name of a method (``"generate"``, ``"train"``, ``"neighbors"``, ``"map"``…) that raises, to test
            error paths; the message is ``fail_message``.
        setup_gate: when given, the "loading model" phase waits until the event is set, without looking at
            cancellation, like a real model load (lets tests cancel during set-up).
        words: the vocabulary the fake neighbours and map points are drawn from.
        notes: warnings each fake training run reports before its first step (like ticraft's TrainWarnings).
    """

    def __init__(self, library: Any = None, model: str | None = "fake", *, step_delay: float = 0.0,
                 steps: int = 5, fail: str | None = None, fail_message: str = "",
                 setup_gate: threading.Event | None = None, words: Sequence[str] = WORDS,
                 notes: Sequence[str] = ()) -> None:
        super().__init__(library, model)
        self.step_delay = step_delay
        self.steps = steps
        self.fail = fail
        self.fail_message = fail_message
        self.setup_gate = setup_gate
        self.setup_done = threading.Event()  # set each time a set-up phase ends
        self.words = list(words)
        self.notes = list(notes)
        self.calls: list[tuple[str, Any]] = []

    def _fail(self, name: str) -> None:
        if self.fail == name:
            raise RuntimeError(self.fail_message or f"fake {name} failure")

    def _setup(self, progress: Progress | None) -> None:
        if progress is not None:
            progress.phase(f"loading model {self.model_spec}")
        if self.setup_gate is not None:
            self.setup_gate.wait(60)  # like a model load: no cancellation check inside
        self.setup_done.set()

    def _loop(self, name: str, progress: Progress | None, total: int | None = None) -> None:
        total = total or self.steps
        for step in range(1, total + 1):
            if self.fail == name and step == max(1, total // 2):
                self._fail(name)
            time.sleep(self.step_delay)
            if progress is not None:
                progress(step, total, 1.0 / step, None)

    def backbone(self, progress: Progress | None = None) -> Any:
        return None

    def hard_prompt(self, token: str, length: int = 4, progress: Progress | None = None) -> str:
        self.calls.append(("hard_prompt", token))
        self._fail("hard_prompt")
        return " ".join(self.words[i % len(self.words)] for i in range(length)) + "   (loss 0.1000, from 1.0000)"

    def neighbors(self, token: str, k: int = 8, progress: Progress | None = None) -> NeighborRows:
        self.calls.append(("neighbors", token))
        self._fail("neighbors")
        n = self.library.entry(token).num_vectors
        labels = ["mean"] + ([f"vector {i}" for i in range(n)] if n > 1 else [])
        words = self.words
        return [(label, [(words[(i + j) % len(words)], round(0.9 - 0.05 * j, 2)) for j in range(k)])
                for i, label in enumerate(labels)]

    def generate(self, request: GenerateRequest, progress: Progress | None = None) -> list[Any]:
        self.calls.append(("generate", request))
        self._setup(progress)
        self._loop("generate", progress)
        return [fake_image(f"{request.prompt}|{request.seed + i}") for i in range(max(1, request.count))]

    def interpolate(self, a: str, b: str, frames: int, request: GenerateRequest,
                    progress: Progress | None = None) -> list[Any]:
        self.calls.append(("interpolate", (a, b, frames, request.prompt)))
        self._setup(progress)
        self._loop("interpolate", progress, frames)
        return [fake_image(f"{a}|{b}|{i}") for i in range(frames)]

    def presets(self) -> list[str]:
        return ["fast", "paper"]

    def previews(self, request: TrainRequest) -> list[Path]:
        return []

    def train(self, request: TrainRequest, progress: Progress | None = None) -> str:
        self.calls.append(("train", request))
        import torch

        from ticraft.concept import Concept

        self._setup(progress)
        if progress is not None:
            for text in self.notes:
                progress.note(text)
            progress.phase("training")
        self._loop("train", progress, request.steps or self.steps)
        if progress is not None:
            progress.phase("saving")
        concept = Concept(request.token, {"clip": torch.ones(1, 8)}, family="toy",
                          meta={"initializer": request.initializer, "steps": request.steps or self.steps})
        self.library.add(concept, images=request.images, overwrite=True)
        return concept.token

    def map_points(self, method: str = "pca", vocab: int = 1000, progress: Progress | None = None) -> list[MapPoint]:
        self.calls.append(("map", method))
        self._setup(progress)
        self._fail("map")
        words = self.words
        points = [MapPoint(w, math.cos(i), math.sin(i), "neighbor" if i < 2 else "vocab") for i, w in enumerate(words)]
        for i, entry in enumerate(self.library.entries()):
            points.append(MapPoint(entry.token, 0.5 * math.cos(2 * i + 1), 0.5 * math.sin(2 * i + 1), "concept"))
        return points


def make_library(root: str | Path, count: int = 5, *, images: bool = True,
                 seed_tags: Sequence[str] = ("object", "style"), tokens: Sequence[str] | None = None) -> Any:
    """A library of ``count`` small toy concepts with fixed dates (for stable snapshots) and images.

    ``tokens`` replaces the default names (``<red-ball>``, ``<blue-cube>``…), e.g. by hostile strings.
    """
    import json

    import torch

    from ticraft.concept import Concept
    from ticraft.library import Library

    lib = Library(root)
    names = ["red-ball", "blue-cube", "striped-star", "dotted-ring", "green-kite", "tiny-moon", "big-sun"]
    gen = torch.Generator().manual_seed(0)
    src = Path(root).parent / f".{Path(root).name}-images"
    chosen = list(tokens) if tokens is not None else [f"<{n}>" for n in names]
    for i in range(count):
        token = chosen[i] if i < len(chosen) else f"<concept-{i:03d}>"
        name = token.strip("<>")
        n = 1 + i % 3
        concept = Concept(token, {"clip": torch.randn(n, 8, generator=gen)}, family="toy",
                          meta={"initializer": name.split("-")[-1], "steps": 100 * (i + 1)})
        files: list[Path] = []
        if images and i < 3:
            src.mkdir(parents=True, exist_ok=True)
            for j in range(2):
                path = src / (f"{name}-{j}.png" if tokens is None else f"{i}-[b]{j}-🎨.png")
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
