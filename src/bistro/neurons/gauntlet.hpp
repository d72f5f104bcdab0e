// The validator's gauntlet (protocol v2): what stands between a verified update and the window's
// record, and between a miner and its weight. Torch-free and pure: the validator and `bistro
// experiment attack` call the same functions. docs/protocol.md, "The gauntlet", gives each rule
// and the attack it stops:
//   deadline   an update counts only if its object was written after the previous record was
//              published and before this window closed (bucket Last-Modified, with a tolerance)
//   copies     an update whose entries (index and value bits) or indices largely equal an
//              earlier upload's, this window or a recent one, is a copy; the later upload offends
//   score      per scored update, per sequence and paired (the same sequence before and after):
//              the loss drop on the validator's random pages, and the own-page margin (what the
//              update does to the miner's own pages beyond what other miners' updates do to
//              them: the proof of having trained on the assigned pages)
//   judge      two one-sided tests at stated error rates: an update is left out for harm only
//              when it raises the random pages' loss significantly (harm_alpha), and it is paid
//              and admitted only with significant evidence of own-page work (evidence_alpha;
//              trust_alpha for a miner whose last measured update passed).
//              Pay is the margin relative to the median margin of the updates that showed such
//              evidence (not of the whole window: cheats cannot drag the reference); never < 0
//   record     only updates that pass both tests enter it, best d_random first
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
  // The slack after the close (-1: upload_tolerance_ms). S3 truncates Last-Modified to the
  // second, which only makes an object look earlier: the validator narrows this to half a block
  // so that an upload one block late is late whatever the block time.
  int64_t late_tolerance_ms = -1;
  double rating_ema = 0.8;     // weight of the old rating
  double margin_floor = 0.25;  // window score: margin / median margin, minus this floor, rescaled
  double score_cap = 2.0;      // the most one window pays, in median margins
  size_t record_peers = 20;    // the most updates one record admits
  // The tests' error rates (one-sided): an update that does no harm on random pages is left out
  // for harm with probability <= harm_alpha; an update with no own-page effect (trained on other
  // pages) shows evidence with probability <= evidence_alpha.
  double harm_alpha = 0.01;
  double evidence_alpha = 0.01;
  // The evidence test's error rate for a trusted miner (its last measured update passed): trust
  // is won at evidence_alpha and kept at trust_alpha, a sequential test with hysteresis. An
  // honest miner's margin shows 2-4 standard errors a window where the own-page signal is weak
  // (two miners, error feedback mixing past windows' pages into each update), so one test at
  // 1% failed a third of its windows and cost it its trust, its pay and its next window's
  // place on trust; a miner that stopped working keeps its trust for 1 / (1 - trust_alpha)
  // measurements at most in expectation, and wins it back only at evidence_alpha.
  double trust_alpha = 0.1;
  // The evidence test reads the miner's recent measured windows, not this one alone: the
  // per-window t statistics of its own-page margins (capped at +-kEvidenceCap), weighted by
  // evidence_decay^age and combined as Stouffer's z (sum w t / sqrt(sum w^2)). A miner with no
  // own-page work shows z > t_critical at about the test's rate all the same (its windows'
  // pages, references and random pages differ, so their t are independent); an honest miner
  // whose margin shows 1-2 standard errors a window shows 2-4 over its recent windows. A miner
  // that stops working is carried by its past for about two windows (the cap bounds the carry;
  // its margin, about 0, earns it next to no pay). 0: this window alone.
  double evidence_decay = 0.5;
  // An unmeasured window of a trusted miner pays its expected score: the mean of its paid
  // measured scores (each weighted by rating_ema per later reading) shrunk toward the median
  // passing update's score, 1, with the weight of pay_prior readings. Under a scoring budget a
  // miner is measured every few windows, and repeating its last reading paid honest miners
  // doing equal work 4x apart (a reading's spread between honest windows is about 35%); the
  // prior stands for what the other miners' readings say. 0: the readings' own mean.
  double pay_prior = 8;
  // The evidence test's null as measured on real pages (NullSpread): each window's own-page t is
  // divided by this before the test and before it joins the miner's past, so the test passes an
  // update with no own-page work at about its stated rate. 1: the test as for independent
  // sequences. The validator sets it every window.
  double null_spread = 1;
  // Where a new miner's pay goes while it waits for its first measurement (Rating::waited): the
  // subnet owner's uid (subtensor registers the owner's hotkey as uid 0 when the subnet is
  // created; the local chain, its first validator). -1: nowhere, the measured miners share it.
  int burn_uid = 0;
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

