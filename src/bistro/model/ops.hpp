// The transformer's elementwise building blocks. Each has a composite form built from stock
// libtorch ops (any device) and, for contiguous fp32 CPU tensors, a fused form: one custom autograd
// function with a hand-written forward and backward that makes one or two passes over memory where
// the composite makes many. Both forms compute the same function; tests hold them to each other and
// to PyTorch.
#pragma once

#include <torch/torch.h>

namespace bistro::ops {

// Use the fused CPU kernels where they apply (default true). Tests switch them off to compare.
void set_fused(bool enabled);
bool fused();

// x * rsqrt(mean(x^2, -1) + eps) * weight, statistics in fp32 (Hugging Face LlamaRMSNorm).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// silu(gate) * up (LLaMA's SwiGLU) over a packed [..., 2I] tensor [gate | up].
torch::Tensor swiglu(const torch::Tensor& gate_up);

// Rotary embedding, Hugging Face convention: x * cos + rotate_half(x) * sin, where
// rotate_half([a, b]) = [-b, a] over the last dim. x: [B, T, G, R, D] (any strides; G*R heads of
// dim D, grouped as attention wants them); cos, sin: [T, D] with both halves equal, as
// rotary_tables() makes them (pre-scaling both tables scales the result). Returns contiguous
// [B, G, T, R, D].
torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// Causal softmax over the last dim of scores [..., Rq, Tk]: row i sits at position
// i / group + offset and sees keys 0..position. (group: query rows per position; offset: the
// position of the first row, for a chunk of queries.)
torch::Tensor causal_softmax(const torch::Tensor& scores, int64_t group = 1, int64_t offset = 0);

// Mean cross-entropy of logits [N, V] against targets [N] (int64), ignoring targets == -100.
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

// cos and sin tables [T, D] for rotary embeddings (fp32, as Hugging Face computes them).
std::pair<torch::Tensor, torch::Tensor> rotary_tables(int64_t seq_len, int64_t head_dim,
                                                      double theta, c10::Device device);

}  // namespace bistro::ops
