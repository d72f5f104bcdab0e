#include "bistro/compress/dct.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numbers>

#include "bistro/compress/slices.hpp"
#include "bistro/core/error.hpp"

namespace bistro {

torch::Tensor dct_matrix(int64_t n) {
  static std::mutex mu;
  static std::map<int64_t, torch::Tensor> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  auto d = torch::empty({n, n}, torch::kFloat64);
  auto a = d.accessor<double, 2>();
  for (int64_t u = 0; u < n; ++u) {
    const double alpha = std::sqrt((u == 0 ? 1.0 : 2.0) / static_cast<double>(n));
    for (int64_t x = 0; x < n; ++x) {
      a[u][x] = alpha * std::cos(std::numbers::pi * (2 * x + 1) * u / (2.0 * n));
    }
  }
  auto f = d.to(torch::kFloat32);
  cache.emplace(n, f);
  return f;
}

torch::Tensor dct_chunks(const torch::Tensor& x, const ChunkPlan& p) {
  auto d1 = dct_matrix(p.n1).to(x.device()), d2 = dct_matrix(p.n2).to(x.device());
  auto blocks = x.reshape({p.rows / p.n1, p.n1, p.cols / p.n2, p.n2}).permute({0, 2, 1, 3});
  auto c = torch::matmul(torch::matmul(d1, blocks), d2.t());  // D1 B D2^T per block
  return c.reshape({p.chunks(), p.size()});
}

torch::Tensor idct_chunks(const torch::Tensor& coefficients, const ChunkPlan& p,
                          at::IntArrayRef shape) {
  auto d1 = dct_matrix(p.n1).to(coefficients.device()),
       d2 = dct_matrix(p.n2).to(coefficients.device());
  auto c = coefficients.reshape({p.rows / p.n1, p.cols / p.n2, p.n1, p.n2});
  auto blocks = torch::matmul(torch::matmul(d1.t(), c), d2);  // D1^T C D2
  return blocks.permute({0, 2, 1, 3}).reshape(shape);
}

void top_k_rows(const torch::Tensor& coefficients, int64_t k, std::vector<int32_t>& idx,
                std::vector<float>& val) {
  auto c = coefficients.to(torch::kCPU).contiguous();
  const int64_t rows = c.size(0), size = c.size(1);
  check(k >= 1 && k <= size, "top_k_rows: k {} outside [1, {}]", k, size);
  idx.assign(static_cast<size_t>(rows * k), 0);
  val.assign(static_cast<size_t>(rows * k), 0.0f);
  const float* C = c.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    // Key = |v| bits (monotone for non-negative floats) above the inverted index: one integer
    // order gives "larger |v| first, then lower index".
    std::vector<uint64_t> keys(static_cast<size_t>(size));
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = C + r * size;
      for (int64_t j = 0; j < size; ++j) {
        uint32_t bits;
        const float a = std::fabs(row[j]);
        std::memcpy(&bits, &a, 4);
        keys[j] = (static_cast<uint64_t>(bits) << 32) | (0xffffffffu - static_cast<uint32_t>(j));
      }
      std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<>());
      std::vector<int32_t> chosen(static_cast<size_t>(k));
      for (int64_t s = 0; s < k; ++s) {
        chosen[s] =
            static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(keys[s] & 0xffffffffu));
      }
      std::sort(chosen.begin(), chosen.end());
      for (int64_t s = 0; s < k; ++s) {
        idx[r * k + s] = chosen[s];
        val[r * k + s] = row[chosen[s]];
      }
    }
  });
}

torch::Tensor densify(const UpdateTensor& t, int64_t size) {
  auto d = torch::zeros({t.rows, size}, torch::kFloat32);
  float* D = d.data_ptr<float>();
  for (int64_t r = 0; r < t.rows; ++r) {
    for (int64_t s = 0; s < t.k; ++s) D[r * size + t.idx[r * t.k + s]] = t.val[r * t.k + s];
  }
  return d;
}

DemoCompressor::DemoCompressor(std::vector<std::pair<std::string, torch::Tensor>> params,
                               DemoOptions options)
    : params_(std::move(params)), o_(options) {
  for (auto& [name, p] : params_) m_.push_back(torch::zeros_like(p));
}

