#include "bistro/validator/scoring.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <optional>
#include <thread>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/sparse_loco.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/validator/ranks.hpp"

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

// The flat element positions of tensor t of u in its parameter, in the update's order.
std::vector<int64_t> elements(const torch::Tensor& param, const Update& u, size_t i) {
  const auto& t = u.tensors[i];
  const auto plan = chunk_plan(param.sizes().vec(), u.chunk_cap);
  std::vector<int64_t> out;
  out.reserve(t.val.size());
  for (int64_t r = 0; r < t.rows; ++r)
    for (int64_t j = 0; j < t.k; ++j)
      out.push_back(sparse_loco::element_of(plan, r, t.idx[r * t.k + j]));
  return out;
}

// A parameter on another device than the CPU (or not fp32 contiguous) is written with index ops:
// `saved` then holds the old values as a tensor on that device.
bool raw(const torch::Tensor& p) {
  return p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous();
}

torch::Tensor on(const torch::Tensor& p, std::vector<int64_t> v) {
  return torch::tensor(v, torch::kInt64).to(p.device());
}

}  // namespace

namespace {
// flat[at] -= values in flat's dtype; the old values are returned.
torch::Tensor index_subtract(torch::Tensor flat, const torch::Tensor& at,
                             const torch::Tensor& values) {
  const auto idx = at.to(flat.device());
  auto saved = flat.index_select(0, idx);
  flat.index_put_({idx}, saved - values.to(flat.device()).to(flat.scalar_type()));
  return saved;
}

torch::Tensor scaled_values(const UpdateTensor& t, float f) {
  return torch::tensor(t.val, torch::kFloat32).mul(f);
}
}  // namespace

SavedValues apply_alone(const std::vector<torch::Tensor>& params, const Update& u, double alpha,
                        const std::vector<double>& scale, bool index_ops) {
  torch::NoGradGuard no_grad;
  SavedValues saved;
  saved.cpu.assign(params.size(), {});
  saved.device.assign(params.size(), {});
  for (size_t i = 0; i < params.size() && i < u.tensors.size(); ++i) {
    const auto& t = u.tensors[i];
    const float f = static_cast<float>(alpha * scale[i]);
    const auto e = elements(params[i], u, i);
    if (index_ops || !raw(params[i])) {
      saved.device[i] = index_subtract(params[i].view({-1}), torch::tensor(e, torch::kInt64),
                                       scaled_values(t, f));
      continue;
    }
    float* p = params[i].data_ptr<float>();
    auto& sv = saved.cpu[i];
    sv.reserve(t.val.size());
    for (size_t j = 0; j < e.size(); ++j) {
      sv.push_back(p[e[j]]);
      p[e[j]] -= f * t.val[j];
    }
  }
  return saved;
}

void restore_alone(const std::vector<torch::Tensor>& params, const Update& u,
                   const SavedValues& saved) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < saved.cpu.size(); ++i) {
    const auto e = elements(params[i], u, i);
    if (saved.device[i].defined()) {  // a coordinate appears once per update: any order restores
      params[i].view({-1}).index_put_({on(params[i], e)}, saved.device[i]);
      continue;
    }
    float* p = params[i].data_ptr<float>();
    for (size_t j = 0; j < e.size() && j < saved.cpu[i].size(); ++j) p[e[j]] = saved.cpu[i][j];
  }
}

Delta delta_of(const std::vector<torch::Tensor>& params, const Update& u, double alpha,
               const std::vector<double>& scale) {
  Delta d;
  for (size_t i = 0; i < params.size(); ++i) {
    if (i >= u.tensors.size()) {
      d.at.push_back(torch::empty({0}, torch::kInt32));
      d.values.push_back(torch::empty({0}, torch::kFloat32));
      continue;
    }
    check(params[i].numel() <= INT32_MAX, "parameter {} has {} elements: more than a Delta holds",
          i, params[i].numel());
    const auto e = elements(params[i], u, i);
    d.at.push_back(torch::tensor(std::vector<int32_t>(e.begin(), e.end()), torch::kInt32));
    d.values.push_back(scaled_values(u.tensors[i], static_cast<float>(alpha * scale[i])));
  }
  return d;
}

