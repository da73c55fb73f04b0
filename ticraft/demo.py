"""``ticraft demo``: the whole method on the toy model, end to end, in a few CPU minutes.

1. render pictures of a hidden toy-world object (the shipped tokenizer has no word for it);
2. learn a new token for it from those pictures (textual inversion) into a library;
3. compose it into new prompts (a labelled grid) and interpolate it towards a real word (a strip);
4. report its nearest vocabulary tokens and the toy judge's reconstruction/editability scores.

Everything lands under one output folder, so the demo can be rerun or thrown away freely.

>>> result = run_demo("ticraft-demo", steps=300)          # doctest: +SKIP
>>> result.grid, result.strip                              # doctest: +SKIP
(PosixPath('ticraft-demo/compose.png'), PosixPath('ticraft-demo/interp.png'))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ticraft.errors import TicraftError

#: Composition templates; ``{}`` is the learned token. Each asks for something the judge can check.
COMPOSE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}",
    "a {} on a green background",
    "a small {} on a white background",
    "a {} in outline style",
)

Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo made and measured (paths are inside ``out``)."""

    out: Path
    token: str
    hidden_word: str
    images: list[Path]
    library: Path
    grid: Path
    strip: Path
    neighbors: list[tuple[str, float]]
    norm_percentile: float
    """Where the mean of the learned vectors sits among the vocabulary's norms."""
    reconstruction: float
    editability: float
    edits: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    vector_percentiles: list[float] = field(default_factory=list)
    """Each learned vector's norm percentile (empty for a one-vector word: the mean is the vector)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token, "hidden_word": self.hidden_word, "images": [str(p) for p in self.images],
            "library": str(self.library), "grid": str(self.grid), "strip": str(self.strip),
            "neighbors": self.neighbors, "norm_percentile": self.norm_percentile,
            "vector_percentiles": self.vector_percentiles,
            "reconstruction": self.reconstruction, "editability": self.editability, "edits": self.edits,
            "seconds": self.seconds,
        }


def render_concept_images(word: str, n: int, folder: Path, seed: int) -> list[Path]:
    """Render ``n`` training pictures of a hidden toy-world word into ``folder``."""
    import numpy as np

    from ticraft.toyworld.render import render
    from ticraft.toyworld.vocab import concept_attributes

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, attrs in enumerate(concept_attributes(word, n, rng)):
        path = folder / f"{word}-{i}.png"
        render(attrs, rng).save(path)
        paths.append(path)
    return paths


def run_demo(
    out: str | Path = "ticraft-demo",
    *,
    word: str = "zorb",
    n_images: int = 4,
    steps: int | None = None,
    seed: int = 0,
    eval_samples: int = 8,
    callback: Callable[[int, int, float | None, Any], None] | None = None,
    say: Say = print,
) -> DemoResult:
    """Run the demo; ``callback`` follows the training loop's ``(step, total, loss, vectors)`` signature."""
    import time

    from ticraft.analysis.interpolate import render_interpolation
    from ticraft.analysis.metrics import evaluate_concept
    from ticraft.analysis.neighbors import find_neighbors, word_concept
    from ticraft.generate.sample import compose
    from ticraft.library import Library
    from ticraft.models.load import load_backbone
    from ticraft.toyworld.vocab import HIDDEN_OBJECTS
    from ticraft.training.api import train

    if word not in HIDDEN_OBJECTS:
        raise TicraftError(f"the demo learns a hidden object word: one of {', '.join(HIDDEN_OBJECTS)}")
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    token = f"<{word}>"

    say(f"rendering {n_images} pictures of a hidden toy-world object (the model has no word for it)")
    images = render_concept_images(word, n_images, out / "images", seed)

    backbone = load_backbone("toy")
    library = Library(out / "library")
    obj = HIDDEN_OBJECTS[word]
    if steps is None:  # the fast preset's run length (retuned on the concept suite, issue 15)
        from ticraft.training.config import preset_config

        steps = preset_config("fast").steps
    say(f"learning {token} from them ({steps} steps, from the word 'shape' or the words the pictures point to)")
    concept = train(images, token, "shape", model=backbone, preset="fast", steps=steps, seed=seed,
                    library=library, overwrite=True, callback=callback, tags=("demo",))
    # The fast preset searches the start from the pictures (init_search): say where the token really started.
    start = " ".join((concept.meta.get("init_search") or {}).get("words") or []) or "shape"
    say(f"it started from '{start}'" + (" (chosen from the pictures)" if start != "shape" else ""))

    say("composing it into new prompts")
    # Second row: where the learned token started (the searched words, or the initializer 'shape').
    grid_res = compose(backbone, [token, start], list(COMPOSE_TEMPLATES), seeds=[seed, seed + 1],
                       library=library, title=f"{token} learned from {n_images} pictures vs its start '{start}'")
    grid = out / "compose.png"
    _save(grid_res.grid, grid)

    say("interpolating it towards the word 'circle'")
    circle = word_concept(backbone, "circle").replace(token="<circle-word>")
    # the word's one vector is repeated to the learned word's count (3 with the fast preset)
    strip = render_interpolation(backbone, concept, circle, steps=8, prompt="a photo of a {}", seed=seed,
                                 out=out / "interp.png", library=library).path
    assert strip is not None  # out= was given, so the strip was written

    report = find_neighbors(backbone, concept, k=8)
    mean_row = report.rows[0]  # the mean of the vectors; rows[1:] are the vectors themselves (more than one)
    vector_percentiles = [round(r.percentile, 1) for r in report.rows[1:] if r.key == mean_row.key]
    neighbors = [(m.token, round(m.score, 3)) for m in mean_row.matches]

    say("scoring it with the toy judge")
    ev = evaluate_concept(backbone, concept, references=_open(images), n=eval_samples, seed=seed,
                          library=library, out=out / "eval.png")
    result = DemoResult(
        out=out, token=token, hidden_word=f"{word} ({obj.colour} {obj.texture} {obj.shape})", images=images,
        library=out / "library", grid=grid, strip=Path(strip), neighbors=neighbors,
        norm_percentile=mean_row.percentile, vector_percentiles=vector_percentiles,
        reconstruction=ev.reconstruction, editability=ev.editability,
        edits={e.prompt: e.score for e in ev.edits}, seconds=time.perf_counter() - started,
    )
    (out / "demo.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _save(image: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _open(paths: list[Path]) -> list[Any]:
    from PIL import Image

    return [Image.open(p).convert("RGB") for p in paths]
