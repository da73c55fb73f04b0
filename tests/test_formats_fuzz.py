"""Fuzz the readers: random bytes and damaged valid files may only ever raise FormatError (naming the file)."""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticraft.concept import Concept
from ticraft.formats import FormatError, detect_layout, read_concepts, write_concept
from ticraft.formats._load import PNG_MAGIC

# Damaged pickles may carry any protocol number; torch warns about non-default ones.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# One valid file per layout/container (small vectors keep each example fast).
SAMPLES = [
    ("diffusers", "d.safetensors", "sd1"), ("diffusers", "d.bin", "toy"), ("a1111", "a.pt", "toy"),
    ("a1111", "a.safetensors", "toy"), ("a1111-png", "p.png", "toy"), ("kohya", "k.safetensors", "toy"),
    ("kohya", "k.pt", "toy"), ("kohya-sdxl", "x.safetensors", "sdxl"),
]


def _concept(family: str) -> Concept:
    g = torch.Generator().manual_seed(0)
    if family == "sdxl":
        return Concept("<x>", {"clip_l": torch.randn(2, 8, generator=g), "clip_g": torch.randn(2, 12, generator=g)},
                       family="sdxl", meta={"steps": 1})
    width = 768 if family == "sd1" else 8
    return Concept("<t>", {"clip": torch.randn(2, width, generator=g).half()}, family=family, meta={"a": [1, 2]})


def _paper_bytes(folder: Path) -> bytes:
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(1, 8))})
    torch.save({"string_to_token": {"*": torch.tensor(265)}, "string_to_param": params}, folder / "paper.pt")
    return (folder / "paper.pt").read_bytes()


@pytest.fixture(scope="module")
def samples() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        out = {name: write_concept(_concept(fam), folder / name, layout=layout)[0].read_bytes()
               for layout, name, fam in SAMPLES}
        out["paper.pt"] = _paper_bytes(folder)
        out["legacy.bin"] = _legacy_bytes(folder)
    return out


def _legacy_bytes(folder: Path) -> bytes:
    torch.save({"<old>": torch.randn(1, 8)}, folder / "legacy.bin", _use_new_zipfile_serialization=False)
    return (folder / "legacy.bin").read_bytes()


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def only_format_errors(path: Path, data: bytes) -> None:
    """Every reader either succeeds or raises FormatError naming the file."""
    path.write_bytes(data)
    for reader in (detect_layout, read_concepts):
        try:
            reader(path)
        except FormatError as exc:
            assert str(path) in str(exc)


PREFIXES = st.sampled_from([
    b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95", PNG_MAGIC, struct.pack("<Q", 40) + b"{",
    struct.pack("<Q", 2**40) + b"{", b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.",  # legacy torch magic
])


@FUZZ
@given(prefix=PREFIXES, body=st.binary(max_size=600), suffix=st.sampled_from([".pt", ".safetensors", ".png", ".bin"]))
def test_random_bytes(scratch, prefix, body, suffix):
    only_format_errors(scratch / f"random{suffix}", prefix + body)


@st.composite
def damage(draw, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "flip+truncate"]))
    out = bytearray(data)
    if "flip" in kind:
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
    if kind == "splice":
        i = draw(st.integers(0, len(out)))
        j = draw(st.integers(i, min(len(out), i + 64)))
        out[i:j] = draw(st.binary(max_size=16))
    if "truncate" in kind:
        out = out[: draw(st.integers(0, max(0, len(out) - 1)))]
    return bytes(out)


@FUZZ
@given(data=st.data())
def test_damaged_valid_files(samples, scratch, data):
    name = data.draw(st.sampled_from(sorted(samples)))
    mutated = data.draw(damage(samples[name]))
    only_format_errors(scratch / f"damaged-{name}", mutated)


def test_samples_are_valid(samples, scratch):
    for name, blob in samples.items():
        (scratch / name).write_bytes(blob)
        assert read_concepts(scratch / name), name
        os.unlink(scratch / name)
