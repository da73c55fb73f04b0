#!/bin/sh
# diffusers' recipe (the reference loop) on the full suite for the seeds given (default 1 2), one process per seed at
# once, so the >= 5x comparison with the default can be paired over seeds; resumable (each run folder keeps finished
# concepts). Seeds 1 and 2 ran after driver_d3.sh (`driver_recipe.sh 1 2`), seeds 3 and 4 started later
# (`driver_recipe.sh 3 4`, stopped after 13 of 18 concepts: rerun it to finish).
cd "$(dirname "$0")/../../.." || exit 1
while pgrep -f driver_d3.sh > /dev/null; do sleep 20; done
SEEDS=${*:-1 2}
for N in $SEEDS; do
  .venv/bin/ticraft bench --methods diffusers-recipe --concepts all --seed $N --jobs 1 \
      --resume benchmarks/results/state/recipe_seed$N --json benchmarks/results/state/recipe_seed$N.json \
      --out /tmp/bench_out_r$N >> benchmarks/results/state/recipe_seed$N.log 2>&1 &
done
wait
