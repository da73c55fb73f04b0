"""``ticraft.train(...)``: images in, :class:`~ticraft.concept.Concept` out (and into the library).

>>> concept = ticraft.train("photos/", "<cat-toy>", "toy", model="toy", steps=200)   # doctest: +SKIP
>>> concept.vectors["clip"].shape                                                    # doctest: +SKIP
torch.Size([1, 64])

Order of work, chosen so that bad input fails before anything slow or anything written: resume file,
options, token, images, library name clash → model → data encoding → training → outputs. The
library entry is written once, at the end, by :meth:`Library.add` (atomic), so an interrupted or failed
run leaves nothing half-written there. A resumed run's options are its checkpoint's, with the ones given
explicitly on top (:func:`ticraft.training.checkpoint.resume_config`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from ticraft.concept import MAX_VECTORS, Concept
from ticraft.devices import parse_dtype
from ticraft.errors import TicraftError
from ticraft.prompts import CONCEPT_TOKEN
from ticraft.training import inputs
from ticraft.training.checkpoint import (
    CheckpointError,
    check_compatible,
    checkpoint_name,
    load_checkpoint,
    resume_config,
    save_checkpoint,
)
from ticraft.training.config import TrainConfig, preset_config
from ticraft.training.data import TrainImage, load_images
from ticraft.training.distributed import DistInfo, init_distributed, pick_device, shutdown_distributed
from ticraft.training.flow import make_trainer
from ticraft.training.loop import Callback, Trainer
from ticraft.training.report import plot_loss_curve, preview_prompts, render_previews

_log = logging.getLogger(__name__)


def train(
    images: str | os.PathLike | Sequence[Any],
    token: str,
    init: str,
    model: Any = "toy",
    *,
    config: TrainConfig | None = None,
    preset: str | None = None,
    callback: Callback | None = None,
    library: Any = None,
    tags: Iterable[str] = (),
    overwrite: bool = False,
    output_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    **options: Any,
) -> Concept:
    """Learn vectors for ``token`` from ``images`` on a frozen model.

    Args:
        images: a folder of images (``img.txt`` next to ``img.png`` is its caption), a file, or a list
            of paths / PIL images.
        token: the new placeholder, ``"<name>"``; it must not already be a word of the model.
        init: initializer text (one or more words); its token embeddings start the vectors — or, with
            ``init_search`` (on in the ``fast`` preset), the search for a better start from the pictures starts there
            (``meta["init_search"]`` records what was chosen).
        model: ``"toy"``, a diffusers folder, a checkpoint file, a cached hub id, or a loaded
            :class:`~ticraft.models.backbone.Backbone` (used as is; its tokenizer keeps the new token names).
        config: a full :class:`TrainConfig`; alternatively ``preset`` (``fast``/``paper``/``diffusers``)
            plus keyword ``options`` naming any of its fields (``steps=200, num_vectors=4, …``). With
            ``resume`` (and no ``config``) the fields not given come from the checkpoint, not the preset.
        callback: ``callback(step, total, loss, vectors)`` after each step; ``loss`` is ``None`` on
            steps where it was not read (every ``log_every`` steps it is). Return ``True`` to stop.
        library: a :class:`~ticraft.library.Library` or its folder: the result is added there with
            its images, a loss-curve PNG and preview samples.
        tags: library tags for the new entry.
        overwrite: replace an existing library entry with the same token.
        output_dir: folder for checkpoints (``save_every``), previews (``preview_every``), the final
            embedding file and loss curve.
        resume: a checkpoint file (or a folder: its latest checkpoint) of the same run to continue. It continues
            with the checkpoint's options (and preset), logging once which differ from the preset's current
            values; an option given here that would change the run's state (``num_vectors``, ``batch_size``,
            ``seed``, …: ``checkpoint.RESUME_KEYS``) is refused, others (``steps``, ``lr``, outputs) apply.
            Without ``output_dir`` the resumed run writes no checkpoints or previews.

    Returns:
        The learned :class:`Concept` (per-image tokens dropped) with training metadata.
    """
    if config is not None and preset is not None:
        raise TicraftError("give either config= or preset=, not both")
    out = Path(output_dir) if output_dir is not None else None
    state = load_checkpoint(resume) if resume is not None else None
    if state is not None and state.get("kind") == "train-many":
        raise CheckpointError(f"{resume} is a train-many checkpoint; resume it with `ticraft train-many --resume`")
    resume_note = None
    if state is not None and config is None:  # the run continues as it began: its options, the given ones on top
        cfg, resume_note = resume_config(state, preset=preset, options=options, outputs=out is not None,
                                         path=resume or "checkpoint")
    else:
        cfg = (config if config is not None else preset_config(preset or "fast")).with_options(**options)
    token = check_token(token)
    if not isinstance(init, str) or not init.strip():
        raise TicraftError("the initializer text is empty; give a word close to the concept, e.g. 'toy' or 'dog'")
    if cfg.num_vectors > MAX_VECTORS:
        raise TicraftError(f"num_vectors is {cfg.num_vectors}, more than {MAX_VECTORS}: a prompt holds at most "
                           f"{MAX_VECTORS} tokens, so the concept could never be used whole")
    loaded = load_images(images, captions=cfg.captions)
    run_warnings: list[str] = []
    inputs.warn_short_run(cfg, run_warnings)
    if len(loaded) == 1:
        inputs.warn(f"training on one picture ({loaded[0].name}): the word tends to copy that picture's pose and "
                    "background; 3-5 pictures of the concept generalise better", run_warnings)
    inputs.warn_vectors_for_few_pictures(cfg, len(loaded), run_warnings)
    lib = open_library(library)
    references = inputs.find_references(init, loaded, token, captions=cfg.captions, library=lib)
    if lib is not None and lib.has(token) and not overwrite:
        raise TicraftError(f"{token} is already in the library {lib.root}; pick another token or overwrite it")
    if out is None and (cfg.save_every or cfg.preview_every):
        raise TicraftError("save_every/preview_every need an output folder (output_dir= / --out)")

    dist = init_distributed(cfg.device)
    completed = False
    try:
        if resume_note and dist.is_main:
            _log.info(resume_note)
        bb = _backbone(model, cfg, dist)
        fingerprint = bb.fingerprint()
        hashes = [im.sha256 for im in loaded]
        if state is not None:
            check_compatible(state, fingerprint=fingerprint, token=token, image_hashes=hashes,
                             config=cfg.to_dict(), path=resume or "checkpoint", given=config is None)
        trainer = make_trainer(bb, loaded, token, init, cfg, dist=dist, references=references)  # SD3/Flux: flow
        try:
            if state is not None:
                trainer.load_state_dict(state)
            identity = {"token": token, "fingerprint": fingerprint, "model": bb.name, "images": hashes,
                        "config": cfg.to_dict()}
            hook = _Hooks(trainer, out, identity, dist) if out is not None else None
            started = time.time()
            trainer.run(callback, on_step=hook)
            # every rank got here: from now on only rank 0 works alone (files, library), and should that fail the
            # others must still be released from the teardown barrier
            completed = True
            if hook is not None:
                hook.final()
            # a vector that did not move learned nothing: an error, not a success (and nothing is written)
            # (SD3/Flux with --encoders t5|clip: only the trained encoders' vectors must move)
            learned = getattr(trainer, "learned_vectors", trainer.result_vectors)()
            inputs.check_moved(token, trainer.init_vectors, learned, trainer.step)
            concept = Concept(token, trainer.result_vectors(), family=bb.family,
                              meta=_meta(trainer, bb, fingerprint, init, cfg, loaded, started))
            concept.meta["warnings"] = run_warnings + trainer.warnings
            if dist.is_main:
                _finish(trainer, concept, loaded, out=out, lib=lib, tags=tags, overwrite=overwrite)
        finally:
            trainer.close()
    finally:
        shutdown_distributed(dist, completed=completed)
    return concept


# ------------------------------------------------------------------ checks
def check_token(token: Any) -> str:
    """A placeholder must look like ``<name>``: no spaces, no nested brackets, not ending in ``_<digit>``."""
    if not isinstance(token, str) or not CONCEPT_TOKEN.fullmatch(token):
        hint = ""
        if isinstance(token, str) and token.strip():
            hint = f"; try '<{'-'.join(token.strip('<> ').split())}>'"
        raise TicraftError(f"the placeholder token must look like '<name>' (no spaces){hint}, got {token!r}")
    return token


def open_library(library: Any) -> Any:
    """``None`` → no library; a path → that library folder; an object with ``add`` → itself."""
    if library is None:
        return None
    if isinstance(library, (str, os.PathLike)):
        from ticraft.library import Library

        return Library.resolve(library)
    return library


def _backbone(model: Any, cfg: TrainConfig, dist: DistInfo) -> Any:
    from ticraft.models.backbone import Backbone
    from ticraft.models.load import load_backbone

    if isinstance(model, Backbone):
        if cfg.device != "auto":
            model.to(device=pick_device(cfg.device, dist))
        return model
    device = pick_device(cfg.device, dist)
    return load_backbone(model, device=device, dtype=_weight_dtype(cfg, device))


def _weight_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Frozen weights: bf16 when training under bf16 autocast on CUDA (half the memory, no extra casts)."""
    choice = cfg.weight_dtype
    if choice == "auto":
        if device.type != "cuda":
            return None
        from ticraft.devices import autocast_dtype

        return autocast_dtype(cfg.mixed_precision, device)
    return None if choice == "fp32" else parse_dtype(choice)


