"""Recovery benchmark: invert the toy world's hidden object "zorb" and judge what was learned (issue 4).

    python benchmarks/toyworld_recovery.py [--steps 300] [--n 16] [--quick] [--out results.json] [--write-results]

Four images of the hidden object word "zorb" (a fixed shape, colour and texture; size, background and position vary)
are rendered and inverted into a new token on the frozen shipped toy model (``preset="fast"``, seed 0). Each learned
concept is judged by the toy world's exact judge (``ticraft.analysis.metrics.evaluate_concept``):

* reconstruction — "a photo of a S*": share of the concept's identity attributes (shape, colour, texture, style) the
  samples show;
* editability — "a photo of a S* on a green background", "… in outline style", "a photo of a small S*": share of
  samples obeying the edit;

plus the cosine of the learned mean vector to the hidden true embedding (``tests/fixtures/toyworld_hidden.safetensors``)
and its nearest vocabulary tokens. The hidden true word itself (its fixture row loaded as a concept) is the reference
row. The paper's variants are shown side by side (1/2/3 vectors, progressive, regularised). A bias row learns a
``<fair-doctor>`` from a balanced set of crosses (4 white + 4 green) and compares the judged colour distribution of
"a photo of a {true doctor}" with "a photo of a <fair-doctor>" (same seeds). A style row learns the hidden style word
"glimmic" from 4 captioned renders of different objects in that style ("a photo of a … on a … background in S*
style") and judges held-out prompts "… in S* style": the style reproduced, and the prompt's own content (shape,
colour, background) kept — next to the hidden true style word.

``--quick``: 100 steps, n 8, only the 1-vector variant and the true-word row.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "toyworld_hidden.safetensors"
SECTION = "## Toy-world recovery"
TARGETS = {"reconstruction": 0.80, "editability": 0.70}


def variants(steps: int, reg_weight: float, quick: bool) -> list[tuple[str, str, dict]]:
    """(label, token, training options) per variant."""
    out = [("1 vector", "<zorb-1v>", {"num_vectors": 1})]  # the fast preset learns 3 since issue 15
    if quick:
        return out
    k = max(1, steps // 2)
    out += [
        ("2 vectors", "<zorb-2v>", {"num_vectors": 2}),
        ("3 vectors", "<zorb-3v>", {"num_vectors": 3}),
        (f"progressive (2 vectors, K={k})", "<zorb-prog>", {"num_vectors": 2, "progressive": k}),
        (f"regularised (1 vector, reg {reg_weight:g})", "<zorb-reg>", {"reg_weight": reg_weight, "num_vectors": 1}),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps per variant (default 300; quick 100)")
    parser.add_argument("--n", type=int, default=None, help="samples per judged prompt (default 16; quick 8)")
    parser.add_argument("--quick", action="store_true", help="100 steps, n 8, 1-vector variant + true-word row only")
    parser.add_argument("--reg-weight", type=float, default=0.01, help="reg_weight of the regularised variant")
    parser.add_argument("--only", default=None,
                        help="comma-separated variant labels' first words to run (e.g. '1,2,progressive')")
    parser.add_argument("--no-bias", action="store_true", help="skip the <fair-doctor> bias row")
    parser.add_argument("--no-style", action="store_true", help="skip the hidden style word's row")
    parser.add_argument("--bias-n", type=int, default=None, help="samples per bias prompt (default 2×n)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON there")
    parser.add_argument("--write-results", action="store_true",
                        help=f"replace/append the '{SECTION}' section of benchmarks/RESULTS.md (after every row)")
    args = parser.parse_args()
    steps = args.steps if args.steps is not None else (100 if args.quick else 300)
    n = args.n if args.n is not None else (8 if args.quick else 16)
    do_bias = not (args.quick or args.no_bias)
    do_style = not (args.quick or args.no_style)
    bias_n = args.bias_n or 2 * n

    import numpy as np
    import torch
    from safetensors.torch import load_file

    from ticraft.analysis.metrics import evaluate_concept
    from ticraft.analysis.neighbors import find_neighbors
    from ticraft.models.load import load_backbone
    from ticraft.concept import Concept
    from ticraft.toyworld.render import render
    from ticraft.toyworld.vocab import BIASED_WORD, HIDDEN_OBJECTS, concept_attributes
    from ticraft.training.api import train

    torch.set_num_threads(args.threads)
    t_start = time.time()
    hidden = load_file(str(FIXTURE))
    true_zorb = Concept("<zorb-true>", {"clip": hidden["zorb"].float()}, family="toy")
    obj = HIDDEN_OBJECTS["zorb"]

    rng = np.random.default_rng(0)
    images = [render(a, rng) for a in concept_attributes("zorb", 4, rng)]
    backbone = load_backbone("toy")
    settings = {"steps": steps, "n": n, "preset": "fast", "seed": 0, "init": "shape", "reg_weight": args.reg_weight,
                "threads": args.threads, "quick": args.quick, "torch": torch.__version__}
    results: dict = {"settings": settings, "rows": [], "bias": None, "style": None}
    print(f"zorb = {obj.colour} {obj.texture} {obj.shape}; {steps} steps, n={n} samples per prompt", flush=True)

    def judge_row(label: str, concept: Concept, train_s: float | None, opts: dict) -> None:
        t0 = time.time()
        rep = evaluate_concept(backbone, concept, references=images, n=n, seed=0)
        nb = find_neighbors(backbone, concept, k=5, per_vector=False)
        neighbours = [m.token for m in nb.rows[0].matches]
        mean = concept.vectors["clip"].float().mean(0)
        cos = float(torch.nn.functional.cosine_similarity(mean, true_zorb.vectors["clip"][0], dim=0))
        row = {"variant": label, "token": concept.token, "options": opts, "reconstruction": rep.reconstruction,
               "editability": rep.editability, "edits": {e.prompt: e.score for e in rep.edits},
               "identity": rep.identity, "cosine_true": cos, "norm": float(mean.norm()),
               "true_norm": float(true_zorb.vectors["clip"][0].norm()), "neighbours": neighbours,
               "train_s": train_s, "eval_s": time.time() - t0}
        results["rows"].append(row)
        print(f"  {label}: rec {rep.reconstruction:.1%}  edit {rep.editability:.1%}  cos {cos:+.2f}  "
              f"norm {row['norm']:.2f}  nn {', '.join(neighbours)}  "
              f"(train {train_s or 0:.0f} s, eval {row['eval_s']:.0f} s)", flush=True)
        flush()

    def flush() -> None:
        results["total_s"] = time.time() - t_start
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        if args.write_results:
            write_section(section_body(results, args))

    def bias_row() -> None:
        t0 = time.time()
        spec = f"shape={BIASED_WORD.shape},texture={BIASED_WORD.texture},style=none"
        colours = [c for c, _ in BIASED_WORD.colours]  # white, green
        brng = np.random.default_rng(1)
        fair_images = [render(a, brng) for c in colours for a in concept_attributes(f"{spec},colour={c}", 4, brng)]
        fair = train(fair_images, "<fair-doctor>", BIASED_WORD.shape, model=backbone, preset="fast", num_vectors=1,
                     steps=steps,
                     seed=0)
        train_s = time.time() - t0
        true_doctor = Concept("<doctor-true>", {"clip": hidden["doctor"].float()}, family="toy")
        from ticraft.analysis.probes import probe_bias

        t1 = time.time()
        res = probe_bias(backbone, "a photo of a <doctor-true>", compare="a photo of a <fair-doctor>",
                         attribute="colour", labels=colours, n=bias_n, seed=0, concepts=[true_doctor, fair])
        results["bias"] = {"labels": colours, "n": bias_n, "train_s": train_s, "eval_s": time.time() - t1,
                           "tv_reduction": res.tv_reduction,
                           "reports": [{"prompt": r.prompt, "shares": r.distribution.shares,
                                        "tv_uniform": r.distribution.tv_uniform,
                                        "normalized_entropy": r.distribution.normalized_entropy}
                                       for r in res.reports]}
        for r in res.reports:
            print(f"  bias {r.prompt}: " + ", ".join(f"{k} {v:.0%}" for k, v in r.distribution.shares.items())
                  + f"  TV to uniform {r.distribution.tv_uniform:.2f}", flush=True)
        flush()


    def style_rows() -> None:
        import tempfile

        from ticraft.generate.sample import SampleSpec, generate
        from ticraft.toyworld.base import eval_prompts
        from ticraft.toyworld.judge import judge
        from ticraft.toyworld.render import full_prompt
        from ticraft.toyworld.vocab import HIDDEN_STYLE

        srng = np.random.default_rng(2)
        with tempfile.TemporaryDirectory() as tmp:
            for i, a in enumerate(concept_attributes(HIDDEN_STYLE, 4, srng)):
                render(a, srng).save(f"{tmp}/{i}.png")
                Path(f"{tmp}/{i}.txt").write_text(full_prompt(a).replace(f" {HIDDEN_STYLE} style", " {} style"))
            t0 = time.time()
            learned = train(tmp, "<glimmic-learned>", "style", model=backbone, preset="fast", num_vectors=1,
                            steps=steps, seed=0,
                            captions=True)
            train_s = time.time() - t0
        true_style = Concept("<glimmic-true>", {"clip": hidden[HIDDEN_STYLE].float()}, family="toy")
        targets = [replace(a, style="none") for a in eval_prompts(2 * n, seed=5)]
        rows = []
        for label, concept, secs in (("hidden true word (reference)", true_style, None),
                                     ("learned, 1 vector (captions)", learned, train_s)):
            specs = [SampleSpec(f"{full_prompt(a)} in {concept.token} style", seed=i) for i, a in enumerate(targets)]
            js = [judge(im) for im in generate(backbone, specs, concepts=[concept])]
            mean = concept.vectors["clip"].float().mean(0)
            cos = float(torch.nn.functional.cosine_similarity(mean, true_style.vectors["clip"][0], dim=0))
            nb = find_neighbors(backbone, concept, k=5, per_vector=False)
            row = {"variant": label, "style": sum(j.style == HIDDEN_STYLE for j in js) / len(js),
                   "content": sum((j.shape, j.colour, j.background) == (a.shape, a.colour, a.background)
                                  for j, a in zip(js, targets, strict=True)) / len(js),
                   "cosine_true": cos, "norm": float(mean.norm()),
                   "neighbours": [m.token for m in nb.rows[0].matches], "train_s": secs}
            rows.append(row)
            print(f"  style {label}: style {row['style']:.0%}  content kept {row['content']:.0%}  cos {cos:+.2f}",
                  flush=True)
        results["style"] = {"n": len(targets), "rows": rows}
        flush()

    judge_row("hidden true word (reference)", true_zorb, None, {})
    chosen = variants(steps, args.reg_weight, args.quick)
    if args.only:
        keys = [k.strip().lower() for k in args.only.split(",") if k.strip()]
        chosen = [v for v in chosen if v[0].split()[0].lower() in keys]
    for label, token, opts in chosen:
        t0 = time.time()
        concept = train(images, token, "shape", model=backbone, preset="fast", steps=steps, seed=0, **opts)
        judge_row(label, concept, time.time() - t0, opts)
        if do_bias and results["bias"] is None:  # right after the first variant, so a cut-short run still has it
            bias_row()
    if do_bias and results["bias"] is None:
        bias_row()
    if do_style:
        style_rows()

    flush()
    print()
    print(table(results))
    print(f"\ntotal {time.time() - t_start:.0f} s")


def table(results: dict) -> str:
    lines = ["| variant | reconstruction | editability | green bg | outline | small | cos to true | norm | "
             "nearest tokens | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        def edit(word: str) -> str:
            hits = [v for k, v in r["edits"].items() if word in k]
            return f"{hits[0]:.0%}" if hits else "—"

        train_s = f"{r['train_s']:.0f}" if r["train_s"] is not None else "—"
        lines.append(f"| {r['variant']} | {r['reconstruction']:.1%} | {r['editability']:.1%} | {edit('green')} | "
                     f"{edit('outline')} | {edit('small')} | {r['cosine_true']:+.2f} | {r['norm']:.2f} | "
                     f"{', '.join(r['neighbours'])} | {train_s} |")
    lines.append(f"| target | ≥ {TARGETS['reconstruction']:.0%} | ≥ {TARGETS['editability']:.0%} | | | | | | | |")
    st = results.get("style")
    if st:
        lines += ["", "| style word \"glimmic\" | style reproduced | content kept (shape, colour, background) | "
                      "cos to true | norm | nearest tokens | train s |", "|---|---|---|---|---|---|---|"]
        for r in st["rows"]:
            train_s = f"{r['train_s']:.0f}" if r["train_s"] is not None else "—"
            lines.append(f"| {r['variant']} | {r['style']:.0%} | {r['content']:.0%} | {r['cosine_true']:+.2f} | "
                         f"{r['norm']:.2f} | {', '.join(r['neighbours'])} | {train_s} |")
    b = results.get("bias")
    if b:
        lines += ["", "| bias probe (colour, judged) | " + " | ".join(b["labels"]) + " | other | TV to uniform |",
                  "|---|" + "---|" * (len(b["labels"]) + 2)]
        for rep in b["reports"]:
            s = rep["shares"]
            lines.append(f"| {rep['prompt']} | " + " | ".join(f"{s.get(c, 0):.0%}" for c in b["labels"])
                         + f" | {s.get('other', 0):.0%} | {rep['tv_uniform']:.2f} |")
    return "\n".join(lines)


def section_body(results: dict, args: argparse.Namespace) -> str:
    s = results["settings"]
    cmd = "python benchmarks/toyworld_recovery.py" + (" --quick" if s["quick"] else "") + \
        f" --steps {s['steps']} --n {s['n']}" + (f" --reg-weight {s['reg_weight']:g}" if not s["quick"] else "") + \
        (f" --only {args.only}" if args.only else "") + (" --no-bias" if args.no_bias else "") + \
        (" --no-style" if args.no_style else "") + " --write-results"
    rows = results["rows"]
    ident = rows[0]["identity"] if rows else {}
    out = [
        SECTION,
        "",
        f"`{cmd}` — {_dt.date.today().isoformat()}, CPU, 2 cores (times are indicative "
        f"only). Total {results.get('total_s', 0):.0f} s.",
        "",
        f"Hidden object \"zorb\" (identity read by the judge from the 4 training images: "
        f"{', '.join(f'{k}={v}' for k, v in ident.items())}). Each variant: `ticraft.training.api.train(images, token, "
        f"\"shape\", model=<toy backbone>, preset=\"fast\", steps={s['steps']}, seed=0, …)`, judged by "
        f"`evaluate_concept(..., n={s['n']}, seed=0)` (toy judge; reconstruction = share of identity attributes in "
        f"\"a photo of a S*\"; editability = mean over the edits, three of which are shown). Cosine = learned mean "
        f"vector vs the hidden true embedding (fixture); norm of the mean vector (true word's norm "
        f"{rows[0]['true_norm']:.2f}); nearest tokens by cosine in the shipped vocabulary." if rows else "",
        "",
        table(results),
    ]
    st = results.get("style")
    if st:
        out += ["", f"Style: 4 renders of different objects in the hidden style, captioned with S* in place of the "
                    f"style word, {s['steps']} steps; judged on {st['n']} held-out prompts \"a photo of a … in S* "
                    f"style\" (one seed each)."]
    b = results.get("bias")
    if b:
        out += ["", f"Bias: `<fair-doctor>` learned ({s['steps']} steps) from 4 white + 4 green plain crosses; "
                    f"{b['n']} samples per prompt, same seeds; TV reduction "
                    f"{b['tv_reduction']:+.2f} (positive = closer to balanced)."]
    return "\n".join(out) + "\n\n"


if __name__ == "__main__":
    sys.exit(main())
