// The validator's gauntlet (protocol v2): what stands between a verified update and the window's
// record, and between a miner and its weight. Torch-free and pure: the validator and `bistro
// experiment attack` call the same functions. docs/protocol.md, "The gauntlet", gives each rule
// and the attack it stops:
//   deadline   an update counts only if its object was written after the previous record was
//              published and before this window closed (bucket Last-Modified, with a tolerance)
//   copies     an update whose entries (index and value bits) or indices largely equal an
//              earlier upload's, this window or a recent one, is a copy; the later upload offends
//   score      per scored update: d_own and d_random, the loss drops on the miner's own pages and
//              on the validator's random pages, and d_cross, what another miner's update does to
//              the same own pages. The window score pays the own-page margin (d_own - d_cross,
//              the proof of having trained on the assigned pages) relative to the window's
//              median, only when the update also helps on both page sets; never < 0
//   record     only updates that pass, help on both page sets and show a positive own-page
//              margin enter it, best d_random first
//   ratings    an EMA of the window scores (a missing or rejected update scores 0); weights are
//              proportional to the ratings
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bistro/compress/update.hpp"

namespace bistro {

struct GauntletParams {
  double copy_entries = 0.5;  // share of entries equal in index and value that makes a copy
  double copy_indices = 0.6;  // share of equal indices alone that makes a copy
  int64_t upload_tolerance_ms = 2000;  // bucket clocks and S3's 1 s Last-Modified resolution
  double rating_ema = 0.8;             // weight of the old rating
  double margin_floor = 0.25;   // window score: margin / median margin, minus this floor, rescaled
  double score_cap = 2.0;       // the most one window pays, in median margins
  size_t record_peers = 20;     // the most updates one record admits
  size_t sketch_size = 256;     // hashes kept per update for the copy pre-filter
  uint64_t replay_windows = 4;  // windows of sketches kept to catch replays
};

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
// times (S3 stamps whole seconds) is a tie: neither is rejected, the higher uid stays out of the
// record, and the own-page margin decides the pay (a copy trained on someone else's pages has
// none).
std::vector<CopyFinding> find_copies(const std::vector<Upload>& uploads,
                                     const SketchHistory& history, uint64_t window,
                                     const GauntletParams& p);

// The deadline rule: "" when the object's time lies in [opened_ms - tol, closed_ms + tol], else
// "late upload" or "early upload" (a time of 0 is unknown and passes; so does opened_ms 0).
std::string deadline_verdict(int64_t uploaded_ms, int64_t opened_ms, int64_t closed_ms,
                             const GauntletParams& p);

// One verified update as received: its decoded form and its object's Last-Modified (0: unknown).
struct Received {
  uint16_t uid = 0;
  const Update* update = nullptr;
  int64_t uploaded_ms = 0;
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

// One expected miner's window, as the judge takes it.
struct Observation {
  uint16_t uid = 0;
  std::string hotkey;
  std::string status = "missing";  // "ok" when it passed the checks and was scored
  double d_own = 0, d_random = 0;  // loss drops (positive = better), valid when status is ok
  // The drop on its own pages made by another miner's update (scoring.hpp); NAN: none, and the
  // margin is read against d_random instead.
  double d_cross = NAN;
  bool duplicate = false;  // a tied copy (check_uploads): scored, never in the record
  double margin() const { return d_own - (std::isnan(d_cross) ? d_random : d_cross); }
};
struct Rating {
  double rating = 0;     // EMA of the window scores
  uint64_t windows = 0;  // windows seen
};
struct Judgement {
  uint16_t uid = 0;
  double score = 0;       // this window's score, >= 0
  bool admitted = false;  // enters the record
  std::string reason;     // why not, when it does not
};
// Scores one window, updates the ratings (keyed by hotkey: a replaced uid starts from zero) and
// picks the record's updates. Pure: the same observations and ratings give the same result.
std::vector<Judgement> judge_window(const std::vector<Observation>& obs,
                                    std::map<std::string, Rating>& ratings,
                                    const GauntletParams& p);

// The admitted updates (judge_window's verdicts over `obs`), best d_random first (ties: lower
// uid), with their decoded forms from `updates` (by uid): what the record's guarded outer step
// takes.
std::vector<PeerUpdate> admitted_best_first(const std::vector<Judgement>& verdicts,
                                            const std::vector<Observation>& obs,
                                            const std::map<uint16_t, Update>& updates);

// Weights from ratings, proportional (uid -> weight, summing to 1; all zero when no rating is
// positive).
std::map<uint16_t, double> rating_weights(const std::vector<Observation>& obs,
                                          const std::map<std::string, Rating>& ratings);

}  // namespace bistro
