"""The usual recipe, as a reference: a small loop following diffusers' ``examples/textual_inversion`` script.

What it reproduces of that script (its README's command: ``--train_batch_size=1 --gradient_accumulation_steps=4
--learning_rate=5e-4 --scale_lr --lr_scheduler=constant --lr_warmup_steps=0``):

* batch 1 × gradient accumulation 4, AdamW (β 0.9/0.999, weight decay 1e-2, ε 1e-8), lr 5e-4 × 4 = 2e-3, constant;
* every sample: a random training picture, random horizontal flip (p 0.5), a random object/style template, and the
  **VAE run on it** (posterior sample × scaling factor), random timestep and noise, MSE against the scheduler's
  target (ε or v);
* the **whole token table** is the trainable parameter: it gets the gradient and AdamW's update, and every row but
  the new token's is then copied back from the original ("index_no_updates").

It runs on the same frozen :class:`~ticraft.models.backbone.Backbone` and threads as ticraft's trainer; the table is
spliced in as one block over every id (so gradients reach all rows) and removed again afterwards.
"""

from __future__ import annotations

import random
from typing import Any, Iterator

import torch

from ticraft.bench.methods import Method, RunContext, Snapshot, _Clock

BATCH, ACCUM, LR = 1, 4, 5e-4


def _pixels(image: object, size: int, flip: bool) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    img = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)  # type: ignore[attr-defined]
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1)


def run_reference(ctx: RunContext) -> Iterator[Snapshot]:
    """Train ``ctx.token`` the diffusers way, yielding a snapshot at every ladder point (samples = micro-batches)."""
    from diffusers import DDPMScheduler

    from ticraft.concept import Concept
    from ticraft.training.data import OBJECT_TEMPLATES, STYLE_TEMPLATES, caption_prompt, native_resolution

    bb: Any = ctx.backbone  # its vae/unet are typed as plain modules
    if len(bb.encoders) != 1:
        raise NotImplementedError("the reference loop covers one-text-encoder models (SD-1/2, the toy model)")
    setup = _Clock()
    with setup:
        enc = bb.encoders[0]
        rng = random.Random(ctx.seed)
        torch.manual_seed(ctx.seed)
        size = native_resolution(bb.unet, bb.vae)
        vae, unet = bb.vae, bb.unet
        scale = float(vae.config.scaling_factor)
        sched = DDPMScheduler.from_config(bb.scheduler.config)
        n_train = int(sched.config.num_train_timesteps)
        # the new token, initialised from the initializer word's embedding (diffusers: token_embeds[init_id])
        enc.tokenizer.add_tokens([ctx.token])
        new_id = enc.tokenizer.convert_tokens_to_ids(ctx.token)
        base = enc.table.detach()
        init_ids = enc.tokenizer(ctx.concept.init, add_special_tokens=False)["input_ids"]
        init_row = base[init_ids].mean(0, keepdim=True)
        # every row of the table (but ids other concepts are spliced at, and the new id: the toy table has rows for
        # its hidden words where added tokens get their ids), then the new token's
        taken = {int(i) for ids, _ in enc.embedding.blocks().values() for i in ids} | {new_id}
        rows = [i for i in range(base.shape[0]) if i not in taken]
        orig = torch.cat([base[rows], init_row]).clone()
        table = torch.nn.Parameter(orig.clone())
        ids_all = rows + [new_id]
        block = f"{ctx.token}#reference"
        enc.embedding.set_block(block, ids_all, table)
        opt = torch.optim.AdamW([table], lr=LR * BATCH * ACCUM, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
        templates = STYLE_TEMPLATES if ctx.concept.kind == "style" else OBJECT_TEMPLATES
        keep = torch.ones(table.shape[0], dtype=torch.bool)
        keep[-1] = False
    ctx.events["startup_seconds"] = setup.cpu
    ctx.events["config"] = {"batch_size": BATCH, "grad_accum": ACCUM, "lr": LR * BATCH * ACCUM, "optimizer": "adamw",
                            "weight_decay": 1e-2, "lr_schedule": "constant", "vae_each_step": True,
                            "whole_table_gradient": True}
    clock = _Clock()
    points = set(ctx.ladder)
    samples = 0
    try:
        while samples < ctx.ladder[-1]:
            with clock:
                for _ in range(ACCUM):
                    im = ctx.images[rng.randrange(len(ctx.images))]
                    if ctx.concept.kind == "style" and im.caption:
                        prompt = caption_prompt(im.caption, ctx.token)
                    else:
                        prompt = rng.choice(templates).format(ctx.token)
                    px = _pixels(im.image, size, rng.random() < 0.5).unsqueeze(0)
                    with torch.no_grad():
                        latents = vae.encode(px).latent_dist.sample() * scale
                    noise = torch.randn_like(latents)
                    t = torch.randint(0, n_train, (BATCH,))
                    noisy = sched.add_noise(latents, noise, t)
                    ids = enc.tokenizer([prompt], padding="max_length", truncation=True,
                                        max_length=enc.tokenizer.model_max_length, return_tensors="pt").input_ids
                    hidden = enc.model(input_ids=ids)[0]
                    pred = unet(noisy, t, encoder_hidden_states=hidden).sample
                    if sched.config.prediction_type == "v_prediction":
                        target = sched.get_velocity(latents, noise, t)
                    else:
                        target = noise
                    loss = torch.nn.functional.mse_loss(pred.float(), target.float()) / ACCUM
                    loss.backward()
                    samples += BATCH
                opt.step()
                opt.zero_grad()
                with torch.no_grad():  # diffusers: only the new token's row may change
                    table[keep] = orig[keep]
            if samples in points:
                vec = table.detach()[-1:].clone()
                # out while the snapshot is judged (its other rows equal the table's), so the judged concept's
                # token can take any free id
                enc.embedding.remove_block(block)
                yield Snapshot(samples, clock.cpu, clock.wall, Concept(ctx.token, {enc.key: vec}, family=bb.family))
                enc.embedding.set_block(block, ids_all, table)
    finally:
        enc.embedding.remove_block(block)


def reference_method() -> Method:
    return Method("diffusers-recipe", "diffusers' example recipe: batch 1 × accumulation 4, lr 5e-4 × 4, AdamW, "
                  "VAE every step, whole-table gradient (a small loop written for this benchmark)", run_reference,
                  samples_per_step=BATCH * ACCUM, reference=True)
