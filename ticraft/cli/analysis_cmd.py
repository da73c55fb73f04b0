"""Analysis commands: `neighbors`, `mix`, `interp`, `map`, `probe bias`, `probe style`, `eval`.

Only typer/rich at the top; torch, models, umap and matplotlib load inside the commands.

Examples::

    ticraft neighbors "<cat-toy>" -k 10 --per-vector
    ticraft neighbors circle --metric l2
    ticraft mix "0.7*<cat-toy> + 0.3*painting - 0.2*blurry" --as "<cat-paint>"
    ticraft interp "<cat-toy>" "<dog-toy>" --steps 8 --prompt "a photo of {} on the beach" --out interp.png
    ticraft map --concepts all --vocab 5000 --method umap --out map.png
    ticraft probe bias "a photo of a <doctor>" --compare "a photo of a <fair-doctor>" --attribute colour -n 64
    ticraft probe style "<glimmic>" --content "a red circle" --content "a blue square"
    ticraft eval "<zorb>" -n 8
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import LibraryOption, ModelOption, console

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.models.backbone import Backbone
    from ticraft.concept import Concept

# ----------------------------------------------------------------------------------------------------- options
DeviceOption = Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda or cuda:N (default: config, else auto).")]
SampleStepsOption = Annotated[Optional[int], typer.Option("--sample-steps", min=1, help="Denoising steps (default: the model's).")]
GuidanceOption = Annotated[Optional[float], typer.Option("--guidance", min=0.0, help="Guidance scale (default: the model's).")]
BatchOption = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per model call.")]
SeedOption = Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed (probes use seed, seed+1, …).")]
ClipOption = Annotated[
    Optional[Path],
    typer.Option("--clip", help="Local folder of a transformers CLIP model (needed for real models; nothing is downloaded)."),
]
JudgeOption = Annotated[str, typer.Option("--judge", help="auto (toy judge for the toy model, else CLIP), toy or clip.")]
JsonOption = Annotated[Optional[Path], typer.Option("--json", help="Also write the full result as JSON here.")]

probe_app = typer.Typer(help="Probe what concepts and words do: bias of an attribute, style transfer.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the analysis commands to the main app."""
    app.command("neighbors")(neighbors_command)
    from ticraft.cli.expression_arg import ExpressionCommand

    app.command("mix", cls=ExpressionCommand)(mix_command)  # "-<zorb>" is an expression, not an option
    app.command("interp")(interp_command)
    app.command("map")(map_command)
    app.command("eval")(eval_command)
    probe_app.command("bias")(probe_bias_command)
    probe_app.command("style")(probe_style_command)
    app.add_typer(probe_app, name="probe")


# ----------------------------------------------------------------------------------------------------- helpers
def _load_model(model: str | None, device: str | None = None) -> "Backbone":
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    from ticraft.generate.sample import cached_backbone

    with console.status(f"loading model {escape(model or '(configured default)')}…", spinner="dots"):
        return cached_backbone(model, device=device)


def _is_concept_token(text: str) -> bool:
    return text.startswith("<") and text.endswith(">") and len(text) > 2


def _resolve(text: str, library: Any, backbone: "Backbone | None", *, words: str = "mean") -> "Concept":
    """``<token>`` → the library concept; an existing embedding file → its concept; anything else → a word."""
    if _is_concept_token(text):
        return library.get(text)
    p = Path(text)
    if p.suffix in (".safetensors", ".pt", ".bin") and p.is_file():
        from ticraft.library import read_file

        return read_file(p)[0]
    if backbone is None:  # pragma: no cover - callers load a model before resolving words
        raise typer.BadParameter(f"{text!r} is a word; a model is needed to look it up")
    from ticraft.analysis.neighbors import word_concept

    return word_concept(backbone, text, mode="vectors" if words == "vectors" else "mean")


def _write_json(path: Path | None, data: object) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"wrote {escape(str(path))}")


def _split_labels(text: str | None) -> list[str] | None:
    if text is None:
        return None
    labels = [t.strip() for t in text.split(",") if t.strip()]
    return labels or None


