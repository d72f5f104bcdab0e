// The training step BISTRO takes once per window: gradients accumulated over micro-batches (an
// exact mean over all counted tokens), global-norm clipping, one AdamW step at the scheduled rate.
#pragma once

#include <filesystem>
#include <vector>

#include "bistro/model/llama.hpp"
#include "bistro/train/adamw.hpp"
#include "bistro/train/schedule.hpp"

namespace bistro::runtime {
class Ranks;
}

namespace bistro {

struct Batch {
  torch::Tensor inputs;   // [B, T] int64
  torch::Tensor targets;  // [B, T] int64, next tokens, -100 where no loss is taken
};

struct TokenBatch;
// A laid-out token batch as int64 tensors on `device`.
Batch to_batch(const TokenBatch& b, c10::Device device);

struct TrainOptions {
  AdamWOptions adamw;
  Schedule schedule;
  double grad_clip = 1.0;  // <= 0 disables clipping
};

struct StepResult {
  double loss = 0;       // mean cross-entropy over every counted token of the step
  double grad_norm = 0;  // before clipping
  double lr = 0;
  int64_t tokens = 0;  // counted targets
};

class Trainer {
 public:
  Trainer(Llama model, TrainOptions options);

  StepResult step(const std::vector<Batch>& micro_batches);
  // One step's gradient gathered one micro-batch at a time (step() is these two calls):
  // accumulate() adds a micro-batch's gradient; step_accumulated() takes the step over everything
  // gathered (the mean over its counted tokens) and returns its result. accumulated():
  // micro-batches gathered since the last step.
  void accumulate(const Batch& micro_batch);
  StepResult step_accumulated();
  int64_t accumulated() const { return acc_batches_; }

  // Checkpoint with optimizer state; resume() restores both and the step count.
  // A checkpoint with the optimizer state and the tokenizer model's files (none when empty: a
  // byte-level model).
  void save(const std::filesystem::path& dir, const std::filesystem::path& tokenizer) const;
  void resume(const std::filesystem::path& dir);

  // Data parallelism (runtime/distributed.hpp): with a group of several ranks, every step sums
  // the ranks' gradients, counted tokens and losses before it is taken (DDP semantics): each
  // rank passes its own micro-batches (possibly none) and all take the same step, the mean over
  // every rank's counted tokens. The group outlives the trainer; nullptr: one rank.
  void set_ranks(runtime::Ranks* ranks) { ranks_ = ranks; }

  Llama& model() { return model_; }
  AdamW& optimizer() { return optimizer_; }
  int64_t steps() const { return optimizer_.steps(); }

 private:
  // Clips the gradients (already the mean over the step's counted tokens), takes the
  // optimizer step at the schedule's lr, and fills r's grad_norm and lr.
  void finish_step(StepResult& r);

  Llama model_;
  TrainOptions options_;
  AdamW optimizer_;
  runtime::Ranks* ranks_ = nullptr;
  bool data_parallel() const;
  int64_t acc_batches_ = 0, acc_tokens_ = 0;
  double acc_loss_sum_ = 0;
};

}  // namespace bistro
