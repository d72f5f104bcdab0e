#include "bistro/model/ops.hpp"

#include <atomic>
#include <cmath>

namespace bistro::ops {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::atomic<bool> g_fused{true};

// The fused kernels run on contiguous fp32 CPU tensors; anything else takes the composite path.
bool fusable(std::initializer_list<const torch::Tensor*> ts) {
  if (!g_fused.load(std::memory_order_relaxed)) return false;
  for (const auto* t : ts) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32) return false;
  }
  return true;
}

// Rows of a [rows, n] view are independent: split them over libtorch's thread pool.
template <typename F>
void for_rows(int64_t rows, int64_t row_cost, F&& f) {
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, row_cost));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) f(r);
  });
}

// ---- RMSNorm: y = x * r * w with r = 1/sqrt(mean(x^2) + eps) per row.
// Backward: with g = dy * w, dx = r * (g - x * r^2 * mean(g * x)); dw = sum_rows(dy * x * r).
struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor w, double eps) {
    x = x.contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    auto y = torch::empty_like(x);
    auto rstd = torch::empty({rows}, x.options());
    const float *X = x.data_ptr<float>(), *W = w.data_ptr<float>();
    float *Y = y.data_ptr<float>(), *R = rstd.data_ptr<float>();
    for_rows(rows, n, [&](int64_t r) {
      const float* xr = X + r * n;
      float ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int64_t j = 0; j < n; ++j) ss += xr[j] * xr[j];
      const float rs = 1.0f / std::sqrt(ss / static_cast<float>(n) + static_cast<float>(eps));
      R[r] = rs;
      float* yr = Y + r * n;
      for (int64_t j = 0; j < n; ++j) yr[j] = W[j] * (xr[j] * rs);
    });
    ctx->save_for_backward({x, w, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &rstd = saved[2];
    const auto dy = grads[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    auto dx = torch::empty_like(x);
    const float *X = x.data_ptr<float>(), *W = w.data_ptr<float>(), *R = rstd.data_ptr<float>(),
                *DY = dy.data_ptr<float>();
    float* DX = dx.data_ptr<float>();
    // dw: per-chunk partial sums, reduced in a fixed order so the result is deterministic.
    const int64_t chunks = std::min<int64_t>(rows, 64);
    auto partial = torch::zeros({chunks, n}, x.options());
    float* P = partial.data_ptr<float>();
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        float* pc = P + c * n;
        for (int64_t r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r) {
          const float *xr = X + r * n, *dyr = DY + r * n;
          const float rs = R[r];
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < n; ++j) dot += dyr[j] * W[j] * xr[j];
          const float k = rs * rs * dot / static_cast<float>(n);
          float* dxr = DX + r * n;
          for (int64_t j = 0; j < n; ++j) {
            dxr[j] = rs * (dyr[j] * W[j] - xr[j] * k);
            pc[j] += dyr[j] * xr[j] * rs;
          }
        }
      }
    });
    return {dx, partial.sum(0), torch::Tensor()};
  }
};

// ---- SwiGLU over a packed [..., 2I] tensor gu = [gate | up] (one GEMM makes both halves):
// y = g * s * u with s = sigmoid(g). Backward: dg = dy * u * s * (1 + g * (1 - s)), du = dy * g *
// s.
struct SwigluFn : torch::autograd::Function<SwigluFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor gu) {
    gu = gu.contiguous();
    const int64_t I = gu.size(-1) / 2, rows = gu.numel() / (2 * I);
    auto s = torch::sigmoid(gu.narrow(-1, 0, I)).contiguous();  // libtorch's vectorised exp
    auto out_sizes = gu.sizes().vec();
    out_sizes.back() = I;
    auto y = torch::empty(out_sizes, gu.options());
    const float *GU = gu.data_ptr<float>(), *S = s.data_ptr<float>();
    float* Y = y.data_ptr<float>();
    for_rows(rows, I, [&](int64_t r) {
      const float* __restrict g = GU + r * 2 * I, * __restrict u = g + I, * __restrict sr = S + r * I;
      float* __restrict yr = Y + r * I;
      for (int64_t i = 0; i < I; ++i) yr[i] = g[i] * sr[i] * u[i];
    });
    ctx->save_for_backward({gu, s});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &gu = saved[0], &s = saved[1];
    const auto dy = grads[0].contiguous();
    const int64_t I = gu.size(-1) / 2, rows = gu.numel() / (2 * I);
    auto dgu = torch::empty_like(gu);
    const float *GU = gu.data_ptr<float>(), *S = s.data_ptr<float>(), *DY = dy.data_ptr<float>();
    float* DGU = dgu.data_ptr<float>();
    for_rows(rows, I, [&](int64_t r) {
      const float* __restrict g = GU + r * 2 * I, * __restrict u = g + I, * __restrict sr = S + r * I, * __restrict d = DY + r * I;
      float* __restrict dg = DGU + r * 2 * I, * __restrict du = dg + I;
      for (int64_t i = 0; i < I; ++i) {
        const float sg = sr[i], gi = g[i];
        du[i] = d[i] * gi * sg;
        dg[i] = d[i] * u[i] * sg * (1.0f + gi * (1.0f - sg));
      }
    });
    return {dgu};
  }
};

