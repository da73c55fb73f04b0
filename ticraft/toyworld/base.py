"""Train the toy world's base text-to-image model, save it as a diffusers pipeline folder, and judge its samples.

Two stages, both deterministic from ``BaseConfig.seed`` and resumable from step checkpoints:
1. the VAE (AutoencoderKL, 32 px ↔ 16×16×4 latents) on renders;
2. the CLIP text encoder and the UNet jointly, on cached latents and pre-tokenised captions (10 % empty, for
   classifier-free guidance).

Design choices, each from a measured failure of a throwaway prototype (see the issue): zero-terminal-SNR
``scaled_linear`` betas with v-prediction (otherwise the global colour leaks through the last noise level and the
sampler ignores the prompt's colours), ``clip_sample=False``, trailing DDIM timesteps; and a text-pooled embedding
added to the UNet's time embedding (``addition_embed_type="text"``) so the prompt steers every ResNet block, which
helps the global attributes (shape, colour, style) that cross-attention alone learnt slowly. Every RNG draw of step
``k`` comes from a generator seeded with ``(seed, stage, k)``, so a resumed run equals an uninterrupted one.

The pieces: :mod:`~ticraft.toyworld.base_config` (recipe, presets, data), :mod:`~ticraft.toyworld.base_model`
(architecture, export, sampling, judging), :mod:`~ticraft.toyworld.base_stages` (the two training stages). This
module runs them end to end and re-exports their public names.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ticraft.toyworld.base_config import (  # noqa: F401 (re-exported)
    FIXTURE_NAME,
    PRESET_BUDGETS,
    PRESETS,
    WEIGHTS_DIR,
    BaseConfig,
    Dataset,
    Example,
    Progress,
    build_dataset,
    eval_prompts,
    sample_example,
)
from ticraft.toyworld.base_model import (  # noqa: F401 (re-exported)
    evaluate,
    generate,
    hide_words,
    load_pipeline,
    make_models,
    make_scheduler,
    save_hidden_fixture,
    save_pipeline,
)
from ticraft.toyworld.base_stages import (  # noqa: F401 (re-exported)
    _fit_steps,
    encode_latents,
    tokenize,
    train_decoder,
    train_denoiser,
    train_vae,
)
from ticraft.toyworld.vocab import HIDDEN_WORDS


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu`` (the words of :func:`ticraft.devices.resolve_device`)."""
    from ticraft.devices import DeviceError
    from ticraft.devices import resolve_device as resolve

    if device.split(":")[0] not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {device!r}; use auto, cpu or cuda")
    dev = resolve(device, use_config=False)
    if dev.type == "cpu":
        return "cpu"
    return "cuda" if (dev.index or 0) == 0 else str(dev)


def train_base(
    out: str | Path = WEIGHTS_DIR,
    cfg: BaseConfig | None = None,
    work: str | Path | None = None,
    resume: bool = True,
    device: str = "auto",
    progress: Progress | None = None,
    fixture: str | Path | None = None,
    stop_after: int | None = None,
    time_budget_s: float | None = None,
    log_every: int = 25,
) -> Path:
    """Train the base model end to end and save it to ``out`` (a diffusers pipeline folder).

    ``work`` holds checkpoints (default: ``./.ticraft-cache/toyworld-base``); with ``resume`` a rerun continues from
    them (same config required). ``fixture``
    (optional) receives the hidden words' true rows. ``stop_after`` stops stage 2 at that step (a pilot): the
    pipeline is still saved, from the EMA weights so far. ``time_budget_s`` fits stage 2 to that many seconds
    (see :func:`train_denoiser`); the step count it ran is recorded in ``ticraft_toyworld.json`` so that
    ``unet_steps=<that count>`` repeats the recipe without a budget.

    Example::

        train_base("my-toy", BaseConfig.preset("gpu"), device="cuda", time_budget_s=300)
    """
    import torch

    from ticraft.toyworld.vocab import load_tokenizer, write_tokenizer

    cfg = cfg or BaseConfig()
    device = resolve_device(device)
    if time_budget_s is not None and math.isinf(time_budget_s):
        time_budget_s = None  # "inf": run every planned step
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    else:  # TF32 matmuls and convolutions: ~free speed, and this model trains in fp32 anyway
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        out = Path(out)
        # checkpoints default to the git-ignored cache folder of the current directory, never inside the package
        work = Path(work) if work is not None else Path.cwd() / ".ticraft-cache" / "toyworld-base"
        work.mkdir(parents=True, exist_ok=True)
        cfg_file = work / "config.json"
        if resume and cfg_file.is_file() and cfg_file.read_text() != cfg.to_json():
            raise ValueError(f"{work} holds checkpoints of a different config; pass --no-resume or another work folder")
        cfg_file.write_text(cfg.to_json())

        tok_dir = work / "tokenizer"
        write_tokenizer(tok_dir)
        tokenizer = load_tokenizer(tok_dir, with_hidden=True)
        hidden_ids = tokenizer.convert_tokens_to_ids(list(HIDDEN_WORDS))

        t0 = time.time()
        data = build_dataset(cfg.n_images, cfg.seed, cfg.hidden_share)
        ids = tokenize(tokenizer, [e.caption for e in data.examples])
        empty_ids = tokenize(tokenizer, [""])[0]
        if progress:
            progress("data", len(data.examples), cfg.n_images, time.time() - t0)

        text_encoder, unet, vae = make_models(cfg, len(tokenizer), tokenizer)
        vae.to(device)
        images = torch.from_numpy(data.images).to(device)  # once, for both VAE stages
        vae = train_vae(vae, images, cfg, work, resume, progress, log_every)
        lat_file = work / "latents.npy"
        if resume and lat_file.is_file():
            latents = np.load(lat_file)
        else:
            latents = encode_latents(vae, data.images, device, batch=256 if device == "cpu" else 4096)
            np.save(lat_file, latents)
        scale = float(1.0 / latents.std())
        vae.register_to_config(scaling_factor=scale)
        latents = (latents * scale).astype(np.float32)
        vae = train_decoder(vae, images, cfg, work, resume, progress, log_every)
        del data, images  # the renders are no longer needed (1.2 GB at the gpu preset)

        planned, provenance = train_denoiser(
            text_encoder, unet, latents, ids, empty_ids, cfg, work, resume, progress, device, stop_after,
            time_budget_s, log_every,
        )  # fmt: skip
        done = planned if stop_after is None else min(planned, stop_after)

        text_encoder.to("cpu")
        unet.to("cpu")
        vae.to("cpu")
        true_rows = hide_words(text_encoder, hidden_ids)
        save_pipeline(out, tok_dir, text_encoder, unet, vae)
        if fixture is not None:
            save_hidden_fixture(Path(fixture), true_rows, hidden_ids)
        (out / "ticraft_toyworld.json").write_text(
            json.dumps(
                {
                    "config": {**asdict(cfg), "unet_steps": planned},
                    "unet_steps_requested": cfg.unet_steps,
                    "time_budget_s": provenance["time_budget_s"],
                    "device": "+".join(provenance["devices"]),  # "cuda", or e.g. "cpu+cuda" for a resumed run
                    "unet_steps_done": done,
                    "hidden_words": list(HIDDEN_WORDS),
                    "hidden_ids": hidden_ids,
                },
                indent=2,
            )
        )
        return out
    finally:  # later work in this process (sampling, tests) gets full precision and its own thread count back
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        torch.set_num_threads(threads)
