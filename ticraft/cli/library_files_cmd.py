"""`ticraft library export` and `ticraft library convert`: write concepts to embedding files of other tools.

Registered on the `library` sub-command by ``library_cmd``; the format code (torch, safetensors) is imported
inside each command.

    ticraft library export "<cat-toy>" cat.pt                      # A1111 layout (from the suffix)
    ticraft library convert learned_embeds.safetensors cat.pt --token "<cat-toy>"
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ticraft.cli.common import LibraryOption, console, load_model, open_library
from ticraft.cli.options import DeviceOption, DtypeOption, ModelOption


class ExportFormat(str, Enum):
    """Layouts ticraft writes (see ARCHITECTURE.md, "Formats", and ticraft/formats/__init__.py)."""

    diffusers = "diffusers"
    a1111 = "a1111"
    kohya = "kohya"
    comfyui = "comfyui"  # SD3/Flux: clip_l, clip_g, t5xxl
    diffusers_t5 = "diffusers-t5"  # SD3/Flux: clip_l, clip_g, t5
    kohya_xti = "kohya-xti"  # per-layer concepts of SD-1.x/2.x (16 layers): kohya's XTI scripts read it
    ticraft_xti = "ticraft-xti"  # per-layer concepts of any other model: ticraft reads it back


FamilyOption = Annotated[
    Optional[str], typer.Option("--family", help="Model family: sd1, sd2, sdxl or toy (checked against the widths).")
]


def _default_format(out: Path) -> str:
    """Pick a layout from the output name: ``.pt`` → a1111, anything else → auto (comfyui for SD3/Flux,
    else diffusers)."""
    return "a1111" if out.suffix.lower() in (".pt", ".ckpt") else "auto"


def export_cmd(
    token: Annotated[str, typer.Argument(help="Token to export.")],
    out: Annotated[Path, typer.Argument(help="Output file, or an existing folder.")],
    format: Annotated[
        Optional[ExportFormat], typer.Option("--format", "-f", help="Layout (default: from the suffix; .pt → a1111).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    flatten: Annotated[bool, typer.Option(
        "--flatten", help="A per-layer (XTI) concept as one token for tools that read no per-layer files (needs "
        "--model; prints the measured loss).")] = False,
    model: ModelOption = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    library: LibraryOption = None,
) -> None:
    """Write a concept to an embedding file for diffusers, A1111/ComfyUI or kohya."""
    if not flatten and (model is not None or device is not None or dtype is not None):
        from ticraft.library import LibraryError

        # only flattening runs the model; an export copies the stored vectors as they are
        raise LibraryError("--model, --device and --dtype apply only with --flatten (an export writes the stored "
                           "vectors as they are)")
    lib = open_library(library)
    layout = format.value if format else _default_format(out)
    if flatten:  # issue 16: a single-token approximation of a per-layer concept
        from ticraft.analysis.flatten import flatten as flatten_concept
        from ticraft.library import write_file

        result = flatten_concept(load_model(model, device, dtype), lib.get(token))
        console.print(f"flattened {escape(token)}: text-encoder loss {result.loss:.5f} (the mean of its layers: "
                      f"{result.start_loss:.5f}; no single token can go below {result.floor:.5f})")
        paths = write_file(result.concept, out, layout, overwrite=force)
    else:
        paths = lib.export(token, out, layout, overwrite=force)
    for path in paths:
        console.print(f"Wrote {escape(str(path))} ({layout})", soft_wrap=True)


def convert_cmd(
    src: Annotated[Path, typer.Argument(metavar="IN", help="Embedding file in any layout.")],
    out: Annotated[Path, typer.Argument(help="Output file (or folder, for files holding several concepts).")],
    format: Annotated[
        Optional[ExportFormat], typer.Option("--format", "-f", help="Layout (default: from the suffix; .pt → a1111).")
    ] = None,
    token: Annotated[Optional[str], typer.Option("--token", help="Rename the concept on the way.")] = None,
    family: FamilyOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Convert an embedding file to another layout (no library involved)."""
    from ticraft.library import LibraryError, read_file, write_file

    concepts = read_file(src, token=token, family=family)
    layout = format.value if format else _default_format(out)
    if len(concepts) > 1 and not out.is_dir():
        names = ", ".join(c.token for c in concepts)
        raise LibraryError(f"{src} holds {len(concepts)} concepts ({names}); give an existing folder as OUT")
    for concept in concepts:
        for path in write_file(concept, out, layout, overwrite=force):
            console.print(f"Wrote {escape(str(path))} ({layout}, {escape(concept.token)})", soft_wrap=True)
