#!/usr/bin/env bash
# Data-parallel ranks on this host's CPU, 2 ranks x 1 thread against 1 rank x 2 threads (and
# 1 x 1), alternating runs. docs/benchmarks.md records the results.
#   train: `bistro train` on the same global batch: tokens/s from the steps after the first, and
#          the all-reduce's time and bytes per step
#   score: `bistro bench score`: the validator's seconds to measure one update
#   bench/bench_ranks.sh [build/bistro] [PRESET=tiny] [RUNS=3] [train|score]
set -euo pipefail
bistro=${1:-build/bistro}
preset=${2:-tiny}
runs=${3:-3}
what=${4:-train}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ $what == score ]]; then
  declare -A secs
  for run in $(seq "$runs"); do
    for cfg in "1x2:--threads 2" "2x1:--threads 1 --ranks 2" "1x1:--threads 1"; do
      name=${cfg%%:*}
      # shellcheck disable=SC2086
      line=$("$bistro" bench score --preset "$preset" --updates 4 ${cfg#*:})
      echo "run $run $name: $line"
      s=$(echo "$line" | grep -o '[0-9.]* s an update' | cut -d' ' -f1)
      secs[$name]=$(echo "${secs[$name]:-0} $s" | awk '{print $1 + $2}')
    done
  done
  for name in 1x1 1x2 2x1; do
    echo "$name mean: $(echo "${secs[$name]} $runs" | awk '{printf "%.3f", $1 / $2}') s an update"
  done
  echo "speed-up of 2 ranks x 1 thread over 1 rank x 2 threads: $(echo "${secs[1x2]} ${secs[2x1]}" | awk '{printf "%.2f", $1 / $2}')"
  exit 0
fi
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
