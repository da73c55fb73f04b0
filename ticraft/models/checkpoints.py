"""What a single-file checkpoint is, read from its key names and shapes, and its tensors read without running code.

* :func:`detect_checkpoint` — family / shipped config / prediction type from keys and shapes alone;
* :func:`checkpoint_shapes` — key → shape without loading weights (safetensors header, pickle opcode scan);
* :func:`load_state_dict_safely` — every tensor of a ``.safetensors`` or pickled file, never running its code.

Only the standard library is imported at the top (``ticraft models`` lists files quickly).
"""

from __future__ import annotations

import io
import os
import pickletools
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticraft.io import SafetensorsHeaderError
from ticraft.io import read_safetensors_header as _read_header

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

SHIPPED_CONFIGS = ("sd1", "sd2-v", "sd2-base", "sdxl")
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")

# Family names accepted by `load_single_file(family=...)`; the sd2 variants also pick the prediction type.
FAMILY_ALIASES: dict[str, tuple[str, str | None]] = {
    "sd1": ("sd1", None),
    "sd2": ("sd2", None),
    "sd2-v": ("sd2", "v_prediction"),
    "sd2-768": ("sd2", "v_prediction"),
    "sd2-base": ("sd2", "epsilon"),
    "sd2-eps": ("sd2", "epsilon"),
    "sdxl": ("sdxl", None),
}

# Key prefixes of the original (LDM / A1111 / ComfyUI) single-file layout.
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_TEXT_PREFIX = "cond_stage_model.transformer."  # OpenAI CLIP ViT-L/14 (transformers layout)
SD2_TEXT_PREFIX = "cond_stage_model.model."  # OpenCLIP ViT-H/14
SDXL_TEXT_L_PREFIX = "conditioner.embedders.0.transformer."  # CLIP ViT-L/14
SDXL_TEXT_G_PREFIX = "conditioner.embedders.1.model."  # OpenCLIP ViT-bigG/14
SDXL_REFINER_PREFIX = "conditioner.embedders.0.model."  # the refiner has bigG only
CROSS_ATTN_WIDTH = {"sd1": 768, "sd2": 1024, "sdxl": 2048}
# ComfyUI's heuristic for SD-2.x v-prediction: the std of one norm bias is large in the 768-v models.
SD2_V_PROBE_KEY = UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
SD2_V_PROBE_THRESHOLD = 0.09


def _error(message: str) -> Exception:
    """A :class:`ticraft.models.backbone.BackboneError` (imported late: backbone.py imports torch)."""
    from ticraft.models.backbone import BackboneError

    return BackboneError(message)