SavedValues apply_delta(const std::vector<torch::Tensor>& params, const Delta& d) {
  torch::NoGradGuard no_grad;
  SavedValues saved;
  saved.cpu.assign(params.size(), {});
  saved.device.assign(params.size(), {});
  for (size_t i = 0; i < params.size() && i < d.at.size(); ++i)
    saved.device[i] = index_subtract(params[i].view({-1}), d.at[i].to(torch::kInt64), d.values[i]);
  return saved;
}

void restore_delta(const std::vector<torch::Tensor>& params, const Delta& d,
                   const SavedValues& saved) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size() && i < d.at.size(); ++i)
    if (saved.device[i].defined())
      params[i].view({-1}).index_put_({d.at[i].to(params[i].device()).to(torch::kInt64)},
                                      saved.device[i]);
}

std::vector<double> sequence_losses(Llama& model, const std::vector<Batch>& batches) {
  torch::NoGradGuard no_grad;
  std::vector<double> out;
  for (const auto& b : batches) {
    const auto logits = model->logits(b.inputs).to(torch::kFloat32);
    const int64_t rows = logits.size(0), cols = logits.size(1);
    const auto targets = b.targets.to(logits.device());
    const auto per_token = torch::nn::functional::cross_entropy(
        logits.reshape({rows * cols, -1}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions()
            .reduction(torch::kNone)
            .ignore_index(-100));
    const auto counted = (targets != -100).to(torch::kFloat64).sum(1);
    const auto sums = per_token.view({rows, cols}).to(torch::kFloat64).sum(1);
    const auto mean = (sums / counted.clamp_min(1)).to(torch::kCPU).contiguous();
    const double* p = mean.data_ptr<double>();
    for (int64_t r = 0; r < rows; ++r) out.push_back(std::isfinite(p[r]) ? p[r] : INFINITY);
  }
  return out;
}

std::vector<double> losses_with(Llama& theta, const Update& u, double alpha,
                                const std::vector<double>& scale,
                                const std::vector<const std::vector<Batch>*>& sets) {
  const auto params = parameter_tensors(theta);
  torch::NoGradGuard no_grad;
  const auto saved = apply_alone(params, u, alpha, scale);
  std::vector<double> out;
  for (const auto* s : sets) {
    const double l = mean_loss(theta, *s);
    out.push_back(std::isfinite(l) ? l : INFINITY);
  }
  restore_alone(params, u, saved);
  return out;
}

namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// Runs body(model, i) for i < count on the models, one thread each.
void parallel(std::vector<Llama>& models, size_t count,
              const std::function<void(Llama&, size_t)>& body) {
  std::atomic<size_t> next{0};
  auto run = [&](size_t w) {
    for (size_t i; (i = next++) < count;) body(models[w], i);
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < models.size() && w < count; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
}

}  // namespace

namespace {
// A model of `config` where `like` computes (its device and dtype).
Llama model_like(Llama& like, const LlamaConfig& config) {
  Llama m(config);
  m->to(parameter_tensors(like).front().device());
  m->set_bf16(like->bf16());
  return m;
}
}  // namespace

WindowScorer::WindowScorer(Llama& theta, const LlamaConfig& config, std::vector<Batch> random,
                           double alpha, ScoringRanks* ranks)
    : theta_(model_like(theta, config)),
      config_(config),
      random_(std::move(random)),
      alpha_(alpha),
      ranks_(ranks) {
  copy_parameters(parameter_tensors(theta_), parameter_tensors(theta));
  if (ranks_) generation_ = ranks_->set_theta(parameter_tensors(theta_));
  copies_.push_back(theta_);
  base_ = losses(theta_, nullptr, random_);
  base_random_ = mean_of(base_);
  forwards_ += random_.size();
}

std::vector<Llama>& WindowScorer::models(int threads) {
  // One model per CPU thread; a GPU runs one at a time anyway, and ranks take one thread (their
  // collectives are rank 0's main thread's).
  if (!parameter_tensors(theta_).front().device().is_cpu() || (ranks_ && ranks_->active()))
    threads = 1;
  while (static_cast<int>(copies_.size()) < threads) {
    Llama m = model_like(theta_, config_);
    copy_parameters(parameter_tensors(m), parameter_tensors(theta_));
    copies_.push_back(m);
  }
  return copies_;
}

std::vector<double> WindowScorer::losses(Llama& m, const Entry* applied,
                                         const std::vector<Batch>& batches) {
  if (!ranks_ || !ranks_->active() || m.get() != theta_.get()) return sequence_losses(m, batches);
  // An entry's step is the same whenever it is applied: its index names it to the other ranks.
  const int64_t id = applied ? applied - entries_.data() : -1;
  return ranks_->losses(
      m, generation_, id,
      [&] { return delta_of(parameter_tensors(m), *applied->update, alpha_, applied->scale); },
      batches);
}

void WindowScorer::measure(Llama& m, Entry& e) {
  const auto params = parameter_tensors(m);
  torch::NoGradGuard no_grad;
  e.before = losses(m, nullptr, e.own);
  const auto saved = apply_alone(params, *e.update, alpha_, e.scale);
  if (!e.after_random.empty()) {  // a reference's: measured on the random pages already
    e.after_own = losses(m, &e, e.own);
  } else {  // one spread over the ranks for both
    auto both = e.own;
    both.insert(both.end(), random_.begin(), random_.end());
    auto l = losses(m, &e, both);
    size_t own_rows = 0;
    for (const auto& b : e.own) own_rows += static_cast<size_t>(b.inputs.size(0));
    e.after_own.assign(l.begin(), l.begin() + static_cast<std::ptrdiff_t>(own_rows));
    e.after_random.assign(l.begin() + static_cast<std::ptrdiff_t>(own_rows), l.end());
  }
  restore_alone(params, *e.update, saved);
}

std::vector<double> WindowScorer::cross_losses(Llama& m, const Entry& of, const Entry& ref) {
  const auto params = parameter_tensors(m);
  torch::NoGradGuard no_grad;
  const auto saved = apply_alone(params, *ref.update, alpha_, ref.scale);
  auto out = losses(m, &ref, of.own);
  restore_alone(params, *ref.update, saved);
  return out;
}

bool WindowScorer::reference_only(size_t i) const {
  const auto it = reference_only_.find(entries_[i].uid);
  return it != reference_only_.end() && it->second == i;
}

double WindowScorer::d_random(const Entry& e) const {
  return base_random_ - mean_of(e.after_random);
}

std::vector<size_t> WindowScorer::strong(const std::set<uint16_t>& excluded) const {
  std::vector<double> gains;
  for (const auto& e : entries_)
    if (!excluded.count(e.uid) && d_random(e) > 0) gains.push_back(d_random(e));
  const double median_gain = gains.empty() ? 0.0 : lower_median(std::move(gains));
  std::vector<size_t> out;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const double g = d_random(entries_[i]);
    if (!excluded.count(entries_[i].uid) && g > 0 && g >= 0.5 * median_gain) out.push_back(i);
  }
  return out;
}

