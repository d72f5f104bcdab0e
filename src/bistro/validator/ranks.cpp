#include "bistro/validator/ranks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

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
    std::vector<torch::Tensor> cmd{torch::zeros({5}, torch::kInt64)};  // Stop
    ranks_.broadcast(cmd);
  } catch (const std::exception&) {  // they end on their timeout
  }
  active_ = false;
}

void ScoringRanks::check_alive() {
  if (!active_) return;
  try {
    std::vector<torch::Tensor> cmd{torch::zeros({5}, torch::kInt64)};
    cmd[0][0] = static_cast<int64_t>(ScoreOp::Ping);
    ranks_.broadcast(cmd);
  } catch (const std::exception& e) {
    drop(e.what());
  }
}

uint64_t ScoringRanks::set_theta(const std::vector<torch::Tensor>& params) {
  ++generation_;
  sent_.clear();  // the other ranks drop their deltas with their theta
  if (!active_) return generation_;
  try {
    std::vector<torch::Tensor> cmd{torch::tensor(
        {static_cast<int64_t>(ScoreOp::Theta), int64_t{0}, int64_t{-1}, int64_t{0}, int64_t{0}})};
    ranks_.broadcast(cmd);
    auto p = params;
    ranks_.broadcast(p);  // rank 0's values stay as they are
  } catch (const std::exception& e) {
    drop(e.what());
  }
  return generation_;
}

namespace {
// Remembers `id` as held by the other ranks, at most `cap` of them (the oldest goes first); both
// sides run it on the same sequence of ids.
void remember(std::vector<int64_t>& ids, int64_t id, size_t cap) {
  ids.push_back(id);
  if (ids.size() > cap) ids.erase(ids.begin());
}
}  // namespace

std::vector<double> ScoringRanks::losses(Llama& m, uint64_t generation, int64_t delta_id,
                                         const std::function<Delta()>& delta,
                                         const std::vector<Batch>& batches) {
  if (!active_ || generation != generation_ || batches.empty()) return sequence_losses(m, batches);
  try {
    const bool include =
        delta_id >= 0 && std::find(sent_.begin(), sent_.end(), delta_id) == sent_.end();
    const Delta d = include ? delta() : Delta{};
    std::vector<torch::Tensor> cmd{torch::tensor(
        {static_cast<int64_t>(ScoreOp::Losses), static_cast<int64_t>(batches.size()), delta_id,
         static_cast<int64_t>(include), static_cast<int64_t>(d.at.size())})};
    ranks_.broadcast(cmd);
    std::vector<int64_t> sizes;
    for (const auto& b : batches)
      sizes.push_back(b.inputs.size(0)), sizes.push_back(b.inputs.size(1));
    for (const auto& a : d.at) sizes.push_back(a.numel());
    std::vector<torch::Tensor> s{torch::tensor(sizes, torch::kInt64)};
    ranks_.broadcast(s);
    std::vector<torch::Tensor> payload;
    for (const auto& b : batches) payload.push_back(b.inputs), payload.push_back(b.targets);
    for (size_t p = 0; p < d.at.size(); ++p)
      if (d.at[p].numel() > 0) payload.push_back(d.at[p]), payload.push_back(d.values[p]);
    ranks_.broadcast(payload);
    if (include) remember(sent_, delta_id, kDeltaCache), ++deltas_sent_;
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
  std::map<int64_t, Delta> deltas;
  std::vector<int64_t> held;
  for (;;) {
    std::vector<torch::Tensor> cmd{torch::zeros({5}, torch::kInt64)};
    ranks_.broadcast(cmd);
    const auto c = cmd[0];
    const auto op = static_cast<ScoreOp>(c[0].item<int64_t>());
    switch (op) {
      case ScoreOp::Stop:
        return;
      case ScoreOp::Ping:
        break;
      case ScoreOp::Theta: {
        auto p = params;
        ranks_.broadcast(p);
        deltas.clear(), held.clear();
        break;
      }
      case ScoreOp::Losses: {
        const int64_t nb = c[1].item<int64_t>(), id = c[2].item<int64_t>();
        const bool included = c[3].item<int64_t>() != 0;
        const int64_t nd = c[4].item<int64_t>();
        check(nb >= 0 && (!included || nd == static_cast<int64_t>(params.size())) &&
                  (included || id < 0 || deltas.count(id)),
              "rank {}: a measurement of {} micro-batches with update step {} ({} parameters "
              "sent) from rank 0 does not fit this rank's model or the steps it holds",
              ranks_.rank(), nb, id, nd);
        std::vector<torch::Tensor> s{torch::zeros({2 * nb + (included ? nd : 0)}, torch::kInt64)};
        ranks_.broadcast(s);
        const auto sz = s[0];
        std::vector<Batch> batches;
        std::vector<torch::Tensor> payload;
        for (int64_t i = 0; i < nb; ++i) {
          const std::vector<int64_t> shape{sz[2 * i].item<int64_t>(),
                                           sz[2 * i + 1].item<int64_t>()};
          batches.push_back({torch::empty(shape, torch::kInt64).to(device),
                             torch::empty(shape, torch::kInt64).to(device)});
          payload.push_back(batches.back().inputs), payload.push_back(batches.back().targets);
        }
        Delta d;
        for (int64_t p = 0; included && p < nd; ++p) {
          const int64_t n = sz[2 * nb + p].item<int64_t>();
          d.at.push_back(torch::empty({n}, torch::kInt32));
          d.values.push_back(torch::empty({n}, torch::kFloat32));
          if (n > 0) payload.push_back(d.at.back()), payload.push_back(d.values.back());
        }
        ranks_.broadcast(payload);
        if (included) {
          deltas[id] = std::move(d);
          remember(held, id, kDeltaCache);
          for (auto it = deltas.begin(); it != deltas.end();)
            it = std::count(held.begin(), held.end(), it->first) ? std::next(it) : deltas.erase(it);
        }
        std::vector<torch::Tensor> out{torch::zeros({total_rows(batches)}, torch::kFloat64)};
        if (id >= 0) {
          const Delta& step = deltas.at(id);
          const auto saved = apply_delta(params, step);
          fill_share(theta, batches, ranks_.rank(), ranks_.size(), out[0]);
          restore_delta(params, step, saved);
        } else {
          fill_share(theta, batches, ranks_.rank(), ranks_.size(), out[0]);
        }
        ranks_.sum(out);
        break;
      }
      default:
        fail("rank {}: unknown operation {} from rank 0", ranks_.rank(), c[0].item<int64_t>());
    }
  }
}

}  // namespace bistro
