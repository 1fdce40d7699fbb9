#!/bin/sh
# The CI comparison matrix: every registered backend on every task that has data on a CI machine,
# at the ci profile, then the comparison table and a short speed table. Reports stay in
# results/ci/. Exits non-zero when any run fails.
set -eu
BIN=build/lra-bench
OUT=results/ci
DATA=build/ci-data        # ListOps is generated here once (about 12 s)
TASKS="listops"           # the tasks that exist and have data here
rm -rf "$OUT"
mkdir -p "$OUT"
for task in $TASKS; do
    for backend in $($BIN --list-backends); do
        $BIN --task="$task" --backend="$backend" --profile=ci --data-dir="$DATA" \
            --out="$OUT/$task-$backend-ci-seed0.json" >/dev/null
    done
done
echo
echo "# CI comparison matrix (ci profile: 1 layer, emb 32, 30 steps; accuracy is a smoke check, not a result)"
echo
$BIN compare "$OUT"/*-ci-seed0.json
echo
$BIN speed --backend="$($BIN --list-backends | paste -sd, -)" --lengths=1024,2048 --repeats=3 \
    --encoder=0 --out="$OUT/speed.json" 2>/dev/null
