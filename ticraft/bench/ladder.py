"""The ladder runner: every concept × method, judged after a fixed ladder of seen samples.

For one concept and one method the method trains once, for the ladder's top point, and the judge scores the
concept as it stands at every ladder point (``samples`` = seen training samples, deterministic) next to the CPU
seconds spent training up to there. The first point with reconstruction ≥ 90 % and faithful editability ≥ 80 % is
the concept's **good point**. Stopping rules are judged against it: DVAR (on the evaluation loss every
``eval_every`` steps, as ``--early-stop`` would) records where it would have stopped, without stopping the run.

>>> res = run_bench(BenchSettings(methods=["plain"], concepts=["zorb"], ladder=[64, 128], n=2))  # doctest: +SKIP
>>> res["runs"][0]["points"][0].keys()                                                          # doctest: +SKIP
dict_keys(['samples', 'seconds', 'wall_seconds', 'reconstruction', 'faithful_editability', ...])
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ticraft.bench.methods import RunContext, changed_options, check_ladder, get_methods
from ticraft.bench.scoring import combine, judge_probe, pair_probes, render_probes, score_concept
from ticraft.bench.state import BenchState
from ticraft.bench.suite import BenchError, SuiteConcept, build_suite
from ticraft.wording import counted

SCHEMA = "ticraft-bench/1"
GOOD_RECONSTRUCTION = 0.90
GOOD_FAITHFUL = 0.80
# The default preset gets the easy concepts good after ~128 samples and the reference recipe the hard ones after
# ~1-2k, so the ladder starts low and ends at 2k; longer runs only cost (quality falls past ~1k on this world).
FULL_LADDER = [64, 128, 256, 512, 1024, 2048]
QUICK_LADDER = [64, 128, 256, 512, 1024]
FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "toyworld_hidden.safetensors"

Say = Callable[[str], None]


@dataclass
class BenchSettings:
    """What one ``ticraft bench`` run does (``None`` fields take the quick or full defaults)."""

    methods: list[str] = field(default_factory=lambda: ["plain", "diffusers-recipe"])
    concepts: list[str] | None = None
    shots: list[int] = field(default_factory=lambda: [4])
    ladder: list[int] | None = None
    n: int | None = None
    eval_steps: int = 10
    threads: int = 1
    seed: int = 0
    quick: bool = False
    dvar: bool = True
    pairs: bool = True
    model: str = "toy"
    jobs: int = 1
    """Processes (one torch thread each when ``threads`` is 1): methods are spread over them, results merged."""

    def resolved(self) -> "BenchSettings":
        s = BenchSettings(**asdict(self))
        s.ladder = list(self.ladder) if self.ladder is not None else (QUICK_LADDER if self.quick else FULL_LADDER)
        s.n = self.n if self.n is not None else (4 if self.quick else 8)
        return s


def is_good(point: dict[str, Any]) -> bool:
    return point["reconstruction"] >= GOOD_RECONSTRUCTION and point["faithful_editability"] >= GOOD_FAITHFUL


def true_concepts() -> dict[str, Any]:
    """The hidden words' true rows as concepts (empty when the test fixture is not installed)."""
    if not FIXTURE.is_file():
        return {}
    from safetensors.torch import load_file

    from ticraft.concept import Concept

    rows = load_file(str(FIXTURE))
    return {w: Concept(f"<{w}-true>", {"clip": rows[w].float()}, family="toy") for w in rows}


def _pairs(bb: Any, obj: SuiteConcept, obj_c: Any, style_c: Any, bias_c: Any, n: int, seed: int, steps: int
           ) -> dict[str, dict[str, float]]:
    probes = pair_probes(obj, obj_c.token, style_c.token, bias_c.token)
    images = render_probes(bb, [obj_c, style_c, bias_c], [(p, n) for p in probes], obj_c.token, seed=seed,
                           steps=steps)
    names = ("in learned style", "with biased word")
    return {name: judge_probe(ims, p) for name, p, ims in zip(names, probes, images, strict=True)}