# ------------------------------------------------------------------ outputs
class _Hooks:
    """Checkpoints and previews every K steps (main process only)."""

    def __init__(self, trainer: Trainer, out: Path, identity: dict[str, Any], dist: DistInfo) -> None:
        self.trainer, self.out, self.identity, self.dist = trainer, out, identity, dist

    def __call__(self, trainer: Trainer) -> None:
        cfg = trainer.cfg
        if not self.dist.is_main:
            return
        if cfg.save_every and trainer.step % cfg.save_every == 0:
            self.save()
        if cfg.preview_every and cfg.previews and trainer.step % cfg.preview_every == 0:  # previews=0: none
            texts = preview_prompts(trainer.token, style=cfg.style, count=cfg.previews)
            prompts = [trainer.preview_prompt(p) for p in texts]
            images = render_previews(trainer.bb, prompts, seed=cfg.seed, steps=cfg.preview_steps,
                                     size=trainer.resolution)
            folder = self.out / "previews"
            folder.mkdir(parents=True, exist_ok=True)
            for i, im in enumerate(images):
                im.save(folder / f"step-{trainer.step:07d}-{i}.png")

    def save(self) -> None:
        trainer = self.trainer
        save_checkpoint(self.out / checkpoint_name(trainer.step), {**self.identity, **trainer.state_dict()})

    def final(self) -> None:
        """A last checkpoint when the run ended between two (early stop, callback stop)."""
        if self.dist.is_main and self.trainer.cfg.save_every and self.trainer.step % self.trainer.cfg.save_every:
            self.save()


