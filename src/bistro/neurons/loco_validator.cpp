// The protocol v2 validator (codec sparseloco). The lead (the highest-staked validator with a
// master: commitment) is the master of the shared model and publishes its records; every other
// validator follows them, as the miners do, while judging the same updates on its own secret
// pages and setting its own weights. theta_u is fixed from record(u-1) until window u closes, so
// the work is done while the miners train:
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
//   judge    after the record: the rest of the sample measured (against the scorer's copy of
//            theta_u), the window scores, ratings and trust (judge_window: pure)
//   weights  proportional to the ratings, set on the chain
//   persist  theta and the ratings locally; every checkpoint_interval windows the checkpoint of
//            theta_{u+1}, if its held-out loss is below the last published one's
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "bistro/chain/open_chain.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/model/checkpoint.hpp"
#include "bistro/neurons/arrivals.hpp"
#include "bistro/neurons/catch_up.hpp"
#include "bistro/neurons/cheats.hpp"
#include "bistro/neurons/gauntlet.hpp"
#include "bistro/neurons/node.hpp"
#include "bistro/neurons/outer_step.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/neurons/scoring.hpp"
#include "bistro/neurons/validator_state.hpp"
#include "bistro/ops/metrics.hpp"
#include "bistro/storage/s3_bucket.hpp"

