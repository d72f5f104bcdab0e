#include "bistro/neurons/gauntlet.hpp"

#include "bistro/core/rng.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <set>
#include <tuple>

namespace bistro {
namespace {

// A fixed, portable 64-bit hash: splitmix64 (the portable RNG's finaliser, one golden step on).
uint64_t mix(uint64_t x) {
  return rng::mix64(x + 0x9e3779b97f4a7c15ull);
}

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

// The coordinate of entry j of row r in tensor t (the chunk row and the index within it name one
// element of the parameter); slices carry no indices, so their position is the entry's own.
uint64_t coordinate(size_t t, const UpdateTensor& u, int64_t r, int64_t j) {
  const int64_t at = r * u.k + j;
  const uint64_t idx = u.idx.empty() ? static_cast<uint64_t>(j) : static_cast<uint32_t>(u.idx[at]);
  return mix((static_cast<uint64_t>(t) << 48) ^ (static_cast<uint64_t>(r) << 16) ^ idx);
}

std::vector<uint64_t> bottom_k(std::vector<uint64_t> h, size_t k) {
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  if (h.size() > k) h.resize(k);
  return h;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

UpdateSketch sketch_update(const Update& u, size_t k) {
  std::vector<uint64_t> ih, eh;
  for (size_t t = 0; t < u.tensors.size(); ++t) {
    const auto& ut = u.tensors[t];
    for (int64_t r = 0; r < ut.rows; ++r)
      for (int64_t j = 0; j < ut.k; ++j) {
        const uint64_t c = coordinate(t, ut, r, j);
        ih.push_back(c);
        eh.push_back(mix(c ^ (static_cast<uint64_t>(bits_of(ut.val[r * ut.k + j])) << 1)));
      }
  }
  UpdateSketch s;
  s.size = ih.size();
  s.indices = bottom_k(std::move(ih), k);
  s.entries = bottom_k(std::move(eh), k);
  return s;
}

double sketch_share(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b, size_t k) {
  // The k smallest of the union; those in both sets estimate the Jaccard index.
  size_t i = 0, j = 0, taken = 0, both = 0;
  while (taken < k && (i < a.size() || j < b.size())) {
    if (j == b.size() || (i < a.size() && a[i] < b[j])) {
      ++i;
    } else if (i == a.size() || b[j] < a[i]) {
      ++j;
    } else {
      ++both, ++i, ++j;
    }
    ++taken;
  }
  if (taken == 0) return 0;
  const double jac = static_cast<double>(both) / static_cast<double>(taken);
  return 2 * jac / (1 + jac);
}

Overlap update_overlap(const Update& a, const Update& b) {
  uint64_t na = 0, nb = 0, same_idx = 0, same_entry = 0;
  std::vector<std::pair<uint64_t, uint32_t>> ra, rb;
  const size_t tensors = std::min(a.tensors.size(), b.tensors.size());
  for (const auto& t : a.tensors) na += static_cast<uint64_t>(t.rows * t.k);
  for (const auto& t : b.tensors) nb += static_cast<uint64_t>(t.rows * t.k);
  for (size_t t = 0; t < tensors; ++t) {
    const auto &ta = a.tensors[t], &tb = b.tensors[t];
    if (ta.name != tb.name || ta.rows != tb.rows) continue;
    for (int64_t r = 0; r < ta.rows; ++r) {
      ra.clear(), rb.clear();
      for (int64_t j = 0; j < ta.k; ++j)
        ra.emplace_back(coordinate(t, ta, r, j), bits_of(ta.val[r * ta.k + j]));
      for (int64_t j = 0; j < tb.k; ++j)
        rb.emplace_back(coordinate(t, tb, r, j), bits_of(tb.val[r * tb.k + j]));
      std::sort(ra.begin(), ra.end());
      std::sort(rb.begin(), rb.end());
      for (size_t i = 0, j = 0; i < ra.size() && j < rb.size();) {
        if (ra[i].first < rb[j].first) {
          ++i;
        } else if (rb[j].first < ra[i].first) {
          ++j;
        } else {
          ++same_idx;
          same_entry += ra[i].second == rb[j].second;
          ++i, ++j;
        }
      }
    }
  }
  const double n = static_cast<double>(std::max<uint64_t>(1, std::max(na, nb)));
  return {static_cast<double>(same_idx) / n, static_cast<double>(same_entry) / n};
}

void SketchHistory::add(uint64_t window, const std::vector<Upload>& uploads,
                        uint64_t keep_windows) {
  for (const auto& u : uploads) entries.push_back({window, u.uid, u.sketch});
  std::erase_if(entries, [&](const Entry& e) { return e.window + keep_windows <= window; });
}

std::vector<CopyFinding> find_copies(const std::vector<Upload>& uploads,
                                     const SketchHistory& history, uint64_t window,
                                     const GauntletParams& p) {
  std::vector<CopyFinding> out;
  const size_t k = p.sketch_size;
  for (size_t i = 0; i < uploads.size(); ++i)
    for (size_t j = i + 1; j < uploads.size(); ++j) {
      const auto &a = uploads[i], &b = uploads[j];
      // The sketches are a pre-filter, generous by a margin; the exact overlap decides.
      if (sketch_share(a.sketch.entries, b.sketch.entries, k) < 0.5 * p.copy_entries &&
          sketch_share(a.sketch.indices, b.sketch.indices, k) < p.copy_indices - 0.2)
        continue;
      const Overlap o = update_overlap(*a.update, *b.update);
      if (o.entries < p.copy_entries && o.indices < p.copy_indices) continue;
      if (a.uploaded_ms == b.uploaded_ms) {
        const bool a_higher = a.uid > b.uid;
        out.push_back({a_higher ? a.uid : b.uid, a_higher ? b.uid : a.uid, window, o, true});
      } else if (a.uploaded_ms > b.uploaded_ms) {
        out.push_back({a.uid, b.uid, window, o});
      } else {
        out.push_back({b.uid, a.uid, window, o});
      }
    }
  // Replays: the same entries as an update of an earlier window (values are per-window bin
  // means, so an honest update never repeats a value pattern).
  for (const auto& u : uploads)
    for (const auto& h : history.entries) {
      if (h.window >= window) continue;
      const double s = sketch_share(u.sketch.entries, h.sketch.entries, k);
      if (s >= p.copy_entries) out.push_back({u.uid, h.uid, h.window, {s, s}});
    }
  return out;
}

std::string deadline_verdict(int64_t uploaded_ms, int64_t opened_ms, int64_t closed_ms,
                             const GauntletParams& p) {
  if (uploaded_ms <= 0) return "";
  const int64_t late_tol = p.late_tolerance_ms >= 0 ? p.late_tolerance_ms : p.upload_tolerance_ms;
  if (closed_ms > 0 && uploaded_ms > closed_ms + late_tol) return "late upload";
  if (opened_ms > 0 && uploaded_ms < opened_ms - p.upload_tolerance_ms) return "early upload";
  return "";
}

bool is_empty_update(const Update& u) {
  for (const auto& t : u.tensors)
    for (float v : t.val)
      if (v != 0.0f) return false;
  return true;
}

std::map<uint16_t, std::string> check_uploads(const std::vector<Received>& received,
                                              int64_t opened_ms, int64_t closed_ms,
                                              SketchHistory& history, uint64_t window,
                                              const GauntletParams& p,
                                              std::map<uint16_t, uint16_t>* duplicates) {
  std::map<uint16_t, std::string> status;
  std::vector<Upload> uploads;
  for (const auto& r : received) {
    std::string& st = status[r.uid];
    if (is_empty_update(*r.update)) {
      st = "empty update";
      continue;
    }
    st = deadline_verdict(r.uploaded_ms, opened_ms, closed_ms, p);
    if (!st.empty()) continue;
    st = "ok";
    uploads.push_back({r.uid, r.uploaded_ms, r.update,
                       r.sketch ? *r.sketch : sketch_update(*r.update, p.sketch_size)});
  }
  for (const auto& f : find_copies(uploads, history, window, p)) {
    if (f.tie) {
      if (duplicates) duplicates->emplace(f.offender, f.source);
      continue;
    }
    std::string& st = status[f.offender];
    if (st != "ok") continue;
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "copy of uid %u's update of window %llu (%.0f%% of entries, %.0f%% of indices "
                  "equal)",
                  static_cast<unsigned>(f.source), static_cast<unsigned long long>(f.source_window),
                  100 * f.overlap.entries, 100 * f.overlap.indices);
    st = buf;
  }
  history.add(window, uploads, p.replay_windows);
  return status;
}

double Evidence::t() const {
  if (se > 0) return mean / se;
  return mean > 0 ? INFINITY : mean < 0 ? -INFINITY : 0.0;
}

Evidence paired_evidence(const std::vector<double>& a, const std::vector<double>& b) {
  Evidence e;
  e.n = std::min(a.size(), b.size());
  if (e.n == 0) return e;
  double sum = 0;
  for (size_t i = 0; i < e.n; ++i) sum += a[i] - b[i];
  e.mean = sum / static_cast<double>(e.n);
  if (e.n < 2) return e;
  double ss = 0;
  for (size_t i = 0; i < e.n; ++i) ss += (a[i] - b[i] - e.mean) * (a[i] - b[i] - e.mean);
  e.se = std::sqrt(ss / static_cast<double>(e.n - 1) / static_cast<double>(e.n));
  return e;
}

double t_critical(double alpha, size_t dof) {
  // The normal quantile by bisection on erfc (monotone; 80 halvings reach double precision).
  double lo = -40, hi = 40;
  for (int i = 0; i < 80; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(mid / std::sqrt(2.0)) > alpha ? lo : hi) = mid;
  }
  const double z = 0.5 * (lo + hi);
  if (dof == 0) return INFINITY;
  const double v = static_cast<double>(dof), z2 = z * z;
  const double z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v) +
         (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * v * v * v * v);
}