def run_bench(settings: BenchSettings, *, say: Say = print, backbone: Any = None,
              on_run: Callable[[dict[str, Any]], None] | None = None,
              resume: Path | None = None) -> dict[str, Any]:
    """Run the suite; returns the JSON-able result (see :data:`SCHEMA`). Bad input raises one BenchError.

    ``on_run(result_so_far)`` after every concept × method (e.g. to save partial results of a long run).
    ``resume``: a state folder (:class:`~ticraft.bench.state.BenchState`); finished runs found there are reused,
    new ones are written there as they finish, so a killed run continues where it stopped.
    """
    import torch

    s = settings.resolved()
    methods = get_methods(s.methods)
    assert s.ladder is not None and s.n is not None
    ladder = check_ladder(s.ladder, methods)
    suite = build_suite(quick=s.quick, names=s.concepts, shots=s.shots)
    if resume is not None and Path(resume).exists() and not Path(resume).is_dir():
        # said before anything runs (a worker would only find out when saving its first finished run)
        raise BenchError(f"{resume}: the resume folder is a file; give a folder")
    if s.jobs > 1 and len(methods) > 1 and backbone is None:
        return _run_parallel(s, [m.name for m in methods], say, resume)
    state = BenchState(resume, asdict(s)) if resume is not None else None
    prior = state.load() if state is not None else None
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.set_num_threads(s.threads)
    if backbone is None:
        from ticraft.models.load import load_backbone

        backbone = load_backbone(s.model)
    truths = true_concepts() if backbone.family == "toy" else {}
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "settings": {**asdict(s),
                     "good": {"reconstruction": GOOD_RECONSTRUCTION, "faithful_editability": GOOD_FAITHFUL},
                     "torch": torch.__version__,
                     "machine": f"{platform.machine()}, {counted(torch.get_num_threads(), 'torch thread')}",
                     "seconds": "CPU seconds of the training process inside training steps"},
        "methods": {m.name: m.description for m in methods},
        "concepts": {c.key: {"kind": c.kind, "identity": c.identity, "shots": c.shots, "description": c.description}
                     for c in suite},
        "references": [], "runs": [],
    }
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if prior is not None:
        result["references"] = prior.get("references", [])
        done = {(r["method"], r["concept"]): r for r in prior.get("runs", [])}
        for m in methods:  # refused before anything runs rather than mixed into one row
            for key, run in done.items():
                changed = changed_options(m, run) if key[0] == m.name else []
                if changed:
                    raise BenchError(f"{resume}: its {m.name} run of {key[1]} used other options than {m.name} "
                                     f"means now ({', '.join(changed)}); resume in a new folder")
        say(f"resuming from {resume}: {len(done)} runs already there")
    # reference points: the hidden words' true rows
    for c in suite:
        if c.hidden in truths and c.shots == suite[0].shots and prior is None:
            sc = score_concept(backbone, truths[c.hidden], c, n=s.n, seed=s.seed, steps=s.eval_steps)
            backbone.unload_concept(truths[c.hidden].token)
            result["references"].append({"concept": c.name, "word": c.hidden, **sc.to_dict()})
            say(f"true '{c.hidden}': reconstruction {sc.reconstruction:.0%}, faithful {sc.faithful:.0%}, "
                f"paper {sc.paper:.0%}")
    finals: dict[tuple[str, str], Any] = {}
    for m in methods:
        for c in suite:
            if (m.name, c.key) in done and state is not None:
                result["runs"].append(done[(m.name, c.key)])
                final = state.load_final(m.name, c.key)
                if final is not None:
                    finals[(m.name, c.key)] = final
                continue
            ctx = RunContext(backbone, c, c.train_images(), c.token, ladder, seed=s.seed,
                             dvar=s.dvar and not m.reference)
            points = []
            eval_token = f"<{c.key.replace('@', '-')}-eval>"
            for snap in m.run(ctx):
                concept = snap.concept.replace(token=eval_token)
                sc = score_concept(backbone, concept, c, n=s.n, seed=s.seed, steps=s.eval_steps)
                backbone.unload_concept(eval_token)
                point = {"samples": snap.samples, "seconds": round(snap.seconds, 3),
                         "wall_seconds": round(snap.wall, 3), **sc.to_dict()}
                point["good"] = is_good(point)
                points.append(point)
                finals[(m.name, c.key)] = concept
                say(f"{m.name:>16} {c.key:<10} {snap.samples:>6} samples {snap.seconds:6.1f} s: rec "
                    f"{sc.reconstruction:.0%} faithful {sc.faithful:.0%} paper {sc.paper:.0%}")
            good = next((p for p in points if p["good"]), None)
            result["runs"].append({
                "concept": c.key, "name": c.name, "kind": c.kind, "shots": c.shots, "method": m.name,
                "startup_seconds": round(float(ctx.events.get("startup_seconds", 0.0)), 3),
                "config": ctx.events.get("config"), "points": points,
                "good_samples": good["samples"] if good else None, "good_seconds": good["seconds"] if good else None,
                "dvar_stop_samples": ctx.events.get("dvar_stop") if ctx.dvar else None, "dvar": ctx.dvar,
            })
            if state is not None:
                if (m.name, c.key) in finals:
                    state.save_final(m.name, c.key, finals[(m.name, c.key)])
                # the folder accumulates: earlier runs not (yet) in this result — other methods or concepts, or ones
                # this loop has not reached — are kept
                mine = {(r["method"], r["concept"]) for r in result["runs"]}
                others = [r for key, r in done.items() if key not in mine]
                state.save({**result, "runs": result["runs"] + others, "total_seconds": _elapsed(prior, started),
                            "cpu_seconds": [_cpu(prior, cpu_started)]})
            if on_run is not None:
                on_run(result)
    if s.pairs and "doctor" in truths:
        result["pairs"] = _pair_rows(backbone, suite, methods, finals, truths, s, say)
    result["total_seconds"] = _elapsed(prior, started)
    # all CPU time of this process (training, judging, start-up): the wall time it needs on an idle core
    # (with --resume: summed over the processes that made the runs)
    result["cpu_seconds"] = [_cpu(prior, cpu_started)]
    from ticraft.bench.summary import summarize

    result["summary"] = summarize(result)
    return result


