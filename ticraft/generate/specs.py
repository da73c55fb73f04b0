"""What decides one image (:class:`SampleSpec`), a model's sampling defaults, and how specs share batches."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ticraft.generate.errors import GuidanceWarning, ReproductionWarning, SampleError
from ticraft.generate.schedulers import scheduler_class, scheduler_name_of

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

__all__ = ["SampleSpec", "plan_batches", "FAMILY_DEFAULTS", "DEFAULTS_FILE", "native_size", "model_defaults",
           "spec_from_parameters", "warn_guidance", "refuse_unread_negative", "drop_unread_negative"]


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


def _is_flux(backbone: "Backbone") -> bool:
    """Whether ``backbone`` samples through diffusers' Flux pipelines (also when its family was overridden)."""
    from ticraft.models.mmdit import flow_family

    return flow_family(backbone) == "flux"


def refuse_unread_negative(backbone: "Backbone", specs: Sequence[SampleSpec]) -> None:
    """Refuse a negative prompt on Flux before anything renders: its pipelines would silently ignore it.

    diffusers' Flux pipelines read ``negative_prompt`` only with ``true_cfg_scale > 1`` (default 1); ticraft does not
    pass one, because Flux's guidance is distilled into the model and true CFG would double every step's cost.
    """
    if _is_flux(backbone) and any(s.negative.strip() for s in specs):
        raise SampleError("Flux models ignore negative prompts (their guidance is distilled): "
                          "drop the negative prompt (--negative)")


def drop_unread_negative(backbone: "Backbone", spec: SampleSpec) -> SampleSpec:
    """``spec`` without its negative prompt on Flux, which never read it (for re-creating a recorded image).

    Images made on Flux before :func:`refuse_unread_negative` existed may record a negative that did nothing; the same
    pixels come without it, so re-creating such an image says so instead of refusing it.
    """
    if not (spec.negative.strip() and _is_flux(backbone)):
        return spec
    warnings.warn("the image records a negative prompt, which Flux models ignore: re-created without it",
                  ReproductionWarning, stacklevel=3)
    return replace(spec, negative="")


def _flux_unguided(backbone: "Backbone") -> bool:
    """A Flux transformer without a guidance embedding (FLUX.1-schnell's layout): the pipeline drops ``guidance``."""
    return _is_flux(backbone) and not getattr(getattr(backbone.unet, "config", None), "guidance_embeds", True)


def warn_guidance(backbone: "Backbone", specs: Sequence[SampleSpec]) -> None:
    """Warn (once per call, not per image) where a guidance ≤ 1 makes resolved ``specs`` act otherwise than written.

    diffusers' SD, SDXL and SD3 pipelines (text2img, img2img, inpaint) run classifier-free guidance only when
    ``guidance_scale > 1``: guidance 0, 0.5 and 1 make the same conditional-only image and never encode the
    negative prompt, while the image's parameters still record both. On Flux guidance is a distilled value the
    transformer is conditioned on, not CFG, so values below 1 mean what they say — except on a transformer without a
    guidance embedding (FLUX.1-schnell), where diffusers drops it: any value but 0 (its default here) is warned of.
    """
    if _flux_unguided(backbone):
        given = sorted({float(s.guidance) for s in specs if s.guidance})
        if given:
            warnings.warn(f"guidance {', '.join(f'{g:g}' for g in given)} does nothing on this Flux model: it has no "
                          "guidance embedding (FLUX.1-schnell's layout), so every value makes the same image",
                          GuidanceWarning, stacklevel=3)
        return
    if _is_flux(backbone):
        return
    low = sorted({float(s.guidance) for s in specs if s.guidance is not None and s.guidance < 1})
    if low:
        values = ", ".join(f"{g:g}" for g in low)
        warnings.warn(f"guidance {values} is below 1 and acts as 1 on this model: classifier-free guidance is off",
                      GuidanceWarning, stacklevel=3)
    if any(s.guidance is not None and s.guidance <= 1 and s.negative.strip() for s in specs):
        warnings.warn("the negative prompt is not used at guidance ≤ 1 (classifier-free guidance is off): "
                      "raise guidance above 1 for it to act", GuidanceWarning, stacklevel=3)


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
    unet: Any = backbone.unet  # diffusers models: config attributes are untyped
    vae: Any = backbone.vae
    sample = unet.config.sample_size
    h, w = (sample, sample) if isinstance(sample, int) else tuple(sample)
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
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
    if not isinstance(section, dict):
        raise SampleError(f"{path}: the sampling defaults must be a JSON object")
    out: dict[str, Any] = {k: section[k] for k in ("steps", "guidance", "scheduler", "width", "height") if k in section}
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
    if _flux_unguided(backbone):  # FLUX.1-schnell: 4 steps, guidance 0 (diffusers' documented settings)
        out.update(steps=4, guidance=0.0)
    out.update(_folder_defaults(backbone))
    return out


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

