"""What a library repair found and did, and the sentences that tell a person about it.

:class:`RepairReport` is what ``Library.repair_report()`` returns; :func:`suggest` is the tail of an
unknown-token error; :func:`check_concepts` runs the cheap embedding check over entries. Split out of
:mod:`ticraft.library.sync`, which re-exports the public names.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ticraft.library._common import MANIFEST
from ticraft.library.entry import Entry
from ticraft.library.health import check_embedding
from ticraft.wording import counted

__all__ = ["RepairReport", "check_concepts", "suggest"]


@dataclass
class RepairReport:
    """What ``Library.repair_report()`` found and did, in sentences a person can read."""

    concepts: int = 0
    found: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def suggest(token: str, known: list[str]) -> str:
    """The tail of an unknown-token error: close matches, or what the library holds."""
    close = difflib.get_close_matches(token, known, n=3, cutoff=0.5) if len(known) <= 20000 else []
    if close:
        return f"; did you mean {', '.join(close)}?"
    if not known:
        return "; it is empty"
    if len(known) <= 8:
        return f"; it holds {', '.join(known)}"
    return f"; it holds {len(known)} concepts (see `ticraft library list`)"


def check_concepts(entries: Iterable[Entry]) -> dict[str, str]:
    """token → problem for entries failing the cheap embedding check (header + size)."""
    return {e.token: p for e in entries if (p := check_embedding(e))}


def _describe(
    report: RepairReport, done: dict[str, Any], before: dict[str, Any], after: dict[str, Any], was_new: bool
) -> None:
    """Turn the counts of a repair into the report's sentences."""
    if was_new:
        report.found.append("no index yet" + (" (a manifest.json library)" if done.get("migrated") else ""))
        report.actions.append(
            f"built the index from {counted(len(after), 'concept folder')}"
            + (", keeping manifest.json's tags where a meta.json was lost" if done.get("migrated") else "")
        )
    # (how many, the noun, what follows it, what repair did)
    pairs = [
        (done["half_built"], "half-built folder", "under .tmp/ (an add or rename cut short)", "deleted them"),
        (
            len(done["restored"]),
            "parked folder",
            "under .trash/ still listed (a replace or remove cut short)",
            "moved them back",
        ),
        (len(done["deleted"]), "parked folder", "under .trash/ no longer listed", "deleted them"),
        (done["swept"], "temp file", "left by interrupted writes", "deleted them"),
        (done.get("uncommitted", 0), "new folder", "of an add or rename cut short before its commit", "deleted them"),
    ]
    if not was_new:
        added = sorted(set(after) - set(before))
        dropped = sorted(set(before) - set(after))
        changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
        pairs += [
            (len(added), "concept folder", f"missing from the index ({', '.join(added[:5])})", "indexed them"),
            (len(dropped), "index row", f"without a healthy folder ({', '.join(dropped[:5])})", "removed the rows"),
            (len(changed), "index row", f"out of date ({', '.join(changed[:5])})", "re-read their meta.json"),
        ]
    for n, what, rest, did in pairs:
        if n:
            report.found.append(f"{counted(n, what)} {rest}")
            report.actions.append(f"{did} ({n})")
    if not report.found:
        report.found.append(f"{counted(len(after), 'concept folder')}, all matching the index")


def _manifest_records(root: Path) -> dict[str, dict[str, Any]]:
    """The records of an old ``manifest.json`` by folder (used only to keep tags a lost meta.json had)."""
    try:
        data = json.loads((root / MANIFEST).read_bytes())
        return {
            r["folder"]: r for r in data.get("entries", []) if isinstance(r, dict) and isinstance(r.get("folder"), str)
        }
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
