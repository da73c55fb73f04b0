import sys, torch, warnings
warnings.simplefilter("ignore")
torch.set_num_threads(1)
from ticraft.bench.suite import build_suite
from ticraft.bench.scoring import score_concept
from ticraft.models.load import load_backbone
from ticraft.training.inputs import initial_vectors
from ticraft.concept import Concept
bb = load_backbone("toy")
c = build_suite(names=[sys.argv[1]])[0]
for words in sys.argv[2:]:
    n = len(words.split())
    v = initial_vectors(bb, words, n, {})
    con = Concept("<zz>", {k: t.clone() for k, t in v.items()}, family=bb.family)
    s = score_concept(bb, con, c, n=24, seed=0)
    print(f"{words:28s} rec {s.reconstruction:.2f} faithful {s.faithful:.2f}", {k[:34]: round(r['faithful'],2) for k, r in s.detail.items()}, flush=True)
