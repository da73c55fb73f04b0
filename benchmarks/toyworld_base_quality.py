"""Judge the shipped toy base model on held-out prompts and record the figures in benchmarks/RESULTS.md.

    python benchmarks/toyworld_base_quality.py [--n 200] [--steps 20] [--guidance 4] [--weights DIR] [--no-write]

Prompts are fully specified ("a photo of a small red striped star on a blue background in outline style") for
attribute combinations the base model never saw in training (``render.is_held_out``). Each generated image is read by
the judge; the table gives the share of images whose judged attribute equals the prompt's, overall and per style.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from results_md import write_section

TARGETS = {"colour": 0.90, "shape": 0.85, "background": 0.90, "texture": 0.75, "style": 0.80}
SECTION = "## Toy base model quality"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="held-out prompts (one image each)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", type=Path, default=None, help="pipeline folder (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu | cuda (scores differ from CPU's in the last bits only)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    import torch

    from ticraft.toyworld.base import eval_prompts, evaluate, load_pipeline
    from ticraft.toyworld.judge import JUDGED_FIELDS

    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.weights, device=args.device)
    attrs = eval_prompts(args.n, seed=args.seed)
    t0 = time.time()
    acc, judgements = evaluate(pipe, attrs, seed=args.seed, steps=args.steps, guidance=args.guidance)
    seconds = time.time() - t0

    rows = [f"| all ({args.n}) | " + " | ".join(f"{acc[f]:.1%}" for f in JUDGED_FIELDS) + " |"]
    for style in ("none", "outline", "pixelated", "glimmic"):
        pairs = [(a, j) for a, j in zip(attrs, judgements, strict=True) if a.style == style]
        if pairs:
            cells = [f"{sum(getattr(j, f) == getattr(a, f) for a, j in pairs) / len(pairs):.0%}" for f in JUDGED_FIELDS]
            rows.append(f"| style={style} ({len(pairs)}) | " + " | ".join(cells) + " |")
    goals = [f"≥ {TARGETS[f]:.0%}" if f in TARGETS else "—" for f in JUDGED_FIELDS]
    rows.append("| target | " + " | ".join(goals) + " |")
    header = "| prompts | " + " | ".join(JUDGED_FIELDS) + " |\n|---|" + "---|" * len(JUDGED_FIELDS)
    met = all(acc[f] >= t for f, t in TARGETS.items())
    trained = _trained_summary(args.weights)
    body = "\n".join(
        [
            SECTION,
            "",
            f"`python benchmarks/toyworld_base_quality.py --n {args.n}`: the shipped `ticraft/toyworld/weights` model, "
            f"{args.steps} DDIM steps, guidance {args.guidance}, seed {args.seed}, one 32 px image per held-out prompt "
            f"(attribute combinations never seen in training), read by the judge. Sampling + judging took "
            f"{seconds:.0f} s on "
            + (f"CPU ({args.threads} threads)." if args.device == "cpu" else f"{args.device}."),
            "",
            header,
            *rows,
            "",
            f"All targets met: {'yes' if met else 'no'}"
            + ("." if met else f" (below target: {', '.join(f for f, t in TARGETS.items() if acc[f] < t)}).")
            + f" Model: {trained}.",
            "",
        ]
    )
    print(body)
    if not args.no_write:
        write_section(body)


def _trained_summary(weights: Path | None) -> str:
    """One line on how the evaluated model was trained (from its ticraft_toyworld.json)."""
    import json

    from ticraft.toyworld.base import WEIGHTS_DIR

    info_file = (weights or WEIGHTS_DIR) / "ticraft_toyworld.json"
    if not info_file.is_file():
        return "training record missing"
    info = json.loads(info_file.read_text())
    cfg = info["config"]
    return (
        f"VAE {cfg['vae_steps']} + decoder {cfg['decoder_steps']} steps, text encoder + UNet "
        f"{info.get('unet_steps_done', cfg['unet_steps'])} steps of batch {cfg['unet_batch']}, "
        f"UNet channels {tuple(cfg['unet_channels'])}, {cfg['n_images']} renders, seed {cfg['seed']}"
        + (f", on {info['device']}" if info.get("device") else "")
        + (f" (stage 2 fitted to a {info['time_budget_s']:.0f} s budget)" if info.get("time_budget_s") else "")
    )


if __name__ == "__main__":
    main()
