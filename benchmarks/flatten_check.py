"""Issue 16: what flattening a per-layer concept costs (the numbers in RESULTS.md, "Direction-only inversion: norms").

    nice python benchmarks/flatten_check.py     # about 3 min on 2 CPU cores

Learns the hidden object zorb with --method xti (default preset, the suite's 4 pictures), flattens it
(ticraft.analysis.flatten, 100 Adam steps) and judges "a photo of a <token>" on 8 samples (10 steps) for both.
"""

from __future__ import annotations


def main() -> None:
    import time

    import torch

    torch.set_num_threads(1)
    import ticraft
    from ticraft.analysis.flatten import flatten
    from ticraft.analysis.metrics import toy_reconstruction
    from ticraft.bench.suite import hidden_object
    from ticraft.generate.sample import generate
    from ticraft.generate.specs import SampleSpec
    from ticraft.models.load import load_backbone

    bb = load_backbone("toy")
    sc = hidden_object()
    c = ticraft.train([im.image for im in sc.train_images()], "<zx>", sc.init, model=bb, previews=0, method="xti",
                      num_vectors=1)  # as recorded: one vector per layer (the fast preset learns 3 since issue 15)
    t = time.process_time()
    r = flatten(bb, c)
    print("flatten loss", r.loss, "mean-of-layers", r.start_loss, "floor", r.floor, "cpu s", time.process_time() - t)
    flat = r.concept.replace(token="<zf>")

    def rec(tok: str, cs: list) -> float:
        ims = generate(bb, [SampleSpec(f"a photo of a {tok}", seed=i, steps=10) for i in range(8)], concepts=cs)
        s = toy_reconstruction(ims, dict(sc.identity))
        return sum(s) / len(s)

    print("reconstruction: xti", rec("<zx>", [c]), "flattened", rec("<zf>", [flat]))


if __name__ == "__main__":
    main()
