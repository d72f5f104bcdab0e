#!/usr/bin/env bash
# End to end on the embedded defaults with fast blocks: 2 honest miners, a lazy one (uploads its
# starting values), a garbage one (random bytes) and a validator that is SIGKILLed mid-run and
# restarted. Checks: the master loss falls, the lazy miner ends with less incentive than each
# honest one, the garbage miner scores zero with a reason and nobody crashes, and the restarted
# validator resumed with every miner's score.
# With a second argument "dct": the DeMo codec (dct-topk) instead of slices, 4 windows, no kill.
set -u
bistro=$1
mode=${2:-slice}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export BISTRO_HOME=${BISTRO_HOME:-$HOME/.bistro}
args=(--miners 4 --lazy 1 --garbage 1 --windows 5 --block-time 0.8 --kill-validator)
windows=5
if [[ $mode == dct ]]; then
  echo '{"codec": "dct-topk", "dct_k": 32, "temperature": 20}' > "$dir/hparams.json"
  args=(--miners 4 --lazy 1 --garbage 1 --windows 4 --block-time 1 --hparams "$dir/hparams.json")
  windows=4
fi
if ! "$bistro" localnet --dir "$dir/run" "${args[@]}" > "$dir/out.txt" 2>&1; then
  cat "$dir/out.txt"; tail -20 "$dir"/run/logs/*.log; echo "FAIL: localnet exited non-zero"; exit 1
fi
cat "$dir/out.txt"
/usr/bin/python3 - "$dir/run" "$windows" "$mode" <<'PY'
import json, sys, pathlib
run = pathlib.Path(sys.argv[1])
windows, mode = int(sys.argv[2]), sys.argv[3]
s = json.loads((run / "report" / "summary.json").read_text())
fails = []
def expect(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok: fails.append(what)
expect(s["windows"] == windows, f"validator finished {windows} windows (got {s['windows']})")
expect(s["last_master_loss"] < s["first_master_loss"],
       f"master loss falls: {s['first_master_loss']:.4f} -> {s['last_master_loss']:.4f}")
final = s["final"]; scores = s["final_scores"]
kind = {uid: v["kind"] for uid, v in final.items()}
honest = [u for u, k in kind.items() if k == "honest"]
lazy = [u for u, k in kind.items() if k == "lazy"][0]
garbage = [u for u, k in kind.items() if k == "garbage"][0]
for u in honest:
    expect(final[lazy]["incentive"] < final[u]["incentive"],
           f"lazy uid {lazy} incentive {final[lazy]['incentive']:.4f} < honest uid {u} {final[u]['incentive']:.4f}")
    expect(scores[u]["score"] > scores[lazy]["score"], f"honest uid {u} outscores the lazy miner")
expect(scores[garbage]["score"] == 0 and scores[garbage]["status"] != "ok",
       f"garbage uid {garbage} scores 0 ({scores[garbage]['status'][:60]})")
for p in s["processes"]:
    expect(p["exit"] in (0, 15 + 128) , f"{p['name']} exited cleanly ({p['exit']})")
if mode != "dct":
    expect(s["validator_restarted"], "the validator was killed and restarted")
    log = (run / "logs" / "validator.log").read_text()
    expect("resumed at window" in log and "with 4 scores" in log, "the restarted validator kept all 4 scores")
for f in ["metrics.jsonl", "metrics.csv", "report.html"]:
    expect((run / "report" / f).stat().st_size > 100, f"report/{f} written")
sys.exit(1 if fails else 0)
PY