// The mean of n paired differences and its standard error: the evidence one update's effect rests
// on (sequences are the samples; pairing removes each sequence's own difficulty).
struct Evidence {
  double mean = 0, se = 0;
  size_t n = 0;
  // mean / se: +inf for a positive mean with se 0, -inf for a negative one, 0 for none.
  double t() const;
};
// Evidence of differences a[i] - b[i] (a and b of one size, >= 2).
Evidence paired_evidence(const std::vector<double>& a, const std::vector<double>& b);
// The evidence of a difference between two independent samples' means: a.mean - b.mean, the
// standard errors added in quadrature, the smaller n.
Evidence difference(const Evidence& a, const Evidence& b);
// The own-page margin and its evidence (docs/protocol.md, "The gauntlet", rule 5). Per own
// sequence x = before - after_own (the update's drop) and c = before - after_refs (the
// references' mean drop); per random sequence r = base - after_random and rr = base - refs_random.
// An update k = mean r / mean rr times as strong as its references on the random pages would,
// had it trained on no page in particular, lower the own pages k times as much as they do: the
// margin is mean x - k mean c (strength cancels, so a miner that ran fewer inner steps is not
// read as one without own-page work), its standard error by the delta method, k's own error from
// the random pages included. k is at least kMinStrengthRatio: an update that barely moves the
// random loss (noise) must still lower its own pages by half what the references do, not merely
// at all (sequences of one page are not independent, so a tiny consistent drop is no evidence).
// When the references do not lower the random loss (no k) it is the plain difference in
// differences: mean (x - c) - mean (r - rr), errors in quadrature.
inline constexpr double kMinStrengthRatio = 0.5;
// The most one window's t statistic adds to a miner's combined evidence (evidence_decay): an
// overwhelming window (t 20) must not carry a miner that stopped working for many windows.
inline constexpr double kEvidenceCap = 4.0;
Evidence own_margin_evidence(const std::vector<double>& before,
                             const std::vector<double>& after_own,
                             const std::vector<double>& after_refs, const std::vector<double>& base,
                             const std::vector<double>& after_random,
                             const std::vector<double>& refs_random);
// k above from the two means (NAN when d_random_ref is not positive).
double strength_ratio(double d_random, double d_random_ref);
// One-sided tests at error rate alpha (Student's t with n - 1 degrees of freedom); with fewer
// than two samples they read the sign of `mean` alone.
bool significantly_negative(const Evidence& e, double mean, double alpha);
bool significantly_positive(const Evidence& e, double mean, double alpha);
// The one-sided critical value of Student's t with `dof` degrees of freedom: P(T > t) = alpha
// (Hill's expansion around the normal quantile; within 1% of the exact value for dof >= 3).
double t_critical(double alpha, size_t dof);
// The standard deviation of Student's t with `dof` (> 2) degrees of freedom: sqrt(dof / (dof - 2)).
double student_t_sd(double dof);

