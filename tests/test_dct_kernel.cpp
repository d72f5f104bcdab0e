#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>

#include "bistro/compress/dct_kernel.hpp"

namespace bistro {
namespace {

double d(int64_t n, int64_t u, int64_t x) {
  return std::sqrt((u == 0 ? 1.0 : 2.0) / static_cast<double>(n)) *
         std::cos(std::numbers::pi * static_cast<double>((2 * x + 1) * u) / (2.0 * n));
}

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(g);
  return v;
}

// Every length the chunk plans produce (powers of two, odd, mixed), against the O(n^2) sums in
// double, with strided rows and lane counts on and off the vector width.
TEST(DctKernel, TransformMatchesTheDirectSum) {
  for (int64_t n : {1, 2, 3, 4, 5, 6, 8, 12, 16, 48, 50, 64}) {
    const auto& t = dct::transform(n);
    for (int64_t w : {1, 3, 16, 17, 64}) {
      const int64_t stride = w + 5;
      const auto in = gaussian(static_cast<size_t>(n * stride), static_cast<uint32_t>(n * 100 + w));
      std::vector<float> fwd(static_cast<size_t>(n * stride)), inv(fwd.size());
      std::vector<float> scratch(static_cast<size_t>(t.scratch_floats(w)));
      t.forward(in.data(), stride, fwd.data(), stride, w, scratch.data());
      t.inverse(in.data(), stride, inv.data(), stride, w, scratch.data());
      for (int64_t u = 0; u < n; ++u) {
        for (int64_t j = 0; j < w; ++j) {
          double f = 0, b = 0;
          for (int64_t x = 0; x < n; ++x) {
            f += d(n, u, x) * in[x * stride + j];
            b += d(n, x, u) * in[x * stride + j];
          }
          ASSERT_NEAR(fwd[u * stride + j], f, 2e-5) << "n " << n << " w " << w << " u " << u;
          ASSERT_NEAR(inv[u * stride + j], b, 2e-5) << "n " << n << " w " << w << " u " << u;
        }
      }
    }
  }
}

TEST(DctKernel, ChunksMatchTheDirectSumAndInvert) {
  for (auto shape : {std::vector<int64_t>{12, 20}, std::vector<int64_t>{128, 64},
                     std::vector<int64_t>{7, 3, 2}, std::vector<int64_t>{96}}) {
    const ChunkPlan p = chunk_plan(shape);
    const auto x = gaussian(static_cast<size_t>(p.rows * p.cols), 7);
    std::vector<float> c(x.size()), back(x.size());
    dct::forward_chunks(p, x.data(), c.data());
    dct::inverse_chunks(p, c.data(), back.data());
    const int64_t per_row = p.cols / p.n2;
    for (int64_t r = 0; r < p.chunks(); r += 3) {
      const int64_t y0 = (r / per_row) * p.n1, x0 = (r % per_row) * p.n2;
      for (int64_t u = 0; u < p.n1; ++u) {
        for (int64_t v = 0; v < p.n2; ++v) {
          double s = 0;
          for (int64_t a = 0; a < p.n1; ++a) {
            for (int64_t b = 0; b < p.n2; ++b) {
              s += d(p.n1, u, a) * d(p.n2, v, b) * x[(y0 + a) * p.cols + x0 + b];
            }
          }
          ASSERT_NEAR(c[r * p.size() + u * p.n2 + v], s, 1e-4) << "chunk " << r;
        }
      }
    }
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(back[i], x[i], 1e-5);
  }
}

// The selection against sorting everything, on rows full of ties (few distinct magnitudes, both
// signs, zeros).
TEST(DctKernel, TopKIsTheSortedSelection) {
  std::mt19937 g(3);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t size = 1 + static_cast<int64_t>(g() % 300);
    const int64_t k = 1 + static_cast<int64_t>(g() % static_cast<uint32_t>(size));
    std::vector<float> row(static_cast<size_t>(size));
    const int levels = 1 + static_cast<int>(g() % 6);
    for (auto& v : row) {
      v = static_cast<float>(static_cast<int>(g() % (2 * levels + 1)) - levels) * 0.25f;
    }
    std::vector<int32_t> order(static_cast<size_t>(size));
    for (int64_t j = 0; j < size; ++j) order[j] = static_cast<int32_t>(j);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return std::fabs(row[a]) > std::fabs(row[b]); });
    std::vector<int32_t> expect(order.begin(), order.begin() + k);
    std::sort(expect.begin(), expect.end());
    std::vector<int32_t> idx(static_cast<size_t>(k));
    std::vector<float> val(static_cast<size_t>(k));
    dct::top_k(row.data(), size, k, idx.data(), val.data());
    ASSERT_EQ(idx, expect) << "size " << size << " k " << k;
    for (int64_t s = 0; s < k; ++s) ASSERT_EQ(val[s], row[idx[s]]);
  }
}