Evidence difference(const Evidence& a, const Evidence& b) {
  return {a.mean - b.mean, std::sqrt(a.se * a.se + b.se * b.se), std::min(a.n, b.n)};
}

namespace {
// from[i] - to[i] for the first n.
std::vector<double> drops(const std::vector<double>& from, const std::vector<double>& to,
                          size_t n) {
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = from[i] - to[i];
  return d;
}
double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
std::vector<double> scaled(std::vector<double> v, double k) {
  for (auto& x : v) x *= k;
  return v;
}
}  // namespace

double strength_ratio(double d_random, double d_random_ref) {
  return d_random_ref > 0 ? std::max(d_random / d_random_ref, kMinStrengthRatio) : NAN;
}

double Observation::margin() const {
  if (std::isnan(d_cross)) return d_own - d_random;
  const double k = strength_ratio(d_random, d_random_ref);
  if (!std::isnan(k)) return d_own - k * d_cross;
  return (d_own - d_cross) - (std::isnan(d_random_ref) ? 0.0 : d_random - d_random_ref);
}

Evidence own_margin_evidence(const std::vector<double>& before,
                             const std::vector<double>& after_own,
                             const std::vector<double>& after_refs, const std::vector<double>& base,
                             const std::vector<double>& after_random,
                             const std::vector<double>& refs_random) {
  const size_t no = std::min({before.size(), after_own.size(), after_refs.size()});
  const size_t nr = std::min({base.size(), after_random.size(), refs_random.size()});
  const auto x = drops(before, after_own, no), c = drops(before, after_refs, no);
  const auto r = drops(base, after_random, nr), rr = drops(base, refs_random, nr);
  const double k = strength_ratio(mean(r), mean(rr));
  if (std::isnan(k) || no < 2 || nr < 2)
    return difference(paired_evidence(after_refs, after_own),
                      paired_evidence(refs_random, after_random));
  // mean(x - k c), and k's own error from the random pages: the margin moves by
  // mean(c) / mean(rr) per unit of mean(r - k rr).
  const Evidence own = paired_evidence(x, scaled(c, k));
  const Evidence on_random = paired_evidence(r, scaled(rr, k));
  const double dk = mean(c) / mean(rr);
  return {own.mean, std::sqrt(own.se * own.se + dk * dk * on_random.se * on_random.se),
          std::min(no, nr)};
}