Update DemoCompressor::encode(double lr) {
  torch::NoGradGuard no_grad;
  Update u;
  u.codec = "dct-topk";
  u.k = o_.k;
  u.chunk_cap = o_.chunk_cap;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    auto& m = m_[i];
    m.mul_(o_.beta);
    if (p.grad().defined()) m.add_(p.grad(), lr);
    const auto plan = chunk_plan(p.sizes().vec(), o_.chunk_cap);
    const int64_t k = clamp_k(o_.k, plan);
    UpdateTensor t;
    t.name = name;
    t.rows = plan.chunks();
    t.k = k;
    top_k_rows(dct_chunks(m, plan), k, t.idx, t.val);
    // Error feedback: keep exactly what was not sent.
    m.sub_(idct_chunks(densify(t, plan.size()).to(m.device()), plan, m.sizes()));
    u.tensors.push_back(std::move(t));
  }
  return u;
}

namespace {
void sort_peers(std::vector<PeerUpdate>& peers) {
  std::sort(peers.begin(), peers.end(), [](auto& a, auto& b) { return a.uid < b.uid; });
  for (size_t i = 1; i < peers.size(); ++i) {
    check(peers[i].uid != peers[i - 1].uid, "merge: two updates from uid {}", peers[i].uid);
  }
}
}  // namespace

void demo_merge(const std::vector<torch::Tensor>& params, std::vector<PeerUpdate> peers, double lr,
                double weight_decay) {
  torch::NoGradGuard no_grad;
  sort_peers(peers);
  for (size_t i = 0; i < params.size(); ++i) {
    auto p = params[i];
    const auto plan = chunk_plan(p.sizes().vec(), peers.empty() ? 64 : peers[0].update->chunk_cap);
    auto sum = torch::zeros({plan.chunks(), plan.size()}, torch::kFloat32);
    auto count = torch::zeros({plan.chunks(), plan.size()}, torch::kInt32);
    float* S = sum.data_ptr<float>();
    int32_t* N = count.data_ptr<int32_t>();
    for (const auto& peer : peers) {
      const auto& t = peer.update->tensors.at(i);
      check(t.rows == plan.chunks(), "merge: uid {} tensor {} has {} chunks, expected {}", peer.uid,
            t.name, t.rows, plan.chunks());
      for (int64_t r = 0; r < t.rows; ++r) {
        for (int64_t s = 0; s < t.k; ++s) {
          const int64_t j = r * plan.size() + t.idx[r * t.k + s];
          S[j] += t.val[r * t.k + s];
          N[j] += 1;
        }
      }
    }
    auto mean = sum / count.clamp_min(1).to(torch::kFloat32);
    auto dense = idct_chunks(mean, plan, p.sizes()).to(p.device());
    p.mul_(1.0 - lr * weight_decay);
    if (!peers.empty()) p.sub_(dense.sign(), lr);
  }
}

Update slice_encode(const std::vector<std::pair<std::string, torch::Tensor>>& params, uint64_t key,
                    int64_t compression) {
  Update u;
  u.codec = "slice";
  u.k = compression;
  for (const auto& [name, p] : params) {
    auto flat = p.detach().to(torch::kCPU).contiguous().view({-1});
    const auto pos = slice_positions(key, name, static_cast<uint64_t>(flat.numel()),
                                     static_cast<uint64_t>(compression));
    UpdateTensor t;
    t.name = name;
    t.k = static_cast<int64_t>(pos.size());
    const float* F = flat.data_ptr<float>();
    for (int64_t j : pos) t.val.push_back(F[j]);
    u.tensors.push_back(std::move(t));
  }
  return u;
}

void slice_merge(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                 std::vector<PeerUpdate> peers, uint64_t key, int64_t compression) {
  torch::NoGradGuard no_grad;
  sort_peers(peers);
  if (peers.empty()) return;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, p] = params[i];
    const auto pos = slice_positions(key, name, static_cast<uint64_t>(p.numel()),
                                     static_cast<uint64_t>(compression));
    std::vector<float> mean(pos.size(), 0.0f);
    for (const auto& peer : peers) {
      const auto& t = peer.update->tensors.at(i);
      check(t.val.size() == pos.size(), "merge: uid {} slice {} has {} values, expected {}",
            peer.uid, name, t.val.size(), pos.size());
      for (size_t j = 0; j < pos.size(); ++j) mean[j] += t.val[j];
    }
    for (auto& v : mean) v /= static_cast<float>(peers.size());
    auto cpu = p.detach().to(torch::kCPU).contiguous();
    float* P = cpu.data_ptr<float>();
    for (size_t j = 0; j < pos.size(); ++j) P[pos[j]] = mean[j];
    if (!p.device().is_cpu() || cpu.data_ptr() != p.data_ptr()) p.copy_(cpu.view(p.sizes()));
  }
}

}  // namespace bistro
