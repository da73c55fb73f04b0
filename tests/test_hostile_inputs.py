"""Issue 13, item 6: every CLI command x a table of hostile or careless inputs.

For each row: the command exits with a usage/user error (exit code 1 or 2), prints no traceback, names the
offending input in its message, and leaves the library byte-for-byte unchanged (its folder is hashed before
and after). Everything runs in-process (typer's CliRunner) on a tiny 32-d model, so the table stays fast.
:func:`test_every_command_is_covered` fails when a command is added to ``ticraft --help`` without rows here.
Property tests (hypothesis) cover the inputs a generator fits: mix expressions, concept vectors, toy-world specs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.concept import MAX_VECTORS, Concept, ConceptError

# ------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_sd_dir) -> dict[str, Path]:
    """A library (a 32-d concept for the tiny model, an sd1 one, one whose file holds NaN) and bad files."""
    from PIL import Image

    from ticraft.library import Library

    root = tmp_path_factory.mktemp("hostile")
    lib = Library(root / "lib")
    g = torch.Generator().manual_seed(0)
    lib.add(Concept("<ok>", {"clip": torch.randn(1, 32, generator=g)}, family="custom"))
    lib.add(Concept("<wide>", {"clip": torch.randn(1, 768, generator=g)}, family="sd1"))
    lib.add(Concept("<nan>", {"clip": torch.randn(1, 32, generator=g)}, family="custom"))
    emb = next((lib.root / "nan").glob("*.safetensors"))
    data = bytearray(emb.read_bytes())
    data[-4:] = b"\xff\xff\xff\xff"  # a NaN in the last value; header and size unchanged
    emb.write_bytes(bytes(data))

    files = root / "files"
    files.mkdir()
    (files / "empty.safetensors").write_bytes(b"")
    (files / "text.png").write_text("not a picture")
    (files / "text.safetensors").write_text("hello")
    Image.new("RGB", (8, 8), "red").save(files / "plain.png")
    (files / "truncated.png").write_bytes((files / "plain.png").read_bytes()[:30])
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nSteps: x, Sampler: DDIM, CFG scale: 7, Seed: 1, Size: 8x8")
    Image.new("RGB", (8, 8)).save(files / "badseed.png", pnginfo=info)
    nan_st = files / "nan.safetensors"
    from safetensors.torch import save_file

    save_file({"<n>": torch.full((1, 32), float("nan"))}, str(nan_st))
    torch.save({"string_to_param": {"*": torch.full((1, 32), float("inf"))}, "name": "inf"}, files / "inf.pt")
    pics = root / "pics"
    pics.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(pics / f"p{i}.png")
    long_caps = root / "longcaps"
    shutil.copytree(pics, long_caps)
    for i in range(2):
        (long_caps / f"p{i}.txt").write_text("a photo of " + "red " * 80 + "{}")
    bad_pics = root / "badpics"
    bad_pics.mkdir()
    (bad_pics / "a.png").write_text("not a picture")
    return {"lib": lib.root, "files": files, "pics": pics, "long": long_caps, "badpics": bad_pics,
            "model": tiny_sd_dir, "root": root}


def tree_hash(folder: Path) -> str:
    """Hash of every entry file; the hidden derived files (.index/ sqlite cache, .lock) may be rebuilt."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.relative_to(folder).parts[0].startswith("."):
            continue
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def flat(text: str) -> str:
    """Output without Rich's box drawing and line wrapping, for substring checks."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃━]+", " ", text).split())


# --------------------------------------------------------------------------------------------- the table
# (command line with {lib} {model} {files} {pics} {long} {badpics} {root} placeholders, text the message must hold)
L, M = "-L {lib}", "-m {model}"
ROWS: list[tuple[str, str]] = [
    # train: tokens, numbers, files, captions, concept references
    (f"train {{pics}} -t no-brackets -i toy {M} {L}", "no-brackets"),
    (f'train {{pics}} -t "<a b>" -i toy {M} {L}', "<a b>"),
    (f"train {{root}}/missing -t <x> -i toy {M} {L}", "missing"),
    (f"train {{badpics}} -t <x> -i toy {M} {L}", "a.png (not an image file"),
    (f"train {{pics}} -t <x> -i toy --steps -3 {M} {L}", "-3"),
    (f"train {{pics}} -t <x> -i toy --lr nan {M} {L}", "nan"),
    (f"train {{pics}} -t <x> -i toy --vectors 76 {M} {L}", "76"),
    (f"train {{pics}} -t <x> -i <wide> {M} {L} --steps 1", "<wide>"),
    (f"train {{pics}} -t <x> -i <nowhere> {M} {L} --steps 1", "<nowhere>"),
    (f"train {{long}} -t <x> -i toy --captions {M} {L} --steps 1", "the caption of p0.png"),
    (f"train {{pics}} -t <ok> -i toy {M} {L} --steps 1", "<ok> is already in the library"),
    (f"train {{pics}} -t <x> -i toy --resume {{files}}/text.png {M} {L}", "text.png"),
    # train-many
    (f"train-many {{root}}/missing {M} {L}", "missing"),
    (f"train-many {{pics}} --steps 0 {M} {L}", "0"),
    # sample / compose / edit / info: prompts, numbers, files
    (f"sample <nope> {M} {L}", "<nope>"),
    (f"sample <wide> {M} {L} --steps 1", "<wide>"),
    (f"sample <nan> {M} {L} --steps 1", "non-finite"),
    (f'sample "a cat" --negative <nope> {M} {L}', "<nope>"),
    (f'sample "a cat" --negative <wide> {M} {L} --steps 1', "<wide>"),
    (f'sample "a cat" --steps 0 {M} {L}', "--steps"),
    (f'sample "a cat" --steps 100000 {M} {L}', "100000"),
    (f'sample "a cat" --size 7x7 {M} {L}', "7"),
    (f'sample "a cat" --guidance nan {M} {L}', "--guidance"),
    (f"sample --from {{files}}/badseed.png {M} {L}", "badseed.png"),
    (f"sample --from {{files}}/text.png {M} {L}", "text.png"),
    (f'sample "a cat" --out {{files}}/plain.png/sub {M} {L} --steps 1', "plain.png"),
    (f"compose <nope> --template 'a {{{{}}}}' {M} {L}", "<nope>"),
    (f"compose <wide> --template 'a {{{{}}}}' {M} {L}", "<wide>"),
    (f"edit {{files}}/text.png 'a <ok>' {M} {L}", "text.png"),
    (f"edit {{files}}/plain.png 'a <ok>' --strength 7 {M} {L}", "--strength"),
    (f"edit {{files}}/plain.png 'a <ok>' --mask {{root}}/nomask.png {M} {L}", "nomask.png"),
    ("info {files}/badseed.png", "badseed.png"),
    ("info {files}/text.png", "text.png"),
    ("info {root}/missing.png", "missing.png"),
    # analysis commands
    (f"neighbors <nope> {M} {L}", "<nope>"),
    (f"neighbors <nan> {M} {L}", "non-finite"),
    (f"neighbors <ok> -k -1 {M} {L}", "-k"),
    (f'mix "pad(<ok>, 1000000000)" --as <big> {L}', "1000000000"),
    (f'mix "pad(<ok>, 100000)" --as <big> {L}', "100000 vectors"),
    (f'mix "1e999999 * <ok>" --as <inf> {L}', "1e999999"),
    (f'mix "1e20 * <ok> * 1e20" --as <inf> {L}', "non-finite"),
    (f'mix "concat(<ok>, <wide>)" --as <c> {L}', "<wide>"),
    (f'mix "-<nope>" --as <n> {L}', "<nope>"),
    (f'mix "<ok> +" --as <n> {L}', "<ok> +"),
    (f'mix "{"(" * 100}<ok>{")" * 100}" --as <n> {L}', "nested too deeply"),
    (f'mix "{"<ok> + " * 2000}<ok>" --as <n> {L}', "expression too long (14004 characters"),
    (f"mix \"__import__('os')\" --as <n> {L}", "__import__"),
    (f'mix "<ok>" --as <ok> {L}', "<ok>"),
    (f"interp <ok> <wide> --no-render {M} {L}", "<wide>"),
    (f"interp <ok> <nope> --no-render {M} {L}", "<nope>"),
    (f"interp <ok> <ok> --steps 1 --no-render {M} {L}", "--steps"),
    (f"map --concepts <nope> {M} {L}", "<nope>"),
    (f"map --concepts <ok> --vocab -5 {M} {L}", "--vocab"),
    (f"eval <nope> {M} {L}", "<nope>"),
    (f"eval <ok> -n 0 {M} {L}", "--num"),
    (f"probe bias 'a photo' --attribute nope {M} {L}", "nope"),
    (f"probe style <nope> --content 'a circle' {M} {L}", "<nope>"),
    (f"words <nope> {M} {L} --steps 1 --no-judge", "<nope>"),
    (f"words <wide> {M} {L} --steps 1 --no-judge", "<wide>"),
    (f"words <nan> {M} {L} --steps 1 --no-judge", "non-finite"),
    (f"words <ok> -k 0 {M} {L} --steps 1 --no-judge", "0"),
    (f"words <ok> --steps -1 {M} {L} --no-judge", "-1"),
    (f"words <ok> --lr nan {M} {L} --steps 1 --no-judge", "nan"),
    # library
    ("library show <nope> -L {lib}", "<nope>"),
    ("library show <nan> -L {lib}", "non-finite"),
    ("library import {files}/empty.safetensors -L {lib}", "empty.safetensors"),
    ("library import {files}/text.safetensors -L {lib}", "text.safetensors"),
    ("library import {files}/nan.safetensors -L {lib}", "nan.safetensors"),
    ("library import {files}/inf.pt -L {lib}", "inf.pt"),
    ("library import {files}/text.png -L {lib}", "text.png"),
    ("library import {root}/missing.pt -L {lib}", "missing.pt"),
    ("library import {files}/plain.png --token no-brackets -L {lib}", "plain.png"),
    ("library export <nope> {root}/out.pt -L {lib}", "<nope>"),
    ("library export <ok> {root}/out.pt --format nope -L {lib}", "nope"),
    ("library convert {files}/nan.safetensors {root}/o.pt", "nan.safetensors"),
    ("library convert {files}/text.png {root}/o.pt", "text.png"),
    ("library tag <nope> --add x -L {lib}", "<nope>"),
    ("library rename <ok> <wide> -L {lib}", "<wide>"),
    ("library rename <nope> <x> -L {lib}", "<nope>"),
    ("library rm <nope> --yes -L {lib}", "<nope>"),
    ("library list --limit -1 -L {lib}", "--limit"),
    ("library list -L {files}/plain.png", "plain.png"),
    ("library verify -L {files}/plain.png", "plain.png"),
    ("library repair -L {files}/plain.png", "plain.png"),
    ("library path -L {files}/plain.png", "plain.png"),
    # config, models, toyworld, demo, bench, tui
    ("config set nope 1", "nope"),
    ("config set model {root}/missing", "missing"),
    ("config unset nope", "nope"),
    ("models --json --dir {files}/plain.png", "plain.png"),
    ("toyworld render shape=blob --out {root}/r", "blob"),
    ("toyworld render zorb --n 0 --out {root}/r", "--n"),
    ("toyworld render zorb --out {files}/plain.png", "plain.png"),
    ("toyworld train-base --preset nope --out {root}/tb", "nope"),
    ("demo --steps 0 --out {root}/demo", "0"),
    ("bench --shots -1", "-1"),
    ("tui --screen nine", "--screen"),
]


def _invoke(line: str, world: dict[str, Path]):
    import shlex

    args = shlex.split(line.format(**{k: str(v) for k, v in world.items()}))
    return CliRunner().invoke(app, args, env={"COLUMNS": "200", "TICRAFT_LIBRARY": str(world["lib"])})


@pytest.mark.parametrize("line, needle", ROWS, ids=[r[0].split(" -")[0][:60] for r in ROWS])
def test_hostile_input(world, line, needle, one_torch_thread, tmp_path):
    world = {**world, "lib": tmp_path / "lib"}  # each row on its own copy: one wrong success spoils no other row
    shutil.copytree(world["root"] / "lib", world["lib"])
    before = tree_hash(world["lib"])
    result = _invoke(line, world)
    out = flat(result.output)
    assert result.exit_code in (1, 2), f"exit {result.exit_code}: {out[-600:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert flat(needle.format(**{k: str(v) for k, v in world.items()})) in out, out[-600:]
    assert "object at 0x" not in out  # no Python reprs (<_io.BytesIO object at 0x…>)
    assert len(out) < 1500, "the message should be a sentence, not a dump"
    assert tree_hash(world["lib"]) == before, "the library changed"


def test_every_command_is_covered():
    """A command listed by `ticraft --help` (or a group's help) without a row above fails here."""
    import typer

    def leaves(cmd, prefix=()):
        subs = getattr(cmd, "commands", None)
        if subs is None:
            yield " ".join(prefix)
            return
        for name, sub in subs.items():
            yield from leaves(sub, (*prefix, name))

    covered = {" ".join(w for w in line.split()[:2] if not w.startswith(("{", "<", "-", '"', "'")))
               for line, _ in ROWS}
    covered |= {line.split()[0] for line, _ in ROWS}
    missing = [c for c in leaves(typer.main.get_command(app)) if c not in covered and c.split()[0] not in
               {"library", "config", "toyworld", "probe"}]
    missing += [c for c in leaves(typer.main.get_command(app)) if " " in c and c not in covered
                and c not in {"config show", "config path"}]  # these two take no input at all
    assert not missing, f"commands without hostile-input rows: {missing}"


# ----------------------------------------------------------------------------------- the *Why* bullets
def test_mix_accepts_a_leading_minus(world, tmp_path, one_torch_thread):
    """Before: `ticraft mix "-<zorb>"` failed with "No such option: -<"."""
    lib = tmp_path / "lib"
    shutil.copytree(world["lib"], lib)
    result = CliRunner().invoke(app, ["mix", "-<ok>", "--as", "<neg>", "-L", str(lib)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    from ticraft.library import Library

    got = Library(lib).get("<neg>").vectors["clip"]
    assert torch.equal(got, -Library(lib).get("<ok>").vectors["clip"])
    result = CliRunner().invoke(app, ["mix", "-0.5*<ok> + <ok>", "--dry-run", "-L", str(lib)])
    assert result.exit_code == 0, result.output


def test_sampling_a_nan_concept_is_refused_not_black(world, one_torch_thread):
    """Before: NaN vectors were sampled into an all-black PNG with exit 0."""
    result = _invoke("sample <nan> -m {model} --steps 1 --out {root}/black", world)
    assert result.exit_code == 1 and "non-finite" in flat(result.output)
    assert not (world["root"] / "black").exists() or not any((world["root"] / "black").iterdir())


def test_toyworld_render_draws_a_compatible_style(tmp_path):
    """The issue's exact command failed whenever the unspecified style came out outline/pixelated."""
    result = CliRunner().invoke(app, ["toyworld", "render", "shape=moon,colour=pink,texture=dotted", "--n", "24",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "r").glob("*.png"))) == 24


# --------------------------------------------------------------------------------------- property tests
_ATOMS = st.sampled_from(["<ok>", "<wide>", "<nope>", "0.5", "1e999", "1e31", "2", "-", "+", "*", "/", "(", ")",
                          ",", "pad", "concat", "mean", "norm", "vec", "slerp", "1000000000", "nan", "inf", " "])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_ATOMS, min_size=1, max_size=12))