# --------------------------------------------------------------------------------------------------- neighbors
def neighbors_command(
    query: Annotated[str, typer.Argument(help="A library concept (<token>), an embedding file, or a vocabulary word.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Neighbours per vector.")] = 20,
    metric: Annotated[str, typer.Option("--metric", help="cosine (similarity) or l2 (distance).")] = "cosine",
    per_vector: Annotated[bool, typer.Option("--per-vector", help="Also list neighbours of each vector, not only the mean.")] = False,
    concepts: Annotated[int, typer.Option("--concepts", min=0, help="Nearest library concepts to list.")] = 5,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    json_out: JsonOption = None,
) -> None:
    """Nearest vocabulary tokens of a concept or word, and the nearest library concepts.

    Lists the k nearest tokens of the mean vector (and of each vector with --per-vector), each vector's norm as a
    percentile of the vocabulary's norms (learned vectors often sit far off the word manifold), and the library
    concepts closest to it. <token> means a library concept; anything else is looked up as a word.
    """
    from ticraft.analysis.neighbors import find_neighbors
    from ticraft.cli.common import open_library

    lib = open_library(library)
    bb = _load_model(model, device)
    target = _resolve(query, lib, bb, words="vectors")
    others = _library_concepts(lib, bb) if concepts > 0 else []
    report = find_neighbors(bb, target, k=k, metric=metric, per_vector=per_vector, library_concepts=others,
                            k_concepts=concepts)
    score_name = "cos" if metric == "cosine" else "L2"
    for key in dict.fromkeys(r.key for r in report.rows):
        rows = [r for r in report.rows if r.key == key]
        stats = report.vocab_norms[key]
        table = Table(title=f"{escape(report.query)} · {key} · nearest tokens ({score_name})", title_justify="left")
        table.add_column("#", justify="right", style="dim")
        for r in rows:
            table.add_column(f"{r.label}\nnorm {r.norm:.3f} · p{r.percentile:.0f}")
        for i in range(max(len(r.matches) for r in rows)):
            table.add_row(str(i + 1), *[(f"{escape(r.matches[i].token)} [dim]{r.matches[i].score:.3f}[/]"
                                        if i < len(r.matches) else "") for r in rows])
        console.print(table)
        console.print(f"[dim]vocabulary norms ({key}): median {stats['median']:.3f}, 99th percentile "
                      f"{stats['p99']:.3f}, max {stats['max']:.3f}[/]")
        far = [r for r in rows if r.norm > 1.5 * stats["max"]]
        if far:
            console.print(f"[yellow]{', '.join(r.label for r in far)}: norm far above every vocabulary token "
                          f"(off the word manifold; such vectors tend to dominate a prompt)[/]")
    if report.concepts:
        t = Table()
        t.add_column("nearest library concept")
        t.add_column("cos (mean vectors)", justify="right")
        for m in report.concepts:
            t.add_row(escape(m.token), f"{m.cosine:.3f}")
        console.print(t)
    _write_json(json_out, report.to_dict())


def _library_concepts(lib: Any, backbone: "Backbone", tag: str | None = None) -> list["Concept"]:
    """Library concepts that fit ``backbone`` (others skipped quietly: they belong to another model)."""
    from ticraft.errors import TicraftError

    out = []
    for e in (lib.search(tag=tag) if tag else lib.entries()):
        if e.dims != backbone.dims:
            continue
        try:
            c = lib.get(e.token)
            backbone.check_concept(c)
        except TicraftError:
            continue
        out.append(c)
    return out


