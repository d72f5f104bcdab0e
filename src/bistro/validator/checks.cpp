#include "bistro/validator/checks.hpp"

#include <algorithm>
#include <cstring>

#include "bistro/core/rng.hpp"

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

}  // namespace bistro
