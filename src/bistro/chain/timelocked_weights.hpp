// Timelocked commit-reveal of weights (subtensor's commit_timelocked_weights, version 4; its
// commit_crv3_weights, version 3, on runtimes before 315): the weights are encrypted to a drand
// round (drand/timelock.hpp) that falls just after the chain's reveal block for them, and the
// chain reveals them itself once that round's pulse is in. Nothing is kept for a later reveal:
// a validator that goes down after committing still has its weights revealed.
//
// The round is chosen as the SDK (bittensor-drand) chooses it: the first block of the reveal
// epoch, plus 3 blocks for the pulse to be ingested, converted to time with the chain's block
// time and to a round, rounded down. The reveal epoch is the commit's epoch + reveal_period,
// counted as the runtime counts epochs (epochs.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bistro/chain/epochs.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro::chain {

// The SCALE payload the chain decrypts: version 4 {hotkey: Vec<u8> (the 32-byte public key), uids,
// values, version_key}, which the chain checks against the committer; version 3 lacks the hotkey.
std::string timelocked_weights_payload(const PublicKey& hotkey, const std::vector<uint16_t>& uids,
                                       const std::vector<uint16_t>& values, uint64_t version_key,
                                       int commit_reveal_version);

// Blocks after the reveal block at which the round's pulse is aimed (the SDK's).
inline constexpr uint64_t kPulseIngestBlocks = 3;

// The drand round for a reveal block: the time of reveal_block + kPulseIngestBlocks at
// `seconds_per_block` from `now_unix` (the chain's head, `current_block`), as a quicknet round.
uint64_t reveal_round(uint64_t reveal_block, uint64_t current_block, double seconds_per_block,
                      double now_unix);

// Version 3 (commit_crv3_weights): the chain reveals only in its reveal block and drops a commit
// whose round's pulse is not in by then, so the round is aimed kCrv3PulseLead rounds before the
// time of the block after it (the SDK's rule of that era, bittensor-commit-reveal's
// SUBTENSOR_PULSE_DELAY), leaving the drand pallet 72 s to ingest the pulse.
inline constexpr uint64_t kCrv3PulseLead = 24;
uint64_t crv3_reveal_round(uint64_t reveal_block, uint64_t current_block, double seconds_per_block,
                           double now_unix);

}  // namespace bistro::chain
