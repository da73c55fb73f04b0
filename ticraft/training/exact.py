"""``--deterministic``: the setting under which a CPU run repeats bit for bit, and resumes exactly.

Measured on this sandbox's 2-core CPU (torch 2.13, MKL 2024.2, oneDNN 3.12) with the shipped toy model and two
intra-op threads, one forward/backward pass (batch 16) repeated 10 times in one process:

* **default** (``torch.use_deterministic_algorithms`` off): the learned vector's gradient differs between
  repetitions by up to 1.9e-9 (about one repetition in three); Adam carries that on, so two same-seed runs of 6-20
  steps end ~1e-8 apart, and a resumed run ends ~1e-8 from the uninterrupted one. Neither MKL's conditional
  numerical reproducibility (``MKL_CBWR=COMPATIBLE``), nor turning oneDNN off, nor the flash-attention kernel off
  removes it: a multi-threaded PyTorch kernel whose reduction order varies does.
* **deterministic** (``deterministic=True``, ``ticraft train --deterministic``): every repetition bitwise equal,
  at ~1.25x the time of the default (a noisy measurement on a loaded machine). Runs with the same seed, options
  and thread count are then bitwise equal and a resumed run ends bitwise equal to the uninterrupted one (on two
  threads: tests/test_exactness.py). Different thread counts may still differ in the last bits.

GPU runs are not covered by these measurements.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """Run the body with ``torch.use_deterministic_algorithms(True)`` (warn-only), then restore the caller's mode.

    Warn-only: an op without a deterministic kernel warns instead of failing the run.

    >>> with deterministic(True):
    ...     torch.are_deterministic_algorithms_enabled()
    True
    >>> torch.are_deterministic_algorithms_enabled()
    False
    """
    if not enabled:
        yield
        return
    was_on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=warn_only)


__all__ = ["deterministic"]
