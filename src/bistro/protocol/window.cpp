#include "bistro/protocol/window.hpp"

#include <fmt/format.h>

#include "bistro/protocol/neuron.hpp"

namespace bistro {

uint64_t window_of(uint64_t block, const NeuronHparams& h) {
  return block / h.blocks_per_window;
}

uint64_t window_start_block(uint64_t window, const NeuronHparams& h) {
  return window * h.blocks_per_window;
}

uint64_t window_deadline_block(uint64_t window, const NeuronHparams& h) {
  return window_start_block(window + 1, h) + h.grace_blocks;
}

std::string update_key(uint64_t window, uint16_t uid, const std::string& hotkey_ss58) {
  return fmt::format("updates/{:010}/{}-{}.safetensors", window, uid, hotkey_ss58);
}

std::string record_key(uint64_t window) {
  return fmt::format("records/{:010}.json", window);
}

std::string mirror_key(uint64_t window, uint16_t uid) {
  return fmt::format("records/{:010}/{}.safetensors", window, uid);
}

std::string checkpoint_key(uint64_t window, const std::string& file) {
  return fmt::format("checkpoints/{:010}/{}", window, file);
}

}  // namespace bistro
