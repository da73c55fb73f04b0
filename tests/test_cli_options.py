"""The CLI's shared options are one declaration: the same flags, help and checks on every command."""

from __future__ import annotations

import functools

import pytest
import typer
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.cli.options import Scheduler, check_device

runner = CliRunner()


@functools.cache
def all_commands() -> dict[str, object]:
    """Every leaf command of the CLI by its full name ("probe bias", "library list", …)."""
    root = typer.main.get_command(app)
    out: dict[str, object] = {}

    def walk(group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            full = f"{prefix} {name}".strip()
            if hasattr(cmd, "commands"):
                walk(cmd, full)
            else:
                out[full] = cmd

    walk(root, "")
    return out


# `toyworld train-base` trains the toy base model on cpu or cuda only and never reads the user's device setting;
# `train-many` and `bench` (added by other engineers this round) have not moved to the shared options yet.
NOT_YET_SHARED = {"train-many", "bench"}
OWN_DEVICE = {"toyworld train-base"} | NOT_YET_SHARED


def params_named(name: str) -> dict[str, object]:
    return {cmd_name: p for cmd_name, cmd in all_commands().items() for p in cmd.params
            if p.name == name and not (cmd_name in OWN_DEVICE and name in ("device", "model", "library"))}


@pytest.mark.parametrize("name", ["model", "library", "device", "dtype", "guidance", "scheduler", "sample_steps",
                                  "batch_size", "clip", "judge", "negative", "size", "attach_"])
def test_a_shared_option_is_identical_on_every_command(name):
    found = params_named(name)
    assert found, name
    # sample's --negative defaults to None: with --from, "not given" keeps the image's own negative prompt
    shapes = {(tuple(p.opts), tuple(p.secondary_opts), p.help, repr(p.type_descriptor.annotation), p.min, p.max,
               None if name == "negative" else p.default, getattr(p.callback, "__name__", None))
              for p in found.values()}
    assert len(shapes) == 1, {c: (p.opts, p.help, p.default) for c, p in found.items()}


def test_commands_that_load_a_model_take_device_and_dtype():
    commands = all_commands()
    # tui loads models in its own screens
    loaders = [n for n, c in commands.items() if any(p.name == "model" for p in c.params)
               and n not in OWN_DEVICE | {"tui"}]
    assert {"train", "sample", "compose", "edit", "neighbors", "mix", "interp", "map", "eval", "probe bias",
            "probe style"} <= set(loaders)
    for name in loaders:
        names = {p.name for p in commands[name].params}
        assert {"device", "dtype", "library"} <= names, name


def test_scheduler_choices_are_the_samplers():
    from ticraft.generate.sample import SCHEDULERS

    assert [s.value for s in Scheduler] == list(SCHEDULERS)


@pytest.mark.parametrize("good", [None, "auto", "cpu", "mps", "cuda", "cuda:1"])
def test_device_words(good):
    assert check_device(good) == good


@pytest.mark.parametrize("args", [
    ["sample", "a cat", "--device", "tpu"],
    ["neighbors", "cat", "--device", "gpu0"],
    ["train", "imgs", "--token", "<a>", "--init", "a", "--device", "cuda1"],
])
def test_a_bad_device_is_refused_when_parsed(args):
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 2, r.output  # a usage error: nothing was loaded
    assert "is not one of auto, cpu, mps, cuda, cuda:N" in r.output


@pytest.mark.parametrize("args, bad", [
    (["map", "--method", "tsne"], "tsne"),
    (["interp", "<a>", "<b>", "--mode", "cubic"], "cubic"),
    (["neighbors", "cat", "--metric", "dot"], "dot"),
    (["mix", "<a>", "--words", "all"], "all"),
    (["sample", "a cat", "--scheduler", "karras"], "karras"),
    (["eval", "<a>", "--scorer", "human"], "human"),
])
def test_fixed_choices_are_checked_before_any_work(args, bad):
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 2 and bad in r.output, r.output


def test_eval_and_probe_take_both_judge_spellings():
    for name in ("eval", "probe bias", "probe style"):
        (param,) = [p for p in all_commands()[name].params if p.name == "judge"]
        assert {"--judge", "--scorer"} <= set(param.opts), name


def test_every_seed_option_has_the_short_form():
    seeds = params_named("seed")
    assert {"train", "sample", "demo", "eval"} <= set(seeds)
    missing = [name for name, p in seeds.items() if "-s" not in p.opts and name not in NOT_YET_SHARED]
    assert not missing, missing


def test_training_choices_are_the_configs():
    from ticraft.cli import options as o
    from ticraft.training import config as c

    pairs = [(o.Encoders, c.ENCODER_CHOICES), (o.LrSchedule, c.LR_SCHEDULES), (o.Optimizer, c.OPTIMIZERS),
             (o.Precision, c.MIXED_PRECISION), (o.Compile, c.COMPILE_MODES), (o.Dtype, c.WEIGHT_DTYPES),
             (o.Preset, tuple(c.PRESETS))]
    for enum, allowed in pairs:
        assert {m.value for m in enum} == set(allowed), enum
