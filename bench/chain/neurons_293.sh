#!/usr/bin/env bash
# By hand, not in CI: a bistro miner and validator over a few windows on the spec-293 runtime,
# with no flag beyond the standard layout's (issue: today's Bittensor; docs/benchmarks.md).
#   ../shared/subtensor/start.sh start --spec 293    (chopsticks on ws://127.0.0.1:8765)
#   bench/chain/neurons_293.sh [build/bistro] [WINDOWS=8]
# Blocks every 1.5 s; subnet 1 at tempo 9 with commit-reveal on (spec 293 has no
# CommitRevealWeightsVersion: bistro uses hash commits, revealed in the epoch the chain expects);
# the validator's stake is written as alpha (TotalHotkeyAlpha, TotalHotkeyShares, Alpha). Both
# neurons register themselves (--register), publish their buckets as commitments, and run WINDOWS
# windows; then the script reads back what the chain holds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bistro=${1:-$root/build/bistro}
windows=${2:-8}
node=ws://127.0.0.1:8765
chop=${SUBTENSOR_DIR:-/tmp/subtensor-chop}
tmp=${KEEP_DIR:-$(mktemp -d)}
export BISTRO_HOME=$tmp/home
(cd "$chop" && exec node blocks.mjs 100000 1500 "$node") >"$tmp/blocks.log" 2>&1 &
blocks=$!
trap 'kill $blocks 2>/dev/null' EXIT
w=$tmp/wallets
keys() { "$bistro" wallet show --wallet.path "$w" --wallet.name "$1" --wallet.hotkey h | awk '{print $2}' | paste -sd' '; }
for n in miner validator; do
  "$bistro" wallet new --wallet.path "$w" --wallet.name $n --wallet.hotkey h --no-password >/dev/null
done
read -r mcold mhot < <(keys miner)
read -r vcold vhot < <(keys validator)
fund() { echo "[[[\"$1\"],{\"providers\":1,\"data\":{\"free\":\"1000000000000000\"}}]]"; }
bits=9223372036854775808000000000000  # 500 alpha (500e9 rao) as U64F64 shares
(cd "$chop" && node set-storage.mjs "{\"System\":{\"Account\":[[[\"$mcold\"],{\"providers\":1,\"data\":{\"free\":\"1000000000000000\"}}],
    [[\"$vcold\"],{\"providers\":1,\"data\":{\"free\":\"1000000000000000\"}}]]},
  \"SubtensorModule\":{\"WeightsSetRateLimit\":[[[1],1]],\"Tempo\":[[[1],9]],
  \"CommitRevealWeightsEnabled\":[[[1],true]],\"RevealPeriodEpochs\":[[[1],1]],
  \"TotalHotkeyAlpha\":[[[\"$vhot\",1],\"500000000000\"]],
  \"TotalHotkeyShares\":[[[\"$vhot\",1],{\"bits\":\"$bits\"}]],
  \"Alpha\":[[[\"$vhot\",\"$vcold\",1],{\"bits\":\"$bits\"}]]}}" "$node")
common=(--subtensor.network "$node" --netuid 1 --wallet.path "$w" --wallet.hotkey h --register
  --windows "$windows" --threads 1)
"$bistro" validator "${common[@]}" --wallet.name validator --bucket "file://$tmp/bucket-v" \
  >"$tmp/validator.log" 2>&1 &
val=$!
sleep 5
"$bistro" miner "${common[@]}" --wallet.name miner --bucket "file://$tmp/bucket-m" \
  >"$tmp/miner.log" 2>&1 &
min=$!
rc=0
wait $min || rc=$?
echo "miner exit $rc"
wait $val || rc=$?
echo "validator exit $rc"
echo "--- validator (last lines)"; tail -n 25 "$tmp/validator.log"
echo "--- miner (last lines)"; tail -n 12 "$tmp/miner.log"
echo "--- chain"
"$bistro" chain metagraph --subtensor.network "$node" --netuid 1 | head -8
"$bistro" chain get-weights --subtensor.network "$node" --netuid 1 --json
"$bistro" chain commitments --subtensor.network "$node" --netuid 1
echo "logs in $tmp"
exit $rc
