// Protocol v1 (codecs slice and dct-topk): BISTRO's seeded slices and DeMo's DCT top-k, kept
// beside protocol v2 (miner/ and validator/) for comparison. run_miner and run_validator hand over
// to these once the runtime is set up.
#pragma once

#include "bistro/protocol/neuron.hpp"

namespace bistro::v1 {

// Every window: train on the window's own pages, publish the slice (or the DeMo update), gather
// the peers' and merge them.
int run_miner(const NeuronArgs& args, const NeuronHparams& h);
// Every window: score each miner's update by the loss it removes on the miner's pages and on
// random global pages (or by win rate, or gradient distance), set weights, merge, republish.
int run_validator(const NeuronArgs& args, const NeuronHparams& h);

}  // namespace bistro::v1