bool significantly_negative(const Evidence& e, double mean, double alpha) {
  if (e.n < 2) return mean < 0;
  return e.mean < 0 && -e.t() > t_critical(alpha, e.n - 1);
}
bool significantly_positive(const Evidence& e, double mean, double alpha) {
  if (e.n < 2) return mean > 0;
  return e.mean > 0 && e.t() > t_critical(alpha, e.n - 1);
}

bool is_trusted(const std::map<std::string, Rating>& ratings, const std::string& hotkey) {
  const auto r = ratings.find(hotkey);
  return r != ratings.end() && r->second.trusted;
}

double student_t_sd(double dof) {
  return std::sqrt(dof / (dof - 2));
}

void NullSpread::add(const std::vector<Observation>& obs, double decay) {
  sum_sq *= decay, reads *= decay;
  for (const auto& o : obs) {
    const double t = o.placebo.t();
    if (o.status != "ok" || o.placebo.n < 4 || !std::isfinite(t)) continue;
    const double dof = static_cast<double>(o.placebo.n - 1);
    const double x = std::clamp(t / student_t_sd(dof), -10.0, 10.0);
    sum_sq += x * x, reads += 1;
  }
}

double NullSpread::factor(double min_reads) const {
  if (min_reads <= 0 || reads < min_reads) return 1.0;
  return std::max(1.0, std::sqrt(sum_sq / reads));
}

