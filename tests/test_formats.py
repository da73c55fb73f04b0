"""ticraft.formats: exact round trips, layout detection, tokens/families, bad input, and safe loading."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.formats import (
    LAYOUTS,
    FormatError,
    detect_layout,
    read_concept,
    read_concepts,
    read_png_embedding,
    write_concept,
    write_png_embedding,
)
from ticraft.formats import _torch
from ticraft.formats.png import lcg_mask

WIDTHS = {"sd1": {"clip": 768}, "sd2": {"clip": 1024}, "sdxl": {"clip_l": 768, "clip_g": 1280},
          "toy": {"clip": 16}, "custom": {"clip": 32}, "tiny-xl": {"clip_l": 32, "clip_g": 64}}


def make(family: str = "sd1", n: int = 2, dtype: torch.dtype = torch.float32, token: str = "<cat-toy>",
         seed: int = 0) -> Concept:
    g = torch.Generator().manual_seed(seed)
    vectors = {k: torch.randn(n, d, generator=g).to(dtype) for k, d in WIDTHS[family].items()}
    fam = "sdxl" if family == "tiny-xl" else family
    return Concept(token, vectors, family=fam, meta={"steps": 500, "initializer": "toy", "loss": [0.5, 0.25]})


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality (NaNs included), dtype and shape too."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def assert_same_vectors(a: Concept, b: Concept) -> None:
    assert set(a.vectors) == set(b.vectors)
    for k in a.vectors:
        assert same_bits(a.vectors[k], b.vectors[k]), k


# ------------------------------------------------------------------------------------ round trips
# (layout, suffix, families, carries ticraft metadata, detected layout)
CASES = [
    ("diffusers", ".safetensors", ["sd1", "sd2", "toy", "custom"], True, "diffusers"),
    ("diffusers", ".bin", ["sd1", "sd2"], False, "diffusers"),
    ("diffusers", ".safetensors", ["sdxl", "tiny-xl"], True, "diffusers-sdxl"),
    ("diffusers", ".bin", ["sdxl"], False, "diffusers-sdxl"),
    ("a1111", ".pt", ["sd1", "sd2", "toy"], True, "a1111"),
    ("a1111", ".safetensors", ["sd1", "custom"], True, "a1111"),
    ("a1111-png", ".png", ["sd1", "toy"], True, "a1111-png"),
    ("kohya", ".safetensors", ["sd1", "sd2", "toy"], True, "kohya"),
    ("kohya", ".pt", ["sd1"], False, "kohya"),
    ("kohya", ".safetensors", ["sdxl", "tiny-xl"], True, "kohya-sdxl"),
    ("kohya-sdxl", ".pt", ["sdxl"], False, "kohya-sdxl"),
]
PARAMS = [(lay, suf, fam, meta, det) for lay, suf, fams, meta, det in CASES for fam in fams]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout,suffix,family,carries_meta,detected", PARAMS)
def test_round_trip_is_exact(tmp_path, layout, suffix, family, carries_meta, detected, dtype):
    c = make(family, n=3, dtype=dtype)
    written = write_concept(c, tmp_path / f"cat-toy{suffix}", layout=layout)
    assert all(p.exists() for p in written)
    assert detect_layout(written[0]) == detected
    back = read_concept(written[0])
    assert_same_vectors(c, back)
    assert back.token == c.token  # from metadata, the key, A1111's name, or the stem "cat-toy"
    if carries_meta:
        assert back.family == c.family and back.meta == c.meta
    else:
        assert back.family == (c.family if c.family in ("sd1", "sd2", "sdxl") else None)


def test_non_finite_vectors_are_refused_on_write_and_read(tmp_path):
    """Issue 13: NaN/inf vectors were saved, imported and sampled (a black picture); now every layout refuses
    them with one sentence naming the file, both when writing and when reading a file made elsewhere."""
    from ticraft.concept import ConceptError
    from ticraft.formats import png

    good = make("sd1", n=1)
    with pytest.raises(ConceptError, match="non-finite"):
        Concept("<bad>", {"clip": torch.full((1, 8), float("nan"))})
    bad = make("sd1", n=1)
    bad.vectors["clip"][0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])  # edited in place
    for layout, name in [("diffusers", "a.safetensors"), ("a1111", "a.pt"), ("a1111-png", "a.png"), ("kohya", "k.pt")]:
        with pytest.raises(FormatError, match=f"{name}.*non-finite"):
            write_concept(bad, tmp_path / name, layout=layout)
        assert not (tmp_path / name).exists()
    # files written by other tools: 0xFF bytes (a NaN) in a safetensors body, a .pt dict, a PNG card
    path = write_concept(good, tmp_path / "ff.safetensors")[0]
    data = bytearray(path.read_bytes())
    data[-8:] = b"\xff" * 8
    path.write_bytes(bytes(data))
    torch.save({"string_to_param": {"*": bad.vectors["clip"]}, "name": "bad"}, tmp_path / "raw.pt")
    (tmp_path / "raw.png").write_bytes(png.png_bytes(bad))
    for name in ("ff.safetensors", "raw.pt", "raw.png"):
        with pytest.raises(FormatError, match=f"{name}: .*non-finite"):
            read_concept(tmp_path / name)


def test_sdxl_diffusers_export_is_two_files_and_reads_from_either(tmp_path):
    c = make("sdxl")
    lp, gp = write_concept(c, tmp_path / "xl.safetensors", layout="diffusers-sdxl")
    assert (lp.name, gp.name) == ("xl.safetensors", "xl_2.safetensors")
    from safetensors.torch import load_file
    assert load_file(lp)[c.token].shape == (2, 768) and load_file(gp)[c.token].shape == (2, 1280)
    for p in (lp, gp):
        assert detect_layout(p) == "diffusers-sdxl"
        assert_same_vectors(c, read_concept(p))


def test_sdxl_companion_argument_and_missing_companion(tmp_path):
    c = make("sdxl", dtype=torch.float16)
    lp, gp = write_concept(c, tmp_path / "xl.safetensors")
    odd_l, odd_g = tmp_path / "left.safetensors", tmp_path / "right.safetensors"
    lp.rename(odd_l)
    gp.rename(odd_g)
    with pytest.raises(FormatError, match="companion"):
        read_concept(odd_l)
    assert detect_layout(odd_g) == "diffusers-sdxl"
    assert_same_vectors(c, read_concept(odd_g, companion=odd_l))
    assert_same_vectors(c, read_concept(odd_l, companion=odd_g))


def test_foreign_sdxl_pair_without_metadata(tmp_path):
    """The diffusers SDXL example writes {token: T} twice with no ticraft metadata."""
    l, g = torch.randn(2, 768), torch.randn(2, 1280)
    save_file({"<sx>": l}, tmp_path / "learned_embeds.safetensors", metadata={"format": "pt"})
    save_file({"<sx>": g}, tmp_path / "learned_embeds_2.safetensors", metadata={"format": "pt"})
    back = read_concept(tmp_path / "learned_embeds_2.safetensors")
    assert back.token == "<sx>" and back.family == "sdxl"
    assert torch.equal(back.vectors["clip_l"], l) and torch.equal(back.vectors["clip_g"], g)
    # The clip_g half alone is recognisably SDXL, but not readable without its partner.
    (tmp_path / "learned_embeds.safetensors").unlink()
    assert detect_layout(tmp_path / "learned_embeds_2.safetensors") == "diffusers-sdxl"
    with pytest.raises(FormatError, match="clip_l companion"):
        read_concept(tmp_path / "learned_embeds_2.safetensors")


def test_versions_named_x_and_x_2_are_not_taken_for_a_pair(tmp_path):
    write_concept(make("sd1", token="<v1>"), tmp_path / "cat.safetensors")
    write_concept(make("sd1", token="<v2>", seed=1), tmp_path / "cat_2.safetensors")
    assert detect_layout(tmp_path / "cat.safetensors") == "diffusers"
    assert read_concept(tmp_path / "cat.safetensors").token == "<v1>"
    assert read_concept(tmp_path / "cat_2.safetensors").token == "<v2>"


# ------------------------------------------------------------------------- foreign files, tokens
def test_foreign_a1111_pt_like_the_webui_writes(tmp_path):
    vec = torch.randn(4, 768)
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vec}, "name": "charturner",
                "step": 1500, "sd_checkpoint": "4c86efd062", "sd_checkpoint_name": "v1-5"}, tmp_path / "ct.pt")
    c = read_concept(tmp_path / "ct.pt")
    assert c.token == "charturner" and c.family == "sd1" and torch.equal(c.vectors["clip"], vec)
    assert c.meta == {"imported_from": "a1111", "step": 1500, "sd_checkpoint": "4c86efd062",
                      "sd_checkpoint_name": "v1-5"}
    # Exported back as A1111, the webui fields survive.
    out = write_concept(c, tmp_path / "again.pt", layout="a1111")[0]
    raw = torch.load(out, weights_only=True)
    assert raw["step"] == 1500 and raw["sd_checkpoint"] == "4c86efd062" and raw["string_to_token"] == {"*": 265}


def test_paper_code_parameterdict_is_read_safely(tmp_path):
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(2, 768))})
    torch.save({"string_to_token": {"*": torch.tensor(265)}, "string_to_param": params}, tmp_path / "embeddings.pt")
    assert detect_layout(tmp_path / "embeddings.pt") == "paper"
    c = read_concept(tmp_path / "embeddings.pt")
    assert c.token == "<embeddings>" and c.family == "sd1"
    assert torch.equal(c.vectors["clip"], params["*"].detach()) and not c.vectors["clip"].requires_grad
    assert type(c.vectors["clip"]) is torch.Tensor


def test_paper_code_with_two_placeholders(tmp_path):
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(1, 768)),
                                     "@": torch.nn.Parameter(torch.randn(1, 768))})
    torch.save({"string_to_token": {}, "string_to_param": params}, tmp_path / "two.pt")
    tokens = [c.token for c in read_concepts(tmp_path / "two.pt")]
    assert tokens == ["<two-0>", "@"]


def test_kohya_files_take_their_token_from_the_stem(tmp_path):
    save_file({"emb_params": torch.randn(3, 768)}, tmp_path / "shiny.safetensors", metadata={"ss_network": "x"})
    torch.save({"clip_l": torch.randn(1, 768), "clip_g": torch.randn(1, 1280)}, tmp_path / "xl-style.pt")
    assert detect_layout(tmp_path / "shiny.safetensors") == "kohya"
    assert read_concept(tmp_path / "shiny.safetensors").token == "<shiny>"
    c = read_concept(tmp_path / "xl-style.pt")
    assert (c.token, c.family, c.num_vectors) == ("<xl-style>", "sdxl", 1)


def test_diffusers_bin_and_bare_tensor(tmp_path):
    torch.save({"<learned>": torch.randn(768)}, tmp_path / "learned_embeds.bin")  # old 1-D diffusers export
    c = read_concept(tmp_path / "learned_embeds.bin")
    assert c.token == "<learned>" and c.vectors["clip"].shape == (1, 768)
    torch.save(torch.randn(2, 1024), tmp_path / "bare.pt")
    assert read_concept(tmp_path / "bare.pt").token == "<bare>"


def test_several_tokens_in_one_file(tmp_path):
    save_file({"<a>": torch.randn(1, 768), "<b>": torch.randn(2, 768)}, tmp_path / "pack.safetensors")
    assert [c.token for c in read_concepts(tmp_path / "pack.safetensors")] == ["<a>", "<b>"]
    with pytest.raises(FormatError, match=r"2 tokens \(<a>, <b>\).*token="):
        read_concept(tmp_path / "pack.safetensors")
    assert read_concept(tmp_path / "pack.safetensors", token="<b>").num_vectors == 2
    with pytest.raises(FormatError, match="no token '<c>'.*<a>, <b>"):
        read_concept(tmp_path / "pack.safetensors", token="<c>")


def test_token_argument_renames_a_single_concept(tmp_path):
    p = write_concept(make("sd1"), tmp_path / "c.safetensors")[0]
    assert read_concept(p, token="<renamed>").token == "<renamed>"


# ------------------------------------------------------------------------------------- families
def test_family_argument_must_fit_the_widths(tmp_path):
    p = write_concept(make("sd2"), tmp_path / "c.safetensors")[0]
    with pytest.raises(FormatError, match="1024-wide but family 'sd1'"):
        read_concept(p, family="sd1")
    with pytest.raises(FormatError, match="needs encoders"):
        read_concept(p, family="sdxl")
    with pytest.raises(FormatError, match="unknown family"):
        read_concept(p, family="sd9")
    assert read_concept(p, family="custom").family == "custom"


def test_unknown_width_has_no_family_unless_given(tmp_path):
    save_file({"<t>": torch.randn(1, 48)}, tmp_path / "t.safetensors")
    assert read_concept(tmp_path / "t.safetensors").family is None
    assert read_concept(tmp_path / "t.safetensors", family="toy").family == "toy"


def test_metadata_family_contradicting_the_vectors_is_an_error(tmp_path):
    meta = json.dumps({"version": 1, "token": "<x>", "family": "sd1", "meta": {}})
    save_file({"<x>": torch.randn(1, 1024)}, tmp_path / "x.safetensors", metadata={"ticraft": meta})
    with pytest.raises(FormatError, match="1024-wide but family 'sd1'"):
        read_concept(tmp_path / "x.safetensors")


def test_tiny_sdxl_widths_keep_the_sdxl_family(tmp_path):
    c = make("tiny-xl")
    assert c.family == "sdxl"
    for layout, name in [("diffusers", "t.safetensors"), ("kohya", "k.safetensors"), ("kohya", "k.pt")]:
        assert read_concept(write_concept(c, tmp_path / name, layout=layout)[0]).family == "sdxl"


# -------------------------------------------------------------------------------------- PNG
def a1111_png_payload(vectors: torch.Tensor, name: str = "pngtoken") -> dict:
    return {"string_to_token": {"*": 265}, "string_to_param": {"*": {"TORCHTENSOR": vectors.tolist()}},
            "name": name, "step": 100, "sd_checkpoint": None, "sd_checkpoint_name": None}


def test_png_written_like_a1111_reads_as_float32(tmp_path):
    from PIL import Image, PngImagePlugin

    vec = torch.randn(2, 768)
    info = PngImagePlugin.PngInfo()
    info.add_text("sd-ti-embedding", base64.b64encode(json.dumps(a1111_png_payload(vec)).encode()))
    Image.new("RGB", (32, 32), (200, 100, 50)).save(tmp_path / "card.png", pnginfo=info)
    c = read_png_embedding(tmp_path / "card.png")
    assert c.token == "pngtoken" and c.family == "sd1" and same_bits(c.vectors["clip"], vec)
    assert detect_layout(tmp_path / "card.png") == "a1111-png"


def test_png_round_trip_on_a_given_picture(tmp_path):
    from PIL import Image

    c = make("sd1", dtype=torch.bfloat16)
    p = write_png_embedding(c, tmp_path / "card.png", image=Image.new("RGB", (40, 30), (9, 9, 9)))
    assert Image.open(p).size == (40, 30)
    back = read_png_embedding(p)
    assert_same_vectors(c, back)
    assert (back.token, back.family, back.meta) == (c.token, c.family, c.meta)


def hide_in_pixels(picture, data: dict):
    """A1111's insert_image_data_embed, re-implemented for the test (ornaments replaced by a flat 0x80)."""
    from PIL import Image

    packed = np.frombuffer(zlib.compress(json.dumps(data).encode(), 9), np.uint8)
    h = picture.size[1]
    size = packed.size + (h - packed.size % h)
    size = size + (h * 3 - size % (h * 3))
    strips = []
    for nibbles in (packed & 0x0F, packed >> 4):
        block = np.resize(nibbles, size).reshape(h, -1, 3)
        block = block ^ lcg_mask(block.size).reshape(block.shape)
        strips.append(Image.fromarray((block | 0x80).astype(np.uint8)))
    low, high = strips
    out = Image.new("RGB", (picture.size[0] + low.size[0] + high.size[0] + 2, h), (0, 0, 0))
    out.paste(low, (0, 0))
    out.paste(picture, (low.size[0] + 1, 0))
    out.paste(high, (low.size[0] + 1 + picture.size[0] + 1, 0))
    return out


