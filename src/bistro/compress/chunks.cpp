#include "bistro/compress/chunks.hpp"

#include <algorithm>

#include "bistro/core/error.hpp"

namespace bistro {

int64_t largest_divisor_at_most(int64_t n, int64_t cap) {
  check(n > 0 && cap > 0, "largest_divisor_at_most: n and cap must be positive");
  for (int64_t d = std::min(n, cap); d > 1; --d) {
    if (n % d == 0) return d;
  }
  return 1;
}

ChunkPlan chunk_plan(const std::vector<int64_t>& shape, int64_t cap) {
  ChunkPlan p;
  if (shape.size() == 1) {
    p.cols = shape[0];
  } else if (!shape.empty()) {
    p.rows = shape[0];
    p.cols = 1;
    for (size_t i = 1; i < shape.size(); ++i) p.cols *= shape[i];
  }
  check(p.rows > 0 && p.cols > 0, "chunk_plan: empty tensor");
  p.n1 = largest_divisor_at_most(p.rows, cap);
  p.n2 = largest_divisor_at_most(p.cols, cap);
  return p;
}

int64_t clamp_k(int64_t k, const ChunkPlan& plan) {
  if (plan.rows == 1) return plan.size();
  return std::clamp<int64_t>(k, 1, plan.size());
}

}  // namespace bistro
