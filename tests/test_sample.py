"""Generation on the tiny offline SD model: concepts, seeds, batching, metadata, schedulers, Python API."""

from __future__ import annotations

import json
import re
import types
import warnings

import numpy as np
import pytest
import torch

import ticraft
from ticraft.concept import Concept
from ticraft.generate.sample import (
    SCHEDULERS,
    PromptBudgetWarning,
    ReproductionWarning,
    SampleError,
    SampleSpec,
    generate,
    make_scheduler,
    model_defaults,
    plan_batches,
    read_parameters,
    reproduce,
    save_png,
    spec_from_parameters,
)
from ticraft.models.backbone import BackboneError
from ticraft.models.load import load_backbone
from ticraft.prompts import PromptError

STEPS = 2


def concept(token="<cat-toy>", n=1, seed=0, dim=32, family=None):
    g = torch.Generator().manual_seed(seed)
    return Concept(token, {"clip": torch.randn(n, dim, generator=g)}, family=family)


def px(img):
    return np.asarray(img, dtype=np.int16)


def spec(prompt="a photo of <cat-toy>", **kw):
    kw.setdefault("steps", STEPS)
    return SampleSpec(prompt, **kw)


def test_defaults_and_sizes(bb):
    d = model_defaults(bb)
    assert (d["width"], d["height"]) == (16, 16)  # 8×8 latents × VAE factor 2
    assert d["scheduler"] == "ddim"  # the model's own scheduler type
    imgs = generate(bb, [spec("a photo of the cat", seed=s) for s in range(2)])
    assert [im.size for im in imgs] == [(16, 16)] * 2
    assert imgs[0].mode == "RGB"


def test_same_seed_is_bit_exact_and_seeds_differ(bb):
    c = concept()
    a = generate(bb, [spec(seed=1), spec(seed=2)], concepts=[c])
    b = generate(bb, [spec(seed=1), spec(seed=2)], concepts=[c])
    assert np.array_equal(px(a[0]), px(b[0])) and np.array_equal(px(a[1]), px(b[1]))
    assert not np.array_equal(px(a[0]), px(a[1]))


def test_images_do_not_depend_on_their_batch_mates(bb):
    c = concept()
    s = spec(seed=7)
    x = generate(bb, [spec(seed=1), s], concepts=[c], batch_size=2)[1]
    y = generate(bb, [spec("a photo of the dog", seed=99), s], concepts=[c], batch_size=2)[1]
    assert np.array_equal(px(x), px(y))  # same batch shape: exactly equal whatever the neighbours
    z = generate(bb, s, concepts=[c], batch_size=1)[0]
    assert np.abs(px(x) - px(z)).max() <= 2  # another batch size may round a last bit differently


def test_concept_tokens_change_the_output(bb):
    plain = generate(bb, spec("a photo of the cat", seed=3))[0]
    one = generate(bb, spec("a photo of <cat-toy>", seed=3), concepts=[concept(seed=1)])[0]
    other = generate(bb, spec("a photo of <cat-toy>", seed=3), concepts=[concept(seed=2)])[0]
    assert not np.array_equal(px(one), px(plain))
    assert not np.array_equal(px(one), px(other))  # the vectors themselves matter


def test_multi_vector_and_negative_concepts(bb):
    c3 = concept("<three>", n=3, seed=4)
    a = generate(bb, spec("a photo of <three>", seed=0), concepts=[c3])[0]
    assert "TI hashes" in a.info["parameters"] and "<three>" in a.info["parameters"]
    # Changing only the last of the three vectors changes the image: all N are used.
    v = c3.vectors["clip"].clone()
    v[2] = torch.randn(32, generator=torch.Generator().manual_seed(5))  # (a constant shift would vanish in LayerNorm)
    b = generate(bb, spec("a photo of <three>", seed=0), concepts=[c3.replace(vectors={"clip": v})])[0]
    assert not np.array_equal(px(a), px(b))
    neg_plain = generate(bb, spec("a photo of the cat", negative="dark", seed=0))[0]
    neg_concept = generate(bb, spec("a photo of the cat", negative="<three>", seed=0), concepts=[c3])[0]
    assert not np.array_equal(px(neg_plain), px(neg_concept))
    assert read_parameters(neg_concept)["concept_hashes"] == {"<three>": c3.sha256()[:12]}


