#!/usr/bin/env bash
# By hand, not in CI: the bittensor SDK reads what bistro writes on a real subtensor runtime, and
# bistro reads what the SDK writes (issue: "the SDK reads what bistro writes").
#   ../shared/subtensor/start.sh start      (chopsticks on ws://127.0.0.1:8765)
#   bench/sdk/readback.sh [build/bistro]
# It makes blocks itself (blocks.mjs), funds two coldkeys, registers a bistro wallet and an SDK
# wallet with bistro, has each side commit and set weights, and compares every read both ways.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bistro=${1:-$root/build/bistro}
node=ws://127.0.0.1:8765
chop=${SUBTENSOR_DIR:-/tmp/subtensor-chop}
venv=$root/.venv-sdk
if [[ ! -x $venv/bin/python ]]; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps -r "$root/bench/sdk/requirements-sdk.txt"
fi
sdk=(timeout 180 "$venv/bin/python" -u "$root/bench/sdk/readback.py" "$node")
tmp=$(mktemp -d)
(cd "$chop" && exec node blocks.mjs 100000 1500 "$node") >"$tmp/blocks.log" 2>&1 &
blocks=$!
trap 'kill $blocks 2>/dev/null; rm -rf "$tmp"' EXIT
w=$tmp/wallets
net=(--subtensor.network "$node" --netuid 1 --wallet.path "$w")

"$bistro" wallet new --wallet.path "$w" --wallet.name ours --wallet.hotkey h --no-password >/dev/null
read -r ours_cold ours_hot < <("$bistro" wallet show --wallet.path "$w" --wallet.name ours \
  --wallet.hotkey h | awk '{print $2}' | paste -sd' ')
read -r sdk_cold sdk_hot < <("${sdk[@]}" wallet "$w" theirs h)
fund='{"providers":1,"data":{"free":"1000000000000000"}}'
stake() { echo "[[\"$1\",1],\"500000000000\"]"; }
(cd "$chop" && node set-storage.mjs "{\"System\":{\"Account\":[[[\"$ours_cold\"],$fund],[[\"$sdk_cold\"],$fund]]},
  \"SubtensorModule\":{\"WeightsSetRateLimit\":[[[1],1]],
  \"TotalHotkeyAlpha\":[$(stake "$ours_hot"),$(stake "$sdk_hot")],
  \"TotalHotkeyShares\":[$(stake "$ours_hot"),$(stake "$sdk_hot")],
  \"Alpha\":[[[\"$ours_hot\",\"$ours_cold\",1],\"500000000000\"],[[\"$sdk_hot\",\"$sdk_cold\",1],\"500000000000\"]]}}" "$node")
"$bistro" chain register "${net[@]}" --wallet.name ours --wallet.hotkey h
"$bistro" chain register "${net[@]}" --wallet.name theirs --wallet.hotkey h
uids=$("$bistro" chain metagraph --subtensor.network "$node" --netuid 1 --json |
  /usr/bin/python3 -c "import json,sys; m={n['hotkey']:n['uid'] for n in json.load(sys.stdin)['neurons']}; print(m['$ours_hot'], m['$sdk_hot'])")
read -r ours_uid sdk_uid <<<"$uids"
echo "bistro's hotkey is uid $ours_uid, the SDK's uid $sdk_uid"

# Each side writes.
"$bistro" chain commit "${net[@]}" --wallet.name ours --wallet.hotkey h --data "bistro:written-by-bistro"
"$bistro" chain weights "${net[@]}" --wallet.name ours --wallet.hotkey h --uids "$ours_uid,$sdk_uid" --weights 1,3
echo "the SDK commits and sets weights (after the weights rate limit's blocks)"
sleep 6
"${sdk[@]}" commit "$w" theirs h "sdk:written-by-the-sdk"
"${sdk[@]}" weights "$w" theirs h "$ours_uid,$sdk_uid" 2,1

# Each side reads; the comparison names every mismatch.
echo "both sides read"
"${sdk[@]}" read 1 >"$tmp/sdk.json"
"$bistro" chain metagraph --subtensor.network "$node" --netuid 1 --json >"$tmp/meta.json"
"$bistro" chain get-weights --subtensor.network "$node" --netuid 1 --json >"$tmp/weights.json"
"$bistro" chain commitments --subtensor.network "$node" --netuid 1 >"$tmp/commitments.txt"
/usr/bin/python3 - "$tmp" "$ours_hot" "$sdk_hot" "$ours_uid" "$sdk_uid" <<'PY'
import json, pathlib, sys
tmp = pathlib.Path(sys.argv[1]); ours_hot, sdk_hot = sys.argv[2], sys.argv[3]
ours_uid, sdk_uid = sys.argv[4], sys.argv[5]
sdk = json.loads((tmp / "sdk.json").read_text())
meta = json.loads((tmp / "meta.json").read_text())
weights = json.loads((tmp / "weights.json").read_text())
commits = dict(l.split(None, 1) for l in (tmp / "commitments.txt").read_text().splitlines() if l.strip())
fails = 0
def expect(ok, what):
    global fails
    print(("ok: " if ok else "FAIL: ") + what)
    fails += not ok
expect(sdk["commitments"].get(ours_hot) == "bistro:written-by-bistro",
       f"the SDK reads bistro's commitment: {sdk['commitments'].get(ours_hot)!r}")
expect(commits.get(sdk_hot, "").strip() == "sdk:written-by-the-sdk",
       f"bistro reads the SDK's commitment: {commits.get(sdk_hot)!r}")
expect(sdk["weights"].get(ours_uid) == weights.get(ours_uid),
       f"bistro's weights, read by the SDK {sdk['weights'].get(ours_uid)} and by bistro {weights.get(ours_uid)}")
expect(sdk["weights"].get(sdk_uid) == weights.get(sdk_uid),
       f"the SDK's weights, read by the SDK {sdk['weights'].get(sdk_uid)} and by bistro {weights.get(sdk_uid)}")
expect(sdk["weights"] == weights, f"every weight row agrees ({len(weights)} rows)")
ours = {n["uid"]: n for n in meta["neurons"]}
expect(len(ours) == len(sdk["neurons"]), f"{len(ours)} neurons in bistro's metagraph, {len(sdk['neurons'])} in the SDK's reads")
for n in sdk["neurons"]:
    b = ours.get(n["uid"], {})
    same = all(b.get(k) == n[k] for k in ("hotkey", "coldkey", "block_at_registration"))
    expect(same, f"uid {n['uid']}: hotkey, coldkey and registration block agree ({n['hotkey'][:10]}.., block {n['block_at_registration']})")
print("all SDK read-backs agree" if not fails else f"{fails} mismatches")
sys.exit(1 if fails else 0)
PY
