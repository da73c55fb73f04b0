"""Generation with library concepts: batched, seeded per image, reproducible from PNG metadata.

>>> import ticraft
>>> images = ticraft.sample("a photo of <cat-toy> on the beach", model="toy", n=4)   # doctest: +SKIP
>>> images[0].info["parameters"].splitlines()[0]                                    # doctest: +SKIP
'a photo of <cat-toy> on the beach'

The core is :func:`generate`: it takes :class:`SampleSpec` s (one per image), loads the concept tokens
their prompts use into the backbone, groups specs that share settings into batches, and runs the
backbone's diffusers pipeline (built from the already-loaded components: no weight copy). Each image
has its own CPU generator seeded from ``spec.seed``, so an image does not depend on the other images
in its batch. Low-level kernels can still round differently for different batch *sizes*, so every
image records its batch size and position and :func:`reproduce` replays that shape: the result is
bit-exact on the same device.

Several processes (``accelerate launch`` / ``torchrun``) split a job by whole batches and gather the
images back, so a two-process run returns exactly the images of a one-process run.

``ticraft.sample(...)`` is the function :func:`sample` of this module (re-exported lazily by ``ticraft``).

The pieces live in small modules: :mod:`~ticraft.generate.specs` (what decides an image, model defaults,
batch planning), :mod:`~ticraft.generate.schedulers`, :mod:`~ticraft.generate.concepts` (finding and
splicing concept tokens) and :mod:`~ticraft.generate.batches` (the one pipeline loop, shared with
:mod:`~ticraft.generate.edit`). This module composes them and re-exports their public names.
"""

from __future__ import annotations

import atexit
import os
import random
import warnings
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import torch
from PIL import Image

from ticraft.concept import Concept
from ticraft.devices import resolve_device, resolve_dtype
from ticraft.generate.batches import (  # noqa: F401 (re-exported)
    Job,
    Progress,
    generators,
    image_parameters,
    prepare_pipeline,
    run_batches,
)
from ticraft.generate.concepts import concept_hashes, prepare_concepts, warn_budget
from ticraft.generate.errors import (  # noqa: F401 (re-exported)
    GuidanceWarning,
    ProgressCallback,
    PromptBudgetWarning,
    ReproductionWarning,
    SampleError,
)
from ticraft.generate.pngmeta import SAMPLER_LABELS, format_parameters, read_parameters, save_png  # noqa: F401
from ticraft.generate.schedulers import (  # noqa: F401 (re-exported)
    SCHEDULERS,
    loop_length,
    make_scheduler,
    scheduler_class,
    scheduler_name_of,
)
from ticraft.generate.specs import (  # noqa: F401 (re-exported)
    DEFAULTS_FILE,
    FAMILY_DEFAULTS,
    SampleSpec,
    drop_unread_negative,
    model_defaults,
    native_size,
    plan_batches,
    refuse_unread_negative,
    spec_from_parameters,
    warn_guidance,
)
from ticraft.imaging import make_grid
from ticraft.prompts import expand_prompt
from ticraft.wording import noun

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

__all__ = [
    "SampleSpec", "SampleError", "PromptBudgetWarning", "ReproductionWarning", "GuidanceWarning", "SCHEDULERS",
    "generate", "sample", "reproduce", "compose", "ComposeResult", "model_defaults", "make_scheduler", "save_png",
    "read_parameters", "spec_from_parameters", "prepare_concepts", "resolve_device", "default_dtype", "cached_backbone",
]


def default_dtype(device: torch.device, name: str | None = None) -> torch.dtype:
    """Weights dtype (kept for callers of the old name): see :func:`ticraft.devices.resolve_dtype`."""
    return resolve_dtype(name, device)


