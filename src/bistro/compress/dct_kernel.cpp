#include "bistro/compress/dct_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>

#include "bistro/core/error.hpp"

// The dense products are nearly all the work: build them for the widest vectors the CPU has
// (chosen once at load time). Every clone does the same multiplies and adds in the same order, and
// this file is compiled without FMA contraction, so the clones agree bit for bit.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(BISTRO_NO_TARGET_CLONES)
#define BISTRO_WIDEST_VECTORS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BISTRO_WIDEST_VECTORS
#endif

namespace bistro::dct {
namespace {

using v16 = float __attribute__((vector_size(64)));

// Unaligned loads and stores as memcpy (helpers returning v16 would change the ABI per clone).
#define BISTRO_LOAD16(v, p) std::memcpy(&(v), (p), sizeof(v16))
#define BISTRO_STORE16(p, v) std::memcpy((p), &(v), sizeof(v16))

// out[i][j] = sum over x ascending of M[i][x] * in[x][j], from 0, for i < a, j < w. M is a x b,
// row-major. Four output rows share each loaded input row.
BISTRO_WIDEST_VECTORS
void apply(const float* M, int64_t a, int64_t b, const float* in, int64_t in_stride, float* out,
           int64_t out_stride, int64_t w) {
  int64_t j = 0;
  for (; j + 16 <= w; j += 16) {
    int64_t i = 0;
    for (; i + 4 <= a; i += 4) {
      const float *m0 = M + i * b, *m1 = m0 + b, *m2 = m1 + b, *m3 = m2 + b;
      v16 c0 = {}, c1 = {}, c2 = {}, c3 = {};
      for (int64_t x = 0; x < b; ++x) {
        v16 r;
        BISTRO_LOAD16(r, in + x * in_stride + j);
        c0 += m0[x] * r;
        c1 += m1[x] * r;
        c2 += m2[x] * r;
        c3 += m3[x] * r;
      }
      BISTRO_STORE16(out + i * out_stride + j, c0);
      BISTRO_STORE16(out + (i + 1) * out_stride + j, c1);
      BISTRO_STORE16(out + (i + 2) * out_stride + j, c2);
      BISTRO_STORE16(out + (i + 3) * out_stride + j, c3);
    }
    for (; i < a; ++i) {
      v16 c = {};
      for (int64_t x = 0; x < b; ++x) {
        v16 r;
        BISTRO_LOAD16(r, in + x * in_stride + j);
        c += M[i * b + x] * r;
      }
      BISTRO_STORE16(out + i * out_stride + j, c);
    }
  }
  for (; j < w; ++j) {
    for (int64_t i = 0; i < a; ++i) {
      float c = 0.0f;
      for (int64_t x = 0; x < b; ++x) c += M[i * b + x] * in[x * in_stride + j];
      out[i * out_stride + j] = c;
    }
  }
}

// One level's fold: u[x] = lo + hi, v[x] = lo - hi for the rows x and s - 1 - x of cur.
BISTRO_WIDEST_VECTORS
void fold(const float* cur, int64_t stride, int64_t s, float* u, float* v, int64_t w) {
  for (int64_t x = 0; x < s / 2; ++x) {
    const float* lo = cur + x * stride;
    const float* hi = cur + (s - 1 - x) * stride;
    float* ux = u + x * w;
    float* vx = v + x * w;
    for (int64_t j = 0; j < w; ++j) {
      ux[j] = lo[j] + hi[j];
      vx[j] = lo[j] - hi[j];
    }
  }
}

// Its inverse: rows x and s - 1 - x of dst are e[x] + o[x] and e[x] - o[x].
BISTRO_WIDEST_VECTORS
void unfold(const float* e, const float* o, int64_t s, float* dst, int64_t stride, int64_t w) {
  for (int64_t x = 0; x < s / 2; ++x) {
    const float* ex = e + x * w;
    const float* ox = o + x * w;
    float* lo = dst + x * stride;
    float* hi = dst + (s - 1 - x) * stride;
    for (int64_t j = 0; j < w; ++j) {
      lo[j] = ex[j] + ox[j];
      hi[j] = ex[j] - ox[j];
    }
  }
}

// y <- y + a x.
BISTRO_WIDEST_VECTORS
void axpy(float* y, const float* x, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// m[u][v] <- beta m[u][v] + lr ct[v][u] for one chunk.
BISTRO_WIDEST_VECTORS
void momentum_step(float* m, const float* ct, int64_t n1, int64_t n2, float beta, float lr) {
  for (int64_t u = 0; u < n1; ++u) {
    for (int64_t v = 0; v < n2; ++v) m[u * n2 + v] = beta * m[u * n2 + v] + lr * ct[v * n1 + u];
  }
}

// p[i][j] <- p[i][j] decay - lr sign(xt[j][i]) for one chunk (rows of p at p + i * stride).
BISTRO_WIDEST_VECTORS
void sign_step(float* p, int64_t stride, const float* xt, int64_t n1, int64_t n2, float decay,
               float lr) {
  for (int64_t i = 0; i < n1; ++i) {
    float* row = p + i * stride;
    for (int64_t j = 0; j < n2; ++j) {
      const float x = xt[j * n1 + i];
      const float sign = static_cast<float>((x > 0.0f) - (x < 0.0f));
      row[j] = row[j] * decay - lr * sign;
    }
  }
}

// key[j] = the bits of |row[j]|; returns the smallest of the largest keys of k consecutive groups
// of size / k entries.
BISTRO_WIDEST_VECTORS
uint32_t magnitude_keys(const float* row, int64_t size, int64_t k, uint32_t* key) {
  std::memcpy(key, row, static_cast<size_t>(size) * sizeof(float));
  for (int64_t j = 0; j < size; ++j) key[j] &= 0x7fffffffu;
  const int64_t group = size / k;
  uint32_t t = UINT32_MAX;
  for (int64_t g = 0; g < k; ++g) {
    uint32_t top = 0;
    for (int64_t j = g * group; j < (g + 1) * group; ++j) top = std::max(top, key[j]);
    t = std::min(t, top);
  }
  return t;
}

double dct_entry(int64_t n, int64_t u, int64_t x) {
  const double alpha = std::sqrt((u == 0 ? 1.0 : 2.0) / static_cast<double>(n));
  return alpha * std::cos(std::numbers::pi * static_cast<double>((2 * x + 1) * u) /
                          (2.0 * static_cast<double>(n)));
}

// dst [cols][rows] = src [rows][cols]^T.
BISTRO_WIDEST_VECTORS
void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  }
}

// Per-range working memory for one chunk: two block buffers and the transforms' scratch.
struct Work {
  explicit Work(const ChunkPlan& p)
      : t1(transform(p.n1)),
        t2(transform(p.n2)),
        a(static_cast<size_t>(p.size())),
        b(static_cast<size_t>(p.size())),
        scratch(static_cast<size_t>(std::max(t1.scratch_floats(p.n2), t2.scratch_floats(p.n1)))) {}
  const Transform &t1, &t2;
  std::vector<float> a, b, scratch;

