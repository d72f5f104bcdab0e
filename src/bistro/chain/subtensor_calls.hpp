// The call bytes of every extrinsic bistro sends to subtensor, each resolved by name from the
// runtime's metadata and its arguments SCALE-encoded as subtensor defines them. In one place so
// that a test can compare them, byte for byte, with a reference client's encoding
// (tests/reference/extrinsic_ref.mjs).
//
// `mecid` 0 gives the plain weights call; any other gives its mechanism variant (spec 320 on:
// set_mechanism_weights, commit_mechanism_weights, ...) with the mechanism id after the netuid.
// A call the runtime lacks is an Error naming it (substrate::encode_call).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bistro/substrate/metadata.hpp"

namespace bistro::chain::calls {

// SubtensorModule.burned_register(netuid, hotkey): `hotkey` is the 32-byte account id.
std::string burned_register(const substrate::Metadata& m, uint16_t netuid,
                            const std::string& hotkey);
// Commitments.set_commitment(netuid, CommitmentInfo { fields: [Raw(<= 128 bytes)...] }): the data
// split into at most 3 fields; more than 384 bytes is refused (TooManyFieldsInCommitmentInfo).
std::string set_commitment(const substrate::Metadata& m, uint16_t netuid, const std::string& data);
std::string set_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                        const std::vector<uint16_t>& uids, const std::vector<uint16_t>& values,
                        uint64_t version_key);
// `hash`: 32 bytes, weights_commit_hash(...).
std::string commit_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                           const std::string& hash);
std::string reveal_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                           const std::vector<uint16_t>& uids, const std::vector<uint16_t>& values,
                           const std::vector<uint16_t>& salt, uint64_t version_key);
// Version 4: commit_timelocked_(mechanism_)weights(netuid, [mecid,] commit, reveal_round, 4);
// version 3: commit_crv3_weights(netuid, commit, reveal_round).
std::string timelocked_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                               const std::string& commit, uint64_t reveal_round, int version);

}  // namespace bistro::chain::calls
