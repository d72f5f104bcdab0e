// The validator's stages from the measurements to the chain: observe, admit, record (the lead's
// publication), judge, weights and the window's report.
#include "bistro/validator/stages.hpp"

namespace bistro::validator {

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
  if (behaviour_ == ValidatorBehaviour::AdmitAll)  // a test behaviour: no judgement at all
    for (size_t i = 0; i < w.admission.size(); ++i)
      w.admission[i].admitted = w.obs[i].status == "ok", w.admission[i].reason = w.obs[i].status;
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

std::pair<std::vector<Batch>, std::vector<double>> LocoValidator::guard_sample(const Window& w) {
  // The guard reads the random sample's first micro-batch: it is on the miners' path.
  const auto& random = w.scorer->random();
  std::vector<Batch> batches(random.begin(),
                             random.begin() + std::min<ptrdiff_t>(1, random.size()));
  size_t rows = 0;
  for (const auto& b : batches) rows += static_cast<size_t>(b.inputs.size(0));
  const auto& base = w.scorer->base_sequences();
  return {std::move(batches),
          std::vector<double>(base.begin(), base.begin() + std::min(rows, base.size()))};
}

void LocoValidator::record(Window& w) {
  // theta_u's hash is the last record's params_hash (read again only after a failure).
  w.base_hash = theta_hash_.empty() ? params_hash(params_) : theta_hash_;
  theta_hash_.clear();
  w.record.window = w.u;
  w.record.config_hash = config_hash(config_);
  w.record.hparams_hash = hparams_hash(h_);
  w.record.base_hash = w.base_hash;
  auto best_first = admitted_best_first(w.admission, w.obs, w.updates);
  if (behaviour_ == ValidatorBehaviour::Censor && !w.expected.empty()) {  // a test behaviour
    uint16_t lowest = w.expected.front().uid;
    for (const auto& n : w.expected) lowest = std::min(lowest, n.uid);
    std::erase_if(best_first, [&](const PeerUpdate& p) { return p.uid == lowest; });
  }
  if (w.replaces) {  // a replacement holds only what the refused records may give it
    const auto before = best_first.size();
    std::erase_if(best_first, [&](const PeerUpdate& p) {
      const auto it = w.replaces->find(static_cast<uint16_t>(p.uid));
      return it == w.replaces->end() || !w.files.count(p.uid) ||
             sha256_hex(w.files.at(p.uid)) != it->second;
    });
    if (best_first.size() < before)
      log(0, fmt::format("window {}: the replacement leaves out {} admitted update(s) the refused "
                         "record(s) did not hold or were objected to",
                         w.u, before - best_first.size()));
  }
  // theta_u's held-out loss is known from the last window, except after a failure: then it is
  // read now, before theta moves.
  if (!std::isfinite(last_eval_)) last_eval_ = mean_loss(theta_, eval_);
  const auto [guard_batches, guard_base] = guard_sample(w);
  w.timer.lap("record");
  const double guard = behaviour_ == ValidatorBehaviour::AdmitAll ? 1e30 : h_.record_guard;
  const auto kept = guarded_outer_step(theta_, best_first, h_.outer_lr, guard_batches, guard_base,
                                       guard, h_.harm_alpha);
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
  const std::string bytes = encode_record(w.record, *hot_);
  w.record_sha256 = sha256_hex(bytes);
  bucket_->put(record_key(w.u), bytes);
  published_ = true;
  opened_ms_ = w.published_ms = now_ms();
  record_block_ = chain_->block();
  w.timer.lap("record");
  // theta_{u+1}'s held-out loss, while the miners train the next window.
  w.base_eval = last_eval_;
  w.master_eval = last_eval_ = mean_loss(theta_, eval_);
  w.timer.lap("eval");
}

void LocoValidator::weights(Window& w) {
  auto weights = rating_weights(w.obs, ratings_, gp_);
  if (!judges_honestly(behaviour_)) {
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
    // A follower's admitted update missing from the lead's record: the lead's guard or its own
    // judgement (the omission check, attest.cpp, tells them apart), not this node's guard.
    const std::string why = in              ? ""
                            : !adm.admitted ? adm.reason
                            : lead_         ? "left out by the guard"
                                            : "admitted here, not in the lead's record";
    if (o.status == "missing")
      missing.push_back(std::to_string(o.uid));
    else if (!in)
      log(1, fmt::format("window {}: uid {} not in the record: {}", w.u, o.uid, why));
    else if (v.unpaid)
      log(1, fmt::format("window {}: uid {} in the record unpaid (it helps on random pages, "
                         "{:.1f} standard errors): {}",
                         w.u, o.uid, o.random.t(), v.reason));
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
      {"late", w.late},
      {"miners", w.miners},
      {"seconds", w.timer.laps()},
      {"verify_seconds", w.verify_seconds},
      {"record_sha256", w.record_sha256},
      {"published_ms", w.published_ms},
      {"attested_ms", w.attested_ms},
      {"objections", w.objections},
      {"omitted", w.omitted}};
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

}  // namespace bistro::validator
