#include "bistro/chain/timelocked_weights.hpp"

#include "bistro/core/error.hpp"
#include "bistro/drand/timelock.hpp"
#include "bistro/substrate/scale.hpp"

namespace bistro::chain {

std::string timelocked_weights_payload(const PublicKey& hotkey, const std::vector<uint16_t>& uids,
                                       const std::vector<uint16_t>& values, uint64_t version_key,
                                       int version) {
  check(version == 3 || version == 4, "timelocked weights: commit-reveal version {} (3 or 4)",
        version);
  scale::Writer w;
  if (version == 4) w.bytes({reinterpret_cast<const char*>(hotkey.data()), hotkey.size()});
  return w.u16s(uids).u16s(values).u64(version_key).take();
}

uint64_t reveal_round(uint64_t reveal_block, uint64_t current_block, double seconds_per_block,
                      double now_unix) {
  const uint64_t target = reveal_block + kPulseIngestBlocks;
  const double ahead =
      static_cast<double>(target > current_block ? target - current_block : 0) * seconds_per_block;
  return drand::quicknet_round_at(now_unix + ahead);
}

uint64_t crv3_reveal_round(uint64_t reveal_block, uint64_t current_block, double seconds_per_block,
                           double now_unix) {
  const uint64_t after = reveal_block + 1;
  const double ahead =
      static_cast<double>(after > current_block ? after - current_block : 0) * seconds_per_block;
  const uint64_t round = drand::quicknet_round_at(now_unix + ahead);
  return round > kCrv3PulseLead ? round - kCrv3PulseLead : 1;
}

}  // namespace bistro::chain
