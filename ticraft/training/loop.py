"""The optimisation: find vectors for a placeholder token by minimising the denoising loss.

One :class:`Trainer` owns one run. Its design follows from what textual inversion needs:

* **Frozen model, tiny trainable state.** Every weight has ``requires_grad=False``; each learned vector
  is its own ``nn.Parameter`` of shape ``[1, D]`` spliced in with :meth:`Backbone.add_placeholder`. The
  token table is never read for gradients, never written, and no optimiser state exists for it. One
  parameter per row lets progressive extension switch rows on one at a time: a row that is not yet in
  any prompt is not spliced, so it has no gradient, and Adam leaves it (and its state) untouched until
  it joins — its bias correction then starts from its own first step.
* **No VAE in the loop.** Images are encoded once (:mod:`ticraft.training.data`); a step gathers cached
  posterior means/stds on the device and draws the posterior sample there.
* **Many samples per step.** A step is ``batch_size`` (image, prompt, t, ε) samples; the text encoder
  runs once per *distinct* prompt in the batch (the learned vectors change every step, so text encoding
  is part of the graph, but it is shared across samples with the same prompt).
* **No host syncs.** All random choices that decide shapes are drawn on the host from a seeded
  generator; noise is drawn on the device from another. The loss is accumulated on the device and read
  only every ``log_every`` steps (``callback(step, total, None, vectors)`` in between).
* **Deterministic and resumable.** The step number, both generators, the optimiser state and the histories are
  the whole state (:meth:`Trainer.state_dict`); a resumed run repeats the uninterrupted one exactly.
* **Same code on CPU and GPU.** bf16 autocast (and bf16 weights) on CUDA, fp32 on CPU; ``torch.compile`` on request.

The loss, its batches and its evaluation live in :mod:`ticraft.training.objective`; the splicing and
tokenising of the placeholder rows in :mod:`ticraft.training.prompt_ids` (mixins of :class:`Trainer`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.prompts import find_concept_tokens
from ticraft.training import inputs, schedule
from ticraft.training.config import TrainConfig
from ticraft.training.data import (
    LatentCache,
    PromptSet,
    TrainImage,
    build_prompts,
    encode_latents,
    make_variants,
    native_resolution,
)
from ticraft.training.distributed import DistInfo, all_reduce_sum, average_gradients, broadcast_from_first
from ticraft.training.early_stop import DVAR
from ticraft.training.init_search import InitSearch, restored_choice, search_initializer
from ticraft.training.objective import DenoisingObjective
from ticraft.training.prompt_ids import PromptTokens
from ticraft.wording import noun

#: ``callback(step, total, loss, vectors)``; ``loss`` is ``None`` on steps where it was not read.
#: Returning ``True`` asks the trainer to stop after this step.
Callback = Callable[[int, int, "float | None", "dict[str, torch.Tensor]"], "bool | None"]


class TrainError(TicraftError):
    """Training cannot start or continue."""


class Trainer(PromptTokens, DenoisingObjective):
    """One inversion run on a loaded :class:`~ticraft.models.backbone.Backbone`.

    Args:
        backbone: the frozen model (its device is the training device).
        images: loaded training images (:func:`ticraft.training.data.load_images`).
        token: the placeholder, e.g. ``"<cat-toy>"``; must not be a word of the tokenizer(s).
        init: initializer text (one or more words).
        config: the options.
        dist: process-group info for data parallel runs.
        references: library concepts that ``init`` and the captions name (:func:`inputs.find_references`);
            any other ``<concept>`` token there is an error.
    """

    def __init__(self, backbone: Any, images: Sequence[TrainImage], token: str, init: str, config: TrainConfig,
                 *, dist: DistInfo | None = None, references: Mapping[str, Concept] | None = None) -> None:
        self.bb = backbone
        self.cfg = config
        self.dist = dist or DistInfo()
        self.token = token
        self.init_text = init
        self.images = list(images)
        self.device = backbone.device
        self.sdxl = len(backbone.encoders) == 2
        self.keys = [e.key for e in backbone.encoders]
        cfg = config
        if cfg.batch_size % self.dist.world_size:
            raise TrainError(f"batch_size {cfg.batch_size} must be divisible by the {self.dist.world_size} processes")

        for m in backbone.modules():  # the model is frozen, whatever state it came in
            m.requires_grad_(False)
            m.eval()

        # ---- tokens and their starting vectors
        self.names = backbone.placeholder_tokens(token, cfg.num_vectors)
        self.image_tokens = schedule.image_token_names(token, len(self.images)) if cfg.per_image else []
        self._check_tokens_free(self.names + self.image_tokens)
        #: one-line TrainWarnings of this run (also emitted as Python warnings), kept in the concept's meta
        self.warnings: list[str] = []
        self.references = dict(references or {})
        inputs.check_references(backbone, self.references, init)
        for concept in self.references.values():  # captions may use them like a prompt does
            backbone.load_concept(concept)
        self.init_vectors = inputs.initial_vectors(backbone, init, cfg.num_vectors, self.references,
                                                   self.warnings)  # CPU fp32
        self._reg_target = {k: v.to(self.device) for k, v in self.init_vectors.items()}

        # One [1, D] fp32 parameter per vector (see the module docstring for why).
        self.rows: dict[str, list[nn.Parameter]] = {
            k: [nn.Parameter(v[i:i + 1].clone().to(self.device)) for i in range(cfg.num_vectors)]
            for k, v in self.init_vectors.items()
        }
        # Per-image tokens S_i start from the table's mean row: a "word" with no meaning of its own.
        self.image_rows: dict[str, list[nn.Parameter]] = {
            e.key: [nn.Parameter(e.table.detach().float().mean(0, keepdim=True).to(self.device))
                    for _ in self.image_tokens]
            for e in backbone.encoders
        }

        # ---- prompts: every placeholder must survive the text encoder's window (checked before the VAE runs)
        self.prompts: PromptSet = build_prompts(self.images, token, style=cfg.style, captions=cfg.captions,
                                                image_tokens=self.image_tokens)
        inputs.add_names(backbone, self.names + self.image_tokens)
        unknown = sorted({t for p in self.prompts.prompts for t in find_concept_tokens(p)}
                         - {token, *self.image_tokens, *self.references})
        if unknown:
            raise TrainError(f"the prompts name {noun(len(unknown), 'an unknown concept', 'unknown concepts')} "
                             f"{', '.join(unknown)}: import or train them first")
        labels = inputs.prompt_labels(self.images, self.prompts.prompts, captions=cfg.captions)
        inputs.check_prompt_budget(backbone, self.prompts.prompts, labels, self._counts(cfg.num_vectors),
                                   self.names + self.image_tokens, self.warnings)

        # ---- data, encoded once
        self.resolution = cfg.resolution or native_resolution(backbone.unet, backbone.vae)
        variants = make_variants(self.images, self.resolution, flip=cfg.flip, crops=cfg.crops, seed=cfg.seed)
        self.upscaled = variants.upscaled
        vae_home = next(backbone.vae.parameters()).device
        if vae_home.type == "cpu" and self.device.type == "cuda":  # parked by an earlier run on this model
            backbone.vae.to(self.device)
        self.cache: LatentCache = encode_latents(
            backbone.vae, variants, device=self.device, keep_std=cfg.latent_sample, use_mask=cfg.mask, sdxl=self.sdxl,
        )
        del variants
        # The loop never runs the VAE: off the device its weights stop counting towards the training peak
        # (render_previews brings it back while it renders; close() returns it).
        self._vae_parked = cfg.offload_vae and self.device.type == "cuda"
        if self._vae_parked:
            backbone.vae.to("cpu")

        # ---- the noise schedule of training (a DDPM view of the model's scheduler config)
        from diffusers import DDPMScheduler

        ddpm = DDPMScheduler.from_config(backbone.scheduler.config)
        self.prediction_type = ddpm.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise TrainError(f"unsupported prediction_type {self.prediction_type!r}")
        ac = ddpm.alphas_cumprod.to(torch.float64)
        self.num_timesteps = int(ddpm.config.num_train_timesteps)
        self._sqrt_ab = ac.sqrt().float().to(self.device)
        self._sqrt_1mab = (1 - ac).sqrt().float().to(self.device)

        # ---- precision and speed levers
        cuda = self.device.type == "cuda"
        from ticraft.devices import autocast_dtype

        self._amp_dtype = autocast_dtype(cfg.mixed_precision, self.device)  # the one auto/bf16/fp16/no rule
        self.mixed_precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self._amp_dtype, "no") \
            if self._amp_dtype is not None else "no"
        self._scaler = torch.amp.GradScaler(self.device.type) if self.mixed_precision == "fp16" else None
        if cfg.channels_last:
            backbone.unet.to(memory_format=torch.channels_last)
        if cfg.gradient_checkpointing:
            backbone.unet.enable_gradient_checkpointing()
        self._unet_dtype = backbone.dtype

        # ---- splice: per-image tokens now, vectors as they become active
        self._active = 0
        for i, name in enumerate(self.image_tokens):
            backbone.add_placeholder(name, {k: self.image_rows[k][i] for k in self.keys})
        self._tables: dict[int, dict[str, torch.Tensor]] = {}
        self._activate(schedule.active_vectors(0, cfg.num_vectors, cfg.progressive))

        # ---- optimiser over every row (inactive rows have no gradient, so it skips them)
        params = self.parameters()
        fused = cfg.fused_optimizer if cfg.fused_optimizer is not None else cuda
        opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        extra = {"fused": True} if fused else {}
        self.base_lr = cfg.effective_lr
        self.optimizer = opt_cls(params, lr=self.base_lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps,
                                 weight_decay=cfg.weight_decay, **extra)

        # ---- randomness: shape-deciding choices on the host, noise on the device
        self.host_gen = torch.Generator().manual_seed(cfg.seed)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)

        # ---- bookkeeping
        self.step = 0
        self.loss_curve: list[list[float]] = []
        self.eval_curve: list[list[float]] = []
        self.stopped: str | None = None  # "early_stop" | "callback"
        self._loss_acc = torch.zeros((), device=self.device)
        self._loss_count = 0
        self._stop_request = False
        self.stopper = DVAR(cfg.early_stop_window, cfg.early_stop_threshold) if cfg.early_stop else None
        self._eval_batch: dict[str, Any] | None = None
        self.train_seconds = 0.0
        #: what ``init_search`` chose (set by the first step; ``None`` when it is off or a resumed run)
        self.init_choice: InitSearch | None = None

        self._loss_fn = self._loss
        if cfg.compile != "none":
            mode = None if cfg.compile == "default" or cfg.compile_backend != "inductor" else cfg.compile
            self._loss_fn = torch.compile(self._loss, mode=mode, backend=cfg.compile_backend)
        # CUDA graphs (reduce-overhead) reuse their output buffers: each pass is marked as a new iteration.
        self._cudagraphs = cfg.compile == "reduce-overhead" and cfg.compile_backend == "inductor" and cuda

    # ------------------------------------------------------------------ tokens
    def _check_tokens_free(self, names: Sequence[str]) -> None:
        """Refuse words of the model's own vocabulary; reuse placeholder names ticraft added earlier.

        A concept already loaded under the same token is unloaded first: it is being retrained.
        """
        if self.token in self.bb.loaded_concepts:
            self.bb.unload_concept(self.token)
        for e in self.bb.encoders:
            vocab = e.tokenizer.get_vocab()
            specials = set(e.tokenizer.all_special_tokens)
            added = set(e.tokenizer.get_added_vocab()) - specials
            taken = [n for n in names if n not in added and (n in vocab or n + "</w>" in vocab or n in specials)]
            if taken:
                what = "a word" if taken[0] == self.token else "a token"
                raise TrainError(
                    f"{taken[0]!r} is already {what} of the model's {e.key} tokenizer; choose another placeholder, "
                    f"e.g. '<{self.token.strip('<>')}-2>'"
                )

    def start_layout(self, vectors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Start vectors ``[N, D]`` per encoder as this trainer's rows (methods with another layout override it)."""
        return vectors

    def parameters(self) -> list[nn.Parameter]:
        """All learned rows: concept rows per encoder, then per-image rows."""
        return [p for k in self.keys for p in self.rows[k]] + [p for k in self.keys for p in self.image_rows[k]]

    @property
    def active(self) -> int:
        return self._active

    def current_vectors(self) -> dict[str, torch.Tensor]:
        """The active vectors per encoder, ``[active, D]``, detached (on the training device)."""
        return {k: torch.cat([p.detach() for p in self.rows[k][: self._active]]) for k in self.keys}

    def train_step(self) -> None:
        """One optimiser step (``grad_accum`` forward/backward passes of ``batch_size`` samples)."""
        cfg = self.cfg
        start = time.perf_counter()
        count = self.begin_step()
        for _ in range(cfg.grad_accum):
            inputs = self._batch_inputs(self._draw(cfg.batch_size), count)
            if self._cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()
            self.pass_loss(self._loss_fn(*inputs)).backward()
        self.apply_gradients()
        self.train_seconds += time.perf_counter() - start

    # train_step's parts, public so that ticraft.training.many can interleave several trainers' passes.
    def begin_step(self) -> int:
        """Activate this step's vectors and set its learning rate; returns the active vector count."""
        cfg = self.cfg
        count = schedule.active_vectors(self.step, cfg.num_vectors, cfg.progressive)
        if count > self._active:
            self._activate(count)
        if self.step == 0 and cfg.init_search and self.init_choice is None:  # part of the run's cost, so here
            self.init_choice = search_initializer(self, cfg.init_search)  # logs its choice (the CLI shows it)
            if self.dist.enabled:  # every process searched the same batch; the first one's start is the run's
                broadcast_from_first(self.parameters(), self.dist)
                self.init_vectors = {k: torch.cat([p.detach() for p in self.rows[k]]).cpu() for k in self.keys}
                self._reg_target = {k: v.to(self.device) for k, v in self.init_vectors.items()}
        factor = schedule.lr_factor(self.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * factor
        return count

    def pass_loss(self, per_sample: torch.Tensor) -> torch.Tensor:
        """What one forward pass backpropagates (mean + regulariser, / grad_accum, fp16-scaled); logs the loss."""
        cfg = self.cfg
        data_loss = per_sample.mean()
        loss = data_loss
        if cfg.reg_weight:
            loss = loss + cfg.reg_weight * schedule.regularization(self.current_rows(), self._reg_target)
        loss = loss / cfg.grad_accum
        self._loss_acc += data_loss.detach() / cfg.grad_accum
        return self._scaler.scale(loss) if self._scaler else loss

    def apply_gradients(self) -> None:
        """Average (data parallel), clip, step the optimiser and count the step."""
        cfg = self.cfg
        params = self.parameters()
        average_gradients(params, self.dist)
        if self._scaler:
            self._scaler.unscale_(self.optimizer)
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], cfg.max_grad_norm)
        if self._scaler:
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self._loss_count += 1

    def current_rows(self) -> dict[str, torch.Tensor]:
        """The active rows per encoder with their autograd history (for the regulariser)."""
        return {k: torch.cat(tuple(self.rows[k][: self._active])) for k in self.keys}

    def read_loss(self) -> float | None:
        """Mean training loss since the last read (a host sync; all processes must call it together)."""
        if self._loss_count == 0:
            return None
        flag = 1.0 if self._stop_request else 0.0
        packed = torch.stack([self._loss_acc / self._loss_count, torch.tensor(flag, device=self.device)])
        packed = all_reduce_sum(packed, self.dist)
        value, flag_sum = packed.tolist()
        value /= self.dist.world_size
        if flag_sum > 0:
            self._stop_request = True
        self._loss_acc.zero_()
        self._loss_count = 0
        self.loss_curve.append([self.step, value])
        return value

    # ------------------------------------------------------------------- run
    def run(self, callback: Callback | None = None, *, on_step: Callable[["Trainer"], None] | None = None) -> None:
        """Train until ``config.steps``, early stopping, or a callback's stop request.

        ``on_step(trainer)`` runs after every step on every process (checkpoints/previews hang here).
        With ``config.deterministic`` the steps run under :func:`ticraft.training.exact.deterministic`.
        """
        from ticraft.training.exact import deterministic

        with deterministic(self.cfg.deterministic):
            self._run(callback, on_step)

    def _run(self, callback: Callback | None, on_step: Callable[["Trainer"], None] | None) -> None:
        cfg = self.cfg
        total = cfg.steps
        while self.step < total and self.stopped is None:
            self.train_step()
            loss = None
            if self.step % cfg.log_every == 0 or self.step == total:
                loss = self.read_loss()
                if self._stop_request:
                    self.stopped = "callback"
            if self.stopper is not None and self.step % cfg.eval_every == 0:
                value = self.evaluate()
                self.eval_curve.append([self.step, value])
                if self.stopper.update(value):
                    self.stopped = "early_stop"
                    if loss is None:
                        loss = self.read_loss()
            if callback is not None:
                if callback(self.step, total, loss, self.current_vectors()) is True:
                    self._stop_request = True
                    if not self.dist.enabled:
                        self.stopped = "callback"
            if on_step is not None:
                on_step(self)
        if self._loss_count:
            self.read_loss()

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs (tensors on CPU)."""
        return {
            "step": self.step,
            "rows": {k: torch.cat([p.detach() for p in v]).cpu() for k, v in self.rows.items()},
            "image_rows": {k: torch.cat([p.detach() for p in v]).cpu() for k, v in self.image_rows.items() if v},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self._scaler.state_dict() if self._scaler else None,
            "rng": {"host": self.host_gen.get_state(), "noise": self.noise_gen.get_state()},
            "loss_acc": self._loss_acc.detach().cpu(),
            "loss_count": self._loss_count,
            "loss_curve": [list(x) for x in self.loss_curve],
            "eval_curve": [list(x) for x in self.eval_curve],
            "dvar": self.stopper.state_dict() if self.stopper else None,
            "train_seconds": self.train_seconds,
            # where the run started (init_search may have moved it from the initializer): the reg target and the
            # "did it move" check read it, and a resumed run must not search again
            "start": {"vectors": {k: v.detach().cpu() for k, v in self.init_vectors.items()},
                      "choice": self.init_choice.to_dict() if self.init_choice is not None else None},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` output (of a run with the same options)."""
        with torch.no_grad():
            for k, saved in state["rows"].items():
                for i, p in enumerate(self.rows[k]):
                    p.copy_(saved[i:i + 1])
            for k, saved in state.get("image_rows", {}).items():
                for i, p in enumerate(self.image_rows[k]):
                    p.copy_(saved[i:i + 1])
        self.step = int(state["step"])
        self._activate(schedule.active_vectors(self.step, self.cfg.num_vectors, self.cfg.progressive))
        self.optimizer.load_state_dict(state["optimizer"])
        if self._scaler and state.get("scaler"):
            self._scaler.load_state_dict(state["scaler"])
        self.host_gen.set_state(state["rng"]["host"])
        self.noise_gen.set_state(state["rng"]["noise"])
        self._loss_acc = state["loss_acc"].to(self.device)
        self._loss_count = int(state["loss_count"])
        self.loss_curve = [list(x) for x in state["loss_curve"]]
        self.eval_curve = [list(x) for x in state["eval_curve"]]
        if self.stopper is not None and state.get("dvar"):
            self.stopper.load_state_dict(state["dvar"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        start = state.get("start")
        if start is not None:
            self.init_vectors = {k: v.float().cpu() for k, v in start["vectors"].items()}
            self._reg_target = {k: v.to(self.device) for k, v in self.init_vectors.items()}
            if start["choice"] is not None:
                self.init_choice = restored_choice(self, start["choice"])  # says again where the run started

    # --------------------------------------------------------------- results
    def result_vectors(self) -> dict[str, torch.Tensor]:
        """The learned vectors (active rows; per-image tokens dropped), fp32 on CPU."""
        return {k: v.float().cpu().clone() for k, v in self.current_vectors().items()}

    def preview_prompt(self, prompt: str) -> str:
        """Expand ``prompt`` for the current vector count (the concept must still be spliced)."""
        return self._expand(prompt, {self.token: self._active})

    def close(self) -> None:
        """Take the learned rows out of the model again (the tokenizer keeps the added names)."""
        for name in self.names[: self._active] + self.image_tokens:
            self.bb.unload_concept(name)
        self._active = 0
        self._tables.clear()
        if self._vae_parked:
            self.bb.vae.to(self.device)
            self._vae_parked = False
        if self.cfg.compile != "none":
            torch._dynamo.reset()  # drop compiled graphs that captured this run's parameters


__all__ = ["Callback", "TrainError", "Trainer"]
