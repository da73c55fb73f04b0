r"""`ticraft train` next to diffusers' textual_inversion.py on the toy model, as users run them (issue 15 item 6).

    python benchmarks/vs_diffusers_script.py --script /tmp/ti/textual_inversion.py \
        --script-python /tmp/dvenv/bin/python [--seeds 0 1 2] [--seeds-b 0] [--write-results]
    python benchmarks/vs_diffusers_script.py --script … --script-python … --section "READING"  # RESULTS.md

The script is diffusers' ``examples/textual_inversion/textual_inversion.py`` (your copy, e.g. ``git show
HEAD:examples/textual_inversion/textual_inversion.py`` in a diffusers clone); it runs in its own venv, because
it needs torchvision and accelerate and torchvision in ticraft's venv would change what transformers imports:

    python3 -m venv /tmp/dvenv && /tmp/dvenv/bin/pip install torch==2.13.0
    /tmp/dvenv/bin/pip install diffusers==… transformers==… accelerate==… …   # the versions of ticraft's venv
    /tmp/dvenv/bin/pip install --no-deps torchvision==0.28.0
    # that wheel is a CUDA build: on the CPU torch its ops do not load and its import fails registering fakes for
    # nms/qnms; the script only uses its PIL flip, so guard those two decorators (pass --venv-note to record it):
    TV=/tmp/dvenv/lib/python3.11/site-packages/torchvision G='torchvision.extension._has_ops()'
    sed -i -E "s/^@(torch.library.register_fake\(\"torchvision::q?nms\"\))$/@(\1 if $G else (lambda f: f))/" \
        $TV/_meta_registrations.py

Both train ``<zorb-x>`` (initializer ``shape``) on 4 renders of the toy world's hidden object at the toy model's
native size, one thread each, for each setting (batch × steps) and seed: a 1-step run (start-up + first step +
saving) and an N-step run, timed in CPU seconds of the child (the machine may be shared). Steady rate =
(N−1)·B / (CPU(N) − CPU(1)). Each N-step result is then judged like ``ticraft bench`` judges a concept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "ticraft" / "toyworld" / "weights"
RESULT = ROOT / "benchmarks" / "results" / "vs_diffusers_script.json"
SECTION = "## ticraft train vs diffusers' textual_inversion.py (toy model, CPU)"
TOKEN, INIT, LR, WARMUP = "<zorb-x>", "shape", "5e-3", 10
SETTINGS = {"a": (16, 100), "b": (4, 256)}  # (a) the batch 16 × 100; (b) ticraft's fast preset, 4 × 256
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # both tools' torch take their thread count from these
UNMATCHED = [
    "ticraft encodes each picture (and its mirror) with the VAE once and samples the cached posterior; the script "
    "runs the VAE encoder on every batch (its design, no flag)",
    "flips: ticraft draws from the 4 pictures and their 4 cached mirrors; the script mirrors each drawn picture with "
    "p=0.5 (its default, no flag): the same distribution, other random streams, so equal seeds give other samples",
    "warm-up: the script's 'constant' schedule ignores --lr_warmup_steps, so it runs 'constant_with_warmup' (lr "
    "k/10 at step k from 0; ticraft (k+1)/10)",
    "optimiser: the script's AdamW with --adam_weight_decay 0 (= ticraft's Adam, no decay)",
    "logging: accelerate refuses --report_to none; 'all' with no tracker installed logs nothing",
    "outputs: ticraft also writes loss.png; the script only learned_embeds.safetensors",
]


def rusage_cpu() -> float:
    """User + system CPU seconds of all finished children (this process's own work is not counted)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], log: Path) -> dict[str, float]:
    """Run ``cmd`` with one thread; its CPU seconds (from the rusage delta) and wall seconds."""
    env = {**os.environ, **ONE_THREAD}
    cpu, wall = rusage_cpu(), time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=False)
    out = {"cpu_s": round(rusage_cpu() - cpu, 3), "wall_s": round(time.perf_counter() - wall, 3)}
    if proc.returncode:
        sys.exit(f"{cmd[0]} exited {proc.returncode}; see {log}")
    return out


