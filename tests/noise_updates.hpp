// Random updates in the protocol's sparseloco layout, for the tests of the cheats and the gauntlet.
#pragma once

#include <vector>

#include "bistro/cheats/cheats.hpp"
#include "bistro/compress/update.hpp"

namespace bistro::test {

// Three tensors: two matrices of 64 x 64 chunks and a vector.
inline const std::vector<ParameterSpec> kSpecs = {{"a", {128, 128}}, {"b", {64, 256}}, {"n", {64}}};

// A noise update (cheats.hpp: top-64 per chunk, 2-bit levels) at this RMS in every tensor.
inline Update noise(uint64_t seed, float rms = 0.01f) {
  return noise_update(kSpecs, 64, 64, std::vector<float>(kSpecs.size(), rms), seed);
}

}  // namespace bistro::test
