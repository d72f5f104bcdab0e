// The validator's first stages for window u: open, gather (fetch, verify and measure as updates
// land), checks, and score (the untrusted updates still unmeasured).
#include "bistro/validator/stages.hpp"

namespace bistro::validator {

void LocoValidator::new_scorer(Window& w) {
  const auto random = data_->sample(
      rng::derive(global_pages_key(w.u, chain_->block_hash(window_start_block(w.u, h_))), secret_),
      h_.score_random_batches);
  w.scorer = std::make_unique<WindowScorer>(theta_, config_, random, h_.outer_lr, &ranks_);
  if (!clip_.empty()) w.scorer->set_clip(clip_);
}

void LocoValidator::open(Window& w) {
  wait_for_block(*chain_, window_start_block(w.u, h_), 0.05);
  log(2, fmt::format("window {}: open", w.u));
  w.timer = Timer();
  new_scorer(w);
  w.metagraph = chain_->metagraph(a_.netuid);
  w.commits = chain_->commitments(a_.netuid);
  w.expected = committed_miners(w.metagraph, w.commits, uid_);
  std::vector<std::pair<uint16_t, std::string>> miners;
  for (const auto& n : w.expected) miners.emplace_back(n.uid, n.hotkey);
  w.sample = scoring_sample(miners, ratings_, h_.score_budget, w.u);
  if (!judges_honestly(behaviour_)) w.sample.clear();
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
  const uint64_t deadline = window_deadline_block(w.u, h_);
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

}  // namespace bistro::validator
