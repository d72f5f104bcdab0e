#include "bistro/validator/ranks.hpp"

#include <fmt/format.h>

#include "bistro/core/error.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/runtime/distributed.hpp"
#include "bistro/validator/scoring.hpp"

namespace bistro {

namespace {

// Micro-batch i is rank i mod n's.
bool mine(size_t i, int rank, int n) {
  return static_cast<int>(i % static_cast<size_t>(n)) == rank;
}

// This rank's rows of sequence_losses over `batches`, in place in `out` (all rows, zeros
// elsewhere), so that one sum over the ranks gathers them.
void fill_share(Llama& m, const std::vector<Batch>& batches, int rank, int n, torch::Tensor& out) {
  std::vector<Batch> share;
  std::vector<int64_t> at;
  int64_t row = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (mine(i, rank, n)) share.push_back(batches[i]), at.push_back(row);
    row += batches[i].inputs.size(0);
  }
  const auto l = sequence_losses(m, share);
  size_t k = 0;
  for (size_t j = 0; j < share.size(); ++j)
    for (int64_t r = 0; r < share[j].inputs.size(0); ++r)
      out[at[j] + r] = l[k++];  // +inf stays +inf through the sum
}

int64_t total_rows(const std::vector<Batch>& batches) {
  int64_t n = 0;
  for (const auto& b : batches) n += b.inputs.size(0);
  return n;
}

}  // namespace

ScoringRanks::ScoringRanks(runtime::Ranks& ranks)
    : ranks_(ranks), size_(ranks.size()), active_(ranks.rank() == 0 && ranks.size() > 1) {}

ScoringRanks::~ScoringRanks() {
  stop();
}

void ScoringRanks::drop(const std::string& why) {
  active_ = false;
  if (log) log(fmt::format("the validator's ranks failed ({}); measuring on rank 0 alone", why));
}

void ScoringRanks::stop() {
  if (!active_) return;
  try {
    std::vector<torch::Tensor> cmd{torch::tensor({int64_t{0}, int64_t{0}, int64_t{0}})};
    ranks_.broadcast(cmd);
  } catch (const std::exception&) {  // they end on their timeout
  }
  active_ = false;
}

void ScoringRanks::check_alive() {
  if (!active_) return;
  try {
    std::vector<torch::Tensor> cmd{
        torch::tensor({static_cast<int64_t>(ScoreOp::Ping), int64_t{0}, int64_t{0}})};
    ranks_.broadcast(cmd);
  } catch (const std::exception& e) {
    drop(e.what());
  }
}

void ScoringRanks::set_theta(const std::vector<torch::Tensor>& params) {
  if (!active_) return;
  try {
    std::vector<torch::Tensor> cmd{
        torch::tensor({static_cast<int64_t>(ScoreOp::Theta), int64_t{0}, int64_t{0}})};
    ranks_.broadcast(cmd);
    auto p = params;
    ranks_.broadcast(p);  // rank 0's values stay as they are
  } catch (const std::exception& e) {
    drop(e.what());
  }
}

std::vector<double> ScoringRanks::losses(Llama& m, const Delta* delta,
                                         const std::vector<Batch>& batches) {
  if (!active_ || batches.empty()) return sequence_losses(m, batches);
  try {
    const size_t nd = delta ? delta->at.size() : 0;
    std::vector<torch::Tensor> cmd{torch::tensor({static_cast<int64_t>(ScoreOp::Losses),
                                                  static_cast<int64_t>(batches.size()),
                                                  static_cast<int64_t>(nd)})};
    ranks_.broadcast(cmd);
    std::vector<int64_t> sizes;
    for (const auto& b : batches) sizes.push_back(b.inputs.size(0)), sizes.push_back(b.inputs.size(1));
    for (size_t p = 0; p < nd; ++p) sizes.push_back(delta->at[p].numel());
    std::vector<torch::Tensor> s{torch::tensor(sizes, torch::kInt64)};
    ranks_.broadcast(s);
    std::vector<torch::Tensor> payload;
    for (const auto& b : batches) payload.push_back(b.inputs), payload.push_back(b.targets);
    for (size_t p = 0; p < nd; ++p)
      if (delta->at[p].numel() > 0) payload.push_back(delta->at[p]), payload.push_back(delta->values[p]);
    ranks_.broadcast(payload);
    std::vector<torch::Tensor> out{torch::zeros({total_rows(batches)}, torch::kFloat64)};
    fill_share(m, batches, 0, size_, out[0]);
    ranks_.sum(out);
    for (size_t i = 0; i < batches.size(); ++i) shared_ += !mine(i, 0, size_);
    const auto c = out[0].contiguous();
    return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
  } catch (const std::exception& e) {
    drop(e.what());
    return sequence_losses(m, batches);
  }
}

void ScoringRanks::follow(Llama& theta) {
  check(ranks_.rank() != 0, "rank 0 leads; it does not follow");
  const auto params = parameter_tensors(theta);
  const auto device = params.front().device();
  for (;;) {
    std::vector<torch::Tensor> cmd{torch::zeros({3}, torch::kInt64)};
    ranks_.broadcast(cmd);
    const auto op = static_cast<ScoreOp>(cmd[0][0].item<int64_t>());
    switch (op) {
      case ScoreOp::Stop:
        return;
      case ScoreOp::Ping:
        break;
      case ScoreOp::Theta: {
        auto p = params;
        ranks_.broadcast(p);
        break;
      }
      case ScoreOp::Losses: {
        const int64_t nb = cmd[0][1].item<int64_t>(), nd = cmd[0][2].item<int64_t>();
        check(nb >= 0 && nd >= 0 && (nd == 0 || nd == static_cast<int64_t>(params.size())),
              "rank {}: a measurement of {} micro-batches and {} parameters from rank 0 does "
              "not fit this model",
              ranks_.rank(), nb, nd);
        std::vector<torch::Tensor> s{torch::zeros({2 * nb + nd}, torch::kInt64)};
        ranks_.broadcast(s);
        const auto sz = s[0];
        std::vector<Batch> batches;
        std::vector<torch::Tensor> payload;
        for (int64_t i = 0; i < nb; ++i) {
          const auto shape = std::vector<int64_t>{sz[2 * i].item<int64_t>(),
                                                  sz[2 * i + 1].item<int64_t>()};
          batches.push_back({torch::empty(shape, torch::kInt64).to(device),
                             torch::empty(shape, torch::kInt64).to(device)});
          payload.push_back(batches.back().inputs), payload.push_back(batches.back().targets);
        }
        Delta d;
        for (int64_t p = 0; p < nd; ++p) {
          const int64_t n = sz[2 * nb + p].item<int64_t>();
          d.at.push_back(torch::empty({n}, torch::kInt64));
          d.values.push_back(torch::empty({n}, torch::kFloat32));
          if (n > 0) payload.push_back(d.at.back()), payload.push_back(d.values.back());
        }
        ranks_.broadcast(payload);
        std::vector<torch::Tensor> out{torch::zeros({total_rows(batches)}, torch::kFloat64)};
        if (nd > 0) {
          const auto saved = apply_delta(params, d);
          fill_share(theta, batches, ranks_.rank(), ranks_.size(), out[0]);
          restore_delta(params, d, saved);
        } else {
          fill_share(theta, batches, ranks_.rank(), ranks_.size(), out[0]);
        }
        ranks_.sum(out);
        break;
      }
      default:
        fail("rank {}: unknown operation {} from rank 0", ranks_.rank(),
             cmd[0][0].item<int64_t>());
    }
  }
}

}  // namespace bistro