// One expected miner's window, as the judge takes it.
struct Observation {
  uint16_t uid = 0;
  std::string hotkey;
  std::string status = "missing";  // "ok" when it passed the checks and was scored
  double d_own = 0, d_random = 0;  // loss drops (positive = better), valid when status is ok
  // The drop on its own pages made by another miner's update (scoring.hpp); NAN: none, and the
  // margin is read against d_random instead.
  double d_cross = NAN;
  // A tied copy (check_uploads: equal upload times, this is the higher uid) of `twin`'s update:
  // measured on its own pages like any other. Of a tie group at most one update enters the
  // record, the one with the strongest own-page evidence (the one that trained on its pages).
  bool duplicate = false;
  uint16_t twin = 0;
  // Status "ok" but not measured this window (outside the scoring budget, or left for after the
  // record): it enters the record only if its miner is trusted, and its rating moves with its
  // last measured score.
  bool measured = true;
  // Per-sequence evidence: on random pages, the loss before minus after; the own-page margin
  // (own_margin_evidence: what the update does to its own pages beyond what its references,
  // scaled to its strength, do). n 0: not measured per sequence, and the judge reads the means'
  // signs alone.
  Evidence random{}, own_margin{};
  // What the references do on the random pages (NAN: no reference): it sets the strength ratio,
  // so an update that is merely stronger or weaker in general (trained on other pages, or for
  // fewer steps) shows no margin on its own pages from that alone.
  double d_random_ref = NAN;
  // The evidence test's null on these very pages: the first reference's own-page margin read
  // against the second's (own_margin_evidence, the first as the update), neither trained on
  // them (n 0: fewer than two references). Not judged: over a window's updates its t shows how
  // often the test passes an update with no own-page work on real pages, where sequences of one
  // page are not independent (docs/benchmarks.md).
  Evidence placebo{};
  // own_margin's mean, from the means: d_own - d_random without a reference, else
  // d_own - k d_cross (k = strength_ratio), else the difference in differences.
  double margin() const;
};
// The evidence test's null, pooled over windows: the validator's placebo reads
// (Observation::placebo: one reference against the other on a miner's pages, neither trained on
// them) as multiples of Student's t's spread, x = t / student_t_sd(dof), capped at +-10.
// Sequences of one page are not independent and an update's strength differs from page to page,
// so on real pages these spread 1.6-2.4x as wide as the test assumes. factor() is the root mean
// square of x (at least 1) once `min_reads` are pooled, else 1; each window decays the pool by
// `decay`, so it follows the model as it trains. Persisted in the validator's state.json.
inline constexpr double kNullDecay = 0.9;  // per window
// A failed measurement whose combined evidence z (calibrated) is above this is inconclusive,
// not evidence against work: the miner is measured again at once instead of backing off. A miner
// with no own-page work reads z > 1 in about 18% of its measurements (Student's t, 7 dof), so
// cheats cost the budget about a fifth more measurements; an honest miner whose margin reads
// 1.5-2.5 calibrated standard errors a window (weak pages, few rows) accumulates evidence
// instead of waiting 2, 4, 8 windows between readings (one was never paid in 20 windows).
inline constexpr double kRetryZ = 1.0;
struct NullSpread {
  double sum_sq = 0, reads = 0;
  void add(const std::vector<Observation>& obs, double decay);
  double factor(double min_reads) const;
};
struct Rating {
  double rating = 0;     // EMA of the window scores
  uint64_t windows = 0;  // windows seen
  // Its last measured update passed both tests (and nothing it sent since was rejected): its
  // updates may enter a record before they are measured.
  bool trusted = false;
  // The window + 1 in which its update was last measured or rejected (0: never): what the
  // scoring budget's order reads (measurement_order).
  uint64_t seen = 0;
  // Its measured updates failed or its uploads were rejected this many times in a row (0 after a
  // pass): a miner that keeps failing is measured less and less often.
  uint32_t failures = 0;
  // Its recent measured windows' own-page evidence (GauntletParams::evidence_decay): the decayed
  // sum of the capped t statistics, and of their weights squared.
  double evidence_sum = 0, evidence_weight = 0;
  // Its paid measured window scores (passes whose update was not left out as a tied copy): the
  // sums of the scores and of their weights, each reading weighted by rating_ema per later
  // reading. What an unmeasured window pays (unmeasured_pay).
  double reading_sum = 0, reading_weight = 0;
  // A new miner's pay while it waits for its first conclusive measurement (docs/protocol.md,
  // rule 8): the windows its valid update went unmeasured, or was measured inconclusive, before
  // then. Meanwhile its rating moves with the prior's expected score (1, the median passing
  // update's) and its weight is held back (paid to GauntletParams::burn_uid): under a scoring
  // budget the miners measured first would otherwise share every window's pay among a few. A
  // pass that is paid keeps the rating and owes the waited windows as back pay; a failure that
  // is not inconclusive, or a rejected upload, forfeits both.
  uint32_t waited = 0;
  // Windows of back pay still owed, and this window's share of it (0-1): while the miner is
  // trusted, each window pays its rating (1 + paying_back) times over until none is owed.
  double back_pay = 0, paying_back = 0;
};
// Whether a miner's pay is held back: it was never measured nor rejected, or its measurements so
// far were inconclusive (Rating::waited).
bool awaits_first_measurement(const Rating& r);
// What an unmeasured window pays a miner: nothing untrusted or with no paid reading; else
// (reading_sum + pay_prior) / (reading_weight + pay_prior), the shrunk mean of its readings.
double unmeasured_pay(const Rating& r, const GauntletParams& p);
struct Judgement {
  uint16_t uid = 0;
  double score = 0;       // this window's score, >= 0
  bool passed = false;    // measured, and passed both tests
  bool admitted = false;  // enters the record
  std::string reason;     // why not, when it does not
};
// Whether the hotkey's miner is trusted (unknown hotkeys are not).
bool is_trusted(const std::map<std::string, Rating>& ratings, const std::string& hotkey);
// The two tests on a measured observation: "" when it passes, else why not. The evidence test
// reads `past`, the miner's rating before this window (nullptr: none), for its recent windows'
// evidence (combined_evidence) and runs at trust_alpha for a trusted miner, else at
// evidence_alpha.
std::string test_update(const Observation& o, const GauntletParams& p,
                        const Rating* past = nullptr);
