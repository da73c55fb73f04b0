"""Time from launching `ticraft tui` to its first screen, on libraries of 200 and 10,000 concepts.

The command runs in a pseudo-terminal (120×40), exactly as a user starts it; the clock stops when
the library list's count line ("10000 concepts") has been drawn, then the app is quit with Ctrl+Q.
Baselines in the same run: `ticraft --help` (interpreter + CLI) and the TUI on an empty library. The
library's own part — reading every entry from its index (`Library.entries()`, what the first screen
needs) — is also timed in-process, so the TUI's part (drawing the virtual list) is the rest.

    python benchmarks/tui_startup.py             # print the table
    python benchmarks/tui_startup.py --write     # also update the "## TUI startup" section of RESULTS.md
    python benchmarks/tui_startup.py --runs 1 --concepts 2000   # a quick look while developing

The pseudo-terminal behaves like a plain xterm: it reports its pixel size, answers the device-attributes
query (no Sixel) and ignores the Kitty-graphics query, so textual-image's probes cost what they cost
in such a terminal (one 0.1 s timeout, for the Kitty query).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from results_md import write_section

BUDGET_S = 2.0
SECTION = "## TUI startup"


def make_library(root: Path, count: int, batch: int = 1000) -> float:
    """``count`` small toy concepts (32-d vectors, 1–3 each, a few tags), added in batches through
    ``Library.add_many`` (the bulk path); returns the seconds it took."""
    import torch

    from ticraft.concept import Concept
    from ticraft.library import Library

    lib = Library(root)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        span = range(start, min(count, start + batch))
        concepts = [Concept(f"<concept-{i:05d}>", {"clip": torch.randn(1 + i % 3, 32, generator=gen)}, family="toy",
                            meta={"initializer": "toy", "steps": 100 + i}) for i in span]
        lib.add_many(concepts, tags=[["object" if i % 2 else "style", f"group{i % 7}"] for i in span])
    return time.perf_counter() - t0


def index_read_seconds(root: Path, runs: int) -> float:
    """Median CPU seconds of ``Library(root).entries()`` in this process (the library's part of the first
    screen); CPU time, like the table's CPU column, so a busy machine does not inflate it."""
    from ticraft.library import Library

    Library(root).entries()  # first call pays imports (sqlite3 etc.), which the empty-library run also pays
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        Library(root).entries()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process ``pid`` (all its threads; Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_text(cmd: list[str], marker: bytes, *, timeout: float = 300.0,
                 quit_keys: bytes = b"\x11") -> tuple[float, float]:
    """(wall seconds, CPU seconds) from spawning ``cmd`` in a pty until ``marker`` appears in its output.

    CPU time is what the process itself used: on a busy machine wall time grows with the load, CPU
    time does not, so it tells what an idle machine would see (plus the short probe waits).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 1200, 800))  # rows, cols, px w, px h
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen = b""
    elapsed = None
    cpu = float("nan")
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                if b"\x1b[c" in chunk:  # primary device attributes: a VT220-class terminal without Sixel
                    os.write(master, b"\x1b[?62;22c")
                # Drop escape sequences so a marker split by colour codes is still found.
                seen += chunk
                if marker in re.sub(rb"\x1b\[[0-9;?<>=]*[A-Za-z]", b"", seen):
                    elapsed = time.perf_counter() - start
                    cpu = cpu_seconds(proc.pid)
                    break
            elif proc.poll() is not None:
                break
        if elapsed is not None and quit_keys:
            os.write(master, quit_keys)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    finally:
        os.close(master)
    if elapsed is None:
        tail = re.sub(rb"\x1b\[[0-9;?<>=]*[A-Za-z]", b"", seen)[-500:]
        raise RuntimeError(f"{cmd} never showed {marker!r}; last output: {tail!r}")
    return elapsed, cpu


def measure(runs: int, big_count: int) -> tuple[dict[str, list[tuple[float, float]]], dict[str, float]]:
    """Launch timings per library, plus ``extra``: build seconds and the in-process index read of each."""
    ticraft = shutil.which("ticraft") or "ticraft"
    results: dict[str, list[tuple[float, float]]] = {"cli": [], "empty": [], "200": [], "big": []}
    extra: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        small, big, empty = Path(tmp) / "lib200", Path(tmp) / "libbig", Path(tmp) / "empty"
        make_library(small, 200)
        extra["build_big"] = make_library(big, big_count)
        empty.mkdir()
        marker = f"{big_count} concepts".encode()
        for _ in range(runs):
            results["cli"].append(time_to_text([ticraft, "--help"], b"Usage", quit_keys=b""))  # CPU read at "Usage"
            results["empty"].append(time_to_text([ticraft, "tui", "--library", str(empty)], b"0 concepts"))
            results["200"].append(time_to_text([ticraft, "tui", "--library", str(small)], b"200 concepts"))
            results["big"].append(time_to_text([ticraft, "tui", "--library", str(big)], marker))
        extra["index_200"] = index_read_seconds(small, max(3, runs))
        extra["index_big"] = index_read_seconds(big, max(3, runs))
    return results, extra


def scheduling_note(wall: float, cpu: float) -> str:
    """A warning when the wall time is far above the CPU time (a busy machine, a deprioritised process):
    the wall column then measures the other work on the machine more than the TUI."""
    if wall <= 1.5 * cpu + 0.3:
        return ""
    nice = os.nice(0)
    try:
        group = int(Path("/proc/self/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        group = 0
    return (f"**Caution:** measured on a busy machine (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; this "
            f"process at nice {nice}, autogroup nice {group}): the wall column mostly measures waiting for the CPU. "
            "The CPU column is the process's own work and does not depend on the load; on an idle machine "
            "the wall time is about the CPU time plus ~0.1 s of terminal probing.")


def report(results: dict[str, list[tuple[float, float]]], extra: dict[str, float], runs: int, big_count: int) -> str:
    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
    proc = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    rows = [("`ticraft --help` (interpreter + CLI, baseline)", "cli"), ("`ticraft tui`, empty library", "empty"),
            ("`ticraft tui`, 200 concepts", "200"), (f"`ticraft tui`, **{big_count:,} concepts**", "big")]
    lines = [
        SECTION,
        "",
        "`ticraft tui` from launch to its first screen drawn (the library list with its count line), in a 120×40",
        f"pseudo-terminal; median of {runs} runs; {os.cpu_count()} CPU(s), {proc}, Python {platform.python_version()}, "
        f"load average {load:.1f} while measuring. CPU = the process's own user+system time up to that moment "
        "(what an idle machine would take, short terminal-probe waits aside). "
        "Command: `python benchmarks/tui_startup.py --write`.",
        "",
        "| what | wall s | CPU s | wall / 2 s budget |",
        "|---|---|---|---|",
    ]
    for title, key in rows:
        lines.append(f"| {title} | {wall[key]:.2f} | {cpu[key]:.2f} | {wall[key] / BUDGET_S:.2f}× |")
    over = cpu["big"] - cpu["empty"]
    lib_part, tui_part = extra["index_big"], over - extra["index_big"]
    lines += [
        "",
        f"{big_count:,} concepts cost {wall['big'] - wall['empty']:+.2f} s wall / {over:+.2f} s CPU over an empty "
        f"library. Of that CPU time, reading every entry from the library's index (`Library.entries()`, CPU time in "
        f"process: {extra['index_big']:.2f} s; {extra['index_200'] * 1000:.0f} ms for 200) is the library's part; "
        f"the remaining {tui_part:+.2f} s is the TUI's (the list is virtual: it keeps the entries and draws only "
        "the visible rows). The per-entry health check (one header read per entry) runs in a worker after the "
        "first screen, and torch loads in a worker when the first concept's vectors are read, after the screen is "
        f"drawn. The {big_count:,}-concept library was built with `Library.add_many` in batches of 1,000 "
        f"({extra['build_big']:.0f} s).",
        "",
    ]
    if tui_part < 0 or lib_part < 0:
        lines += ["(A negative share means the run-to-run noise exceeds it.)", ""]
    note = scheduling_note(wall["big"], cpu["big"])
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concepts", type=int, default=10_000, help="size of the big library")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    results, extra = measure(args.runs, args.concepts)
    text = report(results, extra, args.runs, args.concepts)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    sys.exit(main())
