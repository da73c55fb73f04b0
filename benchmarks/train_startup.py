"""Where `ticraft train` spends its time on the toy model (issue 15 item 6): start-up phases and one step.

    nice python benchmarks/train_startup.py [--threads 1] [--batch 16] [--steps 10]

Runs in a fresh process and reports **CPU seconds** (``time.process_time``; with one thread that is the wall time
of an idle core, and other jobs on a shared machine do not inflate it) of: importing torch, importing ticraft's
training code, loading the toy model (mostly importing diffusers/transformers), building the trainer (latent cache),
the first step, ``--steps`` more steps (samples per CPU second), and the library previews — one pipeline call per
preview (as before issue 15) and one batched call (now). A cProfile of the steps gives the share of the UNet,
attention, the text encoder and the Python around them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time

SECTION = "## Training start-up and step (toy model, CPU)"


def section(out: dict, args: argparse.Namespace) -> str:
    import datetime as _dt

    rows = "\n".join(f"| {k} | {v:.3f} |" if not k.startswith("share") else f"| {k} | {v:.0%} |"
                      for k, v in out.items())
    return (f"{SECTION}\n\n`nice python benchmarks/train_startup.py --threads {args.threads} --batch {args.batch} "
            f"--steps {args.steps} --write-results` — {_dt.date.today().isoformat()}, 2-core CPU, this sandbox "
            f"(shared with other jobs: CPU seconds of this process, so the load does not inflate them; wall times "
            f"were 3–5× longer).\n\n| phase | CPU seconds |\n|---|---:|\n{rows}\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", default=None)
    parser.add_argument("--write-results", action="store_true", help=f"replace the '{SECTION}' section of RESULTS.md")
    args = parser.parse_args()
    out: dict[str, float | str] = {}
    c = time.process_time()
    import torch

    torch.set_num_threads(args.threads)
    out["import torch"] = time.process_time() - c
    c = time.process_time()
    from ticraft.bench.suite import build_suite
    from ticraft.models.load import load_backbone
    from ticraft.training.config import TrainConfig
    from ticraft.training.loop import Trainer
    from ticraft.training.report import preview_prompts, render_previews

    out["import ticraft (training)"] = time.process_time() - c
    c = time.process_time()
    bb = load_backbone("toy")
    out["load toy model (incl. diffusers/transformers imports)"] = time.process_time() - c
    c = time.process_time()
    load_backbone("toy")
    out["load toy model again (weights only)"] = time.process_time() - c
    concept = build_suite(names=["zorb"])[0]
    cfg = TrainConfig.from_options(preset="fast", batch_size=args.batch, steps=args.steps + 1)
    c = time.process_time()
    trainer = Trainer(bb, concept.train_images(), "<startup>", "shape", cfg)
    out["trainer init (latent cache, prompts)"] = time.process_time() - c
    c = time.process_time()
    trainer.train_step()
    out["first step"] = time.process_time() - c
    prof = cProfile.Profile()
    c = time.process_time()
    prof.enable()
    for _ in range(args.steps):
        trainer.train_step()
    prof.disable()
    step_cpu = time.process_time() - c
    out["step (mean)"] = step_cpu / args.steps
    out["samples per CPU second"] = args.batch * args.steps / step_cpu
    prompts = [trainer.preview_prompt(p) for p in preview_prompts(trainer.token, style=False, count=cfg.previews)]
    pipe = bb.pipeline()
    c = time.process_time()
    for i, p in enumerate(prompts):  # the previous render_previews: one pipeline call per preview
        pipe(p, num_inference_steps=cfg.preview_steps, generator=torch.Generator().manual_seed(cfg.seed + i),
             output_type="pil")
    out[f"{len(prompts)} previews, one call each (before)"] = time.process_time() - c
    c = time.process_time()
    render_previews(bb, prompts, seed=cfg.seed, steps=cfg.preview_steps, size=trainer.resolution)
    out[f"{len(prompts)} previews, render_previews (now)"] = time.process_time() - c
    trainer.close()

    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]

    def share(fragment: str) -> float:
        hits = [v[3] for k, v in stats.stats.items() if fragment in f"{k[0]}:{k[2]}"]  # type: ignore[attr-defined]
        return max(hits) / total if hits and total else 0.0

    out["share: UNet forward"] = share("unet_2d_condition.py:forward")
    out["share: backward"] = share("run_backward")
    out["share: attention kernels"] = share("scaled_dot_product_attention")
    out["share: text encoder"] = share("modeling_clip.py:forward")
    out["share: optimiser step"] = share("apply_gradients")
    for k, v in out.items():
        print(f"{k:58s} {v:8.3f}" if isinstance(v, float) else f"{k:58s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "cpu_seconds": out}, f, indent=1)
    if args.write_results:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).parent))
        from results_md import write_section

        write_section(section(out, args))
    s = io.StringIO()
    stats.stream = s  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(8)
    print(s.getvalue())


if __name__ == "__main__":
    main()
