"""Hard prompts: which K real vocabulary tokens mean the same as a learned concept (PEZ, arXiv 2302.03668).

Wen et al.'s projected-gradient search keeps K continuous vectors ``P``; every step projects each onto its
nearest vocabulary row (cosine), computes the loss *with the projected rows*, and applies that gradient to
``P`` (straight through). The best projected prompt seen is the answer.

The loss matches the concept's text-encoder output: for each template (``"a photo of {}"`` …) the prompt
with the concept and the prompt with the K words are encoded; CLIP's text encoder is causal, so the tokens
before the concept are equal anyway, and the loss compares (a) the mean hidden state over the concept's span
with the mean over the K words' span and (b) every hidden state after the span (the template's tail and the end
token, aligned from the end). A per-layer (XTI) concept is loaded with its routing, so both encodings are packed
per layer and the loss averages the layers. SDXL: the words are searched in the first encoder (``clip_l``),
whose vocabulary the second shares.

>>> result = hard_prompt(bb, concept, length=4, steps=200)      # doctest: +SKIP
>>> result.text                                                  # doctest: +SKIP
'orange striped star shaped'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ticraft.concept import Concept
from ticraft.errors import TicraftError

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.models.backbone import Backbone

#: Templates the concept is matched in (the concept's place varies, so its span and the tail both count).
TEMPLATES = ("a photo of {}", "a photo of a {}", "a rendering of {} on the table", "{}")
_PEZ = "<ticraft-pez>"


class WordsError(TicraftError):
    """A hard-prompt search cannot run as asked."""


@dataclass
class TokenCheck:
    """One found word: its token, the cosine of the continuous vector to it, and the runner-up token."""

    token: str
    cosine: float
    runner_up: str
    runner_up_cosine: float


@dataclass
class WordsResult:
    """The K words found for a concept, their prompt text, and how the search went."""

    concept: str
    ids: list[int]
    words: list[str]
    text: str
    loss: float
    initial_loss: float
    checks: list[TokenCheck]
    retokenizes: bool
    """Whether ``text`` tokenizes back to exactly ``ids`` (BPE may merge pieces differently)."""
    curve: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "ids": self.ids, "words": self.words, "text": self.text, "loss": self.loss,
                "initial_loss": self.initial_loss, "retokenizes": self.retokenizes,
                "checks": [c.__dict__ for c in self.checks], "curve": self.curve}


def _vocab_mask(enc: Any) -> torch.Tensor:
    """Rows a hard prompt may use: whole words (``word</w>``, letters only, 2+ long), no special tokens.

    Word pieces and byte symbols would make prompts nobody can read or retype.
    """
    n = enc.table.shape[0]
    ok = torch.zeros(n, dtype=torch.bool)
    for token, i in enc.tokenizer.get_vocab().items():
        word = token[:-4] if token.endswith("</w>") else ""
        if 0 <= i < n and len(word) >= 2 and word.isascii() and word.isalpha():
            ok[i] = True
    for t in enc.tokenizer.all_special_ids:
        if 0 <= t < n:
            ok[t] = False
    if not bool(ok.any()):
        raise WordsError(f"the {enc.key} vocabulary has no whole-word tokens to build a hard prompt from")
    return ok


def _piece(token: str) -> str:
    return token[:-4] if token.endswith("</w>") else token


def words_text(tokenizer: Any, ids: Sequence[int]) -> tuple[list[str], str]:
    """Readable words and the prompt text a user would type for them."""
    toks = tokenizer.convert_ids_to_tokens(list(ids))
    words = [_piece(t) for t in toks]
    return words, "".join(w + (" " if t.endswith("</w>") else "") for w, t in zip(words, toks, strict=True)).strip()


def _span(ids: torch.Tensor, wanted: list[int]) -> tuple[int, int]:
    row = ids.tolist()
    for i in range(len(row) - len(wanted) + 1):
        if row[i:i + len(wanted)] == wanted:
            return i, i + len(wanted)
    raise WordsError("the concept's tokens did not survive tokenization")  # pragma: no cover


def _eos(ids: torch.Tensor, eos: int) -> int:
    return int((ids == eos).nonzero()[0])


def hard_prompt(backbone: "Backbone", concept: Concept, *, length: int = 4, steps: int = 200, lr: float = 0.1,
                seed: int = 0, templates: Sequence[str] = TEMPLATES) -> WordsResult:
    """PEZ search for ``length`` vocabulary tokens whose prompt encodes like ``concept`` (see the module doc).

    Raises :class:`WordsError` when ``length`` words would not fit a prompt (CLIP reads 75 tokens).
    """
    from ticraft.prompts import expand_prompt

    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise WordsError(f"--length must be a whole number ≥ 1, got {length!r}")
    if steps < 1:
        raise WordsError(f"--steps must be ≥ 1, got {steps!r}")
    if not 0 < lr < float("inf"):  # nan/inf/≤0 would otherwise reach the optimiser as a bare ValueError
        raise WordsError(f"--lr must be a finite number > 0, got {lr!r}")
    enc = backbone.encoders[0]
    tok = enc.tokenizer
    max_len = int(tok.model_max_length)
    longest = max(len(tok(t.format(""), add_special_tokens=False).input_ids) for t in templates)
    room = max_len - 2 - longest
    if length > room:
        raise WordsError(f"--length {length} is more than a prompt allows here: the matching templates leave room for "
                         f"at most {room} words ({max_len - 2} tokens minus {longest} of template)")
    backbone.load_concept(concept)
    device = backbone.device
    try:
        table = enc.table.detach().float()
        mask = _vocab_mask(enc).to(table.device)
        unit = table / table.norm(dim=1, keepdim=True).clamp_min(1e-12)
        names = backbone.placeholder_tokens(_PEZ, length)
        counts = {concept.token: concept.num_vectors}
        concept_names = tok.convert_tokens_to_ids(backbone.placeholder_tokens(concept.token, concept.num_vectors))

        def tokenize(texts: list[str]) -> torch.Tensor:
            return tok(texts, padding="max_length", max_length=max_len, truncation=True,
                       return_tensors="pt").input_ids

        c_ids = tokenize([expand_prompt(t.format(concept.token), counts) for t in templates])
        # first splice so that the placeholder names exist in the tokenizer
        g = torch.Generator().manual_seed(seed)
        valid = mask.nonzero().squeeze(1).cpu()
        start = valid[torch.randint(len(valid), (length,), generator=g)]
        pez_rows = backbone.add_placeholder(_PEZ, {e.key: e.table[start.to(e.table.device)].detach().float()
                                                   for e in backbone.encoders})
        w_ids = tokenize([t.format(" ".join(names)) for t in templates])
        pez_ids = tok.convert_tokens_to_ids(names)
        spans_c = [_span(r, list(concept_names)) for r in c_ids]
        spans_w = [_span(r, list(pez_ids)) for r in w_ids]
        eos = tok.eos_token_id

        def encode(ids: torch.Tensor) -> torch.Tensor:
            out = enc.model(input_ids=ids.to(device))[0].float()
            layers = out.shape[1] // max_len  # packed per layer while a per-layer concept is loaded
            return out.reshape(out.shape[0], layers, max_len, out.shape[-1])

        with torch.no_grad():
            target = encode(c_ids)

        def loss_of(hidden: torch.Tensor) -> torch.Tensor:
            total = hidden.new_zeros(())
            for i, ((c0, c1), (w0, w1)) in enumerate(zip(spans_c, spans_w, strict=True)):
                tail = _eos(c_ids[i], eos) - c1 + 1  # template tail + end token
                span_c = target[i, :, c0:c1].mean(1)
                span_w = hidden[i, :, w0:w1].mean(1)
                total = total + (span_w - span_c).pow(2).mean()
                total = total + (hidden[i, :, w1:w1 + tail] - target[i, :, c1:c1 + tail]).pow(2).mean()
            return total / len(templates)

        p = table[start.to(table.device)].clone().to(device).requires_grad_(True)
        opt = torch.optim.AdamW([p], lr=lr, weight_decay=0.1)  # PEZ's optimiser settings
        best: tuple[float, list[int]] | None = None
        curve: list[list[float]] = []
        first = None
        for step in range(steps):
            with torch.no_grad():
                sims = (p.detach().float().to(table.device) / p.detach().norm(dim=1, keepdim=True).clamp_min(1e-12)
                        .to(table.device)) @ unit.T
                sims[:, ~mask] = -2.0
                ids = sims.argmax(1)
            proj = table[ids].clone().to(device).requires_grad_(True)
            rows = {e.key: (proj if e is enc else e.table[ids.to(e.table.device)].detach().float())
                    for e in backbone.encoders}
            for e in backbone.encoders:  # same ids every step: re-bind the rows only
                e.embedding.set_block(_PEZ, pez_rows[e.key], rows[e.key])
            loss = loss_of(encode(w_ids))
            loss.backward()
            value = float(loss.detach())
            first = value if first is None else first
            if best is None or value < best[0]:
                best = (value, ids.tolist())
            if step % 10 == 0 or step == steps - 1:
                curve.append([step, value])
            assert proj.grad is not None
            p.grad = proj.grad.to(p.dtype)
            opt.step()
            opt.zero_grad(set_to_none=True)
        assert best is not None
        with torch.no_grad():
            final = p.detach().float().to(table.device)
            sims = (final / final.norm(dim=1, keepdim=True).clamp_min(1e-12)) @ unit.T
            sims[:, ~mask] = -2.0
            checks = []
            for i, chosen in enumerate(best[1]):
                order = sims[i].argsort(descending=True)
                other = int(next(int(j) for j in order[:2] if int(j) != chosen))
                checks.append(TokenCheck(_piece(tok.convert_ids_to_tokens(chosen)), float(sims[i, chosen]),
                                         _piece(tok.convert_ids_to_tokens(other)), float(sims[i, other])))
        words, text = words_text(tok, best[1])
        back = tok(text, add_special_tokens=False).input_ids
        return WordsResult(concept=concept.token, ids=best[1], words=words, text=text, loss=best[0],
                           initial_loss=float(first or 0.0), checks=checks, retokenizes=list(back) == best[1],
                           curve=curve)
    finally:
        for e in backbone.encoders:
            e.embedding.remove_block(_PEZ)


def judge_words(backbone: "Backbone", concept: Concept, words: str, *, references: Sequence[Any] | None = None,
                n: int = 8, seed: int = 0, steps: int | None = None,
                template: str = "a photo of a {}") -> dict[str, Any]:
    """The toy judge's reconstruction of ``template`` with the words next to the same with the concept.

    Identity comes from ``references`` (the concept's training images) when given, else from the concept's
    own samples (then the concept's score measures only how consistently it renders). Toy model only.
    """
    from ticraft.analysis.metrics import toy_identity, toy_reconstruction
    from ticraft.generate.sample import generate
    from ticraft.generate.specs import SampleSpec

    if backbone.family != "toy":
        raise WordsError(f"the judge reads only the toy world's pictures; model {backbone.name} is {backbone.family}")

    def render(prompt: str) -> list[Any]:
        specs = [SampleSpec(prompt, seed=seed + i, steps=steps) for i in range(n)]
        return generate(backbone, specs, concepts=[concept])

    own = render(template.format(concept.token))
    said = render(template.format(words))
    identity = toy_identity(list(references) if references else own)
    rc = toy_reconstruction(own, identity)
    rw = toy_reconstruction(said, identity)
    return {"identity": identity, "identity_from": "training images" if references else "the concept's samples",
            "concept": sum(rc) / len(rc), "words": sum(rw) / len(rw), "n": n, "template": template}


__all__ = ["TEMPLATES", "TokenCheck", "WordsError", "WordsResult", "hard_prompt", "judge_words", "words_text"]
