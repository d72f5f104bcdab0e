// The simulated subnet of `bistro experiment attack` (experiment_attack.hpp): one run of the
// given miners' kinds through the real inner loop, encoder, wire format, gauntlet, outer step and
// Yuma epoch, and what it measured. Internal to ops/experiment_attack*.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bistro/cheats/cheats.hpp"
#include "bistro/compress/error_feedback.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/ops/experiment_attack.hpp"
#include "bistro/protocol/neuron.hpp"

namespace bistro::attack {

struct SimMiner {
  uint16_t uid = 0;
  Behaviour kind = Behaviour::Honest;
  std::unique_ptr<Signer> signer;
  std::string hotkey;  // ss58
  std::unique_ptr<Trainer> trainer;
  std::unique_ptr<ErrorFeedback> ef;
  int copy_of = -1;  // copiers and sybil members: whose update they send
  std::vector<Batch> batches;
  Update trained;  // this window's encoded pseudo-gradient (trainers)
  double incentive = 0;
};

struct SimResult {
  std::vector<double> incentive;                         // per uid, mean over windows
  std::vector<std::vector<double>> incentive_by_window;  // [window][uid]
  // Uid 0's incentive summed over the windows: the pay held back for miners awaiting their first
  // measurement (GauntletParams::burn_uid), in windows' worth of the whole incentive.
  double held = 0;
  // The first window by which every honest miner had been measured once (windows: never).
  uint64_t honest_all_measured = 0;
  std::map<uint16_t, uint64_t> honest_first_measured;  // uid -> the window of its first measurement
  std::vector<Behaviour> kind;
  std::vector<bool> present;
  std::vector<int> copy_of;
  double final_loss = 0, first_loss = 0;
  std::vector<double> losses;             // the master's held-out loss after each window
  std::vector<double> validator_seconds;  // per window: checks + score + judge + outer + guard
  double honest_index_overlap_max = 0, honest_index_overlap_mean = 0;
  std::map<std::string, int> rejections;          // reason (first words) -> count
  std::map<std::string, int> admitted, left_out;  // per kind: updates sent that entered a record
  // per kind: of `admitted`, those that entered unpaid (measured, no evidence, helpful)
  std::map<std::string, int> admitted_unpaid;
  // One window's own-page evidence, as the test reads it alone (t, sequences): per kind of the
  // measured updates, and "placebo" for one reference read against the other (no own-page work).
  std::map<std::string, std::vector<std::pair<double, size_t>>> margin_t;
  double null_spread = 1;  // what the evidence test divided its t by in the last window
};

// The first words of a rejection's reason ("copy" for every copy of a uid): what the summary
// counts rejections by.
std::string reason_class(const std::string& r);

// One run: kinds[uid] is each uid's behaviour (nullopt: absent; uid 0 is the validator).
SimResult simulate(const AttackOptions& o, const NeuronHparams& h, NeuronData& data,
                   const std::vector<std::optional<Behaviour>>& kinds);

}  // namespace bistro::attack
