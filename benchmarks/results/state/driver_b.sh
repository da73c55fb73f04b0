#!/bin/sh
# after the reference recipe on the whole suite: stop before fast-v0 (driver_a runs it on 6 concepts), write the
# recipe's result (pairs from the kept concepts), then the paper's variants on 6 concepts
cd "$(dirname "$0")/../../.." || exit 1
while ! grep -q "^ *fast-v0 " benchmarks/results/state/recipe_fastv0.log; do sleep 10; done
pkill -f "concept_suite.py --methods diffusers-recipe,fast-v0"
sleep 2
.venv/bin/python benchmarks/concept_suite.py --methods diffusers-recipe --shots 4 \
    --resume benchmarks/results/state/recipe_fastv0 > benchmarks/results/state/recipe_final.log 2>&1
.venv/bin/python benchmarks/concept_suite.py --methods multi3,progressive,reg --shots 4 \
    --concepts zorb,glimmic,c01,c02,c03,c04 --resume benchmarks/results/state/variants \
    > benchmarks/results/state/variants.log 2>&1
