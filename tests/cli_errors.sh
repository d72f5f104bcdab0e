#!/usr/bin/env bash
# Bad input on the command line: one line naming the problem, non-zero exit, never a crash.
set -u
bistro=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

expect_error() {  # expect_error "fragment" args...
  local fragment=$1
  shift
  local out rc
  out=$("$bistro" "$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -eq 0 || $rc -ge 128 ]]; then
    echo "FAIL: bistro $* exited $rc"; fails=$((fails + 1)); return
  fi
  if [[ $out != *"$fragment"* ]]; then
    echo "FAIL: bistro $*: expected '$fragment' in: $out"; fails=$((fails + 1)); return
  fi
  echo "ok: bistro $* -> $out"
}

expect_error "unknown model preset 'huge'" model info --preset huge
expect_error "unknown model preset 'huge'" train --preset huge --steps 1
expect_error "invalid --device 'gpu'" train --device gpu --steps 1
expect_error "--device cuda:1: CUDA is not available" train --device cuda:1 --steps 1
expect_error "invalid --dtype 'fp8'" bench train --dtype fp8 --steps 1
expect_error "dct-topk and slice run on the CPU only" experiment converge --device cuda --methods slice
echo '{"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 8,
       "vocab_size": 300, "max_position_embeddings": 64}' > "$tmp/bad.json"
expect_error "num_attention_heads (3) does not divide hidden_size (64)" model info --config "$tmp/bad.json"
expect_error "config.json is missing" model info --checkpoint "$tmp/nowhere"
"$bistro" model init --preset tiny --out "$tmp/ck" >/dev/null || { echo "FAIL: model init"; fails=$((fails + 1)); }
head -c 1000 "$tmp/ck/model.safetensors" > "$tmp/trunc" && mv "$tmp/trunc" "$tmp/ck/model.safetensors"
expect_error "model.safetensors" model info --checkpoint "$tmp/ck"
expect_error "text of 5 bytes is too short" train --steps 1 --text <(printf 'hello')
expect_error "does not exist" train --steps 1 --dataset "$tmp/no-such-dataset"
mkdir -p "$tmp/emptyds"
expect_error "no .jsonl or .txt files" data pages --window 1 --dataset "$tmp/emptyds"
printf '{"text": "too few rows for a page"}\n' > "$tmp/emptyds/short.jsonl"
expect_error "no config holds a full page" data pages --window 1 --dataset "$tmp/emptyds"
expect_error "unknown batch layout 'zigzag'" train --steps 1 --layout zigzag
expect_error "tokenizer $tmp/none.model does not exist" train --steps 1 --tokenizer "$tmp/none.model"
expect_error "invalid hex" data pages --window 1 --block-hash xyz
expect_error "no such object" bucket stat "file://$tmp/bk" missing.bin
expect_error "unsupported bucket URL" bucket ls "ftp://host/x"
expect_error "has an empty, '.' or '..' segment" bucket put "file://$tmp/bk" ../x "$tmp/bad.json"
AWS_ACCESS_KEY_ID= expect_error "no credentials" bucket ls s3://some-bucket

# Wallets: create, show, sign, verify round trip; refusals named.
export BISTRO_WALLET_PASSWORD=pw
"$bistro" wallet new --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h >/dev/null || { echo "FAIL: wallet new"; fails=$((fails + 1)); }
expect_error "exists; pass --overwrite" wallet new --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h
addr=$("$bistro" wallet show --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h | awk '/hotkey/ {print $2}')
sig=$("$bistro" wallet sign --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --message hi)
[[ $("$bistro" wallet verify --address "$addr" --message hi --signature "$sig") == valid ]] || { echo "FAIL: wallet verify"; fails=$((fails + 1)); }
expect_error "checksum mismatch" wallet verify --address 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ --message hi --signature "$sig"
expect_error "not a BIP39 English word" wallet regen --wallet.path "$tmp/w" --wallet.name d --mnemonic "not a real phrase at all here ok fine twelve words now"