def ticraft_cmd(images: Path, out: Path, batch: int | str, steps: int | str, seed: int | str) -> list[str]:
    """`ticraft train` as a user types it, every setting spelled out (the fast preset's values but batch/steps)."""
    return [str(Path(sys.executable).with_name("ticraft")), "train", str(images), "-t", TOKEN, "-i", INIT,
            "--model", "toy", "--steps", str(steps), "--batch", str(batch), "--grad-accum", "1", "--lr", LR,
            "--no-scale-lr", "--lr-schedule", "constant", "--warmup", str(WARMUP), "--optimizer", "adam",
            "--weight-decay", "0", "--flip", "--previews", "0", "--no-library", "--out", str(out), "--seed", str(seed)]


def script_cmd(python: str, script: Path, images: Path, out: Path, batch: int | str, steps: int | str,
               seed: int | str, resolution: int) -> list[str]:
    """The example script configured to the same settings; saves/checkpoints/validation past the last step."""
    later = str(steps + 1) if isinstance(steps, int) else f"{steps}+1"
    return [python, str(script), "--pretrained_model_name_or_path", str(WEIGHTS.relative_to(ROOT)),
            "--train_data_dir", str(images),
            "--placeholder_token", TOKEN, "--initializer_token", INIT, "--resolution", str(resolution),
            "--train_batch_size", str(batch), "--gradient_accumulation_steps", "1", "--max_train_steps", str(steps),
            "--learning_rate", LR, "--lr_scheduler", "constant_with_warmup", "--lr_warmup_steps", str(WARMUP),
            "--adam_weight_decay", "0", "--learnable_property", "object", "--dataloader_num_workers", "0",
            "--mixed_precision", "no", "--report_to", "all", "--save_steps", later, "--checkpointing_steps", later,
            "--validation_steps", later, "--seed", str(seed), "--output_dir", str(out)]


def runnable_script(python: str, script: Path, work: Path) -> tuple[Path, str | None]:
    """The script itself, or a copy without its ``check_min_version`` line when that refuses the installed diffusers."""
    text = script.read_text()
    m = re.search(r"^check_min_version\(\"([^\"]+)\"\)\n", text, re.M)
    if m is None:
        return script, None
    probe = f"from diffusers.utils import check_min_version; check_min_version({m.group(1)!r})"
    if subprocess.run([python, "-c", probe], capture_output=True, check=False).returncode == 0:
        return script, None
    copy = work / script.name
    copy.write_text(text.replace(m.group(0), ""))
    return copy, f"ran a copy without its check_min_version({m.group(1)!r}) line"


def render_pictures(folder: Path) -> Path:
    """4 renders of the hidden object; captions.txt removed (the script would read every file as a picture)."""
    tool = str(Path(sys.executable).with_name("ticraft"))
    subprocess.run([tool, "toyworld", "render", "zorb", "-n", "4", "-o", str(folder)], check=True,
                   capture_output=True)
    (folder / "captions.txt").unlink(missing_ok=True)
    return folder


def versions(python: str) -> dict[str, str]:
    """Package versions in the venv of ``python``."""
    code = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in ('torch', 'diffusers', "
            "'transformers', 'accelerate', 'torchvision', 'ticraft') if any(True for _ in m.distributions(name=p))}))")
    # cwd "/": run from the checkout, `python -c` would find ticraft's own egg-info in any venv
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    return json.loads(done.stdout)


