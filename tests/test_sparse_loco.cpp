// SparseLoCo: the miner's error-feedback top-k with 2-bit levels, the consensus outer step against
// a direct transcription of its rule, and the wire format of the sparseloco codec.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "bistro/compress/sparse_loco.hpp"
#include "bistro/compress/update.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(g) * scale;
  return v;
}

TEST(SparseLoco, ElementOfFollowsTheChunkLayout) {
  const ChunkPlan p = chunk_plan({128, 192});  // n1 = 64, n2 = 64: 2 x 3 blocks
  EXPECT_EQ(sparse_loco::element_of(p, 0, 0), 0);
  EXPECT_EQ(sparse_loco::element_of(p, 1, 0), 64);        // block (0, 1)
  EXPECT_EQ(sparse_loco::element_of(p, 3, 0), 64 * 192);  // block (1, 0)
  EXPECT_EQ(sparse_loco::element_of(p, 0, 65), 192 + 1);  // (a, b) = (1, 1)
  EXPECT_EQ(sparse_loco::element_of(p, 5, 4095), 128 * 192 - 1);
}

TEST(SparseLoco, TwoBitLevelsAreTheMeansOfTheirBins) {
  std::vector<float> v = {-10, -1, -0.5f, 0.25f, 0.75f, 2, 9};
  std::vector<uint8_t> codes(v.size());
  const auto levels = sparse_loco::quantize2(v, codes);
  double ss = 0;
  for (float x : v) ss += double(x) * x;
  const double rms = std::sqrt(ss / v.size());
  std::map<int, std::vector<float>> bins;
  for (size_t i = 0; i < v.size(); ++i) {
    const int c = std::clamp(int(std::floor((v[i] + 6 * rms) / (3 * rms))), 0, 3);
    EXPECT_EQ(codes[i], c) << "value " << v[i];
    bins[c].push_back(v[i]);
  }
  for (int c = 0; c < 4; ++c) {
    if (bins[c].empty()) {  // NOLINT
      EXPECT_FLOAT_EQ(levels[c], float((c - 1.5) * 3 * rms));
    } else {
      double s = 0;
      for (float x : bins[c]) s += x;
      EXPECT_FLOAT_EQ(levels[c], float(s / bins[c].size())) << "bin " << c;
    }
  }
}

