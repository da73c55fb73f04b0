"""Transformer-denoiser families (SD3/SD3.5 and Flux): loading, pipelines, tokenisation, conditioning.

The :class:`~ticraft.models.backbone.Backbone` of such a model keeps the transformer in its ``unet``
slot (the denoiser, whatever its kind), its text encoders in pipeline order with keys ComfyUI uses —
SD3: ``clip_l``, ``clip_g``, ``t5``; Flux: ``clip_l``, ``t5`` — and ``extra["max_sequence_length"]``,
the T5 length its pipeline uses by default (SD3 256, Flux 512), which training uses too.

>>> bb = load_backbone("~/models/sd3.5-medium")          # doctest: +SKIP
>>> [e.key for e in bb.encoders], bb.family              # doctest: +SKIP
(['clip_l', 'clip_g', 't5'], 'sd3')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterable, Sequence

import torch

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

#: Family → the pipeline class of each generation kind.
PIPELINES = {
    "sd3": {"text2img": "StableDiffusion3Pipeline", "img2img": "StableDiffusion3Img2ImgPipeline",
            "inpaint": "StableDiffusion3InpaintPipeline"},
    "flux": {"text2img": "FluxPipeline", "img2img": "FluxImg2ImgPipeline", "inpaint": "FluxInpaintPipeline"},
}
FLOW_FAMILIES = tuple(PIPELINES)
#: Flux's latent grid when the transformer config names none (FluxPipeline's ``default_sample_size``).
FLUX_DEFAULT_SAMPLE_SIZE = 128


def family_of_index(index: dict[str, Any]) -> str | None:
    """``"sd3"`` / ``"flux"`` from a model_index.json class name, else ``None``."""
    cls = str(index.get("_class_name", ""))
    if cls.startswith("StableDiffusion3"):
        return "sd3"
    if cls.startswith("Flux"):
        return "flux"
    return None


def is_flow(backbone: "Backbone") -> bool:
    """Whether ``backbone`` is an SD3 or Flux model (rectified-flow transformer)."""
    return backbone.family in FLOW_FAMILIES or backbone.extra.get("flow_family") in FLOW_FAMILIES


def flow_family(backbone: "Backbone") -> str:
    """The model's flow family even when the user overrode ``family`` (e.g. ``custom``)."""
    return str(backbone.extra.get("flow_family", backbone.family))


def _present(index: dict[str, Any], name: str) -> bool:
    entry = index.get(name)
    return isinstance(entry, (list, tuple)) and entry[0] is not None


def load_flow_folder(folder: Path, index: dict[str, Any], *, family: str | None = None,
                     name: str | None = None) -> "Backbone":
    """Load an SD3 or Flux diffusers folder; every missing file is named in one sentence."""
    import diffusers

    from ticraft.models.backbone import BackboneError, _prepare_encoder
    from ticraft.models.t5 import load_clip, load_t5, require_weights

    fam = family_of_index(index)
    assert fam is not None
    missing = [c for c in ("transformer", "vae", "scheduler") if not (folder / c).is_dir()]
    if missing:
        raise BackboneError(f"model folder {folder} lacks {', '.join(missing)}")
    try:
        encoders = []
        if fam == "sd3":
            for tok, enc, key in (("tokenizer", "text_encoder", "clip_l"), ("tokenizer_2", "text_encoder_2", "clip_g")):
                encoders.append(_prepare_encoder(key, *load_clip(folder / tok, folder / enc, projection=True)))
            if _present(index, "text_encoder_3"):
                encoders.append(_prepare_encoder("t5", *load_t5(folder / "tokenizer_3", folder / "text_encoder_3")))
            transformer_cls: Any = diffusers.SD3Transformer2DModel
        else:
            encoders.append(_prepare_encoder("clip_l", *load_clip(folder / "tokenizer", folder / "text_encoder",
                                                                  projection=False)))
            encoders.append(_prepare_encoder("t5", *load_t5(folder / "tokenizer_2", folder / "text_encoder_2")))
            transformer_cls = diffusers.FluxTransformer2DModel
        transformer = transformer_cls.from_pretrained(require_weights(folder / "transformer", "transformer"),
                                                      local_files_only=True)
        vae = diffusers.AutoencoderKL.from_pretrained(require_weights(folder / "vae", "VAE"), local_files_only=True)
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler",
                                                                               local_files_only=True)
    except BackboneError:
        raise
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise BackboneError(f"could not load the model in {folder}: {exc}") from exc
    return assemble(fam, encoders, transformer, vae, scheduler, name=name or folder.name, source=str(folder),
                    family=family, pipeline_class=str(index.get("_class_name")))


