// A miner's micro-batches in one window: the pages of (window, uid) first; a miner that steps
// past them draws on the next pages of the same key's stream (pages 3..5, 6..8, ...), so a fast
// miner trains on fresh data; past the stream's end it wraps. Every rank of a miner builds the
// same sequence and takes its own indices of it (stream_index, ranks.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "bistro/protocol/neuron.hpp"

namespace bistro {

class WindowBatches {
 public:
  // `first`: the micro-batches of the key's first pages_per_window pages (prefetched, or read here
  // when empty).
  WindowBatches(NeuronData& data, const NeuronHparams& h, uint64_t key,
                std::vector<Batch> first = {});
  // Micro-batch i of the stream.
  const Batch& at(int64_t i);
  uint64_t key() const { return key_; }
  // How many micro-batches the key's first pages_per_window pages gave: the miner's own pages.
  int64_t own() const { return own_; }

 private:
  NeuronData& data_;
  const NeuronHparams& h_;
  uint64_t key_;
  std::vector<Batch> batches_;
  size_t page_sets_ = 1;  // sets of pages_per_window pages read so far
  int64_t own_ = 0;
};

// Where slot j of rank r of an N-rank miner reads the window's stream, `own` being its own pages'
// micro-batches: the first `own` slots go over them (each N times over when N > 1, so that its
// own pages get as many optimizer steps as a one-rank miner gives them: AdamW's step does not grow
// with the batch), later slots take N fresh micro-batches each. One rank: slot j reads j.
int64_t stream_index(int64_t slot, int rank, int ranks, int64_t own);

}  // namespace bistro
