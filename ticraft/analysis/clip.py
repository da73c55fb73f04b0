"""A CLIP model from a local folder, for image/text similarities (probes and the paper's metrics).

Nothing is downloaded: pass a folder holding a transformers ``CLIPModel`` (``config.json`` + weights) with its
tokenizer and image processor, e.g. a saved ``openai/clip-vit-large-patch14``. Without one, the toy world's judge
gives exact counterparts of every CLIP measure.

>>> clip = load_clip("/models/clip-vit-large-patch14")              # doctest: +SKIP
>>> clip.image_features(images).shape                                # doctest: +SKIP
torch.Size([4, 768])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from ticraft.errors import TicraftError

CLIP_HELP = (
    "pass --clip PATH: a local folder with a transformers CLIPModel and its tokenizer/image processor "
    "(e.g. a saved openai/clip-vit-large-patch14); nothing is downloaded"
)


class ClipError(TicraftError):
    """No usable CLIP model (missing path, not a CLIP folder, unreadable weights)."""


@dataclass
class Clip:
    """A loaded CLIP: L2-normalised image and text features (cosine similarity = dot product)."""

    path: str
    model: Any
    tokenizer: Any
    processor: Any
    device: torch.device

    @torch.no_grad()
    def image_features(self, images: Sequence[Image.Image], batch_size: int = 32) -> torch.Tensor:
        """``[n, d]`` unit image embeddings (float32, CPU)."""
        if not images:
            raise ClipError("no images to embed")
        out = []
        for i in range(0, len(images), batch_size):
            chunk = [im.convert("RGB") for im in images[i:i + batch_size]]
            pix = self.processor(images=chunk, return_tensors="pt")["pixel_values"].to(self.device, self._dtype())
            out.append(_features(self.model.get_image_features(pixel_values=pix)))
        return _unit(torch.cat(out))

    @torch.no_grad()
    def text_features(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """``[n, d]`` unit text embeddings (float32, CPU)."""
        if not texts:
            raise ClipError("no texts to embed")
        out = []
        for i in range(0, len(texts), batch_size):
            tok = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, return_tensors="pt")
            out.append(_features(self.model.get_text_features(
                input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device))))
        return _unit(torch.cat(out))

    def zero_shot(self, images: Sequence[Image.Image], labels: Sequence[str], template: str = "a photo of a {}"
                  ) -> list[str]:
        """The label whose prompt (``template`` filled with it) best matches each image."""
        if len(labels) < 2:
            raise ClipError("zero-shot classification needs at least two labels")
        text = self.text_features([template.replace("{}", lab) for lab in labels])
        sims = self.image_features(images) @ text.T
        return [labels[int(i)] for i in sims.argmax(dim=1)]

    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def _features(out: Any) -> torch.Tensor:
    # transformers ≥ 5 returns a model output whose pooler_output holds the projected features; 4.x a tensor.
    t = out if isinstance(out, torch.Tensor) else getattr(out, "pooler_output", None)
    if t is None:
        t = out[0]
    return t.float().cpu()


def _unit(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)


_LOADED: dict[tuple[str, str], Clip] = {}


def load_clip(path: str | os.PathLike | None, *, device: str | torch.device | None = None) -> Clip:
    """Load (once per path and device) a CLIP model from a local folder; a clear :class:`ClipError` otherwise."""
    if path is None or not str(path).strip():
        raise ClipError(f"this measure needs a CLIP model: {CLIP_HELP}")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ClipError(f"CLIP folder not found: {folder}; {CLIP_HELP}")
    if not (folder / "config.json").is_file():
        raise ClipError(f"{folder} has no config.json, so it is not a transformers CLIP folder; {CLIP_HELP}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    key = (str(folder.resolve()), str(dev))
    if key in _LOADED:
        return _LOADED[key]
    import warnings

    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = CLIPModel.from_pretrained(folder, local_files_only=True).to(dev).eval()  # type: ignore[arg-type]
            tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
            processor = CLIPImageProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClipError(f"could not load a CLIP model from {folder}: {exc}") from exc
    model.requires_grad_(False)
    clip = Clip(path=str(folder), model=model, tokenizer=tokenizer, processor=processor, device=dev)
    _LOADED[key] = clip
    return clip


__all__ = ["CLIP_HELP", "Clip", "ClipError", "load_clip"]
