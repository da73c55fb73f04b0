"""The toy world's words: the public vocabulary, the hidden words, and a CLIP-compatible BPE built offline.

Hidden words appear in the base model's training captions only. The shipped tokenizer does not know them; their
rows in the shipped text encoder hold the mean row (so nothing leaks), at ids ``len(tokenizer) + i`` in the order of
:data:`HIDDEN_WORDS`, which is exactly the id ``tokenizer.add_tokens(word)`` would give them in that order. The true
rows live in ``tests/fixtures/toyworld_hidden.safetensors`` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ticraft.toyworld.render import COLOURS, SHAPES, SIZES, STYLES, TEXTURES, Attributes, sample_attributes

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MODEL_MAX_LENGTH = 77


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte-level alphabet, as transformers defines it (imported late: transformers is heavy)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return dict(bytes_to_unicode())


@dataclass(frozen=True)
class HiddenObject:
    """A hidden object word: fixed shape, colour and texture (size, background, position and style vary)."""

    word: str
    shape: str
    colour: str
    texture: str


@dataclass(frozen=True)
class BiasedWord:
    """A hidden word with a fixed shape and a skewed colour distribution (the paper's bias probe)."""

    word: str
    shape: str
    texture: str
    colours: tuple[tuple[str, float], ...]  # (colour, probability), probabilities sum to 1

    @property
    def majority(self) -> str:
        """The colour the word mostly shows."""
        return max(self.colours, key=lambda cp: cp[1])[0]


HIDDEN_OBJECTS: dict[str, HiddenObject] = {
    "zorb": HiddenObject("zorb", shape="star", colour="orange", texture="striped"),
    "blicket": HiddenObject("blicket", shape="moon", colour="cyan", texture="dotted"),
}
# The hidden style: render.STYLES' "glimmic" (a frame in the object's colour around the image) is named only by it.
HIDDEN_STYLE: str = "glimmic"
BIASED_WORD: BiasedWord = BiasedWord("doctor", shape="cross", texture="plain", colours=(("white", 0.9), ("green", 0.1)))
HIDDEN_WORDS: tuple[str, ...] = (*HIDDEN_OBJECTS, HIDDEN_STYLE, BIASED_WORD.word)

# Words of captions and of the usual inversion templates ("a photo of a {}", "a painting in the style of {}"), so each
# is one token.
FUNCTION_WORDS: tuple[str, ...] = (
    "a", "an", "the", "of", "on", "in", "with", "and", "photo", "image", "picture", "rendering", "rendition",
    "drawing", "painting", "style", "background", "object", "thing", "shape", "colour", "color", "texture", "small",
    "large", "big", "little", "close", "up", "cropped", "clean", "dirty", "dark", "bright", "cool", "nice", "good",
    "weird", "one", "my", "it", "this", "that", "is", "art", "by", "plain", "striped", "dotted", "pixelated",
    "outline", "stripes", "dots",
)  # fmt: skip
PUBLIC_WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [*FUNCTION_WORDS, *SHAPES, *COLOURS, *TEXTURES, *SIZES, *(s for s in STYLES if s not in ("none", HIDDEN_STYLE))]
    )
)


def _learn_merges(words: tuple[str, ...]) -> list[tuple[str, str]]:
    """Byte-level BPE merges (suffix ``</w>``) until every word is one symbol; ties broken by the pair's text.

    Written out rather than taken from ``tokenizers``' BpeTrainer: with every word seen once, most pair counts tie,
    and the trainer breaks ties in hash order, so its vocabulary (and token ids) changed from run to run, which made
    the base model's training irreproducible and a resumed run inconsistent.
    """
    from collections import Counter

    b2u = _bytes_to_unicode()
    seqs: list[list[str]] = []
    for w in dict.fromkeys(words):
        syms = [b2u[b] for b in w.encode("utf-8")]
        syms[-1] += "</w>"
        seqs.append(syms)
    merges: list[tuple[str, str]] = []
    while True:
        counts: Counter[tuple[str, str]] = Counter()
        for syms in seqs:
            counts.update(zip(syms, syms[1:], strict=False))
        if not counts:
            return merges
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        for syms in seqs:
            i = 0
            while i < len(syms) - 1:
                if (syms[i], syms[i + 1]) == best:
                    syms[i : i + 2] = [syms[i] + syms[i + 1]]
                i += 1