std::vector<double> WindowScorer::median_norms() const {
  std::vector<double> out;
  const size_t tensors = entries_.empty() ? 0 : entries_[0].norms.size();
  for (size_t p = 0; p < tensors; ++p) {
    std::vector<double> col;
    for (const auto& e : entries_) col.push_back(e.norms[p]);
    out.push_back(lower_median(std::move(col)));
  }
  return out;
}

namespace {
std::vector<double> clip_scale(const std::vector<double>& norms, const std::vector<double>& clip) {
  std::vector<double> s;
  for (size_t p = 0; p < norms.size(); ++p)
    s.push_back(p < clip.size() && norms[p] > clip[p] && norms[p] > 0 ? clip[p] / norms[p] : 1.0);
  return s;
}
}  // namespace

size_t WindowScorer::new_entry(uint16_t uid, const Update* u, std::vector<Batch> own) {
  entries_.push_back({uid, u, std::move(own), tensor_norms(*u), {}, {}, {}, {}, {}});
  entries_.back().scale = clip_scale(entries_.back().norms, clip_.empty() ? median_norms() : clip_);
  return entries_.size() - 1;
}

void WindowScorer::add_reference(uint16_t uid, const Update* u) {
  if (index_.count(uid) || reference_only_.count(uid)) return;
  const size_t me = new_entry(uid, u, {});
  reference_only_[uid] = me;
  measure(copies_[0], entries_[me]);  // no own pages: the random ones alone
  forwards_ += random_.size();
}

