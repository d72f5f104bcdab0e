// The protocol v2 validator (codec sparseloco), the master of the shared model. For each window u,
// with theta = theta_u:
//   1. close     wait until every committed miner has uploaded update(u), or the deadline (block
//                (u + 1) bpw + grace), whichever comes first
//   2. gather    every miner's update(u), verified (peers.hpp)
//   3. record    admit the verified, non-empty updates of uids not on probation; mirror them into
//                this bucket; theta_{u+1} = outer_step(theta_u, admitted) (outer_step.hpp);
//                publish record(u) with both hashes, signed (record.hpp). The miners are waiting
//                for it, so nothing slow comes before it.
//   4. score     each verified update alone against theta_u: the loss change on the miner's own
//                pages and on the window's random pages; EMAs; a uid whose update did not lower
//                the loss is on probation (left out of records) until one does
//   5. weights   softmax of the scores, set on the chain
//   6. persist   theta, scores and probation locally; every checkpoint_interval windows the
//                checkpoint of theta_{u+1} in the bucket (what late and restarted nodes load)
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bistro/chain/open_chain.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/model/checkpoint.hpp"
#include "bistro/neurons/catch_up.hpp"
#include "bistro/neurons/outer_step.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/ops/metrics.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro {
namespace {

struct Score {
  double local = 0, global = 0;  // EMAs of the loss improvement
  double score() const { return 0.5 * local + 0.5 * global; }
};

// The loss change one update makes alone, on both page sets; theta is restored afterwards.
struct Delta {
  double local = 0, global = 0;
};
Delta score_update(Llama& theta, const Update& u, uint16_t uid, double alpha,
                   const std::vector<Batch>& local, const std::vector<Batch>& global,
                   double base_global) {
  const auto params = parameter_tensors(theta);
  std::vector<torch::Tensor> saved;
  for (const auto& p : params) saved.push_back(p.detach().clone());
  const double before_local = mean_loss(theta, local);
  outer_step(params, {{uid, &u}}, alpha);
  Delta d{before_local - mean_loss(theta, local), base_global - mean_loss(theta, global)};
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
  return d;
}

bool all_zero(const Update& u) {
  for (const auto& t : u.tensors)
    for (float v : t.val)
      if (v != 0.0f) return false;
  return true;
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
  std::map<std::string, Score> scores;  // by hotkey: a replaced uid starts from zero
  std::set<std::string> probation;      // hotkeys whose last scored update did not help
  uint64_t next = 0;                    // the window whose updates come next; theta = theta_next
  if (std::filesystem::exists(state_dir / "state.json")) {
    auto st = nlohmann::json::parse(read_file(state_dir / "state.json"), nullptr, false);
    check(st.is_object() && st["next"].is_number_unsigned(), "{}: corrupt validator state",
          (state_dir / "state.json").string());
    next = st["next"].get<uint64_t>();
    load_weights(theta, state_dir / "theta" / "model.safetensors");
    check(params_hash(params) == st.value("params_hash", ""),
          "{}: theta does not match the state (the files are from different windows)",
          state_dir.string());
    for (auto& [hk, s] : st["scores"].items())
      scores[hk] = {s.value("local", 0.0), s.value("global", 0.0)};
    for (auto& hk : st.value("probation", nlohmann::json::array())) probation.insert(hk);
    log(1, fmt::format("resumed at window {} with {} scores", next, scores.size()));
  } else {
    // Genesis: theta_s is the shared init, published as the first checkpoint.
    const uint64_t s = a.start_window ? a.start_window : window_of(chain->block(), h) + 1;
    next = s;
    publish_checkpoint(*bucket, theta, s, state_dir);
    log(1, fmt::format("published the initial checkpoint for window {}", s));
  }

  NeuronData data(a.dataset, h);
  const auto eval = data.held_out(h);
  double last_eval = NAN;  // the held-out loss of theta as it is now (computed once per window)
  const uint64_t first = next;
  // One window, all or nothing: `fallback` publishes an empty record (theta unchanged) when the
  // full pass failed, so the miners waiting on record(u) can go on.
  Llama scorer(config);    // theta_u, kept for scoring once theta has moved on
  bool published = false;  // record(u) is out: theta_{u+1} is final, whatever fails after
  // theta_{u+1}, scores and probation to disk; the checkpoint when due. True if it checkpointed.
  auto persist = [&](uint64_t u) {
    save_checkpoint(state_dir / "theta", theta);
    nlohmann::json st = {{"next", u + 1},
                         {"params_hash", params_hash(params)},
                         {"scores", nlohmann::json::object()},
                         {"probation", probation}};
    for (auto& [hk, sc] : scores) st["scores"][hk] = {{"local", sc.local}, {"global", sc.global}};
    write_file_atomic(state_dir / "state.json", st.dump());
    const bool due = (u + 1) % h.checkpoint_interval == 0;
    if (due) publish_checkpoint(*bucket, theta, u + 1, state_dir);
    return due;
  };
  auto process = [&](uint64_t u, bool fallback) {
    Timer timer;
    // 2. gather.
    GatherStats gs;
    gs.keep_bytes = true;
    const chain::Metagraph m = chain->metagraph(a.netuid);
    const auto commits = chain->commitments(a.netuid);
    std::map<uint16_t, Update> updates;
    if (!fallback) updates = gather_updates(m, commits, h, config, u, {my_uid}, &gs);
    timer.lap("gather");
    for (auto& [uid, reason] : gs.rejected)
      if (reason != "missing")
        log(1, fmt::format("window {}: uid {} rejected: {}", u, uid, reason));

    // 3. record: admit, mirror, outer step, publish.
    const std::string base_hash = params_hash(params);
    {
      torch::NoGradGuard no_grad;
      const auto sp = parameter_tensors(scorer);
      for (size_t i = 0; i < params.size(); ++i) sp[i].copy_(params[i]);
    }
    WindowRecord record;
    record.window = u;
    record.config_hash = config_hash(config);
    record.hparams_hash = hparams_hash(h);
    record.base_hash = base_hash;
    std::vector<PeerUpdate> admitted;
    std::map<uint16_t, std::string> status;
    const auto miners_expected = committed_miners(m, commits, my_uid);
    for (const auto* n : miners_expected) {
      auto it = updates.find(n->uid);
      if (it == updates.end()) {
        auto r = gs.rejected.find(n->uid);
        status[n->uid] = r == gs.rejected.end() ? "missing" : r->second;
      } else if (all_zero(it->second)) {
        status[n->uid] = "empty update";
      } else if (probation.count(n->hotkey)) {
        status[n->uid] = "on probation (its last update did not lower the loss)";
      } else {
        status[n->uid] = "ok";
        admitted.push_back({n->uid, &it->second});
        record.accepted.push_back({n->uid, n->hotkey, sha256_hex(gs.files.at(n->uid))});
      }
    }
    for (const auto& e : record.accepted) bucket->put(mirror_key(u, e.uid), gs.files.at(e.uid));
    outer_step(params, admitted, h.outer_lr);
    record.params_hash = params_hash(params);
    bucket->put(record_key(u), encode_record(record, *hot));
    published = true;
    timer.lap("record");

    // 4. score every verified update alone against theta_u.
    auto global =
        data.batches(pages(global_pages_key(u, chain->block_hash(window_start_block(u, h))),
                           h.eval_pages, data.configs),
                     h.score_batches);
    const double base_global = mean_loss(scorer, global);
    nlohmann::json miners = nlohmann::json::object();
    auto ema = [&](double old, double x) { return h.score_ema * old + (1 - h.score_ema) * x; };
    for (const auto* n : miners_expected) {
      Delta d;
      auto it = updates.find(n->uid);
      if (it != updates.end()) {
        const auto local = data.batches(
            pages(local_pages_key(u, n->uid), h.pages_per_window, data.configs), h.score_batches);
        d = score_update(scorer, it->second, n->uid, h.outer_lr, local, global, base_global);
        if (!std::isfinite(d.local) || !std::isfinite(d.global)) d = {-1, -1};
        if (d.local + d.global > 0) {
          if (probation.erase(n->hotkey)) log(1, fmt::format("uid {} off probation", n->uid));
        } else if (probation.insert(n->hotkey).second) {
          log(1, fmt::format("window {}: uid {} on probation: its update changes the loss by "
                             "{:+.4f} (own pages) and {:+.4f} (random pages)",
                             u, n->uid, -d.local, -d.global));
        }
      }
      Score& sc = scores[n->hotkey];
      sc.local = ema(sc.local, d.local);
      sc.global = ema(sc.global, d.global);
      miners[std::to_string(n->uid)] = {
          {"hotkey", n->hotkey}, {"local", d.local},         {"global", d.global},
          {"score", sc.score()}, {"status", status[n->uid]}, {"accepted", status[n->uid] == "ok"}};
    }
    timer.lap("score");
    if (!std::isfinite(last_eval)) last_eval = mean_loss(scorer, eval);
    const double base_eval = last_eval;
    const double master_eval = mean_loss(theta, eval);
    last_eval = master_eval;
    timer.lap("eval");

    // 5. weights: softmax of the scores of the miners seen this window.
    const std::string weights_status = set_softmax_weights(
        *chain, a.netuid, *hot, m.neurons.size(), miners, h.temperature,
        (u - first) % h.weights_interval == 0,
        [&](const std::string& msg) { log(1, fmt::format("window {}: {}", u, msg)); });
    timer.lap("weights");

    // 6. persist: theta, then the state naming it (atomic), then the public checkpoint.
    const bool checkpoint = persist(u);
    timer.lap("persist");

    nlohmann::json line = {{"window", u},
                           {"block", chain->block()},
                           {"theta_window", u + 1},
                           {"base_hash", base_hash},
                           {"params_hash", record.params_hash},
                           {"master_loss", master_eval},
                           {"base_loss", base_eval},
                           {"global_loss", base_global},
                           {"accepted", record.accepted.size()},
                           {"verified", updates.size()},
                           {"bytes_down", gs.bytes},
                           {"weights", weights_status},
                           {"checkpoint", checkpoint},
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
      metrics.set("bistro_score", j["score"].get<double>(), "uid=\"" + uid + "\"");
      metrics.set("bistro_weight", j["weight"].get<double>(), "uid=\"" + uid + "\"");
    }
    log(1, fmt::format("window {}: {} of {} verified updates in the record; master loss {:.4f} -> "
                       "{:.4f}; theta {}; weights {}; {:.1f}s",
                       u, record.accepted.size(), updates.size(), base_eval, master_eval,
                       record.params_hash.substr(0, 12), weights_status, timer.total()));
  };
  // 1. close: window u ends for this validator when every committed miner has uploaded, or at
  // the deadline; never before the window has begun on chain.
  auto close = [&](uint64_t u) {
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
      return;
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
      if (all) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  // --windows N: the windows from start_window (or from where it resumed) up to N of them; a
  // restart with the same flags ends where the first run would have.
  const uint64_t end =
      a.windows ? (a.start_window ? a.start_window : next) + a.windows : UINT64_MAX;
  for (uint64_t u = next; u < end;) {
    close(u);
    std::vector<torch::Tensor> saved;
    for (const auto& p : params) saved.push_back(p.detach().clone());
    bool ok = false;
    published = false;
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
      try {
        process(u, attempt == 1);
        ok = true;
      } catch (const std::exception& e) {
        last_eval = NAN;
        if (published) {
          // The record is out and miners follow it: theta stays theta_{u+1}; only the scoring or
          // bookkeeping of the window is lost.
          log(0, fmt::format("window {} failed after its record was published: {}", u, e.what()));
          try {
            persist(u);
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
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
      }
    }
    while (!ok && published) {  // never publish a second record(u): only persisting remains
      std::this_thread::sleep_for(std::chrono::seconds(1));
      try {
        persist(u);
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
