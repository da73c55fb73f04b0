"""Checks that make a run either learn or say why, before anything slow happens.

Textual inversion fails silently in a few ways: a placeholder cut off by the text encoder's 77-token
window gets no gradient (the run "succeeds" and saves its initializer), an initializer word the model
does not know is split into meaningless pieces, a concept named in a caption or the initializer is
read as plain text. This module finds each of these:

* :func:`find_references` / :func:`check_references` — ``<concept>`` tokens in the initializer and the
  captions are library concepts of the model's family and widths (else one error naming both);
* :func:`initial_vectors` — start vectors from the initializer's words *and* concepts;
* :func:`check_prompt_budget` — every placeholder occurrence survives tokenization in every prompt
  (else one error naming the caption and its token count); prompts near the limit warn;
* :func:`check_moved` — after training, every learned vector moved away from its start.

Warnings are :class:`TrainWarning` (a :class:`~ticraft.errors.TicraftWarning`): one line each, printed
by the CLI, kept in the concept's ``meta["warnings"]``, and catchable by a UI with
``warnings.catch_warnings(record=True)``.
"""

from __future__ import annotations

import string
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from ticraft.concept import Concept, check_finite
from ticraft.concept_checks import vectors_text
from ticraft.errors import TicraftError, TicraftWarning
from ticraft.prompts import CONCEPT_TOKEN, expand_prompt, find_concept_tokens
from ticraft.wording import counted, noun

if TYPE_CHECKING:
    from ticraft.training.data import TrainImage

#: A prompt using this many of the encoder's usable tokens (75 for CLIP) or more gets a warning.
NEAR_LIMIT = 5


class TrainWarning(TicraftWarning):
    """A one-line warning about a training run's input (one picture, a multi-piece initializer, long prompts)."""


class InputError(TicraftError):
    """A run's initializer, captions or prompts cannot train the placeholder."""


def warn(message: str, collected: list[str] | None = None) -> None:
    """Emit ``message`` as a :class:`TrainWarning` and append it to ``collected`` (the concept's meta)."""
    if collected is not None:
        collected.append(message)
    warnings.warn(message, TrainWarning, stacklevel=3)


def warn_short_run(config: Any, collected: list[str] | None = None) -> None:
    """Warn when the run ends inside its warm-up: the learning rate asked for is never reached.

    Not an error: a few-step smoke test is a fair thing to run, but the rate it trains at should not be a surprise
    (the fast preset warms up over 10 steps, so ``--steps 6`` trains at 10–60 % of ``--lr``).
    """
    if config.warmup_steps > config.steps:
        reached = config.steps / config.warmup_steps
        warn(f"the run's {config.steps} steps end inside the {config.warmup_steps}-step warm-up: the learning rate "
             f"reaches only {reached:.0%} of lr {config.effective_lr:g} (warmup_steps ≤ {config.steps} — `--warmup` "
             "in ticraft train — or more steps trains at the full rate)", collected)


def warn_vectors_for_few_pictures(config: Any, n_images: int, collected: list[str] | None = None, *,
                                  token: str | None = None) -> None:
    """Warn when several vectors learn from fewer than three pictures.

    On the toy concept suite (benchmarks/RESULTS.md, "Concept suite", few-shot rows, seed 0) the default's three
    vectors got 3 of 6 concepts good from 1 and from 2 pictures where one vector got 4 and 6: more vectors fit the
    few pictures themselves (reconstruction 98–100 %, edits no longer obeyed). From 4 pictures three vectors were
    better on every seed, so the preset keeps them and says so here instead of changing the count behind the flag.
    """
    if n_images < 3 and config.num_vectors > 1 and config.method == "plain":
        warn(f"{token + ': ' if token else ''}{config.num_vectors} vectors from {n_images} "
             f"{noun(n_images, 'picture')}: with fewer than "
             "three pictures one vector kept edits more often on the toy concept suite (--vectors 1)", collected)