Combined combined_evidence(const Observation& o, const GauntletParams& p, const Rating* past) {
  // This window's t counts in full now (a strong window passes whatever the past) and capped in
  // the sums the next windows read (it carries a miner that stops working only so far).
  const double t = o.own_margin.t() / std::max(1.0, p.null_spread);
  const double d = p.evidence_decay;
  const double past_sum = past ? d * past->evidence_sum : 0.0;
  Combined c;
  c.weight = (past ? d * d * past->evidence_weight : 0.0) + 1;
  c.z = (past_sum + t) / std::sqrt(c.weight);
  c.sum = past_sum + std::clamp(t, -kEvidenceCap, kEvidenceCap);
  return c;
}

namespace {

// An observation whose own-page evidence joins the miner's recent windows'.
bool has_evidence(const Observation& o) {
  return o.status == "ok" && o.own_margin.n >= 2 && std::isfinite(o.d_own);
}

// test_update, with the trust and the combined evidence (has_evidence) already read.
std::string test_with(const Observation& o, const GauntletParams& p, bool trusted,
                      const Combined& c) {
  const bool finite = std::isfinite(o.d_own) && std::isfinite(o.d_random) && !std::isinf(o.d_cross);
  char buf[240];
  if (!finite) return "makes the loss non-finite";
  if (significantly_negative(o.random, o.d_random, p.harm_alpha)) {
    std::snprintf(buf, sizeof buf,
                  "raises the loss on random pages (by %.4g, %.1f standard errors, %zu sequences)",
                  -o.d_random, o.random.n ? -o.random.t() : 0.0, o.random.n);
    return buf;
  }
  const double alpha = trusted ? p.trust_alpha : p.evidence_alpha;
  const Evidence& e = o.own_margin;
  // Fewer than two sequences: the margin's sign alone (no t to combine).
  const double z = e.n < 2 ? 0.0 : c.z;
  const bool evident = e.n < 2 ? o.margin() > 0 : z > t_critical(alpha, e.n - 1);
  if (!evident) {
    std::snprintf(buf, sizeof buf,
                  "no evidence of training on its own pages (margin %.4g over other miners' "
                  "updates, %.1f standard errors, %.1f over its recent windows at the null's "
                  "spread %.2f, %zu sequences)",
                  o.margin(), e.n ? e.t() : 0.0, z, std::max(1.0, p.null_spread), e.n);
    return buf;
  }
  return "";
}

}  // namespace

