#include "bistro/ops/bench_compress.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "bistro/compress/dct.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/model/config.hpp"
#include "bistro/runtime/runtime.hpp"

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
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };

  // Each peer encodes its own gradient; every buffer exists before the clock starts.
  const int peers = std::max(1, o.peers);
  std::optional<DemoCompressor> comp;
  if (o.codec == "dct-topk") comp.emplace(params, DemoOptions{.k = o.k});
  std::vector<double> encode_s, serialize_s, decode_s, merge_s;
  std::vector<Update> decoded;
  UpdateExpectation e;
  e.codec = o.codec;
  e.k = o.k;
  e.value_bits = o.value_bits;
  e.index_bits = o.index_bits;
  e.window = 1;
  e.hotkey = to_hex(signer->public_key());
  e.config_hash = config_hash(config);
  e.params = specs;
  for (int peer = 0; peer < peers; ++peer) {
    if (peer > 0) {
      for (auto& [n, p] : params) p.mutable_grad().normal_(0.0, 1e-3);
    }
    auto t0 = Clock::now();
    Update u = comp ? comp->encode(1e-3) : slice_encode(params, key, o.k);
    encode_s.push_back(secs(t0));
    u.window = 1;
    u.uid = static_cast<uint64_t>(peer);
    u.value_bits = o.value_bits;
    u.index_bits = o.index_bits;
    u.config_hash = e.config_hash;
    t0 = Clock::now();
    const auto bytes = encode_update(u, *signer);
    serialize_s.push_back(secs(t0));
    r.wire_bytes = bytes.size();
    e.uid = u.uid;
    t0 = Clock::now();
    decoded.push_back(decode_update(bytes, e, "bench"));
    decode_s.push_back(secs(t0));
  }

  std::vector<PeerUpdate> gathered;
  for (int i = 0; i < peers; ++i) gathered.push_back({static_cast<uint64_t>(i), &decoded[i]});
  std::vector<torch::Tensor> ps;
  for (auto& [n, p] : params) ps.push_back(p);
  for (int rep = 0; rep < std::max(1, o.repeats); ++rep) {
    const auto t0 = Clock::now();
    if (comp) {
      demo_merge(ps, gathered, 1e-3, 0.1);
    } else {
      slice_merge(params, gathered, key, o.k);
    }
    merge_s.push_back(secs(t0));
  }
  r.encode_s = median(encode_s);
  r.serialize_s = median(serialize_s);
  r.decode_s = median(decode_s);
  r.merge_s = median(merge_s);
  return r;
}

}  // namespace bistro
