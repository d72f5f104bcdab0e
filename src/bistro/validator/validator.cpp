// The validator's loop: set up, resume or start from genesis, run each window's stages in order
// (stages.hpp), publish dead windows' empty records, persist theta and the ratings.
#include "bistro/validator/stages.hpp"

#include "bistro/protocol/node_ranks.hpp"
#include "bistro/validator/validator.hpp"

namespace bistro::validator {

LocoValidator::LocoValidator(const NeuronArgs& a, const NeuronHparams& h, runtime::Ranks& group)
    : Node(a, "validator", "master:",
           "validator: --bucket is required with codec sparseloco (records and checkpoints live "
           "there)"),
      h_(h),
      config_(preset(h.preset)),
      theta_(config_),
      behaviour_(parse_validator_behaviour(a.behaviour)),
      ranks_(group) {
  ranks_.log = [this](const std::string& m) { log(0, m); };
  if (group.size() > 1)
    log(1,
        fmt::format("{} ranks: each measurement's micro-batches spread over them", group.size()));
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
        const auto at =
            sync_->catch_up(theta_, *c, std::max(*c, next_), window_deadline_block(next_, h_));
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
  return record_block_ > 0 && record_block_ >= window_deadline_block(u, h_);
}

void LocoValidator::skip(uint64_t u) {
  WindowRecord r;
  r.window = u;
  r.config_hash = config_hash(config_);
  r.hparams_hash = hparams_hash(h_);
  r.base_hash = r.params_hash = theta_hash_.empty() ? params_hash(params_) : theta_hash_;
  // With other validators, one of them may have published the dead window's record: then it
  // leads, and this one follows.
  if (lead_ && validator_order(*chain_, a_.netuid).size() > 1 && sync_->fetch_published(u)) {
    log(0, fmt::format("window {}: another validator published its record; following it", u));
    lead_ = false;
  }
  if (lead_) {
    const std::string bytes = encode_record(r, *hot_);
    bucket_->put(record_key(u), bytes);
    publish_attestation(u, sha256_hex(bytes), to_hex(hot_->public_key()));
  } else {  // a follower that fell behind applies the final record(u) without judging it
    // It attests nothing it would have to judge: nothing was measured, attesting a record not
    // yet final could make a harmful one final, and a statement given windows late would read as
    // if this validator had been up then (a lead passed over while up rests the longest:
    // lead_return.hpp). Its next judged window's attestation makes it active again. An empty
    // record that leaves the theta it holds is attested: there is nothing in it to judge, and
    // without the statements of the validators that fell behind with it (a failover's dead
    // window, for all of them) it stayed unfinal until they dropped out of the active set.
    const uint64_t until = window_deadline_block(u + 1, h_);
    attest_empty_record(u, r.base_hash, until);
    const auto at = sync_->catch_up(theta_, u, u + 1, until);
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

void LocoValidator::attest_empty_record(uint64_t u, const std::string& theta, uint64_t until) {
  const double poll = default_poll_interval(window_seconds());
  while (chain_->block() < until) {
    const auto records = sync_->records_of(u);
    if (std::any_of(records.begin(), records.end(),
                    [](const RecordFinality& x) { return x.finality.final; }))
      return;
    // The current lead's, else the first in stake order: one record attested a window.
    const RecordFinality* pick = nullptr;
    for (const auto& x : records) {
      if (x.finality.refused || !x.record.accepted.empty() || x.record.base_hash != theta ||
          x.record.params_hash != theta)
        continue;
      if (!pick || (sync_->master() && x.publisher_ss58 == sync_->master()->hotkey_ss58)) pick = &x;
    }
    if (pick) {
      publish_attestation(u, pick->sha256, pick->record.validator);
      return;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(poll));
  }
}

bool LocoValidator::process(Window& w) {
  if (w.fallback) {
    for (const auto& n : w.expected) w.obs.push_back({n.uid, n.hotkey, "missing"});
  } else {
    checks(w);
    score(w);
  }
  admit(w);
  // The record of u-1 may have become final after this lead stopped waiting: a lead off the
  // final theta is brought to it, publishes nothing and follows. Its measurements of this window
  // were made on the theta it held: they start again on the final one (a new scorer; the record's
  // updates are measured before it attests). Not judging instead would withhold its attestation,
  // and a validator above 1 - quorum of the stake that withholds it stalls the window.
  if (lead_ && w.u > first_ && settle(w.u - 1)) {
    log(0, fmt::format("window {}: following instead; its measurements start again on the final "
                       "theta",
                       w.u));
    copy_parameters(w.theta_u, params_);
    new_scorer(w);
    observe(w);
    admit(w);
    lead_ = false;
  }
  if (lead_ && !may_publish(w.u)) {
    log(0, fmt::format("window {}: past block {} another validator may have published record({}): "
                       "following instead",
                       w.u, failover_block(w.u, h_), w.u));
    lead_ = false;
  }
  if (lead_) {
    record(w);
    attest(w);
    await_finality(w);  // refused: theta_u again, and it follows the next record
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

bool LocoValidator::settle(uint64_t v) {
  // Called at the top of each window and again before publishing: once theta is known to hold
  // the final record of v, neither reads the records again.
  if (settled_ == v) return false;
  try {
    const auto final_record = sync_->fetch_record(v);  // another's: it leads from now on
    if (!final_record || theta_hash_.empty()) return false;
    if (final_record->params_hash == theta_hash_) {
      settled_ = v;
      return false;
    }
    log(0, fmt::format("window {}: the final record is validator {}'s, not this validator's: "
                       "theta is brought to it, and that validator leads",
                       v, sync_->master() ? sync_->master()->hotkey_ss58 : "-"));
    bool applied = false;
    // From theta_v, kept from the window: the new lead may have no checkpoint yet.
    if (last_u_ == v && final_record->base_hash == last_base_hash_ && !last_theta_u_.empty()) {
      copy_parameters(params_, last_theta_u_);
      try {
        sync_->apply_record(*final_record, params_, {});
        applied = true;
      } catch (const SyncError& e) {
        log(0, fmt::format("window {}: {}", v, e.what()));
      }
    }
    if (!applied) {
      const auto at = sync_->catch_up(theta_, v, v + 1, window_deadline_block(v + 1, h_));
      check(at && *at == v + 1, "window {}: cannot bring theta to the final record", v);
    }
    theta_hash_ = params_hash(params_);
    last_eval_ = NAN;
    settled_ = v;
    return true;
  } catch (const std::exception& e) {
    log(0, fmt::format("window {}: cannot settle on the final record: {}", v, error_line(e)));
    return false;
  }
}

bool LocoValidator::run_window(uint64_t u, bool late) {
  Window w;
  w.u = u;
  w.late = late;
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
  const auto saved = clone_parameters(params_);
  w.theta_u = saved;
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
      fb.late = late;
      fb.fallback = true;
      fb.expected = w.expected;
      fb.metagraph = w.metagraph;
      fb.scorer = std::move(w.scorer);
      w = std::move(fb);
    }
  }
  // theta_u stays until the next window: a lead whose record of u is not the final one (settle)
  // applies the final one to it.
  last_u_ = u;
  last_base_hash_ = w.base_hash;
  last_theta_u_ = std::move(w.theta_u);
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

bool LocoValidator::judges_late(uint64_t u) {
  // Only a follower that judges, on a theta it knows: a lead's dead window is empty by rule.
  if (lead_ || !judges_honestly(behaviour_) || theta_hash_.empty()) return false;
  const uint64_t until = window_deadline_block(u + 1, h_);
  const double poll = default_poll_interval(window_seconds());
  try {
    while (chain_->block() < until) {
      const auto records = sync_->records_of(u);
      for (const auto& r : records)
        if (r.finality.final) return false;  // it needs nothing from this validator: catch up
      for (const auto& r : records) {
        if (r.finality.refused || r.record.base_hash != theta_hash_) continue;
        if (r.record.accepted.empty()) return false;  // skip attests an empty one as it is
        log(0, fmt::format("window {}: it ended before this validator held theta_{}, but {}'s "
                           "record of it is out and not final: judged late, not applied unjudged",
                           u, u, r.publisher_ss58));
        return true;
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(poll));
    }
  } catch (const std::exception& e) {
    log(0, fmt::format("window {}: cannot read its records: {}", u, error_line(e)));
  }
  return false;
}

uint64_t LocoValidator::skip_dead(uint64_t u, uint64_t end) {
  const uint64_t from = u;
  try {
    // The first was asked already (run).
    for (; u < end && dead(u) && (u == from || !judges_late(u)); ++u) skip(u);
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
    ranks_.check_alive();  // the other ranks wait on rank 0: within their timeout
    if (u > first_ && lead_) settle(u - 1);
    try {
      const bool was = lead_;
      sync_->choose_lead(u);
      lead_ = leads() && behaviour_ != ValidatorBehaviour::Stall;  // a staller never publishes
      if (lead_ != was)
        log(0, fmt::format("window {}: this validator {} now", u,
                           lead_ ? "leads" : "follows the lead's records"));
    } catch (const std::exception& e) {
      log(0, fmt::format("window {}: cannot read who leads: {}", u, error_line(e)));
    }
    const bool dead_window = dead(u);
    const bool late = dead_window && judges_late(u);
    if (dead_window && !late) {
      u = skip_dead(u, end);
    } else if (run_window(u, late)) {
      ++u;
    } else {
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  return 0;
}

}  // namespace bistro::validator

namespace bistro {

namespace {
// Ranks 1..N-1 of a validator: a model on this rank's device, serving rank 0's measurements
// (ranks.hpp).
int follow_validator(const NeuronArgs& a, const NeuronHparams& h, runtime::Ranks& group) {
  const Compute compute = rank_compute(a);
  Llama theta(preset(h.preset));
  theta->to(compute.device);
  theta->set_bf16(compute.bf16);
  ScoringRanks(group).follow(theta);
  return 0;
}
}  // namespace

int run_loco_validator(const NeuronArgs& a, const NeuronHparams& h) {
  // Ranks: torchrun's environment, or --ranks N spawned here; one hotkey and uid for all.
  NodeRanks r(a, h, "validator");
  if (r.group->rank() != 0) return follow_validator(a, h, *r.group);
  const int rc = validator::LocoValidator(a, h, *r.group).run();
  r.finish();
  return rc;
}

}  // namespace bistro