# --------------------------------------------------------------------------------------------------------- mix
def mix_command(
    expression: Annotated[str, typer.Argument(help='e.g. "0.7*<cat-toy> + 0.3*painting - 0.2*blurry"; see --help.')],
    as_token: Annotated[Optional[str], typer.Option("--as", help="Token to save the result under, e.g. <cat-paint>.")] = None,
    words: Annotated[str, typer.Option("--words", help="mean: a multi-token word is its rows' mean; vectors: one vector per token.")] = "mean",
    tags: Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="Tag for the saved concept (repeatable).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing concept with that token.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Evaluate and show the result without saving it.")] = False,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
) -> None:
    """Arithmetic on concepts and words, saved to the library.

    Numbers, + - * /, parentheses, <concept> tokens, vocabulary words (quote phrases: "oil painting") and the
    functions slerp(a, b, t), lerp(a, b, t), norm(a[, x]), vec(a, i), concat(a, b, ...), mean(a[, b, ...]),
    pad(a, n), merge(a, n). Results equal the same Python operators on Concept exactly.
    """
    from ticraft.analysis import expr as ex
    from ticraft.analysis.neighbors import word_concept
    from ticraft.cli.common import open_library
    from ticraft.cli.expression_arg import strip_marker
    from ticraft.errors import TicraftError

    expression = strip_marker(expression)
    if words not in ("mean", "vectors"):
        raise typer.BadParameter("use mean or vectors", param_hint="--words")
    tree = ex.parse(expression)  # syntax errors first: they are the most likely mistake
    if as_token is None and not dry_run:
        raise TicraftError('give the new concept a token with --as "<name>" (or use --dry-run)')
    lib = open_library(library)
    bb = _load_model(model, device) if ex.words(tree) else None
    word_fn = (lambda w: word_concept(bb, w, mode=words)) if bb is not None else None  # type: ignore[arg-type]
    result = ex.mix(expression, concepts=lib.get, words=word_fn, token=as_token or "<mix>")
    result.meta["words"] = words
    if bb is not None:
        result.meta["model"] = bb.name
    table = Table(title=f"{escape(result.token)} = {escape(expression)}", title_justify="left")
    table.add_column("encoder")
    table.add_column("vectors", justify="right")
    table.add_column("norms")
    for key, norms in result.norms().items():
        table.add_row(key, str(result.num_vectors), ", ".join(f"{n:.3f}" for n in norms))
    console.print(table)
    if dry_run:
        console.print("[dim]dry run: nothing saved[/]")
        return
    entry = lib.add(result, tags=tags or (), overwrite=overwrite)
    console.print(f"saved [cyan]{escape(entry.token)}[/] to {escape(str(entry.folder))}")


# ------------------------------------------------------------------------------------------------------ interp
def interp_command(
    a: Annotated[str, typer.Argument(help="Start: <concept>, embedding file or word.")],
    b: Annotated[str, typer.Argument(help="End: <concept>, embedding file or word.")],
    steps: Annotated[int, typer.Option("--steps", min=2, help="Frames, endpoints included.")] = 8,
    mode: Annotated[str, typer.Option("--mode", help="slerp or lerp.")] = "slerp",
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Prompt with {} where the concept goes.")] = "a photo of {}",
    negative: Annotated[str, typer.Option("--negative", help="Negative prompt.")] = "",
    seed: SeedOption = 0,
    match: Annotated[Optional[str], typer.Option("--match", help="Different vector counts: pad or merge.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Strip PNG.")] = Path("interp.png"),
    save_vectors: Annotated[Optional[Path], typer.Option("--save-vectors", help="Also write each frame's vectors to this folder.")] = None,
    no_render: Annotated[bool, typer.Option("--no-render", help="Only compute (and --save-vectors) the frames.")] = False,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
) -> None:
    """Interpolate between two concepts (or words) and render a strip with one seed across it."""
    from ticraft.analysis.interpolate import interpolation_path, render_interpolation, save_frames
    from ticraft.cli.common import open_library

    lib = open_library(library)
    bb = _load_model(model, device)
    ca, cb = _resolve(a, lib, bb), _resolve(b, lib, bb)
    frames = interpolation_path(ca, cb, steps=steps, mode=mode, match=match)  # validates before rendering
    table = Table(title=f"{escape(ca.token)} → {escape(cb.token)} ({mode})", title_justify="left")
    table.add_column("frame", justify="right")
    table.add_column("t", justify="right")
    table.add_column("norms")
    for i, f in enumerate(frames):
        table.add_row(str(i), f"{f.t:.3f}", "; ".join(", ".join(f"{n:.3f}" for n in ns) for ns in f.concept.norms().values()))
    console.print(table)
    if save_vectors is not None:
        paths = save_frames(frames, save_vectors)
        console.print(f"wrote {len(paths)} vector files to {escape(str(save_vectors))}")
    if no_render:
        return
    with console.status(f"rendering {steps} frames…", spinner="dots"):
        res = render_interpolation(bb, ca, cb, steps=steps, mode=mode, match=match, prompt=prompt, negative=negative,
                                   seed=seed, sample_steps=sample_steps, guidance=guidance, batch_size=batch_size,
                                   out=out, library=lib)
    console.print(f"wrote {escape(str(res.path))}")


