// The protocol v2 validator (codec sparseloco), a node with one method per stage. The lead (the
// highest-staked validator with a master: commitment) is the master of the shared model and
// publishes its records; every other validator follows them, as the miners do, while judging
// the same updates on its own secret pages and setting its own weights. theta_u is fixed from
// record(u-1) until window u closes, so the work is done while the miners train:
//   open     at window u's first block: the window's random pages (this validator's secret),
//            their base losses, the expected miners (one chain read)
//   gather   until every expected miner's update is in or the deadline (block (u + 1) bpw +
//            grace): poll the buckets at a bounded rate (arrivals.hpp); fetch, verify and
//            measure each update of the window's scoring sample as it lands (scoring.hpp:
//            per-sequence losses on its own pages and on the random pages, cross references)
//   check    empty updates, uploads outside [record(u-1) published, close] by the bucket's
//            Last-Modified, copies of this window's or recent windows' updates (gauntlet.hpp)
//   score    the untrusted miners' updates still unmeasured (a trusted miner's may wait), within
//            close_budget of a window
//   admit    the tests at stated error rates on what is measured; a trusted miner's unmeasured
//            update is admitted on its trust (judge_window on a copy of the ratings)
//   record   theta_{u+1} = outer_step(theta_u, admitted) behind the guard; mirror the kept
//            updates; publish record(u), signed. A follower instead applies the lead's record(u)
//            (catch_up.hpp: its updates, the outer step, the hash; a mismatch resynchronises from
//            the lead's checkpoint)
//   attest   the record's updates this validator holds measured (budget or not), then its signed
//            attestation of the record, or objection to the harmful ones (attestation.hpp)
//   judge    after the record: the rest of the sample measured (against the scorer's copy of
//            theta_u), the window scores, ratings and trust (judge_window: pure)
//   weights  proportional to the ratings, set on the chain
//   persist  theta and the ratings locally; every checkpoint_interval windows the checkpoint of
//            theta_{u+1}, if its held-out loss is below the last published one's
//
// The stages live in files by phase: validator.cpp (the loop: resume, run, the window's order,
// dead windows, persisting), gather.cpp (open, gather, checks, score), publish.cpp (admit, record,
// judge, weights, report), attest.cpp (the attestation) and leadership.cpp (leads, the failover
// turn, following the lead's records). The judgement itself is pure (gauntlet.hpp): no chain,
// bucket or clock.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "bistro/chain/open_chain.hpp"
#include "bistro/cheats/cheats.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/metrics.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/protocol/arrivals.hpp"
#include "bistro/protocol/attestation.hpp"
#include "bistro/protocol/catch_up.hpp"
#include "bistro/protocol/node.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/protocol/peers.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/validator/gauntlet.hpp"
#include "bistro/validator/ranks.hpp"
#include "bistro/validator/scoring.hpp"
#include "bistro/validator/state.hpp"

namespace bistro::validator {

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
// The share of a window the lead waits for its record's finality before it goes on.
inline constexpr double kLeadFinalityWait = 0.15;

inline double now_s() {
  return static_cast<double>(now_ms()) / 1000.0;
}

// The miners expected to upload: registered, with a bucket (not a master) commitment.
inline std::vector<chain::Neuron> committed_miners(const chain::Metagraph& m,
                                                   const std::map<std::string, std::string>& c,
                                                   uint16_t self) {
  std::vector<chain::Neuron> out;
  for (const auto& n : m.neurons) {
    auto it = c.find(n.hotkey);
    if (n.uid != self && it != c.end() && it->second.rfind("master:", 0) != 0) out.push_back(n);
  }
  return out;
}

// One window's working state, from its opening to its report.

struct Window {
  uint64_t u = 0;
  bool fallback = false;  // an empty record after a failure: nothing is gathered or judged
  bool late = false;      // a follower judging a record that was pending when it got there
  chain::Metagraph metagraph;
  std::map<std::string, std::string> commits;
  std::vector<chain::Neuron> expected;
  std::map<uint16_t, std::unique_ptr<Bucket>> buckets;
  std::map<uint16_t, Update> updates;         // verified, by uid (stable addresses for the scorer)
  std::map<uint16_t, std::string> files;      // their bytes (the mirror and the record's hashes)
  std::map<uint16_t, int64_t> uploaded_ms;    // Last-Modified of each object found
  std::map<uint16_t, UpdateSketch> sketches;  // made on arrival (the copy check's pre-filter)
  std::map<uint16_t, std::string> status;     // uid -> "ok" or why not
  std::map<uint16_t, uint16_t> duplicates;
  std::unique_ptr<WindowScorer> scorer;
  std::vector<Observation> obs;
  std::vector<uint16_t> sample;      // the uids this window's budget measures
  std::vector<Judgement> admission;  // before the record: what it takes
  std::vector<Judgement> verdicts;   // after it: the pay
  std::set<uint64_t> in_record;
  // A replacement of refused records (follow): the updates it may hold, uid -> the update file's
  // SHA-256 (their accepted updates less the objected ones; finality.hpp, "replaced").
  std::optional<std::map<uint16_t, std::string>> replaces;
  WindowRecord record;
  std::string base_hash, guard, weights_status;
  std::string record_sha256;           // of the record's bytes this validator published or applied
  std::string attested_sha;            // the record its latest attestation of the window names
  bool attested_objecting = false;     // that statement objects to the record
  int64_t attested_ms = 0;             // when its attestation was out (0: none)
  std::vector<torch::Tensor> theta_u;  // theta_u's values: a refused record is rolled back
  nlohmann::json objections = nlohmann::json::array();
  nlohmann::json omitted = nlohmann::json::array();  // updates its attestation names as left out
  double held = 0;  // the weight held back for miners awaiting their first measurement
  nlohmann::json miners = nlohmann::json::object();
  int64_t closed_ms = 0, published_ms = 0;
  double base_eval = NAN, master_eval = NAN;
  uint64_t requests = 0, bytes = 0;  // bucket requests and bytes this window
  double verify_seconds = 0;
  bool checkpoint = false;
  Timer timer;
};

class LocoValidator : Node {
 public:
  // `group`: this node's ranks (ranks.hpp); this process is rank 0.
  LocoValidator(const NeuronArgs& a, const NeuronHparams& h, runtime::Ranks& group);
  int run();