def _meta(trainer: Trainer, bb: Any, fingerprint: str, init: str, cfg: TrainConfig, images: Sequence[TrainImage],
          started: float) -> dict[str, Any]:
    return {
        "trainer": "ticraft",
        "model": bb.name,
        "model_fingerprint": fingerprint,
        "initializer": init,
        # init_search: the words the run started from instead (and the losses that chose them)
        **({"init_search": trainer.init_choice.to_dict()} if trainer.init_choice is not None else {}),
        "steps": trainer.step,
        "num_vectors": trainer.active,
        "resolution": trainer.resolution,
        "config": cfg.to_dict(),
        "loss_curve": trainer.loss_curve,
        "eval_curve": trainer.eval_curve,
        "stopped": trainer.stopped or "completed",
        "images": [{"name": im.name, "sha256": im.sha256} for im in images],
        "upscaled_images": trainer.upscaled,
        "per_image_tokens_dropped": len(trainer.image_tokens),
        "prediction_type": trainer.prediction_type,
        "train_seconds": round(trainer.train_seconds, 3),
        "wall_seconds": round(time.time() - started, 3),
        "world_size": trainer.dist.world_size,
        # xti / directional: the method and its layout (layer count, norm), which loading the concept needs
        **(trainer.method_meta() if hasattr(trainer, "method_meta") else {}),
    }