# --------------------------------------------------------------------------------------------------------- map
def map_command(
    concepts: Annotated[str, typer.Option("--concepts", help="all, none, a tag, or comma-separated <tokens>.")] = "all",
    vocab: Annotated[str, typer.Option("--vocab", help="Vocabulary tokens to sample (seeded), or all.")] = "5000",
    method: Annotated[str, typer.Option("--method", help="umap or pca.")] = "umap",
    out: Annotated[Path, typer.Option("--out", "-o", help="Map PNG; coordinates go beside it as .json and .csv.")] = Path("map.png"),
    seed: SeedOption = 0,
    neighbors: Annotated[int, typer.Option("--neighbors", min=0, help="Nearest tokens highlighted per concept.")] = 5,
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="Token table to map (clip, clip_l, clip_g; default the first).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute even if this map is cached.")] = False,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
) -> None:
    """Map learned concepts among vocabulary tokens (UMAP or PCA): a labelled PNG plus JSON/CSV coordinates."""
    from ticraft.analysis.maps import build_map
    from ticraft.cli.common import open_library

    lib = open_library(library)
    bb = _load_model(model, device)
    chosen = _pick_concepts(concepts, lib, bb)
    if concepts.strip().lower() == "all" and len(chosen) < len(lib.entries()):
        console.print(f"[dim]{len(lib.entries()) - len(chosen)} library concept(s) belong to other models: "
                      f"not on this map[/]")
    with console.status(f"{method.upper()} over {vocab} tokens + {len(chosen)} concepts…", spinner="dots"):
        m = build_map(bb, chosen, method=method, vocab=vocab, seed=seed, key=encoder, neighbors=neighbors,  # type: ignore[arg-type]
                      cache=not no_cache)
        paths = m.save(out)
    table = Table(title=f"{method.upper()} map · {len(m.of_kind('vocab')) + len(m.of_kind('neighbor'))} tokens",
                  title_justify="left")
    table.add_column("concept")
    table.add_column("x", justify="right")
    table.add_column("y", justify="right")
    table.add_column("nearest tokens")
    for p in m.of_kind("concept"):
        near = [q.label for q in m.of_kind("neighbor") if p.label in q.near]
        table.add_row(escape(p.label), f"{p.x:.3f}", f"{p.y:.3f}", escape(", ".join(near)))
    if m.of_kind("concept"):
        console.print(table)
    for kind, path in paths.items():
        console.print(f"wrote {kind}: {escape(str(path))}")


def _pick_concepts(spec: str, lib: Any, bb: "Backbone") -> list["Concept"]:
    s = spec.strip()
    if s.lower() == "none":
        return []
    if s.lower() == "all":
        return _library_concepts(lib, bb)
    if "<" in s:
        return [lib.get(t.strip()) for t in s.split(",") if t.strip()]
    found = _library_concepts(lib, bb, tag=s)
    if not found:
        console.print(f"[yellow]no concept of this model is tagged {escape(s)!r}: mapping the vocabulary only[/]")
    return found


