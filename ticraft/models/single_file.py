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
* :func:`find_in_hf_cache` / :func:`cached_pipelines` / :func:`hf_hub_cache_dir` — the local hub cache
  (huggingface_hub's own cache readers);
* :func:`clip_tokenizer_files` — CLIP's ``vocab.json`` + ``merges.txt`` from open-clip's BPE file.

This module imports only the standard library at the top, so ``ticraft models`` stays quick;
torch, safetensors and diffusers are imported inside the functions that load weights.

The pieces: :mod:`~ticraft.models.checkpoints` (detection, safe reading), :mod:`~ticraft.models.clip_bpe`
(tokenizer and configs), :mod:`~ticraft.models.hub_cache` (the local hub cache, offline switch). This module
loads a checkpoint with them and re-exports their public names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticraft.models.checkpoints import (  # noqa: F401 (re-exported)
    CHECKPOINT_SUFFIXES,
    CROSS_ATTN_WIDTH,
    FAMILY_ALIASES,
    SD1_TEXT_PREFIX,
    SD2_TEXT_PREFIX,
    SD2_V_PROBE_KEY,
    SD2_V_PROBE_THRESHOLD,
    SDXL_REFINER_PREFIX,
    SDXL_TEXT_G_PREFIX,
    SDXL_TEXT_L_PREFIX,
    SHIPPED_CONFIGS,
    UNET_PREFIX,
    VAE_PREFIX,
    CheckpointInfo,
    _cross_attention_width,
    _error,
    checkpoint_shapes,
    detect_checkpoint,
    load_state_dict_safely,
    read_safetensors_header,
)
from ticraft.models.clip_bpe import (  # noqa: F401 (re-exported)
    _bytes_to_unicode,
    cached_config_dir,
    clip_bpe_path,
    clip_tokenizer_files,
    clip_vocab_and_merges,
    load_clip_tokenizer,
    ticraft_cache_dir,
)
from ticraft.models.hub_cache import (  # noqa: F401 (re-exported)
    cached_pipelines,
    cached_snapshot,
    find_in_hf_cache,
    hf_hub_cache_dir,
    missing_weights,
    offline_hub,
    split_revision,
)
from ticraft.models.paths import CONFIG_ROOT  # noqa: F401 (re-exported)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from ticraft.models.backbone import Backbone


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
        pipe: Any = diffusers.StableDiffusionXLPipeline(
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


