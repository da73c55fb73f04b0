"""The full suite for the default preset with timesteps biased to the low-noise end (t = T·u²), before the option
existed in the code: the draw below is the one ticraft/training/objective.py now makes (same generator, same order)."""
import json, sys
from pathlib import Path
import torch
from ticraft.training import objective
from ticraft.bench.ladder import BenchSettings, run_bench

orig = objective.DenoisingObjective._draw

def _draw(self, batch):
    d = orig(self, batch)
    T = self.num_timesteps
    u = torch.rand(batch, generator=self.host_gen)
    d["t"] = (T * u ** 2).long().clamp(max=T - 1)
    return d

objective.DenoisingObjective._draw = _draw
out = Path(sys.argv[2])
s = BenchSettings(methods=["plain"], concepts=sys.argv[1].split(","), pairs=sys.argv[3] == "pairs", jobs=1)
res = run_bench(s, resume=out)
Path(str(out) + ".json").write_text(json.dumps(res, indent=1))
