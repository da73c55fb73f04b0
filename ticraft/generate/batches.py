"""The one batch loop that every generation runs through: text-to-image, img2img and inpainting.

A :class:`Job` is one image to make (its resolved spec, its prompts with concept tokens already expanded,
the concept hashes to record). :func:`run_batches` calls the diffusers pipeline once per batch of jobs,
with one CPU generator per image (so an image does not depend on its neighbours), counts denoising
iterations for the progress callback, and writes each image's ``parameters`` text with its batch size and
position — what :func:`ticraft.generate.sample.reproduce` replays for a bit-exact copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import torch
from PIL import Image

from ticraft.generate.errors import ProgressCallback
from ticraft.generate.pngmeta import format_parameters
from ticraft.generate.specs import SampleSpec

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

__all__ = ["Job", "Progress", "prepare_pipeline", "generators", "image_parameters", "run_batches"]


@dataclass(frozen=True)
class Job:
    """One image to make: its resolved spec, the expanded prompt and negative, and the concept hashes to record."""

    spec: SampleSpec
    prompt: str
    negative: str
    hashes: dict[str, str]


class Progress:
    """Counts denoising iterations across batches and forwards them to ``callback(step, total)``."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0

    def hook(self) -> Callable[..., dict[str, Any]] | None:
        """A diffusers ``callback_on_step_end`` (``None`` when nobody listens, so the pipeline skips it)."""
        callback = self.callback
        if callback is None:
            return None

        def on_step_end(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            self.done = min(self.done + 1, self.total)
            callback(self.done, self.total)
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
        spec.prompt, spec.negative, steps=int(spec.steps or 0), sampler=str(spec.scheduler),
        cfg=float(spec.guidance or 0.0), seed=spec.seed, width=int(spec.width or 0), height=int(spec.height or 0),
        model=backbone.name, model_hash=model_hash or backbone.fingerprint()[:10], concept_hashes=hashes, extra=more,
    )


def run_batches(backbone: "Backbone", pipe: Any, batches: Sequence[Sequence[Job]], *, schedulers: dict[str, Any],
                progress: Progress, pipe_kwargs: dict[str, Any] | None = None, pass_size: bool = True,
                extra: dict[str, Any] | None = None,
                finish: Callable[[Image.Image], Image.Image] | None = None) -> list[list[Image.Image]]:
    """Run ``pipe`` once per batch (jobs in a batch share steps, guidance, scheduler and size); images per batch.

    Args:
        schedulers: ``{name: scheduler}``, one object per name, reused across calls (each call resets it).
        pipe_kwargs: more pipeline arguments (the source image, strength, mask).
        pass_size: pass ``width``/``height`` (img2img takes its size from the source image instead).
        extra: more fields for every image's ``parameters`` (an edit's strength and source hash).
        finish: applied to each image before its parameters are written (resizing, mask compositing).
    """
    model_hash = backbone.fingerprint()[:10]
    out: list[list[Image.Image]] = []
    for batch in batches:
        first = batch[0].spec
        pipe.scheduler = schedulers[str(first.scheduler)]
        kwargs: dict[str, Any] = dict(
            prompt=[j.prompt for j in batch],
            negative_prompt=[j.negative for j in batch],
            num_inference_steps=first.steps,
            guidance_scale=first.guidance,
            generator=generators(j.spec.seed for j in batch),
            output_type="pil",
            callback_on_step_end=progress.hook(),
            **(pipe_kwargs or {}),
        )
        if pass_size:
            kwargs.update(width=first.width, height=first.height)
        images: list[Image.Image] = []
        for pos, (job, img) in enumerate(zip(batch, pipe(**kwargs).images, strict=True)):
            if finish is not None:
                img = finish(img)
            img.info["parameters"] = image_parameters(backbone, job.spec, job.hashes, batch_size=len(batch),
                                                      batch_pos=pos, extra=extra, model_hash=model_hash)
            images.append(img)
        out.append(images)
    return out
