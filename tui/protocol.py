"""What the screens may ask of ticraft: the :class:`Backend` protocol and the values it passes around.

Screens talk to ticraft only through a ``Backend``. :class:`~ticraft_tui.backend.RealBackend` implements it
over ticraft's Python API; tests implement it with fast fakes (:mod:`ticraft_tui.testing`). Importing this
module is cheap: no textual, no torch.

Long methods take a :class:`Progress` — ticraft's usual ``callback(step, total, loss, vectors)`` plus
:meth:`Progress.phase` to name what is happening when there are no steps to count (loading a model,
encoding images, compiling UMAP, saving). Either call raises when the user cancelled; a backend lets that
exception through, which is how a job stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL.Image import Image as PILImage

    from ticraft.library import Entry


class Progress(Protocol):
    """What a backend reports progress to (see :class:`ticraft_tui.workers.Reporter`)."""

    def __call__(self, step: int, total: int, loss: float | None = None, vectors: Any = None) -> None:
        """Step ``step`` of ``total`` is done (``loss`` when known). Raises when the job was cancelled."""

    def phase(self, name: str) -> None:
        """The job now does ``name`` (``"loading model"``, ``"saving"``…). Raises when the job was cancelled."""

    def note(self, text: str) -> None:
        """A warning worth showing while the job runs (ticraft's ``TrainWarning`` s: one picture, a multi-piece
        initializer, prompts near the limit)."""


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
    """Everything Compose's Generate (or Interpolate) button sends. For interpolation ``prompt`` holds ``{}``
    where the concept goes."""

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


#: ``(row label, [(token, cosine), …])`` per row (the mean, then each vector of a multi-vector concept).
NeighborRows = list[tuple[str, list[tuple[str, float]]]]


class Backend(Protocol):
    """Everything a screen may call. Every method may raise; screens run the slow ones (marked *slow*) in
    thread workers and show any exception as a message."""

    #: The model spec in use (``"toy"``, a folder, a file…); shown and edited on the Compose screen.
    model_spec: str

    # ------------------------------------------------------------------ the library (fast)
    def library_root(self) -> Path:
        """The library folder."""

    def library_exists(self) -> bool:
        """Whether the library folder exists (a mistyped ``--library`` must be said, not shown empty)."""

    def entries(self) -> list[Entry]:
        """Every entry, in the library's order, from its index alone (fast even for 10,000 concepts)."""

    def problems(self) -> list[tuple[str | None, str]]:
        """*Slow* (opens every entry): ``(token, sentence)`` per broken entry (``token`` None for a folder that is
        not an entry at all). Screens leave broken entries out of the list and say why."""

    def search(self, text: str | None = None, tag: str | None = None, family: str | None = None) -> list[Entry]:
        """Entries matching every given filter."""

    def tokens(self) -> list[str]:
        """Every concept's token (for completion and pickers)."""

    def entry(self, token: str) -> Entry:
        """The listing record of ``token`` (tags, folder, dates…)."""

    def info(self, token: str) -> ConceptInfo:
        """``token``'s vectors summarised (reads its embedding file)."""

    def images(self, token: str) -> list[Path]:
        """Training images stored with ``token``."""

    def samples(self, token: str) -> list[Path]:
        """Samples stored with ``token``."""

    def tag(self, token: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """Add and remove tags."""

    def rename(self, old: str, new: str) -> str:
        """Rename; returns the stored new token."""

    def remove(self, token: str) -> None:
        """Delete ``token`` with its images and samples."""

    def export(self, token: str, path: str, layout: str) -> list[Path]:
        """Write ``token`` to ``path`` (a file, or a folder that is created when missing); returns the files."""

    def export_layouts(self) -> list[str]:
        """The layouts :meth:`export` accepts, the default first."""

    def add_samples(self, token: str, images: Sequence[PILImage]) -> list[Path]:
        """Store generated pictures with ``token``."""

    # ------------------------------------------------------------------ model work (slow)
    def set_model(self, spec: str) -> None:
        """Use another model from now on (loaded on next use)."""

    def neighbors(self, token: str, k: int = 8, progress: Progress | None = None) -> NeighborRows:
        """*Slow.* Nearest vocabulary tokens of ``token``."""

    def hard_prompt(self, token: str, length: int = 4, progress: Progress | None = None) -> str:
        """K real vocabulary words whose prompt encodes like ``token`` (PEZ, ``ticraft words``), as one line."""

    def generate(self, request: GenerateRequest, progress: Progress | None = None) -> list[PILImage]:
        """*Slow.* ``request.count`` pictures, seeds ``seed, seed+1, …``."""

    def interpolate(self, a: str, b: str, frames: int, request: GenerateRequest,
                    progress: Progress | None = None) -> list[PILImage]:
        """*Slow.* A strip of ``frames`` pictures from concept ``a`` to ``b``."""

    def presets(self) -> list[str]:
        """Training presets, the default first."""

    def train(self, request: TrainRequest, progress: Progress | None = None) -> str:
        """*Slow.* Train ``request.token`` into the library; returns the stored token."""

    def previews(self, request: TrainRequest) -> list[Path]:
        """Preview pictures of the run so far, oldest first."""

    def map_points(self, method: str = "pca", vocab: int = 1000, progress: Progress | None = None) -> list[MapPoint]:
        """*Slow.* 2-D coordinates of the library's concepts among ``vocab`` sampled vocabulary tokens."""