def test_png_with_data_hidden_in_pixels(tmp_path):
    from PIL import Image

    assert lcg_mask(6).tolist() == [v & 15 for v in (253, 242, 127, 44, 157, 27)]  # A1111's reference values
    vec = torch.randn(1, 768)
    hide_in_pixels(Image.new("RGB", (64, 64), (120, 130, 140)), a1111_png_payload(vec, "hidden")).save(tmp_path / "h.png")
    c = read_concept(tmp_path / "h.png")
    assert c.token == "hidden" and torch.equal(c.vectors["clip"], vec)


def test_png_without_embedding_says_so(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16), (1, 2, 3)).save(tmp_path / "plain.png")
    for reader in (read_concept, detect_layout, read_png_embedding):
        with pytest.raises(FormatError, match="plain.png: this PNG holds no embedding"):
            reader(tmp_path / "plain.png")


def test_png_refuses_sdxl(tmp_path):
    with pytest.raises(FormatError, match="one text encoder"):
        write_png_embedding(make("sdxl"), tmp_path / "xl.png")


# ---------------------------------------------------------------------------------- bad input
def test_errors_are_ticraft_errors():
    assert issubclass(FormatError, TicraftError) and issubclass(FormatError, ValueError)
    assert LAYOUTS == ("diffusers", "diffusers-sdxl", "a1111", "a1111-png", "kohya", "kohya-sdxl", "paper",
                       "comfyui", "diffusers-t5", "onetrainer",  # these three: SD3/Flux (test_sd3_flux_formats)
                       "kohya-xti", "ticraft-xti")  # per-layer concepts (test_xti)