# --------------------------------------------------------------------- detection
@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint is, read from its keys (and one tensor for the SD-2 prediction type)."""

    family: str  # sd1 | sd2 | sdxl
    config: str  # shipped config folder: sd1 | sd2-v | sd2-base | sdxl
    prediction_type: str | None  # epsilon | v_prediction | None (not decidable from the keys alone)
    has_ema: bool  # EMA weights present (model_ema.*): they are the ones loaded
    why: str  # how the prediction type was decided, for messages and metadata


def detect_checkpoint(
    shapes: Mapping[str, Sequence[int] | None],
    *,
    family: str | None = None,
    prediction_type: str | None = None,
    v_probe_std: float | None = None,
    source: str = "checkpoint",
) -> CheckpointInfo:
    """Identify a single-file SD checkpoint from its key names (and shapes where known).

    Args:
        shapes: key → tensor shape (``None`` where the shape is unknown, e.g. a scanned ``.ckpt``).
        family: the user's override: sd1 | sd2 | sd2-v | sd2-base | sdxl. It may settle what keys cannot
            (SD-2 768-v vs 512-base) but may not contradict the layout.
        prediction_type: override: ``epsilon`` or ``v_prediction``.
        v_probe_std: std of :data:`SD2_V_PROBE_KEY` (the caller reads that one tensor) for SD-2.
        source: the file's name, for messages.

    Raises:
        BackboneError: not a full SD checkpoint, an unsupported variant, or a contradicting override.
    """
    keys = shapes.keys()
    from ticraft.models.mmdit import single_file_refusal

    if refusal := single_file_refusal(keys, source):  # SD3 / Flux files: what ticraft needs instead
        raise _error(refusal)
    unet_keys = [k for k in keys if k.startswith(UNET_PREFIX)]
    if not unet_keys:
        what = _guess_partial_kind(keys)
        raise _error(
            f"{source} is not a full Stable Diffusion checkpoint: it has no UNet weights ({UNET_PREFIX}*)"
            + (f"; it looks like {what}" if what else "")
            + ". Pass a complete SD-1.x/SD-2.x/SDXL checkpoint or a diffusers folder."
        )
    in_shape = shapes.get(UNET_PREFIX + "input_blocks.0.0.weight")
    if in_shape is not None and len(in_shape) == 4 and in_shape[1] != 4:
        raise _error(
            f"{source} is an inpainting/instruct variant (its UNet takes {in_shape[1]} input channels, not 4); "
            "textual inversion needs the base text-to-image model of the same family."
        )

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if has(SDXL_TEXT_G_PREFIX) or has(SDXL_TEXT_L_PREFIX):
        layout = "sdxl"
    elif has(SDXL_REFINER_PREFIX):
        raise _error(f"{source} is an SDXL refiner (OpenCLIP-bigG only, no CLIP-L); load the SDXL base model instead.")
    elif has(SD2_TEXT_PREFIX):
        layout = "sd2"
    elif has(SD1_TEXT_PREFIX):
        layout = "sd1"
    else:
        width = _cross_attention_width(shapes)
        guess = {v: k for k, v in CROSS_ATTN_WIDTH.items()}.get(width or -1)
        raise _error(
            f"{source} has a UNet but no text encoder weights (looked for {SD1_TEXT_PREFIX}*, {SD2_TEXT_PREFIX}*, "
            f"{SDXL_TEXT_L_PREFIX}*){f'; its cross-attention width {width} suggests {guess}' if guess else ''}. "
            "Use a complete checkpoint or a diffusers folder."
        )
    missing = [name for name, prefix in _required_prefixes(layout) if not has(prefix)]
    if missing:
        raise _error(f"{source} looks like {layout} but lacks {', '.join(missing)}; use a complete checkpoint.")

    width = _cross_attention_width(shapes)
    # Only a *known* width of another family is a contradiction; other widths are custom/test-sized models.
    if width in CROSS_ATTN_WIDTH.values() and width != CROSS_ATTN_WIDTH[layout]:
        raise _error(
            f"{source}: the text-encoder keys say {layout}, but the UNet's cross-attention is {width}-d "
            f"(expected {CROSS_ATTN_WIDTH[layout]}); this mix is not a model ticraft knows."
        )

    fam_override, pred_from_family = _parse_family(family)
    if fam_override and fam_override != layout:
        raise _error(f"{source} is a {layout} checkpoint (by its keys), not {family}; drop the family override.")
    pred, why = _prediction_type(layout, prediction_type or pred_from_family, "v_pred" in keys, v_probe_std)
    config = layout if layout != "sd2" else ("sd2-base" if pred == "epsilon" else "sd2-v")
    has_ema = sum(1 for k in keys if k.startswith("model_ema.")) > 100
    return CheckpointInfo(family=layout, config=config, prediction_type=pred, has_ema=has_ema, why=why)


def _required_prefixes(layout: str) -> list[tuple[str, str]]:
    vae = ("the VAE (first_stage_model.*)", VAE_PREFIX)
    if layout == "sdxl":
        return [vae, ("the CLIP-L text encoder (conditioner.embedders.0.*)", SDXL_TEXT_L_PREFIX),
                ("the OpenCLIP-G text encoder (conditioner.embedders.1.*)", SDXL_TEXT_G_PREFIX)]
    return [vae]


def _parse_family(family: str | None) -> tuple[str | None, str | None]:
    if family is None or family == "":
        return None, None
    if family not in FAMILY_ALIASES:
        raise _error(f"unknown family {family!r} for a checkpoint file; use one of {', '.join(FAMILY_ALIASES)}")
    return FAMILY_ALIASES[family]


def _prediction_type(layout: str, override: str | None, has_v_key: bool, probe: float | None) -> tuple[str | None, str]:
    if override is not None:
        if override not in ("epsilon", "v_prediction"):
            raise _error(f"unknown prediction type {override!r}; use 'epsilon' or 'v_prediction'")
        return override, "given"
    if has_v_key:  # ComfyUI/A1111 mark v-prediction models with an empty `v_pred` tensor
        return "v_prediction", "v_pred key"
    if layout != "sd2":
        return "epsilon", "family default"
    if probe is None:
        return None, "unknown (SD-2: 768-v or 512-base?)"
    if probe > SD2_V_PROBE_THRESHOLD:
        return "v_prediction", f"norm1.bias std {probe:.3f} > {SD2_V_PROBE_THRESHOLD}"
    return "epsilon", f"norm1.bias std {probe:.3f} <= {SD2_V_PROBE_THRESHOLD}"


def _cross_attention_width(shapes: Mapping[str, Sequence[int] | None]) -> int | None:
    for key, shape in shapes.items():
        if key.startswith(UNET_PREFIX) and key.endswith("attn2.to_k.weight") and shape:
            return int(shape[-1])
    return None


def _guess_partial_kind(keys: Any) -> str | None:
    keys = list(keys)
    if any(k.startswith(("lora_", "lora_unet_", "lora_te")) or ".lora_" in k for k in keys):
        return "a LoRA"
    if any(k in ("string_to_param", "emb_params", "clip_l", "clip_g") for k in keys):
        return "a textual-inversion embedding (import it with `ticraft import`)"
    if any(k.startswith(("encoder.down", "decoder.up", VAE_PREFIX)) for k in keys):
        return "a VAE only"
    if any(k.startswith("down_blocks.") for k in keys):
        return "a diffusers-layout UNet (pass its pipeline folder instead)"
    return None


# ----------------------------------------------------------- cheap key/shape reading
def read_safetensors_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file (``{key: {dtype, shape, data_offsets}, "__metadata__": …}``).

    Reads a few KB; never touches the tensor data (:func:`ticraft.io.read_safetensors_header`).
    """
    try:
        return _read_header(path)[0]
    except SafetensorsHeaderError as exc:
        raise _error(f"{path} is not a valid .safetensors file ({exc})") from exc