// e_before = beta e + d; after the encode, e_before = e_after + sent (exactly, at the sent
// coordinates) and untouched elsewhere; the sent entries are each chunk's largest |e_before|.
TEST(SparseLoco, EncodeKeepsTheTopKAndFeedsBackWhatItSent) {
  const ChunkPlan p = chunk_plan({128, 96});
  const size_t n = size_t(p.rows * p.cols);
  for (int bits : {32, 2}) {
    auto e = gaussian(n, 1, 0.1f);
    const auto d = gaussian(n, 2);
    std::vector<float> before(n);
    for (size_t i = 0; i < n; ++i) before[i] = 0.9f * e[i] + d[i];
    const int64_t k = 16;
    std::vector<int32_t> idx(size_t(p.chunks() * k));
    std::vector<float> val(idx.size());
    std::array<float, 4> levels{};
    sparse_loco::encode(p, e.data(), d.data(), 0.9f, k, bits, idx.data(), val.data(), &levels);
    std::vector<char> sent(n, 0);
    for (int64_t c = 0; c < p.chunks(); ++c) {
      float smallest_sent = INFINITY;
      for (int64_t s = 0; s < k; ++s) {
        const int64_t el = sparse_loco::element_of(p, c, idx[c * k + s]);
        if (s) {
          EXPECT_LT(idx[c * k + s - 1], idx[c * k + s]);
        }
        sent[el] = 1;
        smallest_sent = std::min(smallest_sent, std::fabs(before[el]));
        EXPECT_EQ(e[el], before[el] - val[c * k + s]);
        if (bits == 32) {
          EXPECT_EQ(val[c * k + s], before[el]);
        } else {
          EXPECT_NE(std::find(levels.begin(), levels.end(), val[c * k + s]), levels.end());
        }
      }
      for (int64_t j = 0; j < p.size(); ++j) {
        const int64_t el = sparse_loco::element_of(p, c, j);
        if (!sent[el]) {
          EXPECT_LE(std::fabs(before[el]), smallest_sent);
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (!sent[i]) {
        ASSERT_EQ(e[i], before[i]);
      }
    }
  }
}

// The rule written out directly: clip to the lower-median norm, mean over senders, step.
TEST(SparseLoco, OuterStepIsTheClippedMeanOverSenders) {
  const ChunkPlan p = chunk_plan({64, 128});
  const size_t n = size_t(p.rows * p.cols);
  const int64_t k = 40;
  std::vector<std::vector<int32_t>> idx(4);
  std::vector<std::vector<float>> val(4);
  std::vector<dct::SparseChunks> peers;
  for (int i = 0; i < 4; ++i) {
    auto e = gaussian(n, 10 + i, 0.01f * float(1 << i));  // norms grow: the top two get clipped
    idx[i].resize(size_t(p.chunks() * k));
    val[i].resize(idx[i].size());
    std::array<float, 4> lv{};
    sparse_loco::encode(p, e.data(), nullptr, 1.0f, k, 2, idx[i].data(), val[i].data(), &lv);
    peers.push_back({idx[i].data(), val[i].data(), k});
  }
  auto param = gaussian(n, 99, 0.02f);
  auto expect = param;
  std::vector<double> norms;
  for (auto& pe : peers) norms.push_back(sparse_loco::peer_norm(pe, p.chunks()));
  auto sorted = norms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[1];
  std::vector<float> sum(n, 0.0f);
  std::vector<int> count(n, 0);
  for (int i = 0; i < 4; ++i) {
    const float f = norms[i] > median ? float(median / norms[i]) : 1.0f;
    for (int64_t c = 0; c < p.chunks(); ++c)
      for (int64_t s = 0; s < k; ++s) {
        const int64_t el = sparse_loco::element_of(p, c, idx[i][c * k + s]);
        sum[el] += val[i][c * k + s] * f;
        ++count[el];
      }
  }
  int overlapping = 0;
  for (size_t i = 0; i < n; ++i) {
    if (count[i]) expect[i] = expect[i] - 0.5f * (sum[i] / float(count[i]));
    overlapping += count[i] > 1;
  }
  EXPECT_GT(overlapping, 0);
  EXPECT_DOUBLE_EQ(sparse_loco::outer_step(p, peers, param.data(), 0.5f), median);
  ASSERT_EQ(0, std::memcmp(param.data(), expect.data(), n * sizeof(float)));

  // The same bits when chunks run in another order (as threads would split them).
  auto again = gaussian(n, 99, 0.02f);
  sparse_loco::outer_step(p, peers, again.data(), 0.5f, [](int64_t m, const auto& body) {
    for (int64_t i = m - 1; i >= 0; --i) body(i, i + 1);
  });
  ASSERT_EQ(0, std::memcmp(param.data(), again.data(), n * sizeof(float)));
}

TEST(SparseLoco, NoPeersLeavesTheParametersAlone) {
  const ChunkPlan p = chunk_plan({64});
  auto param = gaussian(64, 3);
  const auto before = param;
  EXPECT_EQ(sparse_loco::outer_step(p, {}, param.data(), 1.0f), 0.0);
  EXPECT_EQ(param, before);
}

// ---- wire format

UpdateExpectation loco_expectation(const Signer& s, const LlamaConfig& config) {
  UpdateExpectation e;
  e.codec = "sparseloco";
  e.k = 64;
  e.value_bits = 2;
  e.index_bits = 12;
  e.window = 9;
  e.uid = 2;
  e.hotkey = to_hex(s.public_key());
  e.config_hash = config_hash(config);
  e.params = parameter_specs(config);
  return e;
}

Update loco_update(const UpdateExpectation& e) {
  Update u;
  u.codec = e.codec;
  u.k = e.k;
  u.value_bits = e.value_bits;
  u.index_bits = e.index_bits;
  u.window = e.window;
  u.uid = e.uid;
  u.config_hash = e.config_hash;
  uint32_t seed = 1;
  for (const auto& p : e.params) {
    const ChunkPlan plan = chunk_plan(p.shape);
    const int64_t k = clamp_k(e.k, plan);
    auto buf = gaussian(size_t(plan.rows * plan.cols), seed++);
    UpdateTensor t;
    t.name = p.name;
    t.rows = plan.chunks();
    t.k = k;
    t.idx.resize(size_t(t.rows * k));
    t.val.resize(t.idx.size());
    std::array<float, 4> lv{};
    sparse_loco::encode(plan, buf.data(), nullptr, 1.0f, k, 2, t.idx.data(), t.val.data(), &lv);
    t.levels.assign(lv.begin(), lv.end());
    u.tensors.push_back(std::move(t));
  }
  return u;
}

TEST(SparseLocoWire, RoundTripsPackedCodesAndLevels) {
  const auto signer = ed25519_signer({3, 1, 4});
  const LlamaConfig config = preset("tiny");
  const auto e = loco_expectation(*signer, config);
  const Update u = loco_update(e);
  const std::string bytes = encode_update(u, *signer);
  const Update d = decode_update(bytes, e, "peer");
  ASSERT_EQ(d.tensors.size(), u.tensors.size());
  size_t entries = 0;
  for (size_t i = 0; i < u.tensors.size(); ++i) {
    EXPECT_EQ(d.tensors[i].idx, u.tensors[i].idx) << u.tensors[i].name;
    EXPECT_EQ(d.tensors[i].val, u.tensors[i].val) << u.tensors[i].name;
    EXPECT_EQ(d.tensors[i].levels, u.tensors[i].levels);
    entries += u.tensors[i].val.size();
  }
  // 12-bit indices and four codes a byte: 1.75 bytes an entry, plus headers.
  EXPECT_LT(bytes.size(), entries * 1.75 + 40000);
  EXPECT_LE(bytes.size(), max_update_bytes(e));
}

TEST(SparseLocoWire, RejectsBadLevelsAndValuesOffTheLevels) {
  const auto signer = ed25519_signer({3, 1, 4});
  const LlamaConfig config = preset("tiny");
  const auto e = loco_expectation(*signer, config);
  Update u = loco_update(e);
  const float unused = u.tensors[0].levels[1];
  for (float& v : u.tensors[0].val)
    if (v == unused) v = u.tensors[0].levels[2];
  u.tensors[0].levels[1] = NAN;
  // A value that is none of the levels cannot be coded.
  Update off = loco_update(e);
  off.tensors[1].val[0] = 12345.0f;
  EXPECT_THROW(encode_update(off, *signer), Error);
  // Non-finite levels are refused by the reader even when no code uses them.
  const std::string bytes = encode_update(u, *signer);
  try {
    decode_update(bytes, e, "peer");
    ADD_FAILURE() << "accepted a NaN level";
  } catch (const UpdateError& err) {
    EXPECT_EQ(err.reason(), Reject::NonFinite) << err.what();
  }
  // A level beyond the value bound, used by a code, is refused as too large.
  Update big = loco_update(e);
  const float was = big.tensors[2].levels[2];
  big.tensors[2].levels[2] = 5e4f;
  for (float& v : big.tensors[2].val)
    if (v == was) v = 5e4f;
  try {
    decode_update(encode_update(big, *signer), e, "peer");
    ADD_FAILURE() << "accepted a 5e4 value";
  } catch (const UpdateError& err) {
    EXPECT_EQ(err.reason(), Reject::ValueTooLarge) << err.what();
  }
}

}  // namespace
}  // namespace bistro
