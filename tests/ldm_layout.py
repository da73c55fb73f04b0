"""Write diffusers components in the original single-file (LDM / A1111) key layout, for tests.

diffusers reads that layout (``from_single_file``) but ships no writer, so the tests build their
single-file checkpoints with this small inverse: tiny random pipelines → one state dict with the
``model.diffusion_model.* / first_stage_model.* / cond_stage_model.* / conditioner.embedders.*`` keys
that real SD-1.x, SD-2.x and SDXL files carry. Works on meta tensors too (key/shape tests of the
real architectures without allocating them).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

RESNET_UNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _rename(key: str, prefixes: dict[str, str]) -> tuple[str, str] | None:
    """(new prefix, rest) for the longest matching diffusers prefix."""
    for old in sorted(prefixes, key=len, reverse=True):
        if key.startswith(old):
            return prefixes[old], key[len(old):]
    return None


def unet_to_ldm(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A diffusers ``UNet2DConditionModel`` state dict → ``model.diffusion_model.*`` keys."""
    per_block = config["layers_per_block"]
    downs, ups = config["down_block_types"], config["up_block_types"]
    pm: dict[str, str] = {
        "time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
        "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2.",
        "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
        "mid_block.resnets.0.": "middle_block.0.", "mid_block.attentions.0.": "middle_block.1.",
        "mid_block.resnets.1.": "middle_block.2.",
    }
    n = 1
    for i in range(len(downs)):
        for j in range(per_block):
            pm[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{n}.0."
            pm[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{n}.1."
            n += 1
        if i < len(downs) - 1:
            pm[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{n}.0.op."
            n += 1
    n = 0
    for i, kind in enumerate(ups):
        for j in range(per_block + 1):
            pm[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{n}.0."
            pm[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{n}.1."
            if j == per_block and i < len(ups) - 1:
                slot = 2 if "CrossAttn" in kind else 1
                pm[f"up_blocks.{i}.upsamplers.0.conv."] = f"output_blocks.{n}.{slot}.conv."
            n += 1
    out = {}
    for key, value in sd.items():
        hit = _rename(key, pm)
        if hit is None:
            raise KeyError(f"no LDM name for UNet key {key}")
        prefix, rest = hit
        if ".resnets." in key:
            for new, old in RESNET_UNET.items():
                rest = rest.replace(new, old, 1) if rest.startswith(new) else rest
        out["model.diffusion_model." + prefix + rest] = value
    return out


def vae_to_ldm(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A diffusers ``AutoencoderKL`` state dict → ``first_stage_model.*`` keys."""
    n_blocks, per_block = len(config["block_out_channels"]), config["layers_per_block"]
    pm = {"encoder.conv_norm_out.": "encoder.norm_out.", "decoder.conv_norm_out.": "decoder.norm_out."}
    for part in ("encoder", "decoder"):
        pm[f"{part}.mid_block.resnets.0."] = f"{part}.mid.block_1."
        pm[f"{part}.mid_block.resnets.1."] = f"{part}.mid.block_2."
        pm[f"{part}.mid_block.attentions.0."] = f"{part}.mid.attn_1."
    for i in range(n_blocks):
        for j in range(per_block):
            pm[f"encoder.down_blocks.{i}.resnets.{j}."] = f"encoder.down.{i}.block.{j}."
        for j in range(per_block + 1):
            pm[f"decoder.up_blocks.{i}.resnets.{j}."] = f"decoder.up.{n_blocks - 1 - i}.block.{j}."
        if i < n_blocks - 1:
            pm[f"encoder.down_blocks.{i}.downsamplers.0.conv."] = f"encoder.down.{i}.downsample.conv."
            pm[f"decoder.up_blocks.{i}.upsamplers.0.conv."] = f"decoder.up.{n_blocks - 1 - i}.upsample.conv."
    out = {}
    for key, value in sd.items():
        hit = _rename(key, pm)
        prefix, rest = hit if hit else ("", key)
        if ".attentions." in key:
            for new, old in VAE_ATTN.items():
                if rest.startswith(new + "."):
                    rest = old + rest[len(new):]
            if value.ndim == 2:  # LDM stores the attention projections as 1×1 convolutions
                value = value.reshape(*value.shape, 1, 1)
        elif ".resnets." in key:
            rest = rest.replace("conv_shortcut", "nin_shortcut")
        out["first_stage_model." + prefix + rest] = value
    return out


def _text_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # transformers ≥ 5.6 flattened CLIPTextModel (no `text_model.`); the original layout has it.
    return {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v
            for k, v in sd.items() if not k.endswith("position_ids")}


def clip_to_ldm(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """OpenAI CLIP text model (SD-1 / SDXL clip_l): the transformers layout under ``prefix``."""
    return {prefix + k: v for k, v in _text_keys(sd).items() if not k.startswith("text_projection")}


def open_clip_to_ldm(sd: Mapping[str, torch.Tensor], prefix: str, *, projection: torch.Tensor | None = None
                     ) -> dict[str, torch.Tensor]:
    """OpenCLIP text tower (SD-2 / SDXL clip_g): fused qkv, ``resblocks``, transposed ``text_projection``."""
    sd = _text_keys(sd)
    out: dict[str, torch.Tensor] = {}
    fixed = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.final_layer_norm.weight": "ln_final.weight",
             "text_model.final_layer_norm.bias": "ln_final.bias"}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if key in fixed:
            out[prefix + fixed[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif key.startswith("text_model.encoder.layers."):
            layer, rest = key[len("text_model.encoder.layers."):].split(".", 1)
            base = f"{prefix}transformer.resblocks.{layer}."
            if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                _, proj, kind = rest.split(".")
                qkv.setdefault(base + "attn.in_proj_" + kind, {})[proj[0]] = value
                continue
            rest = (rest.replace("self_attn.out_proj", "attn.out_proj").replace("layer_norm1", "ln_1")
                    .replace("layer_norm2", "ln_2").replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj"))
            out[base + rest] = value
        else:
            raise KeyError(f"no OpenCLIP name for text key {key}")
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    if projection is not None:
        out[prefix + "text_projection"] = projection
    return out


def pipeline_to_ldm(pipe: Any, text_layout: str = "sd1") -> dict[str, torch.Tensor]:
    """A whole (tiny) pipeline as one original-layout state dict.

    ``text_layout``: ``sd1`` (CLIP under cond_stage_model.transformer), ``sd2`` (OpenCLIP under
    cond_stage_model.model) or ``sdxl`` (both encoders under conditioner.embedders.{0,1}).
    """
    sd = unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config)
    sd.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    te = pipe.text_encoder.state_dict()
    if text_layout == "sd1":
        sd.update(clip_to_ldm(te, "cond_stage_model.transformer."))
    elif text_layout == "sd2":
        hidden = pipe.text_encoder.config.hidden_size
        # Real SD-2 files carry OpenCLIP's projection too (diffusers ignores it): keep the layout honest.
        sd.update(open_clip_to_ldm(te, "cond_stage_model.model.", projection=torch.zeros(hidden, hidden)))
    elif text_layout == "sdxl":
        sd.update(clip_to_ldm(te, "conditioner.embedders.0.transformer."))
        sd.update(open_clip_to_ldm(pipe.text_encoder_2.state_dict(), "conditioner.embedders.1.model."))
    else:
        raise ValueError(text_layout)
    return sd
