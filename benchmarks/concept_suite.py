"""The toy-world concept suite (issue 15): quality against seconds per method, written into RESULTS.md.

    nice python benchmarks/concept_suite.py --quick --write-results          # ≈ 10 min on 2 CPU cores
    nice python benchmarks/concept_suite.py --write-results                  # the full suite (hours on 2 cores)
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
import sys
from pathlib import Path

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTION = "## Concept suite (ticraft bench)"


def section_body(result: dict, stem: str, command: str) -> str:
    from ticraft.bench.report import full_markdown

    s = result["settings"]
    runs = result["runs"]
    concepts = list(dict.fromkeys(r["concept"] for r in runs))
    return "\n".join([
        SECTION,
        "",
        f"`{command}` — {_dt.date.today().isoformat()}, 2-core CPU, this sandbox (shared with other jobs; seconds are "
        f"CPU seconds of the training steps, {s['threads']} torch thread, so other jobs do not inflate them). "
        f"Total {result['total_seconds']:.0f} s wall.",
        "",
        f"Concepts: {', '.join(concepts)}; ladder {', '.join(map(str, s['ladder']))} seen samples; judged with "
        f"{s['n']} samples per prompt at {s['eval_steps']} DDIM steps (toy judge, exact). Good point = first ladder "
        f"point with reconstruction ≥ 90 % and faithful editability ≥ 80 %; medians over the concepts (a concept "
        f"that never got good counts as infinitely late). Methods: "
        + "; ".join(f"`{k}` — {v}" for k, v in result["methods"].items()) + ".",
        "",
        full_markdown(result),
        "",
        f"![Fig. 10](results/{stem}_fig10.png) ![quality vs seconds](results/{stem}_quality_vs_seconds.png)",
        "",
        f"Raw numbers: `benchmarks/results/{stem}.json`.",
    ]) + "\n\n"


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
    parser.add_argument("--write-results", action="store_true", help=f"replace the '{SECTION}' section")
    args = parser.parse_args()

    from ticraft.bench.ladder import BenchSettings, run_bench
    from ticraft.bench.report import write_pictures

    stem = "concept_suite_quick" if args.quick else "concept_suite"
    command = "nice python benchmarks/concept_suite.py" + (" --quick" if args.quick else "")
    if args.source is not None:
        from ticraft.bench.summary import merge_results

        result = merge_results([json.loads(p.read_text()) for p in args.source])
        stem = "concept_suite_quick" if result["settings"]["quick"] else "concept_suite"
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
        result = run_bench(settings, say=lambda t: print(t, flush=True))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    tmp = RESULTS / f".{stem}-pictures"
    for p in write_pictures(result, tmp):
        shutil.move(str(p), RESULTS / f"{stem}_{p.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    from ticraft.bench.report import full_markdown

    print(full_markdown(result))
    if args.write_results:
        write_section(section_body(result, stem, command + " --write-results"))


if __name__ == "__main__":
    sys.exit(main())
