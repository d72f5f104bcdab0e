// `bistro miner` and `bistro validator`: the runtime, the hparams, and the protocol they name
// (v2 by default; v1's codecs slice and dct-topk).
#include "bistro/core/runtime.hpp"
#include "bistro/neurons/cheats.hpp"
#include "bistro/neurons/neuron.hpp"
#include "bistro/neurons/v1/v1.hpp"

namespace bistro {

int run_miner(const NeuronArgs& a) {
  const NeuronHparams h = load_hparams(a.hparams_file);
  init_runtime(a.threads);
  neuron_compute(a, h.codec);
  if (h.codec == "sparseloco") return run_loco_miner(a, h);
  check(a.behaviour == "honest" || a.behaviour == "lazy" || a.behaviour == "garbage",
        "miner: behaviour '{}' needs codec sparseloco (codec {} has honest, lazy and garbage)",
        a.behaviour, h.codec);
  return v1::run_miner(a, h);
}

int run_validator(const NeuronArgs& a) {
  const NeuronHparams h = load_hparams(a.hparams_file);
  check(a.scoring == "loss-delta" || a.scoring == "win-rate" || a.scoring == "gradient-distance",
        "validator: unknown --scoring '{}' (loss-delta, win-rate or gradient-distance)", a.scoring);
  init_runtime(a.threads);
  neuron_compute(a, h.codec);
  check(h.codec != "sparseloco" || a.scoring == "loss-delta",
        "validator: codec sparseloco scores by loss-delta (got --scoring {})", a.scoring);
  check(a.scoring != "gradient-distance" || h.codec == "slice",
        "validator: gradient-distance scoring needs the slice codec (hparams codec is {})",
        h.codec);
  // Dishonest kinds (tests and the localnet) follow protocol v2's records.
  check(parse_validator_behaviour(a.behaviour) == ValidatorBehaviour::Honest ||
            h.codec == "sparseloco",
        "validator: behaviour '{}' needs codec sparseloco", a.behaviour);
  return h.codec == "sparseloco" ? run_loco_validator(a, h) : v1::run_validator(a, h);
}

}  // namespace bistro
