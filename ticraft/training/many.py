"""Many concepts in one run: several :class:`~ticraft.training.loop.Trainer`\\ s on one frozen model, stepped together.

Why it is fast: one textual-inversion step of one concept is a small batch through a big frozen model,
which leaves a GPU (or a CPU's vector units) mostly idle and pays every per-op cost once per step.
A :class:`ConceptGroup` gathers the samples of all its concepts into one forward/backward pass
(at most ``max_batch`` samples per pass; concepts are packed whole into passes), so the model runs
once per step for all of them.

Why it is exact: every concept keeps its own trainer — its own vectors, optimiser state, learning-rate
schedule, latent cache, prompts and random generators — and draws exactly the samples its one-concept
run would draw. The model is frozen and treats samples independently (GroupNorm and attention are
per sample), so running them side by side changes nothing but floating-point summation order; the
summed loss ``Σ_c loss_c`` gives each concept's vectors exactly the gradient of its own ``loss_c``,
because no concept's vectors appear in another's prompts. Each trainer then takes its own optimiser
step. Concepts never exchange anything, which is also why a multi-process run only needs to shard
the concepts (:mod:`ticraft.training.many_api`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch

from ticraft.training.config import TrainConfig
from ticraft.training.loop import Trainer

#: ``callback(step, total, losses)``: ``losses`` maps each token that stepped to its loss (``None`` when
#: not read this step). Return ``True`` to stop every concept after this step.
ManyCallback = Callable[[int, int, "dict[str, float | None]"], "bool | None"]


class ConceptGroup:
    """Trainers of different tokens on one backbone, trained in shared forward passes.

    Args:
        trainers: one per concept, built on the same backbone with the same ``steps``, ``batch_size``,
            ``grad_accum``, precision and compile options (their tokens, initializers, styles, vector
            counts and seeds may differ).
        max_batch: the most samples in one forward pass (concepts are packed whole; a concept whose
            batch alone is larger gets a pass of its own).
    """

    def __init__(self, trainers: Sequence[Trainer], *, max_batch: int = 64, config: TrainConfig | None = None) -> None:
        if not trainers and config is None:
            raise ValueError("an empty concept group needs config= (a process of a sharded run with no concept)")
        self.trainers = list(trainers)
        self.cfg: TrainConfig = self.trainers[0].cfg if self.trainers else config  # type: ignore[assignment]
        self.max_batch = max(1, int(max_batch))
        self.step = 0
        self.stopped: str | None = None
        if not self.trainers:
            return
        lead = self.trainers[0]
        for tr in self.trainers[1:]:
            if tr.bb is not lead.bb:
                raise ValueError("all trainers of a group must share one backbone")
            for key in ("steps", "batch_size", "grad_accum", "mixed_precision", "compile", "channels_last"):
                if getattr(tr.cfg, key) != getattr(lead.cfg, key):
                    raise ValueError(f"trainers of a group must agree on {key}")
        # The frozen model is shared, so any trainer's _predict serves every concept's samples.
        self._predict = lead._predict
        if lead.cfg.compile != "none":
            mode = None if lead.cfg.compile == "default" or lead.cfg.compile_backend != "inductor" else lead.cfg.compile
            self._predict = torch.compile(lead._predict, mode=mode, backend=lead.cfg.compile_backend)

    # ------------------------------------------------------------------ state
    def live(self) -> list[Trainer]:
        """The trainers still training (not early-stopped, not finished)."""
        return [tr for tr in self.trainers if tr.stopped is None and tr.step < tr.cfg.steps]

    def passes(self, trainers: Sequence[Trainer]) -> list[list[Trainer]]:
        """Trainers packed, in order, into forward passes of at most ``max_batch`` samples."""
        packs: list[list[Trainer]] = []
        size = 0
        for tr in trainers:
            b = tr.cfg.batch_size
            if packs and size + b <= self.max_batch:
                packs[-1].append(tr)
                size += b
            else:
                packs.append([tr])
                size = b
        return packs

    # ------------------------------------------------------------------ steps
    def train_step(self) -> list[Trainer]:
        """One optimiser step of every live trainer; returns the trainers that stepped."""
        live = self.live()
        if not live:
            return []
        start = time.perf_counter()
        counts = {id(tr): tr.begin_step() for tr in live}
        packs = self.passes(live)
        for _ in range(self.cfg.grad_accum):
            for pack in packs:
                self._forward_backward(pack, counts)
        for tr in live:
            tr.apply_gradients()
        self.step += 1
        seconds = time.perf_counter() - start
        for tr in live:  # each concept's meta records the wall time of the shared steps it took part in
            tr.train_seconds += seconds
        return live

    def _forward_backward(self, pack: Sequence[Trainer], counts: dict[int, int]) -> None:
        """One forward pass over the samples of ``pack`` and one backward of the sum of their losses."""
        parts = [_Part(tr, counts[id(tr)]) for tr in pack]
        if pack[0]._cudagraphs:  # see Trainer.train_step
            torch.compiler.cudagraph_mark_step_begin()
        if len(parts) == 1:
            p = parts[0]
            preds = [self._predict(p.ids, p.inverse, p.noisy, p.t, p.time_ids)]
        else:
            # Each concept's distinct prompts are stacked; its samples' indices into them shift accordingly.
            ids = {k: torch.cat([p.ids[k] for p in parts]) for k in parts[0].ids}
            inverses, at = [], 0
            for p in parts:
                inverses.append(p.inverse + at)
                at += p.num_prompts
            sdxl = [p.time_ids for p in parts if p.time_ids is not None]
            time_ids = torch.cat(sdxl) if sdxl else None
            pred = self._predict(ids, torch.cat(inverses), torch.cat([p.noisy for p in parts]),
                                 torch.cat([p.t for p in parts]), time_ids)
            preds = list(pred.split([p.rows.shape[0] for p in parts]))
        total = torch.stack([p.trainer.pass_loss(p.trainer._per_sample_loss(pred_c, p.target, p.rows))
                             for p, pred_c in zip(parts, preds, strict=True)]).sum()
        total.backward()

    # -------------------------------------------------------------------- run
    def run(self, callback: ManyCallback | None = None, *, on_step: Callable[["ConceptGroup"], None] | None = None,
            lockstep: bool = False) -> None:
        """Train until every concept reaches ``steps`` (or stops early), or a callback asks to stop.

        Per concept this is :meth:`Trainer.run`'s bookkeeping: the loss is read every ``log_every``
        steps and at the end; DVAR early stopping (``early_stop``) retires a concept on its own.
        ``lockstep`` keeps counting steps until ``steps`` even when no concept is left, so that
        processes of a sharded run call ``on_step`` (and its collectives) the same number of times.
        With ``config.deterministic`` the steps run under :func:`ticraft.training.exact.deterministic`, as in
        :meth:`Trainer.run`.
        """
        from ticraft.training.exact import deterministic

        with deterministic(bool(self.cfg.deterministic)):
            self._run(callback, on_step, lockstep)

    def _run(self, callback: ManyCallback | None, on_step: Callable[["ConceptGroup"], None] | None,
             lockstep: bool) -> None:
        total = self.cfg.steps
        while self.step < total and self.stopped is None:
            stepped = self.train_step()
            if not stepped:
                if not lockstep:
                    break
                self.step += 1
            losses: dict[str, float | None] = {}
            for tr in stepped:
                loss = None
                if tr.step % tr.cfg.log_every == 0 or tr.step == total:
                    loss = tr.read_loss()
                if tr.stopper is not None and tr.step % tr.cfg.eval_every == 0:
                    value = tr.evaluate()
                    tr.eval_curve.append([tr.step, value])
                    if tr.stopper.update(value):
                        tr.stopped = "early_stop"
                        if loss is None:
                            loss = tr.read_loss()
                losses[tr.token] = loss
            if callback is not None and callback(self.step, total, losses) is True:
                self.stopped = "callback"
                for tr in self.live():
                    tr.stopped = "callback"
            if on_step is not None:
                on_step(self)
        for tr in self.trainers:
            if tr._loss_count:
                tr.read_loss()

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Every concept's trainer state (with why it stopped), keyed by token, and the group's step."""
        return {"step": self.step, "stopped": self.stopped,
                "concepts": {tr.token: {**tr.state_dict(), "stopped": tr.stopped} for tr in self.trainers}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` output; every trainer's token must be in it."""
        for tr in self.trainers:
            sub = state["concepts"][tr.token]
            tr.load_state_dict(sub)
            # An early-stopped concept stays done; one stopped by a callback (an interrupt) continues.
            tr.stopped = "early_stop" if sub.get("stopped") == "early_stop" else None
        self.step = int(state["step"])

    def close(self) -> None:
        """Take every concept's rows out of the model again."""
        for tr in self.trainers:
            tr.close()


class _Part:
    """One trainer's share of a forward pass: its drawn samples, their noisy latents and targets."""

    def __init__(self, trainer: Trainer, count: int) -> None:
        self.trainer = trainer
        ids, inverse, rows, t, noise, post = trainer._batch_inputs(trainer._draw(trainer.cfg.batch_size), count)
        self.ids, self.rows, self.t = ids, rows, t
        self.noisy, self.target = trainer._noised(rows, t, noise, post)
        self.num_prompts = next(iter(ids.values())).shape[0]
        # dedup_text off: one prompt row per sample
        self.inverse = inverse if inverse is not None else torch.arange(self.num_prompts, device=rows.device)
        cached = trainer.cache.time_ids
        self.time_ids = cached.index_select(0, rows) if cached is not None else None


__all__ = ["ConceptGroup", "ManyCallback"]