def test_empty_missing_folder(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(FormatError, match="empty.pt: the file is empty"):
        read_concept(tmp_path / "empty.pt")
    with pytest.raises(FormatError, match="no such file"):
        detect_layout(tmp_path / "nope.safetensors")
    with pytest.raises(FormatError, match="is a folder"):
        read_concept(tmp_path)


def test_unknown_content_and_unknown_layout(tmp_path):
    (tmp_path / "notes.pt").write_text("hello, I am not an embedding")
    with pytest.raises(FormatError, match="not an embedding file"):
        detect_layout(tmp_path / "notes.pt")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, tmp_path / "model.ckpt")
    with pytest.raises(FormatError, match="unknown embedding layout.*'state_dict'"):
        read_concept(tmp_path / "model.ckpt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(FormatError, match="holds a list"):
        read_concept(tmp_path / "list.pt")


@pytest.mark.parametrize("value,message", [
    ("a string", "should be a tensor"),
    (torch.zeros(2, 768, dtype=torch.int64), "dtype torch.int64"),
    (torch.zeros(1, 2, 768), r"shape \(1, 2, 768\)"),
    (torch.zeros(0, 768), r"shape \(0, 768\)"),
])
def test_bad_vectors(tmp_path, value, message):
    torch.save({"string_to_param": {"*": value}, "name": "x"}, tmp_path / "bad.pt")
    with pytest.raises(FormatError, match=message):
        read_concept(tmp_path / "bad.pt")


def test_non_tensor_values_in_a_token_dict(tmp_path):
    torch.save({"<a>": torch.zeros(1, 768), "<b>": "text"}, tmp_path / "mixed.bin")
    with pytest.raises(FormatError, match="unknown embedding layout"):
        read_concept(tmp_path / "mixed.bin")
    torch.save({"emb_params": 3}, tmp_path / "k.pt")
    with pytest.raises(FormatError, match="'emb_params' should be a tensor"):
        read_concept(tmp_path / "k.pt")


def test_sdxl_halves_with_different_counts(tmp_path):
    torch.save({"clip_l": torch.zeros(2, 768), "clip_g": torch.zeros(3, 1280)}, tmp_path / "xl.pt")
    with pytest.raises(FormatError, match="disagree on the vector count"):
        read_concept(tmp_path / "xl.pt")


@pytest.mark.parametrize("layout,name", [("diffusers", "c.safetensors"), ("diffusers", "c.bin"), ("a1111", "c.pt"),
                                         ("kohya", "c.safetensors"), ("a1111-png", "c.png")])
def test_truncated_files(tmp_path, layout, name):
    p = write_concept(make("sd1"), tmp_path / name, layout=layout)[0]
    data = p.read_bytes()
    cuts = [1, 7, 9, len(data) // 3, len(data) // 2]
    if layout != "a1111-png":  # a PNG missing only its IEND trailer still holds the whole embedding
        cuts.append(len(data) - 1)
    for cut in cuts:
        p.write_bytes(data[:cut])
        with pytest.raises(FormatError, match=name):
            read_concept(p)


def test_damaged_safetensors_metadata(tmp_path):
    save_file({"<x>": torch.zeros(1, 768)}, tmp_path / "x.safetensors", metadata={"ticraft": "{not json"})
    with pytest.raises(FormatError, match="'ticraft' metadata is not valid JSON"):
        read_concept(tmp_path / "x.safetensors")


# ------------------------------------------------------------------------------------- writing
def test_write_errors(tmp_path):
    c, xl = make("sd1"), make("sdxl")
    with pytest.raises(FormatError, match="one text encoder.*kohya"):
        write_concept(xl, tmp_path / "xl.pt", layout="a1111")
    with pytest.raises(FormatError, match="read-only"):
        write_concept(c, tmp_path / "p.pt", layout="paper")
    with pytest.raises(FormatError, match="cannot write layout 'onnx'"):
        write_concept(c, tmp_path / "p.onnx", layout="onnx")
    with pytest.raises(FormatError, match="ends in .safetensors or .bin"):
        write_concept(c, tmp_path / "c.txt")
    with pytest.raises(FormatError, match="needs an SDXL concept"):
        write_concept(c, tmp_path / "c.safetensors", layout="kohya-sdxl")
    odd = Concept("<odd>", {"t5": torch.zeros(1, 8)})
    with pytest.raises(FormatError, match="encoders"):
        write_concept(odd, tmp_path / "odd.safetensors")
    with pytest.raises(FormatError, match="cannot be stored as JSON"):
        write_concept(Concept("<m>", {"clip": torch.zeros(1, 8)}, meta={"f": object()}), tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_writes_are_atomic(tmp_path, monkeypatch):
    p = write_concept(make("sd1", token="<old>"), tmp_path / "c.safetensors")[0]
    before = p.read_bytes()

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(FormatError, match="could not write"):
        write_concept(make("sd1", token="<new>", seed=3), p)
    assert p.read_bytes() == before and sorted(x.name for x in tmp_path.iterdir()) == ["c.safetensors"]
    monkeypatch.undo()
    write_concept(make("sd1", token="<new>", seed=3), p)
    assert read_concept(p).token == "<new>" and oct(p.stat().st_mode & 0o777) == "0o644"


def test_bf16_dtype_is_kept_by_torch_files(tmp_path):
    c = make("sd1", dtype=torch.bfloat16)
    raw = torch.load(write_concept(c, tmp_path / "c.pt", layout="a1111")[0], weights_only=True)
    assert raw["string_to_param"]["*"].dtype == torch.bfloat16 and raw["name"] == c.token


# ------------------------------------------------------------------------------------- security
class RunsShell:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class RunsExec:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def _malicious_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    files = {}
    for name, payload in [("shell", RunsShell(marker)), ("exec", RunsExec(marker))]:
        for proto in (2, 4):  # GLOBAL and STACK_GLOBAL opcodes
            files[f"raw-{name}-p{proto}"] = tmp_path / f"raw-{name}-{proto}.pt"
            files[f"raw-{name}-p{proto}"].write_bytes(pickle.dumps({"emb_params": payload}, protocol=proto))
        files[f"zip-{name}"] = tmp_path / f"zip-{name}.pt"
        torch.save({"string_to_param": {"*": torch.zeros(1, 768)}, "name": payload}, files[f"zip-{name}"])
        files[f"legacy-{name}"] = tmp_path / f"legacy-{name}.bin"
        torch.save({"<t>": payload}, files[f"legacy-{name}"], _use_new_zipfile_serialization=False)
    return files


def test_malicious_pickles_are_refused_and_run_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    for label, path in _malicious_files(tmp_path, marker).items():
        for reader in (detect_layout, read_concept, read_concepts):
            with pytest.raises(FormatError, match="contains code.*not loaded") as info:
                reader(path)
            assert str(path) in str(info.value), label
        assert not marker.exists(), label


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weights_only_still_guards_when_the_scan_is_bypassed(tmp_path, monkeypatch):
    """Defence in depth: with the opcode scan switched off, torch's restricted unpickler refuses too."""
    marker = tmp_path / "PWNED"
    monkeypatch.setattr(_torch, "scan", lambda data, path: None)
    for label, path in _malicious_files(tmp_path, marker).items():
        with pytest.raises(FormatError):
            read_concept(path)
        assert not marker.exists(), label


def test_torchscript_archives_are_refused(tmp_path):
    module = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(module, str(tmp_path / "scripted.pt"))
    with pytest.raises(FormatError, match="TorchScript archive.*not loaded"):
        read_concept(tmp_path / "scripted.pt")


def test_legacy_file_with_a_pickled_module_is_refused(tmp_path):
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(1, 768))})
    torch.save({"string_to_param": params}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(FormatError, match="legacy .*not loaded"):
        read_concept(tmp_path / "old.pt")


def test_scan_follows_memoised_names():
    names, _ = _torch.pickle_imports(pickle.dumps([os.getcwd, os.getcwd, print], protocol=4))
    assert names == [f"{os.getcwd.__module__}.getcwd", "builtins.print"]
