// The protocol v2 validator (codec sparseloco), the master of the shared model. For each window u,
// with theta = theta_u:
//   1. close     wait until every committed miner has uploaded update(u), or the deadline (block
//                (u + 1) bpw + grace), whichever comes first
//   2. gather    every miner's update(u), verified (peers.hpp)
//   3. checks    empty updates, uploads outside [record(u-1) published, close] by the bucket's
//                Last-Modified, and copies (this window's earlier uploads, recent windows') are
//                rejected (gauntlet.hpp)
//   4. score     each update that passed, alone against theta_u: the loss drop on the miner's
//                own pages and on random pages this validator alone picks; the gauntlet's window
//                scores, ratings and the record's updates
//   5. record    theta_{u+1} = outer_step(theta_u, admitted) (outer_step.hpp) behind the guard
//                (the best half, quarter, ... when all of them raise the loss on the window's
//                random pages by more than record_guard); mirror the kept updates into this
//                bucket; publish record(u), signed
//   6. weights   proportional to the ratings, set on the chain
//   7. persist   theta, ratings locally; every checkpoint_interval windows the checkpoint of
//                theta_{u+1}, if its held-out loss is below the last published one's
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
#include "bistro/neurons/catch_up.hpp"
#include "bistro/neurons/gauntlet.hpp"
#include "bistro/neurons/outer_step.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/neurons/scoring.hpp"
#include "bistro/ops/metrics.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The miners expected to upload: registered, with a bucket (not a master) commitment.
std::vector<const chain::Neuron*> committed_miners(const chain::Metagraph& m,
                                                   const std::map<std::string, std::string>& c,
                                                   uint16_t self) {
  std::vector<const chain::Neuron*> out;
  for (const auto& n : m.neurons) {
    auto it = c.find(n.hotkey);
    if (n.uid != self && it != c.end() && it->second.rfind("master:", 0) != 0) out.push_back(&n);
  }
  return out;
}

}  // namespace

