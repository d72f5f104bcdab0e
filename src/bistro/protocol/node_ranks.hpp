// A neuron's data-parallel ranks (runtime/distributed.hpp): torchrun's environment (RANK,
// WORLD_SIZE, ...), or `--ranks N` spawned here (runtime/launch.hpp). One hotkey and one uid
// whatever the number: only rank 0 opens the wallet, the chain and the buckets. Every rank checks
// at start that the others run the same role, protocol hyperparameters (their hash) and compute
// options. The group's timeout comes from the window: four windows at 12 s a block (subtensor's
// block time), at least a minute; a rank that dies is noticed at once (its sockets close), one
// that hangs after that long.
#pragma once

#include <memory>
#include <string>

#include "bistro/protocol/neuron.hpp"
#include "bistro/runtime/distributed.hpp"
#include "bistro/runtime/launch.hpp"
#include "bistro/runtime/runtime.hpp"

namespace bistro {

struct NodeRanks {
  NodeRanks(const NeuronArgs& a, const NeuronHparams& h, const std::string& role);
  // Rank 0: waits for the ranks it spawned (an Error names one that failed).
  void finish();

  std::unique_ptr<runtime::LocalRanks> local;  // the ranks this process spawned
  std::unique_ptr<runtime::Ranks> group;       // a group of one without ranks
};

// --device and --dtype on this rank: `cuda` with no index is the rank's own GPU (LOCAL_RANK).
Compute rank_compute(const NeuronArgs& a);

}  // namespace bistro
