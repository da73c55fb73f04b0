"""Generation inputs that were accepted and then silently ignored now say so in one sentence.

* guidance < 1 (and a negative prompt at guidance ≤ 1) on a model whose pipeline runs classifier-free
  guidance only above 1 (SD-style, SD3): a :class:`GuidanceWarning`, once per call; never on Flux, whose
  guidance is a distilled value — except on a Flux transformer without a guidance embedding (FLUX.1-schnell),
  where any guidance but its default 0 is dropped by diffusers: a :class:`GuidanceWarning`.
* a negative prompt on Flux (its pipelines read one only with ``true_cfg_scale`` > 1, which ticraft never
  passes): one :class:`SampleError` before anything renders.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.errors import TicraftWarning
from ticraft.generate.edit import edit
from ticraft.generate.sample import (
    GuidanceWarning,
    ReproductionWarning,
    SampleError,
    SampleSpec,
    compose,
    generate,
    read_parameters,
    reproduce,
)
from ticraft.models.load import load_backbone

STEPS = 2
BELOW = "below 1 and acts as 1"
NEGATIVE = "negative prompt is not used"


def spec(seed: int = 0, **kw) -> SampleSpec:
    kw.setdefault("steps", STEPS)
    return SampleSpec("a photo of a cat", seed=seed, width=16, height=16, **kw)


def guidance_warnings(fn, *args, **kw) -> tuple[object, list[str]]:
    """``fn(*args, **kw)`` and the texts of the GuidanceWarnings it raised (every one, no de-duplication)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    return out, [str(w.message) for w in caught if issubclass(w.category, GuidanceWarning)]


def px(img) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


# ------------------------------------------------------------------------------------------- guidance ≤ 1
def test_guidance_below_one_warns_once_per_call_and_acts_as_one(bb):
    """0, 0.5 and 1 make the same image on an SD pipeline: one warning for the whole call, naming the values."""
    images, texts = guidance_warnings(generate, bb, [spec(s, guidance=g) for s in (0, 1) for g in (0.5, 0.0)])
    assert len(texts) == 1 and BELOW in texts[0] and "0, 0.5" in texts[0], texts
    assert "\n" not in texts[0] and issubclass(GuidanceWarning, TicraftWarning)
    one, texts = guidance_warnings(generate, bb, [spec(0, guidance=1.0)])
    assert texts == []  # 1 is exactly what CFG at scale 1 means: nothing to say
    assert (px(images[0]) == px(one[0])).all() and (px(images[1]) == px(one[0])).all()  # what the warning claims


def test_negative_at_guidance_one_or_below_warns(bb):
    plain, _ = guidance_warnings(generate, bb, [spec(guidance=1.0)])
    neg, texts = guidance_warnings(generate, bb, [spec(s, guidance=1.0, negative="dark") for s in (0, 1, 2)])
    assert len(texts) == 1 and NEGATIVE in texts[0], texts
    assert (px(neg[0]) == px(plain[0])).all()  # the negative really did nothing
    _, texts = guidance_warnings(generate, bb, [spec(guidance=0.5, negative="dark")])
    assert len(texts) == 2 and BELOW in texts[0] and NEGATIVE in texts[1], texts
    _, texts = guidance_warnings(generate, bb, [spec(guidance=0.5, negative="  ")])
    assert len(texts) == 1 and BELOW in texts[0], texts  # a blank negative is no negative


def test_real_guidance_says_nothing(bb):
    _, texts = guidance_warnings(generate, bb, [spec(guidance=2.0, negative="dark"), spec(guidance=7.5)])
    assert texts == []


def test_edit_warns_too(bb):
    from PIL import Image

    source = Image.new("RGB", (16, 16), "red")
    _, texts = guidance_warnings(edit, bb, source, "a photo of a cat", guidance=0.5, negative="dark", steps=STEPS,
                                 strength=0.5)
    assert len(texts) == 2 and BELOW in texts[0] and NEGATIVE in texts[1], texts


@pytest.fixture(scope="module")
def flux(tiny_flux_dir, one_torch_thread):
    return load_backbone(str(tiny_flux_dir))


def test_sd3_warns_flux_does_not(tiny_sd3_dir, flux):
    """SD3 gates CFG at > 1 like SD; Flux's guidance is the distilled embedding, meaningful below 1 too."""
    sd3 = load_backbone(str(tiny_sd3_dir))
    _, texts = guidance_warnings(generate, sd3, [spec(guidance=0.5, negative="dark")])
    assert len(texts) == 2, texts
    _, texts = guidance_warnings(generate, flux, [spec(guidance=0.5), spec(guidance=0.0)])
    assert texts == []