# ------------------------------------------------------------------------------------ references
def find_references(init: str, images: Sequence["TrainImage"], token: str, *, captions: bool,
                    library: Any = None) -> dict[str, Concept]:
    """Library concepts named in the initializer and (with ``captions``) the captions, by token.

    ``library`` is a Library (``None``: the default library, as ``ticraft sample`` uses). The trained
    ``token`` itself is the placeholder, not a reference. Unknown tokens raise one :class:`InputError`
    saying where each was found.
    """
    where: dict[str, str] = {}
    for tok in find_concept_tokens(init):
        where.setdefault(tok, f"the initializer {init!r}")
    if captions:
        for im in images:
            for tok in find_concept_tokens(im.caption or ""):
                if tok != token:
                    where.setdefault(tok, f"the caption of {im.name}")
    if token in where and where[token].startswith("the initializer"):
        raise InputError(f"the initializer {init!r} names {token}, the token being trained; "
                         "start from words, or from another concept")
    if not where:
        return {}
    lib = library if library is not None else _default_library()
    found: dict[str, Concept] = {}
    missing = []
    for tok, place in where.items():
        concept = lib.get(tok) if lib is not None and lib.has(tok) else None
        if concept is None:
            missing.append(f"{tok} (in {place})")
        else:
            found[tok] = concept if concept.token == tok else concept.replace(token=tok)
    if missing:
        root = getattr(lib, "root", None)
        raise InputError(f"unknown concept {', '.join(missing)}" + (f" in the library {root}" if root else "")
                         + ": import or train it first, or write the words without angle brackets")
    return found


def _default_library() -> Any:
    try:
        from ticraft.library import Library

        return Library.resolve(None)
    except (ImportError, TicraftError):
        return None


def check_references(backbone: Any, references: Mapping[str, Concept], init: str) -> None:
    """Every referenced concept fits ``backbone`` (family and widths), else one error naming both."""
    for tok, concept in references.items():
        try:
            backbone.check_concept(concept)
        except TicraftError as exc:
            place = "the initializer" if tok in find_concept_tokens(init) else "a caption"
            raise InputError(f"{place} names {exc}") from None


