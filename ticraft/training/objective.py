"""The denoising objective of :class:`~ticraft.training.loop.Trainer`: batch draws, noising, prediction, loss.

The loss is diffusers' training objective: ``noisy = √ᾱ_t z + √(1-ᾱ_t) ε`` and the target follows the
scheduler's ``prediction_type`` (ε, v = √ᾱ_t ε − √(1-ᾱ_t) z, or z). SDXL adds the pooled projection of
its second text encoder and the six micro-conditioning ``time_ids``, and conditions on the
penultimate hidden states of both encoders, concatenated — exactly as its pipeline's ``encode_prompt``.

:class:`DenoisingObjective` is a mixin: its methods read the state that ``Trainer.__init__`` sets up (the
latent cache, the noise schedule, the tokenised prompts, the generators), and subclasses override them
(:mod:`ticraft.training.flow` replaces the noising and the prediction).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from ticraft.training import schedule
from ticraft.training.config import TrainConfig
from ticraft.training.data import LatentCache, PromptSet
from ticraft.training.distributed import DistInfo


class DenoisingObjective:
    """The per-sample denoising loss and the batches it runs on (a mixin of ``Trainer``)."""

    bb: Any
    cfg: TrainConfig
    dist: DistInfo
    device: torch.device
    sdxl: bool
    cache: LatentCache
    prompts: PromptSet
    prediction_type: str
    num_timesteps: int
    _sqrt_ab: torch.Tensor
    _sqrt_1mab: torch.Tensor
    _amp_dtype: torch.dtype | None
    _unet_dtype: torch.dtype
    host_gen: torch.Generator
    noise_gen: torch.Generator
    _tables: dict[int, dict[str, torch.Tensor]]
    _active: int
    _eval_batch: dict[str, Any] | None

    # -------------------------------------------------------------------- loss
    def _encode_text(self, ids: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.sdxl:
            enc = self.bb.encoders[0]
            return enc.model(input_ids=ids[enc.key], return_dict=False)[0], None
        hidden, pooled = [], None
        for enc in self.bb.encoders:
            out = enc.model(input_ids=ids[enc.key], output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
            pooled = out[0]  # the last encoder's projected pooled output, as in encode_prompt
        return torch.cat(hidden, dim=-1), pooled

    def _loss(self, ids: dict[str, torch.Tensor], inverse: torch.Tensor | None, rows: torch.Tensor,
              t: torch.Tensor, noise: torch.Tensor, post_noise: torch.Tensor | None) -> torch.Tensor:
        """Per-sample denoising loss ``[B]`` (fp32)."""
        noisy, target = self._noised(rows, t, noise, post_noise)
        time_ids = self.cache.time_ids.index_select(0, rows) if self.sdxl else None  # type: ignore[union-attr]
        pred = self._predict(ids, inverse, noisy, t, time_ids)
        return self._per_sample_loss(pred, target, rows)

    # The three parts of the loss are separate so that ticraft.training.many can run the frozen model once
    # over the samples of many concepts (each with its own latent cache) and split the result again.
    def _noised(self, rows: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                post_noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The noisy latents of cache ``rows`` at ``t`` and the model's target for them."""
        z = self.cache.mean.index_select(0, rows)
        if post_noise is not None and self.cache.std is not None:
            z = z + self.cache.std.index_select(0, rows) * post_noise
        sa = self._sqrt_ab.index_select(0, t).view(-1, 1, 1, 1)
        s1 = self._sqrt_1mab.index_select(0, t).view(-1, 1, 1, 1)
        noisy = sa * z + s1 * noise
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":
            target = sa * noise - s1 * z
        else:
            target = z
        return noisy, target

    def _predict(self, ids: dict[str, torch.Tensor], inverse: torch.Tensor | None, noisy: torch.Tensor,
                 t: torch.Tensor, time_ids: torch.Tensor | None) -> torch.Tensor:
        """Text encoding (once per distinct prompt) and the UNet's prediction for ``noisy``."""
        amp = (torch.autocast(self.device.type, dtype=self._amp_dtype) if self._amp_dtype is not None
               else nullcontext())
        with amp:
            hidden, pooled = self._encode_text(ids)
            if inverse is not None:
                hidden = hidden.index_select(0, inverse)
                pooled = pooled.index_select(0, inverse) if pooled is not None else None
            added = None
            if self.sdxl:
                added = {"text_embeds": pooled, "time_ids": time_ids}
            x = noisy.to(self._unet_dtype)
            if self.cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.bb.unet(x, t, encoder_hidden_states=hidden.to(self._unet_dtype),
                                added_cond_kwargs=added, return_dict=False)[0]

    def _per_sample_loss(self, pred: torch.Tensor, target: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        se = (pred.float() - target).pow(2)
        if self.cache.mask is not None:
            m = self.cache.mask.index_select(0, rows)
            return (se * m).sum((1, 2, 3)) / (m.sum((1, 2, 3)) * se.shape[1]).clamp_min(1e-6)
        return se.mean((1, 2, 3))

    # -------------------------------------------------------------------- steps
    def _draw(self, batch: int) -> dict[str, torch.Tensor]:
        """The global batch's choices (host) and noise (device), then this process's slice."""
        g = self.host_gen
        n_img, n_var = self.cache.num_images, self.cache.num_variants
        img = torch.randint(n_img, (batch,), generator=g)
        var = torch.randint(n_var, (batch,), generator=g)
        k = torch.randint(self.prompts.choices.shape[1], (batch,), generator=g)
        t = schedule.draw_timesteps(batch, self.num_timesteps, self.cfg.timestep_bias, g)
        shape = (batch, *self.cache.mean.shape[1:])
        noise = torch.randn(shape, generator=self.noise_gen, device=self.device)
        post = (torch.randn(shape, generator=self.noise_gen, device=self.device)
                if self.cache.std is not None else None)
        part = self.dist.slice(batch)
        prompt = self.prompts.choices[img, k][part]
        draw: dict[str, Any] = {"rows": (img * n_var + var)[part], "t": t[part], "prompt": prompt,
                                "noise": noise[part], "post": post[part] if post is not None else None}
        return draw

    def _batch_inputs(self, draw: dict[str, torch.Tensor], count: int) -> tuple[Any, ...]:
        prompt = draw["prompt"]
        if self.cfg.dedup_text:
            uniq, inverse = torch.unique(prompt, return_inverse=True)  # CPU tensors: no device sync
            if self.cfg.compile != "none":  # fixed shapes for compiled graphs: pad the distinct prompts
                size = min(prompt.numel(), len(self.prompts.prompts))
                uniq = torch.cat([uniq, uniq[:1].expand(size - uniq.numel())])
        else:
            uniq, inverse = prompt, None
        parts = [draw["rows"], draw["t"], uniq] + ([inverse] if inverse is not None else [])
        packed = torch.cat(parts)
        if self.device.type == "cuda":  # pinned (cached by torch's host allocator): a truly async copy
            packed = packed.pin_memory()
        packed = packed.to(self.device, non_blocking=True)  # one small host→device copy, no sync
        sizes = [p.numel() for p in parts]
        rows, t, uniq_d, *rest = packed.split(sizes)
        ids = {k: v.index_select(0, uniq_d) for k, v in self._tables[count].items()}
        return ids, (rest[0] if rest else None), rows, t, draw["noise"], draw["post"]

    # ------------------------------------------------------------ evaluation
    def _make_eval_batch(self) -> dict[str, Any]:
        """Fixed images (variant 0), prompts (each image's first), timesteps (evenly spread) and noise."""
        n = self.cfg.eval_samples
        img = torch.arange(n) % self.cache.num_images
        rows = img * self.cache.num_variants
        t = torch.linspace(0, self.num_timesteps - 1, n).round().long()
        g = torch.Generator().manual_seed(self.cfg.seed + 7919)
        noise = torch.randn((n, *self.cache.mean.shape[1:]), generator=g).to(self.device)
        return {"rows": rows.to(self.device), "t": t.to(self.device), "noise": noise,
                "prompt": self.prompts.choices[img, 0]}

    @torch.no_grad()
    def evaluate(self) -> float:
        """The DVAR evaluation loss: the same inputs every time, only the vectors change."""
        if self._eval_batch is None:
            self._eval_batch = self._make_eval_batch()
        b = self._eval_batch
        ids = {k: v.index_select(0, b["prompt"].to(self.device)) for k, v in self._tables[self._active].items()}
        return float(self._loss(ids, None, b["rows"], b["t"], b["noise"], None).mean())


__all__ = ["DenoisingObjective"]
