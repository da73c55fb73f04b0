"""The placeholder rows of :class:`~ticraft.training.loop.Trainer` in its prompts: splicing and tokenising.

:class:`PromptTokens` is a mixin: it splices the learned rows into the model as they become active and
keeps the tokenised prompts per active vector count (``_tables``) that the loss reads.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ticraft.concept import Concept
from ticraft.prompts import expand_prompt
from ticraft.training.data import PromptSet


class PromptTokens:
    """Placeholder splicing and prompt tokenisation (a mixin of ``Trainer``)."""

    bb: Any
    device: torch.device
    token: str
    names: list[str]
    image_tokens: list[str]
    keys: list[str]
    references: dict[str, Concept]
    rows: dict[str, list[nn.Parameter]]
    prompts: PromptSet
    _active: int
    _tables: dict[int, dict[str, torch.Tensor]]

    def _activate(self, count: int) -> None:
        """Splice rows ``[active, count)`` in and tokenise the prompts for ``count`` vectors."""
        for i in range(self._active, count):
            self.bb.add_placeholder(self.names[i], {k: self.rows[k][i] for k in self.keys})
        self._active = max(self._active, count)
        if count not in self._tables:
            self._tables[count] = self._tokenize(self.prompts.prompts, count)

    def _counts(self, count: int) -> dict[str, int]:
        """Vectors per concept token in the prompts: the trained one (``count``), per-image ones, references."""
        return {**{t: c.num_vectors for t, c in self.references.items()}, self.token: count,
                **{t: 1 for t in self.image_tokens}}

    def _tokenize(self, prompts: Sequence[str], count: int) -> dict[str, torch.Tensor]:
        counts = self._counts(count)
        expanded = [self._expand(p, counts) for p in prompts]
        out = {}
        for e in self.bb.encoders:
            ids = e.tokenizer(expanded, padding="max_length", max_length=e.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids
            out[e.key] = ids.to(self.device)
        return out

    def _expand(self, prompt: str, counts: dict[str, int]) -> str:
        # Placeholder pieces are "<tok>" "<tok>_1" …, which expand_prompt writes for us. A caption may hold
        # other <...> words that are not concepts: leave those alone.
        from ticraft.prompts import CONCEPT_TOKEN

        return CONCEPT_TOKEN.sub(lambda m: expand_prompt(m.group(0), counts) if m.group(0) in counts else m.group(0),
                                 prompt)


__all__ = ["PromptTokens"]
