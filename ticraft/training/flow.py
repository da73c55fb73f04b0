"""Textual inversion on rectified-flow transformers (SD3/SD3.5, Flux): the objective and the trainer.

Everything that is not the objective — frozen weights, spliced ``[1, D]`` rows, cached latents, host-side
choices, resumable state, DVAR — is :class:`~ticraft.training.loop.Trainer`'s; :class:`FlowTrainer` only
replaces the timestep draw, the text encoding and the loss. The objective follows diffusers'
``examples/dreambooth/train_dreambooth_lora_sd3.py`` and ``train_dreambooth_lora_flux.py``:

* latents ``z = (vae_mean - shift_factor) · scaling_factor`` (the latent cache already stores that);
* timestep **index** ``⌊u · N⌋`` with ``u`` from ``compute_density_for_timestep_sampling`` (diffusers'
  own helper): ``logit_normal`` (mean 0, std 1) for SD3 — the SD3 script's default — and uniform
  (``none``) for Flux — the Flux script's default; ``--weighting-scheme`` picks another;
* ``σ`` and ``t`` from the model's ``FlowMatchEulerDiscreteScheduler`` tables at that index, i.e. with the
  config's static ``shift`` (SD3: 3.0) baked in; Flux configs use dynamic shifting, whose training
  tables are unshifted (as in the Flux script);
* ``x_σ = (1-σ) z + σ ε``; loss ``w(σ)·‖pred − target‖²`` with ``w`` from
  ``compute_loss_weighting_for_sd3`` (ones for logit_normal/none/mode);
* SD3: outputs preconditioned (the SD3 script's ``--precondition_outputs 1``): ``pred ← x_σ − σ·pred``,
  target ``z``; Flux: target ``ε − z``, latents packed into 2×2 patches, ``t/1000`` as the timestep,
  and a distilled-guidance value of 3.5 (the Flux script's ``--guidance_scale``) when the transformer
  has a guidance embedding.

``encoders="t5"`` or ``"clip"`` trains the vectors of those encoders only; the others keep the
initializer's embedding (so the concept still has a vector in every encoder and every prompt reads it).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Sequence

import torch

from ticraft.models import flux as flux_model
from ticraft.models import mmdit
from ticraft.training.config import TrainConfig
from ticraft.training.loop import Trainer, TrainError

#: Defaults of diffusers' scripts, per family.
DEFAULT_WEIGHTING = {"sd3": "logit_normal", "flux": "none"}
PRECONDITION = {"sd3": True, "flux": False}
FLUX_TRAIN_GUIDANCE = 3.5
LOGIT_MEAN, LOGIT_STD, MODE_SCALE = 0.0, 1.0, 1.29


def trained_keys(backbone: Any, which: str) -> list[str]:
    """Encoder keys whose vectors are learned for ``--encoders all|t5|clip`` (an encoder kind absent: error)."""
    keys = [e.key for e in backbone.encoders]
    if which == "all":
        return keys
    chosen = [e.key for e in backbone.encoders if e.kind == which]
    if not chosen:
        raise TrainError(f"--encoders {which}: model {backbone.name} has no {which.upper()} text encoder "
                         f"(it has {', '.join(keys)})")
    return chosen


class FlowTrainer(Trainer):
    """:class:`Trainer` with the rectified-flow objective of SD3 / Flux (see the module docstring)."""

    def __init__(self, backbone: Any, images: Sequence[Any], token: str, init: str, config: TrainConfig,
                 **kwargs: Any) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        if config.timestep_bias != "none":  # one sentence, before the latents are cached
            raise TrainError(f"timestep_bias {config.timestep_bias} applies to SD-1.x/2.x/XL and the toy model; "
                             f"{backbone.family} draws its timesteps by weighting_scheme (--set weighting_scheme=…)")
        self.flow_family = mmdit.flow_family(backbone)
        self.learned_keys = trained_keys(backbone, config.encoders)
        super().__init__(backbone, images, token, init, config, **kwargs)
        sched = FlowMatchEulerDiscreteScheduler.from_config(backbone.scheduler.config)
        self.num_timesteps = int(sched.config.num_train_timesteps)
        self._sigmas = sched.sigmas[: self.num_timesteps].float().to(self.device)
        self._timesteps = sched.timesteps[: self.num_timesteps].float().to(self.device)
        scheme = config.weighting_scheme
        self.weighting = DEFAULT_WEIGHTING[self.flow_family] if scheme == "auto" else scheme
        self.precondition = PRECONDITION[self.flow_family]
        self.prediction_type = "flow"
        guided = bool(getattr(backbone.unet.config, "guidance_embeds", False))
        self._guidance = FLUX_TRAIN_GUIDANCE if self.flow_family == "flux" and guided else None
        # Flux's latent position ids depend only on the latent size: built once, not on the host every pass.
        h, w = self.cache.mean.shape[-2:]
        self._image_ids_hw = (int(h), int(w))
        self._image_ids = flux_model.image_ids(h, w, self.device, self._unet_dtype) \
            if self.flow_family == "flux" else None
        # Encoders not being trained keep their initial vectors: no gradient, so Adam never moves them.
        self._frozen_keys = frozenset(k for k in self.keys if k not in self.learned_keys)
        for key in self.keys:
            if key not in self.learned_keys:
                for p in self.rows[key] + self.image_rows[key]:
                    p.requires_grad_(False)

    def learned_vectors(self) -> dict[str, torch.Tensor]:
        """:meth:`result_vectors` of the trained encoders only (the others keep the initializer's rows)."""
        return {k: v for k, v in self.result_vectors().items() if k in self.learned_keys}

    # ------------------------------------------------------------------ inputs
    def _tokenize(self, prompts: Sequence[str], count: int) -> dict[str, torch.Tensor]:
        counts = self._counts(count)
        expanded = [self._expand(p, counts) for p in prompts]
        return {k: v.to(self.device) for k, v in mmdit.tokenize(self.bb, expanded).items()}

    def _draw(self, batch: int) -> dict[str, torch.Tensor]:
        from diffusers.training_utils import compute_density_for_timestep_sampling

        draw = super()._draw(batch)
        u = compute_density_for_timestep_sampling(self.weighting, batch, logit_mean=LOGIT_MEAN, logit_std=LOGIT_STD,
                                                  mode_scale=MODE_SCALE, generator=self.host_gen)
        index = (u * self.num_timesteps).long().clamp_(0, self.num_timesteps - 1)
        draw["t"] = index[self.dist.slice(batch)]
        return draw

    # -------------------------------------------------------------------- loss
    # The base trainer's _loss = _noised → _predict → _per_sample_loss (masking included); only the first two
    # change. The loss weight w(σ) enters as √w on both prediction and target: w·(p − τ)² = (√w·p − √w·τ)².
    def _sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self._sigmas.index_select(0, t).view(-1, 1, 1, 1)

    def _sqrt_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        from diffusers.training_utils import compute_loss_weighting_for_sd3

        return compute_loss_weighting_for_sd3(self.weighting, sigma).float().sqrt()

    def _noised(self, rows: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                post_noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_σ = (1-σ) z + σ ε`` at the σ-table index ``t``, and the (√w-scaled) target."""
        z = self.cache.mean.index_select(0, rows)
        if post_noise is not None and self.cache.std is not None:
            z = z + self.cache.std.index_select(0, rows) * post_noise
        sigma = self._sigma(t)
        noisy = (1.0 - sigma) * z + sigma * noise
        target = z if self.precondition else noise - z
        return noisy, self._sqrt_weight(sigma) * target

    def _flux_image_ids(self, h: int, w: int) -> torch.Tensor:
        if self._image_ids is not None and (h, w) == self._image_ids_hw:
            return self._image_ids
        return flux_model.image_ids(h, w, self.device, self._unet_dtype)

    def _predict(self, ids: dict[str, torch.Tensor], inverse: torch.Tensor | None, noisy: torch.Tensor,
                 t: torch.Tensor, time_ids: torch.Tensor | None) -> torch.Tensor:
        """Text encoding (once per distinct prompt) and the transformer's (preconditioned, √w-scaled) output."""
        timestep = self._timesteps.index_select(0, t)
        amp = (torch.autocast(self.device.type, dtype=self._amp_dtype) if self._amp_dtype is not None
               else nullcontext())
        dtype = self._unet_dtype
        with amp:
            # Encoders whose vectors are not learned run without autograd: no activations kept for backward
            # (with --encoders clip, T5-XXL's activations are the largest part of the text side).
            embeds, pooled = mmdit.encode(self.bb, ids, frozen=self._frozen_keys)
            if inverse is not None:
                embeds, pooled = embeds.index_select(0, inverse), pooled.index_select(0, inverse)
            embeds, pooled = embeds.to(dtype), pooled.to(dtype)
            if self.flow_family == "sd3":
                pred = self.bb.unet(hidden_states=noisy.to(dtype), timestep=timestep, encoder_hidden_states=embeds,
                                    pooled_projections=pooled, return_dict=False)[0]
            else:
                h, w = noisy.shape[-2:]
                guidance = (torch.full((noisy.shape[0],), self._guidance, device=self.device)
                            if self._guidance is not None else None)
                out = self.bb.unet(
                    hidden_states=flux_model.pack(noisy).to(dtype), timestep=timestep / 1000, guidance=guidance,
                    pooled_projections=pooled, encoder_hidden_states=embeds,
                    txt_ids=flux_model.text_ids(embeds.shape[1], self.device, dtype),
                    img_ids=self._flux_image_ids(h, w), return_dict=False)[0]
                pred = flux_model.unpack(out, h, w)
        sigma = self._sigma(t)
        pred = pred.float()
        if self.precondition:  # EDM-style: the model's velocity turned into a clean-latent estimate
            pred = pred * (-sigma) + noisy
        return self._sqrt_weight(sigma) * pred


def make_trainer(backbone: Any, images: Sequence[Any], token: str, init: str, config: TrainConfig,
                 **kwargs: Any) -> Trainer:
    """The trainer for ``backbone``: :class:`FlowTrainer` for SD3/Flux, else the denoising :class:`Trainer`."""
    if mmdit.is_flow(backbone):
        if config.method != "plain":
            raise TrainError(f"method {config.method} is for SD-1.x/2.x/XL and the toy model; {backbone.name} is "
                             f"{backbone.family} (train it with method plain)")
        return FlowTrainer(backbone, images, token, init, config, **kwargs)
    if config.encoders != "all" or config.weighting_scheme != "auto":
        raise TrainError(f"--encoders and --weighting-scheme apply to SD3/Flux models; {backbone.name} is "
                         f"{backbone.family}")
    if config.method != "plain":  # xti / directional (ticraft/training/methods.py)
        from ticraft.training.methods import method_trainer

        return method_trainer(backbone, images, token, init, config, **kwargs)
    return Trainer(backbone, images, token, init, config, **kwargs)


__all__ = ["FlowTrainer", "make_trainer", "trained_keys"]
