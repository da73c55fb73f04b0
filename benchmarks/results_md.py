"""Update one section of benchmarks/RESULTS.md in place (the benchmark scripts share this).

A section runs from its ``## Heading`` line to the next ``## `` heading; everything else in the file is kept.

    >>> write_section("## Neighbors\\n\\n| step | wall |\\n...")   # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(body: str, path: Path = RESULTS) -> Path:
    """Replace the section whose heading is ``body``'s first line, or append ``body`` when there is none."""
    heading = body.lstrip("\n").splitlines()[0]
    if not heading.startswith("## "):
        raise ValueError(f"a section starts with a '## ' heading line, got {heading!r}")
    body = body.strip("\n") + "\n\n"
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _m: body, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return path
