"""What concepts do in pictures: `eval` (the paper's reconstruction and editability), `probe bias`,
`probe style`.

Only typer/rich at the top; torch, models and the judges load inside the commands.

Examples::

    ticraft eval "<zorb>" -n 8
    ticraft probe bias "a photo of a <doctor>" --compare "a photo of a <fair-doctor>" --attribute colour -n 64
    ticraft probe style "<glimmic>" --content "a red circle" --content "a blue square"
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import console, load_model, open_library
from ticraft.cli.lookup import split_labels, write_json
from ticraft.cli.options import (
    BatchSizeOption,
    ClipOption,
    DeviceOption,
    DtypeOption,
    GuidanceOption,
    JsonOutOption,
    Judge,
    JudgeOption,
    LibraryOption,
    ModelOption,
    SampleStepsOption,
    SeedOption,
)

probe_app = typer.Typer(
    help="Probe what concepts and words do: bias of an attribute, style transfer.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add `eval` and the `probe` group to the main app."""
    app.command("eval")(eval_command)
    probe_app.command("bias")(probe_bias_command)
    probe_app.command("style")(probe_style_command)
    app.add_typer(probe_app, name="probe")


# ------------------------------------------------------------------------------------------------------- probes
def probe_bias_command(
    prompt: Annotated[str, typer.Argument(help='e.g. "a photo of a doctor"; <concept> tokens come from the library.')],
    compare: Annotated[
        Optional[str], typer.Option("--compare", "-c", help="A second prompt, probed with the same seeds.")
    ] = None,
    attribute: Annotated[
        str,
        typer.Option(
            "--attribute",
            "-a",
            help="toy: shape|colour|texture|size|background|style; CLIP: gender|age|colour|any with --labels.",
        ),
    ] = "colour",
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Images per prompt.")] = 64,
    seed: SeedOption = 0,
    labels: Annotated[
        Optional[str],
        typer.Option("--labels", help="Comma-separated labels to balance over (others count as 'other')."),
    ] = None,
    template: Annotated[
        Optional[str], typer.Option("--template", help="Zero-shot CLIP prompt with {} for the label.")
    ] = None,
    clip: ClipOption = None,
    judge: JudgeOption = Judge.auto,
    out: Annotated[Path, typer.Option("--out", "-o", help="Bar chart PNG.")] = Path("bias.png"),
    json_out: JsonOutOption = None,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchSizeOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Bias of an attribute in a prompt's images, optionally against a second prompt.

    Generates n images (seeds seed…seed+n-1), reads the attribute with a judge (the toy judge for the toy model,
    zero-shot CLIP from --clip otherwise), and reports the distribution, its entropy and its total variation
    distance to uniform, with a bar chart.
    """
    from ticraft.analysis.bias_probe import check_compare
    from ticraft.analysis.probes import probe_bias

    check_compare(compare)  # before the model loads, as are the labels
    label_list = split_labels(labels)
    lib = open_library(library)
    bb = load_model(model, device, dtype)
    total = n * (2 if compare else 1)
    with console.status(f"rendering and judging {total} images…", spinner="dots"):
        res = probe_bias(
            bb,
            prompt,
            compare=compare,
            attribute=attribute,
            n=n,
            seed=seed,
            labels=label_list,
            clip=clip,
            template=template,
            judge=judge.value,
            library=lib,
            steps=sample_steps,
            guidance=guidance,
            batch_size=batch_size,
            out=out,
        )
    r0 = res.reports[0]
    table = Table(title=f"{r0.attribute} · n={n} · {escape(r0.judge)}", title_justify="left")
    table.add_column(r0.attribute)
    for r in res.reports:
        table.add_column(escape(r.prompt), justify="right")
    labels_all = list(dict.fromkeys(lab for r in res.reports for lab in r.distribution.labels))
    for lab in labels_all:
        table.add_row(
            escape(lab),
            *[f"{r.distribution.counts.get(lab, 0)}  ({r.distribution.shares.get(lab, 0.0):.0%})" for r in res.reports],
        )
    table.add_section()
    table.add_row(
        "entropy (bits)", *[f"{r.distribution.entropy:.3f} / {r.distribution.max_entropy:.3f}" for r in res.reports]
    )
    table.add_row("distance to uniform (TV)", *[f"{r.distribution.tv_uniform:.3f}" for r in res.reports])
    table.add_row(
        "majority", *[f"{escape(r.distribution.majority)} {r.distribution.majority_share:.0%}" for r in res.reports]
    )
    console.print(table)
    if res.tv_reduction is not None:
        word = "closer to" if res.tv_reduction > 0 else "further from"
        console.print(f"the second prompt is {abs(res.tv_reduction):.3f} {word} uniform (total variation)")
    console.print(f"wrote {escape(str(res.chart))}")
    write_json(json_out, res.to_dict())


def probe_style_command(
    style: Annotated[str, typer.Argument(help="The style concept, e.g. <glimmic>.")],
    content: Annotated[
        list[str], typer.Option("--content", "-c", help='Content prompt, e.g. "a red circle" (repeatable).')
    ],
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Images per prompt.")] = 4,
    seed: SeedOption = 0,
    template: Annotated[
        Optional[str],
        typer.Option("--template", help='How to add the style, e.g. "{content} in the style of {style}".'),
    ] = None,
    reference: Annotated[
        Optional[list[Path]],
        typer.Option("--reference", help="Style reference images or folders (default: the concept's training images)."),
    ] = None,
    clip: ClipOption = None,
    judge: JudgeOption = Judge.auto,
    out: Annotated[Path, typer.Option("--out", "-o", help="Grid PNG.")] = Path("style.png"),
    json_out: JsonOutOption = None,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchSizeOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Style transfer of a style concept: style similarity and content preservation per content prompt.

    Renders each content prompt with and without the style (same seeds); style similarity compares the styled
    images with the concept's training images, content preservation compares each with its unstyled twin.
    """
    from ticraft.analysis.probes import probe_style, reference_images
    from ticraft.analysis.style_probe import check_style_inputs

    check_style_inputs(content, template)  # the inputs and the references are checked before the model loads
    lib = open_library(library)
    concept = lib.get(style)
    refs = reference_images(lib if not reference else None, concept.token, reference or ())
    bb = load_model(model, device, dtype)
    with console.status(f"rendering {2 * n * len(content)} images…", spinner="dots"):
        rep = probe_style(
            bb,
            concept,
            content,
            references=refs,
            n=n,
            seed=seed,
            template=template,
            clip=clip,
            judge=judge.value,
            library=lib,
            steps=sample_steps,
            guidance=guidance,
            batch_size=batch_size,
            out=out,
        )
    table = Table(
        title=f"style probe {escape(rep.style)} · {escape(rep.scorer)} · {len(refs)} references", title_justify="left"
    )
    table.add_column("content")
    table.add_column("style similarity", justify="right")
    table.add_column("content preservation", justify="right")
    for r in rep.rows:
        table.add_row(escape(r.content), f"{r.style_similarity:.3f}", f"{r.content_preservation:.3f}")
    table.add_section()
    table.add_row("mean", f"{rep.style_similarity:.3f}", f"{rep.content_preservation:.3f}")
    console.print(table)
    console.print(f"wrote {escape(str(rep.grid))}")
    write_json(json_out, rep.to_dict())


# -------------------------------------------------------------------------------------------------------- eval
def eval_command(
    concept_token: Annotated[str, typer.Argument(help="The concept, e.g. <cat-toy>.")],
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Samples per prompt.")] = 8,
    seed: SeedOption = 0,
    clip: ClipOption = None,
    judge: JudgeOption = Judge.auto,
    prompts: Annotated[
        Optional[list[str]],
        typer.Option("--prompt", "-p", help="Edited prompt with {} for the concept (repeatable; CLIP)."),
    ] = None,
    reference: Annotated[
        Optional[list[Path]], typer.Option("--reference", help="Training images or folders (default: the library's).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write a grid of the samples (PNG).")] = None,
    json_out: JsonOutOption = None,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchSizeOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """The paper's reconstruction and editability of a concept.

    Reconstruction: similarity of "a photo of S*" samples to the training images; editability: similarity of edited
    prompts' samples to the prompt text without S*. CLIP from --clip, or the toy judge's exact counterparts.
    """
    from ticraft.analysis.metrics import evaluate_concept
    from ticraft.analysis.probes import reference_images

    lib = open_library(library)
    concept = lib.get(concept_token)  # the concept and its references are checked before the model loads
    refs = reference_images(lib if not reference else None, concept.token, reference or ())
    bb = load_model(model, device, dtype)
    with console.status("rendering and scoring…", spinner="dots"):
        rep = evaluate_concept(
            bb,
            concept,
            references=refs,
            n=n,
            seed=seed,
            scorer=judge.value,
            clip=clip,
            prompts=prompts,
            library=lib,
            steps=sample_steps,
            guidance=guidance,
            batch_size=batch_size,
            out=out,
        )
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
    write_json(json_out, rep.to_dict())
