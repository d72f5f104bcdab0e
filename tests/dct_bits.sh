#!/usr/bin/env bash
# Runs the dct_bits builds given as arguments and fails unless they all print the same hash.
# A build for an instruction set this CPU lacks (name ending in _avx2) is skipped.
set -euo pipefail
first=""
for exe in "$@"; do
  if [[ "$exe" == *_avx2 ]] && ! grep -qw avx2 /proc/cpuinfo; then
    echo "skip $exe (no AVX2 here)"
    continue
  fi
  out=$("$exe")
  echo "$(basename "$exe"): $out"
  if [[ -z "$first" ]]; then
    first=$out
  elif [[ "$out" != "$first" ]]; then
    echo "FAIL: $(basename "$exe") computes different bits" >&2
    exit 1
  fi
done