// The Stouffer z of `past`'s recent evidence and this window's (o.own_margin.t(), capped), and
// the rating's two sums with this window folded in.
struct Combined {
  double z = 0, sum = 0, weight = 0;
};
Combined combined_evidence(const Observation& o, const GauntletParams& p, const Rating* past);
// Scores window `window`, updates the ratings (keyed by hotkey: a replaced uid starts from zero)
// and picks the record's updates. Pure: the same observations and ratings give the same result.
//   measured    the tests; pay only with evidence; the rating moves; trusted = passed; the
//               window's evidence joins the rating's
//   unmeasured  admitted when trusted; the rating moves with unmeasured_pay (the validator's
//               budget is not the miner's fault); a miner never measured waits for its first
//               conclusive measurement (Rating::waited): its rating moves with the prior's
//               score, 1, and is held back (rating_weights) until a paid pass, which owes it
//               back pay, or a failure that is not inconclusive, which forfeits it
//   rejected    pay 0, the rating moves, trust and past evidence are lost; missing: pay 0,
//               trust stands
//   tie groups  at most one update of a group enters: of those measured that passed, the
//               strongest own-page evidence; with none, the trusted unmeasured member with
//               the best rating (ties: the first upload) on its trust. A group is paid once:
//               its other members' window scores are 0
// A measured or rejected update sets the rating's `seen` to window + 1 and its failures; a
// failure whose combined evidence is inconclusive (z above kRetryZ, and no harm) counts as the
// first, so the miner is measured again at once (measurement_due).
// Does not lean on honest miners being the majority: the pay's reference is the median margin of
// the updates that passed the evidence test, however few. The record takes the admitted updates,
// the measured ones best d_random first, then the unmeasured ones best rating first, at most
// record_peers.
std::vector<Judgement> judge_window(const std::vector<Observation>& obs,
                                    std::map<std::string, Rating>& ratings, const GauntletParams& p,
                                    uint64_t window);

// The admitted updates (judge_window's verdicts over `obs`), the measured ones best d_random
// first (ties: lower uid), then the unmeasured ones, with their decoded forms from `updates` (by
// uid): what the record's guarded outer step takes.
std::vector<PeerUpdate> admitted_best_first(const std::vector<Judgement>& verdicts,
                                            const std::vector<Observation>& obs,
                                            const std::map<uint16_t, Update>& updates);

// The window from which a miner is due to be measured again (smaller: sooner), from its rating
// (nullptr: never rated):
//   never seen                     0, after the miners that failed once
//   failed once                    0, first: an honest miner's false failure costs it its pay
//                                  until it is measured again, so it is measured again at once
//                                  (a rejected upload counts as two failures: the checks see
//                                  every upload without the budget)
//   trusted (no failure)           seen: the least recently measured first
//   failed f >= 2 times in a row   seen + min(2^(f-1), 16): a cheat costs the budget less and
//                                  less, yet one that turned honest is measured again
// docs/protocol.md, "The gauntlet", rule 11.
struct MeasurementDue {
  uint64_t window = 0;
  int rank = 0;  // among equal windows: failed once (0), never seen (1), the rest (2)
};
MeasurementDue measurement_due(const Rating* r);
// Every miner, the most due first: by measurement_due, ties by a hash of (window, uid) so that no
// uid is always first among equals. A pure function of the ratings and the window.
std::vector<uint16_t> measurement_order(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                        const std::map<std::string, Rating>& ratings,
                                        uint64_t window);
// The miners whose updates this window's budget measures, in ascending uid order: all when budget
// is 0 or covers them, else the first `budget` of measurement_order. With every miner honest,
// each is measured at least once every ceil(miners / budget) windows.
std::vector<uint16_t> scoring_sample(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                     const std::map<std::string, Rating>& ratings, size_t budget,
                                     uint64_t window);
// `sample` (ascending) with every upload of each tie group (Observation::duplicate, twin) that
// has a member in it, ascending: the group's one update enters the record under the uid with
// the strongest own-page evidence (judge_window), which is only read where all of them are
// measured. A sybil measured beside its unmeasured source entered records under its own uid.
// Ties come only from copies, so honest miners add nothing; a tie group costs the validator one
// measurement per member, within its judge budget.
std::vector<uint16_t> with_tie_groups(std::vector<uint16_t> sample,
                                      const std::vector<Observation>& obs);

// Weights from ratings, proportional (uid -> weight, summing to 1; all zero when no rating is
// positive): a miner paying back (Rating::paying_back) weighs rating x (1 + paying_back); a miner
// awaiting its first measurement weighs nothing, and its rating goes to p.burn_uid (with -1,
// nowhere).
std::map<uint16_t, double> rating_weights(const std::vector<Observation>& obs,
                                          const std::map<std::string, Rating>& ratings,
                                          const GauntletParams& p);

}  // namespace bistro
