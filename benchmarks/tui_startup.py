"""Time from launching `ticraft tui` to its first screen, on a library of 200 concepts.

The command runs in a pseudo-terminal (120×40), exactly as a user starts it; the clock stops when
the library list's footer line ("200 concepts") has been drawn, then the app is quit with Ctrl+Q.
Baselines in the same run: `ticraft --help` (interpreter + CLI) and the TUI on an empty library.

    python benchmarks/tui_startup.py             # print the table
    python benchmarks/tui_startup.py --write     # also update the "## TUI startup" section of RESULTS.md

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


def make_library(root: Path, count: int) -> None:
    """``count`` small toy concepts (4-d vectors, 1–3 each, a few tags)."""
    import torch

    from ticraft.concept import Concept
    from ticraft.library import Library

    lib = Library(root)
    gen = torch.Generator().manual_seed(0)
    for i in range(count):
        concept = Concept(f"<concept-{i:03d}>", {"clip": torch.randn(1 + i % 3, 32, generator=gen)}, family="toy",
                          meta={"initializer": "toy", "steps": 100 + i})
        lib.add(concept, tags=["object" if i % 2 else "style", f"group{i % 7}"])


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


def measure(runs: int) -> dict[str, list[tuple[float, float]]]:
    ticraft = shutil.which("ticraft") or "ticraft"
    results: dict[str, list[tuple[float, float]]] = {"cli": [], "empty": [], "200": []}
    with tempfile.TemporaryDirectory() as tmp:
        big, empty = Path(tmp) / "lib200", Path(tmp) / "empty"
        make_library(big, 200)
        empty.mkdir()
        for _ in range(runs):
            results["cli"].append(time_to_text([ticraft, "--help"], b"Usage", quit_keys=b""))  # CPU read at "Usage"
            results["empty"].append(time_to_text([ticraft, "tui", "--library", str(empty)], b"0 concepts"))
            results["200"].append(time_to_text([ticraft, "tui", "--library", str(big)], b"200 concepts"))
    return results


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
            f"process at nice {nice}, autogroup nice {group}): the wall column mostly measures waiting for the CPU. The CPU column is the process's own work and does not depend on the load; on an idle machine "
            "the wall time is about the CPU time plus ~0.1 s of terminal probing.")


def report(results: dict[str, list[tuple[float, float]]], runs: int) -> str:
    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
    proc = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    rows = [("`ticraft --help` (interpreter + CLI, baseline)", "cli"), ("`ticraft tui`, empty library", "empty"),
            ("`ticraft tui`, **200 concepts**", "200")]
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
    lines += [
        "",
        f"200 concepts cost {wall['200'] - wall['empty']:+.2f} s wall / {cpu['200'] - cpu['empty']:+.2f} s CPU over an "
        "empty library (one library scan, 200 table rows). torch is not imported before the first screen: it loads "
        "in a worker when the first concept's vectors are read, after the screen is drawn.",
        "",
    ]
    note = scheduling_note(wall["200"], cpu["200"])
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    results = measure(args.runs)
    text = report(results, args.runs)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    sys.exit(main())
