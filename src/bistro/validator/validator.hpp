// The protocol v2 validator (codec sparseloco): it gathers and measures the window's updates,
// judges them (gauntlet.hpp), publishes the record as the lead or follows the lead's, and sets
// weights. stages.hpp holds the stages; this is its entry point.
#pragma once

#include "bistro/protocol/neuron.hpp"

namespace bistro {

// Runs until --windows are done (or forever); the runtime is set up and the hparams read.
int run_loco_validator(const NeuronArgs& args, const NeuronHparams& h);

}  // namespace bistro
