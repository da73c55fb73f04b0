#!/bin/sh
# diffusers' recipe (the reference loop) on seeds 3 and 4 of the full suite, so the >= 5x comparison with the default
# can be paired over seeds; two processes share the 2 cores; resumable
cd "$(dirname "$0")/../../.." || exit 1
for N in 3 4; do
  .venv/bin/ticraft bench --methods diffusers-recipe --concepts all --seed $N --jobs 1 \
      --resume benchmarks/results/state/recipe_seed$N --json benchmarks/results/state/recipe_seed$N.json \
      --out /tmp/bench_out_r$N >> benchmarks/results/state/recipe_seed$N.log 2>&1 &
done
wait