 private:
  void resume_or_genesis();
  // The stages of window u, in order.
  void open(Window& w);
  // The window's scorer on theta as it is now, on this validator's secret random pages of the
  // window (open; again when settle moves theta under the window's measurements).
  void new_scorer(Window& w);
  void gather(Window& w);
  void checks(Window& w);
  void score(Window& w);
  void admit(Window& w);
  void observe(Window& w);
  void record(Window& w);
  // What the record's guard reads: the random sample's first micro-batch and theta_u's loss on
  // each of its rows.
  std::pair<std::vector<Batch>, std::vector<double>> guard_sample(const Window& w);
  // A follower's record stage: theta_u -> theta_{u+1} by the lead's record(u); when none came
  // by its turn in the failover order, it publishes record(u) itself and leads from then on.
  void follow(Window& w);
  // Whether this validator leads now: the validator whose records are read first is itself
  // (the highest-staked master: commitment at the start; whoever published last after that).
  bool leads();
  // The blocks [from, to) in which this validator may publish record(u) in the lead's stead (its
  // turn in the failover order; the last one's has no end); {UINT64_MAX, UINT64_MAX} when it
  // has none.
  std::pair<uint64_t, uint64_t> turn(uint64_t u);
  // Whether the lead may still publish record(u) (docs/protocol.md, Failover).
  bool may_publish(uint64_t u);
  // After the record: this validator's attestation of it in its bucket (attest.cpp): the record's
  // updates measured first, objecting to those its measurement finds harmful. True when its
  // statement on the record (this call's or an earlier one) is out and attests it without
  // objecting.
  bool attest(Window& w);
  // The objections this validator's measurement makes to record `r` of window w: its accepted
  // updates from untrusted miners, measured now where they were not yet, whose harm on this
  // validator's random pages is significant at harm_alpha (none from the kinds that do not judge).
  std::vector<Objection> objections_to(Window& w, const WindowRecord& r);
  void log_objections(Window& w, const std::string& publisher,
                      const std::vector<Objection>& objections);
  // The updates record `r` of window w leaves out that this validator admitted itself and
  // measured as helpful on its random pages (significant at harm_alpha): what its attestation
  // names as omitted (the censorship rule, lead_return.hpp). Those that passed its checks and
  // were not measured yet are measured first. None from the kinds that do not judge.
  std::vector<Omission> omissions_in(Window& w, const WindowRecord& r);
  // The lead's record is not the window's: theta back to theta_u, and it follows.
  void roll_back(Window& w);
  // Before its next window, a lead that stopped waiting for its record of window v to be final
  // (kLeadFinalityWait) checks which record of v is: another validator's moves theta to it, and
  // that validator leads (ModelSync::fetch_record). True when theta moved.
  bool settle(uint64_t v);

