// The protocol v2 validator (codec sparseloco), the master of the shared model. For each window u,
// once its uploads are due (block (u + 1) bpw + grace), with theta = theta_{u+1}:
//   1. gather    every miner's update(u), verified (peers.hpp)
//   2. score     loss before/after the update alone (outer step of one peer) on the miner's own
//                pages and on the window's random pages; EMAs; accepted if it lowers the loss
//   3. record    the accepted uids and their files' SHA-256, mirrored into this bucket, theta's
//                hash before and after the outer step: record(u), signed (record.hpp)
//   4. outer     theta_{u+2} = outer_step(theta_{u+1}, accepted)                (outer_step.hpp)
//   5. weights   softmax of the scores, set on the chain
//   6. persist   theta and scores locally; every checkpoint_interval windows the checkpoint of
//                theta_{u+2} in the bucket (what late and restarted nodes start from)
// It does all this while the miners train window u + 1, so nobody waits for it.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <thread>
#include <nlohmann/json.hpp>

#include "bistro/chain/open_chain.hpp"
#include "bistro/chain/weights.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/model/checkpoint.hpp"
#include "bistro/neurons/catch_up.hpp"
#include "bistro/neurons/outer_step.hpp"
#include "bistro/storage/sigv4.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/ops/metrics.hpp"
#include "bistro/storage/s3_bucket.hpp"

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

}  // namespace

