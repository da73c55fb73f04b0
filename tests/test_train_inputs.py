"""Bad input gives clear TicraftErrors before anything is written; options are validated."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from train_images import write_images

import ticraft
from ticraft.errors import TicraftError
from ticraft.models.load import load_backbone
from ticraft.training.config import TrainConfig, preset_config
from ticraft.training.inputs import TrainWarning

FAST = dict(steps=2, batch_size=2, log_every=1, previews=0)


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images")


def test_presets_follow_their_recipes():
    paper, diff, fast = preset_config("paper"), preset_config("diffusers"), preset_config("fast")
    assert (paper.steps, paper.lr, paper.batch_size, paper.effective_lr, paper.lr_schedule) == (5000, 5e-3, 8, 0.04, "constant")
    assert (diff.steps, diff.batch_size, diff.grad_accum, diff.effective_lr) == (3000, 1, 4, 2e-3)
    assert diff.optimizer == "adamw" and diff.weight_decay == 1e-2 and diff.lr_schedule == "constant"
    # fast: retuned on the concept suite (issue 15): constant rate, so stopping early equals a shorter run
    assert fast.optimizer == "adam" and fast.lr_schedule == "constant" and not fast.scale_lr
    assert (fast.batch_size, fast.lr, fast.steps) == (16, 5e-3, 64)
    cfg = TrainConfig.from_options(preset="paper", steps=10, num_vectors=2)
    assert (cfg.steps, cfg.num_vectors, cfg.preset) == (10, 2, "paper")


@pytest.mark.parametrize("options, message", [
    ({"stepz": 3}, "did you mean 'steps'"),
    ({"steps": 0}, "steps must be"),
    ({"num_vectors": 1, "progressive": 5}, "num_vectors ≥ 2"),
    # accepted before, and the word silently ended with fewer vectors than asked
    ({"num_vectors": 3, "progressive": 200, "steps": 64}, "at step 400, but the run has 64 steps .* use progressive ≤ 31"),
    ({"num_vectors": 3, "progressive": 1, "steps": 2}, "too few to grow to 3 vectors"),
    ({"early_stop": True, "steps": 64}, "cannot stop this 64-step run: .* first stop at step 105; .* ≤ 11"),
    ({"early_stop": True, "steps": 500, "early_stop_threshold": 0.0}, "early_stop_threshold must be > 0"),
    ({"early_stop_window": 5, "eval_every": 2}, "early_stop_window, eval_every only apply with early_stop"),
    ({"preview_every": 10, "previews": 0}, "would render nothing"),
    ({"compile_backend": "aot_eager"}, "applies only with compile"),
    ({"resolution": 20}, "multiple of 8"),
    ({"style": True, "captions": True}, "not both"),
    ({"compile": "fast"}, "compile must be one of"),
])
def test_bad_options(options, message):
    """Options that cannot work, or would be accepted and then do nothing, are one sentence each."""
    with pytest.raises(TicraftError, match=message):
        TrainConfig.from_options(**options)
    with pytest.raises(TicraftError, match="unknown preset"):
        TrainConfig.from_options(preset="slow")


def test_initializer_without_tokens(tiny_sd_dir, images):
    with pytest.raises(TicraftError, match="initializer"):
        ticraft.train(images, "<thing>", "   ", model=str(tiny_sd_dir), **FAST)


def test_token_already_in_the_vocabulary(tiny_sd_dir, images):
    with pytest.raises(TicraftError, match="already a word"):
        ticraft.train(images, "<|endoftext|>", "toy", model=str(tiny_sd_dir), **FAST)
    with pytest.raises(TicraftError, match="already a word"):
        ticraft.train(images, "<|startoftext|>", "toy", model=str(tiny_sd_dir), **FAST)


def test_retraining_a_token_on_the_same_model_reuses_its_names(tiny_sd_dir, images):
    """A model object keeps the placeholder names of earlier runs; retraining (or a loaded concept of the
    same token) is fine, the table still never changes."""
    bb = load_backbone(str(tiny_sd_dir))
    table = bb.encoders[0].table.detach().clone()
    first = ticraft.train(images, "<thing>", "toy", model=bb, num_vectors=2, **FAST)
    bb.load_concept(first)
    second = ticraft.train(images, "<thing>", "toy", model=bb, num_vectors=2, **FAST)
    assert torch.equal(first.vectors["clip"], second.vectors["clip"])  # same seed, same run
    assert "<thing>" not in bb.loaded_concepts and torch.equal(bb.encoders[0].table, table)
    bb.load_concept(second)  # and the result loads into the same model afterwards


@pytest.mark.parametrize("token", ["cat toy", "", "<a b>", "<x>_1", 3])
def test_malformed_token(images, token):
    with pytest.raises(TicraftError, match="placeholder token must look like"):
        ticraft.train(images, token, "toy", model="/nonexistent", **FAST)


def test_unreadable_images_are_named(tmp_path, tiny_sd_dir):
    folder = write_images(tmp_path / "imgs")
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "half.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(TicraftError, match=r"could not read 2 training images: broken.png .*half.jpg"):
        ticraft.train(folder, "<thing>", "toy", model=str(tiny_sd_dir), **FAST)


def test_no_readable_images(tmp_path, tiny_sd_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("hi")
    with pytest.raises(TicraftError, match="no readable training images.*notes.md"):
        ticraft.train(empty, "<thing>", "toy", model=str(tiny_sd_dir), **FAST)
    with pytest.raises(TicraftError, match="no such image folder"):
        ticraft.train(tmp_path / "missing", "<thing>", "toy", model=str(tiny_sd_dir), **FAST)


def test_small_images_are_upscaled_with_a_warning(tmp_path, tiny_sd_dir):
    folder = write_images(tmp_path / "small", size=8)  # the tiny model's native size is 16 px
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        concept = ticraft.train(folder, "<thing>", "toy", model=str(tiny_sd_dir), **FAST)
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("upscaling 2 images" in m and "img0.png (8×8)" in m for m in msgs)
    assert concept.meta["upscaled_images"] == ["img0.png (8×8)", "img1.png (8×8)"]


def test_missing_captions_are_named(images, tiny_sd_dir):
    (images / "img0.txt").write_text("a cat")
    with pytest.raises(TicraftError, match="missing for: img1.png"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), captions=True, **FAST)


def test_mask_without_alpha(images, tiny_sd_dir):
    with pytest.raises(TicraftError, match="alpha channel"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), mask=True, **FAST)


def test_resume_from_another_model_is_refused(tmp_path, images, tiny_sd_dir):
    from tiny_models import tiny_sd_folder

    other = tiny_sd_folder(tmp_path / "other", seed=1)
    ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), output_dir=tmp_path / "run", save_every=2, **FAST)
    ckpt = tmp_path / "run" / "checkpoint-0000002.pt"
    with pytest.raises(TicraftError, match="trained on another model"):
        ticraft.train(images, "<thing>", "toy", model=str(other), resume=ckpt, **FAST)
    with pytest.raises(TicraftError, match="different options.*num_vectors"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, num_vectors=2, **FAST)
    with pytest.raises(TicraftError, match="different options.*timestep_bias: 'none' → 'earlier'"):  # the draw shapes it
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=ckpt, timestep_bias="earlier", **FAST)
    with pytest.raises(TicraftError, match="trains '<thing>', not '<other>'"):
        ticraft.train(images, "<other>", "toy", model=str(tiny_sd_dir), resume=ckpt, **FAST)
    bogus = tmp_path / "bogus.pt"
    torch.save({"x": 1}, bogus)
    with pytest.raises(TicraftError, match="not a ticraft training checkpoint"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), resume=bogus, **FAST)


def test_nothing_half_written_in_the_library(tmp_path, images, tiny_sd_dir):
    from ticraft.library import Library

    lib = Library(tmp_path / "lib")

    def boom(step, *_):
        if step == 1:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), library=lib, callback=boom, **FAST)
    assert not lib.has("<thing>") and lib.entries() == []
    leftovers = [p.name for p in lib.root.iterdir() if not p.name.startswith(".")] if lib.root.exists() else []
    assert leftovers in ([], ["manifest.json"])
    ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), library=lib, **FAST)
    with pytest.raises(TicraftError, match="already in the library"):
        ticraft.train(images, "<thing>", "toy", model=str(tiny_sd_dir), library=lib, **FAST)


def test_batch_must_split_over_processes():
    from ticraft.training.distributed import DistInfo

    assert DistInfo(rank=1, world_size=2).slice(4) == slice(2, 4)
    with pytest.raises(TicraftError, match="divisible"):
        DistInfo(rank=0, world_size=2).slice(3)



def test_latents_are_encoded_in_chunks_sized_by_resolution(images):
    """Caching latents must not set the run's peak memory: at 512 px one image at a time, same latents."""
    from types import SimpleNamespace

    from ticraft.training.data import encode_latents, load_images, make_variants

    sizes: list[int] = []

    class FakeVAE(torch.nn.Module):  # a per-image map, so chunking must not change the result
        config = SimpleNamespace(scaling_factor=0.5)

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def encode(self, x):
            sizes.append(x.shape[0])
            z = torch.nn.functional.avg_pool2d(x, 8).repeat(1, 2, 1, 1)[:, :4]
            return SimpleNamespace(latent_dist=SimpleNamespace(mean=z * self.w, std=z.abs() + 1))

    vae = FakeVAE()
    imgs = load_images(images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 20 px images are upscaled
        big, small = make_variants(imgs, 512), make_variants(imgs, 128)
    cpu = torch.device("cpu")
    cache = encode_latents(vae, big, device=cpu)
    assert sizes == [1] * 4  # 2 images × (as is, flipped)
    sizes.clear()
    encode_latents(vae, small, device=cpu)
    assert sizes == [4]
    together = encode_latents(vae, big, device=cpu, chunk=4)
    assert torch.equal(cache.mean, together.mean) and torch.equal(cache.std, together.std)


def test_a_run_inside_its_warm_up_says_so(tiny_sd_dir, images):
    """The fast preset warms up over 10 steps: a 4-step run never reaches --lr, and the user is told."""
    with pytest.warns(TrainWarning, match="4 steps end inside the 10-step warm-up: .* only 40% of lr 0.005"):
        concept = ticraft.train(images, "<short>", "toy", model=str(tiny_sd_dir), steps=4, batch_size=2, previews=0)
    assert any("warm-up" in w for w in concept.meta["warnings"])


def test_none_clears_a_field_that_can_be_none_and_keeps_one_that_cannot():
    """`train(config=cfg, progressive=None)` turns progressive off (it was silently dropped); `steps=None` keeps."""
    cfg = TrainConfig.from_options(num_vectors=4, progressive=10, steps=100, max_grad_norm=1.0)
    new = cfg.with_options(progressive=None, max_grad_norm=None, steps=None, lr=None)
    assert (new.progressive, new.max_grad_norm, new.steps, new.lr) == (None, None, 100, cfg.lr)
