"""The method registry: what ``ticraft bench --methods plain,progressive,…`` can run.

A :class:`Method` is a name, a one-line description and a runner: ``run(ctx)`` trains on ``ctx.images`` and yields a
:class:`Snapshot` (the concept as learned so far, and the training seconds spent) at every ladder point of
``ctx.ladder`` (counted in seen samples). New methods (issue 16's per-layer tokens, direction-only inversion) plug in
with :func:`register_method`; most are ticraft trainer options, made into a runner by :func:`trainer_method`::

    register_method(trainer_method("directional", "direction-only vectors", method="directional"))

Seconds are the training process's **CPU seconds** inside training steps (with one thread: the wall time of an idle
core; other jobs on the machine do not inflate them). Model loading and latent caching are start-up, recorded apart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ticraft.bench.suite import BenchError

if TYPE_CHECKING:
    from ticraft.bench.suite import SuiteConcept
    from ticraft.concept import Concept
    from ticraft.models.backbone import Backbone
    from ticraft.training.data import TrainImage


@dataclass
class Snapshot:
    """The concept after ``samples`` seen samples, ``seconds`` CPU seconds of training (``wall`` for the record)."""

    samples: int
    seconds: float
    wall: float
    concept: "Concept"


@dataclass
class RunContext:
    """Everything a runner needs; runners record extras (start-up seconds, DVAR's stop) in ``events``."""

    backbone: "Backbone"
    concept: "SuiteConcept"
    images: list["TrainImage"]
    token: str
    ladder: list[int]
    seed: int = 0
    dvar: bool = False
    events: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[RunContext], Iterator[Snapshot]]


@dataclass(frozen=True)
class Method:
    """A named way to learn a concept; ``samples_per_step`` lets the ladder be checked before anything runs."""

    name: str
    description: str
    run: Runner
    samples_per_step: int
    reference: bool = False
    options: dict[str, Any] | None = None
    """A trainer method's resolved options (TrainConfig fields that do not depend on the run): a resumed bench
    reuses a recorded run only when they still match (a changed default preset is a different method)."""
    min_steps: int = 1
    """The fewest steps a run of it can have (a vector added half-way needs two)."""


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add (or replace) a method under its name; returns it."""
    METHODS[method.name] = method
    return method


def get_methods(names: str | list[str]) -> list[Method]:
    """Methods by name (comma-separated string or list); an unknown name raises one :class:`BenchError`."""
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not wanted:
        raise BenchError(f"no method given; choose from {', '.join(METHODS)}")
    unknown = [n for n in wanted if n not in METHODS]
    if unknown:
        raise BenchError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    return [METHODS[n] for n in dict.fromkeys(wanted)]


def check_ladder(ladder: list[int], methods: list[Method]) -> list[int]:
    """A ladder is increasing positive sample counts, each a whole number of every method's steps."""
    if not ladder:
        raise BenchError("the ladder is empty: give sample counts such as 256,512,1024")
    if any(not isinstance(x, int) or x <= 0 for x in ladder) or sorted(set(ladder)) != list(ladder):
        raise BenchError(f"the ladder must be strictly increasing positive sample counts, got {ladder}")
    for m in methods:
        bad = [x for x in ladder if x % m.samples_per_step]
        if bad:
            raise BenchError(f"ladder point {bad[0]} is not a whole number of {m.name}'s steps "
                             f"({m.samples_per_step} samples each)")
        if ladder[-1] < m.min_steps * m.samples_per_step:
            raise BenchError(f"{m.name} needs at least {m.min_steps} steps: the ladder's top must be at least "
                             f"{m.min_steps * m.samples_per_step} samples, got {ladder[-1]}")
    return list(ladder)