// ---- Rotary. Input x [B, T, G, R, D] (any strides), output contiguous [B, G, T, R, D]:
// out = x * cos[t] + rotate_half(x) * sin[t]. The backward is the same map with the angle negated
// (transposed rotation), from [B, G, T, R, D] back to [B, T, G, R, D].
void rotate(const torch::Tensor& in, torch::Tensor& out, const torch::Tensor& cos,
            const torch::Tensor& sin, bool inverse) {
  // Forward: in is [B, T, G, R, D], out [B, G, T, R, D]; inverse: in [B, G, T, R, D], out
  // [B, T, G, R, D]. Iterate over out's rows in its own order.
  const auto os = out.sizes();
  const int64_t D = os[4], half = D / 2, R = os[3];
  const int64_t n1 = os[1], n2 = os[2];  // (G, T) forward, (T, G) inverse
  const auto st = in.strides();
  const float *X = in.data_ptr<float>(), *C = cos.data_ptr<float>(), *S = sin.data_ptr<float>();
  float* O = out.data_ptr<float>();
  const float sign = inverse ? -1.0f : 1.0f;
  for_rows(os[0] * n1 * n2 * R, D, [&](int64_t row) {
    const int64_t r = row % R, i2 = (row / R) % n2, i1 = (row / (R * n2)) % n1,
                  b = row / (R * n2 * n1);
    // Index of the same element in `in`: dims 1 and 2 swap between the layouts.
    const float* x = X + b * st[0] + i2 * st[1] + i1 * st[2] + r * st[3];
    const int64_t t = inverse ? i1 : i2;
    float* o = O + row * D;
    const float *c = C + t * D, *s = S + t * D;
    for (int64_t j = 0; j < half; ++j) {
      const float x1 = x[j * st[4]], x2 = x[(j + half) * st[4]];
      o[j] = x1 * c[j] - sign * x2 * s[j];
      o[j + half] = x2 * c[j + half] + sign * x1 * s[j + half];
    }
  });
}

struct RotaryFn : torch::autograd::Function<RotaryFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor cos,
                               torch::Tensor sin) {
    auto out = torch::empty({x.size(0), x.size(2), x.size(1), x.size(3), x.size(4)}, x.options());
    rotate(x, out, cos, sin, false);
    ctx->save_for_backward({cos, sin});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& dy = grads[0];
    auto dx =
        torch::empty({dy.size(0), dy.size(2), dy.size(1), dy.size(3), dy.size(4)}, dy.options());
    rotate(dy, dx, saved[0], saved[1], true);
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

// ---- Causal softmax over rows of [..., Rq, Tk]: row i of the last-but-one dim sits at position
// i / group + offset and sees keys j <= that position. Forward: mask in place and libtorch's
// softmax. Backward touches only the visible part: dx_j = y_j (dy_j - sum_k dy_k y_k).
struct CausalSoftmaxFn : torch::autograd::Function<CausalSoftmaxFn> {
  static int64_t visible(int64_t row, int64_t Rq, int64_t group, int64_t offset, int64_t Tk) {
    return std::min(Tk, (row % Rq) / group + offset + 1);
  }
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor scores, int64_t group,
                               int64_t offset) {
    const int64_t Tk = scores.size(-1), Rq = scores.size(-2);
    // Scores are normally a fresh matmul output that nothing else holds, so masking in place
    // saves a pass; a leaf belongs to the caller and is copied.
    auto s = scores.is_leaf() ? scores.clone() : scores.contiguous();
    const int64_t rows = s.numel() / Tk;
    float* Sp = s.data_ptr<float>();
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for_rows(rows, Tk, [&](int64_t r) {
      float* row = Sp + r * Tk;
      for (int64_t j = visible(r, Rq, group, offset, Tk); j < Tk; ++j) row[j] = neg_inf;
    });
    auto y = torch::softmax(s, -1);
    ctx->save_for_backward({y});
    ctx->saved_data["group"] = group;
    ctx->saved_data["offset"] = offset;
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto y = ctx->get_saved_variables()[0];
    const int64_t group = ctx->saved_data["group"].toInt(),
                  offset = ctx->saved_data["offset"].toInt();
    const auto dy = grads[0].contiguous();
    const int64_t Tk = y.size(-1), Rq = y.size(-2), rows = y.numel() / Tk;
    auto dx = torch::empty_like(y);
    const float *Y = y.data_ptr<float>(), *DY = dy.data_ptr<float>();
    float* DX = dx.data_ptr<float>();
    for_rows(rows, Tk / 2, [&](int64_t r) {
      const int64_t n = visible(r, Rq, group, offset, Tk);
      const float *yr = Y + r * Tk, *dyr = DY + r * Tk;
      float* dxr = DX + r * Tk;
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < n; ++j) dot += dyr[j] * yr[j];
      for (int64_t j = 0; j < n; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
      for (int64_t j = n; j < Tk; ++j) dxr[j] = 0.0f;
    });
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

// ---- Cross-entropy. Forward keeps log_softmax (one vectorised pass); backward turns it into
// the gradient in place: (softmax - onehot(target)) * grad / count, zero rows for ignored targets.
struct CrossEntropyFn : torch::autograd::Function<CrossEntropyFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor logits, torch::Tensor targets) {
    auto logp = torch::log_softmax(logits, -1).contiguous();
    targets = targets.contiguous();
    const int64_t N = logp.size(0), V = logp.size(1);
    const float* L = logp.data_ptr<float>();
    const int64_t* Tg = targets.data_ptr<int64_t>();
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < N; ++i) {
      if (Tg[i] == -100) continue;
      TORCH_CHECK(Tg[i] >= 0 && Tg[i] < V, "cross_entropy: target ", Tg[i], " out of range");
      sum -= L[i * V + Tg[i]];
      ++count;
    }
    ctx->saved_data["logp"] = logp;
    ctx->saved_data["targets"] = targets;
    ctx->saved_data["count"] = count;
    return torch::tensor(static_cast<float>(sum / static_cast<double>(count)), logits.options());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // The saved buffer is consumed: a second backward through this graph is not supported.
    auto g = ctx->saved_data["logp"].toTensor();
    const auto targets = ctx->saved_data["targets"].toTensor();
    const int64_t count = ctx->saved_data["count"].toInt();
    const float scale = grads[0].item<float>() / static_cast<float>(count);
    g.exp_();
    const int64_t N = g.size(0), V = g.size(1);
    float* Gp = g.data_ptr<float>();
    const int64_t* Tg = targets.data_ptr<int64_t>();
    for_rows(N, V, [&](int64_t i) {
      float* row = Gp + i * V;
      if (Tg[i] == -100) {
        std::fill(row, row + V, 0.0f);
        return;
      }
      for (int64_t j = 0; j < V; ++j) row[j] *= scale;
      row[Tg[i]] -= scale;
    });
    return {g, torch::Tensor()};
  }
};

