"""The toy-world concept suite (issue 15): quality against seconds per method, written into RESULTS.md.

    nice python benchmarks/concept_suite.py --quick --write-results          # ≈ 5 min on 2 CPU cores
    nice python benchmarks/concept_suite.py --write-results --resume DIR     # the full suite (~85 CPU minutes)
    python benchmarks/concept_suite.py --from benchmarks/results/concept_suite_quick.json --write-results

Runs ``ticraft bench`` (``ticraft.bench.run_bench``) and keeps its JSON and PNGs under ``benchmarks/results/``
(``concept_suite[_quick].json``, ``concept_suite[_quick]_fig10.png``, ``…_quality_vs_seconds.png``). Seconds are
CPU seconds of the training process inside training steps with one torch thread: on an otherwise idle core they equal
wall seconds; other jobs on the machine do not inflate them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import statistics
import sys
from pathlib import Path

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTION = "## Concept suite (ticraft bench)"
SECTION_QUICK = "## Concept suite, quick run (ticraft bench --quick)"


def section_body(result: dict, stem: str, command: str, note: str = "", title: str | None = None) -> str:
    from ticraft.bench.report import full_markdown

    s = result["settings"]
    runs = result["runs"]
    concepts = list(dict.fromkeys(r["concept"] for r in runs if "@" not in r["concept"]))
    few = sorted({int(r.get("shots", 4)) for r in runs} - {4})
    few_names = list(dict.fromkeys(r["name"] for r in runs if "@" in r["concept"]))
    cpu = result.get("cpu_seconds") or []
    return "\n".join([
        title or (SECTION_QUICK if s.get("quick") else SECTION),
        "",
        f"`{command}` — {_dt.date.today().isoformat()}, 2-core CPU, this sandbox (shared with other jobs; seconds are "
        f"CPU seconds of the training steps, {s['threads']} torch thread, so other jobs do not inflate them). "
        + (f"Total {result['total_seconds']:.0f} s wall." if len(cpu) <= 1 else
         f"{len(cpu)} processes merged, {sum(cpu) / 60:.0f} CPU minutes in all."),
        "",
        note,
        "",
        f"Concepts (4 pictures each): {', '.join(concepts)}"
        + (f"; few-shot ({' and '.join(map(str, few))} pictures): {', '.join(few_names)}" if few else "")
        + f"; ladder {', '.join(map(str, s['ladder']))} seen samples; judged with "
        f"{s['n']} samples per prompt at {s['eval_steps']} DDIM steps (toy judge, exact). Good point = first ladder "
        f"point with reconstruction ≥ 90 % and faithful editability ≥ 80 %; medians over the concepts (a concept "
        f"that never got good counts as infinitely late). Methods: "
        + "; ".join(f"`{k}` — {_describe(k, v)}" for k, v in result["methods"].items()) + ".",
        "",
        full_markdown(result),
        "",
        before_after(result),
        "",
        (f"CPU seconds of the bench's processes (training, judging and start-up): "
         f"{', '.join(f'{c:.0f}' for c in cpu)}, {sum(cpu) / 60:.0f} CPU minutes in all." if cpu else ""),
        "",
        f"![Fig. 10](results/{stem}_fig10.png) ![quality vs seconds](results/{stem}_quality_vs_seconds.png)",
        "",
        f"Raw numbers: `benchmarks/results/{stem}.json`.",
    ]) + "\n\n"


def _describe(name: str, recorded: str) -> str:
    """Today's description of a registered method (a run's recorded one may predate a default's change; runs
    whose options changed are refused on resume and renamed, so the name still means what was run). Regenerating a
    section written before such a change from its unrenamed files would mislabel it: rename them first
    (``benchmarks/rename_method.py``)."""
    from ticraft.bench.methods import METHODS

    return METHODS[name].description if name in METHODS else recorded


def before_after(result: dict) -> str:
    """The default preset before (fast-v0) and after (plain): the hidden object's good point and the median over the
    concepts both ran (4 pictures)."""
    import math

    from ticraft.bench.summary import main_shots

    methods = result["summary"]["methods"]
    if "plain" not in methods or "fast-v0" not in methods:
        return ""
    main = main_shots(result["runs"])
    runs = {(r["method"], r["concept"]): r for r in result["runs"] if int(r.get("shots", 4)) == main}
    common = sorted(c for m, c in runs if m == "plain" and ("fast-v0", c) in runs)

    def hidden(m: str) -> str:
        r = runs.get((m, "zorb"))
        if r is None or r["good_samples"] is None:
            return "not reached"
        return f"{r['good_samples']} samples, {r['good_seconds']:.1f} s"

    def med(m: str) -> str:
        got = [runs[(m, c)] for c in common]
        samples = sorted(r["good_samples"] if r["good_samples"] is not None else math.inf for r in got)
        seconds = sorted(r["good_seconds"] if r["good_seconds"] is not None else math.inf for r in got)
        if not got or math.isinf(statistics.median(seconds)):
            return "not reached"
        return (f"{statistics.median(samples):.0f} samples, {statistics.median(seconds):.1f} s "
                f"({sum(r['good_samples'] is not None for r in got)}/{len(got)} good)")

    def whole(m: str, samples: int) -> str:
        sps = methods[m]["samples_per_second"]
        return f"{samples} samples" + (f", {samples / sps:.0f} s" if sps else "")

    # the steps in between, oldest first: each row is the default of its day, still runnable under its bench name
    steps = [("given-init", "64 steps, started from the given word (`given-init`: no init search)"),
             ("earlier-t", "tried, not adopted: timesteps t = T·u² (`earlier-t`)")]
    middle = "".join(f"| {label} | {hidden(m)} | {med(m)} | {whole(m, _preset_samples())} |\n" for m, label in steps
                     if m in methods and all((m, c) in runs for c in common))
    return (f"| default preset | hidden object: good point | median over {', '.join(common)}: good point | "
            "a whole default run |\n|---|---|---|---|\n"
            f"| before (`fast-v0`: 400 steps × 16, lr 5e-3 cosine, warm-up 10) | {hidden('fast-v0')} | "
            f"{med('fast-v0')} | {whole('fast-v0', 6400)} |\n" + middle +
            f"| after (`plain`: {_preset()}) | {hidden('plain')} | {med('plain')} | "
            f"{whole('plain', _preset_samples())} |")


def _preset() -> str:
    from ticraft.training.config import preset_config

    c = preset_config("fast")
    return (f"{c.steps} steps × {c.samples_per_step}, lr {c.effective_lr:g} {c.lr_schedule}, "
            f"warm-up {c.warmup_steps}" + (f", init search {c.init_search} words" if c.init_search else "")
            + (", timesteps t = T·u²" if c.timestep_bias == "earlier" else ""))


def _preset_samples() -> int:
    from ticraft.training.config import preset_config

    c = preset_config("fast")
    return c.steps * c.samples_per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--methods", default="plain,diffusers-recipe")
    parser.add_argument("--concepts", default=None)
    parser.add_argument("--shots", default="4")
    parser.add_argument("--ladder", default=None)
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--from", dest="source", type=Path, nargs="+", default=None,
                        help="re-report earlier JSON(s); several runs of the same settings (different methods, run "
                             "one after another on this machine) are merged into one result")
    parser.add_argument("--resume", type=Path, default=None,
                        help="state folder: finished runs are kept there and skipped when run again")
    parser.add_argument("--write-results", action="store_true",
                        help=f"replace the '{SECTION}' section (or '{SECTION_QUICK}')")
    parser.add_argument("--stem", default=None, help="file stem under results/ (with --from)")
    parser.add_argument("--section", default=None, help="the RESULTS.md section title to write (with --from)")
    parser.add_argument("--command", default=None, help="the command line to record (with --from)")
    parser.add_argument("--note", default="", help="a paragraph on how the numbers were made (with --from)")
    args = parser.parse_args()

    from ticraft.bench.ladder import BenchSettings, run_bench
    from ticraft.bench.report import write_pictures

    stem = "concept_suite_quick" if args.quick else "concept_suite"
    command = "nice python benchmarks/concept_suite.py" + (" --quick" if args.quick else "")
    if args.source is not None:
        from ticraft.bench.summary import merge_results

        result = merge_results([json.loads(p.read_text()) for p in args.source])
        stem = args.stem or ("concept_suite_quick" if result["settings"]["quick"] else "concept_suite")
        if args.concepts:  # a subset (e.g. the concepts every method ran), summary recomputed
            from ticraft.bench.summary import summarize

            keep = set(args.concepts.split(","))
            result["runs"] = [r for r in result["runs"] if r["name"] in keep]
            result["pairs"] = [r for r in result.get("pairs") or [] if r["concept"].split("@")[0] in keep]
            result["concepts"] = {k: v for k, v in result["concepts"].items() if k.split("@")[0] in keep}
            result["summary"] = summarize(result)
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    else:
        defaults = {"methods": "plain,diffusers-recipe", "shots": "4", "concepts": None, "ladder": None}
        for flag, default in defaults.items():
            if getattr(args, flag) != default:
                command += f" --{flag} {getattr(args, flag)}"
        settings = BenchSettings(
            methods=args.methods.split(","), concepts=args.concepts.split(",") if args.concepts else None,
            shots=[int(x) for x in args.shots.split(",")],
            ladder=[int(x) for x in args.ladder.split(",")] if args.ladder else None, n=args.n, quick=args.quick)
        result = run_bench(settings, say=lambda t: print(t, flush=True), resume=args.resume)
        if args.resume is not None:  # several resumable processes share the stem: each keeps its whole result here
            (args.resume / "result.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    tmp = RESULTS / f".{stem}-pictures"
    for p in write_pictures(result, tmp):
        shutil.move(str(p), RESULTS / f"{stem}_{p.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    from ticraft.bench.report import full_markdown

    print(full_markdown(result))
    if args.write_results:
        write_section(section_body(result, stem, args.command or command + " --write-results", args.note,
                                   args.section))


if __name__ == "__main__":
    sys.exit(main())
