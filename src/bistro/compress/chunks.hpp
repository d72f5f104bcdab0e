// How DeMo-style compression cuts a tensor into DCT chunks (torch-free, so wire-format checks can
// use it). A tensor is viewed as a matrix [rows, cols] (a vector is [1, n]; higher ranks fold into
// [shape[0], rest]); each dimension's chunk is its largest divisor <= cap (64), so a prime
// dimension above 64 gets chunk 1. Blocks (y, x) are numbered row-major; inside a block the
// coefficient (u, v) has index u * n2 + v.
#pragma once

#include <cstdint>
#include <vector>

namespace bistro {

struct ChunkPlan {
  int64_t rows = 1, cols = 1;  // the matrix view
  int64_t n1 = 1, n2 = 1;      // chunk size per dimension
  int64_t chunks() const { return (rows / n1) * (cols / n2); }
  int64_t size() const { return n1 * n2; }
};

int64_t largest_divisor_at_most(int64_t n, int64_t cap);
ChunkPlan chunk_plan(const std::vector<int64_t>& shape, int64_t cap = 64);
// k clamped to [1, coefficients per chunk]; a 1-D parameter (rows = 1) sends all of them.
int64_t clamp_k(int64_t k, const ChunkPlan& plan);

}  // namespace bistro
