#!/bin/sh
# The CI comparison matrix: every registered backend on every task that has data on a CI machine,
# at the ci profile, then the comparison table and a short speed table. Reports stay in
# results/ci/. Exits non-zero when any run fails.
set -eu
BIN=build/lra-bench
OUT=results/ci
DATA=build/ci-data        # ListOps (about 12 s) and a small Pathfinder set are generated here once
SHARED=../shared/data      # the real IMDB reviews, where the checkout has them beside it
# the tasks with data on a CI machine: generated ListOps and Pathfinder, Image on Debian's
# Fashion-MNIST (setup installs it), Text on the real reviews when present; the others need downloads
TASKS="listops pathfinder image[fashion-mnist]"
[ -f "$SHARED/aclImdb-reviews.tar.gz" ] && TASKS="listops text pathfinder image[fashion-mnist]"
rm -rf "$OUT"
mkdir -p "$OUT"
# a 2000-image Pathfinder set instead of the 200000 a first run would generate
[ -d "$DATA/pathfinder32/curv_contour_length_14" ] || \
    $BIN generate --task=pathfinder --images=2000 --out="$DATA" 2>/dev/null
for task in $TASKS; do
    case $task in
        text) args="--task=text --data-dir=$SHARED" ;;
        "image[fashion-mnist]") args="--task=image --dataset=fashion-mnist --data-dir=$DATA" ;;
        *) args="--task=$task --data-dir=$DATA" ;;
    esac
    for backend in $($BIN --list-backends); do
        # shellcheck disable=SC2086
        $BIN $args --backend="$backend" --profile=ci --out="$OUT/$task-$backend-ci-seed0.json" >/dev/null 2>&1 ||
            { echo "ci-matrix: $task with $backend failed:" >&2; $BIN $args --backend="$backend" --profile=ci --overwrite \
              --out="$OUT/$task-$backend-ci-seed0.json" >/dev/null; }
    done
done
echo
echo "# CI comparison matrix (ci profile: 1 layer, emb 32, 30 steps, 1000 evaluation examples; accuracy is a smoke check, not a result)"
echo
$BIN compare "$OUT"/*-ci-seed0.json
echo
$BIN speed --backend="$($BIN --list-backends | paste -sd, -)" --lengths=1024,2048 --repeats=3 \
    --encoder=0 --out="$OUT/speed.json" 2>/dev/null
