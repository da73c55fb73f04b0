"""Methods compared over several seeds of the concept suite (issue 15): one seed is too noisy to pick a default.

    python benchmarks/seeds.py benchmarks/results/state/{search_a,search_b,seed2}.json … --write-results

Reads bench result JSONs (``ticraft bench --json``, any split of seeds, methods and concepts over files), compares
them with :func:`ticraft.bench.seeds.compare_seeds` (what ``ticraft bench --seeds`` prints) and writes the section
"Concept suite over seeds" of RESULTS.md and ``results/concept_suite_seeds.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTION = "## Concept suite over seeds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="bench result JSONs (any seeds and methods)")
    parser.add_argument("--methods", default=None, help="comma-separated, the baseline first (default: all)")
    parser.add_argument("--note", default="", help="a paragraph written under the command")
    parser.add_argument("--command", default=None, help="the command line shown in RESULTS.md")
    parser.add_argument("--section", default=SECTION, help="the RESULTS.md heading (default: %(default)s)")
    parser.add_argument("--png", default="concept_suite_seeds.png", help="the picture's name under results/")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    from ticraft.bench.seeds import at_points_picture, compare_seeds, seeds_markdown, seeds_picture

    results = [json.loads(p.read_text(encoding="utf-8")) for p in args.results]
    comparison = compare_seeds(results, args.methods.split(",") if args.methods else None)
    png = seeds_picture(comparison, RESULTS / args.png)
    stops = at_points_picture(comparison, RESULTS / args.png.replace(".png", "_at_points.png"))
    seeds, concepts = comparison["seeds"], comparison["concepts"]
    body = "\n\n".join([
        args.section,
        f"`{args.command or 'python benchmarks/seeds.py ' + ' '.join(map(str, args.results))}` — seeds "
        f"{', '.join(map(str, seeds))}, {len(concepts)} concepts from 4 pictures (ladder and judge as in the main "
        "table: good = reconstruction ≥ 90 % and faithful editability ≥ 80 %; seconds are CPU seconds of the "
        "training steps, one torch thread; a concept never good counts as infinitely late).",
        args.note,
        seeds_markdown(comparison),
        f"![good point per concept and seed](results/{png.name})",
        *([f"![good at each ladder point](results/{stops.name})"] if stops is not None else []),
    ])
    print(body)
    if args.write_results:
        write_section(body)


if __name__ == "__main__":
    main()