def assemble(fam: str, encoders: list[Any], transformer: Any, vae: Any, scheduler: Any, *, name: str, source: str,
             family: str | None = None, pipeline_class: str | None = None) -> "Backbone":
    """A frozen Backbone from loaded SD3/Flux parts (also used for already-built pipelines)."""
    from ticraft.models.backbone import Backbone

    for m in [e.model for e in encoders] + [transformer, vae]:
        m.requires_grad_(False)
        m.eval()
    for e in encoders:
        if e.key == "t5":
            e.kind = "t5"
    if getattr(transformer.config, "sample_size", None) is None:
        # Flux's transformer config has no size; its pipeline assumes 128 latents (1024 px). ticraft's
        # native-size helpers read `config.sample_size`, so record the pipeline's assumption there.
        transformer.register_to_config(sample_size=FLUX_DEFAULT_SAMPLE_SIZE)
    from ticraft.models import flux, sd3

    length = sd3.MAX_SEQUENCE_LENGTH if fam == "sd3" else flux.MAX_SEQUENCE_LENGTH
    return Backbone(name=name, family=family or fam, source=source, encoders=encoders, unet=transformer, vae=vae,
                    scheduler=scheduler, pipeline_class=pipeline_class or PIPELINES[fam]["text2img"],
                    extra={"flow_family": fam, "max_sequence_length": length})


def from_pipeline(pipe: Any, *, name: str = "pipeline", family: str | None = None) -> "Backbone":
    """Wrap an already-built ``StableDiffusion3Pipeline`` / ``FluxPipeline`` (e.g. a test's tiny one)."""
    from ticraft.models.backbone import _prepare_encoder

    fam = family_of_index({"_class_name": type(pipe).__name__})
    if fam == "sd3":
        encoders = [_prepare_encoder("clip_l", pipe.tokenizer, pipe.text_encoder),
                    _prepare_encoder("clip_g", pipe.tokenizer_2, pipe.text_encoder_2)]
        if pipe.text_encoder_3 is not None:
            encoders.append(_prepare_encoder("t5", pipe.tokenizer_3, pipe.text_encoder_3))
    elif fam == "flux":
        encoders = [_prepare_encoder("clip_l", pipe.tokenizer, pipe.text_encoder),
                    _prepare_encoder("t5", pipe.tokenizer_2, pipe.text_encoder_2)]
    else:
        raise TypeError(f"{type(pipe).__name__} is not an SD3 or Flux pipeline")
    return assemble(fam, encoders, pipe.transformer, pipe.vae, pipe.scheduler, name=name, source=name, family=family,
                    pipeline_class=type(pipe).__name__)


