"""``ticraft.train_many(...)``: a folder of concept folders in, one :class:`~ticraft.concept.Concept` per concept out.

>>> result = ticraft.train_many("catalogue/", model="toy", steps=200, library="embeddings")  # doctest: +SKIP
>>> sorted(result.concepts), result.failed                                                     # doctest: +SKIP
(['<blue-vase>', '<red-mug>'], {})

Every concept gets the trainer a one-concept ``ticraft.train`` would build (same options, seed and
pictures), and :class:`~ticraft.training.many.ConceptGroup` steps them all in shared forward passes, so
each result equals the one-concept run's up to floating-point rounding. A concept that cannot be
trained — unreadable or missing pictures, a token that is already a word, an initializer with no
tokens, a library entry that exists — is reported in :attr:`ManyResult.failed` and the others go on.

Several processes (``torchrun --nproc_per_node N -m ticraft.cli.main train-many …``) split the concepts
between them (concept *i* on process *i mod N*); each process trains its share on its own device
without exchanging gradients. Checkpoints and the returned result hold every concept: the processes
gather their states and results (small: a few vectors and their optimiser state per concept).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ticraft.concept import MAX_VECTORS, Concept
from ticraft.errors import TicraftError
from ticraft.training import inputs
from ticraft.training.api import _backbone, _finish, _meta, check_token, open_library
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
from ticraft.training.distributed import DistInfo, init_distributed, shutdown_distributed
from ticraft.training.flow import make_trainer
from ticraft.training.loop import Trainer
from ticraft.training.many import ConceptGroup, ManyCallback
from ticraft.training.many_specs import ConceptSpec, check_unique, discover_concepts, with_defaults

KIND = "train-many"
_log = logging.getLogger(__name__)


@dataclass
class ManyResult:
    """What a train-many run learned, and what it could not."""

    concepts: dict[str, Concept] = field(default_factory=dict)
    """Learned concepts by token, in the order of the concept folders."""
    failed: dict[str, str] = field(default_factory=dict)
    """Concept (folder) name → the one-sentence reason it was not trained or not saved."""
    wall_seconds: float = 0.0


@dataclass
class _Member:
    spec: ConceptSpec
    cfg: TrainConfig
    images: list[TrainImage]
    trainer: Trainer
    warnings: list[str]


def train_many(
    source: str | os.PathLike | Sequence[ConceptSpec],
    model: Any = "toy",
    *,
    init: str | None = None,
    style: bool | None = None,
    config: TrainConfig | None = None,
    preset: str | None = None,
    callback: ManyCallback | None = None,
    library: Any = None,
    tags: Iterable[str] = (),
    overwrite: bool = False,
    output_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    max_batch: int = 64,
    **options: Any,
) -> ManyResult:
    """Learn one token per concept folder of ``source``, all in one run on one frozen model.

    Args:
        source: a folder with one sub-folder of pictures per concept and an optional ``concepts.toml``
            (:mod:`ticraft.training.many_specs`), or a list of :class:`ConceptSpec`.
        model: as for :func:`ticraft.train`.
        init, style: defaults for every concept (``concepts.toml``, or a :class:`ConceptSpec` that sets its own,
            overrides them); without ``init`` a concept's initializer is its folder name's words.
        config, preset, options: the training options shared by every concept, as for :func:`ticraft.train`
            (``batch_size`` is per concept: each concept's step sees the batch its own run would).
        callback: ``callback(step, total, losses)`` after every step, ``losses`` by token (``None`` where not
            read this step); return ``True`` to stop all concepts.
        library, tags, overwrite: where the results go (each concept also gets its ``concepts.toml`` tags).
        output_dir: run folder: checkpoints (``save_every``) here, each concept's embedding file, loss
            curve and previews in a sub-folder named after its token.
        resume: a train-many checkpoint (or a run folder: its latest one) of the same concepts. As in
            :func:`ticraft.train`, every concept continues with its checkpoint's options (and preset), with the options
            given here and its ``concepts.toml`` keys on top.
        max_batch: the most samples in one forward pass (concepts are packed whole into passes).

    Returns:
        A :class:`ManyResult` (on every process of a multi-process run).
    """
    started = time.time()
    if config is not None and preset is not None:
        raise TicraftError("give either config= or preset=, not both")
    if "style" in options:
        style = options.pop("style")
    if max_batch < 1:
        raise TicraftError(f"max_batch must be at least 1, got {max_batch}")
    if isinstance(source, (str, os.PathLike)):
        specs = discover_concepts(source, init=init, style=style)
    else:
        specs = [with_defaults(s if isinstance(s, ConceptSpec) else ConceptSpec(**s), init=init, style=style)
                 for s in source]
        check_unique(specs)
        if not specs:
            raise TicraftError("train_many was given no concepts")
    if options.get("num_vectors") is None and all(s.vectors is not None for s in specs):
        # every concept sets its own vector count: check the shared options (progressive needs ≥ 2) against those
        options["num_vectors"] = min(s.vectors for s in specs if s.vectors is not None)
    out = Path(output_dir) if output_dir is not None else None
    state = load_checkpoint(resume) if resume is not None else None
    if state is not None and state.get("kind") != KIND:
        raise CheckpointError(f"{resume} is a one-concept checkpoint; resume it with `ticraft train --resume`")
    path = resume or "checkpoint"
    # resumed: the run's options from the checkpoint (every concept records the shared ones), the given ones on top
    saved: dict[str, Any] | None = state.get("concepts", {}) if state is not None and config is None else None
    if saved:
        cfg, _ = resume_config(next(iter(saved.values())), preset=preset, options=options, outputs=out is not None,
                               path=path)
    else:
        cfg = (config if config is not None else preset_config(preset or "fast")).with_options(**options)
    inputs.warn_short_run(cfg)  # once: concepts.toml cannot change steps or warm-up per concept
    lib = open_library(library)
    if out is None and (cfg.save_every or cfg.preview_every):
        raise TicraftError("save_every/preview_every need an output folder (output_dir= / --out)")

    def concept_config(spec: ConceptSpec) -> tuple[TrainConfig, str | None]:
        """A concept's options (its concepts.toml keys on the shared ones; resumed, on its own checkpoint state's)
        and what the resume took from the checkpoint."""
        if saved and spec.token in saved:
            return resume_config(saved[spec.token], preset=preset, options={**options, **spec.options()},
                                 outputs=out is not None, path=path)
        return cfg.with_options(**spec.options()), None

    dist = init_distributed(cfg.device)
    completed = False  # a barrier before the teardown only when every rank got this far
    result = ManyResult()
    group: ConceptGroup | None = None
    try:
        if saved and dist.is_main:
            _log_notes(specs, concept_config)
        bb = _backbone(model, cfg, dist)
        fingerprint = bb.fingerprint()
        mine = specs[dist.rank::dist.world_size]
        members = _build(mine, bb, lambda spec: concept_config(spec)[0], lib, overwrite, result.failed)
        group = ConceptGroup([m.trainer for m in members], max_batch=max_batch, config=cfg)
        identities = {m.spec.token: {"token": m.spec.token, "fingerprint": fingerprint, "model": bb.name,
                                     "images": [im.sha256 for im in m.images], "config": m.cfg.to_dict()}
                      for m in members}
        if state is not None:
            _resume(group, members, state, identities, fingerprint, path, specs, given=config is None)
        hook = _Hooks(group, out, identities, dist, result.failed) if out is not None else None
        group.run(callback, on_step=hook, lockstep=dist.enabled)
        if hook is not None:
            hook.final()
        for m in members:
            meta = _meta(m.trainer, bb, fingerprint, m.spec.init, m.cfg, m.images, started)
            meta["train_many"] = {"concepts": len(specs), "processes": dist.world_size, "max_batch": max_batch}
            meta["warnings"] = m.warnings + m.trainer.warnings
            concept = Concept(m.spec.token, m.trainer.result_vectors(), family=bb.family, meta=meta)
            try:
                # as in `ticraft train`: a vector that did not move learned nothing, and is not saved
                learned = getattr(m.trainer, "learned_vectors", m.trainer.result_vectors)()
                inputs.check_moved(m.spec.token, m.trainer.init_vectors, learned, m.trainer.step)
                _finish(m.trainer, concept, m.images, out=out / _slug(m.spec.token) if out is not None else None,
                        lib=lib, tags=[*tags, *m.spec.tags], overwrite=overwrite)
            except TicraftError as exc:
                result.failed[m.spec.name] = f"not saved: {exc}"
                continue
            result.concepts[m.spec.token] = concept
        _gather(result, specs, dist)
        completed = True
    finally:
        if group is not None:
            group.close()
        shutdown_distributed(dist, completed=completed)
    result.wall_seconds = time.time() - started
    return result


# ------------------------------------------------------------------ building
def _build(specs: Sequence[ConceptSpec], bb: Any, concept_config: Callable[[ConceptSpec], TrainConfig], lib: Any,
           overwrite: bool, failed: dict[str, str]) -> list[_Member]:
    """A trainer per concept (its options from ``concept_config``); a concept that cannot be trained is recorded in
    ``failed`` and skipped.

    The checks are :func:`ticraft.train`'s (token, vector count, library clash, pictures, concepts named in
    the initializer or captions), and the trainer is the one it would build (SD3/Flux: the flow trainer).
    """
    members = []
    for spec in specs:
        warned: list[str] = []
        try:
            check_token(spec.token)
            if lib is not None and lib.has(spec.token) and not overwrite:
                raise TicraftError(f"{spec.token} is already in the library {lib.root}; give the concept another "
                                   f"token or overwrite it")
            c = concept_config(spec)
            if c.num_vectors > MAX_VECTORS:
                raise TicraftError(f"{spec.token} asks for {c.num_vectors} vectors, more than the {MAX_VECTORS} "
                                   f"a prompt can hold")
            images = load_images(spec.images, captions=c.captions)
            if len(images) == 1:
                inputs.warn(f"{spec.token} is trained on one picture ({images[0].name}): the word tends to copy "
                            f"its pose and background; 3-5 pictures generalise better", warned)
            inputs.warn_vectors_for_few_pictures(c, len(images), warned, token=spec.token)
            references = inputs.find_references(spec.init, images, spec.token, captions=c.captions, library=lib)
            trainer = make_trainer(bb, images, spec.token, spec.init, c, references=references)
        except TicraftError as exc:
            failed[spec.name] = str(exc)
            continue
        members.append(_Member(spec, c, images, trainer, warned))
    return members


def _log_notes(specs: Sequence[ConceptSpec],
               concept_config: Callable[[ConceptSpec], tuple[TrainConfig, str | None]]) -> None:
    """What a resumed run took from its checkpoint: one line when every concept took the same, else one per concept
    (a concept whose options fail is reported when it is built)."""
    notes: dict[str, str | None] = {}
    for spec in specs:
        try:
            notes[spec.token] = concept_config(spec)[1]
        except TicraftError:
            continue
    said = {t: n for t, n in notes.items() if n}
    if said and len(set(said.values())) == 1 and len(said) == len(notes):
        _log.info(next(iter(said.values())))
        return
    for token, note in said.items():
        _log.info(f"{token}: {note}")


def _toml_sources(spec: ConceptSpec) -> dict[str, str]:
    """The options ``spec`` sets, named as concepts.toml spells them (for a refused resume's message)."""
    keys = {"num_vectors": "vectors", "style": "style", "seed": "seed"}
    return {k: f"{keys.get(k, k)} in concepts.toml's [concepts.{spec.name}]" for k in spec.options()}


def _resume(group: ConceptGroup, members: Sequence[_Member], state: dict[str, Any],
            identities: dict[str, dict[str, Any]], fingerprint: str, path: str | os.PathLike,
            specs: Sequence[ConceptSpec], *, given: bool = False) -> None:
    """Check that ``state`` is this run's (same concepts, model, pictures, options) and load it."""
    saved = state.get("concepts", {})
    for m in members:
        sub = saved.get(m.spec.token)
        if sub is None:
            raise CheckpointError(f"{path} has no state for {m.spec.token} (folder {m.spec.name!r}); train it on its "
                                  f"own with `ticraft train`, or resume without that folder")
        ident = identities[m.spec.token]
        check_compatible(sub, fingerprint=fingerprint, token=m.spec.token, image_hashes=ident["images"],
                         config=ident["config"], path=path, given=given, sources=_toml_sources(m.spec))
    tokens = {s.token for s in specs}
    gone = [t for t in saved if t not in tokens]
    if gone:
        raise CheckpointError(f"{path} also trains {gone[0]}, which this folder no longer has; resume with the same "
                              f"concept folders")
    group.load_state_dict({"step": state["step"], "concepts": saved})


def _slug(token: str) -> str:
    from ticraft.library import slugify

    return slugify(token)


# ------------------------------------------------------------------- outputs
class _Hooks:
    """Checkpoints (every process's concepts gathered into one file) and per-concept previews."""

    def __init__(self, group: ConceptGroup, out: Path, identities: dict[str, dict[str, Any]], dist: DistInfo,
                 failed: dict[str, str]) -> None:
        self.group, self.out, self.identities, self.dist, self.failed = group, out, identities, dist, failed

    def __call__(self, group: ConceptGroup) -> None:
        cfg = group.cfg
        if cfg.save_every and group.step % cfg.save_every == 0:
            self.save()
        if cfg.preview_every and cfg.previews and group.step % cfg.preview_every == 0:  # previews=0: none
            from ticraft.training.report import preview_prompts, render_previews

            for tr in group.trainers:
                texts = preview_prompts(tr.token, style=tr.cfg.style, count=cfg.previews)
                prompts = [tr.preview_prompt(p) for p in texts]
                images = render_previews(tr.bb, prompts, seed=tr.cfg.seed, steps=cfg.preview_steps, size=tr.resolution)
                folder = self.out / _slug(tr.token) / "previews"
                folder.mkdir(parents=True, exist_ok=True)
                for i, im in enumerate(images):
                    im.save(folder / f"step-{group.step:07d}-{i}.png")

    def save(self) -> None:
        state = self.group.state_dict()
        concepts = {t: {**self.identities[t], **s} for t, s in state["concepts"].items()}
        failed = dict(self.failed)
        if self.dist.enabled:  # every process's share into the one file the main process writes
            parts = _all_gather((concepts, failed))
            concepts, failed = {}, {}
            for c, f in parts:
                concepts.update(c)
                failed.update(f)
        if self.dist.is_main:
            save_checkpoint(self.out / checkpoint_name(self.group.step),
                            {"kind": KIND, "step": self.group.step, "concepts": concepts, "failed": failed})

    def final(self) -> None:
        """A last checkpoint when the run ended between two (early stop, callback stop)."""
        if self.group.cfg.save_every and self.group.step % self.group.cfg.save_every:
            self.save()


def _all_gather(obj: Any) -> list[Any]:
    import torch.distributed as tdist

    parts: list[Any] = [None] * tdist.get_world_size()
    tdist.all_gather_object(parts, obj)
    return parts


def _gather(result: ManyResult, specs: Sequence[ConceptSpec], dist: DistInfo) -> None:
    """Every process's concepts and failures into ``result``, in the order of ``specs``."""
    if dist.enabled:
        concepts: dict[str, Concept] = {}
        failed: dict[str, str] = {}
        for c, f in _all_gather((result.concepts, result.failed)):
            concepts.update(c)
            failed.update(f)
    else:
        concepts, failed = result.concepts, result.failed
    result.concepts = {s.token: concepts[s.token] for s in specs if s.token in concepts}
    result.failed = {s.name: failed[s.name] for s in specs if s.name in failed}


__all__ = ["ConceptSpec", "ManyResult", "train_many"]
