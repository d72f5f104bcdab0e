#include "bistro/ops/bench_compress.hpp"

#include <torch/torch.h>

#include <chrono>

#include "bistro/compress/dct.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/model/config.hpp"

namespace bistro {

CompressBenchResult run_compress_bench(const CompressBenchOptions& o) {
  init_runtime(o.threads);
  const auto config = preset(o.preset);
  auto specs = parameter_specs(config);
  if (o.layers >= 0) {
    // Keep the embedding, the first `layers` layers, the final norm and the head.
    std::vector<ParameterSpec> kept;
    for (const auto& s : specs) {
      const auto p = s.name.find("layers.");
      if (p != std::string::npos && std::stoi(s.name.substr(p + 7)) >= o.layers) continue;
      kept.push_back(s);
    }
    specs = kept;
  }
  CompressBenchResult r;
  std::vector<std::pair<std::string, torch::Tensor>> params;
  torch::manual_seed(0);
  for (const auto& s : specs) {
    auto t = torch::randn(s.shape) * 0.02;
    t.mutable_grad() = torch::randn(s.shape) * 1e-3;
    params.emplace_back(s.name, t);
    r.parameters += t.numel();
  }
  r.model_bytes = static_cast<uint64_t>(r.parameters) * 4;
  using Clock = std::chrono::steady_clock;
  auto secs = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  const uint8_t block_hash[32] = {7};
  const uint64_t key = slice_key(1, block_hash);
  auto signer = ed25519_signer({3});

  auto t0 = Clock::now();
  Update u;
  if (o.codec == "dct-topk") {
    DemoCompressor comp(params, {.k = o.k});
    u = comp.encode(1e-3);
  } else {
    u = slice_encode(params, key, o.k);
  }
  r.encode_s = secs(t0);
  u.window = 1;
  u.uid = 0;
  u.value_bits = o.value_bits;
  u.index_bits = o.index_bits;
  u.config_hash = config_hash(config);

  t0 = Clock::now();
  const auto bytes = encode_update(u, *signer);
  r.serialize_s = secs(t0);
  r.wire_bytes = bytes.size();

  UpdateExpectation e;
  e.codec = u.codec;
  e.k = u.k;
  e.value_bits = u.value_bits;
  e.index_bits = u.index_bits;
  e.window = 1;
  e.uid = 0;
  e.hotkey = to_hex(signer->public_key());
  e.config_hash = u.config_hash;
  e.params = specs;
  t0 = Clock::now();
  const auto decoded = decode_update(bytes, e, "bench");
  r.decode_s = secs(t0);

  // `peers` copies of the update stand in for the gathered peers (merge cost does not depend on
  // the values).
  std::vector<PeerUpdate> peers;
  for (int i = 0; i < o.peers; ++i) peers.push_back({static_cast<uint64_t>(i), &decoded});
  t0 = Clock::now();
  if (o.codec == "dct-topk") {
    std::vector<torch::Tensor> ps;
    for (auto& [n, p] : params) ps.push_back(p);
    demo_merge(ps, peers, 1e-3, 0.1);
  } else {
    slice_merge(params, peers, key, o.k);
  }
  r.merge_s = secs(t0);
  return r;
}

}  // namespace bistro
