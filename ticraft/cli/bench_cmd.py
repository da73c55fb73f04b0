"""`ticraft bench`: the toy-world concept suite — quality against seconds for each method, and the pictures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ticraft.cli.common import console


def _ints(text: str | None, what: str) -> list[int] | None:
    from ticraft.bench.suite import BenchError

    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BenchError(f"{what} must be comma-separated whole numbers, got {text!r}") from None


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="A few concepts, ladder 64…1024, 4 samples per prompt "
                                                        "(about 5 minutes on 2 CPU cores).")] = False,
    methods: Annotated[str, typer.Option(help="Comma-separated methods (see --list).")] = "plain,diffusers-recipe",
    concepts: Annotated[str | None, typer.Option(help="Comma-separated concepts: zorb, glimmic, c01 … c16, all "
                                                      "(default: quick → zorb,glimmic,c01; full → all).")] = None,
    shots: Annotated[str, typer.Option(help="Pictures per concept, comma-separated (1, 2, 4).")] = "4",
    ladder: Annotated[str | None, typer.Option(help="Seen-sample counts to judge at, increasing "
                                                    "(default: quick 64,128,256,512,1024; full 64 … 2048).")] = None,
    n: Annotated[int | None, typer.Option("-n", help="Samples per judged prompt (default quick 4, full 8).")] = None,
    eval_steps: Annotated[int, typer.Option(help="Sampling steps of the judged pictures.")] = 10,
    threads: Annotated[int, typer.Option(help="torch threads per process (the same for every method).")] = 1,
    jobs: Annotated[int | None, typer.Option(help="Processes to spread the methods over (default: 2 when the "
                                                  "machine has 2 cores or more).")] = None,
    seed: Annotated[int | None, typer.Option(help="Training and sampling seed (default 0).")] = None,
    seeds: Annotated[str | None, typer.Option(help="Several seeds, comma-separated (e.g. 0,1,2): the suite runs on "
                                                   "each in turn, then the methods are compared over them (per-seed "
                                                   "table, paired sign test, a concept × seed map).")] = None,
    dvar: Annotated[bool, typer.Option("--dvar/--no-dvar", help="Record where DVAR early stopping would stop.")] = True,
    pairs: Annotated[bool, typer.Option("--pairs/--no-pairs", help="Two-concept prompts at the ladder's top.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full result as JSON there.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNGs and the Markdown table.")] = Path(
        "ticraft-bench"),
    resume: Annotated[Path | None, typer.Option(help="Keep every finished run in this folder and skip it when the "
                                                     "same command runs again (a long run that was stopped "
                                                     "continues).")] = None,
    list_methods: Annotated[bool, typer.Option("--list", help="List the methods and concepts, then exit.")] = False,
) -> None:
    """Judge methods on the toy-world concept suite after a ladder of seen samples: seconds to a good concept."""
    from ticraft.bench.ladder import BenchSettings
    from ticraft.bench.methods import METHODS
    from ticraft.bench.suite import all_concepts

    if list_methods:
        for name, m in METHODS.items():
            console.print(f"[bold]{escape(name)}[/]  {escape(m.description)}")
        console.print()
        for c in all_concepts():
            console.print(f"[bold]{c.name}[/]  {escape(c.description)}")
        return
    settings = BenchSettings(
        methods=[m.strip() for m in methods.split(",") if m.strip()],
        concepts=[c.strip() for c in concepts.split(",") if c.strip()] if concepts is not None else None,
        shots=_ints(shots, "--shots") or [], ladder=_ints(ladder, "--ladder"), n=n, eval_steps=eval_steps,
        threads=threads, seed=seed or 0, quick=quick, dvar=dvar, pairs=pairs,
        jobs=jobs if jobs is not None else min(2, os.cpu_count() or 1),
    )
    target = json_out or out / "bench.json"
    if seeds is not None:
        _over_seeds(settings, _seed_list(seeds, seed), out=out, target=target, resume=resume)
        return
    result = run(settings, resume=resume)
    table, pictures = _write_one(result, out)
    _write_json(result, target)
    console.print(table, markup=False, highlight=False)
    console.print(f"\nwritten: {escape(str(target))}, {', '.join(escape(str(p)) for p in pictures)}, "
                  f"{escape(str(out / 'bench.md'))}  ({result['total_seconds']:.0f} s)")


def _seed_list(text: str, seed: int | None) -> list[int]:
    from ticraft.bench.suite import BenchError

    if seed is not None:
        raise BenchError("give --seed or --seeds, not both")
    found = _ints(text, "--seeds") or []
    if len(found) < 2 or len(set(found)) != len(found):
        raise BenchError(f"--seeds needs at least two different seeds (e.g. 0,1,2), got {text!r}")
    return found


def _write_one(result: dict, out: Path) -> tuple[str, list[Path]]:
    """The Markdown table, Fig. 10 and the quality curves of one bench result into ``out``."""
    from ticraft.bench.report import full_markdown, write_pictures

    table = full_markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    pictures = write_pictures(result, out)
    (out / "bench.md").write_text(table + "\n", encoding="utf-8")
    return table, pictures


def _write_json(data: dict, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")


def _over_seeds(settings: Any, seed_list: list[int], *, out: Path, target: Path, resume: Path | None) -> None:
    """Run the suite once per seed (each into ``out/seed-N``, resumable in ``resume/seed-N``), then compare."""
    from dataclasses import replace

    from ticraft.bench.seeds import at_points_picture, compare_seeds, seeds_markdown, seeds_picture

    results = {}
    for s in seed_list:
        console.print(f"[bold]seed {s}[/]")
        one = replace(settings, seed=s)
        results[str(s)] = run(one, resume=resume / f"seed-{s}" if resume is not None else None)
        _write_one(results[str(s)], out / f"seed-{s}")
    comparison = compare_seeds(list(results.values()), methods=settings.methods)
    table = seeds_markdown(comparison)
    (out / "seeds.md").write_text(table + "\n", encoding="utf-8")
    picture = seeds_picture(comparison, out / "seeds.png")
    stops = at_points_picture(comparison, out / "seeds_at_points.png")
    _write_json({"schema": "ticraft-bench-seeds/1", "seeds": seed_list, "results": results,
                 "comparison": comparison}, target)
    console.print(table, markup=False, highlight=False)
    total = sum(r["total_seconds"] for r in results.values())
    pictures = ", ".join(escape(str(p)) for p in (picture, stops) if p is not None)
    console.print(f"\nwritten: {escape(str(target))}, {pictures}, {escape(str(out / 'seeds.md'))}, "
                  f"one folder per seed in {escape(str(out))}  ({total:.0f} s)")


def run(settings: object, resume: Path | None = None) -> dict:
    """Run the bench with one log line per judged point; ``resume`` keeps (and reuses) the finished runs."""
    from ticraft.bench.ladder import run_bench

    def say(text: str) -> None:
        console.print(f"[dim]•[/] {escape(text)}", highlight=False)

    return run_bench(settings, say=say, resume=resume)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
