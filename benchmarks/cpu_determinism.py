"""Does one training step's gradient repeat bit for bit on the CPU? (issue 13, item 4)

Runs the shipped toy model's forward/backward (text encoder with a spliced placeholder row, then the UNet; batch 16)
``--reps`` times in one process, alternating ``torch.use_deterministic_algorithms`` off and on, and prints for each
mode the summed time and the largest difference of the placeholder's gradient from the first repetition.

    python benchmarks/cpu_determinism.py --threads 2 --reps 10

Recorded on this sandbox's 2-core CPU (loaded by other jobs, so the times are rough), torch 2.13:
off 167 s, max diff 1.9e-9; on 210 s, max diff 0 (10 repetitions each). ``MKL_CBWR=COMPATIBLE``, oneDNN off
(``torch.backends.mkldnn.enabled = False``) and ``torch.backends.cuda.enable_flash_sdp(False)`` each left
differences of 1.9e-9 to 3.7e-9 (13 repetitions), so ``--deterministic`` uses deterministic algorithms.
"""

from __future__ import annotations

import argparse
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()

    import torch

    from ticraft.models.load import load_backbone

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    bb = load_backbone("toy")
    enc = bb.encoders[0]
    g = torch.Generator().manual_seed(0)
    size = bb.unet.config.sample_size
    x = torch.randn(16, bb.unet.config.in_channels, size, size, generator=g)
    t = torch.randint(0, 1000, (16,), generator=g)
    p = torch.nn.Parameter(enc.table[5:6].detach().clone().float())
    bb.add_placeholder("<p>", {enc.key: p})
    ids = enc.tokenizer(["a photo of <p> circle"] * 16, padding="max_length", max_length=77,
                        return_tensors="pt").input_ids
    times = {False: 0.0, True: 0.0}
    grads: dict[bool, list[torch.Tensor]] = {False: [], True: []}
    for _ in range(args.reps):
        for flag in (False, True):
            torch.use_deterministic_algorithms(flag, warn_only=True)
            p.grad = None
            start = time.perf_counter()
            hidden = enc.model(input_ids=ids)[0]
            bb.unet(x, t, encoder_hidden_states=hidden).sample.pow(2).mean().backward()
            times[flag] += time.perf_counter() - start
            assert p.grad is not None
            grads[flag].append(p.grad.clone())
    for flag in (False, True):
        diff = max(float((grads[flag][0] - q).abs().max()) for q in grads[flag][1:])
        print(f"deterministic={flag}: {times[flag]:.1f} s for {args.reps} steps, max diff {diff:.2e}")


if __name__ == "__main__":
    main()
