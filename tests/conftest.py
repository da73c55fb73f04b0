"""Shared fixtures: tiny offline models (built once per session) and an isolated user environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import tiny_models`

# One torch thread per test process: the suite runs on 2 cores with pytest-xdist (-n 2), and
# oversubscribed OpenMP threads made single calls ~70x slower there.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def _torch_threads(n: int | None = None) -> int:
    import torch

    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


_torch_threads(1)  # every worker process starts with one thread, whatever OMP_NUM_THREADS said


@pytest.fixture(autouse=True)
def _one_thread_per_test():
    """Each test starts with one torch thread and cannot leave another count behind for the next one."""
    _torch_threads(1)
    yield
    _torch_threads(1)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Never read or write the developer's real config/library."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TICRAFT_CONFIG", str(home / "config.json"))
    monkeypatch.setenv("TICRAFT_LIBRARY", str(home / "library"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    """A saved tiny SD-style diffusers folder (family 'custom', 32-d text)."""
    from tiny_models import tiny_sd_folder

    return tiny_sd_folder(tmp_path_factory.mktemp("tiny_sd"))


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    """A saved tiny SDXL-style diffusers folder (family 'sdxl', 32-d + 64-d text)."""
    from tiny_models import tiny_sdxl_folder

    return tiny_sdxl_folder(tmp_path_factory.mktemp("tiny_sdxl"))


@pytest.fixture(scope="session")
def tiny_sd3_dir(tmp_path_factory) -> Path:
    """A saved tiny SD3 diffusers folder (CLIP-L 32, CLIP-G 48, T5 96; 16 px, 2 steps by default)."""
    from tiny_sd3_flux import tiny_sd3_folder

    return tiny_sd3_folder(tmp_path_factory.mktemp("tiny_sd3"))


@pytest.fixture(scope="session")
def tiny_flux_dir(tmp_path_factory) -> Path:
    """A saved tiny Flux diffusers folder (CLIP-L 32 pooled, T5 96; 16 px, 2 steps by default)."""
    from tiny_sd3_flux import tiny_flux_folder

    return tiny_flux_folder(tmp_path_factory.mktemp("tiny_flux"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's fixtures too (module fixtures run before the per-test autouse one)."""
    yield _torch_threads(1)


@pytest.fixture(scope="module")
def bb(tiny_sd_dir, one_torch_thread):
    """The tiny SD backbone, loaded once per test module."""
    from ticraft.models.load import load_backbone

    return load_backbone(str(tiny_sd_dir))
