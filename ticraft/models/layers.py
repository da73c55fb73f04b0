"""Per-layer tokens (P+ / XTI): one vector set per UNet cross-attention layer.

An XTI concept (Voynov et al., *P+*, arXiv 2303.09522; kohya's ``train_textual_inversion_XTI.py``) holds
``L × N`` rows per text encoder, layer-major (rows ``l·N … l·N+N-1`` are layer ``l``'s), where ``L`` is the
number of cross-attention layers of the UNet (16 for SD-1.x/2.x, 70 for SDXL, 7 for the toy model; counted
from the loaded UNet, never assumed) and ``meta["xti_layers"] = L``.

How a prompt reaches each layer with its own vectors, without touching diffusers' pipelines:

* layer 0's rows are spliced under the user's placeholder names (``<tok>``, ``<tok>_1`` …), layer ``l``'s under
  hidden names ``<tok>@l``, ``<tok>@l_1`` … (never typed by a user);
* while any XTI concept is loaded, every text encoder of the model runs each prompt ``L`` times in one batch,
  copy ``l`` with layer-0 ids swapped for layer ``l``'s, and returns the ``L`` encodings packed along the
  sequence axis (``[B, L·S, D]``); a prompt without XTI tokens packs ``L`` identical copies;
* each cross-attention layer ``l`` of the UNet gets a processor that reads its own slice ``[l·S, (l+1)·S)``
  and hands it to the processor it replaced (SDPA etc. stay as they were).

So sampling, img2img, compose and training all see per-layer conditioning through the same encoder and UNet
calls they already make. Pooled outputs (SDXL's ``text_embeds``) are the mean over the ``L`` encodings.
Unloading the last XTI concept removes every hook and restores the original processors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.prompts import placeholder_names

LAYERS_KEY = "xti_layers"


class LayerLayoutError(TicraftError):
    """A per-layer concept does not fit the model's cross-attention layers."""


def cross_attention_layers(unet: nn.Module) -> list[str]:
    """Names of the UNet's cross-attention modules (``attn2``), in forward order (down, mid, up).

    On SD-1.5: 16 names, ``down_blocks.0.attentions.0.transformer_blocks.0.attn2`` first.
    """
    names = [n for n, m in unet.named_modules() if n.endswith(".attn2") and hasattr(m, "set_processor")]
    # named_modules walks down → up → mid (registration order); P+ and kohya count down, mid, up.
    part = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}
    return sorted(names, key=lambda n: (part.get(n.split(".")[0], 3), _numeric_key(n)))


def _numeric_key(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in name.split("."))


def layer_count(unet: nn.Module) -> int:
    """``L``, the number of cross-attention layers of ``unet``."""
    return len(cross_attention_layers(unet))


def layer_names(token: str, layer: int, n: int) -> list[str]:
    """Tokenizer names of layer ``layer``'s ``n`` vectors (layer 0 uses the user's placeholder names)."""
    base = token if layer == 0 else f"{token}@{layer}"
    return placeholder_names(base, n)


def concept_layers(concept: Concept) -> int:
    """``L`` of a per-layer concept, 1 for an ordinary one."""
    return int(concept.meta.get(LAYERS_KEY, 1) or 1)


