"""Prompt syntax: ``<concept>`` tokens, multi-vector expansion and the 77-token budget.

A concept token is anything in angle brackets without spaces, e.g. ``<cat-toy>``. A concept with
N vectors occupies N tokenizer tokens, named the way diffusers names them::

    >>> expand_prompt("a photo of <cat-toy> on a beach", {"<cat-toy>": 3})
    'a photo of <cat-toy> <cat-toy>_1 <cat-toy>_2 on a beach'
    >>> find_concept_tokens("<a> and <b-c>, not < d >")
    ['<a>', '<b-c>']
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from ticraft.errors import TicraftError
from ticraft.wording import noun

# A concept token: <...> with no whitespace or nested brackets, and not already an expanded "_N" piece.
CONCEPT_TOKEN = re.compile(r"<[^<>\s]+>(?!_\d)")

#: CLIP's context: 77 positions, two of which hold the start and end tokens.
CONTEXT_LENGTH = 77
USABLE_TOKENS = CONTEXT_LENGTH - 2


class PromptError(TicraftError):
    """A prompt names unknown concepts or cannot be expanded."""


def find_concept_tokens(prompt: str) -> list[str]:
    """Concept tokens in order of first appearance (no duplicates)."""
    seen: list[str] = []
    for m in CONCEPT_TOKEN.finditer(prompt):
        if m.group(0) not in seen:
            seen.append(m.group(0))
    return seen


def placeholder_names(token: str, n: int) -> list[str]:
    """The tokenizer tokens standing for a concept's ``n`` vectors."""
    return [token] + [f"{token}_{i}" for i in range(1, n)]


def expand_prompt(prompt: str, counts: Mapping[str, int]) -> str:
    """Replace each known concept token by its N placeholder tokens; unknown ones raise."""
    unknown = [t for t in find_concept_tokens(prompt) if t not in counts]
    if unknown:
        raise PromptError(f"unknown {noun(len(unknown), 'concept token')} {', '.join(unknown)}: "
                          "import or train them first")
    return CONCEPT_TOKEN.sub(lambda m: " ".join(placeholder_names(m.group(0), counts[m.group(0)])), prompt)


def count_tokens(expanded_prompt: str, tokenizer: Any) -> int:
    """Tokens the prompt uses without the start/end markers (after expansion)."""
    return len(tokenizer(expanded_prompt, add_special_tokens=False, truncation=False)["input_ids"])


def budget_warning(prompt: str, counts: Mapping[str, int], tokenizer: Any) -> str | None:
    """A message when the expanded prompt exceeds CLIP's 75 usable tokens, else ``None``."""
    used = count_tokens(expand_prompt(prompt, counts), tokenizer)
    if used <= USABLE_TOKENS:
        return None
    vec = sum(counts[m.group(0)] for m in CONCEPT_TOKEN.finditer(prompt))  # every occurrence takes its tokens
    return (
        f"prompt uses {used} tokens (concept vectors: {vec}); CLIP reads only {USABLE_TOKENS}, "
        f"the rest is cut off: shorten it"
    )


def template_prompts(templates: Iterable[str], token: str) -> list[str]:
    """Fill ``{}`` in each template with ``token``."""
    out = []
    for t in templates:
        if "{}" not in t:
            raise PromptError(f"template {t!r} has no {{}} placeholder for the concept")
        out.append(t.replace("{}", token))
    return out
