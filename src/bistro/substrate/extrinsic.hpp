// Signed v4 extrinsics: the call bytes, the mortal era, and the signed extensions the runtime's
// metadata lists (each filled from what bistro knows: spec and transaction versions, genesis hash,
// era and its birth block's hash, nonce, tip, CheckMetadataHash disabled). An extension bistro
// cannot fill is an error naming it, never a silently wrong transaction.
#pragma once

#include <string>

#include "bistro/identity/signer.hpp"
#include "bistro/substrate/metadata.hpp"

namespace bistro::substrate {

// Mortal era for `period` (rounded up to a power of two in [4, 65536]) starting at `block`.
std::string mortal_era(uint64_t period, uint64_t block);

// pallet index ‖ call index ‖ the SCALE-encoded arguments.
std::string encode_call(const Metadata& m, std::string_view pallet, std::string_view call,
                        std::string_view encoded_args);

struct TxContext {
  uint32_t spec_version = 0, tx_version = 0;
  std::string genesis_hash;    // 32 raw bytes
  std::string era_block_hash;  // 32 raw bytes: the hash of `era_block`
  uint64_t era_block = 0;
  uint64_t era_period = 64;
  uint64_t nonce = 0;
  scale::u128 tip = 0;
};

// The extrinsic as submitted (with its compact length prefix), signed by `signer` (sr25519 or
// ed25519 MultiSignature).
std::string signed_extrinsic(const Metadata& m, const Signer& signer, const std::string& call,
                             const TxContext& tx);

}  // namespace bistro::substrate
