"""The one place where the TUI meets ticraft: :class:`RealBackend`, a thin adapter over the Python API.

Screens never import ticraft's model code; they call a :class:`~ticraft_tui.protocol.Backend`.
``RealBackend`` forwards to :mod:`ticraft.library`, :mod:`ticraft.generate.sample`,
:mod:`ticraft.training.api` and :mod:`ticraft.analysis`, importing the heavy ones only on first use so
that opening the TUI on a big library stays instant. Tests inject a backend with faster model work (see
:mod:`ticraft_tui.testing`).

Every method may raise; the screens run the slow ones in thread workers and turn exceptions into
messages. Slow methods take a :class:`~ticraft_tui.protocol.Progress`: they name each phase (loading
model, encoding images, computing UMAP, saving) and count steps where ticraft does; both calls raise
when the user cancelled, which is how a job stops.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .protocol import (  # noqa: F401 - re-exported: screens and tests import them from here too
    Backend,
    ConceptInfo,
    GenerateRequest,
    MapPoint,
    NeighborRows,
    Progress,
    TrainRequest,
)
from .text import counted

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL.Image import Image as PILImage

    from ticraft.library import Entry, Library
    from ticraft.library.vectors import ConceptMatrix

#: File endings that make an export path a file (anything else names a folder).
_FILE_SUFFIXES = {".safetensors", ".pt", ".bin", ".png"}


def _phase(progress: Progress | None, name: str) -> None:
    if progress is not None:
        progress.phase(name)


class RealBackend:
    """Forward every TUI action to ticraft's API (implements :class:`~ticraft_tui.protocol.Backend`).

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
        # A cancelled run may still be loading its model (that cannot be interrupted): the next run waits for it,
        # so two runs never write the same run folder.
        self._train_lock = threading.Lock()

    # ------------------------------------------------------------------ library (fast)
    def library_root(self) -> Path:
        return self.library.root

    def library_exists(self) -> bool:
        return self.library.root.is_dir()

    def entries(self) -> list[Entry]:
        """Every entry from the library's index (no entry file is opened)."""
        return self.library.entries()

    def problems(self) -> list[tuple[str | None, str]]:
        """The library's health check (reads each entry's header): run it in a worker."""
        entries = self.library.entries()
        flagged = self.library.check(entries)
        return [(None, p) for p in self.library.index_problems()] + [
            (e.token, f"{e.folder.name}: {flagged[e.token]}") for e in entries if e.token in flagged]

    def search(self, text: str | None = None, tag: str | None = None, family: str | None = None) -> list[Entry]:
        return self.library.search(text=text or None, tag=tag or None, family=family or None)

    def tokens(self) -> list[str]:
        return [e.token for e in self.entries()]

    def entry(self, token: str) -> Entry:
        return self.library.entry(token)

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
        """Export to a file, or into a folder; missing folders are created (``x.pt`` names a file, ``x`` a folder)."""
        target = Path(path).expanduser()
        folder = target.parent if target.suffix.lower() in _FILE_SUFFIXES else target
        folder.mkdir(parents=True, exist_ok=True)
        return self.library.export(token, target, layout)

    def export_layouts(self) -> list[str]:
        from ticraft.library import EXPORT_LAYOUTS

        return list(EXPORT_LAYOUTS)

    def add_samples(self, token: str, images: Sequence[PILImage]) -> list[Path]:
        return self.library.add_samples(token, images)

    # ------------------------------------------------------------------ model work (slow; call from workers)
    def set_model(self, spec: str) -> None:
        """Use another model from now on (loaded on next use)."""
        self.model_spec = spec.strip() or _default_model()

    def backbone(self, progress: Progress | None = None) -> Any:
        """The loaded model for :attr:`model_spec` (loaded once, then cached by ticraft.generate.sample)."""
        _phase(progress, f"loading model {self.model_spec}")
        with self._model_lock:
            from ticraft.generate.sample import cached_backbone

            return cached_backbone(self.model_spec)

    def neighbors(self, token: str, k: int = 8, progress: Progress | None = None) -> NeighborRows:
        """Nearest vocabulary tokens of ``token``: ``(row label, [(token, cosine), …])`` for its mean and
        (multi-vector concepts) each vector, per encoder."""
        from ticraft.analysis.neighbors import find_neighbors

        backbone = self.backbone(progress)
        _phase(progress, "searching the vocabulary")
        report = find_neighbors(backbone, self.library.get(token), k=k)
        multi = len({row.key for row in report.rows}) > 1
        return [(f"{row.key} {row.label}" if multi else row.label, [(m.token, m.score) for m in row.matches])
                for row in report.rows]

    def hard_prompt(self, token: str, length: int = 4, progress: Progress | None = None) -> str:
        """``ticraft words``: K real words whose prompt encodes like ``token`` (PEZ), with the search's loss."""
        from ticraft.analysis.words import hard_prompt

        backbone = self.backbone(progress)
        _phase(progress, f"searching {length} words")
        result = hard_prompt(backbone, self.library.get(token), length=length)
        return f"{result.text}   (loss {result.loss:.4f}, from {result.initial_loss:.4f})"

    def generate(self, request: GenerateRequest, progress: Progress | None = None) -> list[PILImage]:
        """``request.count`` images with seeds ``seed, seed+1, …``; ``<tokens>`` come from the library."""
        from ticraft.generate.sample import SampleSpec, generate

        specs = [SampleSpec(request.prompt, negative=request.negative, seed=request.seed + i, steps=request.steps,
                            guidance=request.guidance) for i in range(max(1, request.count))]
        backbone = self.backbone(progress)
        _phase(progress, f"generating {counted(len(specs), 'image')}")
        return list(generate(backbone, specs, library=self.library, callback=progress))

    def interpolate(self, a: str, b: str, frames: int, request: GenerateRequest,
                    progress: Progress | None = None) -> list[PILImage]:
        """A strip of ``frames`` images from concept ``a`` to ``b``, one seed throughout.

        ``request.prompt`` holds ``{}`` where the concept goes. Concepts with different vector counts
        are matched by padding (ticraft's ``match="pad"``).
        """
        from ticraft.analysis.interpolate import render_interpolation

        ca, cb = self.library.get(a), self.library.get(b)
        backbone = self.backbone(progress)
        _phase(progress, f"rendering {frames} frames")
        result = render_interpolation(backbone, ca, cb, steps=frames, prompt=request.prompt,
                                      negative=request.negative, seed=request.seed, sample_steps=request.steps,
                                      guidance=request.guidance, library=self.library,
                                      match=None if ca.num_vectors == cb.num_vectors else "pad", callback=progress)
        return list(result.images)

    def presets(self) -> list[str]:
        from ticraft.training.config import PRESETS

        return list(PRESETS)

    def run_folder(self, token: str) -> Path:
        """Where a TUI training run of ``token`` keeps checkpoints and previews (ticraft's cache dir)."""
        from ticraft.analysis.cache import cache_dir
        from ticraft.library import slugify

        return cache_dir("tui-runs", slugify(token))

    def train(self, request: TrainRequest, progress: Progress | None = None) -> str:
        """Train ``request.token`` into the library; returns the stored token.

        Checkpoints and previews go to :meth:`run_folder` every ~1/5 of the run, so a cancelled run
        can be resumed with ``request.resume`` and previews show up while it goes. Phases: loading the
        model and encoding the pictures (until the first step), training (steps), saving (after the last).
        """
        _phase(progress, "waiting for the cancelled run to stop")
        with self._train_lock:
            return self._train(request, progress)

    def _train(self, request: TrainRequest, progress: Progress | None) -> str:
        import shutil

        from ticraft.training.api import train
        from ticraft.training.checkpoint import latest_checkpoint
        from ticraft.training.config import preset_config

        options = {**self.train_options, **request.options}
        if request.steps:
            options["steps"] = request.steps
        out = self.run_folder(request.token)
        resume = None
        if request.resume:
            resume = latest_checkpoint(out) if out.is_dir() else None
            if resume is None:
                raise FileNotFoundError(f"no checkpoint of {request.token} to resume from (in {out})")
        elif out.exists():
            shutil.rmtree(out)  # a fresh start must not mix old previews and checkpoints in
        if resume is None:
            # a new run: checkpoints and previews five times per run, enough loss points for a smooth live plot
            resolved = preset_config(request.preset or "fast").with_options(**options)
            every = max(1, resolved.steps // 5)
            options.setdefault("save_every", every)
            if resolved.previews:  # previews 0: none at all (a preview_every beside it is refused)
                options.setdefault("preview_every", every)
            options.setdefault("log_every", max(1, resolved.steps // 200))
        # resumed: the checkpoint's cadences apply (they were set from its own run length, not today's preset's)
        _phase(progress, f"loading model {self.model_spec} and encoding the pictures")
        callback = _TrainCallback(progress) if progress is not None else None
        with _notes_from_warnings(progress):
            concept = train(str(Path(request.images).expanduser()), request.token, request.initializer,
                            model=self.model_spec, preset=request.preset, library=self.library, callback=callback,
                            output_dir=out, resume=resume, **options)
        return concept.token

    def previews(self, request: TrainRequest) -> list[Path]:
        """Preview images of the run so far (oldest first), then the stored samples once it finished."""
        folder = self.run_folder(request.token) / "previews"
        files = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if self.library.has(request.token):
            files += self.library.samples(request.token)
        return files

    def map_points(self, method: str = "pca", vocab: int = 1000, progress: Progress | None = None) -> list[MapPoint]:
        """2-D coordinates of every library concept that fits the model, among ``vocab`` sampled tokens.

        The concepts come from the library's cached vector matrix (:meth:`ticraft.library.Library.matrix`, as
        ``ticraft map --concepts all`` does): one file for the whole library, not one per concept, so 10,000
        concepts map as quickly as 10. Per-layer (XTI) concepts are placed by the mean of all their rows.
        """
        import sys

        from ticraft.analysis.maps import build_map

        backbone = self.backbone(progress)
        _phase(progress, f"reading the vectors of {self.library.count()} concepts")
        concepts = _fitting(self.library.matrix(dims=backbone.dims), backbone)
        if method == "umap" and "umap" not in sys.modules:
            _phase(progress, "compiling UMAP (first use in this session) and computing the map")
        else:
            _phase(progress, f"computing the {method.upper()} map of {len(concepts)} concepts")
        result = build_map(backbone, concepts, method=method, vocab=vocab)  # type: ignore[arg-type]  # method: str
        return [MapPoint(p.label, p.x, p.y, p.kind) for p in result.points]


class _TrainCallback:
    """ticraft's training callback: steps go to ``progress``; the last one announces the saving phase
    (final checkpoint, previews, library entry), which has no steps of its own."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.training = False

    def __call__(self, step: int, total: int, loss: float | None = None, vectors: Any = None) -> None:
        if not self.training:
            self.training = True
            self.progress.phase("training")
        self.progress(step, total, loss, vectors)
        if step >= total:
            self.progress.phase("saving: checkpoint, previews, library entry")


# ---------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _notes_from_warnings(progress: Progress | None) -> Iterator[None]:
    """ticraft's warnings about a run (``TicraftWarning``: one picture, a multi-piece initializer, prompts near
    the limit) go to ``progress.note`` while the block runs; other warnings are shown as usual.

    ``warnings.catch_warnings`` swaps process-wide state: a warning another thread raises meanwhile also comes
    here (and is shown as usual unless it is a TicraftWarning). The TUI runs one training at a time.
    """
    if progress is None:
        yield
        return
    from ticraft.errors import TicraftWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", TicraftWarning)
        show = warnings.showwarning

        def to_note(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: Any = None, line: str | None = None) -> None:
            if issubclass(category, TicraftWarning):
                progress.note(str(message))
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = to_note
        yield


def _fitting(matrix: ConceptMatrix, backbone: Any) -> ConceptMatrix:
    """The rows of ``matrix`` (already of the model's widths) whose family fits ``backbone``, by the rule of
    ``Backbone.check_concept``: a concept learned for another family is left off the map, one without a family
    and any concept on a ``custom`` model stay."""
    if backbone.family == "custom":
        return matrix
    keep = [i for i, family in enumerate(matrix.families) if not family or family == backbone.family]
    return matrix if len(keep) == len(matrix) else matrix.subset(keep)


def _default_model() -> str:
    # The same rule as ticraft.models.backbone.resolve_model_spec(None), without importing torch at startup.
    from ticraft.user_config import get_config_value

    return str(get_config_value("model") or "toy")
