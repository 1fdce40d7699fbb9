#!/bin/sh
# fuzz.sh - runs the libFuzzer harnesses built by `make fuzz` (build-fuzz/fuzz/fuzz_NAME).
#   sh scripts/fuzz.sh corpus-check NAME...   every harness has a seed corpus (make fuzz-corpus)
#   sh scripts/fuzz.sh run SECONDS NAME...    each harness SECONDS on its corpus, two at a time
#                                             (this machine has two cores); new inputs grow the
#                                             corpus, crashes land in build-fuzz/crashes/NAME/
# A summary line per harness (executions, wall time, coverage, crashes) goes to
# build-fuzz/summary.txt; the exit status is 1 when any harness crashed.
set -u
cd "$(dirname "$0")/.."
mode=$1; shift
B=build-fuzz
case $mode in
corpus-check)
    bad=0
    for n in "$@"; do
        k=$(ls $B/corpus/$n 2>/dev/null | wc -l)
        echo "fuzz_$n: $k seed files in $B/corpus/$n"
        [ "$k" -gt 0 ] || bad=1
    done
    exit $bad ;;
run)
    secs=$1; shift
    : > $B/summary.txt
    one() {
        n=$1
        mkdir -p $B/corpus/$n $B/crashes/$n
        # -rss_limit_mb / -malloc_limit_mb: an input that makes a loader allocate gigabytes is a bug
        # too (a header that claims more than the file holds)
        $B/fuzz/fuzz_$n -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20 \
            -artifact_prefix=$B/crashes/$n/ -print_final_stats=1 $B/corpus/$n > $B/fuzz_$n.log 2>&1
        rc=$?
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' $B/fuzz_$n.log | grep -o '[0-9]*$')
        cov=$(grep -o 'cov: [0-9]*' $B/fuzz_$n.log | tail -1)
        crashes=$(ls $B/crashes/$n | wc -l)
        echo "fuzz_$n: exit $rc, ${runs:-?} executions in ${secs} s, $cov, $crashes crash files" >> $B/summary.txt
    }
    set -- "$@"
    while [ $# -gt 0 ]; do
        one "$1" &
        if [ $# -gt 1 ]; then one "$2" & shift; fi
        shift
        wait
    done
    cat $B/summary.txt
    ! grep -qv ' 0 crash files' $B/summary.txt ;;
*)
    echo "usage: fuzz.sh corpus-check NAME... | run SECONDS NAME..." >&2; exit 2 ;;
esac
