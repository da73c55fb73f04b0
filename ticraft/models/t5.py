"""T5 (and CLIP) text encoders of SD3 / Flux folders: loading with clear errors, and their splice.

T5 has no position table: its attention adds a *relative* position bias computed from token
positions only. :class:`~ticraft.models.splice.SplicedEmbedding` substitutes a placeholder's vector for
the table row at the placeholder's own position, so the encoder sees the inserted token exactly as it
would see a real word there (``tests/test_sd3_flux_backbone.py`` checks this bit for bit: a concept whose
vector is the row of ``cat`` gives the same T5 output as the word ``cat``).

``T5EncoderModel.set_input_embeddings`` rebinds both ``shared`` and ``encoder.embed_tokens`` (they are
one tied module), so :func:`ticraft.models.splice.splice` needs nothing T5-specific.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ticraft.models.backbone import BackboneError

#: Files one of which a tokenizer folder must hold, per kind (what transformers can build it from offline).
TOKENIZER_FILES = {
    "clip": (("vocab.json", "merges.txt"), ("tokenizer.json",)),
    "t5": (("tokenizer.json",), ("spiece.model",)),
}
#: Weight files of a transformers/diffusers model folder (any one of them).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin")


class MissingComponentError(BackboneError):
    """A model folder lacks a file that a tokenizer, text encoder or the denoiser needs."""


def require_tokenizer(folder: Path, kind: str) -> Path:
    """Raise a one-sentence error naming the missing file unless ``folder`` holds a ``kind`` tokenizer."""
    options = TOKENIZER_FILES[kind]
    if not folder.is_dir():
        raise MissingComponentError(f"the {kind.upper()} tokenizer folder {folder} is missing")
    if any(all((folder / f).is_file() for f in group) for group in options):
        return folder
    wanted = " or ".join("+".join(str(folder / f) for f in group) for group in options)
    raise MissingComponentError(f"the {kind.upper()} tokenizer in {folder} is incomplete: {wanted} is missing")


def require_weights(folder: Path, what: str) -> Path:
    """Raise naming ``config.json`` or the weights file when ``folder`` cannot hold a loadable model."""
    if not (folder / "config.json").is_file():
        raise MissingComponentError(f"the {what} folder lacks {folder / 'config.json'}")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise MissingComponentError(f"the {what} folder {folder} has no weights (model.safetensors is missing)")
    return folder


def load_t5(tok_dir: Path, enc_dir: Path | None) -> tuple[Any, Any]:
    """A ``T5TokenizerFast`` and (unless ``enc_dir`` is None) a frozen ``T5EncoderModel``, offline."""
    from transformers import T5EncoderModel, T5TokenizerFast  # type: ignore[attr-defined]

    tok = T5TokenizerFast.from_pretrained(require_tokenizer(tok_dir, "t5"), local_files_only=True)
    model = None
    if enc_dir is not None:
        model = T5EncoderModel.from_pretrained(require_weights(enc_dir, "T5 text encoder"), local_files_only=True)
    return tok, model


def load_clip(tok_dir: Path, enc_dir: Path, *, projection: bool) -> tuple[Any, Any]:
    """A ``CLIPTokenizer`` and a frozen CLIP text model (with projection for SD3's two CLIPs), offline."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(require_tokenizer(tok_dir, "clip"), local_files_only=True)
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return tok, cls.from_pretrained(require_weights(enc_dir, "CLIP text encoder"), local_files_only=True)


def readable_piece(piece: str) -> str:
    """A vocabulary piece as a word: SentencePiece's ``▁`` word start and CLIP's ``</w>`` end dropped.

    >>> readable_piece("▁cat"), readable_piece("cat</w>"), readable_piece("ing")
    ('cat', 'cat', 'ing')
    """
    return piece.replace("</w>", "").lstrip("▁")


__all__ = ["MissingComponentError", "load_clip", "load_t5", "readable_piece", "require_tokenizer", "require_weights"]
