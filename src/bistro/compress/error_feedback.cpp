#include "bistro/compress/error_feedback.hpp"

#include <algorithm>
#include <cstring>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/sparse_loco.hpp"
#include "bistro/compress/torch_cpu.hpp"
#include "bistro/core/error.hpp"
#include "bistro/model/safetensors.hpp"

namespace bistro {
ErrorFeedback::ErrorFeedback(std::vector<std::pair<std::string, torch::Tensor>> params,
                             ErrorFeedbackOptions options)
    : o_(options) {
  check(o_.value_bits == 2 || o_.value_bits == 32, "sparseloco: value_bits must be 2 or 32");
  check(o_.index_bits == 12 || o_.index_bits == 32, "sparseloco: index_bits must be 12 or 32");
  check(o_.k >= 1 && (o_.index_bits == 32 || o_.chunk_cap <= 64),
        "sparseloco: k must be positive and 12-bit indices need chunks of at most 64 x 64");
  for (auto& [name, p] : params) {
    names_.push_back(name);
    e_.push_back(torch::zeros(p.sizes(), torch::kFloat32));
  }
}

Update ErrorFeedback::encode(const std::vector<torch::Tensor>& delta) {
  check(delta.empty() || delta.size() == e_.size(), "sparseloco: {} deltas for {} parameters",
        delta.size(), e_.size());
  torch::NoGradGuard no_grad;
  Update u;
  u.codec = "sparseloco";
  u.k = o_.k;
  u.chunk_cap = o_.chunk_cap;
  u.value_bits = o_.value_bits;
  u.index_bits = o_.index_bits;
  for (size_t i = 0; i < e_.size(); ++i) {
    const auto plan = chunk_plan(e_[i].sizes().vec(), o_.chunk_cap);
    torch::Tensor d;
    if (!delta.empty()) {
      check(delta[i].sizes() == e_[i].sizes(), "sparseloco: delta for {} has the wrong shape",
            names_[i]);
      d = cpu_float(delta[i]);
    }
    UpdateTensor t;
    t.name = names_[i];
    t.rows = plan.chunks();
    t.k = clamp_k(o_.k, plan);
    t.idx.resize(static_cast<size_t>(t.rows * t.k));
    t.val.resize(t.idx.size());
    std::array<float, 4> levels{};
    sparse_loco::encode(plan, e_[i].data_ptr<float>(), d.defined() ? d.data_ptr<float>() : nullptr,
                        static_cast<float>(o_.beta), t.k, o_.value_bits, t.idx.data(), t.val.data(),
                        &levels, torch_parallel);
    if (o_.value_bits == 2) t.levels.assign(levels.begin(), levels.end());
    u.tensors.push_back(std::move(t));
  }
  return u;
}

void ErrorFeedback::save(const std::filesystem::path& file) const {
  std::vector<safetensors::TensorRef> refs;
  for (size_t i = 0; i < e_.size(); ++i)
    refs.push_back(
        {"e." + names_[i], safetensors::DType::F32, e_[i].sizes().vec(), e_[i].data_ptr()});
  safetensors::write(file, refs, {{"beta", std::to_string(o_.beta)}});
}

bool ErrorFeedback::load(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) return false;
  safetensors::File f(file);
  const auto& view = f.view();
  check(view.tensors().size() == e_.size(), "{}: {} error-feedback tensors, expected {}",
        file.string(), view.tensors().size(), e_.size());
  for (size_t i = 0; i < e_.size(); ++i) {
    const std::string name = "e." + names_[i];
    const auto* t = view.find(name);
    check(t != nullptr, "{}: no tensor {}", file.string(), name);
    check(t->dtype == safetensors::DType::F32 && t->shape == e_[i].sizes().vec(),
          "{}: {} has the wrong dtype or shape for this model", file.string(), name);
    const auto bytes = view.data(*t);
    std::memcpy(e_[i].data_ptr<float>(), bytes.data(), bytes.size());
  }
  return true;
}

}  // namespace bistro