# ------------------------------------------------------------------------------------------------------- probes
def probe_bias_command(
    prompt: Annotated[str, typer.Argument(help='e.g. "a photo of a doctor"; <concept> tokens come from the library.')],
    compare: Annotated[Optional[str], typer.Option("--compare", "-c", help="A second prompt, probed with the same seeds.")] = None,
    attribute: Annotated[str, typer.Option("--attribute", "-a", help="toy: shape|colour|texture|size|background|style; CLIP: gender|age|colour|any with --labels.")] = "colour",
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Images per prompt.")] = 64,
    seed: SeedOption = 0,
    labels: Annotated[Optional[str], typer.Option("--labels", help="Comma-separated labels to balance over (others count as 'other').")] = None,
    template: Annotated[Optional[str], typer.Option("--template", help="Zero-shot CLIP prompt with {} for the label.")] = None,
    clip: ClipOption = None,
    judge: JudgeOption = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="Bar chart PNG.")] = Path("bias.png"),
    json_out: JsonOption = None,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
) -> None:
    """Bias of an attribute in a prompt's images, optionally against a second prompt.

    Generates n images (seeds seed…seed+n-1), reads the attribute with a judge (the toy judge for the toy model,
    zero-shot CLIP from --clip otherwise), and reports the distribution, its entropy and its total variation
    distance to uniform, with a bar chart.
    """
    from ticraft.analysis.probes import probe_bias
    from ticraft.cli.common import open_library

    lib = open_library(library)
    bb = _load_model(model, device)
    total = n * (2 if compare else 1)
    with console.status(f"rendering and judging {total} images…", spinner="dots"):
        res = probe_bias(bb, prompt, compare=compare, attribute=attribute, n=n, seed=seed, labels=_split_labels(labels),
                         clip=clip, template=template, judge=judge, library=lib, steps=sample_steps, guidance=guidance,
                         batch_size=batch_size, out=out)
    r0 = res.reports[0]
    table = Table(title=f"{r0.attribute} · n={n} · {escape(r0.judge)}", title_justify="left")
    table.add_column(r0.attribute)
    for r in res.reports:
        table.add_column(escape(r.prompt), justify="right")
    labels_all = list(dict.fromkeys(lab for r in res.reports for lab in r.distribution.labels))
    for lab in labels_all:
        table.add_row(escape(lab), *[f"{r.distribution.counts.get(lab, 0)}  ({r.distribution.shares.get(lab, 0.0):.0%})"
                                     for r in res.reports])
    table.add_section()
    table.add_row("entropy (bits)", *[f"{r.distribution.entropy:.3f} / {r.distribution.max_entropy:.3f}" for r in res.reports])
    table.add_row("distance to uniform (TV)", *[f"{r.distribution.tv_uniform:.3f}" for r in res.reports])
    table.add_row("majority", *[f"{escape(r.distribution.majority)} {r.distribution.majority_share:.0%}" for r in res.reports])
    console.print(table)
    if res.tv_reduction is not None:
        word = "closer to" if res.tv_reduction > 0 else "further from"
        console.print(f"the second prompt is {abs(res.tv_reduction):.3f} {word} uniform (total variation)")
    console.print(f"wrote {escape(str(res.chart))}")
    _write_json(json_out, res.to_dict())