  // Chunk of x (rows at x + i * stride) -> coefficients transposed: a[v * n1 + u] = C[u][v].
  void forward_t(const ChunkPlan& p, const float* x, int64_t stride) {
    t1.forward(x, stride, a.data(), p.n2, p.n2, scratch.data());  // D1 B
    transpose(a.data(), p.n1, p.n2, b.data());
    t2.forward(b.data(), p.n1, a.data(), p.n1, p.n1, scratch.data());  // D2 (D1 B)^T
  }
  // Coefficients c[u * n2 + v] -> the chunk transposed: a[y * n1 + x] = X[x][y].
  void inverse_t(const ChunkPlan& p, const float* c) {
    t1.inverse(c, p.n2, a.data(), p.n2, p.n2, scratch.data());  // D1^T C
    transpose(a.data(), p.n1, p.n2, b.data());
    t2.inverse(b.data(), p.n1, a.data(), p.n1, p.n1, scratch.data());  // D2^T (D1^T C)^T
  }
};

// Block (by, bx) of chunk r starts at row by * n1, column bx * n2 of the [rows, cols] view.
int64_t chunk_offset(const ChunkPlan& p, int64_t r) {
  const int64_t per_row = p.cols / p.n2;
  return (r / per_row) * p.n1 * p.cols + (r % per_row) * p.n2;
}

}  // namespace

void serial_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  if (n > 0) body(0, n);
}

Transform::Transform(int64_t n) : n_(n) {
  check(n >= 1, "dct: transform length {} must be positive", n);
  int64_t s = n;
  double scale = 1.0;
  while (s % 2 == 0) {
    const int64_t h = s / 2;
    Level level{s, std::vector<float>(static_cast<size_t>(h * h)),
                std::vector<float>(static_cast<size_t>(h * h))};
    for (int64_t m = 0; m < h; ++m) {
      for (int64_t x = 0; x < h; ++x) {
        const auto v = static_cast<float>(scale * dct_entry(s, 2 * m + 1, x));
        level.odd[static_cast<size_t>(m * h + x)] = v;
        level.odd_t[static_cast<size_t>(x * h + m)] = v;
      }
    }
    levels_.push_back(std::move(level));
    scale /= std::numbers::sqrt2;
    s = h;
  }
  dense_.resize(static_cast<size_t>(n * n));
  for (int64_t u = 0; u < n; ++u) {
    for (int64_t x = 0; x < n; ++x)
      dense_[static_cast<size_t>(u * n + x)] = static_cast<float>(dct_entry(n, u, x));
  }
  base_size_ = s;
  base_.resize(static_cast<size_t>(s * s));
  base_t_.resize(static_cast<size_t>(s * s));
  for (int64_t u = 0; u < s; ++u) {
    for (int64_t x = 0; x < s; ++x) {
      const auto v = static_cast<float>(scale * dct_entry(s, u, x));
      base_[static_cast<size_t>(u * s + x)] = v;
      base_t_[static_cast<size_t>(x * s + u)] = v;
    }
  }
}

