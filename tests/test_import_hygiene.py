"""What each entry point imports, checked in fresh interpreters.

* `ticraft --help` (and `python -m ticraft.cli.main --help`) must start without torch, textual,
  diffusers or transformers;
* `ticraft library list` and the library's metadata operations need no torch at all;
* `import ticraft.library` pulls in no model code (diffusers/transformers);
* no module of the headless core (every `ticraft.*`) ever imports textual — the TUI lives in
  `ticraft_tui`, which imports ticraft, never the reverse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ticraft

HEAVY = ("torch", "textual", "diffusers", "transformers")
PACKAGE_DIR = Path(ticraft.__file__).parent


def top_level(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


SITECUSTOMIZE = """
import atexit, json, os, sys
def _dump():
    with open(os.environ["TICRAFT_MODULES_OUT"], "w") as fh:
        json.dump(sorted(sys.modules), fh)
atexit.register(_dump)
"""


def imported_by(cmd: list[str], tmp_path: Path) -> tuple[set[str], subprocess.CompletedProcess]:
    """Run ``cmd`` and return every module it had loaded when it exited (and the finished process).

    A ``sitecustomize`` on PYTHONPATH dumps ``sys.modules`` at exit, so this sees imports made
    through importlib too (``-X importtime`` does not), and works for console scripts.
    """
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    out = tmp_path / "modules.json"
    out.unlink(missing_ok=True)
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TICRAFT_MODULES_OUT": str(out), "COLUMNS": "120"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.is_file(), f"no module list from {cmd}: {proc.stderr[-2000:]}"
    return set(json.loads(out.read_text())), proc


def assert_light(names: set[str], banned=HEAVY) -> None:
    found = sorted(top_level(names) & set(banned))
    assert not found, f"imported {found}"


def test_python_m_help_is_light(tmp_path: Path) -> None:
    names, proc = imported_by([sys.executable, "-m", "ticraft.cli.main", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "library" in proc.stdout
    assert "ticraft.cli.library_cmd" in names  # the profiler did see the commands load
    assert_light(names)


def console_script() -> str | None:
    beside = Path(sys.executable).parent / "ticraft"
    return str(beside) if beside.is_file() else shutil.which("ticraft")


def test_console_script_help_is_light(tmp_path: Path) -> None:
    # `pip install -e .` (the test command) installs the script: its absence is a failure, not a skip
    assert console_script() is not None, "the ticraft console script is not installed"
    names, proc = imported_by([console_script(), "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "library" in proc.stdout
    assert_light(names)


def test_library_list_needs_no_torch(tmp_path: Path) -> None:
    import torch

    from ticraft.concept import Concept
    from ticraft.library import Library

    root = tmp_path / "lib"
    Library(root).add(Concept("<cat-toy>", {"clip": torch.ones(1, 768)}), tags=["object"])
    for args in (["library", "--help"], ["library", "list", "-L", str(root)]):
        names, proc = imported_by([sys.executable, "-m", "ticraft.cli.main", *args], tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert_light(names)
    assert "<cat-toy>" in proc.stdout


LIBRARY_OPS = textwrap.dedent("""
    import json, sys
    from ticraft.library import Library
    lib = Library(sys.argv[1])
    lib.entries(); lib.problems(); lib.search(tag="object")
    lib.tag("<cat-toy>", add=["x"]); lib.set_meta("<cat-toy>", steps=5)
    lib.rename("<cat-toy>", "<kitty>"); lib.images("<kitty>"); lib.remove("<kitty>"); lib.repair()
    print(json.dumps(sorted(sys.modules)))
""")


def test_library_metadata_operations_need_no_torch(tmp_path: Path) -> None:
    import torch

    from ticraft.concept import Concept
    from ticraft.library import Library

    root = tmp_path / "lib"
    Library(root).add(Concept("<cat-toy>", {"clip": torch.ones(1, 8)}, family="toy"))
    proc = subprocess.run([sys.executable, "-c", LIBRARY_OPS, str(root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_light(set(json.loads(proc.stdout)))
    assert Library(root).entries() == []


def test_import_ticraft_library_imports_no_model_code(tmp_path: Path) -> None:
    names, proc = imported_by([sys.executable, "-c", "import ticraft.library"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_light(names)


def all_modules() -> list[str]:
    """Every module of the ticraft package, found on disk (namespace sub-packages included)."""
    out = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # running it would start the program
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


WALK = textwrap.dedent("""
    import importlib, json, sys
    report = {"textual": None, "errors": {}}
    for name in json.loads(sys.argv[1]):
        try:
            importlib.import_module(name)
        except BaseException as exc:  # report every failure, keep walking
            report["errors"][name] = f"{type(exc).__name__}: {exc}"
        if report["textual"] is None and any(m == "textual" or m.startswith("textual.") for m in sys.modules):
            report["textual"] = name
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def walk_report() -> dict:
    modules = all_modules()
    assert "ticraft.library" in modules and "ticraft.cli.main" in modules
    proc = subprocess.run([sys.executable, "-c", WALK, json.dumps(modules)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_ticraft_module_imports_textual(walk_report: dict) -> None:
    assert walk_report["textual"] is None, f"importing {walk_report['textual']} imported textual"


def test_every_ticraft_module_imports(walk_report: dict) -> None:
    assert walk_report["errors"] == {}
