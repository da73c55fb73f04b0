#!/bin/sh
# the ticraft side of the full suite, resumable: the 4-picture suite with the default preset, few-shot (2 and 1
# pictures) on 6 concepts, then the old preset on the same 6
cd "$(dirname "$0")/../../.." || exit 1
S="zorb,glimmic,c01,c02,c03,c04"
.venv/bin/python benchmarks/concept_suite.py --methods plain --shots 4 \
    --resume benchmarks/results/state/plain_v2 > benchmarks/results/state/plain_v2.log 2>&1
.venv/bin/python benchmarks/concept_suite.py --methods plain --shots 2,1 --concepts $S \
    --resume benchmarks/results/state/plain_fewshot > benchmarks/results/state/plain_fewshot.log 2>&1
.venv/bin/python benchmarks/concept_suite.py --methods fast-v0 --shots 4 --concepts $S \
    --resume benchmarks/results/state/fastv0 > benchmarks/results/state/fastv0.log 2>&1
