#include "bistro/substrate/extrinsic.hpp"

#include <fmt/format.h>

#include <bit>

namespace bistro::substrate {
namespace {

// Whether values of the type encode as one Compact integer (through single-field wrappers).
bool one_compact(const Metadata& m, uint32_t type) {
  for (int depth = 0; depth < 8; ++depth) {
    const TypeDef& t = m.type(type);
    if (t.kind == TypeDef::Compact) return true;
    if (t.kind != TypeDef::Composite || t.fields.size() != 1) return false;
    type = t.fields[0].type;
  }
  return false;
}

}  // namespace

std::string mortal_era(uint64_t period, uint64_t block) {
  uint64_t p = std::bit_ceil(std::max<uint64_t>(period, 4));
  p = std::min<uint64_t>(p, 65536);
  const uint64_t phase = block % p;
  const uint64_t quantize = std::max<uint64_t>(p >> 12, 1);
  const uint64_t qphase = phase / quantize * quantize;
  const uint64_t low = std::clamp<uint64_t>(static_cast<uint64_t>(std::countr_zero(p)) - 1, 1, 15);
  const uint16_t encoded = static_cast<uint16_t>(low | ((qphase / quantize) << 4));
  return scale::Writer().u16(encoded).take();
}

std::string encode_call(const Metadata& m, std::string_view pallet, std::string_view call,
                        std::string_view args) {
  const auto c = m.call(pallet, call);
  return scale::Writer().u8(c.pallet).u8(c.index).raw(args).take();
}

std::string signed_extrinsic(const Metadata& m, const Signer& signer, const std::string& call,
                             const TxContext& tx) {
  check(tx.genesis_hash.size() == 32 && tx.era_block_hash.size() == 32,
        "extrinsic: genesis and era block hashes must be 32 bytes");
  scale::Writer extra, additional;
  for (const auto& e : m.extensions()) {
    const std::string& id = e.identifier;
    if (id == "CheckNonZeroSender" || id == "CheckWeight") {
    } else if (id == "CheckSpecVersion") {
      additional.u32(tx.spec_version);
    } else if (id == "CheckTxVersion") {
      additional.u32(tx.tx_version);
    } else if (id == "CheckGenesis") {
      additional.raw(tx.genesis_hash);
    } else if (id == "CheckMortality" || id == "CheckEra") {
      extra.raw(mortal_era(tx.era_period, tx.era_block));
      additional.raw(tx.era_block_hash);
    } else if (id == "CheckNonce") {
      extra.compact(tx.nonce);
    } else if (id == "ChargeTransactionPayment" ||
               (id.rfind("ChargeTransactionPayment", 0) == 0 && one_compact(m, e.type))) {
      // Subtensor's ChargeTransactionPaymentWrapper (spec 401 on) wraps the same tip.
      check(m.is_empty(e.additional),
            "the chain's runtime's {} signs implicit data bistro cannot fill", id);
      extra.compact(tx.tip);
    } else if (id == "ChargeAssetTxPayment") {
      extra.compact(tx.tip).u8(0);  // no asset
    } else if (id == "CheckMetadataHash") {
      extra.u8(0);       // mode: disabled
      additional.u8(0);  // Option<hash>: none
    } else if (m.is_empty(e.type) && m.is_empty(e.additional)) {
      // A runtime-specific extension with nothing to encode (subtensor has several).
    } else {
      fail(
          "the chain's runtime needs transaction extension {}, which carries data bistro cannot "
          "fill",
          id);
    }
  }
  std::string payload = call + extra.data() + additional.data();
  if (payload.size() > 256) payload = blake2_256(payload);
  const auto sig = signer.sign({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
  const auto pub = signer.public_key();
  scale::Writer body;
  body.u8(0x84).u8(0x00).raw(pub);  // signed, v4; MultiAddress::Id(AccountId32)
  body.u8(signer.scheme() == "sr25519" ? 0x01 : 0x00).raw(sig);  // MultiSignature
  body.raw(extra.data()).raw(call);
  return scale::compact(body.data().size()) + body.data();
}

}  // namespace bistro::substrate