def _close_process_group() -> None:
    """At exit: wait for every rank, then destroy the group accelerate opened.

    Left to the interpreter's teardown, gloo's threads were sometimes still joinable when the group was
    destroyed, and a rank aborted ("terminate called without an active exception") after its images were saved.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _distributed(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


# ------------------------------------------------------------ generate
def generate(backbone: "Backbone", specs: SampleSpec | Sequence[SampleSpec], *, library: Any = None,
             concepts: Iterable[Concept | str] = (), batch_size: int = 8, callback: ProgressCallback | None = None,
             distributed: bool | None = None) -> list[Image.Image]:
    """Generate one image per spec, in order; each image's ``info["parameters"]`` holds its parameters.

    Args:
        backbone: a loaded model (:func:`ticraft.models.backbone.load_backbone`).
        specs: one :class:`SampleSpec` or a list.
        library: a ``Library`` or a library folder to take concept tokens from (see :func:`prepare_concepts`).
        concepts: Concept objects (or tokens) that win over the library.
        batch_size: images per pipeline call (specs with equal settings share calls).
        callback: ``callback(step, total)`` after every denoising iteration of this process.
        distributed: split whole batches between ``accelerate`` processes and gather the images back;
            ``None`` → when ``WORLD_SIZE`` > 1. Every process returns the full list.

    Example:
        >>> generate(bb, [SampleSpec("a photo of <cat-toy>", seed=s, steps=20) for s in range(4)])  # doctest: +SKIP
    """
    spec_list = [specs] if isinstance(specs, SampleSpec) else list(specs)
    if not spec_list:
        return []
    defaults = model_defaults(backbone)
    full = [s.resolved(defaults) for s in spec_list]
    refuse_unread_negative(backbone, full)
    warn_guidance(backbone, full)
    texts = [t for s in full for t in (s.prompt, s.negative)]
    used = prepare_concepts(backbone, texts, library=library, concepts=concepts)
    counts = {tok: c.num_vectors for tok, c in used.items()}
    expanded = [(expand_prompt(s.prompt, counts), expand_prompt(s.negative, counts)) for s in full]
    warn_budget(backbone, [s.prompt for s in full] + [s.negative for s in full], counts)

    batches = plan_batches(full, batch_size)
    state = None
    if _distributed(distributed):
        from accelerate import PartialState

        # A model on the CPU talks over gloo; accelerate only picks it when told the run is CPU-only.
        state = PartialState(cpu=backbone.device.type == "cpu")
        if state.num_processes > 1:
            atexit.register(_close_process_group)  # a repeat registration finds no group and does nothing
        with state.split_between_processes(batches) as mine:
            batches = list(mine)

    pipe = prepare_pipeline(backbone, "text2img")
    # One scheduler per name and call: building one costs more than a tiny model's step, and
    # `set_timesteps` (run by every pipeline call) resets a solver's per-run state.
    schedulers = {name: make_scheduler(backbone, name) for name in dict.fromkeys(str(s.scheduler) for s in full)}
    # the scheduler's own check only fires inside the pipeline call, as a traceback, after earlier batches ran
    limit = int(getattr(backbone.scheduler.config, "num_train_timesteps", 1000))
    if too_many := sorted({int(s.steps or 0) for s in full if int(s.steps or 0) > limit}):
        raise SampleError(f"steps must be at most {limit} for this model (its scheduler has {limit} training "
                          f"timesteps), got {', '.join(map(str, too_many))}")
    progress = Progress(callback, sum(loop_length(schedulers[str(full[b[0]].scheduler)], int(full[b[0]].steps or 0))
                                      for b in batches))
    hashes = [concept_hashes(used, (s.prompt, s.negative)) for s in full]
    jobs = [Job(s, pos, neg, h) for s, (pos, neg), h in zip(full, expanded, hashes, strict=True)]
    images = run_batches(backbone, pipe, [[jobs[i] for i in batch] for batch in batches], schedulers=schedulers,
                         progress=progress)
    results: list[tuple[int, Image.Image]] = [
        (i, img) for batch, imgs in zip(batches, images, strict=True) for i, img in zip(batch, imgs, strict=True)]

    if state is not None and state.num_processes > 1:
        from accelerate.utils import gather_object

        results = gather_object(results)
    by_index = dict(results)
    return [by_index[i] for i in range(len(full))]


def reproduction_notes(backbone: "Backbone", params: dict[str, Any], used: dict[str, Concept]) -> list[str]:
    """Why a re-creation may differ: another model, or concepts whose vectors changed since."""
    notes = []
    recorded = params.get("model_hash")
    if recorded and recorded != backbone.fingerprint()[:len(recorded)]:
        notes.append(f"the image was made with model {params.get('model', '?')} ({recorded}); "
                     f"{backbone.name} ({backbone.fingerprint()[:10]}) will give a different image")
    for tok, h in params.get("concept_hashes", {}).items():
        if tok in used and not used[tok].sha256().startswith(h):
            notes.append(f"concept {tok} changed since the image was made (hash {h} → {used[tok].sha256()[:12]})")
    return notes


def reproduce(backbone: "Backbone", source: str | os.PathLike | Image.Image | dict[str, Any], *,
              library: Any = None, concepts: Iterable[Concept | str] = (),
              callback: ProgressCallback | None = None) -> Image.Image:
    """Re-create an image from its ``parameters`` metadata (bit-exact on the same device and model).

    The recorded batch size is replayed (the spec repeated), because kernels may round differently
    for other batch shapes; the copy at the recorded position is returned.
    """
    params = source if isinstance(source, dict) else read_parameters(source)
    spec = drop_unread_negative(backbone, spec_from_parameters(params))
    size = max(1, int(params.get("batch_size", 1)))
    pos = min(max(0, int(params.get("batch_pos", 0))), size - 1)
    images = generate(backbone, [spec] * size, library=library, concepts=concepts, batch_size=size,
                      callback=callback, distributed=False)
    image = images[pos]
    used = {tok: backbone.loaded_concepts[tok] for tok in params.get("concept_hashes", {})
            if tok in backbone.loaded_concepts}
    for note in reproduction_notes(backbone, params, used):
        warnings.warn(note, ReproductionWarning, stacklevel=2)
    return image


# ------------------------------------------------------------ compose
@dataclass
class ComposeResult:
    """A concepts × templates grid and its cells (``images[row][col]``)."""

    grid: Image.Image
    images: list[list[Image.Image]]
    row_labels: list[str]
    col_labels: list[str]
    seeds: list[int]
    prompts: list[list[str]] = field(default_factory=list)


def fill_template(template: str, subject: str) -> str:
    """Put ``subject`` into ``{}``; templates without ``{}`` get it appended (``"… <style>"`` still composes).

    >>> fill_template("a painting of {} in the style of <style>", "<cat-toy>")
    'a painting of <cat-toy> in the style of <style>'
    """
    return template.replace("{}", subject) if "{}" in template else f"{template} {subject}".strip()


def compose(backbone: "Backbone", subjects: Sequence[str], templates: Sequence[str], *, seeds: Sequence[int] = (0,),
            negative: str = "", library: Any = None, concepts: Iterable[Concept | str] = (), batch_size: int = 8,
            callback: ProgressCallback | None = None, title: str | None = None, **spec_fields: Any) -> ComposeResult:
    """Render ``subjects`` (rows: concept tokens or plain words) × ``templates`` × ``seeds`` (columns).

    Each column has one fixed seed, so the images of a column differ only by their subject: rows compare.

    >>> r = compose(bb, ["<cat-toy>", "cat"], ["a photo of {}", "a painting of {}"], seeds=[0, 1])  # doctest: +SKIP
    >>> len(r.images), len(r.images[0])                                                             # doctest: +SKIP
    (2, 4)
    """
    if not subjects or not templates or not seeds:
        raise SampleError("compose needs at least one subject, one template and one seed")
    columns = [(t, s) for t in templates for s in seeds]
    prompts = [[fill_template(t, subj) for t, _ in columns] for subj in subjects]
    specs = [SampleSpec(prompt=prompts[r][c], negative=negative, seed=int(columns[c][1]), **spec_fields)
             for r in range(len(subjects)) for c in range(len(columns))]
    flat = generate(backbone, specs, library=library, concepts=concepts, batch_size=batch_size, callback=callback)
    ncol = len(columns)
    cells = [flat[r * ncol:(r + 1) * ncol] for r in range(len(subjects))]
    col_labels = [f"{t}\nseed {s}" if len(seeds) > 1 or len(templates) == 1 else t for t, s in columns]
    grid = make_grid(flat, rows=len(subjects), cols=ncol, row_labels=list(subjects), col_labels=col_labels,
                     title=title)
    grid.info["parameters"] = flat[0].info["parameters"]  # A1111 readers show the first cell's settings
    return ComposeResult(grid=grid, images=cells, row_labels=list(subjects), col_labels=col_labels,
                         seeds=[int(s) for _, s in columns], prompts=prompts)


# --------------------------------------------------------------- simple API
_BACKBONE_CACHE: dict[tuple[str, str, str], "Backbone"] = {}


def cached_backbone(model: str | os.PathLike | None = None, *, device: str | torch.device | None = None,
                    dtype: torch.dtype | str | None = None) -> "Backbone":
    """Load a model once per (spec, device, dtype) and keep the most recent one (no reload per call)."""
    from ticraft.models.load import load_backbone, resolve_model_spec

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    key = (resolve_model_spec(model), str(dev), str(dt))
    if key not in _BACKBONE_CACHE:
        _BACKBONE_CACHE.clear()  # one model at a time: they are large
        _BACKBONE_CACHE[key] = load_backbone(key[0], device=dev, dtype=dt)
    return _BACKBONE_CACHE[key]


def random_seed() -> int:
    """A fresh seed (recorded in the metadata, so the image stays reproducible)."""
    return random.SystemRandom().randrange(0, 2**32)


def sample(prompt: str, *, concepts: Iterable[Concept | str] = (), model: Any = None, library: Any = None,
           n: int = 1, seed: int | None = 0, batch_size: int = 8, callback: ProgressCallback | None = None,
           device: str | torch.device | None = None, dtype: torch.dtype | str | None = None,
           **spec_fields: Any) -> list[Image.Image]:
    """Generate ``n`` images of ``prompt`` with seeds ``seed, seed+1, …`` (``seed=None``: a random start).

    ``model`` is a loaded ``Backbone`` or a model spec (``"toy"``, a folder, a file; ``None`` → the
    configured default). Other keywords are :class:`SampleSpec` fields (``negative``, ``steps``,
    ``guidance``, ``scheduler``, ``width``, ``height``).

    >>> import ticraft
    >>> ticraft.sample("a photo of <cat-toy>", model="toy", n=2, steps=20)  # doctest: +SKIP
    [<PIL.Image.Image image mode=RGB size=32x32 ...>, <PIL.Image.Image image mode=RGB size=32x32 ...>]
    """
    from ticraft.models.backbone import Backbone

    if n < 1:
        raise SampleError(f"n must be at least 1, got {n}")
    unknown = set(spec_fields) - {f.name for f in fields(SampleSpec)}
    if unknown:
        raise SampleError(f"unknown sampling {noun(len(unknown), 'option')} {', '.join(sorted(unknown))}; "
                          f"use {', '.join(f.name for f in fields(SampleSpec) if f.name not in ('prompt', 'seed'))}")
    backbone = model if isinstance(model, Backbone) else cached_backbone(model, device=device, dtype=dtype)
    start = random_seed() if seed is None else int(seed)
    specs = [SampleSpec(prompt=prompt, seed=start + i, **spec_fields) for i in range(n)]
    return generate(backbone, specs, library=library, concepts=concepts, batch_size=batch_size, callback=callback)

