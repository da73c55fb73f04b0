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
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import torch
from PIL import Image

from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.imaging import make_grid
from ticraft.generate.pngmeta import SAMPLER_LABELS, format_parameters, read_parameters, save_png  # noqa: F401 (re-exported)
from ticraft.prompts import PromptError, budget_warning, expand_prompt, find_concept_tokens

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

__all__ = [
    "SampleSpec", "SampleError", "PromptBudgetWarning", "ReproductionWarning", "SCHEDULERS", "generate", "sample",
    "reproduce", "compose", "ComposeResult", "model_defaults", "make_scheduler", "save_png", "read_parameters",
    "spec_from_parameters", "prepare_concepts", "resolve_device", "default_dtype", "cached_backbone",
]

#: ``callback(step, total)`` — compatible with the trainer's ``callback(step, total, loss=None, vectors=None)``.
ProgressCallback = Callable[..., Any]


class SampleError(TicraftError):
    """Generation settings are invalid or a request cannot be carried out."""


class PromptBudgetWarning(UserWarning):
    """A prompt (with concept vectors expanded) is longer than CLIP's 75 usable tokens."""


class ReproductionWarning(UserWarning):
    """A re-created image will differ from the original (another model, or a concept changed since)."""


# ------------------------------------------------------------------ specs
@dataclass
class SampleSpec:
    """Everything that decides one image. ``None`` fields take the model's defaults (:func:`model_defaults`).

    >>> SampleSpec("a photo of <cat-toy>", seed=3).seed
    3
    """

    prompt: str
    negative: str = ""
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    width: int | None = None
    height: int | None = None

    def resolved(self, defaults: dict[str, Any]) -> "SampleSpec":
        """A copy with every ``None`` filled from ``defaults``, validated."""
        spec = replace(self, **{f.name: defaults[f.name] for f in fields(self)
                                if getattr(self, f.name) is None and f.name in defaults})
        _validate(spec)
        return spec

    def batch_key(self) -> tuple[Any, ...]:
        """Specs with equal keys can share one pipeline call."""
        return (self.steps, self.guidance, self.scheduler, self.width, self.height)


def _validate(spec: SampleSpec) -> None:
    if not isinstance(spec.prompt, str) or not isinstance(spec.negative, str):
        raise SampleError("prompt and negative prompt must be strings")
    if not isinstance(spec.seed, int) or not 0 <= spec.seed < 2**63:
        raise SampleError(f"seed must be an integer in [0, 2^63), got {spec.seed!r}")
    if spec.steps is None or spec.steps < 1:
        raise SampleError(f"steps must be at least 1, got {spec.steps}")
    if spec.guidance is None or spec.guidance < 0:
        raise SampleError(f"guidance must be ≥ 0, got {spec.guidance}")
    for name in ("width", "height"):
        v = getattr(spec, name)
        if v is None or v < 8 or v % 8:
            raise SampleError(f"{name} must be a positive multiple of 8 px, got {v}")
    scheduler_class(spec.scheduler)  # raises for unknown names


# ------------------------------------------------------------- schedulers
#: Scheduler names → (diffusers class, settings forced on top of the model's scheduler config).
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    # A1111's "DPM++ 2M SDE": the multistep solver's SDE variant needs no torchsde.
    "dpm++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "lms": ("LMSDiscreteScheduler", {}),  # needs scipy
    "flow_euler": ("FlowMatchEulerDiscreteScheduler", {}),  # SD3/Flux (rectified flow) only
}
assert set(SCHEDULERS) == set(SAMPLER_LABELS)


def scheduler_class(name: str | None) -> Any:
    """The diffusers class for a scheduler name (clear error listing names when unknown)."""
    if name not in SCHEDULERS:
        raise SampleError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    if name == "lms":
        try:
            import scipy  # noqa: F401
        except ImportError:
            raise SampleError("the lms scheduler needs scipy (pip install scipy); or pick another scheduler") from None
    import diffusers

    return getattr(diffusers, SCHEDULERS[name][0])