namespace bistro {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
double now_s() {
  return static_cast<double>(now_ms()) / 1000.0;
}

// The miners expected to upload: registered, with a bucket (not a master) commitment.
std::vector<chain::Neuron> committed_miners(const chain::Metagraph& m,
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
  WindowRecord record;
  std::string base_hash, guard, weights_status;
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
  LocoValidator(const NeuronArgs& a, const NeuronHparams& h);
  int run();

 private:
  void resume_or_genesis();
  // The stages of window u, in order.
  void open(Window& w);
  void gather(Window& w);
  void checks(Window& w);
  void score(Window& w);
  void admit(Window& w);
  void observe(Window& w);
  void record(Window& w);
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
  // record is out; false when even that failed (the window is tried again).
  bool run_window(uint64_t u);
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
  double measure_cost_s_ = 0;
  std::string theta_hash_;  // theta's params_hash when known (after a record), else empty  // the
                            // last measurement's seconds (the next one's estimate)
  bool published_ = false;  // record(u) is out: theta_{u+1} is final, whatever fails after
  uint64_t record_block_ = 0;  // the block when the last record was out (0: unknown, a restart)
  bool weights_due_ = false;   // set weights at the next live window (after skipped ones)
  bool lead_ = true;           // this window's role: lead, or follower of the lead's records
  ValidatorBehaviour behaviour_ = ValidatorBehaviour::Honest;  // dishonest kinds measure nothing
  std::unique_ptr<ModelSync> sync_;  // a follower's view of the lead's records and checkpoints
  MasterSource self_;                // this validator as a record source (known once ranked)
};

LocoValidator::LocoValidator(const NeuronArgs& a, const NeuronHparams& h)
    : Node(a, "validator", "master:",
           "validator: --bucket is required with codec sparseloco (records and checkpoints live "
           "there)"),
      h_(h),
      config_(preset(h.preset)),
      theta_(config_),
      behaviour_(parse_validator_behaviour(a.behaviour)) {
  theta_->init_weights(h.init_seed);
  // theta on the compute device: the outer step and the hash read and write it through CPU
  // copies (outer_step.hpp), so every node holds the same bits whatever its device.
  theta_->to(compute_.device);
  theta_->set_bf16(compute_.bf16);
  params_ = parameter_tensors(theta_);
  sync_ = std::make_unique<ModelSync>(*chain_, a.netuid, h, config_, state_dir_ / "sync",
                                      [&](int level, const std::string& m) { log(level, m); });
  gp_ = gauntlet_params(h);
  data_ = std::make_unique<NeuronData>(a.dataset, h);
  eval_ = data_->held_out(h);
  // The random pages are this validator's secret choice: a miner cannot train on them in advance.
  secret_ = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

void LocoValidator::resume_or_genesis() {
  const auto file = state_dir_ / "state.json";
  lead_ = leads();
  if (!std::filesystem::exists(file)) {
    // Genesis: theta_s is the shared init, published as the first checkpoint by the lead. A
    // follower that starts after the lead takes the lead's checkpoint and records instead.
    next_ = a_.start_window ? a_.start_window : window_of(chain_->block(), h_) + 1;
    if (!lead_) {
      if (const auto c = sync_->load_latest_checkpoint(theta_); c && *c != next_) {
        const auto at = sync_->catch_up(theta_, *c, std::max(*c, next_),
                                        window_start_block(next_ + 1, h_) + h_.grace_blocks);
        next_ = at.value_or(*c);
      }
      published_loss_ = last_eval_ = mean_loss(theta_, eval_);
      log(1, fmt::format("following the lead's records from window {}", next_));
      return;
    }
    publish_checkpoint(*bucket_, theta_, next_, state_dir_);
    published_loss_ = last_eval_ = mean_loss(theta_, eval_);
    log(1, fmt::format("published the initial checkpoint for window {} (held-out loss {:.4f})",
                       next_, published_loss_));
    return;
  }
  auto st = nlohmann::json::parse(read_file(file), nullptr, false);
  check(st.is_object() && st["next"].is_number_unsigned(), "{}: corrupt validator state",
        file.string());
  next_ = st["next"].get<uint64_t>();
  load_weights(theta_, state_dir_ / "theta" / "model.safetensors");
  check(params_hash(params_) == st.value("params_hash", ""),
        "{}: theta does not match the state (the files are from different windows)",
        state_dir_.string());
  ratings_ = ratings_from_json(st.value("ratings", nlohmann::json::object()));
  if (st["published_loss"].is_number()) published_loss_ = st["published_loss"].get<double>();
  if (auto n = null_spread_from_json(st.value("null_spread", nlohmann::json()))) {
    null_ = *n;
    gp_.null_spread = null_.factor(static_cast<double>(h_.null_reads));
  }
  log(1, fmt::format("resumed at window {} with {} ratings", next_, ratings_.size()));
}

void LocoValidator::open(Window& w) {
  wait_for_block(*chain_, window_start_block(w.u, h_), 0.05);
  log(2, fmt::format("window {}: open", w.u));
  w.timer = Timer();
  const auto random = data_->sample(
      rng::derive(global_pages_key(w.u, chain_->block_hash(window_start_block(w.u, h_))), secret_),
      h_.score_random_batches);
  w.scorer = std::make_unique<WindowScorer>(theta_, config_, random, h_.outer_lr);
  if (!clip_.empty()) w.scorer->set_clip(clip_);
  w.metagraph = chain_->metagraph(a_.netuid);
  w.commits = chain_->commitments(a_.netuid);
  w.expected = committed_miners(w.metagraph, w.commits, uid_);
  std::vector<std::pair<uint16_t, std::string>> miners;
  for (const auto& n : w.expected) miners.emplace_back(n.uid, n.hotkey);
  w.sample = scoring_sample(miners, ratings_, h_.score_budget, w.u);
  if (behaviour_ != ValidatorBehaviour::Honest) w.sample.clear();
  for (const auto& n : w.expected) {
    try {
      w.buckets[n.uid] = open_bucket(w.commits.at(n.hotkey));
    } catch (const std::exception& e) {
      w.status[n.uid] = fmt::format("unreachable bucket: {}", e.what());
    }
  }
  w.timer.lap("open");
}

void LocoValidator::take(Window& w, const chain::Neuron& n, const std::optional<ObjectInfo>& info,
                         bool measure) {
  auto r = fetch_update(*w.buckets.at(n.uid), h_, config_, w.u, n.uid, n.hotkey, true, info);
  w.requests += info ? 1 : 2;
  w.bytes += r.bytes;
  w.verify_seconds += r.verify;
  if (r.uploaded_ms) w.uploaded_ms[n.uid] = r.uploaded_ms;
  if (!r.update) {
    w.status[n.uid] = r.reason;
    return;
  }
  w.files[n.uid] = std::move(r.file);
  const Update* u = &w.updates.emplace(n.uid, std::move(*r.update)).first->second;
  w.sketches[n.uid] = sketch_update(*u, gp_.sketch_size);
  // An untrusted miner's update is measured as it lands (the record needs its tests); a trusted
  // one's after the record, so the miners do not wait for it. An empty update is rejected by the
  // checks: not worth a forward pass.
  const bool sampled = std::binary_search(w.sample.begin(), w.sample.end(), n.uid);
  if (measure && sampled && !is_empty_update(*u) && !is_trusted(ratings_, n.hotkey))
    measure_one(w, n.uid, u, true);
}

void LocoValidator::measure_one(Window& w, uint16_t uid, const Update* u, bool untrusted) {
  const double t = now_s();
  w.scorer->add(uid, u, own_batches(w.u, uid, untrusted));
  measure_cost_s_ = now_s() - t;
}

double LocoValidator::window_seconds() {
  return chain_->seconds_per_block() * static_cast<double>(h_.blocks_per_window);
}

std::vector<Batch> LocoValidator::own_batches(uint64_t u, uint16_t uid, bool untrusted) {
  // A secret choice among the micro-batches every miner trains on in its first steps: a miner
  // cannot train on only the ones that will be read. An untrusted miner's update is read on
  // twice as many: its admission rests on this one test.
  return pick_batches(data_->window_batches(u, uid, h_), (untrusted ? 2 : 1) * h_.score_batches,
                      rng::derive(rng::derive(secret_, u), uid));
}

void LocoValidator::gather(Window& w) {
  const uint64_t deadline = window_start_block(w.u + 1, h_) + h_.grace_blocks;
  const double spb = chain_->seconds_per_block();
  PollSchedule polls(default_poll_interval(window_seconds()), kMaxPollRate);
  std::map<uint16_t, const chain::Neuron*> pending;
  for (const auto& n : w.expected)
    if (w.buckets.count(n.uid)) pending[n.uid] = &n, polls.expect({n.uid});
  // The chain is read at most four times a block (a subtensor read is an RPC); the buckets as
  // the schedule allows. No expected miner: the window runs to its deadline.
  uint64_t block = chain_->block();
  double block_read = now_s();
  while (block < deadline && (w.expected.empty() || polls.pending() > 0)) {
    double wait = 0;
    if (auto uid = polls.next(now_s(), &wait)) {
      std::optional<ObjectInfo> info;
      try {
        info = w.buckets.at(*uid)->head(update_key(w.u, *uid, pending.at(*uid)->hotkey));
      } catch (const std::exception&) {  // unreachable now: polled again later
      }
      ++w.requests;
      // Measured at once while the deadline is far (the time is idle otherwise); near it, after
      // the checks (a copy is not worth measuring, and the close budget bounds the wait).
      const bool idle = chain_->seconds_until(deadline) > 3 * measure_cost_s_;
      if (info) take(w, *pending.at(*uid), info, idle), polls.done(*uid);
    } else {
      std::this_thread::sleep_for(
          std::chrono::duration<double>(std::clamp(wait, 0.005, std::max(0.05, spb / 4))));
    }
    if (now_s() - block_read >= std::max(0.05, spb / 4))
      block = chain_->block(), block_read = now_s();
  }
  // The window closes when every update is in, and at the latest at the deadline's time, even
  // when this validator looks later (busy with the last window): what was written after that is
  // late.
  w.closed_ms =
      now_ms() + static_cast<int64_t>(std::min(0.0, chain_->seconds_until(deadline)) * 1000.0);
  log(2, fmt::format("window {}: closed at block {} ({} of {} in)", w.u, block,
                     w.updates.size() + w.status.size(), w.expected.size()));
  w.timer.lap("gather");
  // At the close, one last look at every miner still pending (its upload may have landed since
  // its last poll); these are measured after the checks.
  for (auto& [uid, n] : pending)
    if (!w.updates.count(uid) && !w.status.count(uid)) take(w, *n, std::nullopt, false);
  w.timer.lap("late");
}

void LocoValidator::checks(Window& w) {
  std::vector<Received> received;
  for (const auto& [uid, u] : w.updates) {
    const auto ms = w.uploaded_ms.find(uid);
    received.push_back(
        {uid, &u, ms == w.uploaded_ms.end() ? int64_t{0} : ms->second, &w.sketches.at(uid)});
  }
  GauntletParams gp = gp_;
  gp.late_tolerance_ms = std::min<int64_t>(gp_.upload_tolerance_ms,
                                           static_cast<int64_t>(500 * chain_->seconds_per_block()));
  for (auto& [uid, st] :
       check_uploads(received, opened_ms_, w.closed_ms, history_, w.u, gp, &w.duplicates))
    w.status[uid] = st;
  for (const auto& n : w.expected) {
    w.obs.push_back({n.uid, n.hotkey, w.status.count(n.uid) ? w.status[n.uid] : "missing"});
    w.obs.back().duplicate = w.duplicates.count(n.uid) > 0;
    if (w.obs.back().duplicate) w.obs.back().twin = w.duplicates.at(n.uid);
  }
  if (!w.sample.empty()) w.sample = with_tie_groups(std::move(w.sample), w.obs);
  w.timer.lap("checks");
}

size_t LocoValidator::measure_rest(Window& w, bool untrusted_only, double until_s) {
  // The most due first (measurement_order): when the budget runs out, the same miners are not
  // the ones left unmeasured window after window.
  std::vector<const Observation*> todo;
  for (const auto& o : w.obs)
    if (o.status == "ok" && !w.scorer->has(o.uid) &&
        std::binary_search(w.sample.begin(), w.sample.end(), o.uid) &&
        !(untrusted_only && is_trusted(ratings_, o.hotkey)))
      todo.push_back(&o);
  std::vector<std::pair<uint16_t, std::string>> miners;
  for (const auto* o : todo) miners.emplace_back(o->uid, o->hotkey);
  std::map<uint16_t, size_t> rank;
  for (uint16_t uid : measurement_order(miners, ratings_, w.u)) rank.emplace(uid, rank.size());
  std::stable_sort(todo.begin(), todo.end(),
                   [&](auto* a, auto* b) { return rank.at(a->uid) < rank.at(b->uid); });
  size_t left = 0;
  double last_cost = 0;
  for (const Observation* op : todo) {
    const auto& o = *op;
    const bool trusted = is_trusted(ratings_, o.hotkey);
    // Not started when the last one's cost would run past the limit.
    if (now_s() + last_cost >= until_s) {
      ++left;
      continue;
    }
    measure_one(w, o.uid, &w.updates.at(o.uid), !trusted);
    last_cost = measure_cost_s_;
  }
  return left;
}

void LocoValidator::score(Window& w) {
  // Before the record, only what admission needs: the untrusted miners' updates, within the
  // close budget (a trusted miner's update enters on its trust and is measured afterwards).
  // The budget binds only when a trusted update could enter: otherwise the record would be
  // empty, and the window lost for everyone (a subnet's first windows, when nobody is trusted).
  const double window_s = window_seconds();
  bool any_trusted = false;
  for (const auto& o : w.obs)
    any_trusted = any_trusted || (o.status == "ok" && is_trusted(ratings_, o.hotkey));
  const size_t left = measure_rest(
      w, true,
      any_trusted ? static_cast<double>(w.closed_ms) / 1000 + h_.close_budget * window_s
                  : INFINITY);
  if (left)
    log(0, fmt::format("window {}: could not measure {} untrusted updates within the close "
                       "budget ({:.2f}s); they stay out of the record",
                       w.u, left, h_.close_budget * window_s));
  observe(w);
  w.timer.lap("score");
}

void LocoValidator::observe(Window& w) {
  std::set<uint16_t> not_references;
  for (auto& o : w.obs) {
    if (o.status != "ok" || o.duplicate) not_references.insert(o.uid);
    o.measured = o.status == "ok" && w.scorer->has(o.uid);
  }
  // A strong update with no other strong one beside it (two miners; the judge budget reaching
  // one update after the record; the others measured turned out harmful) would have its margin
  // read against the random pages only, where the pages' difficulty, not the miner's work,
  // decides: another update serves as its reference, measured on the random pages (a third of a
  // measurement). A trusted miner's first; a second try when the first is weak.
  for (int tries = 0; tries < 2 && w.scorer->strong_count(not_references) == 1; ++tries) {
    const Observation* ref = nullptr;
    for (const auto& o : w.obs)
      if (o.status == "ok" && !o.duplicate && !w.scorer->has(o.uid) &&
          !w.scorer->is_reference(o.uid) &&
          (!ref || (!is_trusted(ratings_, ref->hotkey) && is_trusted(ratings_, o.hotkey))))
        ref = &o;
    if (!ref) break;
    w.scorer->add_reference(ref->uid, &w.updates.at(ref->uid));
  }
  w.scorer->observe(w.obs, not_references);
}

void LocoValidator::admit(Window& w) {
  std::map<std::string, Rating> scratch = ratings_;  // the pay comes after the record
  w.admission = judge_window(w.obs, scratch, gp_, w.u);
  w.timer.lap("admit");
}

void LocoValidator::judge(Window& w) {
  if (!w.fallback) {
    // The rest of the sample, in at most judge_budget of a window: the validator must keep
    // pace with the windows. What is left stays unmeasured (its miner's rating stands).
    const double window_s = window_seconds();
    const size_t left = measure_rest(w, false, now_s() + h_.judge_budget * window_s);
    if (left)
      log(1, fmt::format("window {}: {} updates left unmeasured (the judge budget, {:.2f}s, is "
                         "spent)",
                         w.u, left, h_.judge_budget * window_s));
    observe(w);
  }
  const auto norms = w.scorer->median_norms();
  if (!norms.empty()) clip_ = norms;
  // The empty record of a fallback window says nothing about the miners: no ratings move (the
  // judgement runs on a copy, made only then).
  if (w.fallback) {
    std::map<std::string, Rating> unmoved = ratings_;
    w.verdicts = judge_window(w.obs, unmoved, gp_, w.u);
  } else {
    // The test's null, pooled with the earlier windows' (the next admissions read it too).
    null_.add(w.obs, kNullDecay);
    gp_.null_spread = null_.factor(static_cast<double>(h_.null_reads));
    w.verdicts = judge_window(w.obs, ratings_, gp_, w.u);
  }
  w.timer.lap("judge");
}

void LocoValidator::record(Window& w) {
  // theta_u's hash is the last record's params_hash (read again only after a failure).
  w.base_hash = theta_hash_.empty() ? params_hash(params_) : theta_hash_;
  theta_hash_.clear();
  w.record.window = w.u;
  w.record.config_hash = config_hash(config_);
  w.record.hparams_hash = hparams_hash(h_);
  w.record.base_hash = w.base_hash;
  const auto best_first = admitted_best_first(w.admission, w.obs, w.updates);
  // theta_u's held-out loss is known from the last window, except after a failure: then it is
  // read now, before theta moves.
  if (!std::isfinite(last_eval_)) last_eval_ = mean_loss(theta_, eval_);
  // The guard reads the random sample's first micro-batch: it is on the miners' path.
  const auto& random = w.scorer->random();
  const std::vector<Batch> guard_batches(random.begin(),
                                         random.begin() + std::min<ptrdiff_t>(1, random.size()));
  size_t guard_rows = 0;
  for (const auto& b : guard_batches) guard_rows += static_cast<size_t>(b.inputs.size(0));
  const auto& base = w.scorer->base_sequences();
  const std::vector<double> guard_base(base.begin(),
                                       base.begin() + std::min(guard_rows, base.size()));
  w.timer.lap("record");
  const auto kept = guarded_outer_step(theta_, best_first, h_.outer_lr, guard_batches, guard_base,
                                       h_.record_guard, h_.harm_alpha);
  w.timer.lap("guard");
  if (kept.size() < best_first.size()) {
    w.guard = fmt::format(
        "the guard kept {} of {} admitted updates (more raised the loss on random pages by "
        "significantly over {:.0f}%)",
        kept.size(), best_first.size(), 100 * h_.record_guard);
    log(0, fmt::format("window {}: {}", w.u, w.guard));
  }
  w.in_record.insert(kept.begin(), kept.end());
  for (const auto& n : w.expected)
    if (w.in_record.count(n.uid))
      w.record.accepted.push_back({n.uid, n.hotkey, sha256_hex(w.files.at(n.uid))});
  for (const auto& e : w.record.accepted) bucket_->put(mirror_key(w.u, e.uid), w.files.at(e.uid));
  w.record.params_hash = params_hash(params_);
  theta_hash_ = w.record.params_hash;
  bucket_->put(record_key(w.u), encode_record(w.record, *hot_));
  published_ = true;
  opened_ms_ = w.published_ms = now_ms();
  record_block_ = chain_->block();
  w.timer.lap("record");
  // theta_{u+1}'s held-out loss, while the miners train the next window.
  w.base_eval = last_eval_;
  w.master_eval = last_eval_ = mean_loss(theta_, eval_);
  w.timer.lap("eval");
}

bool LocoValidator::leads() {
  const auto& m = sync_->master();
  return !m || m->hotkey_ss58 == hotkey_;
}

std::pair<uint64_t, uint64_t> LocoValidator::turn(uint64_t u) {
  const auto order = validator_order(*chain_, a_.netuid);
  const auto& lead = sync_->master();
  uint64_t rank = 0, candidates = 0;
  for (const auto& v : order) candidates += !lead || v.hotkey_ss58 != lead->hotkey_ss58;
  for (const auto& v : order) {
    if (lead && v.hotkey_ss58 == lead->hotkey_ss58) continue;
    ++rank;
    if (v.hotkey_ss58 == hotkey_) {
      self_ = v;
      const uint64_t from = failover_block(u, h_) + (rank - 1) * h_.failover_blocks + 1;
      return {from, rank == candidates ? UINT64_MAX : from + h_.failover_blocks};
    }
  }
  return {UINT64_MAX, UINT64_MAX};  // not in the order (no master: commitment)
}

bool LocoValidator::may_publish(uint64_t u) {
  // Past its deadline a lead publishes only when no other validator could have: a record(u) from
  // the next in the order may be out (docs/protocol.md, Failover).
  return chain_->block() <= failover_block(u, h_) ||
         validator_order(*chain_, a_.netuid).size() <= 1;
}

void LocoValidator::follow(Window& w) {
  w.base_hash = theta_hash_.empty() ? params_hash(params_) : theta_hash_;
  theta_hash_.clear();
  // A follower does not evaluate the held-out loss: the lead reports it, and the follower's
  // cores are better spent measuring (it must keep pace). It is evaluated when it takes over.
  last_eval_ = NAN;
  w.timer.lap("record");
  // The lead publishes record(u) soon after the close. It is waited for until this validator's
  // turn in the failover order, when it publishes record(u) itself from the same theta_u with
  // its own judgement; a validator without a turn waits until the next window's deadline. A
  // record that does not apply (a hash mismatch) resynchronises theta from the lead's checkpoint
  // and its records.
  // Once its turn has passed, it never publishes: the next one's record may be on its way.
  const auto [from, to] = turn(w.u);
  const uint64_t wait_until = window_start_block(w.u + 2, h_) + h_.grace_blocks;
  const uint64_t give_up = chain_->block() < to ? std::min(from, wait_until) : wait_until;
  auto lead_record = sync_->wait_record(w.u, give_up);
  const uint64_t now = chain_->block();
  if (!lead_record && now >= from && now < to) {
    log(0, fmt::format("window {}: no record from the lead {} by block {}: this validator "
                       "publishes it and leads from now on (failover)",
                       w.u, sync_->master() ? sync_->master()->hotkey_ss58 : "-", from - 1));
    lead_ = true;
    sync_->set_master(self_);
    record(w);
    return;
  }
  // The record's updates this validator holds already are not fetched again; a record that
  // does not apply (or none yet) goes through catch_up, which waits, resynchronises and replays.
  bool applied = false;
  if (lead_record) {
    std::map<uint16_t, std::pair<std::string, const Update*>> known;
    for (const auto& [uid, bytes] : w.files)
      if (w.updates.count(uid)) known[uid] = {sha256_hex(bytes), &w.updates.at(uid)};
    try {
      sync_->apply_record(*lead_record, params_, known);
      applied = true;
    } catch (const SyncError& e) {
      log(0,
          fmt::format("window {}: {}; resynchronising from the lead's checkpoint", w.u, e.what()));
    }
  }
  if (!applied) {
    const auto at = sync_->catch_up(theta_, w.u, w.u + 1, give_up);
    check(at && *at == w.u + 1, "window {}: the lead's record did not come by block {} (at {})",
          w.u, give_up, at ? std::to_string(*at) : "nothing");
    if (!lead_record) lead_record = sync_->fetch_record(w.u);
  }
  if (lead_record) w.record = *lead_record;
  for (const auto& e : w.record.accepted) w.in_record.insert(e.uid);
  theta_hash_ = w.record.params_hash.empty() ? params_hash(params_) : w.record.params_hash;
  w.record.params_hash = theta_hash_;
  published_ = true;  // theta is theta_{u+1} now, as on every node
  w.published_ms = now_ms();
  // When the lead's record came out is not known here: the next window's early-upload check is
  // left to the lead (0: unknown).
  opened_ms_ = 0;
  record_block_ = chain_->block();
  w.timer.lap("follow");
}

void LocoValidator::weights(Window& w) {
  auto weights = rating_weights(w.obs, ratings_, gp_);
  if (behaviour_ != ValidatorBehaviour::Honest) {
    std::vector<uint16_t> miners;
    for (const auto& o : w.obs) miners.push_back(o.uid);
    // The consensus as the chain held it when the window opened (no second metagraph read).
    const auto made = dishonest_weights(behaviour_, w.metagraph, miners);
    for (auto& [uid, x] : weights) x = made.count(uid) ? made.at(uid) : 0.0;
  }
  std::vector<std::string> missing;
  for (size_t i = 0; i < w.obs.size(); ++i) {
    const auto& o = w.obs[i];
    const auto& v = w.verdicts[i];
    const auto& adm = w.admission[i];
    const bool in = w.in_record.count(o.uid) > 0;
    const std::string why = in ? "" : adm.admitted ? "left out by the guard" : adm.reason;
    if (o.status == "missing")
      missing.push_back(std::to_string(o.uid));
    else if (!in)
      log(1, fmt::format("window {}: uid {} not in the record: {}", w.u, o.uid, why));
    w.miners[std::to_string(o.uid)] = {
        {"hotkey", o.hotkey},
        {"status", o.status},
        {"local", o.d_own},
        {"global", o.d_random},
        {"cross", std::isnan(o.d_cross) ? 0.0 : o.d_cross},
        {"random_t", o.random.n ? o.random.t() : 0.0},
        {"margin_t", o.own_margin.n ? std::clamp(o.own_margin.t(), -1e6, 1e6) : 0.0},
        {"placebo_t", o.placebo.n ? std::clamp(o.placebo.t(), -1e6, 1e6) : 0.0},
        {"score", v.score},
        {"measured", o.measured},
        {"passed", v.passed},
        {"test", v.passed ? "" : v.reason},
        {"rating", ratings_[o.hotkey].rating},
        {"weight", weights.at(o.uid)},
        {"accepted", in},
        {"reason", why}};
  }
  if (!missing.empty())
    log(1, fmt::format("window {}: no update from uid {} by the deadline", w.u,
                       fmt::join(missing, ", ")));
  // Pay held back for miners awaiting their first measurement (gauntlet.hpp, Rating::waited).
  std::map<uint16_t, double> held;
  for (const auto& [uid, x] : weights)
    if (!w.miners.contains(std::to_string(uid))) held[uid] = x, w.held += x;
  w.weights_status = set_chain_weights(
      *chain_, a_.netuid, *hot_, w.metagraph.neurons.size(), w.miners,
      (w.u - first_) % h_.weights_interval == 0 || weights_due_,
      [&](const std::string& msg) { log(1, fmt::format("window {}: {}", w.u, msg)); }, held);
  weights_due_ = false;
  w.timer.lap("weights");
}

void LocoValidator::persist(uint64_t u, double master_eval, bool* checkpointed) {
  save_checkpoint(state_dir_ / "theta", theta_, default_tokenizer_path());
  const bool due = (u + 1) % h_.checkpoint_interval == 0 &&
                   (!std::isfinite(published_loss_) || master_eval < published_loss_);
  if (due && lead_)
    publish_checkpoint(*bucket_, theta_, u + 1, state_dir_), published_loss_ = master_eval;
  save_state(u + 1);
  if (checkpointed) *checkpointed = due;
}

void LocoValidator::save_state(uint64_t next) {
  nlohmann::json st = {{"next", next},
                       {"params_hash", params_hash(params_)},
                       {"ratings", ratings_to_json(ratings_)},
                       {"published_loss", published_loss_},
                       {"null_spread", null_spread_to_json(null_)}};
  write_file_atomic(state_dir_ / "state.json", st.dump());
}

bool LocoValidator::dead(uint64_t u) const {
  return record_block_ > 0 && record_block_ >= window_start_block(u + 1, h_) + h_.grace_blocks;
}

void LocoValidator::skip(uint64_t u) {
  WindowRecord r;
  r.window = u;
  r.config_hash = config_hash(config_);
  r.hparams_hash = hparams_hash(h_);
  r.base_hash = r.params_hash = theta_hash_.empty() ? params_hash(params_) : theta_hash_;
  // With other validators, one of them may have published the dead window's record: then it
  // leads, and this one follows.
  if (lead_ && validator_order(*chain_, a_.netuid).size() > 1 && sync_->fetch_record(u)) {
    log(0, fmt::format("window {}: another validator published its record; following it", u));
    lead_ = false;
  }
  if (lead_) {
    bucket_->put(record_key(u), encode_record(r, *hot_));
  } else {  // a follower that fell behind applies the lead's record(u) without judging it
    const auto at =
        sync_->catch_up(theta_, u, u + 1, window_start_block(u + 2, h_) + h_.grace_blocks);
    check(at && *at == u + 1, "window {}: the lead's record is not out", u);
    r.params_hash = params_hash(params_);
    save_checkpoint(state_dir_ / "theta", theta_, default_tokenizer_path());
    last_eval_ = NAN;
  }
  theta_hash_ = r.params_hash;
  opened_ms_ = now_ms();
  record_block_ = chain_->block();
  save_state(u + 1);  // theta is unchanged: its saved copy stands
  weights_due_ = true;
  if (!std::isfinite(last_eval_)) last_eval_ = mean_loss(theta_, eval_);
  append_line(state_dir_ / "metrics.jsonl", nlohmann::json{{"window", u},
                                                           {"role", lead_ ? "lead" : "follower"},
                                                           {"block", record_block_},
                                                           {"theta_window", u + 1},
                                                           {"skipped", true},
                                                           {"base_hash", r.base_hash},
                                                           {"params_hash", r.params_hash},
                                                           {"master_loss", last_eval_},
                                                           {"base_loss", last_eval_},
                                                           {"accepted", 0},
                                                           {"verified", 0},
                                                           {"requests", 1},
                                                           {"weights", "skipped"},
                                                           {"miners", nlohmann::json::object()},
                                                           {"seconds", nlohmann::json::object()}}
                                                .dump());
  metrics_.set("bistro_window", static_cast<double>(u));
}

void LocoValidator::report(Window& w) {
  int64_t last_upload = 0;
  for (auto& [uid, ms] : w.uploaded_ms) last_upload = std::max(last_upload, ms);
  const double latency =
      last_upload ? static_cast<double>(w.published_ms - last_upload) / 1000 : NAN;
  nlohmann::json line = {
      {"window", w.u},
      {"role", lead_ ? "lead" : "follower"},
      {"block", chain_->block()},
      {"theta_window", w.u + 1},
      {"base_hash", w.base_hash},
      {"params_hash", w.record.params_hash},
      {"master_loss", w.master_eval},
      {"base_loss", w.base_eval},
      {"accepted", w.record.accepted.size()},
      {"verified", w.updates.size()},
      {"bytes_down", w.bytes},
      {"requests", w.requests},
      {"forward_batches", w.scorer ? w.scorer->forward_batches() : 0},
      {"record_latency", std::isfinite(latency) ? latency : -1.0},
      {"close_latency", last_upload ? static_cast<double>(w.closed_ms - last_upload) / 1000 : -1.0},
      {"weights", w.weights_status},
      {"held_weight", w.held},
      {"checkpoint", w.checkpoint},
      {"published_loss", published_loss_},
      {"fallback", w.fallback},
      {"miners", w.miners},
      {"seconds", w.timer.laps()},
      {"verify_seconds", w.verify_seconds}};
  append_line(state_dir_ / "metrics.jsonl", line.dump());
  metrics_.set("bistro_window", static_cast<double>(w.u));
  if (std::isfinite(w.master_eval)) metrics_.set("bistro_loss", w.master_eval);
  metrics_.add("bistro_updates_scored_total", static_cast<double>(w.updates.size()));
  metrics_.add("bistro_bucket_requests_total", static_cast<double>(w.requests));
  for (auto& [uid, j] : w.miners.items()) {
    metrics_.set("bistro_score", j["rating"].get<double>(), "uid=\"" + uid + "\"");
    metrics_.set("bistro_weight", j["weight"].get<double>(), "uid=\"" + uid + "\"");
  }
  log(1,
      fmt::format("window {}: {} of {} verified updates in the record; master loss {}; theta {}; "
                  "weights {}; record {:.2f}s after the last upload; {:.1f}s",
                  w.u, w.record.accepted.size(), w.updates.size(),
                  std::isfinite(w.master_eval)
                      ? fmt::format("{:.4f} -> {:.4f}", w.base_eval, w.master_eval)
                      : std::string("(the lead's)"),
                  w.record.params_hash.substr(0, 12), w.weights_status, latency, w.timer.total()));
}

bool LocoValidator::process(Window& w) {
  if (w.fallback) {
    for (const auto& n : w.expected) w.obs.push_back({n.uid, n.hotkey, "missing"});
  } else {
    checks(w);
    score(w);
  }
  admit(w);
  if (lead_ && !may_publish(w.u)) {
    log(0, fmt::format("window {}: past block {} another validator may have published record({}): "
                       "following instead",
                       w.u, failover_block(w.u, h_), w.u));
    lead_ = false;
  }
  if (lead_) {
    record(w);
  } else {
    follow(w);
  }
  judge(w);
  weights(w);
  persist(w.u, w.master_eval, &w.checkpoint);
  w.timer.lap("persist");
  report(w);
  return true;
}

bool LocoValidator::run_window(uint64_t u) {
  Window w;
  w.u = u;
  try {
    open(w);
    gather(w);
  } catch (const std::exception& e) {
    log(0, fmt::format("window {}: cannot gather: {}; publishing an empty record", u, e.what()));
    w.fallback = true;
    if (!w.scorer)
      w.scorer = std::make_unique<WindowScorer>(theta_, config_, std::vector<Batch>{}, h_.outer_lr);
  }
  const auto saved_ratings = ratings_;
  const auto saved_history = history_;
  std::vector<torch::Tensor> saved;
  for (const auto& p : params_) saved.push_back(p.detach().clone());
  bool ok = false;
  published_ = false;
  for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
    try {
      ok = process(w);
    } catch (const std::exception& e) {
      last_eval_ = NAN;
      if (published_) {
        // The record is out and miners follow it: theta stays theta_{u+1}; only the scoring or
        // bookkeeping of the window is lost.
        log(0,
            fmt::format("window {} failed after its record was published: {}", u, error_line(e)));
        break;
      }
      // Before the record, nothing is final: theta goes back to theta_u, and the second attempt
      // publishes an empty record so the miners waiting on it can go on.
      log(0, fmt::format("window {} failed: {}; {}", u, error_line(e),
                         !lead_         ? "following the lead's record again"
                         : attempt == 0 ? "publishing an empty record instead"
                                        : "retrying the window"));
      ratings_ = saved_ratings;
      history_ = saved_history;
      copy_parameters(params_, saved);
      theta_hash_.clear();
      Window fb;
      fb.u = u;
      fb.fallback = true;
      fb.expected = w.expected;
      fb.metagraph = w.metagraph;
      fb.scorer = std::move(w.scorer);
      w = std::move(fb);
    }
  }
  while (!ok && published_) {  // never publish a second record(u): only persisting remains
    try {
      persist(u, NAN);
      ok = true;
    } catch (const std::exception& e) {
      log(0, fmt::format("window {}: cannot persist: {}; retrying", u, e.what()));
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  return ok;
}

uint64_t LocoValidator::skip_dead(uint64_t u, uint64_t end) {
  const uint64_t from = u;
  try {
    for (; u < end && dead(u); ++u) skip(u);
  } catch (const std::exception& e) {  // record(u) is not out: tried again
    log(0, fmt::format("window {}: cannot {}: {}; retrying", u,
                       lead_ ? "publish its empty record" : "apply the lead's record", e.what()));
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (u > from)
    log(0, fmt::format("windows {}..{} ended before their predecessor's record was out (this "
                       "validator was down or behind): {}; weights at the next window",
                       from, u - 1,
                       lead_ ? "published their empty records at once"
                             : "applied the lead's records without judging them"));
  return u;
}

int LocoValidator::run() {
  resume_or_genesis();
  first_ = next_;
  // --windows N: the windows from start_window (or from where it resumed) up to N of them; a
  // restart with the same flags ends where the first run would have.
  const uint64_t end =
      a_.windows ? (a_.start_window ? a_.start_window : next_) + a_.windows : UINT64_MAX;
  for (uint64_t u = next_; u < end;) {
    try {
      const bool was = lead_;
      lead_ = leads();
      if (lead_ != was)
        log(0, fmt::format("window {}: this validator {} now", u,
                           lead_ ? "leads" : "follows the lead's records"));
    } catch (const std::exception& e) {
      log(0, fmt::format("window {}: cannot read who leads: {}", u, error_line(e)));
    }
    if (dead(u)) {
      u = skip_dead(u, end);
    } else if (run_window(u)) {
      ++u;
    } else {
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  return 0;
}

}  // namespace

int run_loco_validator(const NeuronArgs& a, const NeuronHparams& h) {
  return LocoValidator(a, h).run();
}

}  // namespace bistro
