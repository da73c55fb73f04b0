"""Placeholder vectors spliced into a frozen token table.

Textual inversion only ever changes a handful of rows. Rather than growing the 49k-row table (and
then computing gradients, optimiser state and "restore the other rows" for all of it, as the
diffusers example does), :class:`SplicedEmbedding` wraps the frozen table and substitutes small
external tensors wherever the placeholder ids occur. A trainable ``nn.Parameter`` passed as a block's
vectors receives gradients; the base table never does.

>>> import torch
>>> base = torch.nn.Embedding(10, 4)
>>> emb = SplicedEmbedding(base)
>>> emb.set_block("<x>", [10], torch.ones(1, 4))
>>> torch.equal(emb(torch.tensor([[10, 3]]))[0, 0], torch.ones(4))
True
"""

from __future__ import annotations

import torch
from torch import nn


class SplicedEmbedding(nn.Module):
    """A frozen ``nn.Embedding`` plus named blocks of extra rows addressed by token id.

    Blocks are ``(ids, vectors)`` pairs; ids may lie beyond the base table (added tokenizer
    tokens) and must not repeat across blocks.
    """

    def __init__(self, base: nn.Embedding) -> None:
        super().__init__()
        if isinstance(base, SplicedEmbedding):
            raise TypeError("the embedding is already spliced")
        self.base = base
        self._blocks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._ids: torch.Tensor | None = None  # all blocks' ids, concatenated once per change

    # nn.Embedding look-alikes, so code that reads `.weight`/`.num_embeddings` keeps working.
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def num_embeddings(self) -> int:
        return self.base.num_embeddings

    @property
    def embedding_dim(self) -> int:
        return self.base.embedding_dim

    def set_block(self, name: str, ids: list[int] | torch.Tensor, vectors: torch.Tensor) -> None:
        """Bind ``vectors[i]`` to token id ``ids[i]`` (replacing any block of the same name)."""
        ids_t = torch.as_tensor(ids, dtype=torch.long).flatten()
        if vectors.ndim != 2 or vectors.shape[0] != ids_t.numel():
            raise ValueError(f"block {name!r}: {ids_t.numel()} ids but vectors of shape {tuple(vectors.shape)}")
        if vectors.shape[1] != self.embedding_dim:
            raise ValueError(f"block {name!r}: vectors are {vectors.shape[1]}-d, the table is {self.embedding_dim}-d")
        taken = {int(i) for n, (bid, _) in self._blocks.items() if n != name for i in bid}
        clash = taken & {int(i) for i in ids_t}
        if clash:
            raise ValueError(f"block {name!r}: token ids {sorted(clash)} are already spliced")
        self._blocks[name] = (ids_t.to(self.base.weight.device), vectors)
        self._ids = None

    def remove_block(self, name: str) -> None:
        self._blocks.pop(name, None)
        self._ids = None

    def blocks(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return dict(self._blocks)

    def _all_ids(self) -> torch.Tensor | None:
        if not self._blocks:
            return None
        if self._ids is None:
            self._ids = torch.cat([b[0] for b in self._blocks.values()])
        return self._ids

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        all_ids = self._all_ids()
        if all_ids is None:
            return self.base(input_ids)
        all_ids = all_ids.to(input_ids.device)
        # [.., L, M] match matrix: M (spliced rows) is tiny, so this costs nothing next to the encoder,
        # and it needs no host sync (no `.any()`), which keeps CUDA graphs possible.
        match = input_ids.unsqueeze(-1) == all_ids
        is_new = match.any(-1, keepdim=True)
        slot = match.to(torch.int8).argmax(-1)
        safe_ids = torch.where(is_new.squeeze(-1), torch.zeros_like(input_ids), input_ids)
        out = self.base(safe_ids)
        vectors = torch.cat([b[1] for b in self._blocks.values()]).to(device=out.device, dtype=out.dtype)
        return torch.where(is_new, vectors[slot], out)


def splice(encoder: nn.Module) -> SplicedEmbedding:
    """Wrap ``encoder``'s input embedding in a :class:`SplicedEmbedding` (idempotent)."""
    current = encoder.get_input_embeddings()  # type: ignore[operator]  # transformers' PreTrainedModel method
    if isinstance(current, SplicedEmbedding):
        return current
    spliced = SplicedEmbedding(current)
    encoder.set_input_embeddings(spliced)  # type: ignore[operator]
    return spliced
