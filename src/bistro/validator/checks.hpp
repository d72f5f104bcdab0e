// The checks before scoring (docs/protocol.md, "The gauntlet", rules 1-3): an all-zero update,
// the deadline by the bucket's Last-Modified, and copies of this window's or recent windows'
// updates (bottom-k sketches first, then exact overlaps). Torch-free and pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bistro/compress/update.hpp"
#include "bistro/validator/params.hpp"

namespace bistro {

// A bottom-k sketch of an update's entries: the k smallest 64-bit hashes of its (tensor,
// coordinate) pairs, and of its (tensor, coordinate, value bits) triples. Two sketches estimate
// the share of equal entries without the updates.
struct UpdateSketch {
  std::vector<uint64_t> indices, entries;  // ascending
  uint64_t size = 0;                       // entries in the update
};
UpdateSketch sketch_update(const Update& u, size_t k);
// Estimated share of equal elements (the Jaccard estimate of the two bottom-k sets, as a share
// of one update's entries: 2J / (1 + J), exact for updates of equal size).
double sketch_share(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b, size_t k);

// Exact shares of equal coordinates and of equal (coordinate, value bits) entries between two
// updates of one layout, over the larger's entry count.
struct Overlap {
  double indices = 0, entries = 0;
};
Overlap update_overlap(const Update& a, const Update& b);

// One verified update this window, as the copy check sees it.
struct Upload {
  uint16_t uid = 0;
  int64_t uploaded_ms = 0;  // the object's Last-Modified (0: unknown)
  const Update* update = nullptr;
  UpdateSketch sketch;
};
// The recent windows' sketches (for replays), oldest first.
struct SketchHistory {
  struct Entry {
    uint64_t window;
    uint16_t uid;
    UpdateSketch sketch;
  };
  std::vector<Entry> entries;
  void add(uint64_t window, const std::vector<Upload>& uploads, uint64_t keep_windows);
};
struct CopyFinding {
  uint16_t offender = 0, source = 0;
  uint64_t source_window = 0;  // the window of the copied update (earlier: a replay)
  Overlap overlap;
  bool tie = false;  // equal upload times: no offender can be told; `offender` is the higher uid
};
// The copies among this window's uploads and of the history: the offender is the later upload of
// a matching pair; a match with an older window's update is a replay. A pair with equal upload
// times (S3 stamps whole seconds) is a tie: neither is rejected, at most one of the tie group
// enters the record (judge_window), and the own-page margin decides the pay (a copy trained on
// someone else's pages has none).
std::vector<CopyFinding> find_copies(const std::vector<Upload>& uploads,
                                     const SketchHistory& history, uint64_t window,
                                     const GauntletParams& p);

// The deadline rule: "" when the object's time lies in [opened_ms - tol, closed_ms + tol], else
// "late upload" or "early upload" (a time of 0 is unknown and passes; so does opened_ms 0).
std::string deadline_verdict(int64_t uploaded_ms, int64_t opened_ms, int64_t closed_ms,
                             const GauntletParams& p);

// Every value zero (a lazy miner's, or the negative-score exploit's first phase).
bool is_empty_update(const Update& u);

// One verified update as received: its decoded form and its object's Last-Modified (0: unknown).
struct Received {
  uint16_t uid = 0;
  const Update* update = nullptr;
  int64_t uploaded_ms = 0;
  const UpdateSketch* sketch = nullptr;  // sketch_update(*update, sketch_size), when made already
};
// The checks before scoring, in order: an all-zero update is "empty update"; the deadline rule;
// then copies among the rest and of the history (which gains this window's sketches). Returns
// each uid's status: "ok" (to be scored) or the reason it is rejected.
// `duplicates` (if given) gets the tied copies: uid -> the uid it ties with.
std::map<uint16_t, std::string> check_uploads(const std::vector<Received>& received,
                                              int64_t opened_ms, int64_t closed_ms,
                                              SketchHistory& history, uint64_t window,
                                              const GauntletParams& p,
                                              std::map<uint16_t, uint16_t>* duplicates = nullptr);

}  // namespace bistro
