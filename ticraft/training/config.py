"""Training options: :class:`TrainConfig` and the named presets.

Every knob of the trainer is a field here, so that a run is fully described by one JSON-able dict
(stored in the concept's metadata and in checkpoints). Presets are starting points; any field can be
overridden by name::

    >>> cfg = TrainConfig.from_options(preset="paper", steps=100)
    >>> cfg.steps, cfg.effective_lr
    (100, 0.04)
    >>> TrainConfig.from_options(stepz=3)
    Traceback (most recent call last):
    ...
    ticraft.training.config.ConfigError: unknown training option 'stepz' (did you mean 'steps'?)

Batch semantics: ``batch_size`` is the number of (image, t, ε) samples per forward pass over *all*
processes together (a global batch), and ``grad_accum`` forward passes make one optimiser step. A run
is therefore the same whether it uses one process or several.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ticraft.errors import TicraftError


class ConfigError(TicraftError):
    """A training option is unknown or out of range."""


MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
WEIGHT_DTYPES = ("auto", "fp32", "bf16", "fp16")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
LR_SCHEDULES = ("constant", "cosine", "linear")
OPTIMIZERS = ("adam", "adamw")
ENCODER_CHOICES = ("all", "t5", "clip")
METHODS = ("plain", "xti", "directional")
WEIGHTING_SCHEMES = ("auto", "none", "logit_normal", "mode", "sigma_sqrt", "cosmap")
TIMESTEP_BIASES = ("none", "earlier", "later")
# settings read only by DVAR early stopping: set without it they would do nothing
_DVAR_FIELDS = ("early_stop_window", "early_stop_threshold", "eval_every", "eval_samples")


@dataclass
class TrainConfig:
    """All options of one inversion run (see the module docstring for batch semantics)."""

    # ---- what is learned
    num_vectors: int = 1
    """N, vectors per text encoder."""
    method: str = "plain"
    """plain | xti (one vector set per UNet cross-attention layer, P+) | directional (fixed norm, learned
    direction); see ticraft/training/xti.py and directional.py."""
    norm: float | None = None
    """directional: the vectors' L2 norm (``None`` = the vocabulary's median row norm, per encoder)."""
    style: bool = False
    """Use style templates ("a painting in the style of {}") instead of object templates."""
    captions: bool = False
    """Use each image's caption file (``img.txt`` next to ``img.png``) as its prompt."""
    mask: bool = False
    """Weight the loss by the images' alpha channel (transparent pixels do not count)."""
    per_image: bool = False
    """Learn one extra token per image ("a photo of S* with S_i"); the extra tokens are dropped at the end."""
    progressive: int | None = None
    """Start with one vector and add one every K steps (the paper used 2000 and 4000)."""
    reg_weight: float = 0.0
    """L2 pull of the vectors towards their start (the initializer's rows, or what ``init_search`` chose)."""
    init_search: int = 0
    """Choose the start from the pictures: up to this many vocabulary words whose rows denoise the training
    pictures best, searched from the given initializer at the first step (0 = start from the initializer as given;
    see ticraft/training/init_search.py)."""
    encoders: str = "all"
    """SD3/Flux: learn vectors in ``all`` text encoders, only ``t5`` or only ``clip`` (the rest keep the init)."""
    timestep_bias: str = "none"
    """Which timesteps SD-1.x/2.x/XL and the toy model train on: ``none`` (uniform, as the paper and diffusers) |
    ``earlier`` (t = T·u², leaning to the low-noise end, where texture and exact colour are decided) | ``later``
    (t = T·(1 − (1 − u)²)). SD3/Flux draw by ``weighting_scheme`` and refuse a bias with one error. The names are
    diffusers' ``--timestep_bias_strategy``'s; the densities are ours (schedule.draw_timesteps). Measured on the toy
    suite only, and not adopted by a preset (RESULTS.md)."""
    weighting_scheme: str = "auto"
    """SD3/Flux timestep density: auto (SD3 logit_normal, Flux none, as diffusers' scripts) | none |
    logit_normal | mode | sigma_sqrt | cosmap (see ticraft/training/flow.py)."""

    # ---- optimisation
    steps: int = 500
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 5e-3
    scale_lr: bool = False
    """Multiply ``lr`` by ``batch_size * grad_accum`` (what the paper's LDM code and diffusers' --scale_lr do)."""
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float | None = None

    # ---- data
    resolution: int | None = None
    """Training size in pixels; ``None`` = the model's native size (UNet sample size × VAE factor)."""
    flip: bool = True
    """Cache a horizontally flipped variant of every image (diffusers' flip_p=0.5)."""
    crops: int = 0
    """Extra random-crop variants per image (zoomed 1–1.25×), cached like the flips."""
    latent_sample: bool = True
    """Sample the VAE posterior each step (as the paper and diffusers do) instead of using its mean."""
    seed: int = 0

    # ---- bookkeeping
    log_every: int = 10
    """Read the loss (a host sync on GPU) every K steps; the callback gets ``loss=None`` in between."""
    save_every: int = 0
    preview_every: int = 0
    previews: int = 4
    preview_steps: int = 25
    early_stop: bool = False
    early_stop_window: int = 20
    """DVAR window, in evaluations."""
    early_stop_threshold: float = 0.15
    """Stop when var(last window) / var(all evaluations) falls below this."""
    eval_every: int = 5
    eval_samples: int = 8

    # ---- speed (CPU defaults: fp32, eager)
    device: str = "auto"
    mixed_precision: str = "auto"
    """``auto`` = bf16 autocast on CUDA, off on CPU."""
    weight_dtype: str = "auto"
    """dtype of the frozen weights; ``auto`` follows ``mixed_precision`` (bf16 weights under bf16)."""
    compile: str = "none"
    """``torch.compile`` the loss function: none | default | reduce-overhead (CUDA graphs) | max-autotune."""
    compile_backend: str = "inductor"
    """The torch.compile backend (``aot_eager`` checks tracing quickly on a CPU)."""
    channels_last: bool = False
    fused_optimizer: bool | None = None
    """``None`` = fused Adam on CUDA, the default implementation elsewhere."""
    gradient_checkpointing: bool = False
    deterministic: bool = False
    """Bitwise-repeatable CPU runs and exact resume (same thread count): deterministic algorithms for the run
    (:mod:`ticraft.training.exact` says what is exact under which settings). Off: runs agree to ~1e-8."""
    dedup_text: bool = True
    """Run the text encoder once per distinct prompt in a batch."""
    offload_vae: bool = True
    """On CUDA, move the frozen VAE to the CPU once the latents are cached (previews bring it back for a moment)."""

    preset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes carried into the metadata (e.g. by benchmarks)."""

    # ------------------------------------------------------------------ derived
    @property
    def samples_per_step(self) -> int:
        return self.batch_size * self.grad_accum

    @property
    def effective_lr(self) -> float:
        lr = self.lr * self.samples_per_step if self.scale_lr else self.lr
        return float(f"{lr:.12g}")  # keep 5e-3 * 8 == 0.04 printable

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ---------------------------------------------------------------- building
    @classmethod
    def from_options(cls, preset: str | None = None, **options: Any) -> "TrainConfig":
        """A config from a preset name (default ``fast``) with fields overridden by keyword."""
        base = preset_config(preset or "fast")
        return base.with_options(**options)

    def with_options(self, **options: Any) -> "TrainConfig":
        """A copy with the given fields replaced; unknown names raise.

        ``None`` keeps the current value of a field that cannot be ``None`` (``steps=None``: the flag was not
        given); for a field that can (``progressive``, ``max_grad_norm``, ``norm``, ``resolution``, …) it is the
        value, so ``progressive=None`` turns progressive extension off instead of being silently dropped.

        >>> cfg = TrainConfig(num_vectors=2, progressive=10, steps=100)
        >>> new = cfg.with_options(progressive=None, steps=None)
        >>> new.progressive, new.steps
        (None, 100)
        """
        cfg = replace(self, **self.given(options))
        cfg.validate()
        return cfg

    @classmethod
    def given(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The options that :meth:`with_options` applies (the ones given explicitly); unknown names raise.

        A resumed run takes every other field from its checkpoint (:func:`ticraft.training.checkpoint.resume_config`).

        >>> TrainConfig.given({"steps": None, "lr": 0.01, "progressive": None})
        {'lr': 0.01, 'progressive': None}
        """
        names = {f.name for f in fields(cls)}
        nullable = {f.name for f in fields(cls) if "None" in str(f.type)} - {"preset"}
        for key in options:
            if key not in names:
                close = difflib.get_close_matches(key, sorted(names), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown training option {key!r}{hint}")
        return {k: v for k, v in options.items() if v is not None or k in nullable}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        def positive(name: str, allow_zero: bool = False) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
                raise ConfigError(f"{name} must be an integer ≥ {0 if allow_zero else 1}, got {value!r}")

        for name in ("num_vectors", "steps", "batch_size", "grad_accum", "log_every", "preview_steps",
                     "early_stop_window", "eval_every", "eval_samples"):
            positive(name)
        for name in ("warmup_steps", "crops", "save_every", "preview_every", "previews", "seed"):
            positive(name, allow_zero=True)
        if self.progressive is not None:
            positive("progressive")
            if self.num_vectors < 2:
                raise ConfigError("progressive extension needs num_vectors ≥ 2 (it starts at 1 and grows to N)")
            last = (self.num_vectors - 1) * self.progressive  # the step that switches the last vector on
            if last >= self.steps:
                most = (self.steps - 1) // (self.num_vectors - 1)
                ends = min(self.num_vectors, 1 + (self.steps - 1) // self.progressive)
                raise ConfigError(
                    f"progressive {self.progressive} switches the last of {self.num_vectors} vectors on at step "
                    f"{last}, but the run has {self.steps} steps (the word would end with {ends}); use progressive "
                    f"≤ {most} or more steps" if most >= 1 else
                    f"{self.steps} steps are too few to grow to {self.num_vectors} vectors; give more steps")
        if self.preview_every and not self.previews:
            raise ConfigError(f"preview_every {self.preview_every} with previews 0 would render nothing: give "
                              "previews ≥ 1 or leave preview_every out")
        if self.compile == "none" and self.compile_backend != "inductor":
            raise ConfigError(f"compile_backend {self.compile_backend!r} applies only with compile (e.g. "
                              "--compile default); without it nothing is compiled")
        if not self.early_stop_threshold > 0:  # DVAR stops when a variance ratio (≥ 0) falls *below* it
            raise ConfigError(f"early_stop_threshold must be > 0, got {self.early_stop_threshold}")
        if not self.early_stop and (unused := [f.name for f in fields(self) if f.name in _DVAR_FIELDS
                                               and getattr(self, f.name) != f.default]):
            raise ConfigError(f"{', '.join(unused)} only apply with early_stop (DVAR): turn it on (--early-stop) "
                              "or leave them out")
        if self.early_stop and (first := (self.early_stop_window + 1) * self.eval_every) >= self.steps:
            # DVAR needs more than `window` evaluations before its ratio exists; a flag that cannot act is refused
            room = (self.steps - 1) // self.eval_every - 1
            raise ConfigError(
                f"early_stop cannot stop this {self.steps}-step run: DVAR compares the last {self.early_stop_window} "
                f"evaluations (one every {self.eval_every} steps) with all of them, so it can first stop at step "
                f"{first}; give more steps" + (f" or early_stop_window ≤ {room}" if room >= 2 else ""))
        if self.resolution is not None:
            positive("resolution")
            if self.resolution % 8:
                raise ConfigError(f"resolution must be a multiple of 8, got {self.resolution}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.reg_weight < 0 or self.weight_decay < 0:
            raise ConfigError("reg_weight and weight_decay must be ≥ 0")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError("max_grad_norm must be > 0 (or None)")
        if self.norm is not None and (self.method != "directional" or not self.norm > 0):
            raise ConfigError(f"norm applies to method directional and must be > 0; got norm={self.norm!r} "
                              f"with method {self.method!r}")
        if self.init_search < 0:
            raise ConfigError(f"init_search is a number of words (0 = off), got {self.init_search}")
        if self.method == "xti" and self.progressive is not None:
            raise ConfigError("progressive extension is not supported with method xti (every layer learns N vectors)")
        if self.style and self.captions:
            raise ConfigError("choose style templates or caption files, not both")
        for name, allowed in (("mixed_precision", MIXED_PRECISION), ("weight_dtype", WEIGHT_DTYPES),
                              ("compile", COMPILE_MODES), ("lr_schedule", LR_SCHEDULES), ("optimizer", OPTIMIZERS),
                              ("encoders", ENCODER_CHOICES), ("weighting_scheme", WEIGHTING_SCHEMES),
                              ("method", METHODS), ("timestep_bias", TIMESTEP_BIASES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")


# ---------------------------------------------------------------------- presets
def _paper() -> TrainConfig:
    # Gal et al. 2022 / rinongal/textual_inversion (LDM code): AdamW, base lr 5e-3 scaled by GPUs × batch
    # (2 × 4 → 0.04), constant rate, 5000 steps, random flips, posterior samples.
    return TrainConfig(steps=5000, batch_size=8, lr=5e-3, scale_lr=True, lr_schedule="constant",
                       optimizer="adamw", weight_decay=1e-2, preset="paper")


def _diffusers() -> TrainConfig:
    # diffusers examples/textual_inversion README: --train_batch_size=1 --gradient_accumulation_steps=4
    # --max_train_steps=3000 --learning_rate=5e-4 --scale_lr --lr_scheduler=constant (AdamW, wd 1e-2).
    # Its --resolution=512 is SD-1.5's native size; resolution=None means the native size of any model.
    return TrainConfig(steps=3000, batch_size=1, grad_accum=4, lr=5e-4, scale_lr=True, lr_schedule="constant",
                       optimizer="adamw", weight_decay=1e-2, preset="diffusers")


def _fast() -> TrainConfig:
    # Ours: cached latents and input-only gradients make a sample cheap, Adam. Retuned on the concept suite (issue 15,
    # `ticraft bench`; before/after in benchmarks/RESULTS.md): the old 400 steps × 16 with cosine decay became 64
    # steps at a constant rate — on the suite's first six concepts the old run was good on 5 of 6 by 1,024 samples and
    # the rest of its 6,400 was spent past that point. Batch 4 (four times the updates per sample) was tried on the
    # full suite and rejected: it got the hidden words good sooner (128 samples instead of 256–512) but over-fitted the
    # composite concepts (reconstruction up, edits no longer obeyed: 2 of those 6 good instead of 5, at lr 2.5e-3 or
    # 5e-3). Constant, so stopping anywhere (DVAR, a callback, a shorter --steps) gives what a shorter run would.
    # init_search 3: the start is chosen from the pictures (training/init_search.py). On the full suite (18 concepts,
    # started from the generic word "shape") it reached the good point sooner on 6 of the 8 concepts both runs got
    # good (hidden object: 128 samples instead of 512; median 1.4x fewer seconds, search included), the suite's mean
    # faithful editability at 256 samples that the given start reached at 1,024, and the same quality at the end of
    # the run; it got one concept fewer good (c03, 8 of 18 instead of 9).
    # Timesteps stay uniform (timestep_bias none, as the paper and diffusers). t = T·u² (earlier) was tried on the full
    # suite (benchmarks/RESULTS.md, bench method earlier-t): seed 0 got 10 of 18 good instead of 8 (a suite median of
    # 20.8 CPU s), but seed 1 got 7 of 18 and the hidden object later (1,024 samples instead of 512 uniformly), so the
    # gain did not replicate and the default keeps the standard draw; --set timestep_bias=earlier opts in. Over three
    # seeds: 8.0 against 7.3 concepts good per seed, 5 concept × seed cells won and 3 lost (sign test p = 0.73).
    # t = T·(1 − (1 − u)²) (later, bench method later-t, three vectors) got the hidden object good by 512 samples on
    # every seed tried, but 26 of 54 concept × seed cells good against 32 (1 won, 7 lost): not adopted either.
    # Three vectors (num_vectors 3; before: 1). Over seeds 0, 1, 2 of the full suite three vectors got 10, 10 and 12 of
    # 18 concepts good against one vector's 8, 7 and 7 — good where one vector was not on 10 concept × seed cells and
    # never the reverse (sign test p = 0.002) — and a suite median of 768 samples (22.8 CPU s) where one vector has
    # none. A step costs the same (the word is 3 of the prompt's 75 tokens); A1111, ComfyUI and diffusers read the
    # file. --vectors 1 gives the one-vector word (bench method one-vector).
    # Batch 16 stays: batch 8 (bench method batch-8) looked faster on the hidden object over seeds 0-2, but over five
    # seeds it got 51 of 90 concept x seed cells good against 55 and a pooled suite median of 25.4 CPU s against 16.9
    # (benchmarks/RESULTS.md, "over seeds: batch 8 against 16").
    return TrainConfig(steps=64, batch_size=16, lr=5e-3, lr_schedule="constant", warmup_steps=10,
                       optimizer="adam", init_search=3, num_vectors=3, preset="fast")


PRESETS: dict[str, Any] = {"fast": _fast, "paper": _paper, "diffusers": _diffusers}


def show_value(value: Any) -> str:
    """A field's value as ``--set key=value`` spells it (``none``, ``true``/``false``, else ``str``).

    >>> show_value(None), show_value(True), show_value(5e-3)
    ('none', 'true', '0.005')
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def preset_config(name: str) -> TrainConfig:
    """A fresh :class:`TrainConfig` for a preset name (``fast``, ``paper`` or ``diffusers``)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}") from None