def make_scheduler(backbone: "Backbone", name: str) -> Any:
    """A fresh scheduler ``name`` built from the model's own scheduler config.

    ``from_config`` keeps what the model was trained with — prediction type (epsilon / v),
    zero-terminal-SNR rescaling, timestep spacing, beta schedule — and only the solver changes.
    """
    from ticraft.models.mmdit import scheduler_mismatch

    cls = scheduler_class(name)
    if mismatch := scheduler_mismatch(backbone, name):  # flow models take flow_euler, the others anything else
        raise SampleError(mismatch)
    return cls.from_config(backbone.scheduler.config, **SCHEDULERS[name][1])


def scheduler_name_of(scheduler: Any) -> str | None:
    """The ticraft name of an existing scheduler object (``None`` when it has none)."""
    cname = type(scheduler).__name__
    if cname == "DPMSolverMultistepScheduler":
        algo = getattr(scheduler.config, "algorithm_type", "dpmsolver++")
        return "dpm++_sde" if algo.startswith("sde") else "dpm++"
    return next((n for n, (c, _) in SCHEDULERS.items() if c == cname), None)


# --------------------------------------------------------------- defaults
#: Sampling defaults per family (size comes from the model itself).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "sd1": {"steps": 25, "guidance": 7.5, "scheduler": "dpm++"},
    "sd2": {"steps": 25, "guidance": 7.5, "scheduler": "dpm++"},
    "sdxl": {"steps": 25, "guidance": 5.0, "scheduler": "dpm++"},
    "toy": {"steps": 20, "guidance": 4.0, "scheduler": "ddim"},  # what toyworld.base evaluates the model with
    # diffusers' StableDiffusion3Pipeline / FluxPipeline defaults (Flux's guidance is its distilled embedding)
    "sd3": {"steps": 28, "guidance": 7.0, "scheduler": "flow_euler"},
    "flux": {"steps": 28, "guidance": 3.5, "scheduler": "flow_euler"},
}

#: A model folder may ship its own sampling defaults in this file (the toy model does).
DEFAULTS_FILE = "ticraft.json"


def native_size(backbone: "Backbone") -> tuple[int, int]:
    """The image size the UNet was built for: latent ``sample_size`` × the VAE's downscale."""
    sample = backbone.unet.config.sample_size
    h, w = (sample, sample) if isinstance(sample, int) else tuple(sample)
    scale = 2 ** (len(backbone.vae.config.block_out_channels) - 1)
    return int(w * scale), int(h * scale)


def _folder_defaults(backbone: "Backbone") -> dict[str, Any]:
    """Defaults from ``<model folder>/ticraft.json``: ``{"sampling": {...}}``, ``{"defaults": {...}}`` or flat."""
    import json

    path = Path(backbone.source) / DEFAULTS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SampleError(f"{path} is unreadable ({exc})") from exc
    section = data.get("sampling", data.get("defaults", data)) if isinstance(data, dict) else {}
    out = {k: section[k] for k in ("steps", "guidance", "scheduler", "width", "height") if k in section}
    if "guidance_scale" in section and "guidance" not in out:
        out["guidance"] = section["guidance_scale"]
    if "num_inference_steps" in section and "steps" not in out:
        out["steps"] = section["num_inference_steps"]
    size = section.get("size", section.get("resolution"))
    if isinstance(size, int):
        out.setdefault("width", size)
        out.setdefault("height", size)
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        out.setdefault("width", int(size[0]))
        out.setdefault("height", int(size[1]))
    return out


def model_defaults(backbone: "Backbone") -> dict[str, Any]:
    """Sampling defaults for a model: ``{"steps", "guidance", "scheduler", "width", "height"}``.

    Family defaults (SD: 25 DPM++ steps at CFG 7.5; SDXL CFG 5; toy 20 DDIM steps at CFG 4), the
    model's native size, then anything its folder's ``ticraft.json`` sets. Other models use their
    own scheduler's type (DDIM if it has no ticraft name).
    """
    w, h = native_size(backbone)
    own = scheduler_name_of(backbone.scheduler) or "ddim"
    out: dict[str, Any] = {"steps": 25, "guidance": 7.5, "scheduler": own, "width": w, "height": h}
    out.update(FAMILY_DEFAULTS.get(backbone.family, {}))
    out.update(_folder_defaults(backbone))
    return out


