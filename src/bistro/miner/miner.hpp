// The protocol v2 miner (codec sparseloco): each window it moves theta to theta_w by the record,
// trains H inner AdamW steps on the pages assigned to (window, uid) (inner_loop.hpp), and
// publishes the error-feedback top-k of its pseudo-gradient, signed, before the deadline.
#pragma once

#include "bistro/protocol/neuron.hpp"

namespace bistro {

// Runs until --windows are done (or forever); the runtime is set up and the hparams read.
int run_loco_miner(const NeuronArgs& args, const NeuronHparams& h);

}  // namespace bistro
