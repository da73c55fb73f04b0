"""Choosing the initializer from the pictures (``TrainConfig.init_search``).

A run starts from the rows of its initializer words; a start near the concept gets good in fewer samples (on the
concept suite, starting from the concept's own description reached the good point sooner on most composites than
the generic word "shape" — benchmarks/RESULTS.md). Users rarely know which words of the model's vocabulary are
near what they show, so the search asks the model: which words' rows make it denoise *these* pictures best?

1. A fixed batch (every picture, timesteps spread over the schedule, fixed noise): the search's only data.
2. The gradient of that loss at the given initializer ranks every whole word of the first tokenizer by the
   first-order change ``g · (e_w − v₀)`` (HotFlip/AutoPrompt's trick: one backward pass for the whole vocabulary).
3. The ``candidates`` best-ranked words are evaluated exactly (forward passes only); the best becomes the start.
4. Greedily, another word joins while the start (their mean for one vector, word *i mod N* for N vectors — the
   same rule as a typed initializer) lowers the loss further, up to ``init_search`` words.
5. The given initializer is kept when no word beats it.

The cost is one backward and up to 15 forward passes over 16 samples, run in passes no larger than the run's own
batch (so the search never needs more memory than a training step); it runs as part of the first step, so a
benchmark's training seconds include it (about 2.7 CPU s on the toy model).

>>> from ticraft.training.init_search import whole_words
>>> whole_words(["cat</w>", "ca", "a</w>", "dog</w>", "<|endoftext|>", "12</w>"], min_len=3)
[(0, 'cat'), (3, 'dog')]
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ticraft.training.inputs import TrainWarning, initial_vectors

_log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.training.loop import Trainer


@dataclass
class InitSearch:
    """What the search chose: ``words`` (joined: the start), its loss, the given initializer's, the ranking."""

    words: list[str]
    loss: float
    given_loss: float
    ranked: list[tuple[str, float]] = field(default_factory=list)
    """The exactly evaluated single words and their losses, best first."""

    @property
    def text(self) -> str:
        """The chosen initializer as text (empty when the given one was kept)."""
        return " ".join(self.words)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (the concept's ``meta["init_search"]``, checkpoints); ``ranked`` keeps the best 8."""
        return {**asdict(self), "ranked": [[w, round(v, 6)] for w, v in self.ranked[:8]]}

    def sentence(self, token: str, init: str) -> str:
        """What the run's log says once the start is chosen (``ticraft train`` prints it when the first step ends).

        >>> InitSearch(["orange", "star"], 0.1366, 0.1591).sentence("<zorb>", "shape")
        "<zorb> started from 'orange star': probe loss 0.1366 (init 'shape' as given: 0.1591)"
        """
        if not self.words:
            return f"{token} started from init '{init}' as given: no word lowered the probe loss ({self.loss:.4f})"
        return f"{token} started from '{self.text}': probe loss {self.loss:.4f} (init '{init}' as given: " \
               f"{self.given_loss:.4f})"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InitSearch":
        return cls(list(d["words"]), float(d["loss"]), float(d["given_loss"]), [(w, float(v)) for w, v in d["ranked"]])


def whole_words(tokens: Sequence[str], *, min_len: int = 3) -> list[tuple[int, str]]:
    """(id, word) of the tokens that are one whole alphabetic word (CLIP's ``word</w>``, SentencePiece's ``▁word``)."""
    out = []
    for i, t in enumerate(tokens):
        if t.endswith("</w>"):
            w = t[:-4]
        elif t.startswith("\u2581"):
            w = t[1:]
        else:
            continue
        if len(w) >= min_len and w.isascii() and w.isalpha():
            out.append((i, w))
    return out


@lru_cache(maxsize=4)
def _vocabulary(tokenizer: Any) -> tuple[torch.Tensor, tuple[str, ...]] | None:
    found = whole_words(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
    if not found:
        return None
    return torch.tensor([i for i, _ in found]), tuple(w for _, w in found)


def _learned(trainer: "Trainer") -> list[Any]:
    """The encoders whose vectors the run learns (SD3/Flux with ``encoders`` t5/clip freeze the others)."""
    return [e for e in trainer.bb.encoders if trainer.rows[e.key][0].requires_grad]


def _word_rows(trainer: "Trainer", words: Sequence[str]) -> dict[str, torch.Tensor]:
    """The start rows per learned encoder for ``words`` — by the same rule as a typed initializer (their mean for one
    vector, word i mod N for N) — in the trainer's layout (per layer for xti, on the sphere for directional)."""
    with warnings.catch_warnings():  # "… tokens for 1 vector: they are averaged" is the point here, not news
        warnings.simplefilter("ignore", TrainWarning)
        rows = initial_vectors(trainer.bb, " ".join(words), trainer.cfg.num_vectors, {})
    return trainer.start_layout({e.key: rows[e.key].to(e.table.device) for e in _learned(trainer)})


class _Probe:
    """The search's fixed batch and the loss of a start on it."""

    def __init__(self, trainer: "Trainer", samples: int) -> None:
        self.tr = trainer
        cache = trainer.cache
        g = torch.Generator().manual_seed(trainer.cfg.seed + 104_729)
        img = torch.arange(samples) % cache.num_images
        var = (torch.arange(samples) // cache.num_images) % cache.num_variants
        k = torch.arange(samples) % trainer.prompts.choices.shape[1]
        # spread over the schedule, skipping the ends (nearly clean / pure noise say little about the prompt)
        t = torch.linspace(0.05, 0.95, samples).mul(trainer.num_timesteps - 1).round().long()
        dev = trainer.device
        self.rows = (img * cache.num_variants + var).to(dev)
        self.t = t.to(dev)
        self.noise = torch.randn((samples, *cache.mean.shape[1:]), generator=g).to(dev)
        self.prompt = trainer.prompts.choices[img, k].to(dev)

    def chunks(self) -> list[slice]:
        """Passes no larger than the run's own batch: the search never needs more memory than a step."""
        size = max(1, self.tr.cfg.batch_size)
        return [slice(a, a + size) for a in range(0, len(self.rows), size)]

    def loss(self, part: slice = slice(None)) -> torch.Tensor:
        """Summed per-sample loss over ``part`` of the batch (divide by the batch size for the mean)."""
        tr = self.tr
        ids = {key: v.index_select(0, self.prompt[part]) for key, v in tr._tables[tr.active].items()}
        return tr._loss(ids, None, self.rows[part], self.t[part], self.noise[part], None).sum()

    def gradient(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        """d(mean loss)/d(params), accumulated chunk by chunk (``None`` for a row no prompt uses yet)."""
        total: list[torch.Tensor | None] = [None] * len(params)
        for part in self.chunks():
            grads = torch.autograd.grad(self.loss(part) / len(self.rows), params, allow_unused=True)
            total = [g if t is None else (t if g is None else t + g) for t, g in zip(total, grads, strict=True)]
        return total

    @torch.no_grad()
    def loss_of(self, vectors: dict[str, torch.Tensor]) -> float:
        _set_rows(self.tr, vectors)
        return sum(float(self.loss(part)) for part in self.chunks()) / len(self.rows)


def _set_rows(trainer: "Trainer", vectors: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for key, vecs in vectors.items():
            for i, p in enumerate(trainer.rows[key]):
                p.copy_(vecs[i:i + 1].to(p.device, p.dtype))


def search_initializer(trainer: "Trainer", max_words: int, *, candidates: int = 8, samples: int = 16,
                       greedy: int = 3) -> InitSearch:
    """Pick the start of ``trainer``'s vectors from its pictures and set it (see the module docstring).

    ``max_words`` caps the words joined into the start; ``candidates`` words are evaluated exactly after the
    first-order ranking; ``greedy`` of them are tried as each further word. The choice is logged (INFO, by the first
    process): where a run started is news while it runs — an SD run may take an hour — and the CLI shows the log.
    """
    choice = _search(trainer, max_words, candidates, samples, greedy)
    if trainer.dist.is_main:
        _log.info(choice.sentence(trainer.token, trainer.init_text))
    return choice


def restored_choice(trainer: "Trainer", saved: dict[str, Any]) -> InitSearch:
    """The start a checkpoint recorded, logged as a fresh run logs it (a resumed run does not search again)."""
    choice = InitSearch.from_dict(saved)
    if trainer.dist.is_main:
        _log.info(choice.sentence(trainer.token, trainer.init_text) + " — chosen when the run began")
    return choice


def _search(trainer: "Trainer", max_words: int, candidates: int, samples: int, greedy: int) -> InitSearch:
    learned = _learned(trainer)
    given = {e.key: trainer.init_vectors[e.key].clone() for e in learned}
    probe = _Probe(trainer, samples)
    enc = learned[0]  # the ranking reads one vocabulary; every learned encoder is set for the exact losses
    vocabulary = _vocabulary(enc.tokenizer)
    if vocabulary is None:  # a byte-level tokenizer without whole words: nothing to search
        given_loss = probe.loss_of(given)
        return InitSearch([], given_loss, given_loss, [])
    ids, words = vocabulary
    # first-order ranking at the given start: one backward pass (all vectors of the first encoder)
    _set_rows(trainer, given)
    params = trainer.rows[enc.key]
    grads = probe.gradient(params)  # progressive: rows that join later have no gradient yet
    # a word moves every vector that starts from it: their gradients add up
    g = torch.cat([x.detach().float() for x in grads if x is not None]).sum(0)
    table = enc.table.detach().float()
    scores = (table[ids.to(table.device)] - given[enc.key].mean(0).to(table.device)) @ g.to(table.device)
    order = scores.argsort()[: max(candidates, 1)].tolist()
    given_loss = probe.loss_of(given)
    ranked = sorted(((words[i], probe.loss_of(_word_rows(trainer, [words[i]]))) for i in order), key=lambda x: x[1])
    chosen, best = [ranked[0][0]], ranked[0][1]
    pool = [w for w, _ in ranked[1:greedy + 1]]
    while len(chosen) < max_words and pool:
        trials = [(w, probe.loss_of(_word_rows(trainer, chosen + [w]))) for w in pool]
        w, loss = min(trials, key=lambda x: x[1])
        if loss >= best:
            break
        chosen.append(w)
        pool.remove(w)
        best = loss
    if best >= given_loss:  # nothing in the vocabulary beats what the user gave
        _set_rows(trainer, given)
        return InitSearch([], given_loss, given_loss, ranked)
    start = _word_rows(trainer, chosen)
    _set_rows(trainer, start)
    trainer.init_vectors.update({k: v.detach().cpu() for k, v in start.items()})
    trainer._reg_target.update({k: v.to(trainer.device) for k, v in start.items()})  # reg pulls towards the start
    return InitSearch(chosen, best, given_loss, ranked)


__all__ = ["InitSearch", "restored_choice", "search_initializer", "whole_words"]
