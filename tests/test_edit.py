"""`edit`: img2img and inpainting with concepts through pipelines built from the loaded components."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ticraft.concept import Concept
from ticraft.generate.edit import edit, working_size
from ticraft.generate.sample import SampleError, read_parameters, reproduce, spec_from_parameters


@pytest.fixture()
def source():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))


def cat_toy(seed=1):
    return Concept("<cat-toy>", {"clip": torch.randn(2, 32, generator=torch.Generator().manual_seed(seed))})


def arr(im):
    return np.asarray(im, dtype=np.int16)


def test_img2img_with_a_concept(bb, source):
    out = edit(bb, source, "a photo of <cat-toy>", concepts=[cat_toy()], steps=4, n=2, seed=5)
    assert [im.size for im in out] == [(16, 16)] * 2
    assert not np.array_equal(arr(out[0]), arr(source))
    again = edit(bb, source, "a photo of <cat-toy>", concepts=[cat_toy()], steps=4, n=2, seed=5)
    assert all(np.array_equal(arr(a), arr(b)) for a, b in zip(out, again))  # seeded
    other = edit(bb, source, "a photo of <cat-toy>", concepts=[cat_toy(2)], steps=4, n=1, seed=5)[0]
    assert not np.array_equal(arr(out[0]), arr(other))  # the concept's vectors reach the edit
    p = read_parameters(out[1])
    assert (p["edit"], p["denoising_strength"], p["seed"]) == ("img2img", 0.75, 6)
    assert "<cat-toy>" in p["concept_hashes"]
    with pytest.raises(SampleError, match="re-run the edit"):
        spec_from_parameters(p)
    with pytest.raises(SampleError, match="re-run the edit"):
        reproduce(bb, out[0])


def test_strength_sets_how_much_is_redone(bb, source):
    # (The tiny VAE is untrained, so "closer to the source" cannot be measured; the schedule can.)
    seen = {}
    for strength in (0.2, 1.0):
        calls = []
        img = edit(bb, source, "a photo of the cat", steps=10, strength=strength,
                   callback=lambda step, total: calls.append((step, total)))[0]
        seen[strength] = img
        assert calls[-1] == (int(10 * strength), int(10 * strength))
        assert read_parameters(img)["denoising_strength"] == strength
    assert not np.array_equal(arr(seen[0.2]), arr(seen[1.0]))


def test_inpaint_changes_the_mask_and_keeps_the_rest(bb, source, tmp_path):
    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (4, 4, 12, 12))
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    out = edit(bb, source, "a photo of <cat-toy>", mask=mask_path, concepts=[cat_toy()], steps=3)[0]
    inside = np.zeros((16, 16), bool)
    inside[4:12, 4:12] = True
    assert np.array_equal(arr(out)[~inside], arr(source)[~inside])  # outside: the source, pixel for pixel
    assert np.abs(arr(out)[inside] - arr(source)[inside]).mean() > 5
    p = read_parameters(out)
    assert p["edit"] == "inpaint" and p["denoising_strength"] == 1.0 and "Mask hash" in p["fields"]


def test_inputs_are_checked(bb, source, tmp_path):
    with pytest.raises(SampleError, match="mask is empty"):
        edit(bb, source, "a cat", mask=Image.new("L", (16, 16), 0), steps=2)
    with pytest.raises(SampleError, match="not found"):
        edit(bb, tmp_path / "missing.png", "a cat", steps=2)
    with pytest.raises(SampleError, match="strength"):
        edit(bb, source, "a cat", strength=1.5, steps=2)
    with pytest.raises(SampleError, match="no denoising step"):
        edit(bb, source, "a cat", strength=0.1, steps=2)
    assert working_size(Image.new("RGB", (37, 20))) == (32, 16)


def test_edit_resizes_to_multiples_of_8(bb):
    odd = Image.new("RGB", (21, 18), "gray")
    out = edit(bb, odd, "a photo of the cat", steps=2)[0]
    assert out.size == (16, 16)
