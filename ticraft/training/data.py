"""Training data: images → square crops → VAE latents, computed once; prompts from templates or captions.

The VAE never runs inside the optimisation loop. Every image is encoded once per *variant* (the
centre crop, its horizontal flip, optional zoomed random crops and their flips); the loop then only
indexes the cached posterior means/standard deviations on the training device.

Inputs accepted by :func:`load_images`: a folder (its image files, sorted by name; ``img.txt`` next to
``img.png`` is that image's caption), a single image file, or a list of paths and/or PIL images.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ticraft.errors import TicraftError, image_error_text
from ticraft.wording import counted

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}

# The object/style templates of the textual-inversion paper's code (also used by diffusers' example).
OBJECT_TEMPLATES = [
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}",
    "a photo of a clean {}", "a photo of a dirty {}", "a dark photo of the {}", "a photo of my {}",
    "a photo of the cool {}", "a close-up photo of a {}", "a bright photo of the {}", "a cropped photo of a {}",
    "a photo of the {}", "a good photo of the {}", "a photo of one {}", "a close-up photo of the {}",
    "a rendition of the {}", "a photo of the clean {}", "a rendition of a {}", "a photo of a nice {}",
    "a good photo of a {}", "a photo of the nice {}", "a photo of the small {}", "a photo of the weird {}",
    "a photo of the large {}", "a photo of a cool {}", "a photo of a small {}",
]
STYLE_TEMPLATES = [
    "a painting in the style of {}", "a rendering in the style of {}", "a cropped painting in the style of {}",
    "the painting in the style of {}", "a clean painting in the style of {}", "a dirty painting in the style of {}",
    "a dark painting in the style of {}", "a picture in the style of {}", "a cool painting in the style of {}",
    "a close-up painting in the style of {}", "a bright painting in the style of {}",
    "a good painting in the style of {}", "a rendition in the style of {}", "a nice painting in the style of {}",
    "a small painting in the style of {}", "a weird painting in the style of {}",
    "a large painting in the style of {}",
]


class DataError(TicraftError):
    """The training images or captions cannot be used."""


@dataclass
class TrainImage:
    """One training image as loaded (RGB, or RGBA when it has transparency)."""

    name: str
    image: Any  # PIL.Image.Image
    sha256: str
    path: Path | None = None
    caption: str | None = None

    @property
    def has_alpha(self) -> bool:
        return self.image.mode == "RGBA"


# ------------------------------------------------------------------------ loading
def load_images(source: str | os.PathLike | Any | Sequence[Any], *, captions: bool = False) -> list[TrainImage]:
    """Read the training images; unreadable files raise one :class:`DataError` naming all of them."""
    from PIL import Image

    items: list[Any]
    ignored: list[str] = []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            items = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            ignored = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES and p.suffix.lower() != ".txt"]
        elif path.is_file():
            items = [path]
        else:
            raise DataError(f"no such image folder or file: {path}")
    elif isinstance(source, Image.Image):
        items = [source]
    else:
        items = list(source)

    out: list[TrainImage] = []
    bad: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, Image.Image):
            img = _normalise_mode(item)
            digest = hashlib.sha256(f"{img.mode}{img.size}".encode() + img.tobytes()).hexdigest()
            out.append(TrainImage(name=f"image-{i:03d}", image=img, sha256=digest))
            continue
        p = Path(item).expanduser()
        try:
            data = p.read_bytes()
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                from PIL import ImageOps

                img = _normalise_mode(ImageOps.exif_transpose(im))
        except FileNotFoundError:
            bad.append(f"{p.name} (no such file)")
            continue
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            bad.append(f"{p.name} ({_short(exc)})")
            continue
        caption = None
        cap_file = p.with_suffix(".txt")
        if cap_file.is_file():
            caption = cap_file.read_text(encoding="utf-8").strip() or None
        out.append(TrainImage(name=p.name, image=img, sha256=hashlib.sha256(data).hexdigest(), path=p, caption=caption))
    if bad:
        raise DataError(f"could not read {counted(len(bad), 'training image')}: {', '.join(bad)}")
    if not out:
        where = f" in {source}" if isinstance(source, (str, os.PathLike)) else ""
        extra = f" (ignored non-image files: {', '.join(ignored[:5])})" if ignored else ""
        raise DataError(f"no readable training images{where}{extra}; give at least one .png/.jpg/.webp image")
    if captions:
        missing = [im.name for im in out if not im.caption]
        if missing:
            raise DataError(
                f"--captions needs a caption file next to every image (img.txt for img.png); missing for: "
                f"{', '.join(missing)}"
            )
    return out


def _normalise_mode(img: Any) -> Any:
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    return img.convert("RGBA" if has_alpha else "RGB")


def _short(exc: BaseException) -> str:
    # PIL names in-memory data "<_io.BytesIO object at 0x…>": say what is wrong instead (the name is in front).
    return image_error_text(exc)[:80]


# ------------------------------------------------------------------------ variants
@dataclass
class Variants:
    """Square pixel crops of every image, before encoding."""

    pixels: torch.Tensor  # [I, V, 3, R, R] in [-1, 1]
    alpha: torch.Tensor | None  # [I, V, 1, R, R] in [0, 1], None when no image has transparency
    crop_top_left: torch.Tensor  # [I, V, 2] (top, left) in resized pixels
    original_sizes: torch.Tensor  # [I, 2] (height, width)
    upscaled: list[str]

    @property
    def num_images(self) -> int:
        return self.pixels.shape[0]

    @property
    def num_variants(self) -> int:
        return self.pixels.shape[1]


def make_variants(images: Sequence[TrainImage], resolution: int, *, flip: bool = True, crops: int = 0,
                  seed: int = 0) -> Variants:
    """Centre crop (+ flip) and ``crops`` zoomed random crops (+ flips) of each image at ``resolution``.

    Images smaller than ``resolution`` are upscaled (bicubic) with a warning: the model's native
    size is what it denoises best, and refusing small photos would be unfriendly.
    """
    rng = np.random.default_rng(seed)
    pix, alpha, tl = [], [], []
    upscaled = []
    any_alpha = any(im.has_alpha for im in images)
    for im in images:
        w, h = im.image.size
        if min(w, h) < resolution:
            upscaled.append(f"{im.name} ({w}×{h})")
        plans = [(1.0, 0.5, 0.5)] + [(float(rng.uniform(1.0, 1.25)), float(rng.uniform()), float(rng.uniform()))
                                     for _ in range(crops)]
        p_i, a_i, t_i = [], [], []
        for scale, fy, fx in plans:
            crop, (top, left) = _square_crop(im.image, resolution, scale, fy, fx)
            for flipped in ((False, True) if flip else (False,)):
                c = crop.transpose(0) if flipped else crop  # 0 == Image.FLIP_LEFT_RIGHT
                rgb, a = _to_tensors(c)
                p_i.append(rgb)
                a_i.append(a)
                # SDXL's crop conditioning is in the resized image; a flip mirrors the left offset.
                t_i.append((top, (_resized_width(w, h, resolution, scale) - resolution - left) if flipped else left))
        pix.append(torch.stack(p_i))
        alpha.append(torch.stack(a_i))
        tl.append(torch.tensor(t_i, dtype=torch.long))
    if upscaled:
        warnings.warn(
            f"upscaling {counted(len(upscaled), 'image')} smaller than the training resolution {resolution} px: "
            f"{', '.join(upscaled)}; results improve with larger pictures",
            UserWarning, stacklevel=3,
        )
    sizes = torch.tensor([[im.image.size[1], im.image.size[0]] for im in images], dtype=torch.long)
    return Variants(pixels=torch.stack(pix), alpha=torch.stack(alpha) if any_alpha else None,
                    crop_top_left=torch.stack(tl), original_sizes=sizes, upscaled=upscaled)


def _resized_width(w: int, h: int, size: int, scale: float) -> int:
    s = size * scale / min(w, h)
    return max(size, round(w * s))


def _square_crop(img: Any, size: int, scale: float, fy: float, fx: float) -> tuple[Any, tuple[int, int]]:
    """Resize so the shorter side is ``size * scale`` (aspect kept), then crop ``size``² at (fy, fx)."""
    from PIL import Image

    w, h = img.size
    s = size * scale / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    resized = img.resize((nw, nh), Image.Resampling.BICUBIC)
    top, left = int((nh - size) * fy), int((nw - size) * fx)
    return resized.crop((left, top, left + size, top + size)), (top, left)


def _to_tensors(img: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in [-1, 1] (transparent pixels composited on white) and alpha in [0, 1]."""
    from PIL import Image

    if img.mode == "RGBA":
        alpha = torch.from_numpy(np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0)[None]
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img).convert("RGB")
    else:
        alpha = torch.ones(1, img.size[1], img.size[0])
    rgb = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1).contiguous()
    return rgb, alpha


