"""`ticraft library …`: list, show, import, export, convert, tag, rename, rm, repair, verify.

Only typer/rich at the top: the library code is imported inside each command, and torch only by
the commands that read vectors (`show`, `export`, `import`, `convert`), so `ticraft library list`
starts instantly.

Examples::

    ticraft library import cat.safetensors --token "<cat-toy>" --tag object --images photos/
    ticraft library import ~/stable-diffusion-webui/embeddings --recursive
    ticraft library list --tag object
    ticraft library verify
    ticraft library export "<cat-toy>" out/ --format a1111
    ticraft library convert learned_embeds.bin cat.pt --format a1111
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, Sequence

import typer
from rich.markup import escape
from rich.table import Table

from ticraft.cli.common import LibraryOption, console, open_library
from ticraft.cli.library_files_cmd import FamilyOption, convert_cmd, export_cmd
from ticraft.wording import counted

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.library import Entry

app = typer.Typer(
    name="library",
    help="Your learned concepts: list, inspect, import, export, convert, tag, rename, remove, repair, verify.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


TagsOption = Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="Tag to attach (repeatable).")]
MAX_LISTED_FILES = 12
DEFAULT_LIST_LIMIT = 50


def register(main_app: typer.Typer) -> None:
    """Add the `library` command group to the main app."""
    main_app.add_typer(app, name="library")


def _print_problems(problems: list[str]) -> None:
    """Broken entries go under the table in yellow: reported, never fatal."""
    if problems:
        console.print(f"[yellow]{counted(len(problems), 'problem')}:[/]")
        for problem in problems:
            console.print(f"[yellow]  • {escape(problem)}[/]")
        console.print(
            "[yellow]Broken entries are left in place for you to inspect; `ticraft library repair` "
            "rebuilds the index from the folders, `ticraft library verify` reads every vector.[/]"
        )


def _entries_table(entries: list["Entry"], title: str, flagged: dict[str, str] | None = None) -> Table:
    flagged = flagged or {}
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("token", style="cyan", no_wrap=True)
    table.add_column("family")
    table.add_column("vectors", justify="right")
    table.add_column("dims")
    table.add_column("tags")
    table.add_column("steps", justify="right")
    for e in entries:
        table.add_row(
            "[red]![/]" if e.token in flagged else "",
            escape(e.token),
            escape(e.family or "?"),
            str(e.num_vectors),
            escape(e.dims_label),
            escape(", ".join(e.tags)),
            "" if e.steps is None else str(e.steps),
        )
    return table


def _short(value: Any, limit: int = 80) -> str:
    """One-line rendering of a metadata value (long lists summarised)."""
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} values]"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _file_list(title: str, paths: list[Path]) -> None:
    console.print(f"[bold]{title}[/] ({len(paths)})")
    for p in paths[:MAX_LISTED_FILES]:
        console.print(f"  {escape(str(p))}", soft_wrap=True)
    if len(paths) > MAX_LISTED_FILES:
        console.print(f"  … and {len(paths) - MAX_LISTED_FILES} more")


@app.command("list")
def list_cmd(
    tag: Annotated[Optional[str], typer.Option("--tag", "-t", help="Only concepts with this tag.")] = None,
    family: Annotated[Optional[str], typer.Option("--family", help="Only this model family.")] = None,
    search: Annotated[
        Optional[str], typer.Option("--search", "-s", help="Text in token, tags, notes, initializer or source.")
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option("--limit", "-n", min=1, help=f"Rows to show [default: {DEFAULT_LIST_LIMIT}].")
    ] = None,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Rows to skip (the next page starts at offset + limit).")
    ] = 0,
    show_all: Annotated[bool, typer.Option("--all", help="Show every matching row (and check every one).")] = False,
    library: LibraryOption = None,
) -> None:
    """List concepts in natural order (<c9> before <c10>), a page at a time; every row shown is health-checked.

    Rows marked [red]![/] have an embedding file that is missing, truncated, not safetensors, or whose header
    disagrees with the index (a cheap check: header and size); the reason is printed under the table.
    """
    if show_all and limit is not None:
        # --all means "no limit": with both given, one of them would be silently ignored
        raise typer.BadParameter("--all shows every row and --limit caps them: give one or the other")
    lib = open_library(library)
    total = lib.count()
    matching = lib.count(text=search, tag=tag, family=family) if (search or tag or family) else total
    rows = None if show_all else DEFAULT_LIST_LIMIT if limit is None else limit
    shown = lib.page(offset, rows, text=search, tag=tag, family=family)
    flagged = lib.check(shown)
    if not total:
        console.print(
            f"No concepts in the library at {escape(str(lib.root))} yet. Add one with `ticraft library import FILE`.",
            soft_wrap=True,
        )
    elif not matching:
        console.print(f"No concept matches (the library at {escape(str(lib.root))} holds {total}).", soft_wrap=True)
    elif not shown:
        console.print(f"No rows past --offset {offset} ({matching} match).", soft_wrap=True)
    else:
        filtered = f", {matching} match" if matching != total else ""
        window = f", showing {offset + 1}–{offset + len(shown)}" if len(shown) != matching else ""
        console.print(
            _entries_table(shown, f"{counted(total, 'concept')} in {escape(str(lib.root))}{filtered}{window}", flagged)
        )
        if offset + len(shown) < matching:
            console.print(f"[dim]{matching - offset - len(shown)} more: --offset {offset + len(shown)}, or --all[/]")
    problems = lib.index_problems() + [f"{e.folder.name}: {flagged[e.token]}" for e in shown if e.token in flagged]
    _print_problems(problems)


@app.command("show")
def show_cmd(
    token: Annotated[str, typer.Argument(help="Token, with or without <>.")], library: LibraryOption = None
) -> None:
    """Show one concept: metadata, the norm of every vector, its images and samples."""
    lib = open_library(library)
    entry = lib.entry(token)
    problem = lib.check([entry]).get(entry.token)
    if problem:
        from ticraft.library import LibraryError

        raise LibraryError(f"entry {entry.token} ({entry.folder}) is broken: {problem}")
    meta = lib.meta(entry.token)
    concept = lib.get(entry.token)
    searched = (meta.get("meta") or {}).get("init_search") or {}
    started = " ".join(searched.get("words") or [])  # the start init_search chose instead of the initializer
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    rows = [
        ("token", entry.token),
        ("family", entry.family or "?"),
        ("vectors", str(entry.num_vectors)),
        ("dims", entry.dims_label),
        ("tags", ", ".join(entry.tags) or "—"),
        ("steps", "—" if entry.steps is None else str(entry.steps)),
        ("initializer", (entry.initializer or "—") + (f" (started from '{started}', searched from the pictures)"
                                                       if started else "")),
        ("source", entry.source or "—"),
        ("created", entry.created or "—"),
        ("updated", entry.updated or "—"),
        ("sha256", entry.sha256 or "—"),
        ("folder", str(entry.folder)),
    ]
    shown = {"steps", "initializer", "source", "init_search"}
    rows += [(k, _short(v)) for k, v in sorted((meta.get("meta") or {}).items()) if k not in shown]
    for key, value in rows:
        info.add_row(escape(key), escape(value))
    console.print(info)
    norms = Table(title="vector norms", title_justify="left", header_style="bold")
    norms.add_column("#", justify="right")
    per_encoder = concept.norms()
    for key in per_encoder:
        norms.add_column(key, justify="right")
    for i in range(concept.num_vectors):
        norms.add_row(str(i), *(f"{per_encoder[k][i]:.4f}" for k in per_encoder))
    console.print(norms)
    _file_list("images", lib.images(entry.token))
    _file_list("samples", lib.samples(entry.token))


@app.command("import")
def import_cmd(
    files: Annotated[
        list[Path], typer.Argument(help="Embedding files (any layout ticraft reads), or one embeddings folder.")
    ],
    token: Annotated[
        Optional[str], typer.Option("--token", help="Rename the concept (one single-concept file).")
    ] = None,
    family: FamilyOption = None,
    tag: TagsOption = None,
    images: Annotated[
        Optional[Path], typer.Option("--images", help="Folder (or file) of training images to keep with it.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace concepts with the same token.")] = False,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="With a folder: its sub-folders too (their names become tags).")
    ] = False,
    library: LibraryOption = None,
) -> None:
    """Import embedding files into the library (every file is checked before anything is written).

    Given a webui/ComfyUI embeddings folder, every embedding file in it is imported under its file name
    (bad_prompt.pt → <bad_prompt>); with --recursive, sub-folders too, their names becoming tags. Files whose
    vectors are already in the library are skipped (content hash); each file that cannot be imported gets one
    line with the reason and the exit code is 1; everything else is added in one batch.
    """
    from ticraft.concept_checks import vectors_text
    from ticraft.library import LibraryError, read_file

    if len(files) == 1 and files[0].is_dir():
        if token is not None or images is not None:
            raise LibraryError("--token and --images belong to one file; a folder is imported under its file names")
        _import_folder(
            open_library(library), files[0], recursive=recursive, family=family, tags=tag or (), overwrite=overwrite
        )
        return
    folders = [f for f in files if f.is_dir()]
    if folders:
        raise LibraryError(f"{folders[0]} is a folder; import one folder at a time, without files beside it")
    if recursive:
        # --recursive walks a folder's sub-folders; with files it would be accepted and never read
        raise LibraryError(f"--recursive reads the sub-folders of one folder, and {files[0]} is a file")
    if token is not None and len(files) > 1:
        raise LibraryError("--token renames the concept of one file; import the files one at a time")
    if images is not None and len(files) > 1:
        raise LibraryError("--images belongs to one concept; import the files one at a time")
    lib = open_library(library)
    concepts = [c for f in files for c in read_file(f, token=token, family=family)]
    origin = str(files[0]) if len(files) == 1 else f"{len(files)} files"
    for e in lib.add_many(concepts, images=images, tags=tag or (), overwrite=overwrite, origin=origin):
        n_images = len(lib.images(e.token))
        extra = f", {n_images} image{'' if n_images == 1 else 's'}" if n_images else ""
        console.print(
            f"Imported [cyan]{escape(e.token)}[/] ({e.family or '?'}, {vectors_text(e.num_vectors)}, "
            f"dims {e.dims_label}{extra}) → {escape(str(e.folder))}",
            soft_wrap=True,
        )


def _import_folder(lib: Any, folder: Path, **options: Any) -> None:
    """`library import DIR`: one summary line, one line per skipped duplicate and per refused file."""
    from rich.progress import Progress

    from ticraft.library.bulk import import_folder

    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("reading", total=None)
        report = import_folder(
            lib, folder, progress=lambda done, total: bar.update(task, completed=done, total=total), **options
        )
    for path, dup in report.duplicates:
        console.print(f"skipped {escape(str(path))}: same vectors as {escape(dup)}", soft_wrap=True)
    for path, reason in report.refused:
        console.print(f"[red]refused[/] {escape(str(path))}: {escape(reason)}", soft_wrap=True)
    extra = f", {counted(report.ignored, 'other file')} ignored" if report.ignored else ""
    console.print(
        f"Imported {counted(len(report.added), 'concept')} from {escape(str(folder))} into {escape(str(lib.root))} "
        f"({counted(len(report.duplicates), 'duplicate')} skipped, {len(report.refused)} refused{extra})",
        soft_wrap=True,
    )
    if report.refused:
        raise typer.Exit(1)


# export and convert write embedding files: ticraft/cli/library_files_cmd.py
app.command("export")(export_cmd)
app.command("convert")(convert_cmd)


@app.command("tag")
def tag_cmd(
    token: Annotated[str, typer.Argument(help="Token to tag.")],
    add: Annotated[Optional[list[str]], typer.Option("--add", "-a", help="Tag to add (repeatable).")] = None,
    remove: Annotated[Optional[list[str]], typer.Option("--remove", "-r", help="Tag to remove (repeatable).")] = None,
    library: LibraryOption = None,
) -> None:
    """Add or remove tags; with neither option, print the current tags."""
    _refuse_added_and_removed(add or (), remove or ())
    lib = open_library(library)
    entry = lib.tag(token, add=add or (), remove=remove or ()) if (add or remove) else lib.entry(token)
    console.print(f"[cyan]{escape(entry.token)}[/] tags: {escape(', '.join(entry.tags)) or '—'}")


def _refuse_added_and_removed(add: Sequence[str], remove: Sequence[str]) -> None:
    """A tag both added and removed is a contradiction: the library would keep it and drop the --remove unread."""
    from ticraft.library import LibraryError, normalize_tags

    removed = {t.casefold() for t in normalize_tags(list(remove))}  # tags compare case-insensitively
    both = [t for t in normalize_tags(list(add)) if t.casefold() in removed]
    if both:
        raise LibraryError(f"--add and --remove both name {', '.join(both)}: give each tag to one of them")


@app.command("rename")
def rename_cmd(
    old: Annotated[str, typer.Argument(help="Current token.")],
    new: Annotated[str, typer.Argument(help="New token, e.g. '<my-cat>'.")],
    library: LibraryOption = None,
) -> None:
    """Rename a concept (its folder, file header and metadata follow)."""
    lib = open_library(library)
    before = lib.entry(old).token
    entry = lib.rename(old, new)
    console.print(
        f"Renamed [cyan]{escape(before)}[/] → [cyan]{escape(entry.token)}[/] ({escape(str(entry.folder))})",
        soft_wrap=True,
    )


@app.command("rm")
def rm_cmd(
    token: Annotated[str, typer.Argument(help="Token to remove.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    library: LibraryOption = None,
) -> None:
    """Remove a concept and all its files (asks first unless --yes)."""
    lib = open_library(library)
    entry = lib.entry(token)
    if not yes:
        n_img, n_smp = len(lib.images(entry.token)), len(lib.samples(entry.token))
        typer.confirm(f"Remove {entry.token} with {counted(n_img, 'image')} and {counted(n_smp, 'sample')} "
                      f"from {lib.root}?", abort=True)
    lib.remove(entry.token)
    console.print(f"Removed [cyan]{escape(entry.token)}[/]")


@app.command("repair")
def repair_cmd(library: LibraryOption = None) -> None:
    """Finish or undo interrupted writes and rebuild the index from the concept folders; says what it found
    and what it did. Broken entries are reported and left in place, never deleted."""
    lib = open_library(library)
    report = lib.repair_report()
    console.print("[bold]Found:[/]")
    for line in report.found:
        console.print(f"  • {escape(line)}", soft_wrap=True)
    console.print("[bold]Did:[/]")
    for line in report.actions or ["nothing needed changing"]:
        console.print(f"  • {escape(line)}", soft_wrap=True)
    console.print(f"Index rebuilt: {counted(report.concepts, 'concept')} in {escape(str(lib.root))}", soft_wrap=True)
    if report.problems:
        remain = "remains" if len(report.problems) == 1 else "remain"
        console.print(f"[yellow]{counted(len(report.problems), 'problem')} {remain} (left in place):[/]")
        for problem in report.problems:
            console.print(f"[yellow]  • {escape(problem)}[/]")


@app.command("verify")
def verify_cmd(library: LibraryOption = None) -> None:
    """Read every vector of every concept: check its sha256 against the index and that every value is finite.

    Exit code 1 when anything is wrong (one line per broken entry). Slower than `list`, which checks headers only.
    """
    from rich.progress import Progress

    lib = open_library(library)
    total = lib.count()
    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("verifying", total=total)
        problems = lib.verify(progress=lambda done, _n: bar.update(task, completed=done))
    if problems:
        console.print(
            f"[red]{counted(len(problems), 'problem')}[/] in {counted(total, 'concept')} at {escape(str(lib.root))}:",
            soft_wrap=True,
        )
        for problem in problems:
            console.print(f"  • {escape(problem)}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(
        f"All {counted(total, 'concept')} in {escape(str(lib.root))} verified: every vector read, sha256 matches, "
        "all values finite.",
        soft_wrap=True,
    )


@app.command("path")
def path_cmd(library: LibraryOption = None) -> None:
    """Print the library folder in use.

    The first that is set: --library > $TICRAFT_LIBRARY > the 'library' setting > ./embeddings > user data dir.
    """
    console.print(escape(str(open_library(library).root)), soft_wrap=True)