def build_pipeline(bb: "Backbone", kind: str = "text2img") -> Any:
    """The diffusers pipeline of ``kind`` over the backbone's own (spliced) components: no weight copy."""
    import diffusers

    fam = flow_family(bb)
    cls = getattr(diffusers, PIPELINES[fam][kind])
    enc = {e.key: e for e in bb.encoders}
    kwargs: dict[str, Any] = {"transformer": bb.unet, "vae": bb.vae, "scheduler": bb.scheduler,
                              "text_encoder": enc["clip_l"].model, "tokenizer": enc["clip_l"].tokenizer}
    if fam == "sd3":
        t5 = enc.get("t5")
        kwargs.update(text_encoder_2=enc["clip_g"].model, tokenizer_2=enc["clip_g"].tokenizer,
                      text_encoder_3=t5.model if t5 else None, tokenizer_3=t5.tokenizer if t5 else None)
    else:
        kwargs.update(text_encoder_2=enc["t5"].model, tokenizer_2=enc["t5"].tokenizer)
    pipe = cls(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


#: Hub repos whose diffusers folders hold what a single file lacks, per family (for the message below).
HUB_EXAMPLES = {"sd3": "stabilityai/stable-diffusion-3.5-medium", "flux": "black-forest-labs/FLUX.1-dev"}


def single_file_family(keys: Iterable[str]) -> str | None:
    """``"sd3"`` / ``"flux"`` when checkpoint keys are an SD3 (``joint_blocks``) or Flux (``double_blocks``) model."""
    for k in keys:
        if ".joint_blocks." in k or k.startswith("joint_blocks."):
            return "sd3"
        if ".double_blocks." in k or k.startswith("double_blocks."):
            return "flux"
    return None


def single_file_refusal(keys: Iterable[str], source: str) -> str | None:
    """One sentence saying exactly what an SD3/Flux single-file checkpoint lacks, or ``None`` for other files.

    A single file carries weights only. Building the pipeline offline also needs model_index.json, the
    transformer/VAE/scheduler configs, two CLIP tokenizers (vocab.json + merges.txt) and CLIP configs, and T5's
    tokenizer (spiece.model or tokenizer.json) and config — diffusers fetches those from the hub, which ticraft
    never does, so these families load from a diffusers folder or the local Hugging Face cache.
    """
    fam = single_file_family(keys)
    if fam is None:
        return None
    repo = HUB_EXAMPLES[fam]
    return (f"{source} is a single-file {fam.upper() if fam == 'sd3' else 'Flux'} checkpoint, which lacks what ticraft "
            "needs to build the model offline (model_index.json, the transformer, VAE and scheduler configs, the CLIP "
            "tokenizers' vocab.json + merges.txt and the T5 tokenizer's spiece.model or tokenizer.json with their "
            f"configs): load the diffusers folder instead, e.g. `hf download {repo}` once with internet, then "
            f"--model {repo}")


def scheduler_mismatch(bb: "Backbone", name: str) -> str | None:
    """Why sampler ``name`` cannot drive ``bb`` (flow models take ``flow_euler`` only), or ``None``."""
    if is_flow(bb) and name != "flow_euler":
        return (f"model {bb.name} is a rectified-flow model ({flow_family(bb)}): sample it with the flow_euler "
                f"scheduler, not {name}")
    if not is_flow(bb) and name == "flow_euler":
        return f"the flow_euler scheduler is for SD3/Flux models; {bb.name} is {bb.family}: pick another scheduler"
    return None


def max_length(bb: "Backbone", key: str) -> int:
    """Padded length of an encoder's input: CLIP's 77, T5 the pipeline's ``max_sequence_length``."""
    enc = bb.encoder(key)
    if enc.kind == "t5":
        return int(bb.extra.get("max_sequence_length", 256))
    return int(enc.tokenizer.model_max_length)


def tokenize(bb: "Backbone", prompts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Token ids per encoder key, padded/truncated exactly as the family's pipeline does (CPU tensors)."""
    out = {}
    for e in bb.encoders:
        kwargs = {"add_special_tokens": True} if e.kind == "t5" else {}
        out[e.key] = e.tokenizer(list(prompts), padding="max_length", max_length=max_length(bb, e.key),
                                 truncation=True, return_tensors="pt", **kwargs).input_ids
    return out


def encode(bb: "Backbone", ids: dict[str, torch.Tensor],
           frozen: Collection[str] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt_embeds, pooled)`` of the family (see :mod:`ticraft.models.sd3`, :mod:`ticraft.models.flux`).

    ``frozen``: encoder keys to run without autograd (vectors not being learned there).
    """
    from ticraft.models import flux, sd3

    dev = {k: v.to(bb.encoder(k).table.device) for k, v in ids.items()}
    return (sd3 if flow_family(bb) == "sd3" else flux).encode(bb, dev, frozen)


__all__ = ["FLOW_FAMILIES", "PIPELINES", "build_pipeline", "encode", "family_of_index", "flow_family", "from_pipeline",
           "is_flow", "load_flow_folder", "max_length", "scheduler_mismatch", "tokenize"]
