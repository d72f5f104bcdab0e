#!/usr/bin/env bash
# By hand, not in CI: a real subtensor runtime decrypts bistro's timelocked weight commit itself
# (issue: today's Bittensor; docs/benchmarks.md records what it printed).
#   ../shared/subtensor/start.sh start --spec 293    (chopsticks on ws://127.0.0.1:8765)
#   bench/chain/timelock_293.sh [build/bistro]
# It makes blocks itself (blocks.mjs), turns commit-reveal on for subnet 1 (tempo 10, reveal
# period 1), registers a bistro wallet, and then:
#   1. `bistro chain weights` with BISTRO_TEST_TIMELOCK=3@1000 sends commit_crv3_weights aimed at
#      drand quicknet round 1000; the runtime stores it in CRV3WeightCommits;
#   2. round 1000's real pulse (its signature from pallets/drand's tests) is written into
#      Drand.Pulses with dev_setStorage;
#   3. at the reveal block bistro named, the runtime decrypts the commit with that signature (tle,
#      arkworks), checks the payload, and sets the weights: they appear in Weights;
#   4. a second commit, aimed at round 1001 whose pulse never comes, is dropped unrevealed.
set -euo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" 10
crv3() {  # the runtime's stored version-3 commits: (epoch, hotkey, bytes, round)
  cat >"$chop/crv3.mjs" <<'JS'
import { ApiPromise, WsProvider } from '@polkadot/api';
const api = await ApiPromise.create({ provider: new WsProvider(process.argv[2]), noInitWarn: true });
for (const [k, v] of await api.query.subtensorModule.crv3WeightCommits.entries(1))
  for (const [who, commit, round] of v) console.log(`epoch ${k.args[1]} ${who} ${commit.length} bytes round ${round}`);
await api.disconnect();
JS
  (cd "$chop" && node crv3.mjs "$node")
}
wait_block() { while (( $(block) <= $1 )); do sleep 1; done; }

# Spec 293 reveals nothing before epoch 2 (reveal_crv3_commits: "Too early"): start in epoch 2.
wait_block 20
echo "1. block $(block): uid $uid commits its weights, aimed at round 1000"
BISTRO_TEST_TIMELOCK=3@1000 "$bistro" chain weights "${net[@]}" --uids "$uid" --weights 1 \
  2>&1 | tee "$tmp/1.txt"
reveal=$(grep -o 'revealed by the chain from block [0-9]*' "$tmp/1.txt" | awk "{print \$NF}")
crv3 | tee "$tmp/crv3.txt"
expect 'grep -q "$hot.*round 1000" "$tmp/crv3.txt"' "the runtime holds the commit for round 1000"
expect '[[ $(weights) == None ]]' "nothing visible after the commit"
sig=b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39
rnd=$(printf %s "$sig" | xxd -r -p | sha256sum | awk '{print $1}')
echo "2. block $(block): round 1000's pulse written to Drand.Pulses"
(cd "$chop" && node set-storage.mjs "{\"Drand\":{\"Pulses\":[[[1000],{\"round\":1000,
  \"randomness\":\"0x$rnd\",\"signature\":\"0x$sig\"}]]}}" "$node")
echo "3. waiting for the reveal block $reveal"
wait_block "$reveal"
expect '[[ $(weights) == "[[$uid, 65535]]" ]]' "the runtime decrypted and set the weights: $(weights)"
expect '! crv3 | grep -q "$hot"' "the commit is used up"
echo "4. block $(block): a second commit aimed at round 1001, whose pulse never comes"
BISTRO_TEST_TIMELOCK=3@1001 "$bistro" chain weights "${net[@]}" --uids "$uid" --weights 1 \
  2>&1 | tee "$tmp/4.txt"
reveal=$(grep -o 'revealed by the chain from block [0-9]*' "$tmp/4.txt" | awk "{print \$NF}")
wait_block "$reveal"
expect '! crv3 | grep -q "$hot"' "dropped at its reveal block without a pulse"
expect '[[ $(weights) == "[[$uid, 65535]]" ]]' "the weights are still the first commit's"
echo "$fails failures"
exit $((fails > 0))
