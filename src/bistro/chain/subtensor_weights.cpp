// SubtensorChain's weights calls: set_weights, hash commit-reveal, timelocked commit-reveal and
// mechanisms, each resolved from the runtime's metadata (subtensor_chain.hpp).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "bistro/chain/subtensor_calls.hpp"
#include "bistro/chain/subtensor_chain.hpp"
#include "bistro/chain/subtensor_values.hpp"
#include "bistro/chain/timelocked_weights.hpp"
#include "bistro/drand/timelock.hpp"
#include "bistro/substrate/extrinsic.hpp"

namespace bistro::chain {

namespace {
// BISTRO_TEST_TIMELOCK=V@R, a setting for tests against a real runtime, never for operators: a
// timelocked commit of version V (3 or 4) aimed at drand round R whatever the subnet asks for, so
// that a round whose signature is known (quicknet round 1000's) can be written to the chain to
// reveal it.
struct TestTimelock {
  uint64_t version = 0, round = 0;
};
std::optional<TestTimelock> test_timelock() {
  const char* v = std::getenv("BISTRO_TEST_TIMELOCK");
  if (v == nullptr || *v == '\0') return std::nullopt;
  unsigned long long version = 0, round = 0;
  char tail = 0;
  check(std::sscanf(v, "%llu@%llu%c", &version, &round, &tail) == 2 &&
            (version == 3 || version == 4) && round > 0,
        "BISTRO_TEST_TIMELOCK={}: want VERSION@ROUND (version 3 or 4), e.g. 3@1000", v);
  return TestTimelock{version, round};
}
}  // namespace

std::vector<std::vector<std::pair<uint16_t, uint16_t>>> SubtensorChain::weights(uint16_t netuid) {
  require_subnet(netuid);
  const auto n = read("SubtensorModule", "SubnetworkN", {u16le(netuid)}).get<uint16_t>();
  std::vector<std::vector<std::string>> keys;
  for (uint16_t uid = 0; uid < n; ++uid) keys.push_back({u16le(weights_index(netuid)), u16le(uid)});
  std::vector<std::vector<std::pair<uint16_t, uint16_t>>> out;
  for (const auto& row : read_many("SubtensorModule", "Weights", keys)) {
    auto& r = out.emplace_back();
    check(row.is_array(), "node {}: SubtensorModule.Weights is not a list", rpc_.url());
    for (const auto& p : row) {
      check(p.is_array() && p.size() == 2 && p[0].is_number_unsigned() &&
                p[1].is_number_unsigned() && p[0].get<uint64_t>() <= 0xffff &&
                p[1].get<uint64_t>() <= 0xffff,
            "node {}: SubtensorModule.Weights holds a malformed pair", rpc_.url());
      r.emplace_back(p[0].get<uint16_t>(), p[1].get<uint16_t>());
    }
  }
  return out;
}

void SubtensorChain::select_mechanism(uint16_t netuid, uint8_t mecid) {
  require_subnet(netuid);
  uint64_t count = 1;
  if (metadata_.find_storage("SubtensorModule", "MechanismCountCurrent"))
    count = json_u64(read("SubtensorModule", "MechanismCountCurrent", {u16le(netuid)}),
                     "MechanismCountCurrent");
  if (mecid >= count)
    throw ChainError("MechanismDoesNotExist",
                     fmt::format("subnet {} on {} has {} mechanism{} (0-{}), not {}", netuid,
                                 rpc_.url(), count, count == 1 ? "" : "s", count - 1, mecid));
  mechanism_ = mecid;
}

void SubtensorChain::commit_weights(uint16_t netuid, const Signer& hotkey,
                                    const std::string& hash) {
  submit(calls::commit_weights(metadata_, netuid, mechanism_, hash), hotkey,
         fmt::format("commit_weights on subnet {} mechanism {}", netuid, mechanism_));
}

void SubtensorChain::reveal_weights(uint16_t netuid, const Signer& hotkey,
                                    const std::vector<uint16_t>& uids,
                                    const std::vector<uint16_t>& values,
                                    const std::vector<uint16_t>& salt, uint64_t version_key) {
  submit(calls::reveal_weights(metadata_, netuid, mechanism_, uids, values, salt, version_key),
         hotkey, fmt::format("reveal_weights on subnet {} mechanism {}", netuid, mechanism_));
}

std::optional<EpochSchedule> SubtensorChain::epoch_schedule(uint16_t netuid, uint16_t tempo,
                                                            uint64_t head) {
  if (!metadata_.find_storage("SubtensorModule", "SubnetEpochIndex")) return std::nullopt;
  auto u = [&](const char* item) {
    return metadata_.find_storage("SubtensorModule", item)
               ? json_u64(read("SubtensorModule", item, {u16le(netuid)}), item)
               : 0;
  };
  return EpochSchedule{u("LastEpochBlock"),      u("PendingEpochAt"),
                       u("SubnetEpochIndex"),    tempo,
                       u("BlocksSinceLastStep"), head};
}

RevealTiming SubtensorChain::reveal_timing(uint16_t netuid, const PublicKey& hotkey,
                                           const std::string& commit_hash) {
  if (!metadata_.find_storage("SubtensorModule", "WeightCommits")) return RevealTiming::Unknown;
  const std::string account(reinterpret_cast<const char*>(hotkey.data()), hotkey.size());
  const nlohmann::json stored =
      read("SubtensorModule", "WeightCommits", {u16le(weights_index(netuid)), account});
  // VecDeque<(H256, u64, ...)> on every runtime with epoch reveals; field 1 is the commit's
  // epoch from spec 423 (SubnetEpochIndex), its block before. Any other shape: not ours to read.
  const nlohmann::json list = stored.is_null() ? nlohmann::json::array() : stored;
  if (!list.is_array()) return RevealTiming::Unknown;
  const std::string want = scale::to_hex(commit_hash);
  std::optional<uint64_t> field1;
  for (const auto& c : list) {
    if (!c.is_array() || c.size() < 2 || !c[0].is_string() || !c[1].is_number_unsigned())
      return RevealTiming::Unknown;
    if (c[0].get<std::string>() == want) field1 = c[1].get<uint64_t>();
  }
  if (!field1) return RevealTiming::NotFound;
  const Hyperparameters h = hyperparameters(netuid);
  const uint64_t landing = block() + 1;  // a reveal sent now lands in the next block
  if (auto s = epoch_schedule(netuid, static_cast<uint16_t>(h.tempo), landing - 1))
    return chain::reveal_timing(epoch_at(*s, landing), *field1, h.reveal_period);
  return chain::reveal_timing(epoch_index(netuid, h.tempo, landing),
                              epoch_index(netuid, h.tempo, *field1), h.reveal_period);
}

void SubtensorChain::set_weights(uint16_t netuid, const Signer& hotkey,
                                 const std::vector<uint16_t>& uids,
                                 const std::vector<uint16_t>& values, uint64_t version_key) {
  const Hyperparameters h = hyperparameters(netuid);
  if (h.commit_reveal) {
    const auto forced = test_timelock();
    const uint64_t version =
        forced ? forced->version
        : metadata_.find_storage("SubtensorModule", "CommitRevealWeightsVersion")
            ? json_u64(read("SubtensorModule", "CommitRevealWeightsVersion"), "version")
            : 0;
    if (version >= 3)
      return commit_timelocked(netuid, hotkey, uids, values, version_key, h, version);
    if (!metadata_.has_call("SubtensorModule", "commit_weights"))
      throw ChainError("CommitRevealNotSupported",
                       fmt::format("subnet {} has commit-reveal on, and the runtime has neither "
                                   "commit_weights nor a timelocked commit version",
                                   netuid));
    return commit_reveal_weights(netuid, hotkey, uids, values, version_key);
  }
  submit(calls::set_weights(metadata_, netuid, mechanism_, uids, values, version_key), hotkey,
         fmt::format("set_weights on subnet {} mechanism {}", netuid, mechanism_));
}

void SubtensorChain::commit_timelocked(uint16_t netuid, const Signer& hotkey,
                                       const std::vector<uint16_t>& uids,
                                       const std::vector<uint16_t>& values, uint64_t version_key,
                                       const Hyperparameters& h, uint64_t version) {
  const char* call = version == 4 ? "commit_timelocked_weights" : "commit_crv3_weights";
  if ((version != 3 && version != 4) || !metadata_.has_call("SubtensorModule", call))
    throw ChainError("CommitRevealNotSupported",
                     fmt::format("subnet {} asks for commit-reveal version {}; bistro sends "
                                 "version 4 (commit_timelocked_weights) and 3 "
                                 "(commit_crv3_weights){}",
                                 netuid, version,
                                 version == 3 || version == 4 ? ", which this runtime lacks" : ""));
  // When the chain will reveal it: the runtime's own epoch bookkeeping where it has it. Version 3
  // runtimes reveal only in the epoch's firing block, and only if the pulse is in by then.
  const uint64_t head = block();
  const auto tempo = static_cast<uint16_t>(h.tempo);
  uint64_t reveal_block = 0;
  if (version == 3)
    reveal_block = crv3_reveal_block(head + 1, netuid, tempo, h.reveal_period);
  else if (const auto schedule = epoch_schedule(netuid, tempo, head))
    reveal_block = first_reveal_block(*schedule, h.reveal_period);
  else
    reveal_block = first_reveal_block_before_423(head, netuid, tempo, h.reveal_period);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double spb = seconds_per_block();
  uint64_t round = version == 3 ? crv3_reveal_round(reveal_block, head, spb, now)
                                : reveal_round(reveal_block, head, spb, now);
  if (const auto forced = test_timelock()) {
    fmt::print(stderr, "bistro: BISTRO_TEST_TIMELOCK: version {} commit aimed at drand round {}\n",
               forced->version, forced->round);
    round = forced->round;
  } else if (metadata_.find_storage("Drand", "LastStoredRound")) {
    const uint64_t stored = json_u64(read("Drand", "LastStoredRound"), "LastStoredRound");
    if (round <= stored)
      throw ChainError("RevealRoundInPast",
                       fmt::format("drand round {} for subnet {}'s reveal at block {} is already "
                                   "past (the chain holds pulses up to round {}): is the block "
                                   "time ({:.2f} s) right?",
                                   round, netuid, reveal_block, stored, spb));
  }
  const std::string commit =
      drand::timelock_encrypt(timelocked_weights_payload(hotkey.public_key(), uids, values,
                                                         version_key, static_cast<int>(version)),
                              round);
  if (commit.size() > kMaxTimelockedCommitBytes)
    throw ChainError("TooManyWeightsForOneCommit",
                     fmt::format("a timelocked commit of {} uids is {} bytes (the chain takes {})",
                                 uids.size(), commit.size(), kMaxTimelockedCommitBytes));
  submit(calls::timelocked_weights(metadata_, netuid, mechanism_, commit, round,
                                   static_cast<int>(version)),
         hotkey,
         fmt::format("{} on subnet {} mechanism {} (drand round {}, revealed from block {})", call,
                     netuid, mechanism_, round, reveal_block));
  // Said once per commit: when the weights become visible is the chain's to do now.
  fmt::print(stderr,
             "bistro: {} on subnet {}: drand round {}, revealed by the chain from block {}\n", call,
             netuid, round, reveal_block);
}

}  // namespace bistro::chain
