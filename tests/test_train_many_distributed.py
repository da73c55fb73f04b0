"""train-many over two CPU processes (torchrun, gloo): the concepts are split between the processes, every
process returns all of them, and each equals the one-process run's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

import ticraft

OPTIONS = dict(steps=3, batch_size=2, lr=1e-2, log_every=1, previews=0, device="cpu", save_every=3, init="toy")

WORKER = """
import os, torch
torch.set_num_threads(1)
import ticraft
result = ticraft.train_many({root!r}, model={model!r}, output_dir={run!r}, **{options!r})
torch.save({{"vectors": {{t: c.vectors["clip"] for t, c in result.concepts.items()}},
            "failed": result.failed, "trained_by": {{t: c.meta["train_many"]["processes"] for t, c in result.concepts.items()}}}},
           {out!r} + f".rank{{os.environ['RANK']}}")
"""


def test_two_processes_split_the_concepts(tmp_path, tiny_sd_dir):
    from PIL import Image

    root = tmp_path / "concepts"
    rng = np.random.default_rng(0)
    for name in ("alpha", "beta", "gamma"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / name / f"img{i}.png")
    (root / "empty").mkdir()
    script = tmp_path / "worker.py"
    out = str(tmp_path / "result")
    run = str(tmp_path / "run")
    script.write_text(textwrap.dedent(WORKER.format(root=str(root), model=str(tiny_sd_dir), run=run, options=OPTIONS,
                                                    out=out)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0",
         "--rdzv_backend", "c10d", "--rdzv_endpoint", "localhost:0", str(script)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(f"{out}.rank{r}", weights_only=True) for r in (0, 1)]
    assert list(ranks[0]["vectors"]) == ["<alpha>", "<beta>", "<gamma>"]
    assert list(ranks[0]["failed"]) == ["empty"] and ranks[0]["failed"] == ranks[1]["failed"]
    assert set(ranks[0]["trained_by"].values()) == {2}
    one = ticraft.train_many(root, model=str(tiny_sd_dir), output_dir=tmp_path / "one", **OPTIONS)
    for token, vec in ranks[0]["vectors"].items():
        assert torch.equal(vec, ranks[1]["vectors"][token])  # both processes return the same results
        assert torch.allclose(vec, one.concepts[token].vectors["clip"], atol=1e-5, rtol=1e-4), token
    # the main process wrote one checkpoint holding every concept (and the failure)
    from ticraft.training.checkpoint import load_checkpoint

    state = load_checkpoint(Path(run) / "checkpoint-0000003.pt")
    assert sorted(state["concepts"]) == ["<alpha>", "<beta>", "<gamma>"] and list(state["failed"]) == ["empty"]
