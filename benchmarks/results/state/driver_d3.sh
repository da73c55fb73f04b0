#!/bin/sh
# directional-3 (three direction-only vectors, otherwise the default preset) on seeds 1-4 of the full suite, two
# seeds at a time so both share the cores alike as plain's seeds did; resumable (each run folder keeps finished concepts)
cd "$(dirname "$0")/../../.." || exit 1
for PAIR in "1 2" "3 4"; do
  for N in $PAIR; do
    .venv/bin/ticraft bench --methods directional-3 --concepts all --seed $N --jobs 1 \
        --resume benchmarks/results/state/directional-3_seed$N --json benchmarks/results/state/directional-3_seed$N.json \
        --out /tmp/bench_out_d3_$N >> benchmarks/results/state/directional-3_seed$N.log 2>&1 &
  done
  wait
done