def score(path: Path) -> dict[str, float]:
    """The bench's judgement of one learned vector: n=8 samples per probe, 10 steps, seed 0, toy backbone."""
    from ticraft.bench.scoring import score_concept
    from ticraft.bench.suite import hidden_object
    from ticraft.formats import read_concept
    from ticraft.models.load import load_backbone

    backbone = _BACKBONE.setdefault("toy", load_backbone("toy"))
    concept = read_concept(path, token="<eval>", family="toy")  # the script's file has no family metadata
    sc = score_concept(backbone, concept, hidden_object(), n=8, steps=10, seed=0)
    backbone.unload_concept("<eval>")
    return {"reconstruction": sc.reconstruction, "faithful": sc.faithful, "paper": sc.paper}


_BACKBONE: dict[str, Any] = {}


def run_setting(key: str, seeds: list[int], args: argparse.Namespace, script: Path, images: Path, work: Path,
                resolution: int) -> list[dict[str, Any]]:
    """Both tools, 1 and N steps, per seed; the tool that goes first alternates from seed to seed."""
    batch, steps = SETTINGS[key]
    rows = []
    for i, seed in enumerate(seeds):
        order = ["ticraft", "script"] if i % 2 == 0 else ["script", "ticraft"]
        for tool in order:
            runs: dict[str, Any] = {}
            for n in (1, steps):
                out = work / f"{key}-{tool}-s{seed}-n{n}"
                cmd = (ticraft_cmd(images, out, batch, n, seed) if tool == "ticraft" else
                       script_cmd(args.script_python, script, images, out, batch, n, seed, resolution))
                runs[str(n)] = timed(cmd, work / f"{out.name}.log")
                print(f"({key}) {tool:7s} seed {seed} {n:4d} steps: {runs[str(n)]}", flush=True)
            learned = next((work / f"{key}-{tool}-s{seed}-n{steps}").glob("*.safetensors"))
            steady = (steps - 1) * batch / (runs[str(steps)]["cpu_s"] - runs["1"]["cpu_s"])
            row = {"setting": key, "batch": batch, "steps": steps, "tool": tool, "seed": seed, "runs": runs,
                   "startup_cpu_s": runs["1"]["cpu_s"], "steady_samples_per_cpu_s": round(steady, 2),
                   "run_cpu_s": runs[str(steps)]["cpu_s"], "quality": score(learned)}
            print(f"({key}) {tool:7s} seed {seed}: steady {steady:.1f}/CPU s, quality {row['quality']}", flush=True)
            rows.append(row)
    return rows


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def table(rows: list[dict[str, Any]]) -> str:
    """tool × setting: means of the timings over seeds, and the judge's scores per seed."""
    lines = ["| setting | tool | start-up CPU s | steady samples / CPU s | whole run CPU s | quality per seed "
             "(rec / faithful / paper) |", "|---|---|---:|---:|---:|---|"]
    for key, (batch, steps) in SETTINGS.items():
        for tool in ("ticraft", "script"):
            sel = [r for r in rows if r["setting"] == key and r["tool"] == tool]
            if not sel:
                continue
            q = "; ".join(f"s{r['seed']}: {r['quality']['reconstruction']:.0%} / {r['quality']['faithful']:.0%} / "
                          f"{r['quality']['paper']:.0%}" for r in sel)
            lines.append(f"| ({key}) {batch} × {steps} | {tool} | {_mean([r['startup_cpu_s'] for r in sel]):.1f} | "
                         f"{_mean([r['steady_samples_per_cpu_s'] for r in sel]):.1f} | "
                         f"{_mean([r['run_cpu_s'] for r in sel]):.1f} | {q} |")
    return "\n".join(lines)


