"""Scheduler names: ticraft's short names for diffusers' solvers, built from a model's own scheduler config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ticraft.generate.errors import SampleError
from ticraft.generate.pngmeta import SAMPLER_LABELS

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

__all__ = ["SCHEDULERS", "scheduler_class", "make_scheduler", "scheduler_name_of", "loop_length"]

#: Scheduler names → (diffusers class, settings forced on top of the model's scheduler config).
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    # A1111's "DPM++ 2M SDE": the multistep solver's SDE variant needs no torchsde.
    "dpm++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "lms": ("LMSDiscreteScheduler", {}),  # needs scipy
    "flow_euler": ("FlowMatchEulerDiscreteScheduler", {}),  # SD3/Flux (rectified flow) only
}
assert set(SCHEDULERS) == set(SAMPLER_LABELS)


def scheduler_class(name: str | None) -> Any:
    """The diffusers class for a scheduler name (clear error listing names when unknown)."""
    if name not in SCHEDULERS:
        raise SampleError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    if name == "lms":
        try:
            import scipy  # noqa: F401
        except ImportError:
            raise SampleError("the lms scheduler needs scipy (pip install scipy); or pick another scheduler") from None
    import diffusers

    return getattr(diffusers, SCHEDULERS[name][0])


def make_scheduler(backbone: "Backbone", name: str) -> Any:
    """A fresh scheduler ``name`` built from the model's own scheduler config.

    ``from_config`` keeps what the model was trained with — prediction type (epsilon / v),
    zero-terminal-SNR rescaling, timestep spacing, beta schedule — and only the solver changes.
    """
    from ticraft.models.mmdit import scheduler_mismatch

    cls = scheduler_class(name)
    if mismatch := scheduler_mismatch(backbone, name):  # flow models take flow_euler, the others anything else
        raise SampleError(mismatch)
    return cls.from_config(backbone.scheduler.config, **SCHEDULERS[name][1])


def scheduler_name_of(scheduler: Any) -> str | None:
    """The ticraft name of an existing scheduler object (``None`` when it has none)."""
    cname = type(scheduler).__name__
    if cname == "DPMSolverMultistepScheduler":
        algo = getattr(scheduler.config, "algorithm_type", "dpmsolver++")
        return "dpm++_sde" if algo.startswith("sde") else "dpm++"
    return next((n for n, (c, _) in SCHEDULERS.items() if c == cname), None)



def loop_length(scheduler: Any, steps: int, strength: float = 1.0) -> int:
    """How many denoising iterations a pipeline call will run (Heun/PNDM-like solvers differ from ``steps``)."""
    # Flux's dynamic shift needs `mu` (it moves the timesteps, never their number)
    dynamic = bool(getattr(scheduler.config, "use_dynamic_shifting", False))
    scheduler.set_timesteps(steps, **({"mu": 0.0} if dynamic else {}))
    n = len(scheduler.timesteps)
    if strength < 1.0:
        order = getattr(scheduler, "order", 1)
        init = min(int(steps * strength), steps)
        n = len(scheduler.timesteps[max(steps - init, 0) * order:])
    return n