std::string test_update(const Observation& o, const GauntletParams& p, const Rating* past) {
  return test_with(o, p, past && past->trusted,
                   has_evidence(o) ? combined_evidence(o, p, past) : Combined{});
}

namespace {

// A window's evidence, read once against the ratings before the window: each measured update's
// tests ("" passes) and each observation's combined evidence.
struct WindowEvidence {
  std::vector<std::string> tests;
  std::vector<Combined> combined;
  std::map<uint16_t, size_t> index;  // uid -> observation
};

WindowEvidence read_evidence(const std::vector<Observation>& obs,
                             const std::map<std::string, Rating>& ratings,
                             const GauntletParams& p) {
  WindowEvidence ev{std::vector<std::string>(obs.size()), std::vector<Combined>(obs.size()), {}};
  for (size_t i = 0; i < obs.size(); ++i) {
    const auto it = ratings.find(obs[i].hotkey);
    const Rating* past = it == ratings.end() ? nullptr : &it->second;
    if (has_evidence(obs[i])) ev.combined[i] = combined_evidence(obs[i], p, past);
    if (obs[i].status == "ok" && obs[i].measured)
      ev.tests[i] = test_with(obs[i], p, past && past->trusted, ev.combined[i]);
    ev.index[obs[i].uid] = i;
  }
  return ev;
}

// Tied copies form groups: each duplicate names a twin (check_uploads); the twins lead to the
// group's one upload that is nobody's duplicate. At most one update of a group enters (the same
// update never enters twice): of the measured ones that passed, the one with the strongest
// own-page evidence over its recent windows (the uid that trained on its own pages; a copy shows
// evidence only at the test's false-pass rate, or where its pages overlap its source's); with
// none, the trusted unmeasured member with the best rating, on its trust (a sybil's one false
// pass does not outrank its source's record; ties: the first upload). Returns, per member of a
// group, whether it is the one that may enter.
std::map<size_t, bool> tie_group_picks(const std::vector<Observation>& obs,
                                       const std::map<std::string, Rating>& ratings,
                                       const WindowEvidence& ev) {
  auto group_of = [&](size_t i) {
    uint16_t u = obs[i].uid;
    for (size_t hops = 0; hops <= obs.size(); ++hops) {
      auto it = ev.index.find(u);
      if (it == ev.index.end() || !obs[it->second].duplicate) break;
      u = obs[it->second].twin;
    }
    return u;
  };
  std::map<uint16_t, std::vector<size_t>> groups;  // first upload's uid -> its copies
  for (size_t i = 0; i < obs.size(); ++i)
    if (obs[i].duplicate) groups[group_of(i)].push_back(i);
  // The member's own-page evidence over its recent windows, this one included: a copy can show
  // as much as its source in one window where their pages overlap (two uids' pages can share a
  // config), not window after window.
  auto strength = [&](size_t m) {
    return has_evidence(obs[m]) ? ev.combined[m].z : obs[m].margin();
  };
  auto rating = [&](size_t m) { return ratings.at(obs[m].hotkey).rating; };
  std::map<size_t, bool> pick;
  for (auto& [first, members] : groups) {
    if (auto it = ev.index.find(first); it != ev.index.end() && !obs[it->second].duplicate)
      members.insert(members.begin(), it->second);
    std::optional<size_t> best;
    for (size_t m : members) {
      pick[m] = false;
      if (obs[m].status == "ok" && obs[m].measured && ev.tests[m].empty() &&
          (!best || strength(m) > strength(*best)))
        best = m;
    }
    if (!best)
      for (size_t m : members) {
        if (obs[m].status != "ok" || obs[m].measured || !is_trusted(ratings, obs[m].hotkey))
          continue;
        if (!best || rating(m) > rating(*best)) best = m;
      }
    if (best) pick[*best] = true;
  }
  return pick;
}

// A window's score joins the rating (an EMA, rating_ema the weight of the old value).
void move_rating(Rating& r, double score, const GauntletParams& p) {
  r.rating = p.rating_ema * r.rating + (1 - p.rating_ema) * score;
}

// A failed measurement that is not evidence against work: the miner's evidence (z, calibrated)
// short of the bar but above kRetryZ, and no harm.
bool inconclusive(const Observation& o, const Combined& c, const GauntletParams& p) {
  return o.status == "ok" && has_evidence(o) && c.z > kRetryZ &&
         !significantly_negative(o.random, o.d_random, p.harm_alpha);
}

// A measured, rejected or missing update's rating moves with its window score; its trust, past
// evidence, measurement order and readings follow its verdict.
void rate_measured(Rating& r, const Observation& o, const Judgement& j, bool tied_out,
                   const Combined& c, const GauntletParams& p, uint64_t window) {
  move_rating(r, j.score, p);
  if (j.passed && !tied_out) {
    r.reading_sum = p.rating_ema * r.reading_sum + j.score;
    r.reading_weight = p.rating_ema * r.reading_weight + 1;
  }
  ++r.windows;
  if (o.status == "missing") return;  // trust and the measurement order stand
  r.trusted = o.status == "ok" && j.passed;
  if (has_evidence(o) || o.status != "ok") r.evidence_sum = c.sum, r.evidence_weight = c.weight;
  r.seen = window + 1;
  // A rejected upload counts as two failures: the checks see every upload without the budget,
  // so a miner that sends copies or late updates needs no prompt measurement. An inconclusive
  // failure counts as the first: the miner is measured again at once.
  r.failures = r.trusted               ? 0
               : inconclusive(o, c, p) ? 1
               : o.status == "ok"      ? r.failures + 1
                                       : std::max(r.failures + 1, 2u);
}

// A window of waiting for a first conclusive measurement: the rating moves with the prior's
// expected score, the median passing update's (1), held back (rating_weights).
void wait_a_window(Rating& r, const GauntletParams& p) {
  move_rating(r, 1.0, p);
  ++r.waited;
}

// A measured or rejected update of a miner awaiting its first conclusive measurement: a paid
// pass keeps the rating it built on the prior's score and owes the waited windows as back pay;
// an inconclusive failure waits on (measured again at once); anything else forfeits the wait
// (the rating starts from 0, as before it).
void rate_awaiting(Rating& r, const Observation& o, const Judgement& j, bool tied_out,
                   const Combined& c, const GauntletParams& p, uint64_t window) {
  const double rating = r.rating;
  const bool paid = j.passed && !tied_out, pending = !paid && inconclusive(o, c, p);
  if (paid) r.back_pay += r.waited, r.waited = 0;
  if (!paid && !pending) r.rating = 0, r.waited = 0;
  rate_measured(r, o, j, tied_out, c, p, window);
  if (pending) r.rating = rating, wait_a_window(r, p);
}

}  // namespace