def test_mix_expressions_evaluate_or_fail_clearly(parts):
    """Any expression either gives a finite concept of at most 75 vectors or raises one ExprError."""
    from ticraft.analysis.expr import ExprError, evaluate

    g = torch.Generator().manual_seed(0)
    concepts = {"<ok>": Concept("<ok>", {"clip": torch.randn(2, 8, generator=g)}, family="toy"),
                "<wide>": Concept("<wide>", {"clip": torch.randn(1, 16, generator=g)}, family="toy")}

    def resolve(tok: str) -> Concept:
        return concepts[tok]

    try:
        value = evaluate("".join(parts), concepts=resolve)
    except ExprError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        return
    if isinstance(value, Concept):
        assert value.num_vectors <= MAX_VECTORS
        assert all(bool(torch.isfinite(v).all()) for v in value.vectors.values())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0, -2.5, 1e38, float("nan"), float("inf"), -float("inf")]),
                min_size=1, max_size=8), st.integers(1, 100))
def test_concepts_are_finite_and_within_the_prompt_budget(values, n):
    t = torch.tensor(values, dtype=torch.float32).repeat(n, 1)
    finite = all(np.isfinite(values))
    try:
        c = Concept("<p>", {"clip": t})
    except ConceptError as exc:
        assert not finite or n > MAX_VECTORS, exc
        return
    assert finite and n <= MAX_VECTORS and c.num_vectors == n


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional={
           "shape": st.sampled_from(["circle", "moon", "star"]),
           "colour": st.sampled_from(["pink", "red", "white"]),
           "texture": st.sampled_from(["plain", "striped", "dotted"]),
           "size": st.sampled_from(["small", "large"]),
           "background": st.sampled_from(["white", "black"])}),
       st.integers(0, 2**32 - 1))
def test_toyworld_unspecified_attributes_fit_the_given_ones(given_attrs, seed):
    """Before: "shape=moon,colour=pink,texture=dotted" failed whenever the unspecified style came out as
    outline/pixelated ("style 'pixelated' draws no texture")."""
    from ticraft.toyworld.render import sample_attributes

    if given_attrs.get("colour") is not None and given_attrs.get("colour") == given_attrs.get("background"):
        return  # contradictory on their own
    attrs = sample_attributes(np.random.default_rng(seed), **given_attrs)
    assert all(getattr(attrs, k) == v for k, v in given_attrs.items())
