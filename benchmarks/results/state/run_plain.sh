#!/bin/sh
# The full concept suite's ticraft side, resumable: the 4-picture suite, then few-shot (2 and 1 pictures) on 8 concepts.
cd "$(dirname "$0")/../../.." || exit 1
.venv/bin/python benchmarks/concept_suite.py --methods plain --shots 4 --resume benchmarks/results/state/plain \
  && .venv/bin/python benchmarks/concept_suite.py --methods plain --shots 2,1 \
       --concepts zorb,glimmic,c01,c02,c03,c04,c05,c06 --resume benchmarks/results/state/plain_fewshot
