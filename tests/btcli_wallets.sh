#!/usr/bin/env bash
# Wallets both ways against the real btcli (bittensor-cli) and bittensor-wallet, from .venv-btcli
# (scripts/setup): a wallet btcli creates, with and without a coldkey password, loads, signs and
# registers in bistro; a wallet bistro creates is listed by btcli, signs through bittensor-wallet's
# keypair (bistro verifies it), and its encrypted coldkey opens in bittensor-wallet.
set -u
bistro=$1
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-btcli
[[ -x $venv/bin/btcli ]] || { echo "FAIL: $venv/bin/btcli is missing: run scripts/setup"; exit 1; }
ref=("$venv/bin/python" "$root/tests/reference/btcli_ref.py")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp  # btcli keeps its config under ~/.bittensor
fails=0
expect() {  # expect "what" command...: the command must succeed
  local what=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then echo "ok: $what"; else
    echo "FAIL: $what: $*"; cat "$tmp/out"; fails=$((fails + 1))
  fi
}
expect_eq() {  # expect_eq "what" got want
  if [[ $2 == "$3" ]]; then echo "ok: $1 ($2)"; else
    echo "FAIL: $1: got '$2', want '$3'"; fails=$((fails + 1))
  fi
}
expect_error() {  # expect_error "fragment" bistro-args...
  local fragment=$1 out rc
  shift
  out=$(BISTRO_WALLET_PASSWORD=${PW:-} "$bistro" "$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 0 && $rc -lt 128 && $out == *"$fragment"* ]]; then echo "ok: refused: $out"; else
    echo "FAIL: bistro $* (exit $rc): expected '$fragment' in: $out"; fails=$((fails + 1))
  fi
}
w=$tmp/wallets
chain=$tmp/chain.db
"$bistro" chain init --subtensor.network "$chain" --block-time 60 --tempo 2 >/dev/null
btcli=("$venv/bin/btcli" wallet create --wallet-path "$w" --hotkey h --n-words 12 --quiet)

# btcli -> bistro, without a password.
expect "btcli wallet create (no password)" "${btcli[@]}" --wallet-name plain --no-use-password
read -r cold hot < <("${ref[@]}" addresses "$w" plain h)
shown=$("$bistro" wallet show --wallet.path "$w" --wallet.name plain --wallet.hotkey h)
expect_eq "bistro reads btcli's addresses" "$shown" "$(printf 'coldkey %s\nhotkey  %s' "$cold" "$hot")"
sig=$("$bistro" wallet sign --wallet.path "$w" --wallet.name plain --wallet.hotkey h --message bistro)
expect_eq "bittensor-wallet verifies bistro's signature with btcli's hotkey" \
  "$("${ref[@]}" verify "$hot" bistro "$sig")" valid
expect "bistro registers btcli's wallet on the local chain" "$bistro" chain register \
  --subtensor.network "$chain" --wallet.path "$w" --wallet.name plain --wallet.hotkey h
expect_eq "the chain knows btcli's hotkey" \
  "$("$bistro" chain metagraph --subtensor.network "$chain" --json | grep -c "$hot")" 1

# btcli -> bistro, with a coldkey password (btcli asks on a terminal).
expect "btcli wallet create (password)" "${ref[@]}" tty "pass word" "${btcli[@]}" \
  --wallet-name locked --use-password
expect_eq "btcli encrypted the coldkey" "$(head -c 5 "$w/locked/coldkey")" '$NACL'
expect "bistro opens btcli's encrypted coldkey and registers" env BISTRO_WALLET_PASSWORD="pass word" \
  "$bistro" chain register --subtensor.network "$chain" --wallet.path "$w" --wallet.name locked \
  --wallet.hotkey h
PW=wrong expect_error "$w/locked/coldkey: wrong password" chain register \
  --subtensor.network "$chain" --wallet.path "$w" --wallet.name locked --wallet.hotkey h

# An ed25519 hotkey from btcli: named as unsupported.
expect "btcli wallet create (ed25519 hotkey)" "${btcli[@]}" --wallet-name ed --no-use-password \
  --hotkey-crypto-type ed25519
expect_error "$w/ed/hotkeys/h: key type ed25519 (cryptoType 0) is not supported" wallet show \
  --wallet.path "$w" --wallet.name ed --wallet.hotkey h

# bistro -> btcli and bittensor-wallet.
expect "bistro wallet new (password)" env BISTRO_WALLET_PASSWORD=pw9 "$bistro" wallet new \
  --wallet.path "$w" --wallet.name ours --wallet.hotkey hk
read -r cold hot < <("$bistro" wallet show --wallet.path "$w" --wallet.name ours --wallet.hotkey hk |
  awk '{print $2}' | paste -sd' ')
"$venv/bin/btcli" wallet list --wallet-path "$w" >"$tmp/list" 2>&1
expect_eq "btcli lists bistro's coldkey" "$(grep -c "Coldkey ours .*$cold" "$tmp/list")" 1
expect_eq "btcli lists bistro's hotkey" "$(grep -c "Hotkey hk .*$hot" "$tmp/list")" 1
sig=$("${ref[@]}" sign "$w" ours hk "from bittensor-wallet")
expect_eq "bistro verifies bittensor-wallet's signature with bistro's hotkey" \
  "$("$bistro" wallet verify --address "$hot" --message "from bittensor-wallet" --signature "$sig")" valid
expect_eq "bittensor-wallet decrypts bistro's coldkey" "$("${ref[@]}" coldkey "$w" ours pw9 | tail -1)" "$cold"

((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo "all btcli wallet checks passed"
