// The outer step, identical on every node (docs/protocol.md): per parameter, each accepted peer's
// sparse values clipped to the median peer norm, the mean over the peers that sent each
// coordinate, theta <- theta - alpha * mean. And the hash that proves two nodes hold the same
// theta afterwards.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "bistro/compress/update.hpp"

namespace bistro {

// Peers are sorted by uid (two from one uid are an error); every peer is checked against every
// parameter before the first write, so a misfit leaves the parameters untouched.
void outer_step(const std::vector<torch::Tensor>& params, std::vector<PeerUpdate> peers,
                double alpha);

// XXH3-128 over the parameters' float32 bytes in order (CPU, contiguous), as 32 hex digits.
std::string params_hash(const std::vector<torch::Tensor>& params);

}  // namespace bistro
