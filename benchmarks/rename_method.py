"""Copy a bench result JSON with one method renamed, so rows recorded under an old meaning of a name stay apart.

When the default preset changes, the runs recorded as ``plain`` describe the preset of their day; merging them with
new ``plain`` runs would mix two presets under one name. This writes a copy under the method name that reproduces
them today (its state folder is left as it was)::

    python benchmarks/rename_method.py benchmarks/results/state/plain_b16a/result.json plain given-init \\
        benchmarks/results/state/given_init_a.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rename(result: dict, old: str, new: str) -> dict:
    """``result`` with method ``old`` called ``new`` in its runs, pairs, method list and summary keys."""
    out = json.loads(json.dumps(result))  # a deep copy
    from ticraft.bench.methods import METHODS  # today's description of the new name, when it is registered

    out["methods"] = {(new if k == old else k): (METHODS[new].description if k == old and new in METHODS else v)
                      for k, v in out.get("methods", {}).items()}
    for r in out.get("runs", []):
        if r.get("method") == old:
            r["method"] = new
    for r in out.get("pairs") or []:
        if r.get("method") == old:
            r["method"] = new
    if isinstance(out.get("settings", {}).get("methods"), list):
        out["settings"]["methods"] = [new if m == old else m for m in out["settings"]["methods"]]
    summary = out.get("summary")
    if isinstance(summary, dict) and isinstance(summary.get("methods"), dict):  # merging recomputes it anyway
        summary["methods"] = {(new if k == old else k): v for k, v in summary["methods"].items()}
    return out


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit("usage: rename_method.py IN.json OLD NEW OUT.json")
    src, old, new, dst = sys.argv[1:]
    result = json.loads(Path(src).read_text())
    if old not in {r.get("method") for r in result.get("runs", [])}:
        sys.exit(f"{src} has no runs of method {old!r}")
    Path(dst).write_text(json.dumps(rename(result, old, new), indent=1) + "\n")


if __name__ == "__main__":
    main()
