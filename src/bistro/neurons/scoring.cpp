#include "bistro/neurons/scoring.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/sparse_loco.hpp"
#include "bistro/neurons/neuron.hpp"
#include "bistro/neurons/outer_step.hpp"

namespace bistro {

namespace {

double lower_median(std::vector<double> v) {  // v non-empty
  std::nth_element(v.begin(), v.begin() + (v.size() - 1) / 2, v.end());
  return v[(v.size() - 1) / 2];
}

// Per-parameter L2 norms of an update's values.
std::vector<double> tensor_norms(const Update& u) {
  std::vector<double> out;
  for (const auto& t : u.tensors) {
    double s = 0;
    for (float v : t.val) s += static_cast<double>(v) * v;
    out.push_back(std::sqrt(s));
  }
  return out;
}

// theta -= alpha * scale_i * u, touching only the update's coordinates (what the outer step does
// with one peer, whose clip is `scale`); `saved` gets the old values, for restore().
void apply_alone(const std::vector<torch::Tensor>& params, const Update& u, double alpha,
                 const std::vector<double>& scale, std::vector<std::vector<float>>& saved) {
  saved.assign(params.size(), {});
  for (size_t i = 0; i < params.size() && i < u.tensors.size(); ++i) {
    const auto& t = u.tensors[i];
    const auto plan = chunk_plan(params[i].sizes().vec(), u.chunk_cap);
    float* p = params[i].data_ptr<float>();
    const float f = static_cast<float>(alpha * scale[i]);
    auto& sv = saved[i];
    sv.reserve(t.val.size());
    for (int64_t r = 0; r < t.rows; ++r)
      for (int64_t j = 0; j < t.k; ++j) {
        const int64_t e = sparse_loco::element_of(plan, r, t.idx[r * t.k + j]);
        sv.push_back(p[e]);
        p[e] -= f * t.val[r * t.k + j];
      }
  }
}

void restore(const std::vector<torch::Tensor>& params, const Update& u,
             const std::vector<std::vector<float>>& saved) {
  for (size_t i = 0; i < saved.size(); ++i) {
    const auto& t = u.tensors[i];
    const auto plan = chunk_plan(params[i].sizes().vec(), u.chunk_cap);
    float* p = params[i].data_ptr<float>();
    size_t at = 0;
    for (int64_t r = 0; r < t.rows; ++r)
      for (int64_t j = 0; j < t.k; ++j)  // in order: a coordinate appears once per update
        p[sparse_loco::element_of(plan, r, t.idx[r * t.k + j])] = saved[i][at++];
  }
}

}  // namespace

std::vector<double> losses_with(Llama& theta, const Update& u, double alpha,
                                const std::vector<double>& scale,
                                const std::vector<const std::vector<Batch>*>& sets) {
  const auto params = parameter_tensors(theta);
  torch::NoGradGuard no_grad;
  std::vector<std::vector<float>> saved;
  apply_alone(params, u, alpha, scale, saved);
  std::vector<double> out;
  for (const auto* s : sets) {
    const double l = mean_loss(theta, *s);
    out.push_back(std::isfinite(l) ? l : INFINITY);
  }
  restore(params, u, saved);
  return out;
}

double score_window(Llama& theta, const LlamaConfig& config, const std::vector<ScoreInput>& in,
                    const std::vector<Batch>& random, double alpha, int threads,
                    std::vector<Observation>& obs) {
  const size_t n = in.size();
  std::vector<double> before(n), after_own(n), after_random(n), cross(n, NAN);
  // Each update is scored as the record would take it: clipped per parameter to the window's
  // lower-median norm (a scaled-up update cannot buy a larger effect, nor hide behind one).
  std::vector<std::vector<double>> scale(n);
  {
    std::vector<std::vector<double>> norms(n);
    for (size_t i = 0; i < n; ++i) norms[i] = tensor_norms(*in[i].update);
    const size_t tensors = n ? norms[0].size() : 0;
    for (size_t p = 0; p < tensors; ++p) {
      std::vector<double> col;
      for (size_t i = 0; i < n; ++i) col.push_back(norms[i][p]);
      const double median = lower_median(std::move(col));
      for (size_t i = 0; i < n; ++i)
        scale[i].push_back(norms[i][p] > median && norms[i][p] > 0 ? median / norms[i][p] : 1.0);
    }
  }
  const double base_random = mean_loss(theta, random);
  // Copies of theta for the extra threads (scoring changes theta and puts it back).
  const int workers = std::max(1, std::min<int>(threads, static_cast<int>(n)));
  std::vector<Llama> models;
  models.push_back(theta);
  for (int w = 1; w < workers; ++w) {
    Llama m(config);
    torch::NoGradGuard no_grad;
    const auto to = parameter_tensors(m), from = parameter_tensors(theta);
    for (size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
    models.push_back(m);
  }
  auto parallel = [&](size_t count, const std::function<void(Llama&, size_t)>& body) {
    std::atomic<size_t> next{0};
    auto run = [&](int w) {
      for (size_t i; (i = next++) < count;) body(models[w], i);
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < workers; ++w) pool.emplace_back(run, w);
    run(0);
    for (auto& t : pool) t.join();
  };
  parallel(n, [&](Llama& m, size_t i) {
    before[i] = mean_loss(m, in[i].own);
    const auto l = losses_with(m, *in[i].update, alpha, scale[i], {&in[i].own, &random});
    after_own[i] = l[0], after_random[i] = l[1];
  });
  // The paired reference: other updates' effect on this miner's pages. References are the updates
  // that help on random pages at least half as much as the median helpful one: a weak reference
  // (noise, an untrained update) would inflate every margin read against it.
  std::vector<double> gains;
  for (size_t i = 0; i < n; ++i)
    if (base_random - after_random[i] > 0) gains.push_back(base_random - after_random[i]);
  const double median_gain = gains.empty() ? 0.0 : lower_median(std::move(gains));
  std::vector<size_t> helpful;
  for (size_t i = 0; i < n; ++i)
    if (base_random - after_random[i] > 0 && base_random - after_random[i] >= 0.5 * median_gain)
      helpful.push_back(i);
  // Up to two references each (the next helpful updates in the ring), averaged: one reference's
  // own quality would leak into the margin.
  const size_t refs = std::min<size_t>(2, helpful.empty() ? 0 : helpful.size() - 1);
  std::vector<double> cross_sum(helpful.size() * refs, 0.0);
  if (refs > 0)
    parallel(helpful.size() * refs, [&](Llama& m, size_t t) {
      const size_t k = t / refs, r = t % refs;
      const size_t i = helpful[k], j = helpful[(k + 1 + r) % helpful.size()];
      cross_sum[t] = losses_with(m, *in[j].update, alpha, scale[j], {&in[i].own})[0];
    });
  for (size_t k = 0; refs > 0 && k < helpful.size(); ++k) {
    double sum = 0;
    for (size_t r = 0; r < refs; ++r) sum += cross_sum[k * refs + r];
    cross[helpful[k]] = sum / static_cast<double>(refs);
  }
  for (size_t i = 0; i < n; ++i)
    for (auto& o : obs) {
      if (o.uid != in[i].uid) continue;
      o.d_own = before[i] - after_own[i];
      o.d_random = base_random - after_random[i];
      o.d_cross = std::isnan(cross[i]) ? NAN : before[i] - cross[i];
    }
  return base_random;
}

std::vector<uint64_t> guarded_outer_step(Llama& theta, const std::vector<PeerUpdate>& best_first,
                                         double alpha, const std::vector<Batch>& random,
                                         double base_random, double guard) {
  const auto params = parameter_tensors(theta);
  std::vector<torch::Tensor> saved;
  for (const auto& p : params) saved.push_back(p.detach().clone());
  for (size_t k = best_first.size(); k > 0; k /= 2) {
    std::vector<PeerUpdate> kept(best_first.begin(), best_first.begin() + k);
    std::sort(kept.begin(), kept.end(), [](auto& a, auto& b) { return a.uid < b.uid; });
    outer_step(params, kept, alpha);
    if (mean_loss(theta, random) <= base_random * (1 + guard)) {
      std::vector<uint64_t> uids;
      for (const auto& p : kept) uids.push_back(p.uid);
      return uids;
    }
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
  }
  return {};
}

}  // namespace bistro
