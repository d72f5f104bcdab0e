#include "bistro/compress/dct.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numbers>

#include "bistro/compress/slices.hpp"
#include "bistro/core/error.hpp"
#include "bistro/model/safetensors.hpp"

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

// Both transforms run as two large matmuls over the [rows, cols] view (row transform batched over
// row blocks, column transform as one GEMM), with a single permute into or out of chunk order.
torch::Tensor dct_chunks(const torch::Tensor& x, const ChunkPlan& p) {
  auto d1 = dct_matrix(p.n1).to(x.device()), d2 = dct_matrix(p.n2).to(x.device());
  auto a = torch::matmul(d1, x.reshape({p.rows / p.n1, p.n1, p.cols}));     // D1 per row block
  auto b = torch::mm(a.reshape({p.rows * (p.cols / p.n2), p.n2}), d2.t());  // D2 per column block
  return b.view({p.rows / p.n1, p.n1, p.cols / p.n2, p.n2})
      .permute({0, 2, 1, 3})
      .reshape({p.chunks(), p.size()});
}

torch::Tensor idct_chunks(const torch::Tensor& coefficients, const ChunkPlan& p,
                          at::IntArrayRef shape) {
  auto d1 = dct_matrix(p.n1).to(coefficients.device()),
       d2 = dct_matrix(p.n2).to(coefficients.device());
  auto c = coefficients.view({p.rows / p.n1, p.cols / p.n2, p.n1, p.n2})
               .permute({0, 2, 1, 3})
               .reshape({p.rows * (p.cols / p.n2), p.n2});
  auto b = torch::mm(c, d2);  // D2^T per column block (row vectors times D2)
  auto a = torch::matmul(d1.t(), b.view({p.rows / p.n1, p.n1, p.cols}));
  return a.reshape(shape);
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
    // A running set of the best k (|v|, index): the first k entries, then any later entry whose
    // |v| beats the worst kept one strictly (a later index never wins a tie). With k << size most
    // entries cost one comparison.
    std::vector<float> mag(static_cast<size_t>(k));
    std::vector<int32_t> at(static_cast<size_t>(k));
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = C + r * size;
      for (int64_t s = 0; s < k; ++s) {
        mag[s] = std::fabs(row[s]);
        at[s] = static_cast<int32_t>(s);
      }
      // The worst kept entry: smallest |v|, and among equals the highest index.
      auto worst_slot = [&] {
        int64_t w = 0;
        for (int64_t s = 1; s < k; ++s) {
          if (mag[s] < mag[w] || (mag[s] == mag[w] && at[s] > at[w])) w = s;
        }
        return w;
      };
      int64_t w = worst_slot();
      float floor = mag[w];
      for (int64_t j = k; j < size; ++j) {
        const float a = std::fabs(row[j]);
        if (a > floor) {
          mag[w] = a;
          at[w] = static_cast<int32_t>(j);
          w = worst_slot();
          floor = mag[w];
        }
      }
      std::sort(at.begin(), at.end());
      for (int64_t s = 0; s < k; ++s) {
        idx[r * k + s] = at[s];
        val[r * k + s] = row[at[s]];
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
  for (auto& [name, p] : params_) {
    const auto plan = chunk_plan(p.sizes().vec(), o_.chunk_cap);
    m_.push_back(torch::zeros({plan.chunks(), plan.size()}, p.options()));
  }
}

torch::Tensor DemoCompressor::momentum(size_t i) const {
  const auto& p = params_.at(i).second;
  return idct_chunks(m_.at(i), chunk_plan(p.sizes().vec(), o_.chunk_cap), p.sizes());
}

void DemoCompressor::save(const std::filesystem::path& file) const {
  std::vector<torch::Tensor> keep;
  std::vector<safetensors::TensorRef> refs;
  for (size_t i = 0; i < m_.size(); ++i) {
    keep.push_back(m_[i].detach().to(torch::kCPU, torch::kFloat32).contiguous());
    refs.push_back({"m." + params_[i].first, safetensors::DType::F32, keep.back().sizes().vec(),
                    keep.back().data_ptr()});
  }
  safetensors::write(
      file, refs, {{"beta", std::to_string(o_.beta)}, {"chunk_cap", std::to_string(o_.chunk_cap)}});
}

bool DemoCompressor::load(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) return false;
  safetensors::File f(file);
  const auto& view = f.view();
  check(view.tensors().size() == m_.size(), "{}: {} momentum tensors, expected {}", file.string(),
        view.tensors().size(), m_.size());
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < m_.size(); ++i) {
    const std::string name = "m." + params_[i].first;
    const auto* t = view.find(name);
    check(t != nullptr, "{}: no tensor {}", file.string(), name);
    check(t->dtype == safetensors::DType::F32 && t->shape == m_[i].sizes().vec(),
          "{}: {} has the wrong dtype or shape for this model and chunk size", file.string(), name);
    const auto bytes = view.data(*t);
    auto src =
        torch::from_blob(const_cast<std::byte*>(bytes.data()), m_[i].sizes(), torch::kFloat32);
    m_[i].copy_(src);
  }
  return true;
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
    const auto plan = chunk_plan(p.sizes().vec(), o_.chunk_cap);
    // The DCT is linear and orthonormal, so momentum lives in the coefficient domain:
    // DCT(beta m + lr g) = beta DCT(m) + lr DCT(g), and subtracting IDCT(sent) from m is zeroing
    // the sent coefficients. One transform per step instead of DeMo's two.
    m.mul_(o_.beta);
    if (p.grad().defined()) m.add_(dct_chunks(p.grad(), plan), lr);
    const int64_t k = clamp_k(o_.k, plan);
    UpdateTensor t;
    t.name = name;
    t.rows = plan.chunks();
    t.k = k;
    top_k_rows(m, k, t.idx, t.val);
    // Error feedback: keep exactly what was not sent.
    auto cpu = m.device().is_cpu() ? m : m.to(torch::kCPU);
    float* M = cpu.data_ptr<float>();
    for (int64_t r = 0; r < t.rows; ++r) {
      for (int64_t s = 0; s < k; ++s) M[r * plan.size() + t.idx[r * k + s]] = 0.0f;
    }
    if (!m.device().is_cpu()) m.copy_(cpu);
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
