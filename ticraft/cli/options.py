"""The CLI's shared options, declared once: every command that takes ``--model`` takes the same ``--model``.

Fixed choices are Enums (Typer shows and checks them); open-ended ones (``--device cuda:1``) are checked by
a callback with one clear message. Only typer/click at the top: importing this module must stay cheap
(``ticraft --help`` imports every command module).

Drift this module removed (each command used to declare its own copy):

* ``--device``: ``train`` took only auto|cpu|cuda and ignored ``ticraft config set device``; the generating
  and analysis commands took any string. Now every command takes auto, cpu, mps, cuda or cuda:N, checked
  when parsed, and falls back to the configured device, then auto.
* ``--dtype``: only ``sample``/``compose``/``edit`` had it; the analysis commands and ``train`` (frozen
  weights' dtype) have it too now.
* ``--guidance``: the analysis commands lacked the ``--cfg`` alias that ``sample`` had.
* ``--seed``: ``train`` and ``demo`` lacked the ``-s`` short form.
* ``--scheduler``, ``--method``, ``--mode``, ``--match``, ``--metric``, ``--words``, ``--judge``/``--scorer``:
  plain strings checked late (after the model had loaded) or not at all; now Enums checked at once.
* ``eval --scorer`` and ``probe --judge`` are the same choice: both commands accept both names.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


# ----------------------------------------------------------------------------------------------------- choices
class Dtype(str, Enum):
    """Weight dtype of the loaded model (auto: bf16, else fp16, on CUDA; fp32 elsewhere)."""

    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class Scheduler(str, Enum):
    """Sampler names (the keys of ``ticraft.generate.sample.SCHEDULERS``; a test keeps them equal)."""

    ddim = "ddim"
    ddpm = "ddpm"
    euler = "euler"
    euler_a = "euler_a"
    heun = "heun"
    dpmpp = "dpm++"
    dpmpp_sde = "dpm++_sde"
    unipc = "unipc"
    pndm = "pndm"
    lms = "lms"
    flow_euler = "flow_euler"  # SD3/Flux only


class Preset(str, Enum):
    """Training recipes (``ticraft.training.config.PRESETS``)."""

    fast = "fast"
    paper = "paper"
    diffusers = "diffusers"


class Precision(str, Enum):
    auto = "auto"
    no = "no"
    bf16 = "bf16"
    fp16 = "fp16"


class Compile(str, Enum):
    none = "none"
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"


class LrSchedule(str, Enum):
    constant = "constant"
    cosine = "cosine"
    linear = "linear"


class Optimizer(str, Enum):
    adam = "adam"
    adamw = "adamw"


class Method(str, Enum):
    """How a concept is learned (``TrainConfig.method``; issue 16)."""

    plain = "plain"
    xti = "xti"
    directional = "directional"


class Encoders(str, Enum):
    """Which text encoders of an SD3/Flux model learn (``TrainConfig.encoders``)."""

    all = "all"
    t5 = "t5"
    clip = "clip"


class MapMethod(str, Enum):
    umap = "umap"
    pca = "pca"


class InterpMode(str, Enum):
    slerp = "slerp"
    lerp = "lerp"


class Match(str, Enum):
    pad = "pad"
    merge = "merge"


class Metric(str, Enum):
    cosine = "cosine"
    l2 = "l2"


class Words(str, Enum):
    mean = "mean"
    vectors = "vectors"


class Judge(str, Enum):
    auto = "auto"
    toy = "toy"
    clip = "clip"


def value(choice: Enum | None) -> str | None:
    """The string an Enum option carries (``None`` stays ``None``)."""
    return None if choice is None else str(choice.value)


def first_seed(seed: int) -> int:
    """A --seed value as used: -1 (``RandomSeedOption``) draws a fresh random seed, any other stays."""
    if seed != -1:
        return seed
    from ticraft.generate.sample import random_seed

    return random_seed()


# ----------------------------------------------------------------------------------------------------- devices
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device(text: str | None) -> str | None:
    """``--device`` must be auto, cpu, mps, cuda or cuda:N (checked before any model loads)."""
    if text is None or DEVICE_PATTERN.match(text):
        return text
    raise typer.BadParameter(f"device {text!r} is not one of auto, cpu, mps, cuda, cuda:N")


def device_or_default(device: str | None) -> str:
    """``--device``, else ``ticraft config set device``, else ``auto``."""
    if device:
        return device
    from ticraft.user_config import get_config_value

    return str(get_config_value("device") or "auto")


# ----------------------------------------------------------------------------------------------------- options
ModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        help="Model: 'toy', a diffusers folder, a .safetensors/.ckpt file, or a cached hub id "
        "(default: `ticraft config set model`, else toy).",
    ),
]
LibraryOption = Annotated[
    Optional[Path],
    typer.Option("--library", "-L", help="Library folder (default: $TICRAFT_LIBRARY, the 'library' setting, "
                 "./embeddings, user data dir)."),
]
DeviceOption = Annotated[
    Optional[str],
    typer.Option(
        "--device",
        callback=check_device,
        metavar="DEVICE",
        help="auto, cpu, mps, cuda or cuda:N (default: `ticraft config set device`, else auto).",
    ),
]
DeterministicOption = Annotated[
    bool,
    typer.Option(
        "--deterministic",
        help="Bitwise-repeatable CPU run and exact --resume (same seed, options and thread count): "
        "deterministic algorithms while training, ~1.25x slower. Without it, same-seed CPU runs on several "
        "threads agree to about 1e-8, not bit for bit.",
    ),
]
DtypeOption = Annotated[
    Optional[Dtype], typer.Option("--dtype", help="Weight dtype (default auto: bf16/fp16 on CUDA, fp32 elsewhere).")
]
SeedOption = Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed (several images use seed, seed+1, …).")]
GuidanceOption = Annotated[
    Optional[float],
    typer.Option("--guidance", "--cfg", min=0.0, help="Classifier-free guidance scale (default: the model's)."),
]
SchedulerOption = Annotated[
    Optional[Scheduler], typer.Option("--scheduler", "--sampler", help="Sampler (default: the model's).")
]
#: Denoising steps where ``--steps`` means something else (frames of a strip) or nothing.
SampleStepsOption = Annotated[
    Optional[int], typer.Option("--sample-steps", min=1, help="Denoising steps (default: the model's).")
]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per model call.")]
NegativeOption = Annotated[str, typer.Option("--negative", help="Negative prompt (concept tokens work here too).")]
SizeOption = Annotated[
    Optional[str], typer.Option("--size", help="Image size WxH or N (multiples of 8; default: the model's).")
]
ClipOption = Annotated[
    Optional[Path],
    typer.Option(
        "--clip", help="Local folder of a transformers CLIP model (needed for real models; nothing is downloaded)."
    ),
]
JudgeOption = Annotated[
    Judge, typer.Option("--judge", "--scorer", help="auto (the toy judge for the toy model, else CLIP), toy or clip.")
]
JsonOutOption = Annotated[Optional[Path], typer.Option("--json", help="Also write the full result as JSON here.")]
#: ``--steps`` of the image-making commands (``sample``, ``compose``, ``edit``), where it can mean nothing else.
DenoiseStepsOption = Annotated[
    Optional[int], typer.Option("--steps", min=1, help="Denoising steps (default: the model's).")
]
#: ``sample``/``edit`` seeds: -1 draws a random one (recorded in the PNG, so the image stays reproducible).
RandomSeedOption = Annotated[int, typer.Option("--seed", "-s", help="First seed (-1: random).")]
OutFolderOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
AttachOption = Annotated[
    bool, typer.Option("--attach", help="Also store the images in the library under each concept's samples/.")
]
CountOption = Annotated[int, typer.Option("--num", "-n", min=1, help="How many images (seeds seed, seed+1, …).")]