def test_unknown_token_is_named(bb):
    with pytest.raises(PromptError, match="<nope>"):
        generate(bb, spec("a photo of <nope> and <cat-toy>"), concepts=[concept()])


def test_mismatched_concept_is_refused(bb):
    with pytest.raises(BackboneError, match="expects"):
        generate(bb, spec("a photo of <wide>"), concepts=[concept("<wide>", dim=64)])


def test_concepts_come_from_the_library(bb, tmp_path):
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")
    c = concept("<lib-toy>", n=2, seed=9)
    lib.add(c)
    from_lib = generate(bb, spec("a photo of <lib-toy>", seed=5), library=lib)[0]
    given = generate(bb, spec("a photo of <lib-toy>", seed=5), concepts=[c])[0]
    assert np.array_equal(px(from_lib), px(given))
    # A folder path works as well, and a differently-cased token finds the entry.
    upper = generate(bb, spec("a photo of <Lib-Toy>", seed=5), library=tmp_path / "lib")[0]
    assert np.array_equal(px(upper), px(given))
    with pytest.raises(PromptError, match=re.escape(f"<absent> (library: {lib.root})")):
        generate(bb, spec("a photo of <absent>"), library=lib)


def test_budget_warning_counts_concept_vectors(bb):
    # one concept holds at most 75 vectors (issue 13), so two of 40 make the over-long prompt
    long, short = concept("<long>", n=40, seed=1), concept("<short>", n=60, seed=1)
    with pytest.warns(PromptBudgetWarning, match="concept vectors: 80"):
        generate(bb, spec("a photo of <long> <long>", seed=0, steps=1), concepts=[long])
    with warnings.catch_warnings():
        warnings.simplefilter("error", PromptBudgetWarning)
        generate(bb, spec("a photo of <short>", seed=0, steps=1), concepts=[short])


def test_metadata_round_trip_and_bit_exact_reproduction(bb, tmp_path):
    c = concept(seed=11)
    imgs = generate(bb, [spec(seed=s, negative="dark", guidance=5.5, scheduler="euler_a") for s in (20, 21, 22)],
                    concepts=[c], batch_size=3)
    path = save_png(imgs[1], tmp_path / "x.png")
    p = read_parameters(path)
    assert spec_from_parameters(p) == SampleSpec("a photo of <cat-toy>", "dark", 21, STEPS, 5.5, "euler_a", 16, 16)
    assert (p["batch_size"], p["batch_pos"]) == (3, 1)
    assert p["model"] == bb.name and p["model_hash"] == bb.fingerprint()[:10]
    assert p["concept_hashes"] == {"<cat-toy>": c.sha256()[:12]}
    again = reproduce(bb, path, concepts=[c])
    assert np.array_equal(px(again), px(imgs[1]))
    assert again.info["parameters"] == imgs[1].info["parameters"]
    with pytest.warns(ReproductionWarning, match="<cat-toy> changed since"):
        reproduce(bb, path, concepts=[concept(seed=12)])