// ---- Composite forms.
torch::Tensor rms_norm_composite(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  auto xf = x.to(torch::kFloat32);
  auto var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return w * (xf * torch::rsqrt(var + eps)).to(x.scalar_type());
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

torch::Tensor causal_mask(int64_t Rq, int64_t Tk, int64_t group, int64_t offset,
                          const torch::TensorOptions& opts) {
  auto pos = torch::arange(Rq, opts.dtype(torch::kInt64)).div(group, "floor").add(offset);
  auto keys = torch::arange(Tk, opts.dtype(torch::kInt64));
  auto hidden = keys.unsqueeze(0) > pos.unsqueeze(1);
  return torch::zeros({Rq, Tk}, opts).masked_fill(hidden, -std::numeric_limits<float>::infinity());
}
}  // namespace

void set_fused(bool enabled) {
  g_fused = enabled;
}
bool fused() {
  return g_fused;
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (fusable({&x, &weight}) && weight.is_contiguous()) return RmsNormFn::apply(x, weight, eps);
  return rms_norm_composite(x, weight, eps);
}

torch::Tensor swiglu(const torch::Tensor& gate_up) {
  if (fusable({&gate_up})) return SwigluFn::apply(gate_up);
  const int64_t I = gate_up.size(-1) / 2;
  return torch::silu(gate_up.narrow(-1, 0, I)) * gate_up.narrow(-1, I, I);
}

torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  TORCH_CHECK(x.dim() == 5, "rotary: x must be [B, T, G, R, D]");
  if (fusable({&x, &cos, &sin}) && cos.is_contiguous() && sin.is_contiguous()) {
    return RotaryFn::apply(x, cos, sin);
  }
  auto xt = x.permute({0, 2, 1, 3, 4});             // [B, G, T, R, D]
  auto c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // [T, 1, D]
  return (xt * c + rotate_half(xt) * s).contiguous();
}

torch::Tensor causal_softmax(const torch::Tensor& scores, int64_t group, int64_t offset) {
  TORCH_CHECK(group >= 1 && offset >= 0, "causal_softmax: bad group or offset");
  if (fusable({&scores})) return CausalSoftmaxFn::apply(scores, group, offset);
  const int64_t Tk = scores.size(-1), Rq = scores.size(-2);
  return torch::softmax(scores + causal_mask(Rq, Tk, group, offset, scores.options()), -1);
}

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  if (fusable({&logits}) && logits.dim() == 2) return CrossEntropyFn::apply(logits, targets);
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().ignore_index(-100));
}

std::pair<torch::Tensor, torch::Tensor> rotary_tables(int64_t seq_len, int64_t head_dim,
                                                      double theta, c10::Device device) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  auto inv_freq = 1.0 / torch::pow(theta, torch::arange(0, head_dim, 2, f32) / head_dim);
  auto t = torch::arange(seq_len, f32);
  auto freqs = torch::outer(t, inv_freq);
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

}  // namespace bistro::ops