# --------------------------------------------------------------- devices
def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """``--device`` → torch device: explicit name > ``ticraft config`` ``device`` > CUDA if present > CPU."""
    if isinstance(name, torch.device):
        return name
    if not name:
        from ticraft.user_config import get_config_value

        name = get_config_value("device") or "auto"
    if name in ("auto", "cuda") and torch.cuda.is_available():
        # Under torchrun / accelerate launch every process takes its own GPU.
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name == "auto":
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SampleError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SampleError(f"device {name} requested but CUDA is not available here; use --device cpu")
    return dev


def default_dtype(device: torch.device, name: str | None = None) -> torch.dtype:
    """Weights dtype: explicit ``fp32|fp16|bf16``, else bf16 (or fp16) on CUDA and fp32 elsewhere.

    bf16 rather than fp16 where supported, because SDXL's VAE overflows in fp16.
    """
    table = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if name and name != "auto":
        if name not in table:
            raise SampleError(f"unknown dtype {name!r}: use auto, fp32, fp16 or bf16")
        return table[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# --------------------------------------------------------------- concepts
def _open_library(library: Any) -> Any:
    if library is None or hasattr(library, "get"):
        return library
    from ticraft.library import Library

    return Library.resolve(Path(library))


def _default_library() -> Any:
    """The library the user would get from the CLI (None when ticraft.library is unavailable)."""
    try:
        from ticraft.library import Library
    except ImportError:
        return None
    try:
        return Library.resolve(None)
    except TicraftError:
        return None


def _library_get(library: Any, token: str) -> Concept | None:
    if library is None:
        return None
    has = getattr(library, "has", None)
    if has is None:  # a mapping-like stand-in
        try:
            return library.get(token)
        except KeyError:
            return None
    # An entry that exists but cannot be read raises its own clear error (not "unknown token").
    return library.get(token) if has(token) else None


def prepare_concepts(backbone: "Backbone", texts: Iterable[str], *, library: Any = None,
                     concepts: Iterable[Concept | str] = ()) -> dict[str, Concept]:
    """Load every concept token used in ``texts`` into ``backbone``; return ``{token: Concept}`` used.

    Where a token comes from, first match wins: ``concepts`` (Concept objects; strings name tokens to
    take from the library), ``library``, concepts already loaded in the backbone, then — only when
    ``library`` is ``None`` — the default library (``$TICRAFT_LIBRARY``, ``./embeddings``, …).
    Unknown tokens are named in one :class:`~ticraft.prompts.PromptError`; a concept whose family or
    widths do not fit the model raises the backbone's clear error.
    """
    needed: list[str] = []
    for text in texts:
        needed += [t for t in find_concept_tokens(text) if t not in needed]
    if not needed:
        return {}
    explicit: dict[str, Concept] = {}
    lib = _open_library(library)
    for c in concepts:
        if isinstance(c, Concept):
            explicit[c.token] = c
        elif isinstance(c, str):
            found = _library_get(lib if lib is not None else _default_library(), c)
            if found is None:
                raise PromptError(f"concept {c} is not in the library")
            explicit[found.token] = found
        else:
            raise SampleError(f"concepts must be Concept objects or token strings, got {type(c).__name__}")

    loaded = backbone.loaded_concepts
    chosen: dict[str, Concept] = {}
    missing: list[str] = []
    default_lib: Any = None
    for tok in needed:
        c = explicit.get(tok)
        c = c if c is not None else _library_get(lib, tok)
        c = c if c is not None else loaded.get(tok)
        if c is None and library is None:
            default_lib = default_lib if default_lib is not None else _default_library()
            c = _library_get(default_lib, tok)
        if c is None:
            missing.append(tok)
        else:
            # The library matches "<Cat-Toy>" to "<cat-toy>"; the placeholder must be the prompt's spelling.
            chosen[tok] = c if c.token == tok else c.replace(token=tok)
    if missing:
        searched = lib if lib is not None else default_lib  # (an empty Library is falsy: compare with None)
        where = getattr(searched, "root", None)
        place = f" (library: {where})" if where is not None else ""
        raise PromptError(
            f"unknown concept token(s) {', '.join(missing)}{place}: import or train them first, "
            "or pass them as concepts"
        )
    for tok, c in chosen.items():
        current = loaded.get(tok)
        if current is c or (current is not None and current.sha256() == c.sha256()):
            continue  # already spliced in: no reload
        backbone.load_concept(c)
    return chosen


def concept_hashes(concepts: dict[str, Concept], texts: Iterable[str]) -> dict[str, str]:
    """``{token: short content hash}`` for the concepts these texts use (12 hex digits, like A1111)."""
    used: list[str] = []
    for t in texts:
        used += [tok for tok in find_concept_tokens(t) if tok not in used]
    return {tok: concepts[tok].sha256()[:12] for tok in used if tok in concepts}


def _warn_budget(backbone: "Backbone", texts: Iterable[str], counts: dict[str, int]) -> None:
    tokenizer = backbone.encoders[0].tokenizer
    for text in dict.fromkeys(texts):
        msg = budget_warning(text, counts, tokenizer) if text else None
        if msg:
            warnings.warn(f"{text[:60]!r}…: {msg}", PromptBudgetWarning, stacklevel=3)


# --------------------------------------------------------------- batching
def plan_batches(specs: Sequence[SampleSpec], batch_size: int) -> list[list[int]]:
    """Group spec indices by shared settings (first-appearance order), then cut into batches.

    >>> a = SampleSpec("x", steps=2, guidance=1, scheduler="ddim", width=8, height=8)
    >>> b = replace(a, steps=3)
    >>> plan_batches([a, b, a, a], 2)
    [[0, 2], [3], [1]]
    """
    if batch_size < 1:
        raise SampleError(f"batch size must be at least 1, got {batch_size}")
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, s in enumerate(specs):
        groups.setdefault(s.batch_key(), []).append(i)
    return [idx[k:k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]


def _distributed(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _loop_length(scheduler: Any, steps: int, strength: float = 1.0) -> int:
    """How many denoising iterations a pipeline call will run (Heun/PNDM-like solvers differ from ``steps``)."""
    # Flux's dynamic shift needs `mu` (it moves the timesteps, never their number)
    dynamic = bool(getattr(scheduler.config, "use_dynamic_shifting", False))
    scheduler.set_timesteps(steps, **({"mu": 0.0} if dynamic else {}))
    n = len(scheduler.timesteps)
    if strength < 1.0:
        order = getattr(scheduler, "order", 1)
        init = min(int(steps * strength), steps)
        n = len(scheduler.timesteps[max(steps - init, 0) * order:])
    return n


class _Progress:
    """Counts denoising iterations across batches and forwards them to ``callback(step, total)``."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0

    def hook(self) -> Callable[..., dict[str, Any]] | None:
        if self.callback is None:
            return None

        def on_step_end(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            self.done = min(self.done + 1, self.total)
            self.callback(self.done, self.total)
            return kwargs

        return on_step_end


def prepare_pipeline(backbone: "Backbone", kind: str = "text2img") -> Any:
    """The backbone's diffusers pipeline of ``kind`` with diffusers' own textual-inversion rewrite off.

    ticraft expands ``<tok>`` into ``<tok> <tok>_1 …`` itself (the same way the trainer does);
    diffusers' ``maybe_convert_prompt`` would expand an already-expanded prompt a second time.
    """
    pipe = backbone.pipeline(kind)
    pipe.maybe_convert_prompt = lambda prompt, tokenizer: prompt
    return pipe


def generators(seeds: Iterable[int]) -> list[torch.Generator]:
    """One CPU generator per image: the same seed gives the same starting noise on any device."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def image_parameters(backbone: "Backbone", spec: SampleSpec, hashes: dict[str, str], *,
                     batch_size: int = 1, batch_pos: int = 0, extra: dict[str, Any] | None = None,
                     model_hash: str | None = None) -> str:
    """The ``parameters`` text for one image of a batch (pass ``model_hash`` to skip re-hashing the model)."""
    more: dict[str, Any] = {}
    if batch_size > 1:
        more.update({"Batch size": batch_size, "Batch pos": batch_pos})
    more.update(extra or {})
    return format_parameters(
        spec.prompt, spec.negative, steps=int(spec.steps), sampler=str(spec.scheduler), cfg=float(spec.guidance),
        seed=spec.seed, width=int(spec.width), height=int(spec.height), model=backbone.name,
        model_hash=model_hash or backbone.fingerprint()[:10], concept_hashes=hashes, extra=more,
    )


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
    texts = [t for s in full for t in (s.prompt, s.negative)]
    used = prepare_concepts(backbone, texts, library=library, concepts=concepts)
    counts = {tok: c.num_vectors for tok, c in used.items()}
    expanded = [(expand_prompt(s.prompt, counts), expand_prompt(s.negative, counts)) for s in full]
    _warn_budget(backbone, [s.prompt for s in full] + [s.negative for s in full], counts)

    batches = plan_batches(full, batch_size)
    state = None
    if _distributed(distributed):
        from accelerate import PartialState

        # A model on the CPU talks over gloo; accelerate only picks it when told the run is CPU-only.
        state = PartialState(cpu=backbone.device.type == "cpu")
        with state.split_between_processes(batches) as mine:
            batches = list(mine)

    pipe = prepare_pipeline(backbone, "text2img")
    # One scheduler per name and call: building one costs more than a tiny model's step, and
    # `set_timesteps` (run by every pipeline call) resets a solver's per-run state.
    schedulers = {name: make_scheduler(backbone, name) for name in dict.fromkeys(s.scheduler for s in full)}
    # the scheduler's own check only fires inside the pipeline call, as a traceback, after earlier batches ran
    limit = int(getattr(backbone.scheduler.config, "num_train_timesteps", 1000))
    if too_many := sorted({s.steps for s in full if s.steps > limit}):
        raise SampleError(f"steps must be at most {limit} for this model (its scheduler has {limit} training "
                          f"timesteps), got {', '.join(map(str, too_many))}")
    progress = _Progress(callback, sum(_loop_length(schedulers[full[b[0]].scheduler], full[b[0]].steps)
                                       for b in batches))
    model_hash = backbone.fingerprint()[:10]
    hashes = [concept_hashes(used, (s.prompt, s.negative)) for s in full]
    results: list[tuple[int, Image.Image]] = []
    for batch in batches:
        first = full[batch[0]]
        pipe.scheduler = schedulers[first.scheduler]
        out = pipe(
            prompt=[expanded[i][0] for i in batch],
            negative_prompt=[expanded[i][1] for i in batch],
            num_inference_steps=first.steps,
            guidance_scale=first.guidance,
            width=first.width,
            height=first.height,
            generator=generators(full[i].seed for i in batch),
            output_type="pil",
            callback_on_step_end=progress.hook(),
        )
        for pos, (i, img) in enumerate(zip(batch, out.images, strict=True)):
            img.info["parameters"] = image_parameters(
                backbone, full[i], hashes[i], batch_size=len(batch), batch_pos=pos, model_hash=model_hash)
            results.append((i, img))

    if state is not None and state.num_processes > 1:
        from accelerate.utils import gather_object

        results = gather_object(results)
    by_index = dict(results)
    return [by_index[i] for i in range(len(full))]


# ------------------------------------------------------------ reproduce
def spec_from_parameters(params: dict[str, Any]) -> SampleSpec:
    """A :class:`SampleSpec` from :func:`read_parameters` output (clear error when fields are missing)."""
    missing = [k for k in ("steps", "cfg", "seed", "sampler", "size") if k not in params]
    if missing:
        raise SampleError(f"the image's parameters lack {', '.join(missing)}: it cannot be re-created")
    if params.get("edit"):
        raise SampleError(
            f"this image was made by `ticraft edit` ({params['edit']}) from a source image: re-run the edit instead"
        )
    return SampleSpec(prompt=params["prompt"], negative=params.get("negative", ""), seed=params["seed"],
                      steps=params["steps"], guidance=params["cfg"], scheduler=params["sampler"],
                      width=params["size"][0], height=params["size"][1])


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
    spec = spec_from_parameters(params)
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
    dt = dtype if isinstance(dtype, torch.dtype) else default_dtype(dev, dtype)
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
        raise SampleError(f"unknown sampling option(s) {', '.join(sorted(unknown))}; "
                          f"use {', '.join(f.name for f in fields(SampleSpec) if f.name not in ('prompt', 'seed'))}")
    backbone = model if isinstance(model, Backbone) else cached_backbone(model, device=device, dtype=dtype)
    start = random_seed() if seed is None else int(seed)
    specs = [SampleSpec(prompt=prompt, seed=start + i, **spec_fields) for i in range(n)]
    return generate(backbone, specs, library=library, concepts=concepts, batch_size=batch_size, callback=callback)