void WindowScorer::add(uint16_t uid, const Update* u, std::vector<Batch> own) {
  if (index_.count(uid)) return;
  size_t me = 0;
  if (auto r = reference_only_.find(uid); r != reference_only_.end()) {
    me = r->second;  // a reference so far: measured now on its own pages (the random ones are)
    entries_[me].own = std::move(own);
    reference_only_.erase(r);
  } else {
    me = new_entry(uid, u, std::move(own));
    forwards_ += random_.size();
  }
  index_[uid] = me;
  Entry& k = entries_[me];
  measure(copies_[0], k);
  forwards_ += 2 * k.own.size();
  const auto s = strong({});
  if (std::find(s.begin(), s.end(), me) == s.end()) return;
  // It serves the earlier updates short of references, and the latest strong ones serve it.
  for (size_t i = 0; i < entries_.size(); ++i)
    if (i != me && !reference_only(i) && entries_[i].cross.size() < 2) {
      entries_[i].cross[me] = cross_losses(copies_[0], entries_[i], k);
      forwards_ += entries_[i].own.size();
    }
  for (auto it = s.rbegin(); it != s.rend() && k.cross.size() < 2; ++it)
    if (*it != me && !entries_[*it].cross.count(me)) {
      k.cross[*it] = cross_losses(copies_[0], k, entries_[*it]);
      forwards_ += k.own.size();
    }
}

void WindowScorer::add_all(std::vector<ScoreInput> in, int threads) {
  const size_t first = entries_.size();
  for (auto& x : in) {
    if (index_.count(x.uid)) continue;
    index_[x.uid] = entries_.size();
    entries_.push_back(
        {x.uid, x.update, std::move(x.own), tensor_norms(*x.update), {}, {}, {}, {}, {}});
  }
  const auto clip = clip_.empty() ? median_norms() : clip_;
  for (size_t i = first; i < entries_.size(); ++i) {
    entries_[i].scale = clip_scale(entries_[i].norms, clip);
    forwards_ += 2 * entries_[i].own.size() + random_.size();
  }
  parallel(models(threads), entries_.size() - first,
           [&](Llama& m, size_t i) { measure(m, entries_[first + i]); });
}

void WindowScorer::observe(std::vector<Observation>& obs, const std::set<uint16_t>& not_references,
                           int threads) {
  // The references: strong updates that are nobody's copy. Each update keeps up to two of them,
  // those already measured first, then the next strong updates in the ring of the order added.
  const auto s = strong(not_references);
  std::vector<std::pair<size_t, size_t>> todo;  // (entry, reference)
  std::vector<std::vector<size_t>> refs(entries_.size());
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (reference_only(i)) continue;  // nobody's margin to read
    const size_t want = std::min<size_t>(2, s.size() - (std::count(s.begin(), s.end(), i) ? 1 : 0));
    for (auto& [j, losses] : entries_[i].cross)
      if (refs[i].size() < want && std::count(s.begin(), s.end(), j)) refs[i].push_back(j);
    const size_t start = std::upper_bound(s.begin(), s.end(), i) - s.begin();
    for (size_t t = 0; t < s.size() && refs[i].size() < want; ++t) {
      const size_t j = s[(start + t) % s.size()];
      if (j == i || std::count(refs[i].begin(), refs[i].end(), j)) continue;
      refs[i].push_back(j);
      todo.push_back({i, j});
    }
  }
  std::vector<std::vector<double>> computed(todo.size());
  parallel(models(threads), todo.size(), [&](Llama& m, size_t t) {
    computed[t] = cross_losses(m, entries_[todo[t].first], entries_[todo[t].second]);
  });
  for (size_t t = 0; t < todo.size(); ++t) {
    forwards_ += entries_[todo[t].first].own.size();
    entries_[todo[t].first].cross[todo[t].second] = std::move(computed[t]);
  }
  for (auto& o : obs) {
    auto it = index_.find(o.uid);
    if (o.status != "ok" || it == index_.end()) continue;
    const Entry& e = entries_[it->second];
    o.d_own = mean_of(e.before) - mean_of(e.after_own);
    o.d_random = d_random(e);
    o.random = paired_evidence(base_, e.after_random);
    o.placebo = {};
    if (refs[it->second].empty()) {
      // No reference: the margin is read against the random pages, unpaired.
      o.d_cross = NAN;
      o.own_margin = difference(paired_evidence(e.before, e.after_own), o.random);
      continue;
    }
    std::vector<double> cross(e.before.size(), 0.0), ref_random(base_.size(), 0.0);
    const double nr = static_cast<double>(refs[it->second].size());
    for (size_t j : refs[it->second]) {
      const auto& c = e.cross.at(j);
      for (size_t q = 0; q < cross.size() && q < c.size(); ++q) cross[q] += c[q] / nr;
      const auto& rr = entries_[j].after_random;
      for (size_t q = 0; q < ref_random.size() && q < rr.size(); ++q) ref_random[q] += rr[q] / nr;
    }
    o.d_cross = mean_of(e.before) - mean_of(cross);
    o.d_random_ref = base_random_ - mean_of(ref_random);
    // Its own pages' drop beyond the references', scaled to its strength on the random pages.
    o.own_margin =
        own_margin_evidence(e.before, e.after_own, cross, base_, e.after_random, ref_random);
    // One reference against the other, on these pages: the test's null, for the record.
    const auto& two = refs[it->second];
    o.placebo = two.size() < 2 ? Evidence{}
                               : own_margin_evidence(
                                     e.before, e.cross.at(two[0]), e.cross.at(two[1]), base_,
                                     entries_[two[0]].after_random, entries_[two[1]].after_random);
  }
}