def split_layers(vectors: torch.Tensor, layers: int) -> torch.Tensor:
    """``[L·N, D]`` rows → ``[L, N, D]``."""
    if vectors.shape[0] % layers:
        raise LayerLayoutError(f"{vectors.shape[0]} rows do not split into {layers} layers")
    return vectors.reshape(layers, vectors.shape[0] // layers, vectors.shape[1])


class _LayerProcessor:
    """Cross-attention processor of layer ``index``: its slice of the packed conditioning, then the old processor."""

    def __init__(self, inner: Any, index: int, layers: int) -> None:
        self.inner, self.index, self.layers = inner, index, layers

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        if encoder_hidden_states is not None:
            s = encoder_hidden_states.shape[1] // self.layers
            encoder_hidden_states = encoder_hidden_states[:, self.index * s:(self.index + 1) * s]
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


@dataclass
class _Router:
    layers: int
    modules: list[nn.Module]
    old_processors: list[Any]
    handles: list[Any] = field(default_factory=list)
    #: encoder key → {token: [L, N] ids}
    ids: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    max_length: dict[str, int] = field(default_factory=dict)
    eos: dict[str, int] = field(default_factory=dict)
    pad: dict[str, int] = field(default_factory=dict)

    def layer_ids(self, key: str, input_ids: torch.Tensor) -> torch.Tensor:
        """``[B, S]`` ids → ``[L·B, S]``: copy ``l`` has layer-0 placeholder ids replaced by layer ``l``'s."""
        L = self.layers
        out = input_ids.unsqueeze(0).expand(L, *input_ids.shape)
        for table in self.ids.get(key, {}).values():
            table = table.to(input_ids.device)
            # one match per token against the N layer-0 ids (as in SplicedEmbedding), then each layer's id
            match = input_ids.unsqueeze(-1) == table[0]
            hit = match.any(-1)
            out = torch.where(hit, table[:, match.to(torch.int8).argmax(-1)], out)
        return out.reshape(L * input_ids.shape[0], *input_ids.shape[1:])


def _router(backbone: Any) -> _Router | None:
    return backbone.extra.get("_xti_router")


def _pack(value: Any, layers: int, batch: int) -> Any:
    if isinstance(value, torch.Tensor) and value.shape[0] == layers * batch:
        if value.ndim == 3:  # [L·B, S, D] → [B, L·S, D]
            s, d = value.shape[1:]
            return value.reshape(layers, batch, s, d).permute(1, 0, 2, 3).reshape(batch, layers * s, d)
        if value.ndim == 2:  # pooled [L·B, D] → mean over layers
            return value.reshape(layers, batch, -1).mean(0)
    if isinstance(value, tuple) and value and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(_pack(v, layers, batch) for v in value)
    return value


def _install(backbone: Any, layers: int) -> _Router:
    unet = backbone.unet
    names = cross_attention_layers(unet)
    mods = dict(unet.named_modules())
    modules = [mods[n] for n in names]
    router = _Router(layers=layers, modules=modules, old_processors=[m.processor for m in modules])
    for i, m in enumerate(modules):
        m.set_processor(_LayerProcessor(m.processor, i, layers))

    for enc in backbone.encoders:
        key = enc.key
        router.max_length[key] = int(enc.tokenizer.model_max_length)
        router.eos[key] = int(enc.tokenizer.eos_token_id)
        router.pad[key] = int(enc.tokenizer.pad_token_id if enc.tokenizer.pad_token_id is not None
                              else enc.tokenizer.eos_token_id)

        def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], key: str = key) -> Any:
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is None:
                return None
            s0 = router.max_length[key]
            mask = kwargs.get("attention_mask")
            if ids.shape[-1] > s0:
                # diffusers tokenises the negative prompt to the positive embedding's length (L·S here):
                # everything past S is padding (or a prompt too long anyway), so cut it back to S tokens.
                ids = ids[..., :s0].clone()
                last = ids[..., s0 - 1]
                ids[..., s0 - 1] = torch.where(last == router.pad[key], last, torch.full_like(last, router.eos[key]))
                if mask is not None:
                    mask = mask[..., :s0]
            batch = ids.shape[0]
            module._xti_batch = batch  # read back by the post-hook
            new_kwargs = dict(kwargs)
            if args:
                new_kwargs.pop("input_ids", None)
                args = (None, *args[1:])
            new_kwargs["input_ids"] = router.layer_ids(key, ids)
            if mask is not None:
                new_kwargs["attention_mask"] = mask.repeat(layers, 1)
            return tuple(args[1:]), new_kwargs

        def post(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
            batch = getattr(module, "_xti_batch", None)
            if batch is None:
                return output
            if isinstance(output, tuple):
                return tuple(_pack(v, layers, batch) for v in output)
            for k in list(output.keys()):
                output[k] = _pack(output[k], layers, batch)
            return output

        router.handles.append(enc.model.register_forward_pre_hook(pre, with_kwargs=True))
        router.handles.append(enc.model.register_forward_hook(post, with_kwargs=True))
    backbone.extra["_xti_router"] = router
    return router


def _uninstall(backbone: Any) -> None:
    router = backbone.extra.pop("_xti_router", None)
    if router is None:
        return
    for h in router.handles:
        h.remove()
    for m, old in zip(router.modules, router.old_processors, strict=True):
        m.set_processor(old)


def check_layout(backbone: Any, concept: Concept) -> int:
    """``L`` of ``concept`` if it fits ``backbone``'s UNet, else one :class:`LayerLayoutError` sentence."""
    layers = concept_layers(concept)
    have = layer_count(backbone.unet)
    if layers != have:
        raise LayerLayoutError(
            f"concept {concept.token} has per-layer vectors for {layers} cross-attention layers, but model "
            f"{backbone.name} has {have}; use it on a model of its family, or flatten it (ticraft export --flatten)")
    return layers


def splice_layers(backbone: Any, token: str, rows: dict[str, list[torch.Tensor]], layers: int) -> dict[str, list[int]]:
    """Splice ``L·N`` rows per encoder (``[1, D]`` tensors or parameters, layer-major) for ``token``.

    Routes them per layer (installing the routing on first use); returns layer 0's ids per encoder.
    """
    router = _router(backbone)
    if router is not None and router.layers != layers:
        raise LayerLayoutError(f"{token}: another per-layer concept with {router.layers} layers is loaded")
    n = len(next(iter(rows.values()))) // layers
    ids: dict[str, list[list[int]]] = {k: [] for k in rows}
    for layer in range(layers):
        for i, name in enumerate(layer_names(token, layer, n)):
            got = backbone.add_placeholder(name, {k: v[layer * n + i] for k, v in rows.items()})
            for k, v in got.items():
                if i == 0:
                    ids[k].append([])
                ids[k][-1].append(v[0])
    router = router or _install(backbone, layers)
    for k, table in ids.items():
        router.ids.setdefault(k, {})[token] = torch.tensor(table, dtype=torch.long)
    return {k: table[0] for k, table in ids.items()}


def unsplice_layers(backbone: Any, token: str, layers: int, n: int) -> None:
    """Take ``token``'s per-layer rows out; the last per-layer concept out removes the routing."""
    for layer in range(layers):
        for name in layer_names(token, layer, n):
            for e in backbone.encoders:
                e.embedding.remove_block(name)
    router = _router(backbone)
    if router is None:
        return
    for table in router.ids.values():
        table.pop(token, None)
    if not any(router.ids.values()):
        _uninstall(backbone)


def load_layered(backbone: Any, concept: Concept) -> dict[str, list[int]]:
    """Splice a per-layer library concept in (its layer count must equal the model's)."""
    layers = check_layout(backbone, concept)
    rows = {k: list(v.to(device=backbone.device).split(1)) for k, v in concept.vectors.items()}
    return splice_layers(backbone, concept.token, rows, layers)


__all__ = ["LAYERS_KEY", "LayerLayoutError", "check_layout", "concept_layers", "cross_attention_layers",
           "layer_count", "layer_names", "load_layered", "split_layers", "splice_layers", "unsplice_layers"]
