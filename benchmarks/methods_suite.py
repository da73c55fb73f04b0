"""Issue 16's methods (per-layer tokens, direction-only vectors) beside plain inversion on the concept suite.

    nice ticraft bench --quick --methods plain,xti,directional --concepts zorb,glimmic --ladder 256,1024 \\
        --json /tmp/issue16.json --out /tmp/issue16
    python benchmarks/methods_suite.py --from /tmp/issue16.json --write-results --command "<the line above>"

Copies the run's JSON to ``benchmarks/results/methods_suite.json``, draws its Fig. 10 and quality-vs-seconds PNGs
there (``methods_suite_fig10.png``, ``methods_suite_quality_vs_seconds.png``) and writes the RESULTS.md section with
the bench's tables (the two-concept rows are the prompt-dominance measure: how much of a two-concept prompt
survives).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTION = "## Per-layer tokens and direction-only vectors on the concept suite"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--from", dest="source", type=Path, required=True)
    ap.add_argument("--command", default="ticraft bench --quick --methods plain,xti,directional")
    ap.add_argument("--note", default="")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)

    from ticraft.bench.report import fig10, full_markdown, quality_curves

    result = json.loads(args.source.read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "methods_suite.json").write_text(json.dumps(result, indent=1) + "\n")
    fig10(result, RESULTS / "methods_suite_fig10.png")
    quality_curves(result, RESULTS / "methods_suite_quality_vs_seconds.png")
    s = result["settings"]
    body = "\n".join([
        SECTION, "",
        f"`{args.command}` — {_dt.date.today().isoformat()}, 2-core CPU, this sandbox (shared with seven other "
        f"engineers' jobs; seconds are CPU seconds of the training steps, {s['threads']} torch thread). Ladder "
        f"{', '.join(map(str, s['ladder']))} seen samples, {s['n']} judged samples per prompt, {s['eval_steps']} "
        "sampling steps; default preset for every method.", "",
        args.note, "",
        full_markdown(result), "",
        "![Fig. 10](results/methods_suite_fig10.png) "
        "![quality vs seconds](results/methods_suite_quality_vs_seconds.png)",
        "", "Raw numbers: `benchmarks/results/methods_suite.json`.",
    ])
    print(body)
    if args.write_results:
        sys.path.insert(0, str(Path(__file__).parent))
        from results_md import write_section

        write_section(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
