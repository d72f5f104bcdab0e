#!/usr/bin/env bash
# Data-parallel ranks of `bistro train` (runtime/distributed.hpp), as real processes over c10d's
# gloo on loopback: --ranks 2 and a torchrun-style launch give the one-rank losses on the same
# global batch; bad launches end with one clear line, never a hang.
set -u
bistro=$1
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
head -c 200000 /dev/urandom | base64 > "$tmp/text.txt"
args=(train --text "$tmp/text.txt" --steps 4 --micro-batches 3 --batch 2 --seq-len 32 --threads 1)
losses() { grep -o 'loss [0-9.]*' "$1" | awk '{print $2}'; }
# |a - b| <= 1e-5 (fp32 sums in another order; the losses print with 6 decimals).
same() { paste <(losses "$1") <(losses "$2") |
  awk 'NF != 2 {bad = 1} {d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5) bad = 1} END {exit bad || NR != 4}'; }

"$bistro" "${args[@]}" > "$tmp/one.txt" 2>&1 || bad "one rank failed: $(tail -1 "$tmp/one.txt")"
"$bistro" "${args[@]}" --ranks 2 > "$tmp/two.txt" 2>&1 || bad "--ranks 2 failed: $(tail -1 "$tmp/two.txt")"
if same "$tmp/one.txt" "$tmp/two.txt"; then ok "--ranks 2 losses equal one rank's: $(losses "$tmp/two.txt" | paste -sd' ')"
else bad "--ranks 2 losses $(losses "$tmp/two.txt" | paste -sd' ') vs one rank's $(losses "$tmp/one.txt" | paste -sd' ')"; fi
"$bistro" "${args[@]}" --ranks 3 > "$tmp/three.txt" 2>&1 || bad "--ranks 3 failed: $(tail -1 "$tmp/three.txt")"
if same "$tmp/one.txt" "$tmp/three.txt"; then ok "--ranks 3 (one micro-batch each) equals one rank"
else bad "--ranks 3 losses $(losses "$tmp/three.txt" | paste -sd' ')"; fi
tokens() { grep -o 'trained on [0-9]* counted tokens' "$1"; }
[[ -n $(tokens "$tmp/one.txt") && $(tokens "$tmp/one.txt") == $(tokens "$tmp/two.txt") ]] &&
  ok "the ranks shared one global batch: $(tokens "$tmp/two.txt")" ||
  bad "tokens: one rank '$(tokens "$tmp/one.txt")', two '$(tokens "$tmp/two.txt")'"
grep -q "all-reduce:" "$tmp/two.txt" && ok "the all-reduce is reported: $(grep all-reduce: "$tmp/two.txt")" ||
  bad "no all-reduce summary"

# torchrun's way: each rank launched with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
# Below the kernel's ephemeral range (32768 and up by default): a port from it can be any
# client socket's source port at that moment, and the rendezvous then fails to bind (seen in CI).
port=$((20000 + RANDOM % 12000))
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$bistro" "${args[@]}" > "$tmp/env$r.txt" 2>&1 &
  pids+=($!)
done
wait "${pids[0]}" && wait "${pids[1]}" || bad "a torchrun-style rank failed: $(cat "$tmp"/env*.txt | tail -2)"
if same "$tmp/one.txt" "$tmp/env0.txt"; then ok "torchrun-style launch equals one rank"
else bad "torchrun-style losses $(losses "$tmp/env0.txt" | paste -sd' ')"; fi
[[ ! -s "$tmp/env1.txt" ]] && ok "rank 1 printed nothing" || bad "rank 1 printed: $(head -2 "$tmp/env1.txt")"

expect_error() {  # expect_error "fragment" seconds env... -- args...
  local fragment=$1 limit=$2 envs=() out rc t0
  shift 2
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  t0=$SECONDS
  out=$(env "${envs[@]}" timeout 60 "$bistro" "$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -eq 0 || $rc -ge 124 ]]; then bad "${envs[*]} bistro $*: exit $rc"; return; fi
  if [[ $out != *"$fragment"* ]]; then bad "${envs[*]}: expected '$fragment' in: $out"; return; fi
  if (( SECONDS - t0 > limit )); then bad "${envs[*]}: took $((SECONDS - t0)) s"; return; fi
  ok "${envs[*]} -> $(echo "$out" | tail -1) ($((SECONDS - t0)) s)"
}
expect_error "WORLD_SIZE is set but RANK is not" 10 WORLD_SIZE=2 -- "${args[@]}"
expect_error "RANK is set but WORLD_SIZE is not" 10 RANK=0 -- "${args[@]}"
expect_error "RANK=2 with WORLD_SIZE=2" 10 RANK=2 WORLD_SIZE=2 -- "${args[@]}"
expect_error "MASTER_PORT=http: not a non-negative integer" 10 RANK=0 WORLD_SIZE=2 MASTER_PORT=http -- "${args[@]}"
expect_error "--ranks 3 but WORLD_SIZE=2" 10 RANK=0 WORLD_SIZE=2 -- "${args[@]}" --ranks 3
# Nobody serves the store: rank 1 gives up after the timeout with a line naming the address.
expect_error "could not join the group at 127.0.0.1:$port" 20 RANK=1 WORLD_SIZE=2 \
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port -- "${args[@]}" --ranks-timeout 3

# Ranks whose arguments differ are refused at the start.
port=$((port + 1))
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bistro" "${args[@]}" \
  > "$tmp/d0.txt" 2>&1 &
pids+=($!)
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bistro" "${args[@]}" --lr 0.002 \
  > "$tmp/d1.txt" 2>&1
rc1=$?
wait "${pids[-1]}"
rc0=$?
if [[ $rc0 -ne 0 && $rc1 -ne 0 ]] && grep -q "rank 1's training arguments do not match rank 0's" "$tmp/d0.txt"; then
  ok "differing arguments refused: $(tail -1 "$tmp/d0.txt")"
else bad "differing arguments: rc $rc0/$rc1: $(cat "$tmp/d0.txt" "$tmp/d1.txt" | tail -3)"; fi

# A rank that dies mid-run ends the other's run with one line, within the timeout.
port=$((port + 1))
long=(train --text "$tmp/text.txt" --steps 100000 --batch 2 --seq-len 32 --threads 1 --ranks-timeout 5)
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bistro" "${long[@]}" > "$tmp/k0.txt" 2>&1 &
r0=$!
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bistro" "${long[@]}" > "$tmp/k1.txt" 2>&1 &
r1=$!
pids+=($r0 $r1)
for _ in $(seq 100); do grep -q "step    3" "$tmp/k0.txt" && break; sleep 0.2; done
t0=$SECONDS
kill -9 $r1
wait $r0
rc=$?
if [[ $rc -ne 0 ]] && (( SECONDS - t0 <= 15 )) && grep -q "a rank died or timed out" "$tmp/k0.txt"; then
  ok "rank 1 killed: rank 0 stopped in $((SECONDS - t0)) s: $(tail -1 "$tmp/k0.txt")"
else bad "rank 1 killed: rank 0 rc $rc after $((SECONDS - t0)) s: $(tail -1 "$tmp/k0.txt")"; fi

echo "$fails failures"
exit $((fails > 0))
