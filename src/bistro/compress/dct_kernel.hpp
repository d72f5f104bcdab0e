// The chunked DCT and the DeMo encode/merge steps on raw float32 memory (torch-free, so the
// sanitised build covers them). One pass over each tensor: a chunk is transformed, selected and
// zeroed (encode) or rebuilt, signed and applied (merge) while it is in cache.
//
// Speed: the orthonormal DCT-II of even length n is split into its even and odd outputs (the
// even ones are a DCT-II of length n/2 of the folded input, scaled by 1/sqrt 2; the odd ones are a
// dense n/2 x n/2 product of the unfolded input), recursively while the length is even. For
// n = 64 that is 1,365 multiply-adds per column instead of 4,096.
//
// Determinism: every output is a fixed sequence of float32 multiplies and adds (no fused
// multiply-add, sums in ascending index order), so the merge gives the same bits on every
// platform, vector width and thread count. docs/protocol.md specifies the sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "bistro/compress/chunks.hpp"

namespace bistro::dct {

// Runs body(begin, end) over [0, n) in ranges, possibly on several threads; ranges never overlap.
using ParallelFor =
    std::function<void(int64_t n, const std::function<void(int64_t begin, int64_t end)>& body)>;
// Runs everything on the calling thread.
void serial_for(int64_t n, const std::function<void(int64_t, int64_t)>& body);

// The orthonormal DCT-II of one length, factored as above. Applied to "columns": the input is n
// rows of w lanes each (row i at in + i * in_stride), and each lane is transformed independently.
class Transform {
 public:
  explicit Transform(int64_t n);
  int64_t size() const { return n_; }
  // out = D in (rows at out + u * out_stride). scratch: scratch_floats(w) floats.
  void forward(const float* in, int64_t in_stride, float* out, int64_t out_stride, int64_t w,
               float* scratch) const;
  // out = D^T in.
  void inverse(const float* in, int64_t in_stride, float* out, int64_t out_stride, int64_t w,
               float* scratch) const;
  int64_t scratch_floats(int64_t w) const { return 3 * n_ * w; }
  // D itself, n x n row-major (D[u][x]), each entry rounded once from double.
  const float* matrix() const { return dense_.data(); }

 private:
  struct Level {
    int64_t size;
    std::vector<float> odd, odd_t;  // (size/2)^2: scale * D_size[2m+1][x], and its transpose
  };
  int64_t n_;
  std::vector<Level> levels_;
  int64_t base_size_ = 1;
  std::vector<float> base_, base_t_;  // scale * D_base and its transpose
  std::vector<float> dense_;
};

// The shared transform for length n (built once, thread-safe).
const Transform& transform(int64_t n);

// Whole [rows, cols] matrices <-> coefficients [chunks, n1 * n2] (block and index order as in
// chunks.hpp).
void forward_chunks(const ChunkPlan& plan, const float* x, float* coefficients,
                    const ParallelFor& parallel = serial_for);
void inverse_chunks(const ChunkPlan& plan, const float* coefficients, float* x,
                    const ParallelFor& parallel = serial_for);

// The k entries of row[0, size) of largest |value|, ties to the lower index, in ascending index
// order. 1 <= k <= size.
void top_k(const float* row, int64_t size, int64_t k, int32_t* idx, float* val);

// One miner step for one parameter: m <- beta m + lr DCT(grad) (grad may be null: no gradient),
// then per chunk the top k of m go to idx/val ([chunks, k]) and are zeroed in m (error feedback).
// m is [chunks, n1 * n2] coefficients; grad is the parameter's [rows, cols] gradient. With
// given_indices, idx is an input (k distinct ascending indices per chunk, chosen elsewhere) and
// only val is written.
void encode_momentum(const ChunkPlan& plan, const float* grad, float* m, float beta, float lr,
                     int64_t k, int32_t* idx, float* val, const ParallelFor& parallel = serial_for,
                     bool given_indices = false);

// One peer's sparse coefficients for one parameter: [chunks, k] indices and values. Indices must
// be in [0, n1 * n2) (the wire decoder checks this before a merge sees them).
struct SparseChunks {
  const int32_t* idx;
  const float* val;
  int64_t k;
};

// The merge for one parameter p ([rows, cols]): per chunk and index, the peers' values summed in
// the given order and divided by how many peers sent that index; inverse DCT; then
// p <- p * decay - lr * sign(result). No peers: p <- p * decay. Where at most a quarter of a
// chunk's coefficients were sent, the inverse's first pass runs over those only (row v of
// (D1^T C)^T accumulates C[u][v] D1[u] for u ascending), otherwise it is Transform::inverse over
// all of C; the second pass is Transform::inverse.
void merge_sign_step(const ChunkPlan& plan, std::span<const SparseChunks> peers, float* p,
                     float decay, float lr, const ParallelFor& parallel = serial_for);

}  // namespace bistro::dct
