#include "bistro/train/trainer.hpp"

#include "bistro/core/error.hpp"
#include "bistro/data/batches.hpp"
#include "bistro/runtime/distributed.hpp"
#include "bistro/train/checkpoint.hpp"

namespace bistro {
namespace {
std::vector<torch::Tensor> parameter_list(const Llama& model) {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : model->ordered_parameters()) out.push_back(p);
  return out;
}
}  // namespace

Batch to_batch(const TokenBatch& b, c10::Device device) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  auto inputs = torch::from_blob(const_cast<int64_t*>(b.inputs.data()), {b.rows, b.seq_len}, opts);
  auto targets =
      torch::from_blob(const_cast<int64_t*>(b.targets.data()), {b.rows, b.seq_len}, opts);
  return {inputs.to(device, /*non_blocking=*/false, /*copy=*/true),
          targets.to(device, /*non_blocking=*/false, /*copy=*/true)};
}

Trainer::Trainer(Llama model, TrainOptions options)
    : model_(std::move(model)),
      options_(options),
      optimizer_(parameter_list(model_), options.adamw) {}

bool Trainer::data_parallel() const {
  return ranks_ != nullptr && ranks_->size() > 1;
}

StepResult Trainer::step(const std::vector<Batch>& micro_batches) {
  if (data_parallel()) {  // a rank may hold none of the step's micro-batches
    if (acc_batches_ == 0) optimizer_.zero_grad(), acc_tokens_ = 0, acc_loss_sum_ = 0;
    for (const auto& b : micro_batches) accumulate(b);
    return step_accumulated();
  }
  check(!micro_batches.empty(), "training step needs at least one micro-batch");
  StepResult r;
  for (const auto& b : micro_batches) r.tokens += (b.targets != -100).sum().item<int64_t>();
  check(r.tokens > 0, "training step has no counted targets (all -100)");
  optimizer_.zero_grad();
  double loss_sum = 0;
  for (const auto& b : micro_batches) {
    auto loss = model_->loss_sum(b.inputs, b.targets) / static_cast<double>(r.tokens);
    loss.backward();
    loss_sum += loss.item<double>();
  }
  r.loss = loss_sum;
  finish_step(r);
  return r;
}

void Trainer::finish_step(StepResult& r) {
  const auto params = optimizer_.params();
  r.grad_norm = clip_grad_norm(params, options_.grad_clip > 0 ? options_.grad_clip : 1e30);
  r.lr = options_.schedule.at(optimizer_.steps());
  optimizer_.step(r.lr);
}

void Trainer::accumulate(const Batch& b) {
  if (acc_batches_ == 0) optimizer_.zero_grad(), acc_tokens_ = 0, acc_loss_sum_ = 0;
  auto loss = model_->loss_sum(b.inputs, b.targets);
  loss.backward();
  acc_loss_sum_ += loss.item<double>();
  acc_tokens_ += (b.targets != -100).sum().item<int64_t>();
  ++acc_batches_;
}

StepResult Trainer::step_accumulated() {
  if (data_parallel()) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (auto& p : optimizer_.params()) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    ranks_->sum(grads);
    std::vector<torch::Tensor> stats{torch::tensor(
        {static_cast<double>(acc_tokens_), acc_loss_sum_}, torch::dtype(torch::kFloat64))};
    ranks_->sum(stats);
    acc_tokens_ = static_cast<int64_t>(stats[0][0].item<double>());
    acc_loss_sum_ = stats[0][1].item<double>();
    acc_batches_ = std::max<int64_t>(acc_batches_, 1);
  }
  check(acc_batches_ > 0 && acc_tokens_ > 0, "no accumulated gradient to step with");
  StepResult r;
  r.tokens = acc_tokens_;
  r.loss = acc_loss_sum_ / static_cast<double>(acc_tokens_);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : optimizer_.params())
      if (p.grad().defined()) p.grad().div_(static_cast<double>(acc_tokens_));
  }
  finish_step(r);
  acc_batches_ = 0;
  return r;
}

void Trainer::save(const std::filesystem::path& dir, const std::filesystem::path& tokenizer) const {
  save_checkpoint(dir, model_, tokenizer, &optimizer_);
}

void Trainer::resume(const std::filesystem::path& dir) {
  load_weights(model_, dir / "model.safetensors");
  check(load_optimizer(dir, model_, optimizer_), "checkpoint {} has no optimizer state to resume",
        dir.string());
}

}  // namespace bistro