def probe_style_command(
    style: Annotated[str, typer.Argument(help="The style concept, e.g. <glimmic>.")],
    content: Annotated[list[str], typer.Option("--content", "-c", help='Content prompt, e.g. "a red circle" (repeatable).')],
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Images per prompt.")] = 4,
    seed: SeedOption = 0,
    template: Annotated[Optional[str], typer.Option("--template", help='How to add the style, e.g. "{content} in the style of {style}".')] = None,
    reference: Annotated[Optional[list[Path]], typer.Option("--reference", help="Style reference images or folders (default: the concept's training images).")] = None,
    clip: ClipOption = None,
    judge: JudgeOption = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="Grid PNG.")] = Path("style.png"),
    json_out: JsonOption = None,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
) -> None:
    """Style transfer of a style concept: style similarity and content preservation per content prompt.

    Renders each content prompt with and without the style (same seeds); style similarity compares the styled
    images with the concept's training images, content preservation compares each with its unstyled twin.
    """
    from ticraft.analysis.probes import probe_style, reference_images
    from ticraft.cli.common import open_library

    lib = open_library(library)
    bb = _load_model(model, device)
    concept = lib.get(style)
    refs = reference_images(lib if not reference else None, concept.token, reference or ())
    with console.status(f"rendering {2 * n * len(content)} images…", spinner="dots"):
        rep = probe_style(bb, concept, content, references=refs, n=n, seed=seed, template=template, clip=clip,
                          judge=judge, library=lib, steps=sample_steps, guidance=guidance, batch_size=batch_size, out=out)
    table = Table(title=f"style probe {escape(rep.style)} · {escape(rep.scorer)} · {len(refs)} references",
                  title_justify="left")
    table.add_column("content")
    table.add_column("style similarity", justify="right")
    table.add_column("content preservation", justify="right")
    for r in rep.rows:
        table.add_row(escape(r.content), f"{r.style_similarity:.3f}", f"{r.content_preservation:.3f}")
    table.add_section()
    table.add_row("mean", f"{rep.style_similarity:.3f}", f"{rep.content_preservation:.3f}")
    console.print(table)
    console.print(f"wrote {escape(str(rep.grid))}")
    _write_json(json_out, rep.to_dict())


# -------------------------------------------------------------------------------------------------------- eval
def eval_command(
    concept_token: Annotated[str, typer.Argument(help="The concept, e.g. <cat-toy>.")],
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Samples per prompt.")] = 8,
    seed: SeedOption = 0,
    clip: ClipOption = None,
    scorer: Annotated[str, typer.Option("--scorer", help="auto (toy judge for the toy model, else CLIP), toy or clip.")] = "auto",
    prompts: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="Edited prompt with {} for the concept (repeatable; CLIP).")] = None,
    reference: Annotated[Optional[list[Path]], typer.Option("--reference", help="Training images or folders (default: the library's).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write a grid of the samples (PNG).")] = None,
    json_out: JsonOption = None,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
) -> None:
    """The paper's reconstruction and editability of a concept.

    Reconstruction: similarity of "a photo of S*" samples to the training images; editability: similarity of edited
    prompts' samples to the prompt text without S*. CLIP from --clip, or the toy judge's exact counterparts.
    """
    from ticraft.analysis.metrics import evaluate_concept
    from ticraft.analysis.probes import reference_images
    from ticraft.cli.common import open_library

    lib = open_library(library)
    bb = _load_model(model, device)
    concept = lib.get(concept_token)
    refs = reference_images(lib if not reference else None, concept.token, reference or ())
    with console.status("rendering and scoring…", spinner="dots"):
        rep = evaluate_concept(bb, concept, references=refs, n=n, seed=seed, scorer=scorer, clip=clip, prompts=prompts,
                               library=lib, steps=sample_steps, guidance=guidance, batch_size=batch_size, out=out)
    table = Table(title=f"{escape(rep.concept)} · {escape(rep.scorer)} · n={n}", title_justify="left")
    table.add_column("measure")
    table.add_column("prompt")
    table.add_column("against")
    table.add_column("score", justify="right")
    d = rep.reconstruction_detail
    table.add_row("reconstruction", escape(d.prompt), escape(d.target), f"{d.score:.3f}")
    for e in rep.edits:
        table.add_row("editability", escape(e.prompt), escape(e.target), f"{e.score:.3f}")
    table.add_section()
    table.add_row("[bold]reconstruction[/]", "", "", f"[bold]{rep.reconstruction:.3f}[/]")
    table.add_row("[bold]editability[/]", "", "", f"[bold]{rep.editability:.3f}[/]")
    console.print(table)
    if rep.grid is not None:
        console.print(f"wrote {escape(str(rep.grid))}")
    _write_json(json_out, rep.to_dict())