bool rises_past_guard(Llama& theta, const std::vector<Batch>& random,
                      const std::vector<double>& base, double guard, double harm_alpha) {
  const double base_mean = mean_of(base);
  const auto after = sequence_losses(theta, random);
  if (!std::all_of(after.begin(), after.end(), [](double x) { return std::isfinite(x); }))
    return true;
  // The rise over the allowed share, per sequence: past the guard only when significantly above.
  std::vector<double> allowed(base.size());
  for (size_t i = 0; i < base.size(); ++i) allowed[i] = base[i] + guard * base_mean;
  const Evidence rise = paired_evidence(after, allowed);
  return significantly_positive(rise, rise.mean, harm_alpha);
}

bool guard_refuses(Llama& theta, std::vector<PeerUpdate> peers, double alpha,
                   const std::vector<Batch>& random, const std::vector<double>& base, double guard,
                   double harm_alpha) {
  const auto params = parameter_tensors(theta);
  const auto saved = clone_parameters(params);
  std::sort(peers.begin(), peers.end(), [](auto& a, auto& b) { return a.uid < b.uid; });
  outer_step(params, peers, alpha);
  const bool refused = rises_past_guard(theta, random, base, guard, harm_alpha);
  copy_parameters(params, saved);
  return refused;
}

std::vector<uint64_t> guarded_outer_step(Llama& theta, const std::vector<PeerUpdate>& best_first,
                                         double alpha, const std::vector<Batch>& random,
                                         const std::vector<double>& base, double guard,
                                         double harm_alpha) {
  const auto params = parameter_tensors(theta);
  const auto saved = clone_parameters(params);
  // The outer step of the first k of `order`, kept when it passes the guard (theta restored
  // otherwise); the uids kept, ascending.
  auto keep = [&](const std::vector<PeerUpdate>& order,
                  size_t k) -> std::optional<std::vector<uint64_t>> {
    std::vector<PeerUpdate> kept(order.begin(), order.begin() + k);
    std::sort(kept.begin(), kept.end(), [](auto& a, auto& b) { return a.uid < b.uid; });
    outer_step(params, kept, alpha);
    if (!rises_past_guard(theta, random, base, guard, harm_alpha)) {
      std::vector<uint64_t> uids;
      for (const auto& p : kept) uids.push_back(p.uid);
      return uids;
    }
    copy_parameters(params, saved);
    return std::nullopt;
  };
  if (best_first.empty()) return {};
  if (auto all = keep(best_first, best_first.size())) return *all;
  if (best_first.size() == 1) return {};
  // The whole set rose past the guard: rank the updates by what each alone does to this sample
  // before halving. The judge's order puts the unmeasured updates by their miners' ratings (those
  // that land at the close are measured after the record), and a prefix kept a harmful one in
  // localnet while it cut the helpful one beside it.
  std::vector<std::pair<double, size_t>> alone;
  for (size_t i = 0; i < best_first.size(); ++i) {
    outer_step(params, {best_first[i]}, alpha);
    alone.push_back({mean_of(sequence_losses(theta, random)), i});
    copy_parameters(params, saved);
  }
  std::stable_sort(alone.begin(), alone.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<PeerUpdate> order;
  for (const auto& [loss, i] : alone) order.push_back(best_first[i]);
  for (size_t k = order.size() / 2; k > 0; k /= 2)
    if (auto some = keep(order, k)) return *some;
  return {};
}

}  // namespace bistro
