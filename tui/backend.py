"""The one place where the TUI meets ticraft: a thin adapter over the Python API.

Screens never import ticraft's model code; they call a :class:`Backend`. :class:`RealBackend`
forwards to :mod:`ticraft.library`, :mod:`ticraft.generate.sample`, :mod:`ticraft.training.api` and
:mod:`ticraft.analysis`, importing the heavy ones only on first use so that opening the TUI on a
big library stays instant. Tests inject a backend with faster model work (see
:mod:`ticraft_tui.testing`).

Every method may raise; the screens run the slow ones in thread workers and turn exceptions
into notifications. Methods that loop take ``callback(step, total, loss, vectors)`` — the one
progress signature ticraft uses everywhere — and stop when it raises.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL.Image import Image as PILImage
    from ticraft.library import Entry, Library

#: ``callback(step, total, loss, vectors)``; raising from it stops the loop.
Progress = Callable[[int, int, "float | None", Any], None]


@dataclass(frozen=True)
class ConceptInfo:
    """What the detail pane shows about one concept (loaded from its embedding file)."""

    token: str
    family: str | None
    num_vectors: int
    dims: dict[str, int]
    norms: dict[str, list[float]]
    meta: dict[str, Any]


@dataclass
class GenerateRequest:
    """Everything Compose's Generate button sends."""

    prompt: str
    negative: str = ""
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    count: int = 1


@dataclass
class TrainRequest:
    """Everything Train's Start button sends."""

    images: str
    token: str
    initializer: str
    preset: str | None = None
    steps: int | None = None
    resume: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MapPoint:
    """One point of the concept map: kind ``concept`` (labelled), ``neighbor`` (a concept's nearest token) or
    ``vocab`` (a sampled vocabulary token)."""

    label: str
    x: float
    y: float
    kind: str = "vocab"

    @property
    def is_concept(self) -> bool:
        return self.kind == "concept"


