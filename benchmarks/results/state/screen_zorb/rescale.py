import sys, torch, warnings
warnings.simplefilter("ignore")
torch.set_num_threads(1)
from ticraft.bench.suite import build_suite
from ticraft.bench.scoring import score_concept
from ticraft.models.load import load_backbone
from ticraft.training.config import TrainConfig
from ticraft.training.loop import Trainer
from ticraft.concept import Concept
bb = load_backbone("toy")
c = build_suite(names=["zorb"])[0]
seed = int(sys.argv[1])
cfg = TrainConfig.from_options(preset="fast", steps=64, previews=0, seed=seed)
tr = Trainer(bb, c.train_images(), "<z>", c.init, cfg)
snaps = {}
for s in range(1, 65):
    tr.train_step()
    if s in (16, 32, 64): snaps[s] = {k: v.clone() for k, v in tr.result_vectors().items()}
print("init", tr.init_choice.words if tr.init_choice else None)
def judge(name, vec):
    s = score_concept(bb, Concept("<zz>", vec, family=bb.family), c, n=24, seed=100)
    k = next(iter(vec))
    print(f"{name:14s} norms {[round(float(x),2) for x in vec[k].norm(dim=-1)]} rec {s.reconstruction:.2f} faithful {s.faithful:.2f}",
          {p[14:30]: round(r['faithful'], 2) for p, r in s.detail.items()}, flush=True)
for st, v in snaps.items():
    judge(f"step{st}", v)
for f in (1.25, 1.5):
    judge(f"step32x{f}", {k: t * f for k, t in snaps[32].items()})
judge("step64x0.8", {k: t * 0.8 for k, t in snaps[64].items()})
d = {k: snaps[64][k] - snaps[32][k] for k in snaps[64]}
judge("step32+dir", {k: snaps[32][k] * (snaps[64][k].norm(dim=-1, keepdim=True) / snaps[32][k].norm(dim=-1, keepdim=True)) for k in snaps[64]})
