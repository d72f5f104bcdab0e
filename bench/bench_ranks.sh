#!/usr/bin/env bash
# Data-parallel ranks on this host's CPU: `bistro train` with 2 ranks x 1 thread against 1 rank x 2
# threads (and 1 x 1), the same global batch, alternating runs; tokens/s from the steps after the
# first, and the all-reduce's time and bytes per step. docs/benchmarks.md records the results.
#   bench/bench_ranks.sh [build/bistro] [PRESET=tiny] [RUNS=3]
set -euo pipefail
bistro=${1:-build/bistro}
preset=${2:-tiny}
runs=${3:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 400000 /dev/urandom | base64 > "$tmp/text.txt"
args=(train --preset "$preset" --text "$tmp/text.txt" --steps 8 --micro-batches 4 --batch 4
  --seq-len 128)
rate() { grep -o '[0-9]* tok/s' "$1" | tail -n +2 | awk '{s += $1; n++} END {printf "%.0f", s / n}'; }
declare -A sum
for run in $(seq "$runs"); do
  for cfg in "1x2:--threads 2" "2x1:--threads 1 --ranks 2" "1x1:--threads 1"; do
    name=${cfg%%:*}
    # shellcheck disable=SC2086
    "$bistro" "${args[@]}" ${cfg#*:} > "$tmp/$name.txt" 2>&1
    r=$(rate "$tmp/$name.txt")
    sum[$name]=$(( ${sum[$name]:-0} + r ))
    echo "run $run $name: $r tok/s $(grep -o 'all-reduce: .*' "$tmp/$name.txt" || true)"
  done
done
for name in 1x1 1x2 2x1; do echo "$name mean: $(( ${sum[$name]} / runs )) tok/s"; done
echo "2 ranks x 1 thread / 1 rank x 2 threads: $(echo "${sum[2x1]} ${sum[1x2]}" | awk '{printf "%.2f", $1 / $2}')"