int run_loco_validator(const NeuronArgs& a) {
  init_runtime(a.threads);
  check_neuron_device(a.device);
  const NeuronHparams h = load_hparams(a.hparams_file);
  check(a.scoring == "loss-delta", "validator: codec sparseloco scores by loss-delta (got --scoring {})",
        a.scoring);
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
  auto bucket = open_bucket(a.bucket);
  if (chain->commitments(a.netuid)[hotkey] != "master:" + a.bucket)
    chain->set_commitment(a.netuid, *hot, "master:" + a.bucket);

  const auto state_dir = neuron_state_dir(a, "validator", hotkey);
  const LlamaConfig config = preset(h.preset);
  Llama theta(config);
  theta->init_weights(h.init_seed);
  const auto params = parameter_tensors(theta);
  std::map<std::string, Score> scores;  // by hotkey: a replaced uid starts from zero
  uint64_t next = 0;                    // the window whose updates come next; theta_{next+1}
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
    log(1, fmt::format("resumed at window {} with {} scores", next, scores.size()));
  } else {
    // Genesis: theta_s is the shared init, published as the first checkpoint; record(s - 1) will
    // be empty (no miner trained before s).
    const uint64_t s = std::max<uint64_t>(
        1, a.start_window ? a.start_window : window_of(chain->block(), h) + 1);
    next = s - 1;
    publish_checkpoint(*bucket, theta, s, state_dir);
    log(1, fmt::format("published the initial checkpoint for window {}", s));
  }

  NeuronData data(a.dataset, h);
  // A fixed held-out set, the same every window: the master's progress is read on it.
  const std::string eval_seed = "bistro/validator-eval";
  const auto eval = data.batches(
      pages(global_pages_key(
                UINT64_MAX, {reinterpret_cast<const uint8_t*>(eval_seed.data()), eval_seed.size()}),
            h.eval_pages, data.configs),
      6);
  double last_eval = NAN;  // the held-out loss of theta as it is now (computed once per window)
  const uint64_t first = next;
  // One window, all or nothing: `fallback` publishes an empty record (theta unchanged) when the
  // full pass failed, so the miners waiting on record(u) can go on.
  auto process = [&](uint64_t u, bool fallback) {
      Timer timer;
      // 1. gather.
      GatherStats gs;
      gs.keep_bytes = true;
      const chain::Metagraph m = chain->metagraph(a.netuid);
      const auto commits = chain->commitments(a.netuid);
      std::map<uint16_t, Update> updates;
      if (!fallback) updates = gather_updates(m, commits, h, config, u, {my_uid}, &gs);
      timer.lap("gather");
      for (auto& [uid, reason] : gs.rejected)
        if (reason != "missing") log(1, fmt::format("window {}: uid {} rejected: {}", u, uid, reason));

      // 2. score each update alone against theta_{u+1}.
      const std::string base_hash = params_hash(params);
      auto global = data.batches(
          pages(global_pages_key(u, chain->block_hash(window_start_block(u, h))), h.eval_pages,
                data.configs),
          h.score_batches);
      const double base_global = mean_loss(theta, global);
      if (!std::isfinite(last_eval)) last_eval = mean_loss(theta, eval);
      const double base_eval = last_eval;
      nlohmann::json miners = nlohmann::json::object();
      auto ema = [&](double old, double x) { return h.score_ema * old + (1 - h.score_ema) * x; };
      WindowRecord record;
      record.window = u;
      record.config_hash = config_hash(config);
      record.hparams_hash = hparams_hash(h);
      record.base_hash = base_hash;
      std::vector<PeerUpdate> accepted;
      for (const auto& n : m.neurons) {
        auto c = commits.find(n.hotkey);
        if (n.uid == my_uid || c == commits.end() || c->second.rfind("master:", 0) == 0) continue;
        Delta d;
        std::string status = "ok";
        auto it = updates.find(n.uid);
        if (it == updates.end()) {
          auto r = gs.rejected.find(n.uid);
          status = r == gs.rejected.end() ? "missing" : r->second;
        } else {
          const auto local = data.batches(
              pages(local_pages_key(u, n.uid), h.pages_per_window, data.configs),
              h.score_batches);
          d = score_update(theta, it->second, n.uid, h.outer_lr, local, global, base_global);
          if (!std::isfinite(d.local) || !std::isfinite(d.global)) {
            d = {};
            status = "non-finite loss";
          } else if (d.local + d.global <= 0) {
            status = "does not lower the loss";
          } else {
            accepted.push_back({n.uid, &it->second});
            record.accepted.push_back({n.uid, n.hotkey, sha256_hex(gs.files.at(n.uid))});
          }
        }
        Score& s = scores[n.hotkey];
        s.local = ema(s.local, d.local);
        s.global = ema(s.global, d.global);
        miners[std::to_string(n.uid)] = {{"hotkey", n.hotkey},   {"local", d.local},
                                         {"global", d.global},   {"score", s.score()},
                                         {"status", status},     {"accepted", status == "ok"}};
      }
      timer.lap("score");

      // 3. + 4. mirror the accepted updates, take the outer step, publish the record.
      for (const auto& e : record.accepted) bucket->put(mirror_key(u, e.uid), gs.files.at(e.uid));
      outer_step(params, accepted, h.outer_lr);
      record.params_hash = params_hash(params);
      bucket->put(record_key(u), encode_record(record, *hot));
      timer.lap("record");
      const double master_eval = mean_loss(theta, eval);
      last_eval = master_eval;
      timer.lap("eval");

      // 5. weights: softmax of the scores of the miners seen this window.
      std::vector<double> weights(m.neurons.size(), 0.0);
      double top = -INFINITY, total = 0;
      for (auto& [uid, j] : miners.items())
        top = std::max(top, j["score"].get<double>() * h.temperature);
      for (auto& [uid, j] : miners.items()) {
        const double e = std::exp(j["score"].get<double>() * h.temperature - top);
        weights[std::stoul(uid)] = e;
        total += e;
      }
      for (auto& [uid, j] : miners.items()) j["weight"] = weights[std::stoul(uid)] / total;
      std::string weights_status = "not due";
      if (!miners.empty() && (u - first) % h.weights_interval == 0) {
        auto wv = chain::weights_from_scores(weights);
        try {
          chain->set_weights(a.netuid, *hot, wv.uids, wv.values,
                             chain->hyperparameters(a.netuid).weights_version_key);
          weights_status = "set";
        } catch (const chain::ChainError& e) {
          weights_status = e.name();
          log(1, fmt::format("window {}: set_weights refused: {}", u, e.what()));
        }
      }
      timer.lap("weights");

      // 6. persist: theta, then the state naming it (atomic), then the public checkpoint.
      save_checkpoint(state_dir / "theta", theta);
      nlohmann::json st = {{"next", u + 1},
                           {"params_hash", record.params_hash},
                           {"scores", nlohmann::json::object()}};
      for (auto& [hk, s] : scores) st["scores"][hk] = {{"local", s.local}, {"global", s.global}};
      write_file_atomic(state_dir / "state.json", st.dump());
      const bool checkpoint = (u + 2) % h.checkpoint_interval == 0;
      if (checkpoint) publish_checkpoint(*bucket, theta, u + 2, state_dir);
      timer.lap("persist");

      nlohmann::json line = {{"window", u},
                             {"block", chain->block()},
                             {"theta_window", u + 2},
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
      log(1, fmt::format("window {}: {} of {} verified updates accepted; master loss {:.4f} -> "
                         "{:.4f}; theta {}; weights {}; {:.1f}s",
                         u, record.accepted.size(), updates.size(), base_eval, master_eval,
                         record.params_hash.substr(0, 12), weights_status, timer.total()));
  };
  // --windows N: the windows from start_window - 1 (or from where it resumed) up to N of them; a
  // restart with the same flags ends where the first run would have.
  const uint64_t end =
      a.windows ? (a.start_window ? std::max<uint64_t>(1, a.start_window) - 1 : next) + a.windows
                : UINT64_MAX;
  for (uint64_t u = next; u < end;) {
    wait_for_block(*chain, window_start_block(u + 1, h) + h.grace_blocks, 0.05);
    std::vector<torch::Tensor> saved;
    for (const auto& p : params) saved.push_back(p.detach().clone());
    bool ok = false;
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
      try {
        process(u, attempt == 1);
        ok = true;
      } catch (const std::exception& e) {
        // A bad window (a chain or bucket failure) is logged; theta goes back to where the window
        // started and the neuron keeps running.
        log(0, fmt::format("window {} failed: {}; {}", u, e.what(),
                           attempt == 0 ? "publishing an empty record instead"
                                        : "retrying the window"));
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
        last_eval = NAN;
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
