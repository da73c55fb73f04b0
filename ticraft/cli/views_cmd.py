"""Pictures of the embedding space: `interp` (a strip between two concepts) and `map` (UMAP/PCA).

Only typer/rich at the top; torch, models, umap and matplotlib load inside the commands.

Examples::

    ticraft interp "<cat-toy>" "<dog-toy>" --steps 8 --prompt "a photo of {} on the beach" --out interp.png
    ticraft map --concepts all --vocab 5000 --method umap --out map.png
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, cast

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import console, load_model, open_library
from ticraft.cli.lookup import resolve_concept, resolve_without_model
from ticraft.cli.options import (
    BatchSizeOption,
    DeviceOption,
    DtypeOption,
    GuidanceOption,
    InterpMode,
    LibraryOption,
    MapMethod,
    Match,
    ModelOption,
    NegativeOption,
    SampleStepsOption,
    SeedOption,
    value,
)
from ticraft.wording import counted

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.models.backbone import Backbone


def register(app: typer.Typer) -> None:
    """Add `interp` and `map` to the main app."""
    app.command("interp")(interp_command)
    app.command("map")(map_command)


# ------------------------------------------------------------------------------------------------------ interp
def interp_command(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="Start: <concept>, embedding file or word.")],
    b: Annotated[str, typer.Argument(help="End: <concept>, embedding file or word.")],
    steps: Annotated[int, typer.Option("--steps", min=2, help="Frames, endpoints included.")] = 8,
    mode: Annotated[InterpMode, typer.Option("--mode", help="slerp or lerp.")] = InterpMode.slerp,
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="Prompt with {} where the concept goes.")
    ] = "a photo of {}",
    negative: NegativeOption = "",
    seed: SeedOption = 0,
    match: Annotated[
        Optional[Match],
        typer.Option("--match", help="Different vector counts: pad or merge (a single vector is repeated without it)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Strip PNG.")] = Path("interp.png"),
    save_vectors: Annotated[
        Optional[Path],
        typer.Option("--save-vectors", help="Also write each frame as an embedding file (all encoders) here."),
    ] = None,
    no_render: Annotated[
        bool, typer.Option("--no-render", help="Only compute (and --save-vectors) the frames; no rendering options.")
    ] = False,
    sample_steps: SampleStepsOption = None,
    guidance: GuidanceOption = None,
    batch_size: BatchSizeOption = 8,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Interpolate between two concepts (or words) and render a strip with one seed across it."""
    from ticraft.analysis.interpolate import (
        check_prompt,
        frame_layout,
        interpolation_path,
        match_advice,
        render_interpolation,
        save_frames,
    )
    from ticraft.concept import VectorCountError

    # Bad input is refused before the model loads and before --save-vectors writes a frame.
    if no_render:
        refuse_render_options(ctx)
    else:
        check_prompt(prompt)
    lib = open_library(library)
    early = resolve_without_model(a, lib), resolve_without_model(b, lib)  # missing <token>s and files: no load
    bb = load_model(model, device, dtype)
    ca, cb = early[0] or resolve_concept(a, lib, bb), early[1] or resolve_concept(b, lib, bb)
    how = cast("Literal['pad', 'merge'] | None", value(match))
    try:
        frames = interpolation_path(ca, cb, steps=steps, mode=mode.value, match=how)  # validates before rendering
    except VectorCountError as exc:  # the Python wording names match="pad"; here the choice is a flag
        raise VectorCountError(match_advice(exc.tokens, exc.counts, "--match {}"), exc.tokens, exc.counts) from None
    layout = frame_layout(frames[0].concept) if save_vectors is not None else None  # a kind no file holds: refused now
    table = Table(title=f"{escape(ca.token)} → {escape(cb.token)} ({mode.value})", title_justify="left")
    table.add_column("frame", justify="right")
    table.add_column("t", justify="right")
    table.add_column("norms")
    for i, f in enumerate(frames):
        table.add_row(
            str(i), f"{f.t:.3f}", "; ".join(", ".join(f"{n:.3f}" for n in ns) for ns in f.concept.norms().values())
        )
    console.print(table)
    if save_vectors is not None:
        paths = save_frames(frames, save_vectors)
        where = escape(str(save_vectors))
        console.print(f"wrote {len(paths)} frame files ({layout} layout) to {where}", soft_wrap=True)
    if no_render:
        return
    with console.status(f"rendering {steps} frames…", spinner="dots"):
        res = render_interpolation(
            bb,
            ca,
            cb,
            steps=steps,
            mode=mode.value,
            match=how,
            prompt=prompt,
            negative=negative,
            seed=seed,
            sample_steps=sample_steps,
            guidance=guidance,
            batch_size=batch_size,
            out=out,
            library=lib,
        )
    console.print(f"wrote {escape(str(res.path))}")


