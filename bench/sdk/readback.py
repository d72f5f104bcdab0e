#!/usr/bin/env python3
"""The bittensor SDK's side of bench/sdk/readback.sh: it reads what bistro wrote to the chain and
writes through its own extrinsics what bistro then reads.

  readback.py NODE wallet PATH NAME HOTKEY          a new unencrypted wallet (bittensor-wallet)
  readback.py NODE commit PATH NAME HOTKEY DATA     Subtensor.set_commitment
  readback.py NODE weights PATH NAME HOTKEY UIDS W  Subtensor.set_weights (comma lists)
  readback.py NODE read NETUID                      JSON: commitments, weights, and a metagraph
                                                    (uid, hotkey, coldkey, stake, registration
                                                    block) from the chain's storage
"""
import json
import sys

import bittensor as bt
from async_substrate_interface.sync_substrate import SubstrateInterface
from bittensor.core.chain_data.utils import decode_metadata
from bittensor.core.extrinsics.serving import get_metadata
from bittensor_wallet import Wallet

# chopsticks (the runtime in ../shared/subtensor) wants state_call's bytes as 0x-hex, which this SDK
# sends bare (a node accepts both), and has no account_nextIndex RPC: the next nonce comes from the
# runtime's AccountNonceApi instead (the SDK's own get_account_nonce). These two are the only
# changes to the SDK's requests.
_rpc_request = SubstrateInterface.rpc_request


def _rpc_request_0x(self, method, params, *args, **kwargs):
    if method == "state_call" and len(params) > 1 and isinstance(params[1], str) \
            and not params[1].startswith("0x"):
        params = [params[0], "0x" + params[1], *params[2:]]
    return _rpc_request(self, method, params, *args, **kwargs)


SubstrateInterface.rpc_request = _rpc_request_0x
SubstrateInterface.get_account_next_index = SubstrateInterface.get_account_nonce


def wallet(_sub, path, name, hotkey):
    w = Wallet(name=name, hotkey=hotkey, path=path)
    w.create_new_coldkey(use_password=False, overwrite=False, suppress=True)
    w.create_new_hotkey(use_password=False, overwrite=False, suppress=True)
    print(w.coldkeypub.ss58_address, w.hotkey.ss58_address)


def commit(sub, path, name, hotkey, data):
    ok = sub.set_commitment(Wallet(name=name, hotkey=hotkey, path=path), 1, data)
    print("committed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


def weights(sub, path, name, hotkey, uids, values):
    ok, msg = sub.set_weights(Wallet(name=name, hotkey=hotkey, path=path), 1,
                              [int(u) for u in uids.split(",")],
                              [float(v) for v in values.split(",")], version_key=0,
                              wait_for_inclusion=True)
    print("set" if ok else f"FAILED: {msg}")
    sys.exit(0 if ok else 1)


def read(sub, netuid):
    netuid = int(netuid)
    n = sub.query_subtensor("SubnetworkN", params=[netuid]).value
    neurons = []
    for uid in range(n):
        hotkey = str(sub.query_subtensor("Keys", params=[netuid, uid]))
        neurons.append({
            "uid": uid,
            "hotkey": hotkey,
            "coldkey": str(sub.query_subtensor("Owner", params=[hotkey])),
            "block_at_registration":
                sub.query_subtensor("BlockAtRegistration", params=[netuid, uid]).value,
        })
    # This SDK's get_all_commitments decodes each value as an account id (and fails), and its
    # get_commitment first syncs a metagraph through runtime APIs this runtime lacks: its own
    # get_metadata and decode_metadata, which those wrap, per hotkey.
    commitments = {}
    for n in neurons:
        try:
            c = decode_metadata(get_metadata(sub, netuid, n["hotkey"]))
        except TypeError:  # no commitment
            c = ""
        if c:
            commitments[n["hotkey"]] = c
    out = {"block": sub.get_current_block(),
           "commitments": commitments,
           "weights": {str(uid): [list(p) for p in row] for uid, row in sub.weights(netuid)},
           "neurons": neurons}
    print(json.dumps(out))


if __name__ == "__main__":
    commands = {"wallet": wallet, "commit": commit, "weights": weights, "read": read}
    if len(sys.argv) < 3 or sys.argv[2] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[2]](bt.Subtensor(network=sys.argv[1]), *sys.argv[3:])
