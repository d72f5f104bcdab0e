#!/usr/bin/env bash
# By hand, not in CI: bistro's hash commit-reveal against the real subtensor runtime (issue:
# "many validators"; docs/benchmarks.md records what it printed).
#   ../shared/subtensor/start.sh start      (chopsticks on ws://127.0.0.1:8765)
#   bench/chain/commit_reveal.sh [build/bistro]
# It makes blocks itself (blocks.mjs), turns commit-reveal on for subnet 1 (tempo 9, reveal period
# 1), registers a bistro wallet, and then, each time with `bistro chain weights` in a new process:
#   1. commits weights: the runtime accepts commit_weights; no weights are visible yet;
#   2. in the next epoch, sets other weights: the first commit is revealed from the salt kept
#      under $BISTRO_HOME/reveals (the runtime checks its hash) and the second is committed;
#   3. tampers with the kept salt, and in the next epoch sets weights again: bistro finds no commit
#      with that hash in the runtime's WeightCommits and drops it unsent, saying so (before it read
#      WeightCommits it sent the reveal, and the runtime refused it: InvalidRevealCommitHashNotMatch).
set -euo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" 9
"$bistro" chain status --subtensor.network "$node" --netuid 1 | grep -E "commit_reveal|tempo"
epoch() { echo $(( ($(block) + 2) / 10 )); }  # subtensor: (block + netuid + 1) / (tempo + 1)
next_epoch() { local e; e=$(epoch); while [[ $(epoch) == "$e" ]]; do sleep 1; done; }

echo "1. commit at block $(block) (epoch $(epoch)); uid $uid self-weights (no permit needed)"
"$bistro" chain weights "${net[@]}" --uids "$uid" --weights 1 2>&1 | tee "$tmp/1.txt"
store=$(ls "$BISTRO_HOME"/reveals/*/*.json)
expect '[[ $(weights) == None ]]' "nothing visible after the commit ($(weights))"
expect '[[ $(/usr/bin/python3 -c "import json; print(len(json.load(open(\"$store\"))))") == 1 ]]' \
  "one unrevealed commit kept in $store"
next_epoch
echo "2. block $(block) (epoch $(epoch)): a new process reveals it and commits again"
"$bistro" chain weights "${net[@]}" --uids "$uid" --weights 1 2>&1 | tee "$tmp/2.txt"
expect '[[ $(weights) != None ]]' "the revealed weights are on chain: $(weights)"
expect '! grep -q refused "$tmp/2.txt"' "the runtime accepted the reveal (its hash matched)"
/usr/bin/python3 - "$store" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j[0]["salt"][0] ^= 1; json.dump(j, open(sys.argv[1], "w"))
PY
next_epoch
echo "3. block $(block) (epoch $(epoch)): the kept salt was tampered with"
"$bistro" chain weights "${net[@]}" --uids "$uid" --weights 1 2>&1 | tee "$tmp/3.txt"
expect 'grep -q "dropped, not sent.*no such commit" "$tmp/3.txt"' \
  "bistro found no commit with the tampered hash on chain, sent nothing, and said so"
echo "$fails failures"
exit $((fails > 0))
