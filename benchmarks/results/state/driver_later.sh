#!/bin/sh
# later-t (the default preset with timestep_bias later) on the full suite, seeds 0-2, two processes: each runs one
# seed whole, then half of seed 2 (state later_seed2a / later_seed2b, merged by benchmarks/seeds.py). Resumable.
cd "$(dirname "$0")/../../.." || exit 1
run() {  # seed, state name, concepts
  .venv/bin/ticraft bench --methods later-t --concepts "$3" --seed "$1" --jobs 1 \
      --resume benchmarks/results/state/$2 --json benchmarks/results/state/$2.json \
      --out /tmp/bench_out_$2 >> benchmarks/results/state/$2.log 2>&1
}
(run 0 later_seed0 all; run 2 later_seed2a c03,c04,c05,c06,c07,c08,c09,c10,c11) &
(run 1 later_seed1 all; run 2 later_seed2b c12,c13,c14,c15,c16,zorb,glimmic,c01,c02) &
wait
