#include "bistro/compress/dct.hpp"

#include <algorithm>

#include "bistro/compress/dct_kernel.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/compress/torch_cpu.hpp"
#include "bistro/core/error.hpp"
#include "bistro/model/safetensors.hpp"

namespace bistro {

torch::Tensor dct_chunks(const torch::Tensor& x, const ChunkPlan& p) {
  auto in = cpu_float(x);
  auto out = torch::empty({p.chunks(), p.size()}, torch::kFloat32);
  dct::forward_chunks(p, in.data_ptr<float>(), out.data_ptr<float>(), torch_parallel);
  return out.to(x.device());
}

torch::Tensor idct_chunks(const torch::Tensor& coefficients, const ChunkPlan& p,
                          at::IntArrayRef shape) {
  auto in = cpu_float(coefficients);
  auto out = torch::empty(shape, torch::kFloat32);
  check(out.numel() == p.rows * p.cols, "idct_chunks: shape does not match the chunk plan");
  dct::inverse_chunks(p, in.data_ptr<float>(), out.data_ptr<float>(), torch_parallel);
  return out.to(coefficients.device());
}

void top_k_rows(const torch::Tensor& coefficients, int64_t k, std::vector<int32_t>& idx,
                std::vector<float>& val) {
  auto c = cpu_float(coefficients);
  const int64_t rows = c.size(0), size = c.size(1);
  check(k >= 1 && k <= size, "top_k_rows: k {} outside [1, {}]", k, size);
  idx.assign(static_cast<size_t>(rows * k), 0);
  val.assign(static_cast<size_t>(rows * k), 0.0f);
  const float* C = c.data_ptr<float>();
  torch_parallel(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) dct::top_k(C + r * size, size, k, &idx[r * k], &val[r * k]);
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
    m_.push_back(torch::zeros({plan.chunks(), plan.size()}, torch::kFloat32));
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
  return encode_impl(lr, nullptr);
}

Update DemoCompressor::encode_at(double lr, const std::vector<std::vector<int32_t>>& positions) {
  return encode_impl(lr, &positions);
}

Update DemoCompressor::encode_impl(double lr, const std::vector<std::vector<int32_t>>* positions) {
  torch::NoGradGuard no_grad;
  Update u;
  u.codec = "dct-topk";
  u.k = o_.k;
  u.chunk_cap = o_.chunk_cap;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    const auto plan = chunk_plan(p.sizes().vec(), o_.chunk_cap);
    // The DCT is linear and orthonormal, so momentum lives in the coefficient domain:
    // DCT(beta m + lr g) = beta DCT(m) + lr DCT(g), and subtracting IDCT(sent) from m is zeroing
    // the sent coefficients. One transform per step instead of DeMo's two.
    const auto grad = p.grad().defined() ? cpu_float(p.grad()) : torch::Tensor();
    UpdateTensor t;
    t.name = name;
    t.rows = plan.chunks();
    const bool embed =
        name.find("embed_tokens") != std::string::npos || name.find("lm_head") != std::string::npos;
    t.k = clamp_k(embed && o_.k_embed > 0 ? o_.k_embed : o_.k, plan);
    if (positions != nullptr) {
      t.idx = positions->at(i);
      check(t.idx.size() == static_cast<size_t>(t.rows * t.k),
            "encode_at: {} positions for {}, expected {}", t.idx.size(), name, t.rows * t.k);
      for (int32_t j : t.idx)
        check(j >= 0 && j < plan.size(), "encode_at: position {} for {}", j, name);
    }
    t.idx.resize(static_cast<size_t>(t.rows * t.k));
    t.val.resize(static_cast<size_t>(t.rows * t.k));
    dct::encode_momentum(plan, grad.defined() ? grad.data_ptr<float>() : nullptr,
                         m_[i].data_ptr<float>(), static_cast<float>(o_.beta),
                         static_cast<float>(lr), t.k, t.idx.data(), t.val.data(), torch_parallel,
                         positions != nullptr);
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
    std::vector<dct::SparseChunks> sparse;
    for (const auto& peer : peers) {
      const auto& t = peer.update->tensors.at(i);
      check(t.rows == plan.chunks(), "merge: uid {} tensor {} has {} chunks, expected {}", peer.uid,
            t.name, t.rows, plan.chunks());
      check(t.idx.size() == static_cast<size_t>(t.rows * t.k) && t.val.size() == t.idx.size(),
            "merge: uid {} tensor {} has the wrong number of entries", peer.uid, t.name);
      // decode_update checked the ranges already; the kernel writes through these indices.
      for (int32_t j : t.idx) {
        check(j >= 0 && j < plan.size(), "merge: uid {} tensor {} index {} out of range", peer.uid,
              t.name, j);
      }
      sparse.push_back({t.idx.data(), t.val.data(), t.k});
    }
    const bool in_place =
        p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous();
    auto cpu = in_place ? p : cpu_float(p);
    dct::merge_sign_step(plan, sparse, cpu.data_ptr<float>(),
                         static_cast<float>(1.0 - lr * weight_decay), static_cast<float>(lr),
                         torch_parallel);
    if (!in_place) p.copy_(cpu.view(p.sizes()));
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