# ------------------------------------------------------------------------ latents
@dataclass
class LatentCache:
    """Everything the loop needs per variant, on the training device. Rows are ``image * V + variant``."""

    mean: torch.Tensor  # [I*V, C, h, w], scaled like the model's latents
    std: torch.Tensor | None  # posterior std (scaled), None → use the mean only
    mask: torch.Tensor | None  # [I*V, 1, h, w] loss weights
    time_ids: torch.Tensor | None  # [I*V, 6] SDXL micro-conditioning
    num_images: int
    num_variants: int


@torch.no_grad()
def encode_latents(vae: torch.nn.Module, variants: Variants, *, device: torch.device, keep_std: bool = True,
                   use_mask: bool = False, sdxl: bool = False, chunk: int | None = None) -> LatentCache:
    """Encode every variant once with the (frozen) VAE; keep posterior mean and std on ``device``.

    ``chunk`` images go through the VAE at a time; by default as many as make 512×512 pixels (one SD image,
    eight at 128 px). The encoder's full-resolution activations are the largest tensors of a whole run: eight
    512 px images at once would set the run's peak memory for nothing, since this happens only once.
    """
    num_i, num_v = variants.num_images, variants.num_variants
    flat = variants.pixels.flatten(0, 1)
    if chunk is None:
        chunk = max(1, min(8, (512 * 512) // (flat.shape[-2] * flat.shape[-1])))
    vae_dtype = next(vae.parameters()).dtype
    vae_any: Any = vae  # a diffusers AutoencoderKL: config and encode() are untyped
    scale = float(vae_any.config.scaling_factor)
    shift = getattr(vae_any.config, "shift_factor", None)
    means, stds = [], []
    for start in range(0, flat.shape[0], chunk):
        x = flat[start:start + chunk].to(device=device, dtype=vae_dtype)
        dist = vae_any.encode(x).latent_dist
        mean = dist.mean.float()
        if shift is not None:
            mean = mean - float(shift)
        means.append(mean * scale)
        stds.append(dist.std.float() * scale)
    mean = torch.cat(means)
    std = torch.cat(stds) if keep_std else None
    mask = None
    if use_mask:
        if variants.alpha is None:
            raise DataError("--mask needs images with transparency (an alpha channel); none of them has one")
        alpha = variants.alpha.flatten(0, 1).to(device)
        mask = F.interpolate(alpha, size=mean.shape[-2:], mode="area")
    time_ids = None
    if sdxl:
        res = variants.pixels.shape[-1]
        orig = variants.original_sizes[:, None, :].expand(num_i, num_v, 2)
        target = torch.full((num_i, num_v, 2), res, dtype=torch.long)
        time_ids = torch.cat([orig, variants.crop_top_left, target], -1).flatten(0, 1)
        time_ids = time_ids.to(device=device, dtype=torch.float32)
    return LatentCache(mean=mean, std=std, mask=mask, time_ids=time_ids, num_images=num_i, num_variants=num_v)


# ------------------------------------------------------------------------ prompts
@dataclass
class PromptSet:
    """Distinct prompt strings (concept tokens unexpanded) and, per image, the prompts it may use."""

    prompts: list[str]
    choices: torch.Tensor  # [I, K] long indices into ``prompts``


def _fill(template: str, *words: str) -> str:
    for w in words:
        template = template.replace("{}", w, 1)
    return template


def caption_prompt(caption: str, token: str) -> str:
    """Put ``token`` into a caption: at ``{}`` or ``S*`` if present, kept if already there, else in front."""
    if "{}" in caption:
        return caption.replace("{}", token)
    if "S*" in caption:
        return caption.replace("S*", token)
    if token in caption:
        return caption
    return f"{token}, {caption}"


def build_prompts(images: Sequence[TrainImage], token: str, *, style: bool = False, captions: bool = False,
                  image_tokens: Sequence[str] | None = None, templates: Iterable[str] | None = None) -> PromptSet:
    """Prompts per image: templates ("a photo of a <tok>"), the image's caption, and with per-image
    tokens the paper's "a photo of a <tok> with <tok@img3>" form."""
    n = len(images)
    if captions:
        prompts = []
        for i, im in enumerate(images):
            p = caption_prompt(im.caption or "", token)
            prompts.append(f"{p} with {image_tokens[i]}" if image_tokens else p)
        return PromptSet(prompts, torch.arange(n).unsqueeze(1))
    base = list(templates) if templates is not None else (STYLE_TEMPLATES if style else OBJECT_TEMPLATES)
    if image_tokens:
        prompts = [_fill(t + " with {}", token, image_tokens[i]) for i in range(n) for t in base]
        choices = torch.arange(n * len(base)).view(n, len(base))
        return PromptSet(prompts, choices)
    prompts = [_fill(t, token) for t in base]
    return PromptSet(prompts, torch.arange(len(base)).unsqueeze(0).expand(n, -1).contiguous())


def native_resolution(unet: torch.nn.Module, vae: torch.nn.Module) -> int:
    """The pixel size a model was built for: UNet sample size × the VAE's down-sampling factor."""
    vae_config: Any = vae.config  # diffusers configs are untyped
    unet_config: Any = unet.config
    factor = 2 ** (len(vae_config.block_out_channels) - 1)
    size = unet_config.sample_size
    size = size[0] if isinstance(size, (list, tuple)) else size
    return int(size) * factor