def _finish(trainer: Trainer, concept: Concept, images: Sequence[TrainImage], *, out: Path | None, lib: Any,
            tags: Iterable[str], overwrite: bool) -> None:
    cfg = trainer.cfg
    previews: list[Any] = []
    if (lib is not None or out is not None) and cfg.previews:
        prompts = [trainer.preview_prompt(p)
                   for p in preview_prompts(trainer.token, style=cfg.style, count=cfg.previews)]
        previews = render_previews(trainer.bb, prompts, seed=cfg.seed, steps=cfg.preview_steps, size=trainer.resolution)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_embedding(concept, out)
        plot_loss_curve(trainer.loss_curve, out / "loss.png", eval_curve=trainer.eval_curve, title=concept.token)
        for i, im in enumerate(previews):
            im.save(out / f"sample-{i}.png")
    if lib is not None:
        with tempfile.TemporaryDirectory() as tmp:
            paths = _image_paths(images, Path(tmp))
            entry = lib.add(concept, images=paths, tags=list(tags), overwrite=overwrite)
        folder = Path(getattr(entry, "folder", None) or lib.folder(concept.token))
        plot_loss_curve(trainer.loss_curve, folder / "loss.png", eval_curve=trainer.eval_curve, title=concept.token)
        _write_log(folder / "train.log", trainer, concept)
        if previews:
            lib.add_samples(concept.token, previews)


def _image_paths(images: Sequence[TrainImage], tmp: Path) -> list[Path]:
    """Training images as files (PIL inputs are written as PNGs into ``tmp``)."""
    paths = []
    for im in images:
        if im.path is not None:
            paths.append(im.path)
        else:
            p = tmp / f"{im.name}.png"
            im.image.save(p)
            paths.append(p)
    return paths


def _write_log(path: Path, trainer: Trainer, concept: Concept) -> None:
    lines = [f"# ticraft train {concept.token}  steps={trainer.step}  stopped={trainer.stopped or 'completed'}",
             "# config " + json.dumps(trainer.cfg.to_dict(), sort_keys=True), "step\tloss"]
    lines += [f"{int(s)}\t{v:.6g}" for s, v in trainer.loss_curve]
    if trainer.eval_curve:
        lines += ["", "step\teval_loss"] + [f"{int(s)}\t{v:.6g}" for s, v in trainer.eval_curve]
    from ticraft.library import atomic_write_bytes

    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def write_embedding(concept: Concept, folder: Path) -> list[Path]:
    """Write the concept next to the run in diffusers' layout (SDXL: ``x.safetensors`` for clip_l and
    ``x_2.safetensors`` for clip_g, one ``load_textual_inversion`` call each)."""
    from ticraft.library import slugify

    path = folder / f"{slugify(concept.token)}.safetensors"
    try:
        from ticraft.formats import write_concept
    except ImportError:  # formats not importable: the plain layout diffusers reads
        write_concept = None  # type: ignore[assignment]
    if write_concept is not None:
        # SD3/Flux (T5 vectors): ComfyUI's clip_l/clip_g/t5xxl file, the layout most tools read
        from ticraft.formats.xti import layout_for  # per-layer (XTI) concepts: kohya's layout or ticraft's

        layout = "comfyui" if "t5" in concept.vectors else layout_for(concept) or "diffusers"
        return list(write_concept(concept, path, layout))
    from safetensors.torch import save_file

    paths = []
    for key, suffix in (("clip_l", ""), ("clip_g", "_2")) if concept.is_sdxl else (("clip", ""),):
        target = path.with_name(path.stem + suffix + path.suffix)
        save_file({concept.token: concept.vectors[key].contiguous()}, str(target), metadata={"format": "pt"})
        paths.append(target)
    return paths
