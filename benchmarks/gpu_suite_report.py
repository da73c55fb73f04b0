"""The trainer GPU suite's targets and its RESULTS.md section (issue 18), rendered from the suite's JSON.

``python benchmarks/gpu_suite.py --from-json benchmarks/results/gpu_suite_h200.json --write`` turns a device
run's JSON into the "## Training on one GPU (issue 18)" section; without a JSON (``--write``) the section
lists every row as not measured, with its target and the command that measures it.
"""

from __future__ import annotations

from typing import Any

SECTION = "## Training on one GPU (issue 18)"

#: The device command (one call; diffusers carried as a wheel, see "Training throughput" above).
DEVICE_COMMAND = """\
echo /.whl/ >> .git/info/exclude
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
    --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 platformdirs
# device run, carry [".whl"], timeout_s 560:
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \\
  && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 \\
  && python3 benchmarks/gpu_suite.py --budget 450 --json $OUT/gpu_suite.json --markdown $OUT/gpu_suite.md \\
     2>&1 | tee $OUT/gpu_suite.log"""

#: (key, what, target, how it is judged) — one line of the targets table per issue-18 item.
TARGETS: list[tuple[str, str, str]] = [
    ("best", "SD-1.5 arch, 512 px: samples/s at the best batch", "≥ 200"),
    ("small", "SD-1.5 arch, 512 px: samples/s at batch 1–4 (best of eager and compiled)", "≥ 40"),
    ("peak1", "SD-1.5 arch, 512 px: peak GiB at batch 1 (latent cache and training)", "≤ 4"),
    ("xl_peak1", "SDXL arch, 1024 px, both encoders: peak GiB at batch 1", "≤ 10"),
    ("user", "default preset's whole `ticraft train` (start → saved concept), as a user runs it", "≤ 60 s"),
    ("many", "train-many, 32 concepts: samples/s against the best single-run samples/s", "≥ 1.0×"),
]

#: What the suite measures on a GPU (the plan, for the section before any device run).
PLANNED_ROWS = [
    "SD-1.5 arch 512 px: the diffusers-example reference at batch 1; fp32 and bf16-autocast-only at batch 1; bf16 "
    "weights + autocast at batch 1, 4, 16, 64 (samples/s, latent-cache and training peaks, TFLOP/s, % of bf16 peak)",
    "the VAE kept on the device vs offloaded at batch 1 (SD-1.5 and SDXL)",
    "the latent-cache peak with 8 images per VAE call (before) vs 512×512 px at a time (now)",
    "SDXL arch 1024 px, both encoders: correctness, batch 1 and 4",
    "the default preset's whole `ticraft train` on a saved SD-1.5 folder, timed in a fresh process",
    "train-many with 32 concepts at batch 2 and 16 per concept, passes of ≤ 64",
    "`torch.compile` default and reduce-overhead at batch 1, 4, 16, 64",
]


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def judge(report: dict[str, Any]) -> dict[str, tuple[str, bool | None]]:
    """Measured value (as text) and met/not met/None (unmeasured) for every target."""
    sd = (report.get("sd") or {}).get("rows", [])
    ok = [r for r in sd if r.get("status") == "ok" and r.get("samples_s") and not r.get("reference")]
    out: dict[str, tuple[str, bool | None]] = {}
    best = max(ok, key=lambda r: r["samples_s"], default=None)
    out["best"] = ((f"{best['samples_s']:.1f} ({best['name'].strip()}, batch {best['batch']})",
                    best["samples_s"] >= 200) if best else ("not measured", None))
    small = max((r for r in ok if r["batch"] <= 4), key=lambda r: r["samples_s"], default=None)
    out["small"] = ((f"{small['samples_s']:.1f} ({small['name'].strip()}, batch {small['batch']})",
                     small["samples_s"] >= 40) if small else ("not measured", None))
    b1 = [r for r in ok if r["batch"] == 1 and r.get("peak_gib") is not None and "fp32" not in r["name"]]
    low = min(b1, key=lambda r: r["peak_gib"], default=None)
    out["peak1"] = ((f"{low['peak_gib']:.2f} GiB ({low['name'].strip()})", low["peak_gib"] <= 4) if low
                    else ("not measured", None))
    xl = [r for r in (report.get("sdxl") or {}).get("rows", []) if r.get("status") == "ok" and r["batch"] == 1
          and r.get("peak_gib") is not None]
    xlow = min(xl, key=lambda r: r["peak_gib"], default=None)
    out["xl_peak1"] = ((f"{xlow['peak_gib']:.2f} GiB ({xlow['name'].strip()})", xlow["peak_gib"] <= 10) if xlow
                       else ("not measured", None))
    user = report.get("user_train") or {}
    out["user"] = ((f"{user['wall_s']:.1f} s", user["wall_s"] <= 60) if user.get("status") == "ok"
                   else (user.get("status", "not measured"), None))
    many = [r for r in (report.get("train_many") or {}).get("rows", []) if r.get("status") == "ok"]
    top = max(many, key=lambda r: r["samples_s"], default=None)
    if top and best:
        ratio = top["samples_s"] / best["samples_s"]
        out["many"] = (f"{top['samples_s']:.1f} samples/s = {ratio:.2f}× of {best['samples_s']:.1f}", ratio >= 1.0)
    else:
        out["many"] = ("not measured", None)
    return out