TEST(DctKernel, EncodeFoldsTheGradientSendsTheTopKAndKeepsTheRest) {
  const ChunkPlan p = chunk_plan({64, 128});
  const auto g = gaussian(static_cast<size_t>(p.rows * p.cols), 11);
  auto m = gaussian(static_cast<size_t>(p.rows * p.cols), 12);
  const auto m0 = m;
  std::vector<float> dg(m.size());
  dct::forward_chunks(p, g.data(), dg.data());
  const int64_t k = 32;
  std::vector<int32_t> idx(static_cast<size_t>(p.chunks() * k));
  std::vector<float> val(idx.size());
  dct::encode_momentum(p, g.data(), m.data(), 0.9f, 0.5f, k, idx.data(), val.data());
  for (int64_t r = 0; r < p.chunks(); ++r) {
    std::vector<float> full(static_cast<size_t>(p.size()));
    for (int64_t j = 0; j < p.size(); ++j) {
      full[j] = 0.9f * m0[r * p.size() + j] + 0.5f * dg[r * p.size() + j];
    }
    std::vector<int32_t> ei(static_cast<size_t>(k));
    std::vector<float> ev(ei.size());
    dct::top_k(full.data(), p.size(), k, ei.data(), ev.data());
    ASSERT_EQ(std::vector<int32_t>(idx.begin() + r * k, idx.begin() + (r + 1) * k), ei);
    for (int64_t j = 0; j < p.size(); ++j) {
      const bool sent = std::binary_search(ei.begin(), ei.end(), static_cast<int32_t>(j));
      ASSERT_EQ(m[r * p.size() + j], sent ? 0.0f : full[j]);
    }
    for (int64_t s = 0; s < k; ++s) ASSERT_EQ(val[r * k + s], full[ei[s]]);
  }
}

TEST(DctKernel, EncodeAtGivenIndicesSendsThoseAndKeepsTheRest) {
  const ChunkPlan p = chunk_plan({64, 64});
  auto m = gaussian(static_cast<size_t>(p.size()), 13);
  const auto m0 = m;
  std::vector<int32_t> idx = {0, 5, 4095};
  std::vector<float> val(3);
  dct::encode_momentum(p, nullptr, m.data(), 0.5f, 1.0f, 3, idx.data(), val.data(), dct::serial_for,
                       true);
  EXPECT_EQ(idx, (std::vector<int32_t>{0, 5, 4095}));
  for (int64_t j = 0; j < p.size(); ++j) {
    const bool sent = j == 0 || j == 5 || j == 4095;
    ASSERT_EQ(m[j], sent ? 0.0f : 0.5f * m0[j]);
  }
  EXPECT_EQ(val, (std::vector<float>{0.5f * m0[0], 0.5f * m0[5], 0.5f * m0[4095]}));
}

struct Peer {
  std::vector<int32_t> idx;
  std::vector<float> val;
};

