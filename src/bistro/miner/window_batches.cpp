#include "bistro/miner/window_batches.hpp"

#include "bistro/core/error.hpp"

namespace bistro {

WindowBatches::WindowBatches(NeuronData& data, const NeuronHparams& h, uint64_t key,
                             std::vector<Batch> first)
    : data_(data), h_(h), key_(key), batches_(std::move(first)) {
  if (batches_.empty())
    batches_ = data_.batches(pages(key_, h_.pages_per_window, data_.configs), h_.max_micro_batches);
  check(!batches_.empty(), "a miner's window: its pages gave no micro-batches");
  own_ = static_cast<int64_t>(batches_.size());
}

int64_t stream_index(int64_t slot, int rank, int ranks, int64_t own) {
  if (slot < own) return (slot * ranks + rank) % own;
  return own + (slot - own) * ranks + rank;
}

const Batch& WindowBatches::at(int64_t i) {
  while (static_cast<size_t>(i) >= batches_.size()) {
    const size_t set = page_sets_++;
    const uint64_t ppw = h_.pages_per_window;
    auto more = pages(key_, ppw * (set + 1), data_.configs);
    more.erase(more.begin(), more.begin() + static_cast<ptrdiff_t>(ppw * set));
    const auto extra = data_.batches(more, h_.max_micro_batches);
    if (extra.empty()) break;
    batches_.insert(batches_.end(), extra.begin(), extra.end());
  }
  return batches_[static_cast<size_t>(i) % batches_.size()];
}

}  // namespace bistro
