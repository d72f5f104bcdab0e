#include "bistro/protocol/outer_step.hpp"

#include <xxhash.h>

#include <algorithm>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/sparse_loco.hpp"
#include "bistro/compress/torch_cpu.hpp"
#include "bistro/core/error.hpp"

namespace bistro {
void outer_step(const std::vector<torch::Tensor>& params, std::vector<PeerUpdate> peers,
                double alpha) {
  torch::NoGradGuard no_grad;
  std::sort(peers.begin(), peers.end(), [](auto& a, auto& b) { return a.uid < b.uid; });
  for (size_t i = 1; i < peers.size(); ++i)
    check(peers[i].uid != peers[i - 1].uid, "outer step: two updates from uid {}", peers[i].uid);
  // Check every peer against every parameter before the first write: all or nothing.
  std::vector<ChunkPlan> plans;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto plan =
        chunk_plan(params[i].sizes().vec(), peers.empty() ? 64 : peers.front().update->chunk_cap);
    for (const auto& peer : peers) {
      check(peer.update->codec == "sparseloco" && peer.update->tensors.size() == params.size(),
            "outer step: uid {} did not send a sparseloco update for this model", peer.uid);
      check(peer.update->chunk_cap == peers.front().update->chunk_cap,
            "outer step: uid {} uses another chunk size", peer.uid);
      const auto& t = peer.update->tensors[i];
      check(t.rows == plan.chunks() && t.k >= 1 && t.k <= plan.size() &&
                t.idx.size() == static_cast<size_t>(t.rows * t.k) && t.val.size() == t.idx.size(),
            "outer step: uid {} tensor {} does not fit the parameter", peer.uid, t.name);
      for (int32_t j : t.idx)
        check(j >= 0 && j < plan.size(), "outer step: uid {} tensor {} index {} out of range",
              peer.uid, t.name, j);
    }
    plans.push_back(plan);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<dct::SparseChunks> sparse;
    for (const auto& peer : peers) {
      const auto& t = peer.update->tensors[i];
      sparse.push_back({t.idx.data(), t.val.data(), t.k});
    }
    auto p = params[i];
    const bool in_place =
        p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous();
    auto cpu = in_place ? p : cpu_float(p);
    sparse_loco::outer_step(plans[i], sparse, cpu.data_ptr<float>(), static_cast<float>(alpha),
                            torch_parallel);
    if (!in_place) p.copy_(cpu.view(p.sizes()));
  }
}

std::string params_hash(const std::vector<torch::Tensor>& params) {
  XXH3_state_t* state = XXH3_createState();
  check(state != nullptr, "params_hash: out of memory");
  XXH3_128bits_reset(state);
  for (const auto& p : params) {
    const auto c = cpu_float(p);
    XXH3_128bits_update(state, c.data_ptr(), static_cast<size_t>(c.numel()) * sizeof(float));
  }
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

}  // namespace bistro