# Chain: a local chain end to end from the CLI; subtensor's error names on refusal.
chain="$tmp/chain.db"
"$bistro" chain init --subtensor.network "$chain" --block-time 60 --tempo 2 >/dev/null || { echo "FAIL: chain init"; fails=$((fails + 1)); }
expect_error "already exists" chain init --subtensor.network "$chain"
"$bistro" chain register --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h >/dev/null || { echo "FAIL: chain register"; fails=$((fails + 1)); }
expect_error "UidsLengthExceedUidsInSubNet" chain weights --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --uids 0,5 --weights 1,1
expect_error "SubnetNotExists" chain metagraph --subtensor.network "$chain" --netuid 7
expect_error "MechanismDoesNotExist" chain weights --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --uids 0 --weights 1 --mechid 1
expect_error "--mechid" chain get-weights --subtensor.network "$chain" --mechid 256
expect_error "TooManyFieldsInCommitmentInfo" chain commit --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --data "$(head -c 400 /dev/zero | tr '\0' x)"
"$bistro" chain metagraph --subtensor.network "$chain" | grep -q "1 neurons" || { echo "FAIL: chain metagraph"; fails=$((fails + 1)); }
head -c 3000 /dev/urandom > "$tmp/corrupt.db"
expect_error "corrupt.db" chain status --subtensor.network "$tmp/corrupt.db"
expect_error "unknown hyperparameter 'tempoo'" chain init --subtensor.network "$tmp/c2.db" --hparams <(echo '{"tempoo": 3}')

# Neurons: refusals before any work, each naming the problem.
"$bistro" wallet new --wallet.path "$tmp/w" --wallet.name u --wallet.hotkey h >/dev/null || { echo "FAIL: wallet new u"; fails=$((fails + 1)); }
expect_error "SubnetNotExists" miner --subtensor.network "$chain" --netuid 7 --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --bucket "file://$tmp/mb"
expect_error "is not registered on subnet 1 (pass --register" miner --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name u --wallet.hotkey h --bucket "file://$tmp/mb"
expect_error "--device cuda: CUDA is not available" miner --device cuda --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --bucket "file://$tmp/mb"
expect_error "invalid --dtype 'fp16'" validator --dtype fp16 --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h
echo '{"codec": "slice"}' > "$tmp/slice.json"
expect_error "codec slice (protocol v1) runs on the CPU in fp32 only" miner --dtype bf16 --hparams "$tmp/slice.json" --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --bucket "file://$tmp/mb"
expect_error "--bucket is required" miner --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h
expect_error "unknown --scoring 'best'" validator --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --scoring best
echo '{"blocks_per_windw": 3}' > "$tmp/hp.json"
expect_error "unknown hparam 'blocks_per_windw'" miner --subtensor.network "$chain" --wallet.path "$tmp/w" --wallet.name c --wallet.hotkey h --hparams "$tmp/hp.json" --bucket "file://$tmp/mb"
expect_error "--validator-cheat honest: want a dishonest or slow kind" localnet --validator-cheat honest
expect_error "--stakes gives 3 stakes for 1 validators" localnet --stakes 3,2,1
expect_error "the first validator (the lead) must hold the most stake" localnet --validators 2 --stakes 5,9
expect_error "unreachable after" chain status --subtensor.network ws://127.0.0.1:1

# bistro eval: the checkpoint, its tokenizer and the task file are named with the reason.
"$bistro" model init --preset tiny --out "$tmp/ck" >/dev/null || { echo "FAIL: model init"; fails=$((fails + 1)); }
printf '{"query": "q", "choices": ["a"], "gold": 0}\n{"query": "q", "choices": ["a", "b"], "gold": 5}\n' > "$tmp/tasks.jsonl"
expect_error "$tmp/tasks.jsonl:2: \"gold\" 5 is not the index of one of its 2 choices" eval "$tmp/ck" --tasks "$tmp/tasks.jsonl"
expect_error "file://$tmp/nobucket: no published checkpoint (checkpoints/latest.json is missing)" eval "file://$tmp/nobucket"
rm "$tmp/ck/tokenizer.model"
expect_error "checkpoint $tmp/ck: no tokenizer files (tokenizer.model is missing" eval "$tmp/ck"
expect_error "checkpoint $tmp/missing: config.json is missing" eval "$tmp/missing"

if [[ $fails -gt 0 ]]; then echo "$fails CLI error check(s) failed"; exit 1; fi
echo "all CLI error checks passed"
