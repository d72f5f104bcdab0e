// A subtensor-like runtime described from the metadata format's definition (not captured from a
// node): the pallets, calls, storage entries, errors, events and signed extensions the subtensor
// client uses, at subtensor's indices (SubtensorModule 7, Commitments 18).
#pragma once

#include "bistro/substrate/metadata.hpp"

namespace bistro::test {

struct SubtensorRuntime {
  std::string blob;
  uint32_t account = 0;  // AccountId32 type id
};

// version 15 adds NeuronInfoRuntimeApi.get_neurons_lite returning Vec<NeuronInfoLite>.
// epoch_counter: spec 423's epoch bookkeeping (SubnetEpochIndex and the rest); without it the
// runtime counts epochs by the older block formula, as specs 218 and 293 do.
inline SubtensorRuntime subtensor_runtime(uint8_t version = 14, bool epoch_counter = true) {
  using namespace bistro::substrate;
  MetadataBuilder b;
  const uint32_t u8 = b.primitive(Primitive::U8), u16 = b.primitive(Primitive::U16),
                 u32 = b.primitive(Primitive::U32), u64 = b.primitive(Primitive::U64),
                 u128 = b.primitive(Primitive::U128), boolean = b.primitive(Primitive::Bool);
  const uint32_t bytes32 = b.array(u8, 32), bytes4 = b.array(u8, 4);
  const uint32_t h256 = b.composite({"primitive_types", "H256"}, {{std::nullopt, bytes32}});
  const uint32_t account =
      b.composite({"sp_core", "crypto", "AccountId32"}, {{std::nullopt, bytes32}});
  const uint32_t vec_u16 = b.sequence(u16), vec_u64 = b.sequence(u64),
                 vec_bool = b.sequence(boolean);
  const uint32_t unit = b.tuple({});
  // Data: None, Raw0..Raw128 (index n + 1), as pallet-commitments/identity define it.
  std::vector<Variant> data_variants = {{"None", {}, 0}};
  for (uint32_t n = 0; n <= 128; ++n)
    data_variants.push_back(
        {"Raw" + std::to_string(n), {{std::nullopt, b.array(u8, n)}}, static_cast<uint8_t>(n + 1)});
  const uint32_t data = b.variant({"pallet_commitments", "types", "Data"}, data_variants);
  const uint32_t info = b.composite({"pallet_commitments", "types", "CommitmentInfo"},
                                    {{"fields", b.sequence(data)}});
  const uint32_t registration = b.composite({"pallet_commitments", "types", "Registration"},
                                            {{"deposit", u128}, {"block", u32}, {"info", info}});

  const uint32_t subtensor_calls =
      b.variant({"pallet_subtensor", "pallet", "Call"},
                {{"set_weights",
                  {{"netuid", u16}, {"dests", vec_u16}, {"weights", vec_u16}, {"version_key", u64}},
                  0},
                 {"burned_register", {{"netuid", u16}, {"hotkey", account}}, 7},
                 {"commit_weights", {{"netuid", u16}, {"commit_hash", bytes32}}, 96},
                 {"reveal_weights",
                  {{"netuid", u16},
                   {"uids", vec_u16},
                   {"values", vec_u16},
                   {"salt", vec_u16},
                   {"version_key", u64}},
                  97},
                 // Mechanisms (spec 320): the same calls with the mechanism id after the netuid.
                 {"commit_mechanism_weights",
                  {{"netuid", u16}, {"mecid", u8}, {"commit_hash", bytes32}},
                  115},
                 {"reveal_mechanism_weights",
                  {{"netuid", u16},
                   {"mecid", u8},
                   {"uids", vec_u16},
                   {"values", vec_u16},
                   {"salt", vec_u16},
                   {"version_key", u64}},
                  116},
                 {"commit_timelocked_weights",
                  {{"netuid", u16},
                   {"commit", b.sequence(u8)},
                   {"reveal_round", u64},
                   {"commit_reveal_version", u16}},
                  113},
                 {"commit_crv3_weights",
                  {{"netuid", u16}, {"commit", b.sequence(u8)}, {"reveal_round", u64}},
                  99},
                 {"set_mechanism_weights",
                  {{"netuid", u16},
                   {"mecid", u8},
                   {"dests", vec_u16},
                   {"weights", vec_u16},
                   {"version_key", u64}},
                  119}});
  const char* errors[] = {"RootNetworkDoesNotExist",
                          "InvalidIpType",
                          "HotKeyNotRegisteredInSubNet",
                          "WeightVecNotEqualSize",
                          "DuplicateUids",
                          "UidVecContainInvalidOne",
                          "WeightVecLengthIsLow",
                          "SettingWeightsTooFast",
                          "NeuronNoValidatorPermit",
                          "IncorrectWeightVersionKey",
                          "SubnetNotExists",
                          "HotKeyAlreadyRegisteredInSubNet",
                          "RevealTooEarly",
                          "InvalidRevealCommitHashNotMatch",
                          "NoWeightsCommitFound",
                          "ExpiredWeightCommit"};
  std::vector<Variant> error_variants;
  for (uint8_t i = 0; i < std::size(errors); ++i) error_variants.push_back({errors[i], {}, i});
  const uint32_t subtensor_errors =
      b.variant({"pallet_subtensor", "pallet", "Error"}, error_variants);
  const uint32_t commit_calls =
      b.variant({"pallet_commitments", "pallet", "Call"},
                {{"set_commitment", {{"netuid", u16}, {"info", info}}, 0}});
  const uint32_t commit_errors =
      b.variant({"pallet_commitments", "pallet", "Error"},
                {{"TooManyFieldsInCommitmentInfo", {}, 0}, {"AccountNotAllowedCommit", {}, 1}});

  // System events: EventRecord { phase, event, topics }.
  const uint32_t module_error =
      b.composite({"sp_runtime", "ModuleError"}, {{"index", u8}, {"error", bytes4}});
  const uint32_t dispatch_error =
      b.variant({"sp_runtime", "DispatchError"}, {{"Other", {}, 0},
                                                  {"CannotLookup", {}, 1},
                                                  {"BadOrigin", {}, 2},
                                                  {"Module", {{std::nullopt, module_error}}, 3}});
  const uint32_t dispatch_info = b.composite({"frame_support", "DispatchInfo"}, {{"weight", u64}});
  const uint32_t system_event =
      b.variant({"frame_system", "pallet", "Event"},
                {{"ExtrinsicSuccess", {{"dispatch_info", dispatch_info}}, 0},
                 {"ExtrinsicFailed",
                  {{"dispatch_error", dispatch_error}, {"dispatch_info", dispatch_info}},
                  1}});
  const uint32_t runtime_event = b.variant({"node_subtensor_runtime", "RuntimeEvent"},
                                           {{"System", {{std::nullopt, system_event}}, 0}});
  const uint32_t phase =
      b.variant({"frame_system", "Phase"}, {{"ApplyExtrinsic", {{std::nullopt, u32}}, 0},
                                            {"Finalization", {}, 1},
                                            {"Initialization", {}, 2}});
  const uint32_t record =
      b.composite({"frame_system", "EventRecord"},
                  {{"phase", phase}, {"event", runtime_event}, {"topics", b.sequence(bytes32)}});
  const uint32_t events = b.sequence(record);

  auto map = [](std::string name, std::vector<Hasher> h, uint32_t key, uint32_t value,
                std::string def) {
    StorageEntry e;
    e.name = std::move(name);
    e.plain = false;
    e.hashers = std::move(h);
    e.key = key;
    e.value = value;
    e.default_value = std::move(def);
    return e;
  };
  const uint32_t u16_u16 = b.tuple({u16, u16}), acct_u16 = b.tuple({account, u16}),
                 u16_acct = b.tuple({u16, account});
  const std::string zero16(2, '\0'), zero64(8, '\0'), empty_vec(1, '\0'), zero_bool(1, '\0');
  Pallet system{"System", 0, "System", {}, std::nullopt, system_event, std::nullopt};
  StorageEntry ev;
  ev.name = "Events";
  ev.value = events;
  ev.default_value = empty_vec;
  system.storage.push_back(ev);
  b.pallet(system);

  Pallet st{"SubtensorModule", 7, "SubtensorModule", {}, subtensor_calls, std::nullopt,
            subtensor_errors};
  using H = Hasher;
  st.storage = {
      map("NetworksAdded", {H::Identity}, u16, boolean, zero_bool),
      map("SubnetworkN", {H::Identity}, u16, u16, zero16),
      map("Keys", {H::Identity, H::Identity}, u16_u16, account, std::string(32, '\0')),
      map("Tempo", {H::Identity}, u16, u16, std::string("\x68\x01", 2)),  // 360
      map("Kappa", {H::Identity}, u16, u16, std::string("\xff\x7f", 2)),
      map("ImmunityPeriod", {H::Identity}, u16, u16, zero16),
      map("ActivityCutoff", {H::Identity}, u16, u16, zero16),
      map("MaxAllowedUids", {H::Identity}, u16, u16, zero16),
      map("MaxAllowedValidators", {H::Identity}, u16, u16, zero16),
      map("MinAllowedWeights", {H::Identity}, u16, u16, zero16),
      map("WeightsSetRateLimit", {H::Identity}, u16, u64, zero64),
      map("WeightsVersionKey", {H::Identity}, u16, u64, zero64),
      map("BondsMovingAverage", {H::Identity}, u16, u64, zero64),
      map("CommitRevealWeightsEnabled", {H::Identity}, u16, boolean, zero_bool),
      [&] {
        StorageEntry e;  // a plain value: the chain-wide commit-reveal version
        e.name = "CommitRevealWeightsVersion";
        e.value = u16;
        e.default_value = std::string("\x02\x00", 2);
        return e;
      }(),
      map("Incentive", {H::Identity}, u16, vec_u16, empty_vec),
      map("Dividends", {H::Identity}, u16, vec_u16, empty_vec),
      map("Consensus", {H::Identity}, u16, vec_u16, empty_vec),
      map("ValidatorTrust", {H::Identity}, u16, vec_u16, empty_vec),
      map("ValidatorPermit", {H::Identity}, u16, vec_bool, empty_vec),
      map("Active", {H::Identity}, u16, vec_bool, empty_vec),
      map("LastUpdate", {H::Identity}, u16, vec_u64, empty_vec),
      map("Emission", {H::Identity}, u16, vec_u64, empty_vec),
      map("BlockAtRegistration", {H::Identity, H::Identity}, u16_u16, u64, zero64),
      map("Owner", {H::Blake2_128Concat}, account, account, std::string(32, '\0')),
      map("TotalHotkeyAlpha", {H::Blake2_128Concat, H::Identity}, acct_u16, u64, zero64),
      map("MechanismCountCurrent", {H::Identity}, u16, u8, std::string(1, '\1')),
      map("RevealPeriodEpochs", {H::Identity}, u16, u64, std::string("\x01\0\0\0\0\0\0\0", 8)),
      // Hash commits: (hash, epoch or block, block or first reveal block, 0 or last).
      map("WeightCommits", {H::Twox64Concat, H::Twox64Concat}, u16_acct,
          b.sequence(b.tuple({h256, u64, u64, u64})), empty_vec),
  };
  if (epoch_counter)  // spec 423's epoch bookkeeping (epochs.hpp reads it)
    for (const char* item :
         {"SubnetEpochIndex", "LastEpochBlock", "PendingEpochAt", "BlocksSinceLastStep"})
      st.storage.push_back(map(item, {H::Identity}, u16, u64, zero64));
  b.pallet(st);
  Pallet cm{"Commitments", 18, "Commitments", {}, commit_calls, std::nullopt, commit_errors};
  cm.storage = {map("CommitmentOf", {H::Identity, H::Twox64Concat}, u16_acct, registration, "")};
  b.pallet(cm);
  // pallet drand: the last beacon round whose pulse the chain holds.
  Pallet drand{"Drand", 26, "Drand", {}, std::nullopt, std::nullopt, std::nullopt};
  drand.storage = {[&] {
    StorageEntry e;
    e.name = "LastStoredRound";
    e.value = u64;
    e.default_value = zero64;
    return e;
  }()};
  b.pallet(drand);

  for (const char* id : {"CheckNonZeroSender", "CheckSpecVersion", "CheckTxVersion", "CheckGenesis",
                         "CheckMortality", "CheckNonce", "CheckWeight", "ChargeTransactionPayment",
                         "SubtensorSignedExtension", "CheckMetadataHash"})
    b.extension({id, unit, unit});
  if (version == 15) {
    const uint32_t cu16 = b.compact(u16), cu64 = b.compact(u64);
    const uint32_t stake = b.sequence(b.tuple({account, cu64}));
    const uint32_t lite =
        b.composite({"pallet_subtensor", "rpc_info", "neuron_info", "NeuronInfoLite"},
                    {{"hotkey", account},
                     {"coldkey", account},
                     {"uid", cu16},
                     {"netuid", cu16},
                     {"active", boolean},
                     {"stake", stake},
                     {"emission", cu64},
                     {"incentive", cu16},
                     {"consensus", cu16},
                     {"trust", cu16},
                     {"validator_trust", cu16},
                     {"dividends", cu16},
                     {"last_update", cu64},
                     {"validator_permit", boolean}});
    b.runtime_api(
        {"NeuronInfoRuntimeApi", "get_neurons_lite", {{"netuid", u16}}, b.sequence(lite)});
    const uint32_t hp =
        b.composite({"pallet_subtensor", "rpc_info", "subnet_info", "SubnetHyperparams"},
                    {{"kappa", cu16},
                     {"tempo", cu16},
                     {"weights_rate_limit", cu64},
                     {"commit_reveal_weights_enabled", boolean}});
    const uint32_t opt_hp =
        b.variant({"Option"}, {{"None", {}, 0}, {"Some", {{std::nullopt, hp}}, 1}});
    b.runtime_api({"SubnetInfoRuntimeApi", "get_subnet_hyperparams", {{"netuid", u16}}, opt_hp});
  }
  return {b.build(version), account};
}

}  // namespace bistro::test