void Transform::forward(const float* in, int64_t in_stride, float* out, int64_t out_stride,
                        int64_t w, float* scratch) const {
  // Each level folds its input (u = lo + hi, v = lo - hi), writes its odd outputs from v and hands
  // u to the next level, whose outputs are every other row of this one's.
  const float* cur = in;
  int64_t cur_stride = in_stride;
  for (const auto& level : levels_) {
    const int64_t s = level.size, h = s / 2;
    float* u = scratch;
    float* v = scratch + h * w;
    fold(cur, cur_stride, s, u, v, w);
    apply(level.odd.data(), h, h, v, w, out + out_stride, 2 * out_stride, w);
    cur = u;
    cur_stride = w;
    out_stride *= 2;
    scratch += 2 * h * w;
  }
  apply(base_.data(), base_size_, base_size_, cur, cur_stride, out, out_stride, w);
}

void Transform::inverse(const float* in, int64_t in_stride, float* out, int64_t out_stride,
                        int64_t w, float* scratch) const {
  const auto depth = static_cast<int64_t>(levels_.size());
  if (depth == 0) {
    apply(base_t_.data(), base_size_, base_size_, in, in_stride, out, out_stride, w);
    return;
  }
  // Bottom up: level l's inputs are the rows in + i * (in_stride << l); its even half comes from
  // the level below (prev), its odd half from the odd rows; it writes lo = e + o, hi = e - o.
  float* bufs[2] = {scratch, scratch + n_ * w};
  float* odd = scratch + 2 * n_ * w;
  float* prev = bufs[0];
  apply(base_t_.data(), base_size_, base_size_, in, in_stride << depth, prev, w, w);
  for (int64_t l = depth - 1; l >= 0; --l) {
    const auto& level = levels_[static_cast<size_t>(l)];
    const int64_t s = level.size, h = s / 2;
    apply(level.odd_t.data(), h, h, in + (in_stride << l), in_stride << (l + 1), odd, w, w);
    float* dst = l == 0 ? out : (prev == bufs[0] ? bufs[1] : bufs[0]);
    const int64_t ds = l == 0 ? out_stride : w;
    unfold(prev, odd, s, dst, ds, w);
    prev = dst;
  }
}

const Transform& transform(int64_t n) {
  static std::mutex mu;
  static std::map<int64_t, std::unique_ptr<Transform>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& t = cache[n];
  if (!t) t = std::make_unique<Transform>(n);
  return *t;
}

void forward_chunks(const ChunkPlan& p, const float* x, float* coefficients,
                    const ParallelFor& parallel) {
  parallel(p.chunks(), [&](int64_t r0, int64_t r1) {
    Work work(p);
    for (int64_t r = r0; r < r1; ++r) {
      work.forward_t(p, x + chunk_offset(p, r), p.cols);
      transpose(work.a.data(), p.n2, p.n1, coefficients + r * p.size());
    }
  });
}

void inverse_chunks(const ChunkPlan& p, const float* coefficients, float* x,
                    const ParallelFor& parallel) {
  parallel(p.chunks(), [&](int64_t r0, int64_t r1) {
    Work work(p);
    for (int64_t r = r0; r < r1; ++r) {
      work.inverse_t(p, coefficients + r * p.size());
      float* block = x + chunk_offset(p, r);
      for (int64_t i = 0; i < p.n1; ++i) {
        for (int64_t j = 0; j < p.n2; ++j) block[i * p.cols + j] = work.a[j * p.n1 + i];
      }
    }
  });
}