def test_flux_without_a_guidance_embedding_says_guidance_does_nothing(tmp_path, one_torch_thread):
    """FLUX.1-schnell's layout: diffusers drops ``guidance``; the default is its 0 and any other value is warned of."""
    from tiny_sd3_flux import tiny_flux_folder

    from ticraft.generate.specs import model_defaults

    schnell = load_backbone(str(tiny_flux_folder(tmp_path, guidance_embeds=False)))
    assert model_defaults(schnell)["guidance"] == 0.0
    quiet, texts = guidance_warnings(generate, schnell, [spec()])
    assert texts == []
    loud, texts = guidance_warnings(generate, schnell, [spec(guidance=3.5), spec(1, guidance=7.0)])
    assert len(texts) == 1 and "guidance 3.5, 7 does nothing" in texts[0], texts
    assert (px(loud[0]) == px(quiet[0])).all()  # what the warning claims


def test_cli_prints_the_warning_once(tiny_sd_dir, tmp_path):
    """`ticraft sample` shows it as one yellow line (its progress display would otherwise drop it)."""
    torch.set_num_threads(1)
    r = CliRunner().invoke(app, ["sample", "a photo of a cat", "-m", str(tiny_sd_dir), "-n", "3", "--steps", "2",
                                 "--size", "16x16", "--guidance", "0.5", "--negative", "dark", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert r.output.count(BELOW) == 1 and r.output.count(NEGATIVE) == 1, r.output
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_cli_edit_prints_the_warning(tiny_sd_dir, tmp_path):
    """`ticraft edit` shares the sampling display: every ticraft warning raised under it is printed once."""
    from PIL import Image

    torch.set_num_threads(1)
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 40, 40)).save(src)
    r = CliRunner().invoke(app, ["edit", str(src), "a photo of a cat", "-m", str(tiny_sd_dir), "--steps", "2",
                                 "--guidance", "0.5", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert r.output.count(BELOW) == 1, r.output


@pytest.mark.parametrize("args", [["compose", "cat", "-t", "a photo of {}"], ["sample", "a photo of a cat"]])
def test_cli_is_quiet_at_real_guidance(tiny_sd_dir, tmp_path, args):
    r = CliRunner().invoke(app, [*args, "-m", str(tiny_sd_dir), "--steps", "2", "--size", "16x16",
                                 "--negative", "dark", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output, r.output


# ---------------------------------------------------------------------------------------- Flux negatives
FLUX_NEGATIVE = "Flux models ignore negative prompts"


def test_flux_refuses_a_negative_before_rendering(flux):
    steps: list[int] = []
    with pytest.raises(SampleError, match=FLUX_NEGATIVE) as err:
        generate(flux, [spec(), spec(1, negative="blurry")], callback=lambda step, total: steps.append(step))
    assert "\n" not in str(err.value) and steps == []  # one sentence, and nothing rendered first
    with pytest.raises(SampleError, match=FLUX_NEGATIVE):
        compose(flux, ["cat"], ["a photo of {}"], negative="blurry", steps=STEPS, width=16, height=16)
    from PIL import Image

    with pytest.raises(SampleError, match=FLUX_NEGATIVE):
        edit(flux, Image.new("RGB", (16, 16), "red"), "a cat", negative="blurry", steps=STEPS)
    [im] = generate(flux, [spec(negative=" ")])  # a blank negative is no negative
    assert im.size == (16, 16)


def test_flux_image_recording_a_negative_is_recreated_without_it(flux):
    """Images made before the refusal may record a negative Flux never read: the same pixels come without it."""
    [im] = generate(flux, [spec(seed=4)])
    params = {**read_parameters(im), "negative": "blurry"}
    with pytest.warns(ReproductionWarning, match="Flux models ignore"):
        again = reproduce(flux, params)
    assert (px(again) == px(im)).all()


def test_cli_refuses_a_flux_negative(tiny_flux_dir, tmp_path):
    r = CliRunner().invoke(app, ["sample", "a photo of a cat", "-m", str(tiny_flux_dir), "--steps", "2",
                                 "--negative", "blurry", "-o", str(tmp_path)])
    assert r.exit_code != 0 and FLUX_NEGATIVE in r.output and "Traceback" not in r.output, r.output
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("more", [[], ["--seed", "5"]], ids=["exact", "new-seed"])
def test_cli_from_a_flux_image_recording_a_negative(flux, tiny_flux_dir, tmp_path, more):
    """`sample --from` re-creates such an image (exactly, or with new settings) and says the negative is dropped."""
    from ticraft.generate.sample import save_png

    [im] = generate(flux, [spec(seed=4)])
    first, rest = im.info["parameters"].split("\n", 1)
    im.info["parameters"] = f"{first}\nNegative prompt: blurry\n{rest}"
    src = save_png(im, tmp_path / "src.png")
    assert read_parameters(src)["negative"] == "blurry"
    r = CliRunner().invoke(app, ["sample", "--from", str(src), "-m", str(tiny_flux_dir), "-o", str(tmp_path / "o"),
                                 *more])
    assert r.exit_code == 0, r.output
    assert "Flux models ignore" in r.output and "re-created without it" in r.output, r.output
    [out] = (tmp_path / "o").glob("*.png")
    if not more:
        from PIL import Image

        with Image.open(out) as again:
            assert (px(again.convert("RGB")) == px(im)).all()