def checkpoint_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...] | None]:
    """Key → shape of a checkpoint without loading its weights.

    ``.safetensors``: from the header (exact). Pickled ``.ckpt``/``.pt``: key names from a scan of the
    pickle opcodes (nothing is unpickled, so nothing can run), shapes unknown (``None``).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        header = read_safetensors_header(path)
        return {k: tuple(v.get("shape", ())) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    return {k: None for k in _scan_pickle_keys(path)}


def _scan_pickle_keys(path: Path) -> list[str]:
    """Strings that look like state-dict keys in a (zip or legacy) torch pickle, by opcode scan only."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return []
                data = zf.read(name)
        else:
            with path.open("rb") as fh:
                data = fh.read(64 * 1024 * 1024)  # legacy format: the pickle of keys comes first
    except (OSError, zipfile.BadZipFile):
        return []
    keys: list[str] = []
    stream = io.BytesIO(data)
    # The legacy format is several pickles in a row (magic number, protocol, sys info, the object);
    # genops stops at each STOP opcode, leaving the stream at the next pickle.
    for _ in range(4):
        try:
            for op, arg, _pos in pickletools.genops(stream):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8") and isinstance(arg, str):
                    if "." in arg or arg in ("v_pred", "state_dict"):
                        keys.append(arg)
        except Exception:  # noqa: BLE001 - a truncated/odd pickle just yields the keys seen so far
            break
        if stream.tell() >= len(data):
            break
    return keys


# ---------------------------------------------------------------- safe loading
class _LightningCheckpointStub:
    """Stands in for pytorch_lightning's ModelCheckpoint, pickled (as plain data) into many SD-1 .ckpt files."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _safe_globals() -> list[Any]:
    """Extra classes the weights-only unpickler may rebuild: inert data holders only, never code."""
    out: list[Any] = [(_LightningCheckpointStub, "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint")]
    try:
        import numpy as np

        core = getattr(np, "_core", None) or np.core  # numpy 2 renamed the module
        scalar = core.multiarray.scalar
        # Files pickled under numpy 1 name it numpy.core.…, under numpy 2 numpy._core.…: admit both names.
        out += [np.dtype, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar")]
        out += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32")]
    except Exception:  # noqa: BLE001 - numpy layout differs across versions; these are optional
        pass
    return out


def load_state_dict_safely(path: Path) -> dict[str, "torch.Tensor"]:
    """All tensors of a checkpoint file, read without ever running code from it.

    ``.safetensors`` are plain data. Pickled files go through ``torch.load(weights_only=True)``, which
    rebuilds tensors and containers only; a file whose pickle needs anything else is refused.
    """
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise _error(f"could not read {path}: {exc}") from exc
    elif path.suffix in CHECKPOINT_SUFFIXES:
        mmap = zipfile.is_zipfile(path)  # only the zip format maps lazily
        try:
            with torch.serialization.safe_globals(_safe_globals()):
                raw = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, … for refused/corrupt pickles
            text = str(exc)
            if "weights_only" in text or "Unsupported global" in text or "UnpicklingError" in type(exc).__name__:
                culprit = re.search(r"GLOBAL ([\w.]+)", text)
                raise _error(
                    f"{path.name} is a pickle that needs code to load"
                    f"{f' ({culprit.group(1)})' if culprit else ''}; ticraft never runs code from model files. "
                    "Convert it to .safetensors with a tool you trust, or use a .safetensors/diffusers copy."
                ) from exc
            raise _error(f"could not read {path}: {text.splitlines()[0] if text else type(exc).__name__}") from exc
    else:
        raise _error(f"{path.name}: unknown checkpoint type; expected one of {', '.join(CHECKPOINT_SUFFIXES)}")
    while isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]  # Lightning/LDM checkpoints nest the weights one or more levels down
    if not isinstance(raw, dict):
        raise _error(f"{path.name} holds a {type(raw).__name__}, not a state dict of tensors")
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


