#!/bin/sh
# seeds 3 and 4 of the full suite for the default (plain, batch 16) and batch-8, one pair of processes per seed so
# both methods share the cores alike; resumable (each run folder keeps finished concepts)
cd "$(dirname "$0")/../../.." || exit 1
for N in 3 4; do
  .venv/bin/ticraft bench --methods plain --concepts all --seed $N --jobs 1 \
      --resume benchmarks/results/state/default3_seed$N --json benchmarks/results/state/default3_seed$N.json \
      --out /tmp/bench_out_p$N > benchmarks/results/state/default3_seed$N.log 2>&1 &
  .venv/bin/ticraft bench --methods batch-8 --concepts all --seed $N --jobs 1 \
      --resume benchmarks/results/state/b8_seed$N --json benchmarks/results/state/b8_seed$N.json \
      --out /tmp/bench_out_b$N > benchmarks/results/state/b8_seed$N.log 2>&1 &
  wait
done