class RealBackend:
    """Forward every TUI action to ticraft's API.

    Args:
        library: library folder (resolved like the CLI's ``--library``), or an open Library.
        model: model spec (``"toy"``, a diffusers folder, …); ``None`` → the configured default.
        train_options: TrainConfig fields applied to every training run started from the TUI
            (e.g. ``{"previews": 1}``); the form's own fields win.
    """

    def __init__(self, library: "str | Path | Library | None" = None, model: str | None = None, *,
                 train_options: dict[str, Any] | None = None) -> None:
        from ticraft.library import Library

        self.train_options: dict[str, Any] = dict(train_options or {})
        self.library: Library = library if isinstance(library, Library) else Library.resolve(library)
        self.model_spec: str = model or _default_model()
        # Workers may ask for the model at the same time (neighbours while generating): load once.
        self._model_lock = threading.Lock()

    # ------------------------------------------------------------------ library (instant)
    def entries(self) -> list["Entry"]:
        return self.library.entries()

    def problems(self) -> list[str]:
        return self.library.problems()

    def listing(self) -> tuple[list["Entry"], list[str]]:
        """Entries and problems from one scan of the library."""
        return self.library.listing()

    def search(self, text: str | None = None, tag: str | None = None, family: str | None = None) -> list["Entry"]:
        return self.library.search(text=text or None, tag=tag or None, family=family or None)

    def tokens(self) -> list[str]:
        return [e.token for e in self.library.entries()]

    def info(self, token: str) -> ConceptInfo:
        concept = self.library.get(token)
        return ConceptInfo(concept.token, concept.family, concept.num_vectors, concept.dims, concept.norms(),
                           dict(concept.meta))

    def images(self, token: str) -> list[Path]:
        return self.library.images(token)

    def samples(self, token: str) -> list[Path]:
        return self.library.samples(token)

    def tag(self, token: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        self.library.tag(token, add=add, remove=remove)

    def rename(self, old: str, new: str) -> str:
        return self.library.rename(old, new).token

    def remove(self, token: str) -> None:
        self.library.remove(token)

    def export(self, token: str, path: str, layout: str) -> list[Path]:
        return self.library.export(token, path, layout)

    def export_layouts(self) -> list[str]:
        from ticraft.library import EXPORT_LAYOUTS

        return list(EXPORT_LAYOUTS)

    def add_samples(self, token: str, images: Sequence["PILImage"]) -> list[Path]:
        return self.library.add_samples(token, images)

    # ------------------------------------------------------------------ model work (slow; call from workers)
    def set_model(self, spec: str) -> None:
        """Use another model from now on (loaded on next use)."""
        self.model_spec = spec.strip() or _default_model()

    def backbone(self) -> Any:
        """The loaded model for :attr:`model_spec` (loaded once, then cached by ticraft.generate.sample)."""
        with self._model_lock:
            from ticraft.generate.sample import cached_backbone

            return cached_backbone(self.model_spec)

    def neighbors(self, token: str, k: int = 8) -> list[tuple[str, list[tuple[str, float]]]]:
        """Nearest vocabulary tokens of ``token``: ``(row label, [(token, cosine), …])`` for its mean and
        (multi-vector concepts) each vector, per encoder."""
        from ticraft.analysis.neighbors import find_neighbors

        report = find_neighbors(self.backbone(), self.library.get(token), k=k)
        multi = len({row.key for row in report.rows}) > 1
        return [(f"{row.key} {row.label}" if multi else row.label, [(m.token, m.score) for m in row.matches])
                for row in report.rows]

    def generate(self, request: GenerateRequest, callback: Progress | None = None) -> list["PILImage"]:
        """``request.count`` images with seeds ``seed, seed+1, …``; ``<tokens>`` come from the library."""
        from ticraft.generate.sample import SampleSpec, generate

        specs = [SampleSpec(request.prompt, negative=request.negative, seed=request.seed + i, steps=request.steps,
                            guidance=request.guidance) for i in range(max(1, request.count))]
        backbone = self.backbone()
        return list(generate(backbone, specs, library=self.library, callback=callback))

    def interpolate(self, a: str, b: str, frames: int, request: GenerateRequest,
                    callback: Progress | None = None) -> list["PILImage"]:
        """A strip of ``frames`` images from concept ``a`` to ``b``, one seed throughout.

        ``request.prompt`` holds ``{}`` where the concept goes. Concepts with different vector counts
        are matched by padding (ticraft's ``match="pad"``).
        """
        from ticraft.analysis.interpolate import render_interpolation

        ca, cb = self.library.get(a), self.library.get(b)
        result = render_interpolation(self.backbone(), ca, cb, steps=frames, prompt=request.prompt,
                                      negative=request.negative, seed=request.seed, sample_steps=request.steps,
                                      guidance=request.guidance, library=self.library,
                                      match=None if ca.num_vectors == cb.num_vectors else "pad", callback=callback)
        return list(result.images)

    def presets(self) -> list[str]:
        from ticraft.training.config import PRESETS

        return list(PRESETS)

    def run_folder(self, token: str) -> Path:
        """Where a TUI training run of ``token`` keeps checkpoints and previews (ticraft's cache dir)."""
        from ticraft.analysis.cache import cache_dir
        from ticraft.library import slugify

        return cache_dir("tui-runs", slugify(token))

    def train(self, request: TrainRequest, callback: Progress | None = None) -> str:
        """Train ``request.token`` into the library; returns the stored token.

        Checkpoints and previews go to :meth:`run_folder` every ~1/5 of the run, so a cancelled run
        (the callback raises) can be resumed with ``request.resume`` and previews show up while it goes.
        """
        import shutil

        from ticraft.training.api import train
        from ticraft.training.checkpoint import latest_checkpoint
        from ticraft.training.config import preset_config

        options = {**self.train_options, **request.options}
        if request.steps:
            options["steps"] = request.steps
        steps = preset_config(request.preset or "fast").with_options(**options).steps
        every = max(1, steps // 5)
        options.setdefault("save_every", every)
        options.setdefault("preview_every", every)
        options.setdefault("log_every", max(1, steps // 200))  # enough points for a smooth live plot
        out = self.run_folder(request.token)
        resume = None
        if request.resume:
            resume = latest_checkpoint(out) if out.is_dir() else None
            if resume is None:
                raise FileNotFoundError(f"no checkpoint of {request.token} to resume from (in {out})")
        elif out.exists():
            shutil.rmtree(out)  # a fresh start must not mix old previews and checkpoints in
        concept = train(str(Path(request.images).expanduser()), request.token, request.initializer, model=self.model_spec,
                        preset=request.preset, library=self.library, callback=callback, output_dir=out,
                        resume=resume, **options)
        return concept.token

    def previews(self, request: TrainRequest) -> list[Path]:
        """Preview images of the run so far (oldest first), then the stored samples once it finished."""
        folder = self.run_folder(request.token) / "previews"
        files = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if self.library.has(request.token):
            files += self.library.samples(request.token)
        return files

    def map_points(self, method: str = "pca", vocab: int = 1000) -> list[MapPoint]:
        """2-D coordinates of every library concept that fits the model, among ``vocab`` sampled tokens."""
        from ticraft.analysis.maps import build_map

        backbone = self.backbone()
        concepts = []
        for entry in self.library.entries():
            concept = self.library.get(entry.token)
            try:
                backbone.check_concept(concept)
            except Exception:  # noqa: BLE001 - concepts of another model family are left off the map
                continue
            concepts.append(concept)
        result = build_map(backbone, concepts, method=method, vocab=vocab)  # type: ignore[arg-type]
        return [MapPoint(p.label, p.x, p.y, p.kind) for p in result.points]


# ---------------------------------------------------------------------- helpers
def _default_model() -> str:
    # The same rule as ticraft.models.backbone.resolve_model_spec(None), without importing torch at startup.
    from ticraft.user_config import get_config_value

    return str(get_config_value("model") or "toy")