// The merge against its definition in double: mean per index over the peers that sent it, inverse
// DCT, sign step. Signs are compared where the double result is clear of rounding.
void check_merge(const std::vector<int64_t>& shape, int64_t k) {
  const ChunkPlan p = chunk_plan(shape);
  const int64_t low = std::min<int64_t>(64, p.size() / 2), shared = std::min(k / 2, low);
  std::vector<Peer> peers;
  std::mt19937 g(5);
  for (int i = 0; i < 3; ++i) {
    Peer peer;
    for (int64_t r = 0; r < p.chunks(); ++r) {
      std::vector<int32_t> pick(static_cast<size_t>(p.size()));
      for (int64_t j = 0; j < p.size(); ++j) pick[j] = static_cast<int32_t>(j);
      // Low indices overlap between peers, high ones mostly do not.
      std::shuffle(pick.begin() + low, pick.end(), g);
      std::shuffle(pick.begin(), pick.begin() + low, g);
      std::vector<int32_t> chosen(pick.begin(), pick.begin() + shared);
      chosen.insert(chosen.end(), pick.begin() + low, pick.begin() + low + (k - shared));
      std::sort(chosen.begin(), chosen.end());
      peer.idx.insert(peer.idx.end(), chosen.begin(), chosen.end());
    }
    peer.val = gaussian(peer.idx.size(), 20 + i);
    peers.push_back(std::move(peer));
  }
  std::vector<dct::SparseChunks> sparse;
  for (const auto& peer : peers) sparse.push_back({peer.idx.data(), peer.val.data(), k});
  const auto p0 = gaussian(static_cast<size_t>(p.rows * p.cols), 30);
  auto param = p0;
  const float decay = 0.99f, lr = 0.01f;
  dct::merge_sign_step(p, sparse, param.data(), decay, lr);

  int checked = 0;
  const int64_t per_row = p.cols / p.n2;
  for (int64_t r = 0; r < p.chunks(); ++r) {
    std::vector<double> sum(static_cast<size_t>(p.size()), 0.0);
    std::vector<int> count(static_cast<size_t>(p.size()), 0);
    for (const auto& peer : peers) {
      for (int64_t s = 0; s < k; ++s) {
        sum[peer.idx[r * k + s]] += peer.val[r * k + s];
        count[peer.idx[r * k + s]] += 1;
      }
    }
    const int64_t y0 = (r / per_row) * p.n1, x0 = (r % per_row) * p.n2;
    for (int64_t a = 0; a < p.n1; ++a) {
      for (int64_t b = 0; b < p.n2; ++b) {
        double x = 0;
        for (int64_t j = 0; j < p.size(); ++j) {
          if (count[j] > 0) x += sum[j] / count[j] * d(p.n1, j / p.n2, a) * d(p.n2, j % p.n2, b);
        }
        if (std::fabs(x) < 1e-4) continue;
        const int64_t at = (y0 + a) * p.cols + x0 + b;
        const float expect = p0[at] * decay - lr * (x > 0 ? 1.0f : -1.0f);
        ASSERT_EQ(param[at], expect) << "k " << k << "chunk " << r << " (" << a << ", " << b << ")";
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, p.rows * p.cols * 9 / 10);

  auto decayed = p0;
  dct::merge_sign_step(p, {}, decayed.data(), decay, lr);
  for (size_t i = 0; i < p0.size(); ++i) ASSERT_EQ(decayed[i], p0[i] * decay);
}

// Few coefficients per chunk (the first pass over the sent ones only) and many (the full pass).
TEST(DctKernel, MergeIsTheMeanInverseAndSignStep) {
  check_merge({64, 192}, 40);
  check_merge({24, 40}, 200);
}

// The same bits whatever the split into threads' ranges, and whichever lanes run in vector or
// scalar code (w = 17: lane 16 is a copy of lane 0 but goes through the scalar tail).
TEST(DctKernel, BitsDoNotDependOnRangesOrLanes) {
  const ChunkPlan p = chunk_plan({128, 128});
  const auto x = gaussian(static_cast<size_t>(p.rows * p.cols), 9);
  std::vector<float> serial(x.size()), split(x.size());
  dct::inverse_chunks(p, x.data(), serial.data());
  dct::inverse_chunks(p, x.data(), split.data(), [](int64_t n, const auto& body) {
    for (int64_t i = n - 1; i >= 0; --i) body(i, i + 1);
  });
  ASSERT_EQ(0, std::memcmp(serial.data(), split.data(), x.size() * sizeof(float)));

  const auto& t = dct::transform(64);
  auto in = gaussian(64 * 17, 4);
  for (int64_t i = 0; i < 64; ++i) in[i * 17 + 16] = in[i * 17];
  std::vector<float> out(in.size()), scratch(static_cast<size_t>(t.scratch_floats(17)));
  for (bool forward : {true, false}) {
    if (forward) {
      t.forward(in.data(), 17, out.data(), 17, 17, scratch.data());
    } else {
      t.inverse(in.data(), 17, out.data(), 17, 17, scratch.data());
    }
    for (int64_t i = 0; i < 64; ++i) {
      uint32_t a, b;
      std::memcpy(&a, &out[i * 17], 4);
      std::memcpy(&b, &out[i * 17 + 16], 4);
      ASSERT_EQ(a, b) << (forward ? "forward" : "inverse") << " row " << i;
    }
  }
}

}  // namespace
}  // namespace bistro