class _Clock:
    """CPU and wall seconds accumulated only while inside ``with clock:``."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0

    def __enter__(self) -> "_Clock":
        self._c, self._w = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu += time.process_time() - self._c
        self.wall += time.perf_counter() - self._w


def trainer_method(name: str, description: str, preset: str = "fast", *, average: float = 0.0,
                   **options: Any) -> Method:
    """A method that is ticraft's trainer with a preset and options (run length = the ladder's top point).

    ``average`` > 0 judges an exponential moving average of the vectors (decay ``average`` per step, warmed up as
    ``min(average, (1 + step) / (10 + step))``) instead of the last step's: an experiment, not a trainer option.
    """
    from ticraft.training.config import TrainConfig

    static = {k: v for k, v in options.items() if not callable(v)}  # callables depend on the run's length
    resolved = TrainConfig.from_options(preset=preset, **static)
    sps = resolved.samples_per_step
    per_run = {"steps", "seed", "captions", "previews", *(k for k, v in options.items() if callable(v))}
    fixed = {k: v for k, v in json.loads(json.dumps(resolved.to_dict(), default=str)).items() if k not in per_run}

    def run(ctx: RunContext) -> Iterator[Snapshot]:
        from ticraft.concept import Concept
        from ticraft.training.early_stop import DVAR
        from ticraft.training.methods import method_trainer  # plain | xti | directional (issue 16)

        opts = dict(options)
        if callable(opts.get("progressive")):  # e.g. "add a vector half-way through the run"
            opts["progressive"] = opts["progressive"](ctx.ladder[-1] // sps)
        # the run lasts the ladder's top, unless the method fixes its own length (a schedule that decays over N steps)
        steps = opts.pop("steps", None) or ctx.ladder[-1] // sps
        if steps * sps < ctx.ladder[-1]:
            raise BenchError(f"{name} runs {steps} steps ({steps * sps} samples), short of the ladder's top "
                             f"{ctx.ladder[-1]}")
        cfg = TrainConfig.from_options(preset=preset, steps=steps, seed=ctx.seed,
                                       captions=ctx.concept.kind == "style", previews=0, **opts)
        setup = _Clock()
        with setup:
            trainer = method_trainer(ctx.backbone, ctx.images, ctx.token, ctx.concept.init, cfg)
        ctx.events["startup_seconds"] = setup.cpu
        ctx.events["config"] = {**cfg.to_dict(), **({"average": average} if average else {})}
        dvar = DVAR(cfg.early_stop_window, cfg.early_stop_threshold) if ctx.dvar else None
        clock = _Clock()
        mean: dict[str, Any] | None = None
        try:
            points = set(ctx.ladder)
            while trainer.step < cfg.steps and trainer.step * sps < ctx.ladder[-1]:
                with clock:
                    trainer.train_step()
                    if average:
                        now = trainer.result_vectors()
                        d = min(average, (1 + trainer.step) / (10 + trainer.step))
                        mean = now if mean is None else {k: d * mean[k] + (1 - d) * v for k, v in now.items()}
                samples = trainer.step * sps
                if dvar is not None and trainer.step % cfg.eval_every == 0 and "dvar_stop" not in ctx.events:
                    if dvar.update(trainer.evaluate()):  # not timed: it is the stopping rule's own cost
                        ctx.events["dvar_stop"] = samples
                if samples in points:
                    vectors = trainer.result_vectors() if mean is None else {k: v.clone() for k, v in mean.items()}
                    layout = trainer.method_meta() if hasattr(trainer, "method_meta") else {}  # xti layers, norm
                    yield Snapshot(samples, clock.cpu, clock.wall,
                                   Concept(ctx.token, vectors, family=ctx.backbone.family, meta=layout))
        finally:
            trainer.close()

    # a vector added part-way (progressive as a function of the run's length) needs a second step to join at
    grows = callable(options.get("progressive"))
    if average:
        fixed["average"] = average  # not a TrainConfig field: recorded so a resumed bench tells the runs apart
    return Method(name, description, run, sps, options=fixed, min_steps=2 if grows else 1)


def changed_options(method: Method, run: dict[str, Any]) -> list[str]:
    """The options ``method`` now resolves differently from a recorded ``run`` (``[]``: it may be reused).

    A field the recorded config lacks was added later; the run had its default then.
    """
    from ticraft.training.config import TrainConfig

    if not method.options:
        return []
    recorded, default = run.get("config") or {}, TrainConfig().to_dict()
    old = {k: recorded.get(k, default.get(k)) for k in method.options}
    return [f"{k}: {old[k]!r} → {v!r}" for k, v in method.options.items()
            if json.loads(json.dumps(old[k], default=str)) != v]


def _progressive_half(steps: int) -> int:
    return max(1, steps // 2)


def _register_builtin() -> None:
    from ticraft.bench.reference import reference_method

    register_method(trainer_method("plain", "ticraft's default preset (fast: three vectors, their start searched "
                                              "from the pictures)"))
    # The default learned one vector until the three-seed comparison (RESULTS.md); the methods below that were
    # measured against it say num_vectors=1, so their recorded rows stay runnable and their names keep their meaning.
    register_method(trainer_method("one-vector", "the default preset with one vector (the default before three)",
                                   num_vectors=1))
    register_method(trainer_method("multi3", "three vectors (now the default preset's count)", num_vectors=3))
    register_method(trainer_method("multi3-earlier-t", "three vectors, timesteps t = T·u² (timestep_bias earlier)",
                                   num_vectors=3, timestep_bias="earlier"))
    register_method(trainer_method("batch-8", "the default preset at batch 8 (twice the updates per sample)",
                                   batch_size=8))
    register_method(trainer_method("ema", "the default preset judged on a moving average of its vectors (decay 0.9 "
                                          "per step)", average=0.9))
    register_method(trainer_method("multi2", "two vectors", num_vectors=2))
    register_method(trainer_method("progressive", "two vectors, the second added half-way", num_vectors=2,
                                   progressive=_progressive_half))
    register_method(trainer_method("reg", "one vector pulled towards its start (reg 0.01)", reg_weight=0.01,
                                   num_vectors=1))
    register_method(trainer_method("paper", "the paper's recipe (batch 8, lr 5e-3 × 8, AdamW, constant)",
                                   preset="paper"))
    register_method(trainer_method("fast-v0", "the fast preset before issue 15's retune (400 steps × batch 16, "
                                              "lr 5e-3, cosine, warm-up 10), judged along its run", **FAST_V0,
                                   num_vectors=1))
    # issue 15's rejected batch-4 retunes, kept so their rows stay runnable
    register_method(trainer_method("fast-b4", "batch 4, lr 2.5e-3 (a rejected retune: over-fits the composites)",
                                   batch_size=4, lr=2.5e-3, num_vectors=1))
    register_method(trainer_method("fast-lr5e-3", "batch 4, lr 5e-3 (a rejected retune: over-fits the composites)",
                                   batch_size=4, lr=5e-3, num_vectors=1))
    register_method(reference_method())
    # the start chosen from the pictures (ticraft/training/init_search.py) instead of the suite's generic "shape",
    # and the default preset without it, so the rows recorded before init search stay runnable
    register_method(trainer_method("init-search", "one vector started from the vocabulary words that denoise the "
                                                  "pictures best (init_search 3)", init_search=3,
                                   num_vectors=1))
    register_method(trainer_method("given-init", "one vector started from the given initializer as it is "
                                                 "(init_search 0)", init_search=0, num_vectors=1))
    # timesteps leaning to the low-noise end (tried as the default, not adopted: RESULTS.md)
    register_method(trainer_method("earlier-t", "one vector with timesteps t = T·u², leaning to the low-noise end "
                                                "(timestep_bias earlier)", timestep_bias="earlier", num_vectors=1))
    # timesteps leaning to the high-noise end, three vectors (the default otherwise): the hidden object got good sooner
    # on its worst seeds, but fewer composites did over three seeds of the suite (not adopted: RESULTS.md)
    register_method(trainer_method("later-t", "three vectors with timesteps t = T·(1 − (1 − u)²), leaning to the "
                                              "high-noise end (timestep_bias later)", timestep_bias="later"))
    register_method(trainer_method("no-warmup", "one vector without the preset's 10 warm-up steps", warmup_steps=0,
                                   num_vectors=1))
    # issue 16: per-layer tokens and direction-only vectors, on the default preset otherwise (one vector each)
    register_method(trainer_method("xti", "one vector per UNet cross-attention layer (P+/XTI)", method="xti",
                                   num_vectors=1))
    register_method(trainer_method("directional", "one vector of the vocabulary's median norm, direction learned",
                                   method="directional", num_vectors=1))
    # what `--method xti` / `--method directional` give with the default preset since it learns three vectors
    register_method(trainer_method("xti-3", "three vectors per UNet cross-attention layer (the default preset with "
                                            "--method xti)", method="xti"))
    register_method(trainer_method("directional-3", "three vectors of the vocabulary's median norm, directions "
                                                    "learned (the default preset with --method directional)",
                                   method="directional"))


#: The fast preset's values before the retune, so the before/after comparison stays runnable.
FAST_V0: dict[str, Any] = {"steps": 400, "batch_size": 16, "grad_accum": 1, "lr": 5e-3, "scale_lr": False,
                           "lr_schedule": "cosine", "warmup_steps": 10, "optimizer": "adam", "weight_decay": 0.0}

_register_builtin()
