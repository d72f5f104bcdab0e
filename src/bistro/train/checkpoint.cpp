#include "bistro/train/checkpoint.hpp"

#include <unistd.h>

#include <atomic>
#include <set>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/model/hf_tokenizer.hpp"
#include "bistro/model/safetensors.hpp"
#include "bistro/train/adamw.hpp"

namespace bistro {
namespace fs = std::filesystem;
namespace st = safetensors;

namespace {

torch::ScalarType torch_dtype(st::DType d, const std::string& where) {
  switch (d) {
    case st::DType::F32:
      return torch::kFloat32;
    case st::DType::F16:
      return torch::kFloat16;
    case st::DType::BF16:
      return torch::kBFloat16;
    default:
      fail("{}: dtype {} is not a floating-point weight type", where, st::dtype_name(d));
  }
}

// A CPU tensor over the bytes of one stored tensor (copied when the bytes are misaligned).
torch::Tensor stored_tensor(const st::View& view, const st::TensorInfo& t) {
  const auto where = fmt::format("{}: tensor '{}'", view.origin(), t.name);
  const auto dtype = torch_dtype(t.dtype, where);
  auto bytes = view.data(t);
  void* ptr = const_cast<std::byte*>(bytes.data());
  if (reinterpret_cast<uintptr_t>(ptr) % st::dtype_size(t.dtype) != 0) {
    auto copy = torch::empty(t.shape, dtype);
    std::memcpy(copy.data_ptr(), bytes.data(), bytes.size());
    return copy;
  }
  return torch::from_blob(ptr, t.shape, dtype);
}

void copy_into(torch::Tensor& dst, const st::View& view, const std::string& stored_name) {
  const auto* t = view.find(stored_name);
  check(t != nullptr, "{}: tensor '{}' is missing", view.origin(), stored_name);
  check(t->shape == dst.sizes().vec(), "{}: tensor '{}' has shape [{}] but the model needs [{}]",
        view.origin(), stored_name, fmt::join(t->shape, ", "), fmt::join(dst.sizes(), ", "));
  torch::NoGradGuard no_grad;
  dst.copy_(stored_tensor(view, *t));
}

// Keeps CPU copies alive while the file is written.
struct Staged {
  std::vector<torch::Tensor> keep;
  std::vector<st::TensorRef> refs;
  void add(const std::string& name, const torch::Tensor& t) {
    auto cpu = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    keep.push_back(cpu);
    refs.push_back({name, st::DType::F32, cpu.sizes().vec(), cpu.data_ptr()});
  }
};

}  // namespace

void load_weights(Llama& model, const fs::path& file) {
  st::File f(file);
  const auto& view = f.view();
  std::set<std::string> used;
  for (auto& [name, param] : model->ordered_parameters()) {
    copy_into(param, view, name);
    f.release(*view.find(name));
    used.insert(name);
  }
  for (const auto& t : view.tensors()) {
    // Older transformers checkpoints carry the rotary inverse frequencies, which we recompute.
    const bool derived = t.name.ends_with("rotary_emb.inv_freq");
    check(used.count(t.name) || derived, "{}: unexpected tensor '{}' for this model config",
          view.origin(), t.name);
  }
}

Llama load_model(const fs::path& dir, c10::Device device) {
  const auto config_path = dir / "config.json";
  check(fs::exists(config_path), "checkpoint {}: config.json is missing", dir.string());
  const auto config = LlamaConfig::from_json(read_file(config_path), config_path.string());
  const auto weights = dir / "model.safetensors";
  check(fs::exists(weights), "checkpoint {}: model.safetensors is missing", dir.string());
  Llama model(config);
  model->to(device);
  load_weights(model, weights);
  return model;
}

void save_checkpoint(const fs::path& dir, const Llama& model, const fs::path& tokenizer,
                     const AdamW* optimizer, const std::map<std::string, std::string>& metadata) {
  static std::atomic<unsigned> counter{0};
  const auto parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent);
  const auto tmp =
      parent / fmt::format(".{}.tmp.{}.{}", dir.filename().string(), ::getpid(), counter++);
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  write_file_atomic(tmp / "config.json", model->config().to_json());
  if (!tokenizer.empty()) write_hf_tokenizer(tmp, tokenizer, model->config().vocab_size);
  auto meta = metadata;
  meta["format"] = "pt";  // transformers requires it to load a safetensors checkpoint
  {
    Staged s;
    for (const auto& [name, p] : model->ordered_parameters()) s.add(name, p);
    st::write(tmp / "model.safetensors", s.refs, meta);
  }
  if (optimizer != nullptr) {
    Staged s;
    const auto params = model->ordered_parameters();
    check(params.size() == optimizer->exp_avg().size(),
          "save_checkpoint: optimizer does not match the model");
    for (size_t i = 0; i < params.size(); ++i) {
      s.add("exp_avg." + params[i].first, optimizer->exp_avg()[i]);
      s.add("exp_avg_sq." + params[i].first, optimizer->exp_avg_sq()[i]);
    }
    st::write(tmp / "optimizer.safetensors", s.refs,
              {{"step", std::to_string(optimizer->steps())}});
  }

  // Swap the finished directory into place: the old one moves aside first, so at every moment
  // one complete checkpoint exists under a known name.
  const auto old = parent / fmt::format(".{}.old.{}", dir.filename().string(), ::getpid());
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

bool load_optimizer(const fs::path& dir, const Llama& model, AdamW& optimizer) {
  const auto path = dir / "optimizer.safetensors";
  if (!fs::exists(path)) return false;
  st::File f(path);
  const auto& view = f.view();
  const auto it = view.metadata().find("step");
  check(it != view.metadata().end(), "{}: metadata has no step", path.string());
  int64_t step = 0;
  try {
    step = std::stoll(it->second);
  } catch (...) {
    fail("{}: step '{}' is not an integer", path.string(), it->second);
  }
  check(step >= 0, "{}: negative step {}", path.string(), step);
  const auto params = model->ordered_parameters();
  check(params.size() == optimizer.exp_avg().size(),
        "load_optimizer: optimizer does not match the model");
  for (size_t i = 0; i < params.size(); ++i) {
    copy_into(optimizer.exp_avg()[i], view, "exp_avg." + params[i].first);
    copy_into(optimizer.exp_avg_sq()[i], view, "exp_avg_sq." + params[i].first);
  }
  check(view.tensors().size() == 2 * params.size(), "{}: {} tensors, expected {}", path.string(),
        view.tensors().size(), 2 * params.size());
  optimizer.set_steps(step);
  return true;
}

}  // namespace bistro
