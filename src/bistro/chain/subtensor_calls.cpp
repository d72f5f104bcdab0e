#include "bistro/chain/subtensor_calls.hpp"

#include <fmt/format.h>

#include "bistro/chain/chain.hpp"
#include "bistro/substrate/extrinsic.hpp"

namespace bistro::chain::calls {
namespace {

// `call`, or its mechanism variant ("set_weights" -> "set_mechanism_weights") with the mechanism
// id after the netuid; `rest` is the arguments after those.
std::string weights_call(const substrate::Metadata& m, std::string_view call, uint16_t netuid,
                         uint8_t mecid, const std::string& rest) {
  if (mecid == 0)
    return substrate::encode_call(m, "SubtensorModule", call,
                                  scale::Writer().u16(netuid).raw(rest).take());
  std::string name(call);
  name.insert(name.rfind("weights"), "mechanism_");
  return substrate::encode_call(m, "SubtensorModule", name,
                                scale::Writer().u16(netuid).u8(mecid).raw(rest).take());
}

}  // namespace

std::string burned_register(const substrate::Metadata& m, uint16_t netuid,
                            const std::string& hotkey) {
  check(hotkey.size() == 32, "burned_register: a hotkey account is 32 bytes, not {}",
        hotkey.size());
  return substrate::encode_call(m, "SubtensorModule", "burned_register",
                                scale::Writer().u16(netuid).raw(hotkey).take());
}

std::string set_commitment(const substrate::Metadata& m, uint16_t netuid, const std::string& data) {
  if (data.size() > kMaxCommitmentBytes)
    throw ChainError(
        "TooManyFieldsInCommitmentInfo",
        fmt::format("commitment of {} bytes (at most {})", data.size(), kMaxCommitmentBytes));
  scale::Writer w;
  const size_t fields = data.empty() ? 1 : (data.size() + 127) / 128;
  w.u16(netuid).compact(fields);
  for (size_t f = 0; f < fields; ++f) {
    std::string_view part = std::string_view(data).substr(f * 128, 128);
    w.u8(static_cast<uint8_t>(part.size() + 1)).raw(part);  // Data::Raw(n) is variant n + 1
  }
  return substrate::encode_call(m, "Commitments", "set_commitment", w.take());
}

std::string set_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                        const std::vector<uint16_t>& uids, const std::vector<uint16_t>& values,
                        uint64_t version_key) {
  return weights_call(m, "set_weights", netuid, mecid,
                      scale::Writer().u16s(uids).u16s(values).u64(version_key).take());
}

std::string commit_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                           const std::string& hash) {
  check(hash.size() == 32, "commit_weights: a commit hash is 32 bytes, not {}", hash.size());
  return weights_call(m, "commit_weights", netuid, mecid, hash);
}

std::string reveal_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                           const std::vector<uint16_t>& uids, const std::vector<uint16_t>& values,
                           const std::vector<uint16_t>& salt, uint64_t version_key) {
  return weights_call(m, "reveal_weights", netuid, mecid,
                      scale::Writer().u16s(uids).u16s(values).u16s(salt).u64(version_key).take());
}

std::string timelocked_weights(const substrate::Metadata& m, uint16_t netuid, uint8_t mecid,
                               const std::string& commit, uint64_t reveal_round, int version) {
  check(version == 3 || version == 4, "timelocked weights: commit-reveal version {} (3 or 4)",
        version);
  scale::Writer rest;
  rest.bytes(commit).u64(reveal_round);
  if (version == 4) rest.u16(4);
  return weights_call(m, version == 4 ? "commit_timelocked_weights" : "commit_crv3_weights", netuid,
                      mecid, rest.take());
}

}  // namespace bistro::chain::calls