def train_bpe(words: tuple[str, ...] = PUBLIC_WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE (suffix ``</w>``) in which every word of ``words`` is one token; deterministic.

    Returns ``(vocab, merges)`` in CLIP's layout: 256 byte symbols, the same with ``</w>``, one token per merge in
    merge order, then ``<|startoftext|>`` and ``<|endoftext|>``. Nothing is downloaded. The result is checked with
    the ``tokenizers`` BPE model that ``transformers.CLIPTokenizer`` runs.
    """
    merges = _learn_merges(words)
    alphabet = list(_bytes_to_unicode().values())
    vocab_list = alphabet + [c + "</w>" for c in alphabet]
    seen = set(vocab_list)
    for a, b in merges:
        if a + b not in seen:
            vocab_list.append(a + b)
            seen.add(a + b)
    vocab_list += [BOS, EOS]
    return {t: i for i, t in enumerate(vocab_list)}, merges


def write_tokenizer(folder: str | Path, words: tuple[str, ...] = PUBLIC_WORDS) -> Path:
    """Write a ``CLIPTokenizer`` folder (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_bpe(words)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MODEL_MAX_LENGTH,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
        "clean_up_tokenization_spaces": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return folder


def load_tokenizer(folder: str | Path, with_hidden: bool = False):  # -> transformers.CLIPTokenizer
    """Load a tokenizer folder; ``with_hidden=True`` adds the hidden words (base-model training only)."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    if not (folder / "vocab.json").is_file():
        raise FileNotFoundError(f"no vocab.json in {folder}; write one with ticraft.toyworld.vocab.write_tokenizer")
    tok = CLIPTokenizer.from_pretrained(str(folder), model_max_length=MODEL_MAX_LENGTH)
    if with_hidden:
        add_hidden_words(tok)
    return tok


def add_hidden_words(tokenizer) -> list[int]:  # tokenizer: transformers.CLIPTokenizer
    """Add :data:`HIDDEN_WORDS` to ``tokenizer`` (in order) and return their ids."""
    base = len(tokenizer)
    tokenizer.add_tokens(list(HIDDEN_WORDS))
    ids = tokenizer.convert_tokens_to_ids(list(HIDDEN_WORDS))
    if ids != list(range(base, base + len(HIDDEN_WORDS))):
        raise ValueError(f"hidden words got ids {ids}, expected {base}..; is the tokenizer already extended?")
    return ids


def hidden_word_ids(tokenizer) -> dict[str, int]:  # tokenizer: the shipped CLIPTokenizer, without hidden words
    """Where each hidden word's row sits in the shipped text encoder's table: ``len(tokenizer) + i``."""
    return {w: len(tokenizer) + i for i, w in enumerate(HIDDEN_WORDS)}


def concept_attributes(what: str, n: int, rng: np.random.Generator) -> list[Attributes]:
    """Attributes of ``n`` images of a hidden word (``zorb``, ``glimmic``, ``doctor``…) or of an attribute spec.

    A spec is ``key=value`` pairs separated by commas, e.g. ``"shape=star,colour=red,style=outline"``; unspecified
    attributes are random. Hidden objects and the biased word draw the way the base model's training data did.
    """
    word = what.strip().lower()
    out: list[Attributes] = []
    if word in HIDDEN_OBJECTS:
        obj = HIDDEN_OBJECTS[word]
        for _ in range(n):
            out.append(sample_attributes(rng, shape=obj.shape, colour=obj.colour, texture=obj.texture, style="none"))
        return out
    if word == HIDDEN_STYLE:
        return [sample_attributes(rng, style=HIDDEN_STYLE) for _ in range(n)]
    if word == BIASED_WORD.word:
        colours, probs = zip(*BIASED_WORD.colours, strict=True)
        for _ in range(n):
            colour = str(rng.choice(colours, p=probs))
            out.append(sample_attributes(rng, colour=colour, shape=BIASED_WORD.shape, texture=BIASED_WORD.texture,
                                         style="none"))
        return out
    if "=" not in word:
        raise ValueError(
            f"{what!r} is neither a hidden word ({', '.join(HIDDEN_WORDS)}) nor a spec like 'shape=star,colour=red'"
        )
    spec: dict[str, Any] = {}
    for part in word.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"bad spec part {part!r}: expected key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        key = {"color": "colour", "bg": "background"}.get(key, key)
        spec[key] = int(value) if key in ("dx", "dy") else value
    return [sample_attributes(rng, **spec) for _ in range(n)]