#: interp's options that only shape the rendered strip (parameter name → flag), ignored by --no-render.
RENDER_OPTIONS = {
    "prompt": "--prompt",
    "negative": "--negative",
    "seed": "--seed",
    "out": "--out",
    "sample_steps": "--sample-steps",
    "guidance": "--guidance",
    "batch_size": "--batch-size",
}


def refuse_render_options(ctx: typer.Context) -> None:
    """With --no-render, refuse rendering options the user gave: dropping them silently would hide a mistake.

    Only options given on the command line count (click records where each value came from), not defaults.
    """
    given = []
    for name, flag in RENDER_OPTIONS.items():
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.append(flag)
    if given:
        raise typer.BadParameter(f"--no-render draws no strip, so {', '.join(given)} would be ignored: drop "
                                 f"{'it' if len(given) == 1 else 'them'} or --no-render")


# --------------------------------------------------------------------------------------------------------- map
def map_command(
    concepts: Annotated[str, typer.Option("--concepts", help="all, none, a tag, or comma-separated <tokens>.")] = "all",
    vocab: Annotated[str, typer.Option("--vocab", help="Vocabulary tokens to sample (seeded), or all.")] = "5000",
    method: Annotated[MapMethod, typer.Option("--method", help="umap or pca.")] = MapMethod.umap,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Map PNG; coordinates go beside it as .json and .csv.")
    ] = Path("map.png"),
    seed: SeedOption = 0,
    neighbors: Annotated[int, typer.Option("--neighbors", min=0, help="Nearest tokens highlighted per concept.")] = 5,
    encoder: Annotated[
        Optional[str], typer.Option("--encoder", help="Token table to map (clip, clip_l, clip_g; default the first).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute even if this map is cached.")] = False,
    model: ModelOption = None,
    library: LibraryOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Map learned concepts among vocabulary tokens (UMAP or PCA): a labelled PNG plus JSON/CSV coordinates."""
    from ticraft.analysis.maps import build_map

    check_concepts_spec(concepts)
    lib = open_library(library)
    bb = load_model(model, device, dtype)
    chosen = pick_concepts(concepts, lib, bb)
    if concepts.strip().lower() == "all" and len(chosen) < lib.count():
        others = lib.count() - len(chosen)
        belong = "belongs" if others == 1 else "belong"
        console.print(f"[dim]{counted(others, 'library concept')} {belong} to other models: not on this map[/]")
    with console.status(f"{method.value.upper()} over {vocab} tokens + {len(chosen)} concepts…", spinner="dots"):
        m = build_map(
            bb,
            chosen,
            method=method.value,
            vocab=vocab,
            seed=seed,
            key=encoder,
            neighbors=neighbors,  # type: ignore[arg-type]
            cache=not no_cache,
        )
        paths = m.save(out)
    table = Table(
        title=f"{method.value.upper()} map · {len(m.of_kind('vocab')) + len(m.of_kind('neighbor'))} tokens",
        title_justify="left",
    )
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


def check_concepts_spec(spec: str) -> None:
    """Refuse a --concepts naming nothing (``""``, ``" , "``): as a tag it filtered nothing and mapped every concept."""
    if not any(part.strip() for part in spec.split(",")):
        raise typer.BadParameter(
            f"--concepts {spec!r} names nothing; give all, none, a tag, or comma-separated <tokens>"
        )


def pick_concepts(spec: str, lib: Any, bb: "Backbone") -> Any:
    """Concepts for --concepts: a list of Concepts, or the library's vector matrix for all / a tag."""
    s = spec.strip()
    if s.lower() == "none":
        return []
    if s.lower() == "all":  # the library's cached vector matrix: no file read per concept
        return lib.matrix(dims=bb.dims)
    if "<" in s:
        return [lib.get(t.strip()) for t in s.split(",") if t.strip()]
    found = lib.matrix(dims=bb.dims, tag=s)
    if not found:
        console.print(f"[yellow]no concept of this model is tagged {escape(s)!r}: mapping the vocabulary only[/]")
    return found