int run_loco_validator(const NeuronArgs& a, const NeuronHparams& h) {
  check(a.scoring == "loss-delta",
        "validator: codec sparseloco scores by loss-delta (got --scoring {})", a.scoring);
  auto chain = chain::open_chain(a.network);
  const auto hot = load_hotkey(a);
  const std::string hotkey = ss58_encode(hot->public_key());
  const std::string who = fmt::format("validator {}", hotkey.substr(0, 8));
  auto log = [&](int level, const std::string& m) { neuron_log(level, a.log_level, who, m); };
  Metrics metrics;
  auto metrics_server = start_metrics(a, metrics, [&](const std::string& m) { log(1, m); });
  const uint16_t my_uid = ensure_registered(*chain, a, *hot);
  check(!a.bucket.empty(),
        "validator: --bucket is required with codec sparseloco (records and checkpoints live "
        "there)");
  auto bucket = commit_bucket(*chain, a, *hot, "master:");

  const auto state_dir = neuron_state_dir(a, "validator", hotkey);
  const LlamaConfig config = preset(h.preset);
  Llama theta(config);
  theta->init_weights(h.init_seed);
  const auto params = parameter_tensors(theta);
  const GauntletParams gp = gauntlet_params(h);
  std::map<std::string, Rating> ratings;  // by hotkey: a replaced uid starts from zero
  SketchHistory history;                  // recent windows' sketches (lost on restart)
  uint64_t next = 0;                      // the window whose updates come next; theta = theta_next
  double published_loss = NAN;            // held-out loss of the last published checkpoint
  NeuronData data(a.dataset, h);
  const auto eval = data.held_out(h);
  if (std::filesystem::exists(state_dir / "state.json")) {
    auto st = nlohmann::json::parse(read_file(state_dir / "state.json"), nullptr, false);
    check(st.is_object() && st["next"].is_number_unsigned(), "{}: corrupt validator state",
          (state_dir / "state.json").string());
    next = st["next"].get<uint64_t>();
    load_weights(theta, state_dir / "theta" / "model.safetensors");
    check(params_hash(params) == st.value("params_hash", ""),
          "{}: theta does not match the state (the files are from different windows)",
          state_dir.string());
    const auto saved = st.value("ratings", nlohmann::json::object());  // (not a temporary)
    for (auto& [hk, r] : saved.items())
      if (r.is_object() && r["rating"].is_number())
        ratings[hk] = {r["rating"].get<double>(), r.value("windows", uint64_t{0})};
    if (st["published_loss"].is_number()) published_loss = st["published_loss"].get<double>();
    log(1, fmt::format("resumed at window {} with {} ratings", next, ratings.size()));
  } else {
    // Genesis: theta_s is the shared init, published as the first checkpoint.
    const uint64_t s = a.start_window ? a.start_window : window_of(chain->block(), h) + 1;
    next = s;
    publish_checkpoint(*bucket, theta, s, state_dir);
    published_loss = mean_loss(theta, eval);
    log(1, fmt::format("published the initial checkpoint for window {} (held-out loss {:.4f})", s,
                       published_loss));
  }
  // The random pages are this validator's secret choice: a miner cannot train on them in advance.
  const uint64_t secret =
      (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();

  double last_eval = NAN;  // the held-out loss of theta as it is now (computed once per window)
  int64_t opened_ms = 0;   // when record(u - 1) was published (0: unknown, after a restart)
  const uint64_t first = next;
  bool published = false;  // record(u) is out: theta_{u+1} is final, whatever fails after
  // theta_{u+1} and the ratings to disk; the checkpoint when due and better than the last
  // published (master_eval NAN: not known, no checkpoint). Returns whether it checkpointed.
  auto persist = [&](uint64_t u, double master_eval) {
    save_checkpoint(state_dir / "theta", theta);
    const bool due = (u + 1) % h.checkpoint_interval == 0 &&
                     (!std::isfinite(published_loss) || master_eval < published_loss);
    if (due) publish_checkpoint(*bucket, theta, u + 1, state_dir), published_loss = master_eval;
    nlohmann::json st = {{"next", u + 1},
                         {"params_hash", params_hash(params)},
                         {"ratings", nlohmann::json::object()},
                         {"published_loss", published_loss}};
    for (auto& [hk, r] : ratings)
      st["ratings"][hk] = {{"rating", r.rating}, {"windows", r.windows}};
    write_file_atomic(state_dir / "state.json", st.dump());
    return due;
  };
  auto process = [&](uint64_t u, bool fallback, int64_t closed_ms) {
    Timer timer;
    // 2. gather.
    GatherStats gs;
    gs.keep_bytes = true;
    const chain::Metagraph m = chain->metagraph(a.netuid);
    const auto commits = chain->commitments(a.netuid);
    std::map<uint16_t, Update> updates;
    if (!fallback) updates = gather_updates(m, commits, h, config, u, {my_uid}, &gs);
    timer.lap("gather");

    // 3. checks: empty, outside the window's time, copies.
    const auto miners_expected = committed_miners(m, commits, my_uid);
    std::map<uint16_t, std::string> status;
    std::vector<Received> received;
    for (const auto* n : miners_expected) {
      auto it = updates.find(n->uid);
      if (it == updates.end()) {
        auto r = gs.rejected.find(n->uid);
        status[n->uid] = r == gs.rejected.end() ? "missing" : r->second;
      } else {
        const auto ms = gs.uploaded_ms.find(n->uid);
        received.push_back(
            {n->uid, &it->second, ms == gs.uploaded_ms.end() ? int64_t{0} : ms->second});
      }
    }
    std::map<uint16_t, uint16_t> duplicates;
    for (auto& [uid, st] :
         check_uploads(received, opened_ms, closed_ms, history, u, gp, &duplicates))
      status[uid] = st;
    timer.lap("checks");

    // 4. score every update that passed, alone against theta_u.
    const auto global = data.batches(
        pages(rng::derive(global_pages_key(u, chain->block_hash(window_start_block(u, h))), secret),
              h.eval_pages, data.configs),
        h.score_batches);
    std::vector<Observation> obs;
    std::vector<ScoreInput> inputs;
    for (const auto* n : miners_expected) {
      obs.push_back({n->uid, n->hotkey, status[n->uid]});
      obs.back().duplicate = duplicates.count(n->uid) > 0;
      if (obs.back().status == "ok")
        inputs.push_back(
            {n->uid, &updates.at(n->uid),
             data.batches(pages(local_pages_key(u, n->uid), h.pages_per_window, data.configs),
                          h.score_batches)});
    }
    const double base_random = score_window(theta, config, inputs, global, h.outer_lr, 1, obs);
    // The empty record of a fallback window says nothing about the miners: no ratings move.
    std::map<std::string, Rating> unmoved;
    if (fallback) unmoved = ratings;
    const auto verdicts = judge_window(obs, fallback ? unmoved : ratings, gp);
    timer.lap("score");

    // 5. record: mirror, outer step, the guard, publish.
    const std::string base_hash = params_hash(params);
    WindowRecord record;
    record.window = u;
    record.config_hash = config_hash(config);
    record.hparams_hash = hparams_hash(h);
    record.base_hash = base_hash;
    // The admitted updates, best on random pages first, through the guard.
    const auto best_first = admitted_best_first(verdicts, obs, updates);
    // theta_u's held-out loss is known from the last window, except at the first and after a
    // failure: then it is read now, before theta moves.
    if (!std::isfinite(last_eval)) last_eval = mean_loss(theta, eval);
    const auto kept =
        guarded_outer_step(theta, best_first, h.outer_lr, global, base_random, h.record_guard);
    std::string guard;
    if (kept.size() < best_first.size()) {
      guard = fmt::format(
          "the guard kept {} of {} admitted updates (more raised the loss on "
          "random pages by over {:.0f}%)",
          kept.size(), best_first.size(), 100 * h.record_guard);
      log(0, fmt::format("window {}: {}", u, guard));
    }
    std::set<uint64_t> in_record(kept.begin(), kept.end());
    for (const auto* n : miners_expected)
      if (in_record.count(n->uid))
        record.accepted.push_back({n->uid, n->hotkey, sha256_hex(gs.files.at(n->uid))});
    for (const auto& e : record.accepted) bucket->put(mirror_key(u, e.uid), gs.files.at(e.uid));
    record.params_hash = params_hash(params);
    bucket->put(record_key(u), encode_record(record, *hot));
    published = true;
    opened_ms = now_ms();
    timer.lap("record");
    // theta_{u+1}'s held-out loss, while the miners train the next window.
    const double base_eval = last_eval;
    const double master_eval = mean_loss(theta, eval);
    last_eval = master_eval;
    timer.lap("eval");

    // 6. weights: proportional to the ratings of the miners expected this window.
    const auto weights = rating_weights(obs, ratings);
    nlohmann::json miners = nlohmann::json::object();
    for (size_t i = 0; i < obs.size(); ++i) {
      const auto& o = obs[i];
      const auto& v = verdicts[i];
      const bool in = in_record.count(o.uid) > 0;
      const std::string why = in ? "" : v.admitted ? "left out by the guard" : v.reason;
      if (o.status != "missing" && !in)
        log(1, fmt::format("window {}: uid {} not in the record: {}", u, o.uid, why));
      miners[std::to_string(o.uid)] = {{"hotkey", o.hotkey},
                                       {"status", o.status},
                                       {"local", o.d_own},
                                       {"global", o.d_random},
                                       {"cross", std::isnan(o.d_cross) ? 0.0 : o.d_cross},
                                       {"score", v.score},
                                       {"rating", ratings[o.hotkey].rating},
                                       {"weight", weights.at(o.uid)},
                                       {"accepted", in},
                                       {"reason", why}};
    }
    const std::string weights_status = set_chain_weights(
        *chain, a.netuid, *hot, m.neurons.size(), miners, (u - first) % h.weights_interval == 0,
        [&](const std::string& msg) { log(1, fmt::format("window {}: {}", u, msg)); });
    timer.lap("weights");

    // 7. persist: theta, then the state naming it (atomic), then the public checkpoint.
    const bool checkpoint = persist(u, master_eval);
    timer.lap("persist");

    nlohmann::json line = {{"window", u},
                           {"block", chain->block()},
                           {"theta_window", u + 1},
                           {"base_hash", base_hash},
                           {"params_hash", record.params_hash},
                           {"master_loss", master_eval},
                           {"base_loss", base_eval},
                           {"accepted", record.accepted.size()},
                           {"verified", updates.size()},
                           {"bytes_down", gs.bytes},
                           {"weights", weights_status},
                           {"checkpoint", checkpoint},
                           {"published_loss", published_loss},
                           {"fallback", fallback},
                           {"miners", miners},
                           {"seconds", timer.laps()},
                           {"verify_seconds", gs.verify_seconds}};
    append_line(state_dir / "metrics.jsonl", line.dump());
    record_gather(metrics, gs);
    metrics.set("bistro_window", static_cast<double>(u));
    metrics.set("bistro_loss", master_eval);
    metrics.add("bistro_updates_scored_total", static_cast<double>(updates.size()));
    for (auto& [uid, j] : miners.items()) {
      metrics.set("bistro_score", j["rating"].get<double>(), "uid=\"" + uid + "\"");
      metrics.set("bistro_weight", j["weight"].get<double>(), "uid=\"" + uid + "\"");
    }
    log(1, fmt::format("window {}: {} of {} verified updates in the record; master loss {:.4f} -> "
                       "{:.4f}; theta {}; weights {}; {:.1f}s",
                       u, record.accepted.size(), updates.size(), base_eval, master_eval,
                       record.params_hash.substr(0, 12), weights_status, timer.total()));
  };
  // 1. close: window u ends for this validator when every committed miner has uploaded, or at
  // the deadline; never before the window has begun on chain. Returns the time it closed: an
  // object written after it (beyond the tolerance) is late.
  auto close = [&](uint64_t u) -> int64_t {
    wait_for_block(*chain, window_start_block(u, h), 0.05);
    const uint64_t deadline = window_start_block(u + 1, h) + h.grace_blocks;
    std::vector<std::pair<std::unique_ptr<Bucket>, std::string>> expected;  // bucket, key
    try {  // one read of the chain; then only the buckets are polled
      const auto m = chain->metagraph(a.netuid);
      const auto commits = chain->commitments(a.netuid);
      for (const auto* n : committed_miners(m, commits, my_uid))
        expected.emplace_back(open_bucket(commits.at(n->hotkey)), update_key(u, n->uid, n->hotkey));
    } catch (const std::exception& e) {
      log(1, fmt::format("window {}: cannot list the miners ({}); waiting for the deadline", u,
                         e.what()));
      expected.clear();
      wait_for_block(*chain, deadline, 0.05);
      return now_ms();
    }
    while (chain->block() < deadline) {
      bool all = true;
      for (auto& [b, key] : expected) {
        try {
          all = all && b->head(key).has_value();
        } catch (const std::exception&) {  // an unreachable bucket: wait for the deadline
          all = false;
        }
        if (!all) break;
      }
      if (all) return now_ms();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return now_ms();
  };
  // --windows N: the windows from start_window (or from where it resumed) up to N of them; a
  // restart with the same flags ends where the first run would have.
  const uint64_t end =
      a.windows ? (a.start_window ? a.start_window : next) + a.windows : UINT64_MAX;
  for (uint64_t u = next; u < end;) {
    const int64_t closed_ms = close(u);
    const auto saved_ratings = ratings;
    const auto saved_history = history;
    std::vector<torch::Tensor> saved;
    for (const auto& p : params) saved.push_back(p.detach().clone());
    bool ok = false;
    published = false;
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
      try {
        process(u, attempt == 1, closed_ms);
        ok = true;
      } catch (const std::exception& e) {
        last_eval = NAN;
        if (published) {
          // The record is out and miners follow it: theta stays theta_{u+1}; only the scoring or
          // bookkeeping of the window is lost.
          log(0, fmt::format("window {} failed after its record was published: {}", u, e.what()));
          try {
            persist(u, NAN);
            ok = true;
          } catch (const std::exception& e2) {
            log(0, fmt::format("window {}: cannot persist: {}; retrying", u, e2.what()));
          }
          break;
        }
        // Before the record, nothing is final: theta goes back to theta_u, and the second attempt
        // publishes an empty record so the miners waiting on it can go on.
        log(0, fmt::format(
                   "window {} failed: {}; {}", u, e.what(),
                   attempt == 0 ? "publishing an empty record instead" : "retrying the window"));
        ratings = saved_ratings;
        history = saved_history;
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
      }
    }
    while (!ok && published) {  // never publish a second record(u): only persisting remains
      std::this_thread::sleep_for(std::chrono::seconds(1));
      try {
        persist(u, NAN);
        ok = true;
      } catch (const std::exception& e) {
        log(0, fmt::format("window {}: cannot persist: {}; retrying", u, e.what()));
      }
    }
    if (!ok) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    ++u;
  }
  return 0;
}

}  // namespace bistro
