// DeMo-style compressed momentum (DeMo, DisTrO, templar): each miner keeps momentum
// m <- beta m + lr g, sends the k largest chunked-DCT coefficients of m per chunk, and subtracts
// what it sent (error feedback). Everyone merges the gathered coefficients the same way: mean per
// index over all peers, inverse DCT, sign, then p <- p (1 - lr wd) - lr sign(.).
//
// Determinism: top-k keeps the k largest |value| per chunk, ties to the lower index, slots in
// ascending index order; the merge sorts peers by uid and sums in that order, so any arrival
// order gives the same bits.
#pragma once

#include <filesystem>

#include <torch/torch.h>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/update.hpp"

namespace bistro {

// x (any shape) -> coefficients [chunks, n1 * n2]; and back (dct_kernel.hpp, on the CPU).
torch::Tensor dct_chunks(const torch::Tensor& x, const ChunkPlan& plan);
torch::Tensor idct_chunks(const torch::Tensor& coefficients, const ChunkPlan& plan,
                          at::IntArrayRef shape);

// Top-k per row of a [rows, size] CPU float tensor, as specified above.
void top_k_rows(const torch::Tensor& coefficients, int64_t k, std::vector<int32_t>& idx,
                std::vector<float>& val);

// Dense [rows, size] from sparse rows (the inverse of top_k_rows for the kept entries).
torch::Tensor densify(const UpdateTensor& t, int64_t size);

struct DemoOptions {
  double beta = 0.999;
  int64_t k = 32;
  int64_t chunk_cap = 64;
  int64_t k_embed = 0;  // experiment only: k for the embedding and head (0: k)
};

class DemoCompressor {
 public:
  DemoCompressor(std::vector<std::pair<std::string, torch::Tensor>> params, DemoOptions options);

  // Folds the current gradients into momentum (m <- beta m + lr g), returns the update to send
  // (tensors in parameter order; header fields left to the caller) and applies error feedback.
  Update encode(double lr);
  // The same step, but sending the coefficients at given positions (positions[i]: [chunks, k_i]
  // ascending per chunk, k_i = clamp_k(k, plan)) instead of the top k: what `experiment converge
  // --shared-k` uses to try positions every miner shares (drawn from the window's seed), which
  // would need no indices on the wire.
  Update encode_at(double lr, const std::vector<std::vector<int32_t>>& positions);
  // Parameter i's momentum in its own shape (kept internally as DCT coefficients).
  torch::Tensor momentum(size_t i) const;
  // The momentum as a safetensors file ("m.<param>", the DCT coefficients), written atomically;
  // load() restores it and returns false when the file does not exist. A file for another model
  // or chunking is refused with an error naming it.
  void save(const std::filesystem::path& file) const;
  bool load(const std::filesystem::path& file);

 private:
  Update encode_impl(double lr, const std::vector<std::vector<int32_t>>* positions);

  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> m_;  // [chunks, n1 * n2] coefficients per parameter
  DemoOptions o_;
};

// Applies the merged DeMo step to params (in parameter order, matching the updates' tensors).
// Peers with the same uid are an error. No peers: only weight decay.
void demo_merge(const std::vector<torch::Tensor>& params, std::vector<PeerUpdate> peers, double lr,
                double weight_decay);

// Slices: the values at this window's positions, and the merge (mean per position over peers).
Update slice_encode(const std::vector<std::pair<std::string, torch::Tensor>>& params, uint64_t key,
                    int64_t compression);
void slice_merge(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                 std::vector<PeerUpdate> peers, uint64_t key, int64_t compression);

}  // namespace bistro