std::vector<Judgement> judge_window(const std::vector<Observation>& obs,
                                    std::map<std::string, Rating>& ratings, const GauntletParams& p,
                                    uint64_t window) {
  const WindowEvidence ev = read_evidence(obs, ratings, p);
  const auto pick = tie_group_picks(obs, ratings, ev);
  auto tied_out = [&](size_t i) {
    auto it = pick.find(i);
    return it != pick.end() && !it->second;
  };
  std::vector<Judgement> out(obs.size());
  std::vector<size_t> measured, unmeasured;  // candidates for the record
  std::vector<double> margins;               // of the updates that passed
  for (size_t i = 0; i < obs.size(); ++i) {
    const auto& o = obs[i];
    Judgement& j = out[i];
    j.uid = o.uid;
    if (o.status != "ok") {
      j.reason = o.status;
    } else if (!o.measured) {
      if (!is_trusted(ratings, o.hotkey))
        j.reason = "not measured this window, and not trusted yet";
      else if (tied_out(i))  // every unmeasured copy: only a measured one is picked
        j.reason = "uploaded at the same time as an equal update (a tied copy)";
      else
        unmeasured.push_back(i);
    } else if (j.reason = ev.tests[i]; j.reason.empty()) {
      j.passed = true;
      margins.push_back(o.margin());
      if (tied_out(i))
        j.reason = "uploaded at the same time as an equal update with stronger evidence";
      else
        measured.push_back(i);
    }
  }
  // Pay: the margin relative to the median margin of the updates with evidence, floored and
  // capped; nothing without evidence, and a tie group's update is paid once. An unmeasured
  // update pays its miner's expected score.
  const double ref = median(margins);
  for (size_t i = 0; i < obs.size(); ++i) {
    const auto& o = obs[i];
    Judgement& j = out[i];
    if (j.passed && ref > 0 && !tied_out(i)) {
      const double x = (o.margin() / ref - p.margin_floor) / (1 - p.margin_floor);
      j.score = std::clamp(x, 0.0, p.score_cap);
    }
    Rating& r = ratings[o.hotkey];  // a new hotkey awaits its first measurement
    const bool awaiting = o.status != "missing" && awaits_first_measurement(r);
    if (o.status == "ok" && !o.measured) {
      if (awaiting) {
        wait_a_window(r, p);
      } else {
        move_rating(r, tied_out(i) ? 0.0 : unmeasured_pay(r, p), p);
      }
      ++r.windows;
    } else if (awaiting) {
      rate_awaiting(r, o, j, tied_out(i), ev.combined[i], p, window);
    } else {
      rate_measured(r, o, j, tied_out(i), ev.combined[i], p, window);
    }
  }
  // Back pay, a window's worth at a time while the miner keeps its trust.
  for (const auto& o : obs) {
    auto it = ratings.find(o.hotkey);
    if (it == ratings.end()) continue;
    Rating& r = it->second;
    r.paying_back = r.trusted ? std::min(1.0, r.back_pay) : 0.0;
    r.back_pay -= r.paying_back;
  }
  // The record: measured passers best on random pages first (ties: lower uid), then trusted
  // unmeasured updates best rating first, at most record_peers of them.
  std::stable_sort(measured.begin(), measured.end(),
                   [&](size_t a, size_t b) { return obs[a].d_random > obs[b].d_random; });
  std::stable_sort(unmeasured.begin(), unmeasured.end(), [&](size_t a, size_t b) {
    return ratings[obs[a].hotkey].rating > ratings[obs[b].hotkey].rating;
  });
  measured.insert(measured.end(), unmeasured.begin(), unmeasured.end());
  for (size_t n = 0; n < measured.size(); ++n) {
    if (n < p.record_peers)
      out[measured[n]].admitted = true;
    else
      out[measured[n]].reason = "outside the record's best " + std::to_string(p.record_peers);
  }
  return out;
}

