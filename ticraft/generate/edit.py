"""Edit an existing image with concepts: img2img, and inpainting inside a mask (the paper's downstream use).

Both go through diffusers' img2img / inpaint pipelines built from the backbone's already-loaded
components (:meth:`Backbone.pipeline` — no second copy of the weights), with the same concept
loading, prompt expansion, per-image seeding and PNG metadata as :mod:`ticraft.generate.sample`.

With a mask (white = change, black = keep), pixels outside the mask are copied from the source
image, so the rest of the picture is kept exactly (a plain SD UNet inpaints by blending latents, which
alone would still let the VAE round-trip touch every pixel).

>>> out = edit(bb, "room.png", "a photo of <cat-toy> on a sofa", mask="sofa-mask.png")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
from PIL import Image

from ticraft.concept import Concept
from ticraft.generate.batches import Job, Progress, prepare_pipeline, run_batches
from ticraft.generate.concepts import concept_hashes, prepare_concepts, warn_budget
from ticraft.generate.errors import ProgressCallback, SampleError
from ticraft.generate.schedulers import loop_length, make_scheduler
from ticraft.generate.specs import SampleSpec, model_defaults, refuse_unread_negative, warn_guidance
from ticraft.prompts import expand_prompt

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

#: Default denoising strength: img2img keeps the composition; inpainting repaints the masked region fully.
DEFAULT_STRENGTH = {"img2img": 0.75, "inpaint": 1.0}


def load_rgb(source: str | os.PathLike | Image.Image, what: str = "image") -> Image.Image:
    """Open an image (path or PIL) as RGB, with a clear error."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    path = Path(source)
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise SampleError(f"{what} not found: {path}") from None
    except (OSError, SyntaxError) as exc:
        raise SampleError(f"{what} {path} is not a readable image ({exc})") from exc


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Return a requested ``(width, height)`` if `sample` would take it too, else raise :class:`SampleError`.

    The same rule and words as :class:`SampleSpec`'s own check (which runs only once the model's defaults are known):
    a size the user asked for is refused, never rounded, and before any model loads.

    >>> check_size((64, 32))
    (64, 32)
    >>> check_size((12, 16))
    Traceback (most recent call last):
    ...
    ticraft.generate.errors.SampleError: width must be a positive multiple of 8 px, got 12
    """
    for name, v in zip(("width", "height"), size, strict=True):
        if v < 8 or v % 8:
            raise SampleError(f"{name} must be a positive multiple of 8 px, got {v}")
    return size


def working_size(image: Image.Image, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The size the edit runs at: ``size`` (checked, not rounded), else the image's own size rounded down to
    multiples of 8.

    >>> working_size(Image.new("RGB", (37, 20)))
    (32, 16)
    """
    if size is not None:
        return check_size(size)
    w, h = image.size
    return max(8, w // 8 * 8), max(8, h // 8 * 8)


def load_mask(source: str | os.PathLike | Image.Image, size: tuple[int, int]) -> Image.Image:
    """A binary ``L`` mask at ``size``: 255 where the image may change (white or opaque), 0 elsewhere."""
    if isinstance(source, Image.Image):
        im = source
    else:
        path = Path(source)
        try:
            im = Image.open(path)
            im.load()
        except FileNotFoundError:
            raise SampleError(f"mask not found: {path}") from None
        except (OSError, SyntaxError) as exc:
            raise SampleError(f"mask {path} is not a readable image ({exc})") from exc
    # A mask drawn on a transparent layer marks the region by alpha; otherwise by brightness.
    extrema: Any = im.getextrema()  # per band (min, max) for a multi-band image
    gray = im.getchannel("A") if im.mode in ("RGBA", "LA") and extrema[-1][0] < 255 else im.convert("L")
    gray = gray.resize(size, Image.Resampling.NEAREST)
    mask = gray.point(lambda v: 255 if v >= 128 else 0)
    if mask.getextrema()[1] == 0:
        raise SampleError("the mask is empty (all black): paint the region to change in white")
    return mask


def image_hash(image: Image.Image) -> str:
    """Short content hash of an image's pixels (recorded so an edit names its source)."""
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()[:10]


def edit(backbone: "Backbone", image: str | os.PathLike | Image.Image, prompt: str, *,
         mask: str | os.PathLike | Image.Image | None = None, strength: float | None = None, negative: str = "",
         seed: int = 0, n: int = 1, steps: int | None = None, guidance: float | None = None,
         scheduler: str | None = None, size: tuple[int, int] | None = None, library: Any = None,
         concepts: Iterable[Concept | str] = (), batch_size: int = 8,
         callback: ProgressCallback | None = None) -> list[Image.Image]:
    """Re-render ``image`` towards ``prompt`` (img2img), or only inside ``mask`` (inpainting).

    Args:
        image: the source picture (path or PIL).
        prompt: may use concept tokens, e.g. ``"a photo of <cat-toy> on a sofa"``.
        mask: white = region to change; the rest is kept pixel for pixel.
        strength: how far to move away from the source (0–1]; default 0.75 (img2img) / 1.0 (inpaint).
        n: images, with seeds ``seed, seed+1, …``.
        size: run at this (w, h) (multiples of 8) instead of the image's own size.
    Returns:
        ``n`` images with ``info["parameters"]`` (``Edit``, ``Denoising strength`` and the source hash included).
    """
    kind = "inpaint" if mask is not None else "img2img"
    strength = DEFAULT_STRENGTH[kind] if strength is None else float(strength)
    if not 0.0 < strength <= 1.0:
        raise SampleError(f"strength must be in (0, 1], got {strength}")
    if n < 1:
        raise SampleError(f"n must be at least 1, got {n}")
    if size is not None:
        check_size(size)  # before reading the image: a bad request is the error to report
    source = load_rgb(image, "source image")
    w, h = working_size(source, size)
    init = source if source.size == (w, h) else source.resize((w, h), Image.Resampling.LANCZOS)
    mask_img = load_mask(mask, (w, h)) if mask is not None else None

    base = SampleSpec(prompt=prompt, negative=negative, seed=seed, steps=steps, guidance=guidance,
                      scheduler=scheduler, width=w, height=h).resolved(model_defaults(backbone))
    if int((base.steps or 0) * strength) < 1:
        raise SampleError(f"strength {strength} × {base.steps} steps runs no denoising step: raise either")
    refuse_unread_negative(backbone, [base])
    warn_guidance(backbone, [base])
    used = prepare_concepts(backbone, [prompt, negative], library=library, concepts=concepts)
    counts = {tok: c.num_vectors for tok, c in used.items()}
    pos_text, neg_text = expand_prompt(prompt, counts), expand_prompt(negative, counts)
    warn_budget(backbone, [prompt, negative], counts)
    hashes = concept_hashes(used, (prompt, negative))
    extra: dict[str, Any] = {"Denoising strength": strength, "Edit": kind, "Init image hash": image_hash(init)}
    if mask_img is not None:
        extra["Mask hash"] = image_hash(mask_img)

    pipe = prepare_pipeline(backbone, kind)
    step = max(1, batch_size)
    seeds = [seed + i for i in range(n)]
    batches = [[Job(replace(base, seed=s), pos_text, neg_text, hashes) for s in seeds[k:k + step]]
               for k in range(0, n, step)]
    scheduler = make_scheduler(backbone, str(base.scheduler))  # reused: each pipeline call resets its state
    steps = int(base.steps or 0)
    progress = Progress(callback, len(batches) * loop_length(scheduler, steps, strength))
    pipe_kwargs: dict[str, Any] = {"image": init, "strength": strength}
    if mask_img is not None:
        pipe_kwargs["mask_image"] = mask_img

    def finish(img: Image.Image) -> Image.Image:
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.LANCZOS)
        if mask_img is not None:
            img = Image.composite(img, init, mask_img)  # outside the mask: the source, exactly
        return img

    # SD img2img takes its size from the source image; inpainting and SD3/Flux img2img are told it (SD3/Flux would
    # otherwise resize the source to their default 1024 px).
    from ticraft.models.mmdit import is_flow

    images = run_batches(backbone, pipe, batches, schedulers={str(base.scheduler): scheduler}, progress=progress,
                         pipe_kwargs=pipe_kwargs, pass_size=mask_img is not None or is_flow(backbone), extra=extra,
                         finish=finish)
    return [img for batch in images for img in batch]