def section(result: dict[str, Any], reading: str) -> str:
    """The RESULTS.md section: command, date, machine, versions, what differs, the table and ``reading``."""
    def pkgs(venv: dict[str, str]) -> str:
        return ", ".join(f"{k} {w}" for k, w in venv.items() if k != "ticraft")

    v = result["versions"]
    notes = "".join(f"\n- {u}" for u in [*result["unmatched"], result["script_note"], result["venv_note"]] if u)
    return (f"{SECTION}\n\n`python benchmarks/vs_diffusers_script.py --script textual_inversion.py --script-python "
            f"/tmp/dvenv/bin/python --seeds 0 1 2 --write-results --script-source … --venv-note …`, then "
            f"`--section …` — {result['date']}, 2-core CPU, this sandbox, loaded by another benchmark: CPU seconds "
            f"of each child process (wall times in the JSON). One thread, toy model at {result['resolution']} px, "
            f"4 renders of the hidden object, `<zorb-x>` from `shape`, lr 5e-3 constant after 10 warm-up steps, no lr "
            f"scaling, flips on. ticraft's venv: {pkgs(v['ticraft venv'])}; the script's: {pkgs(v['script venv'])}; "
            f"the script: {result['script_source']}. Timings are means over the seeds; start-up = a whole 1-step "
            f"run; steady = (N−1)·B / (CPU(N) − CPU(1)); quality = `ticraft bench`'s judge (n=8, 10 steps, seed 0) "
            f"of the N-step vector. Raw numbers: `benchmarks/results/vs_diffusers_script.json`.\n\n"
            f"ticraft: `{result['commands']['ticraft']}`\n\nscript: `{result['commands']['script']}`\n\n"
            f"Not matched:{notes}\n\n{table(result['rows'])}\n\n{reading.strip()}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", type=Path, required=True, help="your copy of diffusers' textual_inversion.py")
    parser.add_argument("--script-python", required=True, help="python of a venv with diffusers, torchvision, …")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seeds-b", type=int, nargs="+", default=None, help="seeds of setting (b) (default --seeds)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--script-source", default="diffusers' main", help="where your copy of the script is from")
    parser.add_argument("--venv-note", default=None, help="anything done to the script's venv (kept in the notes)")
    parser.add_argument("--write-results", action="store_true", help=f"write {RESULT.name}")
    parser.add_argument("--section", metavar="READING", help=f"only write '{SECTION}' of RESULTS.md from {RESULT.name}"
                        " with READING (the sentences that read the table) under it")
    args = parser.parse_args()
    if args.section:
        sys.path.insert(0, str(Path(__file__).parent))
        from results_md import write_section

        write_section(section(json.loads(RESULT.read_text()), args.section))
        return

    import torch

    torch.set_num_threads(1)  # the judge's sampling; not timed, but kept off the other cores
    from ticraft.models.load import load_backbone
    from ticraft.training.data import native_resolution

    toy = load_backbone("toy")
    resolution = native_resolution(toy.unet, toy.vae)
    work = Path(tempfile.mkdtemp(prefix="vs_diffusers_"))
    script, note = runnable_script(args.script_python, args.script, work)
    images = render_pictures(work / "zorb")
    rows: list[dict[str, Any]] = []
    for key in args.settings:
        seeds = args.seeds_b if key == "b" and args.seeds_b else args.seeds
        rows += run_setting(key, seeds, args, script, images, work, resolution)
    result = {"date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()}-core CPU, {platform.machine()}",
              "resolution": resolution, "threads": 1, "script_note": note, "script_source": args.script_source,
              "venv_note": args.venv_note,              "unmatched": UNMATCHED,
              "versions": {"ticraft venv": versions(sys.executable), "script venv": versions(args.script_python)},
              "commands": {"ticraft": " ".join(["ticraft", *ticraft_cmd(Path("DIR"), Path("OUT"), "B", "N", "S")[1:]]),
                           "script": " ".join(["python", *script_cmd("", Path("textual_inversion.py"), Path("DIR"),
                                                                     Path("OUT"), "B", "N", "S", resolution)[1:]])},
              "rows": rows}
    print(table(rows))
    print("not matched:\n- " + "\n- ".join(UNMATCHED) + (f"\n- {note}" if note else ""))
    if args.write_results:
        RESULT.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {RESULT}; now --section 'READING' writes the RESULTS.md section from it")


if __name__ == "__main__":
    main()