def test_scheduler_names_and_model_settings_carry_over(bb):
    with pytest.raises(SampleError, match="unknown scheduler 'nope'.*ddim.*euler_a.*dpm\\+\\+"):
        generate(bb, spec(scheduler="nope"))
    fake = types.SimpleNamespace(name="fake-v", family="sd2", extra={}, scheduler=bb.scheduler.__class__.from_config(
        bb.scheduler.config, prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing"))
    for name in ("ddim", "euler", "dpm++", "unipc", "ddpm"):
        s = make_scheduler(fake, name)
        assert s.config.prediction_type == "v_prediction", name
        assert s.config.timestep_spacing == "trailing", name
    assert make_scheduler(fake, "ddim").config.rescale_betas_zero_snr is True
    assert make_scheduler(fake, "dpm++_sde").config.algorithm_type == "sde-dpmsolver++"
    assert set(SCHEDULERS) >= {"ddim", "ddpm", "euler", "euler_a", "dpm++", "unipc", "pndm", "lms"}


@pytest.mark.parametrize("name", ["euler", "dpm++", "unipc", "pndm", "lms", "heun"])
def test_named_schedulers_run_and_reset_between_batches(bb, name):
    first = spec("a photo of the cat", seed=0, scheduler=name)
    second = spec("a photo of the dog", seed=1, scheduler=name)
    a, b = generate(bb, [first, second], batch_size=1)  # one scheduler object serves both calls
    alone = generate(bb, second, batch_size=1)[0]
    assert np.array_equal(px(b), px(alone))  # no solver state leaks from the first call
    assert read_parameters(a)["sampler"] == name


def test_invalid_specs(bb):
    with pytest.raises(SampleError, match="multiple of 8"):
        generate(bb, spec(width=20))
    with pytest.raises(SampleError, match="steps"):
        generate(bb, spec(steps=0))
    limit = bb.scheduler.config.num_train_timesteps
    with pytest.raises(SampleError, match=f"steps must be at most {limit} for this model.*got {limit + 1}"):
        generate(bb, [spec("a cat", steps=2), spec("a cat", steps=limit + 1)])
    with pytest.raises(SampleError, match="batch size"):
        generate(bb, spec(), concepts=[concept()], batch_size=0)


def test_batches_group_shared_settings():
    a = SampleSpec("x", steps=2, guidance=1, scheduler="ddim", width=8, height=8)
    b = SampleSpec("y", steps=3, guidance=1, scheduler="ddim", width=8, height=8)
    assert plan_batches([a, b, a, a, b], 2) == [[0, 2], [3], [1, 4]]


def test_mixed_settings_keep_order_and_progress(bb):
    calls = []
    specs = [spec("a photo of the cat", seed=0, steps=2), spec("a photo of the dog", seed=1, steps=3),
             spec("a photo of the cat", seed=0, steps=2, width=24, height=24)]
    imgs = generate(bb, specs, callback=lambda step, total: calls.append((step, total)))
    assert [read_parameters(i)["steps"] for i in imgs] == [2, 3, 2]
    assert imgs[2].size == (24, 24)
    assert calls[-1] == (7, 7) and [c[0] for c in calls] == list(range(1, 8))


def test_python_api(bb):
    imgs = ticraft.sample("a photo of <cat-toy>", concepts=[concept()], model=bb, n=2, seed=5, steps=STEPS)
    assert [read_parameters(i)["seed"] for i in imgs] == [5, 6]
    ref = generate(bb, [spec(seed=5), spec(seed=6)], concepts=[concept()])
    assert all(np.array_equal(px(a), px(b)) for a, b in zip(imgs, ref))
    with pytest.raises(SampleError, match="unknown sampling option"):
        ticraft.sample("x", model=bb, stepz=3)


def test_model_defaults_from_folder_file(tmp_path):
    from diffusers import DDIMScheduler

    settings = {"sampling": {"steps": 12, "guidance": 2.5, "scheduler": "euler", "size": 32}}
    (tmp_path / "ticraft.json").write_text(json.dumps(settings))
    fake = types.SimpleNamespace(
        family="toy", source=str(tmp_path), scheduler=DDIMScheduler(), extra={},
        unet=types.SimpleNamespace(config=types.SimpleNamespace(sample_size=8)),
        vae=types.SimpleNamespace(config=types.SimpleNamespace(block_out_channels=(8, 16, 32))),
    )
    assert model_defaults(fake) == {"steps": 12, "guidance": 2.5, "scheduler": "euler", "width": 32, "height": 32}
    (tmp_path / "ticraft.json").unlink()
    assert model_defaults(fake) == {"steps": 20, "guidance": 4.0, "scheduler": "ddim", "width": 32, "height": 32}


def test_sdxl_concepts_use_both_encoders(tiny_sdxl_dir):
    xl = load_backbone(tiny_sdxl_dir)
    g = torch.Generator().manual_seed(0)
    c = Concept("<xl-toy>", {"clip_l": torch.randn(2, 32, generator=g), "clip_g": torch.randn(2, 64, generator=g)})
    base = generate(xl, spec("a photo of <xl-toy>", seed=1), concepts=[c])[0]
    assert base.size == (16, 16)
    for key in ("clip_l", "clip_g"):  # each encoder's vectors reach the image
        v = {k: t.clone() for k, t in c.vectors.items()}
        v[key] = torch.randn(v[key].shape, generator=g)
        other = generate(xl, spec("a photo of <xl-toy>", seed=1), concepts=[c.replace(vectors=v)])[0]
        assert not np.array_equal(px(base), px(other)), key
    with pytest.raises(BackboneError, match="toy"):
        generate(xl, spec("a photo of <t>"), concepts=[Concept("<t>", {"clip": torch.zeros(1, 32)}, family="toy")])
