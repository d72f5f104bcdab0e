// SparseLoCo (templar's protocol today, arXiv 2508.15706) on raw float32 memory, torch-free so the
// sanitised build covers it. Two halves:
//
//   encode (a miner, once per window): its pseudo-gradient d = theta_start - theta_after_H is
//   folded into an error-feedback buffer e <- beta e + d; per 64 x 64 chunk of the parameter (its
//   own coordinates, no transform) the k entries of largest |e| are sent, their values quantised
//   to 2-bit codes over +-6 RMS with each bin decoded as the mean of the values that fell in it;
//   what was sent (as decoded) is subtracted from e, so quantisation error stays local too.
//
//   outer_step (every node, once per window): per parameter, each peer's values scaled down to
//   the median peer norm, the mean over the peers that sent each coordinate, theta <- theta -
//   alpha * mean. The outer step is consensus: a fixed sequence of float32/float64 operations
//   without FMA contraction (docs/protocol.md), the same bits on every CPU and thread count
//   (ctest dct_bits builds it four ways and compares).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/dct_kernel.hpp"

namespace bistro::sparse_loco {

// Element (row, col) of the [rows, cols] view that coefficient j of chunk c addresses (chunks.hpp).
inline int64_t element_of(const ChunkPlan& p, int64_t chunk, int64_t j) {
  const int64_t per_row = p.cols / p.n2;
  const int64_t y = chunk / per_row, x = chunk % per_row;
  const int64_t a = j / p.n2, b = j % p.n2;
  return (y * p.n1 + a) * p.cols + x * p.n2 + b;
}

// 2-bit codes over +-6 RMS of the values: c = clamp(floor((v + 6 rms) / (3 rms)), 0, 3); each
// code decodes to levels[c], the mean of the values with that code (an empty bin decodes to its
// centre (c - 1.5) * 3 rms). `codes` gets one code per value (0..3).
std::array<float, 4> quantize2(std::span<const float> values, std::span<uint8_t> codes);

// One miner's compression of one parameter. e and delta are [rows, cols] (delta may be null: no
// new pseudo-gradient, only the decay). Writes idx/val [chunks, k] (slots in ascending index order,
// ties to the lower index) with val already decoded (value_bits 2: levels[code]; 32: the raw
// values) and, for 2 bits, levels; then e <- e - decoded at the sent coordinates.
void encode(const ChunkPlan& plan, float* e, const float* delta, float beta, int64_t k,
            int value_bits, int32_t* idx, float* val, std::array<float, 4>* levels,
            const dct::ParallelFor& parallel = dct::serial_for);

// The consensus outer step on one parameter p [rows, cols]; peers in ascending uid order, each
// with [chunks, k] indices (in [0, n1 n2), distinct per chunk: the wire decoder checks) and values.
// Returns the median norm it clipped to (0 with no peers).
double outer_step(const ChunkPlan& plan, std::span<const dct::SparseChunks> peers, float* p,
                  float alpha, const dct::ParallelFor& parallel = dct::serial_for);

// The L2 norm of one peer's values, summed in float64 in slot order (the protocol's order).
double peer_norm(const dct::SparseChunks& peer, int64_t chunks);

}  // namespace bistro::sparse_loco