double unmeasured_pay(const Rating& r, const GauntletParams& p) {
  if (!r.trusted || r.reading_weight <= 0) return 0.0;
  return (r.reading_sum + p.pay_prior) / (r.reading_weight + p.pay_prior);
}

MeasurementDue measurement_due(const Rating* r) {
  if (r == nullptr || r->seen == 0) return {0, 1};
  if (r->failures == 1) return {0, 0};
  if (r->failures == 0) return {r->seen, 2};
  const uint64_t backoff = uint64_t{1} << std::min<uint32_t>(r->failures - 1, 4);
  return {r->seen + backoff, 2};
}

std::vector<uint16_t> measurement_order(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                        const std::map<std::string, Rating>& ratings,
                                        uint64_t window) {
  struct Key {
    MeasurementDue due;
    uint64_t tie;
    uint16_t uid;
  };
  std::vector<Key> keys;
  for (const auto& [uid, hk] : miners) {
    auto it = ratings.find(hk);
    keys.push_back({measurement_due(it == ratings.end() ? nullptr : &it->second),
                    rng::at(rng::derive(window, "bistro/measurement-order"), uid), uid});
  }
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    return std::tie(a.due.window, a.due.rank, a.tie, a.uid) <
           std::tie(b.due.window, b.due.rank, b.tie, b.uid);
  });
  std::vector<uint16_t> out;
  for (const auto& k : keys) out.push_back(k.uid);
  return out;
}

