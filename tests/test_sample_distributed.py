"""Two CPU processes (gloo, via torchrun + accelerate) split a sampling job: same images as one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import torch

from ticraft.models.load import load_backbone
from ticraft.concept import Concept
from ticraft.generate.sample import SampleSpec, generate

SCRIPT = textwrap.dedent("""
    import sys, numpy as np, torch
    from accelerate import PartialState
    from ticraft.models.load import load_backbone
    from ticraft.concept import Concept
    from ticraft.generate.sample import SampleSpec, generate
    sys.path.insert(0, sys.argv[3])
    from test_sample_distributed import job
    bb = load_backbone(sys.argv[1])
    specs, concepts = job()
    images = generate(bb, specs, concepts=concepts, batch_size=2)
    state = PartialState()
    assert state.num_processes == 2, state.num_processes
    np.save(f"{sys.argv[2]}/rank{state.process_index}.npy", np.stack([np.asarray(im) for im in images]))
""")


def job():
    """The shared job: 5 images in 3 batches of ≤2 (rank 0 takes two batches, rank 1 one)."""
    c = Concept("<cat-toy>", {"clip": torch.randn(2, 32, generator=torch.Generator().manual_seed(0))})
    specs = [SampleSpec("a photo of <cat-toy>", seed=s, steps=2) for s in range(4)]
    specs.append(SampleSpec("a photo of the cat", seed=9, steps=2))
    return specs, [c]


def test_two_processes_give_the_images_of_one(tiny_sd_dir, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(tiny_sd_dir), str(tmp_path), os.path.dirname(__file__)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0, rank1 = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    assert np.array_equal(rank0, rank1)  # every process gets the whole, ordered list

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        specs, concepts = job()
        single = generate(load_backbone(tiny_sd_dir), specs, concepts=concepts, batch_size=2, distributed=False)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(rank0, np.stack([np.asarray(im) for im in single]))