# ----------------------------------------------------------------------------------- initializer
def initial_vectors(backbone: Any, init: str, num_vectors: int, references: Mapping[str, Concept],
                    collected: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Start vectors per encoder (CPU fp32 ``[N, D]``) from the initializer's pieces.

    The pieces are the token rows of its words and the vectors of the concepts it names, in order.
    One vector starts at their mean; N vectors take piece ``i mod n``. A word that the tokenizer splits
    into several pieces warns: the pieces' mean is rarely a meaningful start (``zorb`` → ``zor`` + ``b``).
    """
    pieces: dict[str, list[torch.Tensor]] = {e.key: [] for e in backbone.encoders}
    pos = 0
    parts: list[tuple[str, str]] = []
    for m in CONCEPT_TOKEN.finditer(init):
        parts += [("text", init[pos:m.start()]), ("concept", m.group(0))]
        pos = m.end()
    parts.append(("text", init[pos:]))
    for kind, text in parts:
        if kind == "concept":
            if text not in references:
                raise InputError(f"the initializer {init!r} names {text}, which is not a known concept")
            for key in pieces:
                pieces[key] += list(references[text].vectors[key].float().cpu())
        elif text.strip():
            for e in backbone.encoders:  # the whole text at once, as the tokenizer reads a prompt
                ids = e.tokenizer(text, add_special_tokens=False)["input_ids"]
                pieces[e.key] += list(e.table[torch.tensor(ids, device=e.table.device)].detach().float().cpu())
    _warn_pieces(backbone.encoders[0].tokenizer, parts, num_vectors, len(pieces[backbone.encoders[0].key]), init,
                 collected)
    out = {}
    for key, rows in pieces.items():
        if not rows:
            raise InputError(f"the initializer {init!r} has no tokens in the {key} tokenizer; "
                             "give a word such as 'toy' or 'dog'")
        stacked = torch.stack(rows)
        out[key] = stacked.mean(0, keepdim=True) if num_vectors == 1 else torch.stack(
            [stacked[i % len(rows)] for i in range(num_vectors)])
        check_finite(out[key], f"the initializer {init!r}")
    return out


def _warn_pieces(tokenizer: Any, parts: list[tuple[str, str]], num_vectors: int, total: int, init: str,
                 collected: list[str] | None) -> None:
    """One warning when a word of the initializer is several BPE pieces, or pieces get averaged."""
    for kind, text in parts:
        for word in text.split() if kind == "text" else ():
            w = word.strip(string.punctuation)
            ids = tokenizer(w, add_special_tokens=False)["input_ids"] if w else []
            if len(ids) > 1:
                shown = " + ".join(t.replace("</w>", "") for t in tokenizer.convert_ids_to_tokens(ids))
                warn(f"the initializer word {w!r} is not one token of the model but {len(ids)} pieces ({shown}); "
                     "the start vector mixes them: a word the model knows starts better", collected)
                return
    if total > num_vectors:
        warn(f"the initializer {init!r} is {total} tokens for {vectors_text(num_vectors)}: "
             + ("they are averaged" if num_vectors == 1 else f"only the first {num_vectors} are used")
             + f" (--vectors {total} gives each its own)", collected)


# ---------------------------------------------------------------------------------------- budget
def check_prompt_budget(backbone: Any, prompts: Sequence[str], labels: Sequence[str], counts: Mapping[str, int],
                        placeholders: Sequence[str], collected: list[str] | None = None) -> None:
    """Refuse prompts where a placeholder falls past the text encoder's window; warn near the limit.

    ``counts`` expands concept tokens (the trained one at its full vector count); ``placeholders`` are
    the tokenizer tokens that must survive (all of the trained token's pieces and per-image tokens);
    ``labels[i]`` names prompt i in messages ("the caption of img3.png"). The tokenizer must already
    know the placeholders (see :func:`add_names`).
    """
    near: list[tuple[str, int, int]] = []
    for e in backbone.encoders:
        tok = e.tokenizer
        limit = int(tok.model_max_length) - 2
        wanted = set(tok.convert_tokens_to_ids(list(placeholders)))
        for prompt, label in zip(prompts, labels, strict=True):
            text = expand_known(prompt, counts)
            ids = tok(text, add_special_tokens=False, truncation=False)["input_ids"]
            lost = [i for i, x in enumerate(ids) if x in wanted and i >= limit]
            if lost:
                shown = prompt if len(prompt) <= 70 else prompt[:67] + "..."
                raise InputError(
                    f"{label} ({shown!r}) is {len(ids)} tokens long once its concept tokens are expanded, but the "
                    f"{e.key} text encoder reads only {limit}: the placeholder at token {lost[0] + 1} would be cut "
                    "off and never learned; shorten it or move the placeholder ({} or S*) nearer the start"
                )
            if len(ids) > limit - NEAR_LIMIT and e is backbone.encoders[0]:
                near.append((label, len(ids), limit))
    if near:
        worst = max(near, key=lambda x: x[1])
        are = "is" if len(near) == 1 else "are"
        warn(f"{counted(len(near), 'prompt')} {are} near or past the {worst[2]}-token limit (longest: {worst[0]}, "
             f"{worst[1]} tokens); words past it are cut off", collected)


def expand_known(prompt: str, counts: Mapping[str, int]) -> str:
    """Expand the concept tokens in ``counts``; leave any other ``<...>`` text as it is."""
    return CONCEPT_TOKEN.sub(lambda m: expand_prompt(m.group(0), counts) if m.group(0) in counts else m.group(0),
                             prompt)


def add_names(backbone: Any, names: Sequence[str]) -> None:
    """Make every encoder's tokenizer know ``names`` as whole tokens (what splicing does anyway)."""
    for e in backbone.encoders:
        vocab = e.tokenizer.get_vocab()
        fresh = [n for n in names if n not in vocab]
        if fresh:
            e.tokenizer.add_tokens(fresh)


def prompt_labels(images: Sequence["TrainImage"], prompts: Sequence[str], *, captions: bool) -> list[str]:
    """How messages name each prompt: the caption of its image, or the prompt itself."""
    if captions and len(prompts) == len(images):
        return [f"the caption of {im.name}" for im in images]
    return ["the prompt"] * len(prompts)


# ------------------------------------------------------------------------------------ after training
def check_moved(token: str, start: Mapping[str, torch.Tensor], result: Mapping[str, torch.Tensor],
                steps: int) -> None:
    """Raise when a learned vector is not finite or still equals its start after ``steps`` steps."""
    for key, v in result.items():
        if not bool(torch.isfinite(v).all()):
            raise InputError(f"training {token} diverged: its {key} vectors are not finite after {steps} steps; "
                             "lower the learning rate (--lr)")
        s = start[key][: v.shape[0]].to(v)
        same = [i for i in range(v.shape[0]) if torch.equal(v[i], s[i])]
        if same and steps > 0:
            which = ("vector " if len(same) == 1 else "vectors ") + ", ".join(str(i) for i in same)
            raise InputError(
                f"{token}: {which} of {v.shape[0]} did not move from the initializer in {steps} steps, so "
                "nothing was learned (the placeholder never reached the text encoder); nothing was saved"
            )


__all__ = [
    "InputError",
    "TrainWarning",
    "add_names",
    "check_moved",
    "check_prompt_budget",
    "check_references",
    "expand_known",
    "find_references",
    "initial_vectors",
    "prompt_labels",
    "warn",
]