def _elapsed(prior: dict[str, Any] | None, started: float) -> float:
    return round(time.perf_counter() - started + (prior or {}).get("total_seconds", 0.0), 1)


def _cpu(prior: dict[str, Any] | None, started: float) -> float:
    before = sum((prior or {}).get("cpu_seconds") or [])
    return round(time.process_time() - started + before, 1)


def _worker(job: tuple[BenchSettings, Path | None]) -> dict[str, Any]:
    return run_bench(job[0], say=lambda text: print(text, flush=True), resume=job[1])


def _run_parallel(s: BenchSettings, names: list[str], say: Say, resume: Path | None = None) -> dict[str, Any]:
    """Spread the methods over ``s.jobs`` processes (most expensive first: the reference), then merge."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from ticraft.bench.summary import merge_results

    jobs = min(s.jobs, len(names))
    groups: list[list[str]] = [[] for _ in range(jobs)]
    for i, name in enumerate(sorted(names, key=lambda n: n != "diffusers-recipe")):
        groups[i % jobs].append(name)
    say(f"{jobs} processes: " + "; ".join(", ".join(g) for g in groups))
    # each process keeps its own state folder (one writer per folder)
    parts = [(BenchSettings(**{**asdict(s), "methods": g, "jobs": 1}),
              resume / "+".join(g) if resume is not None else None) for g in groups]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_worker, parts))
    merged = merge_results(results)
    merged["settings"]["jobs"] = jobs
    order = {n: i for i, n in enumerate(names)}
    merged["runs"].sort(key=lambda r: order[r["method"]])
    merged["methods"] = {n: merged["methods"][n] for n in names}
    from ticraft.bench.summary import summarize

    merged["summary"] = summarize(merged)
    return merged


def _pair_rows(bb: Any, suite: list[SuiteConcept], methods: list[Any], finals: dict[tuple[str, str], Any],
               truths: dict[str, Any], s: BenchSettings, say: Say) -> list[dict[str, Any]]:
    """Two-concept prompts at the ladder's top: each object concept in the same method's learned style."""
    rows = []
    assert s.n is not None
    bias = truths["doctor"]
    objects = [c for c in suite if c.kind == "object"]
    for m in methods:
        for c in objects:
            style_key = next((x.key for x in suite if x.kind == "style" and x.shots == c.shots), None)
            if style_key is None or (m.name, c.key) not in finals or (m.name, style_key) not in finals:
                continue
            obj_c, style_c = finals[(m.name, c.key)], finals[(m.name, style_key)]
            obj_c = obj_c.replace(token=f"<{c.key.replace('@', '-')}-pair>")
            style_c = style_c.replace(token="<style-pair>")
            res = _pairs(bb, c, obj_c, style_c, bias, s.n, s.seed, s.eval_steps)
            for tok in (obj_c.token, style_c.token, bias.token):
                bb.unload_concept(tok)
            rows.append({"concept": c.key, "method": m.name, "style": style_key, **res})
            say(f"{m.name:>16} {c.key:<10} pairs: in learned style faithful {res['in learned style']['faithful']:.0%}, "
                f"with biased word identity {res['with biased word']['identity']:.0%}")
    if "zorb" in truths and "glimmic" in truths and any(c.name == "zorb" for c in objects):
        zorb = next(c for c in objects if c.name == "zorb")
        res = _pairs(bb, zorb, truths["zorb"], truths["glimmic"], bias, s.n, s.seed, s.eval_steps)
        for tok in (truths["zorb"].token, truths["glimmic"].token, bias.token):
            bb.unload_concept(tok)
        rows.append({"concept": "zorb", "method": "true words", "style": "glimmic", **res})
    return rows


__all__ = ["BenchSettings", "FULL_LADDER", "QUICK_LADDER", "SCHEMA", "combine", "is_good", "run_bench", "true_concepts"]
