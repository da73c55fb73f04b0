"""Offline loading of single-file Stable Diffusion checkpoints, and hub ids from the local HF cache.

Most people hold a model as one ``.safetensors``/``.ckpt`` file in the original (LDM / A1111) key
layout. Such a file carries weights only: no configs and no tokenizer. diffusers'
``from_single_file`` would fetch both from the hub; ticraft never touches the network, so it ships
the small diffusers configs of the families it knows (``ticraft/models/configs/``: SD-1.5, SD-2.x 768-v,
SD-2.x 512-base, SDXL base) and builds CLIP's BPE tokenizer from the vocabulary file that the
``open-clip-torch`` package carries. Both are assembled once into a cache folder
(:func:`cached_config_dir`), which then serves as the ``config=`` folder of every
``from_single_file`` call.

Public API:

* :func:`load_single_file` — checkpoint file → :class:`~ticraft.models.backbone.Backbone`;
* :func:`detect_checkpoint` — family / config / prediction type from key names and shapes alone;
* :func:`checkpoint_shapes` — key → shape without loading weights (safetensors header, pickle scan);
* :func:`find_in_hf_cache` / :func:`cached_pipelines` / :func:`hf_hub_cache_dir` — the local hub cache;
* :func:`clip_tokenizer_files` — CLIP's ``vocab.json`` + ``merges.txt`` from open-clip's BPE file.

This module imports only the standard library at the top, so ``ticraft models`` stays quick;
torch, safetensors and diffusers are imported inside the functions that load weights.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import pickletools
import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticraft.models.paths import CONFIG_ROOT

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from ticraft.models.backbone import Backbone

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

    Reads a few KB; never touches the tensor data.
    """
    path = Path(path)
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise _error(f"{path} is too short to be a .safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > 100_000_000 or length > path.stat().st_size:
            raise _error(f"{path} is not a valid .safetensors file (header length {length})")
        try:
            return json.loads(fh.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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


# --------------------------------------------------------------------- tokenizer
def clip_bpe_path() -> Path:
    """open-clip-torch's ``bpe_simple_vocab_16e6.txt.gz`` (located without importing open_clip)."""
    import importlib.metadata
    import importlib.util

    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution("open_clip_torch")
        candidates.append(Path(str(dist.locate_file("open_clip/bpe_simple_vocab_16e6.txt.gz"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("open_clip")  # finds the folder; does not run open_clip/__init__.py
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "bpe_simple_vocab_16e6.txt.gz" for p in spec.submodule_search_locations]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise _error(
        "building the CLIP tokenizer for a single-file checkpoint needs CLIP's BPE vocabulary, which ticraft takes "
        "from the open-clip-torch package: `pip install open-clip-torch` (or `pip install ticraft[clip]`). "
        "Alternatively pass a diffusers folder, which carries its own tokenizer."
    )


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level BPE: printable bytes map to themselves, the rest to code points from 256 on.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def clip_vocab_and_merges(bpe_gz: Path) -> tuple[dict[str, int], list[str]]:
    """CLIP's 49408-token vocabulary and its BPE merges, as OpenAI's tokenizer builds them."""
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # line 0 is a version header; 48894 merges
    base = list(_bytes_to_unicode().values())
    vocab = base + [b + "</w>" for b in base] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def ticraft_cache_dir() -> Path:
    """ticraft's cache folder: ``$XDG_CACHE_HOME/ticraft`` or the platform's user cache dir."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "ticraft"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ticraft"))


def clip_tokenizer_files(cache: Path | None = None) -> Path:
    """A folder holding CLIP's ``vocab.json`` and ``merges.txt`` (built once from open-clip's BPE file)."""
    folder = (cache or ticraft_cache_dir()) / "clip-bpe"
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder
    vocab, merges = clip_vocab_and_merges(clip_bpe_path())
    with _staging(folder) as tmp:
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """Write a folder under a temporary name and rename it into place (another process may win: fine)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not dest.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def cached_config_dir(name: str, cache: Path | None = None) -> Path:
    """A complete diffusers config folder for shipped config ``name`` (configs + tokenizer vocabulary).

    Lives in the cache under a hash of the shipped files, so an upgraded ticraft rebuilds it.
    """
    src = CONFIG_ROOT / name
    if name not in SHIPPED_CONFIGS or not (src / "model_index.json").is_file():
        raise _error(f"ticraft ships no config {name!r} (known: {', '.join(SHIPPED_CONFIGS)}); is the install complete?")
    files = sorted(p for p in src.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(src)).encode())
        digest.update(p.read_bytes())
    cache = cache or ticraft_cache_dir()
    dest = cache / "configs" / f"{name}-{digest.hexdigest()[:12]}"
    if (dest / "model_index.json").is_file():
        return dest
    bpe = clip_tokenizer_files(cache)
    with _staging(dest) as tmp:
        for p in files:
            out = tmp / p.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, out)
        for tok_dir in (d for d in tmp.iterdir() if d.name.startswith("tokenizer")):
            shutil.copyfile(bpe / "vocab.json", tok_dir / "vocab.json")
            shutil.copyfile(bpe / "merges.txt", tok_dir / "merges.txt")
    return dest


def load_clip_tokenizer(folder: Path) -> Any:
    """A ``CLIPTokenizer`` from ``folder``; where it has no vocabulary, CLIP's own (open-clip BPE)."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    # transformers ≥ 5 saves tokenizer.json only; older saves (and our cache) have vocab.json + merges.txt.
    if (folder / "vocab.json").is_file() or (folder / "tokenizer.json").is_file():
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    bpe = clip_tokenizer_files()
    special: dict[str, Any] = {}
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text())
        special = {k: data[k] for k in ("pad_token", "bos_token", "eos_token", "unk_token") if isinstance(data.get(k), str)}
    return CLIPTokenizer(str(bpe / "vocab.json"), str(bpe / "merges.txt"), model_max_length=77, **special)


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


# --------------------------------------------------------------------- offline
@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """Force Hugging Face libraries offline for the duration (env vars and already-imported flags).

    huggingface_hub reads ``HF_HUB_OFFLINE`` once at import, and diffusers copies the flag into some
    modules, so setting the environment alone is not enough in a running process.
    """
    import huggingface_hub.constants as hf_constants

    env_keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in env_keys}
    patched: list[tuple[Any, Any]] = [(hf_constants, hf_constants.HF_HUB_OFFLINE)]
    for k in env_keys:
        os.environ[k] = "1"
    hf_constants.HF_HUB_OFFLINE = True
    with contextlib.suppress(ImportError):
        import diffusers.utils.hub_utils as d_hub

        patched.append((d_hub, d_hub.HF_HUB_OFFLINE))
        d_hub.HF_HUB_OFFLINE = True
    if not hf_constants.is_offline_mode():  # the check every hub request goes through
        raise RuntimeError("could not switch huggingface_hub to offline mode")
    try:
        yield
    finally:
        for module, value in patched:
            module.HF_HUB_OFFLINE = value
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ------------------------------------------------------------------ the loader
def load_single_file(
    path: str | os.PathLike,
    family: str | None = None,
    *,
    prediction_type: str | None = None,
    config_dir: str | os.PathLike | None = None,
    dtype: "torch.dtype | None" = None,
) -> "Backbone":
    """Load a single-file SD-1.x / SD-2.x / SDXL checkpoint as a frozen :class:`Backbone`, offline.

    Args:
        path: a ``.safetensors`` (preferred) or pickled ``.ckpt``/``.pt`` file in the original layout.
        family: override/complete the detection: sd1 | sd2 | sd2-v (768, v-prediction) |
            sd2-base (512, epsilon) | sdxl.
        prediction_type: ``epsilon`` or ``v_prediction`` (e.g. for v-pred fine-tunes without a marker).
        config_dir: a diffusers config folder to use instead of the shipped one (architectures that
            ticraft does not ship); its ``tokenizer*/`` folders may omit the vocabulary.
        dtype: weight dtype (default: float32).

    Raises:
        BackboneError: missing/unsafe/unsupported file, with what is wrong and what to do.
    """
    from ticraft.models.backbone import BackboneError

    path = Path(path).expanduser()
    if not path.is_file():
        raise BackboneError(f"checkpoint file not found: {path}")
    with offline_hub():
        state = load_state_dict_safely(path)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        probe = state.get(SD2_V_PROBE_KEY)
        probe_std = float(probe.float().std(unbiased=False)) if probe is not None and probe.numel() > 1 else None
        info = detect_checkpoint(shapes, family=family, prediction_type=prediction_type, v_probe_std=probe_std,
                                 source=path.name)
        cfg = Path(config_dir) if config_dir is not None else cached_config_dir(info.config)
        if not (cfg / "model_index.json").is_file():
            raise _error(f"config folder {cfg} has no model_index.json (it must be a diffusers pipeline layout)")
        index = json.loads((cfg / "model_index.json").read_text())
        try:
            bb = _build_backbone(state, info, cfg, index, name=path.name, dtype=dtype)
        except BackboneError:
            raise
        except Exception as exc:  # diffusers/transformers raise many types (ValueError, SingleFileComponentError, …)
            raise BackboneError(
                f"could not load {path.name} as {info.family} (config {cfg.name}): {exc}"
            ) from exc
        finally:
            del state
    bb.source = str(path)
    bb.extra.update({
        "single_file": True, "config": info.config if config_dir is None else str(cfg),
        "prediction_type": bb.scheduler.config.get("prediction_type", "epsilon"), "prediction_type_why": info.why,
    })
    if info.prediction_type is None:
        bb.extra["prediction_type_why"] = (
            f"{info.why}: assumed {bb.extra['prediction_type']}; pass family 'sd2-v' or 'sd2-base' to choose"
        )
    return bb


def _build_backbone(state: dict[str, Any], info: CheckpointInfo, cfg: Path, index: dict[str, Any], *,
                    name: str, dtype: Any) -> "Backbone":
    import diffusers
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from ticraft.models.backbone import components_from_pipeline

    common = dict(config=str(cfg), local_files_only=True, torch_dtype=dtype)
    unet = _component("unet", name, lambda: diffusers.UNet2DConditionModel.from_single_file(
        state, subfolder="unet", extract_ema=info.has_ema, **common))
    vae = _component("vae", name, lambda: diffusers.AutoencoderKL.from_single_file(state, subfolder="vae", **common))
    te = _component("text_encoder", name, lambda: create_diffusers_clip_model_from_ldm(
        CLIPTextModel, state, subfolder="text_encoder", **common))
    tok = load_clip_tokenizer(cfg / "tokenizer")
    sched_name = (index.get("scheduler") or [None, "DDIMScheduler"])[1]
    sched_cls = getattr(diffusers, sched_name, diffusers.DDIMScheduler)
    sched_cfg = sched_cls.load_config(str(cfg), subfolder="scheduler", local_files_only=True)
    if info.prediction_type is not None:
        sched_cfg["prediction_type"] = info.prediction_type  # a v_pred marker or override beats the config
    scheduler = sched_cls.from_config(sched_cfg)
    if info.family == "sdxl":
        te2 = _component("text_encoder_2", name, lambda: create_diffusers_clip_model_from_ldm(
            CLIPTextModelWithProjection, state, subfolder="text_encoder_2", **common))
        tok2 = load_clip_tokenizer(cfg / "tokenizer_2")
        pipe = diffusers.StableDiffusionXLPipeline(
            vae=vae, text_encoder=te, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok2, unet=unet,
            scheduler=scheduler, force_zeros_for_empty_prompt=bool(index.get("force_zeros_for_empty_prompt", True)),
        )
    else:
        pipe = diffusers.StableDiffusionPipeline(
            vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    bb = components_from_pipeline(pipe, family=info.family, name=name)
    if info.family == "sdxl":
        bb.extra["force_zeros_for_empty_prompt"] = bool(index.get("force_zeros_for_empty_prompt", True))
    return bb


def _component(label: str, source: str, load: Any) -> Any:
    """Run one component's loader; name the component in any failure, and refuse half-filled models."""
    try:
        module = load()
    except Exception as exc:  # noqa: BLE001 - diffusers/transformers raise many types for a bad state dict
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _error(
            f"{source}: could not load the {label} from it ({first}); the file may be truncated, or not the "
            "architecture its keys suggest (try a family override or config_dir)."
        ) from exc
    _check_loaded(module, label, source)
    return module


def _check_loaded(module: Any, label: str, source: str) -> None:
    """diffusers builds models on the meta device and fills them from the checkpoint: refuse any gap."""
    empty = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if empty:
        raise _error(
            f"{source}: the {label} weights are incomplete ({len(empty)} tensors missing, e.g. {empty[0]}); "
            "the file is truncated or is not the architecture its keys suggest (try another family override)."
        )


# ------------------------------------------------------------- the local hub cache
def hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub resolves it (read from the environment *now*)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def split_revision(repo_id: str) -> tuple[str, str]:
    """`org/name@rev` → (`org/name`, `rev`); the revision defaults to `main`."""
    repo, _, rev = repo_id.partition("@")
    return repo, rev or "main"


def cached_snapshot(repo_id: str, cache_dir: Path | None = None) -> Path | None:
    """The snapshot folder of ``repo_id`` (``org/name[@revision]``) in the hub cache, or None.

    Follows ``refs/<revision>`` like huggingface_hub; without refs (a hand-copied cache) it takes the
    most recent snapshot that has a ``model_index.json``.
    """
    repo, rev = split_revision(repo_id)
    root = (cache_dir or hf_hub_cache_dir()) / ("models--" + repo.replace("/", "--"))
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = root / "refs" / rev
    if ref.is_file():
        snap = snapshots / ref.read_text().strip()
        return snap if snap.is_dir() else None
    if (snapshots / rev).is_dir():  # a commit hash given directly
        return snapshots / rev
    if rev != "main":
        return None
    found = [d for d in snapshots.iterdir() if (d / "model_index.json").is_file()]
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def missing_weights(folder: Path, index: dict[str, Any]) -> list[str]:
    """Model components of a pipeline folder whose weight files are absent (e.g. a configs-only download)."""
    weight_globs = ("*.safetensors", "*.bin")
    out = []
    for comp in ("unet", "transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        entry = index.get(comp)
        if not (isinstance(entry, list) and entry and entry[0]):
            continue
        d = folder / comp
        # Cache files are symlinks into blobs/: is_file() is False for a dangling (half-downloaded) one.
        if not any(p.is_file() for g in weight_globs for p in d.glob(g)):
            out.append(comp)
    return out


def find_in_hf_cache(repo_id: str) -> Path:
    """The local snapshot folder of a diffusers pipeline ``org/name`` already in the HF cache.

    Nothing is downloaded. Raises :class:`BackboneError` naming the repo, the cache searched, and
    what to do when the repo is absent, is not a diffusers pipeline, or lacks weight files.
    """
    cache = hf_hub_cache_dir()
    repo, rev = split_revision(repo_id)
    snap = cached_snapshot(repo_id, cache)
    hint = (
        "ticraft never downloads: fetch it on a machine with internet access "
        f"(`hf download {repo}`), copy the folder here and pass it with --model /path/to/folder, "
        "or point HF_HUB_CACHE at a cache that holds it."
    )
    if snap is None:
        raise _error(f"model {repo}{'@' + rev if rev != 'main' else ''} is not in the local Hugging Face cache ({cache}). {hint}")
    index_path = snap / "model_index.json"
    if not index_path.is_file():
        raise _error(f"{repo} is in the Hugging Face cache ({snap}) but is not a diffusers pipeline (no model_index.json). {hint}")
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise _error(f"{index_path} is unreadable ({exc}); re-download {repo}") from exc
    missing = missing_weights(snap, index)
    if missing:
        raise _error(
            f"{repo} is in the Hugging Face cache ({snap}) without weights for {', '.join(missing)} "
            f"(configs only, or an interrupted download). {hint}"
        )
    return snap


def cached_pipelines(cache_dir: Path | None = None) -> list[tuple[str, Path]]:
    """``(repo_id, snapshot folder)`` of every diffusers pipeline in the hub cache (weights not checked)."""
    cache = cache_dir or hf_hub_cache_dir()
    if not cache.is_dir():
        return []
    out = []
    for repo_dir in sorted(cache.glob("models--*")):
        repo_id = repo_dir.name[len("models--"):].replace("--", "/", 1)
        snap = cached_snapshot(repo_id, cache)
        if snap is not None and (snap / "model_index.json").is_file():
            out.append((repo_id, snap))
    return out