  // Puts its signed statement on record(u) (the record's SHA-256 and publisher) in its bucket,
  // beside its earlier statements on other records of u, objecting when `objections` name
  // updates; an attestation moves its earlier one (of a record refused since); false, logged,
  // when it could not.
  bool publish_attestation(uint64_t u, const std::string& record_sha256,
                           const std::string& publisher, std::vector<Objection> objections = {},
                           std::vector<Omission> omitted = {});
  // A follower applying a dead window u: attests the first empty record(u) that leaves `theta`
  // (its hash) as it is, once it is out and while none is final, until block `until`.
  void attest_empty_record(uint64_t u, const std::string& theta, uint64_t until);
  // The lead, after its record: waits for it to be final or refused (at most until the failover
  // block); refused, theta goes back to theta_u and it follows the next validator's record.
  void await_finality(Window& w);
  void judge(Window& w);
  void weights(Window& w);
  void persist(uint64_t u, double master_eval, bool* checkpointed = nullptr);
  void save_state(uint64_t next);
  // Window u ended before record(u - 1) was out (this validator was down or behind): no miner can
  // have trained on theta_u.
  bool dead(uint64_t u) const;
  // A dead window's empty record, published at once: nothing is gathered, measured or set.
  void skip(uint64_t u);
  void report(Window& w);
  std::vector<Batch> own_batches(uint64_t u, uint16_t uid, bool untrusted);
  // Measures one update (the scorer's add), keeping its cost as the next one's estimate.
  void measure_one(Window& w, uint16_t uid, const Update* u, bool untrusted);
  double window_seconds();
  // One arrival: fetched, verified, and measured when `measure` and in the sample.
  void take(Window& w, const chain::Neuron& n, const std::optional<ObjectInfo>& info, bool measure);
  // Measures the sampled, verified updates not measured yet (`untrusted_only`: only those of
  // miners not trusted), until `until_s` (wall clock); returns how many were left.
  size_t measure_rest(Window& w, bool untrusted_only, double until_s);
  // The window from its gather to its report; false when it failed before its record was out.
  bool process(Window& w);
  // Window u from its opening, with the fallbacks: an empty record when it fails before its
  // record is out; false when even that failed (the window is tried again). `late`: a follower
  // judging after the window's deadline (judges_late).
  bool run_window(uint64_t u, bool late = false);
  // A follower whose window u is dead (it held theta_u only after the deadline) waits for a
  // record of u (until window u+1's deadline): true when one on its theta holds updates and is
  // neither final nor refused. Then it judges that window late (its attestation may be what
  // makes the record final) rather than apply the record unjudged; a final record it applies
  // (catching up), an empty one it attests as it is (skip).
  bool judges_late(uint64_t u);
  // Publishes the empty records of the dead windows from u on; returns the first live one.
  uint64_t skip_dead(uint64_t u, uint64_t end);

  const NeuronHparams& h_;
  LlamaConfig config_;
  Llama theta_;
  std::vector<torch::Tensor> params_;
  GauntletParams gp_;
  NullSpread null_;  // the evidence test's null on real pages (gp_.null_spread)
  std::map<std::string, Rating> ratings_;  // by hotkey: a replaced uid starts from zero
  SketchHistory history_;                  // recent windows' sketches (lost on restart)
  uint64_t next_ = 0;                      // the window whose updates come next; theta = theta_next
  uint64_t first_ = 0;
  double published_loss_ = NAN;  // held-out loss of the last published checkpoint
  double last_eval_ = NAN;       // the held-out loss of theta as it is now
  int64_t opened_ms_ = 0;        // when record(u - 1) was published (0: unknown, after a restart)
  std::vector<double> clip_;     // the last window's median update norms (the next one's clip)
  std::unique_ptr<NeuronData> data_;
  std::vector<Batch> eval_;
  uint64_t secret_ = 0;
  double measure_cost_s_ = 0;  // the last measurement's seconds (the next one's estimate)
  std::string theta_hash_;     // theta's params_hash when known (after a record), else empty
  std::map<uint64_t, std::vector<Attestation>> statements_;  // its recent windows' statements
  uint64_t settled_ = UINT64_MAX;  // the last window whose final record theta is known to hold
  uint64_t last_u_ = UINT64_MAX;   // the last window run, its theta_u
  std::string last_base_hash_;
  std::vector<torch::Tensor> last_theta_u_;
  bool published_ = false;     // record(u) is out: theta_{u+1} is final, whatever fails after
  uint64_t record_block_ = 0;  // the block when the last record was out (0: unknown, a restart)
  bool weights_due_ = false;   // set weights at the next live window (after skipped ones)
  bool lead_ = true;           // this window's role: lead, or follower of the lead's records
  ValidatorBehaviour behaviour_ = ValidatorBehaviour::Honest;  // dishonest kinds measure nothing
  std::unique_ptr<ModelSync> sync_;  // a follower's view of the lead's records and checkpoints
  MasterSource self_;                // this validator as a record source (known once ranked)
  ScoringRanks ranks_;               // the other ranks lend their forward passes to the scorer
};

}  // namespace bistro::validator