std::vector<uint16_t> scoring_sample(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                     const std::map<std::string, Rating>& ratings, size_t budget,
                                     uint64_t window) {
  std::vector<uint16_t> out = measurement_order(miners, ratings, window);
  if (budget != 0 && budget < out.size()) out.resize(budget);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint16_t> with_tie_groups(std::vector<uint16_t> sample,
                                      const std::vector<Observation>& obs) {
  // Union-find over the duplicate -> twin links.
  std::map<uint16_t, uint16_t> parent;
  std::function<uint16_t(uint16_t)> root = [&](uint16_t u) {
    auto it = parent.find(u);
    if (it == parent.end() || it->second == u) return u;
    return it->second = root(it->second);
  };
  for (const auto& o : obs)
    if (o.duplicate) parent[root(o.uid)] = root(o.twin);
  std::set<uint16_t> sampled_roots;
  for (uint16_t uid : sample) sampled_roots.insert(root(uid));
  for (const auto& o : obs)
    if (o.status == "ok" && sampled_roots.count(root(o.uid)) &&
        !std::binary_search(sample.begin(), sample.end(), o.uid))
      sample.insert(std::upper_bound(sample.begin(), sample.end(), o.uid), o.uid);
  return sample;
}

std::vector<PeerUpdate> admitted_best_first(const std::vector<Judgement>& verdicts,
                                            const std::vector<Observation>& obs,
                                            const std::map<uint16_t, Update>& updates) {
  std::vector<size_t> order;
  for (size_t i = 0; i < verdicts.size() && i < obs.size(); ++i)
    if (verdicts[i].admitted && updates.count(obs[i].uid)) order.push_back(i);
  // Measured first, best on random pages first; then the unmeasured, in the order given.
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (obs[x].measured != obs[y].measured) return obs[x].measured;
    return obs[x].measured && obs[x].d_random > obs[y].d_random;
  });
  std::vector<PeerUpdate> out;
  for (size_t i : order) out.push_back({obs[i].uid, &updates.at(obs[i].uid)});
  return out;
}

bool awaits_first_measurement(const Rating& r) {
  return r.seen == 0 || r.waited > 0;
}

std::map<uint16_t, double> rating_weights(const std::vector<Observation>& obs,
                                          const std::map<std::string, Rating>& ratings,
                                          const GauntletParams& p) {
  std::map<uint16_t, double> w;
  double sum = 0, held = 0;
  for (const auto& o : obs) {
    auto it = ratings.find(o.hotkey);
    const double r = it == ratings.end() ? 0.0 : std::max(0.0, it->second.rating);
    if (it != ratings.end() && awaits_first_measurement(it->second)) {
      w[o.uid] += 0.0;
      held += r;
      continue;
    }
    const double x = it == ratings.end() ? 0.0 : r * (1 + it->second.paying_back);
    w[o.uid] += x;
    sum += x;
  }
  if (p.burn_uid >= 0 && p.burn_uid <= 0xffff && held > 0) {
    w[static_cast<uint16_t>(p.burn_uid)] += held;
    sum += held;
  }
  for (auto& [uid, x] : w) x = sum > 0 ? x / sum : 0.0;
  return w;
}

}  // namespace bistro
