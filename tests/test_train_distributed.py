"""Data parallel training: two CPU processes (torchrun, gloo) give the one-process result for the same
global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

import ticraft

OPTIONS = dict(steps=4, batch_size=4, lr=1e-2, log_every=2, previews=0, device="cpu", num_vectors=2, progressive=2,
               init_search=2)  # the start each process searches is the first one's

WORKER = """
import os, sys, torch
torch.set_num_threads(1)
import ticraft
concept = ticraft.train({images!r}, "<thing>", "toy", model={model!r}, **{options!r})
torch.save({{"vectors": concept.vectors["clip"], "loss": concept.meta["loss_curve"],
            "world": concept.meta["world_size"]}}, {out!r} + f".rank{{os.environ['RANK']}}")
"""


def test_two_processes_equal_one(tmp_path, tiny_sd_dir):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(images / f"img{i}.png")
    script = tmp_path / "worker.py"
    out = str(tmp_path / "result")
    script.write_text(textwrap.dedent(WORKER.format(images=str(images), model=str(tiny_sd_dir), options=OPTIONS, out=out)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0",
         "--rdzv_backend", "c10d", "--rdzv_endpoint", "localhost:0", str(script)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(f"{out}.rank{r}", weights_only=True) for r in (0, 1)]
    single = ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), **OPTIONS)
    assert ranks[0]["world"] == 2 and single.meta["world_size"] == 1
    assert torch.equal(ranks[0]["vectors"], ranks[1]["vectors"])  # the processes agree exactly
    assert torch.allclose(ranks[0]["vectors"], single.vectors["clip"], atol=1e-5, rtol=1e-4)
    losses = np.array([v for _, v in ranks[0]["loss"]])
    assert np.allclose(losses, [v for _, v in single.meta["loss_curve"]], rtol=1e-4)
