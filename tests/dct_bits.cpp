// Prints one hash of everything the DCT kernel computes for a fixed problem (encode indices,
// merged parameters, inverse transforms) and of the SparseLoCo outer step (peers of different
// norms, so the median clip acts) on several chunk shapes. tests/dct_bits.sh builds this
// with different instruction sets and optimisation levels and requires the same hash: the merge
// is specified to give the same bits on every node (docs/protocol.md).
#include <cstdio>
#include <random>
#include <vector>

#include "bistro/compress/dct_kernel.hpp"
#include "bistro/compress/sparse_loco.hpp"

using namespace bistro;

int main() {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const auto& shape : {std::vector<int64_t>{256, 512}, std::vector<int64_t>{352, 128},
                            std::vector<int64_t>{100, 50}, std::vector<int64_t>{512}}) {
    const ChunkPlan p = chunk_plan(shape);
    std::mt19937 g(7);
    std::normal_distribution<float> nd;
    const auto n = static_cast<size_t>(p.rows * p.cols);
    std::vector<float> grad(n), m(n, 0.0f), param(n), x(n);
    for (auto& v : param) v = nd(g) * 0.02f;
    const int64_t k = clamp_k(32, p);
    const auto kn = static_cast<size_t>(p.chunks() * k);
    std::vector<std::vector<int32_t>> idx(4, std::vector<int32_t>(kn));
    std::vector<std::vector<float>> val(4, std::vector<float>(kn));
    std::vector<dct::SparseChunks> peers;
    for (size_t i = 0; i < 4; ++i) {
      for (auto& v : grad) v = nd(g);
      dct::encode_momentum(p, grad.data(), m.data(), 0.999f, 1e-3f, k, idx[i].data(),
                           val[i].data());
      mix(idx[i].data(), kn * sizeof(int32_t));
      peers.push_back({idx[i].data(), val[i].data(), k});
    }
    dct::merge_sign_step(p, peers, param.data(), 0.9999f, 1e-3f);
    mix(param.data(), n * sizeof(float));
    dct::inverse_chunks(p, m.data(), x.data());
    mix(x.data(), n * sizeof(float));

    // SparseLoCo: five peers, error feedback, 2-bit values; then the outer step, twice.
    const int64_t lk = clamp_k(64, p);
    const auto ln = static_cast<size_t>(p.chunks() * lk);
    std::vector<std::vector<int32_t>> lidx(5, std::vector<int32_t>(ln));
    std::vector<std::vector<float>> lval(5, std::vector<float>(ln));
    std::vector<dct::SparseChunks> lpeers;
    for (size_t i = 0; i < 5; ++i) {
      std::vector<float> e(n, 0.0f);
      for (auto& v : grad) v = nd(g) * 1e-3f * static_cast<float>(i + 1);
      std::array<float, 4> levels{};
      sparse_loco::encode(p, e.data(), grad.data(), 0.95f, lk, i % 2 ? 2 : 32, lidx[i].data(),
                          lval[i].data(), &levels);
      lpeers.push_back({lidx[i].data(), lval[i].data(), lk});
    }
    for (int round = 0; round < 2; ++round) {
      sparse_loco::outer_step(p, lpeers, param.data(), round ? 0.7f : 1.0f);
      mix(param.data(), n * sizeof(float));
    }
  }
  std::printf("%016llx\n", static_cast<unsigned long long>(h));
}
