# Sourced by the by-hand chain scripts (commit_reveal.sh, timelock_293.sh): blocks every 1.5 s
# from ../shared/subtensor's chopsticks, a bistro wallet registered on subnet 1 with commit-reveal
# on (reveal period 1) at the tempo given, and the helpers both read the chain with.
#   source lib.sh BISTRO TEMPO   -> bistro node chop tmp w net cold hot uid; block weights expect
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bistro=${1:-$root/build/bistro}
node=ws://127.0.0.1:8765
chop=${SUBTENSOR_DIR:-/tmp/subtensor-chop}
tmp=$(mktemp -d)
export BISTRO_HOME=$tmp/home
(cd "$chop" && exec node blocks.mjs 100000 1500 "$node") >"$tmp/blocks.log" 2>&1 &
blocks=$!
trap 'kill $blocks 2>/dev/null; rm -rf "$tmp"' EXIT
w=$tmp/wallets
net=(--subtensor.network "$node" --netuid 1 --wallet.path "$w" --wallet.name ours --wallet.hotkey h)
"$bistro" wallet new --wallet.path "$w" --wallet.name ours --wallet.hotkey h --no-password >/dev/null
read -r cold hot < <("$bistro" wallet show --wallet.path "$w" --wallet.name ours --wallet.hotkey h |
  awk '{print $2}' | paste -sd' ')
(cd "$chop" && node set-storage.mjs "{\"System\":{\"Account\":[[[\"$cold\"],{\"providers\":1,\"data\":{\"free\":\"1000000000000000\"}}]]},
  \"SubtensorModule\":{\"WeightsSetRateLimit\":[[[1],1]],\"Tempo\":[[[1],$2]],
  \"CommitRevealWeightsEnabled\":[[[1],true]],\"RevealPeriodEpochs\":[[[1],1]]}}" "$node")
"$bistro" chain register "${net[@]}"
uid=$("$bistro" chain metagraph --subtensor.network "$node" --netuid 1 --json |
  /usr/bin/python3 -c "import json,sys; print({n['hotkey']:n['uid'] for n in json.load(sys.stdin)['neurons']}['$hot'])")
block() { "$bistro" chain status --subtensor.network "$node" | awk '/^block/ {print $2}'; }
weights() { "$bistro" chain get-weights --subtensor.network "$node" --netuid 1 --json |
  /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('$uid') or None)"; }
fails=0
expect() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fails=$((fails + 1)); fi; }
