#include "bistro/compress/sparse_loco.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "bistro/core/error.hpp"

namespace bistro::sparse_loco {

std::array<float, 4> quantize2(std::span<const float> v, std::span<uint8_t> codes) {
  check(codes.size() == v.size(), "quantize2: {} codes for {} values", codes.size(), v.size());
  double ss = 0;
  for (float x : v) ss += static_cast<double>(x) * x;
  const double rms = v.empty() ? 0.0 : std::sqrt(ss / static_cast<double>(v.size()));
  const double width = 3 * rms, lo = -6 * rms;
  std::array<double, 4> sum{};
  std::array<int64_t, 4> count{};
  for (size_t i = 0; i < v.size(); ++i) {
    const double c = width > 0 ? std::floor((v[i] - lo) / width) : 1.0;
    const auto code = static_cast<uint8_t>(std::clamp(c, 0.0, 3.0));
    codes[i] = code;
    sum[code] += v[i];
    ++count[code];
  }
  std::array<float, 4> levels{};
  for (int c = 0; c < 4; ++c)
    levels[c] =
        static_cast<float>(count[c] ? sum[c] / static_cast<double>(count[c]) : (c - 1.5) * width);
  return levels;
}

void encode(const ChunkPlan& p, float* e, const float* delta, float beta, int64_t k, int value_bits,
            int32_t* idx, float* val, std::array<float, 4>* levels,
            const dct::ParallelFor& parallel) {
  check(value_bits == 32 || value_bits == 2, "sparseloco: value_bits {} is not 2 or 32",
        value_bits);
  check(k >= 1 && k <= p.size(), "sparseloco: k {} outside [1, {}]", k, p.size());
  const int64_t size = p.size();
  // 1. Fold the pseudo-gradient in and pick each chunk's top k (chunks own disjoint elements).
  parallel(p.chunks(), [&](int64_t c0, int64_t c1) {
    std::vector<float> chunk(static_cast<size_t>(size));
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t j = 0; j < size; ++j) {
        float& x = e[element_of(p, c, j)];
        x = beta * x + (delta ? delta[element_of(p, c, j)] : 0.0f);
        chunk[j] = x;
      }
      dct::top_k(chunk.data(), size, k, idx + c * k, val + c * k);
    }
  });
  // 2. Quantise over the whole tensor's sent values (the RMS is per tensor).
  const auto n = static_cast<size_t>(p.chunks() * k);
  if (value_bits == 2) {
    std::vector<uint8_t> codes(n);
    *levels = quantize2({val, n}, codes);
    for (size_t i = 0; i < n; ++i) val[i] = (*levels)[codes[i]];
  }
  // 3. Error feedback: what the peers will decode leaves the buffer.
  parallel(p.chunks(), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t s = 0; s < k; ++s) e[element_of(p, c, idx[c * k + s])] -= val[c * k + s];
  });
}

double peer_norm(const dct::SparseChunks& peer, int64_t chunks) {
  double ss = 0;
  const int64_t n = chunks * peer.k;
  for (int64_t i = 0; i < n; ++i) {
    const double x = peer.val[i];
    ss = ss + x * x;
  }
  return std::sqrt(ss);
}

double outer_step(const ChunkPlan& p, std::span<const dct::SparseChunks> peers, float* param,
                  float alpha, const dct::ParallelFor& parallel) {
  if (peers.empty()) return 0.0;
  // Clip: factor_i = min(1, median / norm_i) in float64, rounded once to float32.
  std::vector<double> norms;
  for (const auto& peer : peers) norms.push_back(peer_norm(peer, p.chunks()));
  std::vector<double> sorted = norms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[(sorted.size() - 1) / 2];  // the lower median
  std::vector<float> factor(peers.size());
  for (size_t i = 0; i < peers.size(); ++i)
    factor[i] = norms[i] > median ? static_cast<float>(median / norms[i]) : 1.0f;
  const int64_t size = p.size();
  parallel(p.chunks(), [&](int64_t c0, int64_t c1) {
    std::vector<float> sum(static_cast<size_t>(size));
    std::vector<int32_t> count(static_cast<size_t>(size));
    for (int64_t c = c0; c < c1; ++c) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      std::fill(count.begin(), count.end(), 0);
      for (size_t i = 0; i < peers.size(); ++i) {
        const auto& peer = peers[i];
        for (int64_t s = 0; s < peer.k; ++s) {
          const int32_t j = peer.idx[c * peer.k + s];
          sum[j] = sum[j] + peer.val[c * peer.k + s] * factor[i];
          ++count[j];
        }
      }
      for (int64_t j = 0; j < size; ++j) {
        if (count[j] == 0) continue;
        const float mean = sum[j] / static_cast<float>(count[j]);
        float& x = param[element_of(p, c, j)];
        x = x - alpha * mean;
      }
    }
  });
  return median;
}

}  // namespace bistro::sparse_loco