void top_k(const float* row, int64_t size, int64_t k, int32_t* idx, float* val) {
  check(k >= 1 && k <= size, "top_k: k {} outside [1, {}]", k, size);
  // |v| as the bits of the float with the sign cleared (they order like the magnitudes, NaN
  // above infinity). Cut the row into k groups: each group's largest key is >= the smallest group
  // maximum t, so at least k keys are >= t, and the top k are among those candidates (a few
  // percent of the row). Only the candidates are sorted, by key and then index.
  thread_local std::vector<uint32_t> key;
  thread_local std::vector<int32_t> cand;
  key.resize(static_cast<size_t>(size));
  cand.resize(static_cast<size_t>(size));
  const uint32_t* keys = key.data();
  const uint32_t t = magnitude_keys(row, size, k, key.data());
  int32_t* c = cand.data();
  int64_t n = 0;
  for (int64_t j = 0; j < size; ++j) {  // branch-free: most entries are not candidates
    c[n] = static_cast<int32_t>(j);
    n += keys[j] >= t;
  }
  // A strict total order, so the k first after nth_element are exactly the top k.
  std::nth_element(c, c + (k - 1), c + n, [keys](int32_t a, int32_t b) {
    return keys[a] > keys[b] || (keys[a] == keys[b] && a < b);
  });
  std::sort(c, c + k);
  for (int64_t s = 0; s < k; ++s) {
    idx[s] = c[s];
    val[s] = row[c[s]];
  }
}

void encode_momentum(const ChunkPlan& p, const float* grad, float* m, float beta, float lr,
                     int64_t k, int32_t* idx, float* val, const ParallelFor& parallel,
                     bool given_indices) {
  check(k >= 1 && k <= p.size(), "encode: k {} outside [1, {}]", k, p.size());
  parallel(p.chunks(), [&](int64_t r0, int64_t r1) {
    Work work(p);
    for (int64_t r = r0; r < r1; ++r) {
      float* mr = m + r * p.size();
      if (grad != nullptr) {
        work.forward_t(p, grad + chunk_offset(p, r), p.cols);
        momentum_step(mr, work.a.data(), p.n1, p.n2, beta, lr);
      } else {
        for (int64_t j = 0; j < p.size(); ++j) mr[j] = beta * mr[j];
      }
      int32_t* ir = idx + r * k;
      if (given_indices) {
        for (int64_t s = 0; s < k; ++s) val[r * k + s] = mr[ir[s]];
      } else {
        top_k(mr, p.size(), k, ir, val + r * k);
      }
      for (int64_t s = 0; s < k; ++s) mr[ir[s]] = 0.0f;  // error feedback: keep what was not sent
    }
  });
}

void merge_sign_step(const ChunkPlan& p, std::span<const SparseChunks> peers, float* param,
                     float decay, float lr, const ParallelFor& parallel) {
  if (peers.empty()) {  // only weight decay: no chunk work at all
    parallel(p.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * p.cols; i < r1 * p.cols; ++i) param[i] *= decay;
    });
    return;
  }
  parallel(p.chunks(), [&](int64_t r0, int64_t r1) {
    Work work(p);
    const float* d1 = work.t1.matrix();
    // Dense sums and counts, cleared again entry by entry after each chunk (few are touched).
    std::vector<float> c(static_cast<size_t>(p.size()), 0.0f);
    std::vector<int32_t> count(static_cast<size_t>(p.size()), 0);
    std::vector<int32_t> touched;
    for (int64_t r = r0; r < r1; ++r) {
      float* block = param + chunk_offset(p, r);
      touched.clear();
      for (const auto& peer : peers) {
        const int32_t* ir = peer.idx + r * peer.k;
        const float* vr = peer.val + r * peer.k;
        for (int64_t s = 0; s < peer.k; ++s) {
          if (count[ir[s]]++ == 0) touched.push_back(ir[s]);
          c[ir[s]] += vr[s];
        }
      }
      std::sort(touched.begin(), touched.end());
      for (const int32_t j : touched) {
        if (count[j] > 1) c[j] /= static_cast<float>(count[j]);
      }
      float* tt = work.b.data();
      if (static_cast<int64_t>(touched.size()) * 4 <= p.size()) {
        // The first pass of the inverse only over the coefficients sent: row v of
        // Tt = (D1^T C)^T gathers mean(u, v) * D1[u] for u ascending.
        std::fill(work.b.begin(), work.b.end(), 0.0f);
        for (const int32_t j : touched) {
          axpy(tt + (j % p.n2) * p.n1, d1 + (j / p.n2) * p.n1, c[j], p.n1);
        }
      } else {  // most coefficients sent: the factored pass over all of C is cheaper
        work.t1.inverse(c.data(), p.n2, work.a.data(), p.n2, p.n2, work.scratch.data());
        transpose(work.a.data(), p.n1, p.n2, tt);
      }
      for (const int32_t j : touched) {
        c[j] = 0.0f;
        count[j] = 0;
      }
      work.t2.inverse(tt, p.n1, work.a.data(), p.n1, p.n1, work.scratch.data());  // X^T
      sign_step(block, p.cols, work.a.data(), p.n1, p.n2, decay, lr);
    }
  });
}

}  // namespace bistro::dct