def rows_table(rows: list[dict[str, Any]], flops: float | None, peak_tflops: float | None) -> str:
    lines = ["| row | batch | samples/s | cache peak GiB | train peak GiB | TFLOP/s | % of peak | status |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        s = r.get("samples_s")
        tf = s * flops / 1e12 if s and flops else None
        pct = 100 * tf / peak_tflops if tf and peak_tflops else None
        lines.append(f"| {r['name']} | {r['batch']} | {fmt(s, '.1f')} | {fmt(r.get('cache_peak_gib'))} | "
                     f"{fmt(r.get('train_peak_gib'))} | {fmt(tf, '.0f')} | {fmt(pct, '.0f')} | "
                     f"{r.get('status', '—')} |")
    return "\n".join(lines)


def section(report: dict[str, Any] | None) -> str:
    """The RESULTS.md section for a suite run (``None``: the plan, nothing measured)."""
    head = f"{SECTION}\n\n"
    if report is None:
        head += ("**Not measured: no GPU was lent to the session that prepared this suite.** Every target below is "
                 "unmeasured, and so is every row the suite measures: " + "; ".join(PLANNED_ROWS) + ". The suite "
                 "passes on a CPU (`python benchmarks/gpu_suite.py --quick [--compile]`, tiny models, the same code "
                 "paths). Its length on a GPU is bounded by `--budget 450` (a row that would start after the budget "
                 "is recorded as skipped; compile rows come last and start only with ≥ 45 s left), meant to end "
                 "within 8 minutes on one H100/H200 — not yet verified on a device.\n\n")
    else:
        sd, xl = report.get("sd") or {}, report.get("sdxl") or {}
        head += (f"Measured on {report['device']} (torch {report['torch']}), {report.get('date', '')}; random-weight "
                 f"{sd.get('arch')} architecture at {sd.get('resolution')} px"
                 + (f" and {xl['arch']} at {xl['resolution']} px" if xl.get("arch") else " (no SDXL rows)")
                 + f"; suite wall time {report.get('wall_s', 0):.0f} s (budget "
                 f"{report.get('budget_s', 0):.0f} s). Raw JSON: `benchmarks/results/`.\n\n")
    verdicts = judge(report or {})
    lines = ["| target | goal | measured | met |", "|---|---:|---|---|"]
    for key, what, goal in TARGETS:
        value, met = verdicts[key]
        lines.append(f"| {what} | {goal} | {value} | {'yes' if met else ('no' if met is False else '—')} |")
    body = head + "\n".join(lines) + "\n"
    if report is not None:
        peak = report.get("peak_tflops")
        for key in ("sd", "sdxl"):
            part = report.get(key)
            if part and part.get("rows"):
                title = f"{part['arch']} architecture, {part['resolution']} px"
                title += ", both encoders" if key == "sdxl" else ""
                fl = part.get("flops_per_sample")
                body += (f"\n**{title}** (model FLOPs/sample {fmt(fl / 1e12 if fl else None, '.2f')} TFLOP"
                         + (f"; limit {peak / (fl / 1e12):.0f} samples/s at {peak:.0f} TFLOP/s" if fl and peak else "")
                         + ")\n\n" + rows_table(part["rows"], fl, peak) + "\n")
        cache = report.get("latent_cache")
        if cache:
            body += "\n**Latent-cache peak** (VAE encoding only, 4 images × flip at 512 px)\n\n"
            body += "\n".join(f"- {r['name']}: {fmt(r.get('peak_gib'))} GiB, {r.get('status')}" for r in cache) + "\n"
        many = report.get("train_many")
        if many:
            body += f"\n**train-many, {many.get('concepts')} concepts** (samples/s of all concepts together)\n\n"
            body += "\n".join(f"- {r['name']}: {fmt(r.get('samples_s'), '.1f')} samples/s, train peak "
                              f"{fmt(r.get('train_peak_gib'))} GiB, {r.get('status')}" for r in many["rows"]) + "\n"
    body += ("\nLevers in the trainer for this issue: the VAE leaves the device once latents are cached "
             "(`offload_vae`, default on; previews bring it back while they render); latents are encoded 512×512 px "
             "worth at a time (the earlier 8-image chunks were the likely batch-1 peak); `torch.compile` default and "
             "reduce-overhead (CUDA graphs; the trainer marks each step's start for them); bf16 weights and autocast; "
             "train-many packs concepts into forward passes of `--max-batch` samples.\n\n"
             "The device command (one call):\n\n```\n" + DEVICE_COMMAND + "\n```\n")
    return body
