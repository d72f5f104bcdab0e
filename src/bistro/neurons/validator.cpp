// The validator: once a window's upload deadline has passed, fetch every miner's update, verify
// it, and score it by how much it lowers the master model's loss on the miner's own pages and on
// random global pages (BISTRO's loss-delta rule); keep EMAs, set weights from a softmax of the
// scores, merge the accepted updates into the master and republish the master when its global
// loss improves. Scores, EMAs and the master survive a restart (written atomically every window).
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "bistro/chain/open_chain.hpp"
#include "bistro/chain/weights.hpp"
#include "bistro/compress/dct.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/model/checkpoint.hpp"
#include "bistro/neurons/neuron.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/ops/metrics.hpp"
#include "bistro/storage/s3_bucket.hpp"

namespace bistro {
namespace {

// Writes the miner's slice values into the model and returns what they replaced.
// The flat positions of one tensor's slice for this window, as an index tensor.
torch::Tensor slice_index(const std::string& name, const torch::Tensor& flat, uint64_t key,
                          int64_t compression) {
  auto pos = slice_positions(key, name, static_cast<uint64_t>(flat.numel()),
                             static_cast<uint64_t>(compression));
  return torch::from_blob(pos.data(), {static_cast<int64_t>(pos.size())}, torch::kInt64).clone();
}

// Tensor i's values from a slice update (a view of the decoded floats).
torch::Tensor slice_values(const Update& u, size_t i) {
  return torch::from_blob(const_cast<float*>(u.tensors[i].val.data()),
                          {static_cast<int64_t>(u.tensors[i].val.size())}, torch::kFloat32);
}

// Writes the miner's slice values into the model and returns what they replaced.
std::vector<torch::Tensor> apply_slice(Llama& model, const Update& u, uint64_t key,
                                       int64_t compression) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> saved;
  auto params = model->ordered_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    auto flat = params[i].second.view(-1);
    auto index = slice_index(params[i].first, flat, key, compression);
    saved.push_back(flat.index_select(0, index));
    flat.index_copy_(0, index, slice_values(u, i));
  }
  return saved;
}

void restore_slice(Llama& model, const std::vector<torch::Tensor>& saved, uint64_t key,
                   int64_t compression) {
  torch::NoGradGuard no_grad;
  auto params = model->ordered_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    auto flat = params[i].second.view(-1);
    flat.index_copy_(0, slice_index(params[i].first, flat, key, compression), saved[i]);
  }
}

// One miner's update applied to the model alone (a slice written in, or its DeMo step taken);
// returns what restore_update needs to undo it.
std::vector<torch::Tensor> apply_update(Llama& model, const Update& u, uint16_t uid,
                                        const NeuronHparams& h, uint64_t key) {
  if (h.codec == "slice") return apply_slice(model, u, key, h.compression);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> saved;
  for (auto& p : parameter_tensors(model)) saved.push_back(p.clone());
  demo_merge(parameter_tensors(model), {{uid, &u}}, h.dct_lr, h.weight_decay);
  return saved;
}

void restore_update(Llama& model, const std::vector<torch::Tensor>& saved, const NeuronHparams& h,
                    uint64_t key) {
  if (h.codec == "slice") return restore_slice(model, saved, key, h.compression);
  torch::NoGradGuard no_grad;
  auto params = parameter_tensors(model);
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
}

std::vector<double> batch_loss(Llama& model, const std::vector<Batch>& batches) {
  torch::NoGradGuard no_grad;
  std::vector<double> out;
  for (const auto& b : batches) out.push_back(model->loss(b.inputs, b.targets).item<double>());
  return out;
}

// Gradient-distance (BISTRO seed 002), for slices: the miner's change at the slice positions
// (its values minus the master's) against the validator's own gradient on the miner's pages.
// A step should point down the gradient, so R = -|| d/|d| + g/|g| || in [-2, 0]; 0 is perfect.
double gradient_agreement(Llama& master, const std::vector<Batch>& local, const Update& u,
                          uint64_t key, int64_t compression) {
  auto params = master->ordered_parameters();
  for (auto& [n, p] : params) p.mutable_grad() = torch::Tensor();
  for (const auto& b : local)
    (master->loss(b.inputs, b.targets) / static_cast<double>(local.size())).backward();
  torch::NoGradGuard no_grad;
  double dd = 0, gg = 0, dg = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    auto flat = params[i].second.view(-1);
    auto grad = params[i].second.grad();
    auto index = slice_index(params[i].first, flat, key, compression);
    auto d = (slice_values(u, i) - flat.index_select(0, index)).to(torch::kFloat64);
    auto g = grad.defined() ? grad.view(-1).index_select(0, index).to(torch::kFloat64)
                            : torch::zeros_like(d);
    dd += d.dot(d).item<double>();
    gg += g.dot(g).item<double>();
    dg += d.dot(g).item<double>();
    params[i].second.mutable_grad() = torch::Tensor();
  }
  if (dd <= 0 || gg <= 0) return -std::sqrt(2.0);  // no change, or no signal: orthogonal
  // || d/|d| + g/|g| ||^2 = 2 + 2 cos(d, g)
  const double cos = dg / std::sqrt(dd * gg);
  return -std::sqrt(std::max(0.0, 2 + 2 * cos));
}

// Pairwise win rates over the same batches; `eps` favours the earlier upload. The models compared
// differ only by a slice, so the advantage scales the earlier miner's improvement over the master
// (loss - eps * (base - loss)) rather than its whole loss, which would swamp every difference and
// reward whoever uploads first without training.
std::map<uint16_t, double> win_rates(const std::map<uint16_t, std::vector<double>>& losses,
                                     const std::vector<double>& base,
                                     const std::map<uint16_t, int64_t>& uploaded, double eps) {
  std::map<uint16_t, double> out;
  for (auto& [i, li] : losses) {
    if (losses.size() == 1) {
      out[i] = 1.0;
      continue;
    }
    uint64_t wins = 0, games = 0;
    for (auto& [j, lj] : losses) {
      if (i == j) continue;
      const int64_t ti = uploaded.count(i) ? uploaded.at(i) : 0;
      const int64_t tj = uploaded.count(j) ? uploaded.at(j) : 0;
      for (size_t b = 0; b < li.size() && b < lj.size(); ++b) {
        double a = li[b], c = lj[b];
        const double b0 = b < base.size() ? base[b] : 0.0;
        if (ti < tj) a -= eps * (b0 - a);
        if (tj < ti) c -= eps * (b0 - c);
        wins += a < c;
        ++games;
      }
    }
    out[i] = games ? static_cast<double>(wins) / static_cast<double>(games) : 0.0;
  }
  return out;
}

struct Score {
  double local = 0, global = 0;  // EMAs of the loss improvement
  double score() const { return 0.5 * local + 0.5 * global; }
};

}  // namespace

int run_validator(const NeuronArgs& a) {
  const NeuronHparams h = load_hparams(a.hparams_file);
  const std::string scoring = a.scoring;
  check(scoring == "loss-delta" || scoring == "win-rate" || scoring == "gradient-distance",
        "validator: unknown --scoring '{}' (loss-delta, win-rate or gradient-distance)", scoring);
  init_runtime(a.threads);
  check_neuron_device(a.device);
  if (h.codec == "sparseloco") return run_loco_validator(a, h);
  check(scoring != "gradient-distance" || h.codec == "slice",
        "validator: gradient-distance scoring needs the slice codec (hparams codec is {})",
        h.codec);
  auto chain = chain::open_chain(a.network);
  const auto hot = load_hotkey(a);
  const std::string hotkey = ss58_encode(hot->public_key());
  const std::string who = fmt::format("validator {}", hotkey.substr(0, 8));
  auto log = [&](int level, const std::string& m) { neuron_log(level, a.log_level, who, m); };
  Metrics metrics;
  auto metrics_server = start_metrics(a, metrics, [&](const std::string& m) { log(1, m); });
  const uint16_t my_uid = ensure_registered(*chain, a, *hot);
  std::unique_ptr<Bucket> bucket;
  if (!a.bucket.empty()) bucket = commit_bucket(*chain, a, *hot, "master:");

  const auto state_dir = neuron_state_dir(a, "validator", hotkey);
  const auto master_dir = state_dir / "master";
  const LlamaConfig config = preset(h.preset);
  Llama master(config);
  master->init_weights(h.init_seed);
  std::map<std::string, Score> scores;  // by hotkey: a replaced uid starts from zero
  uint64_t last_window = 0;
  double best_global = INFINITY;
  if (std::filesystem::exists(state_dir / "state.json")) {
    auto st = nlohmann::json::parse(read_file(state_dir / "state.json"), nullptr, false);
    check(st.is_object(), "{}: corrupt validator state", (state_dir / "state.json").string());
    last_window = st.value("window", uint64_t{0});
    best_global = st.value("best_global", INFINITY);
    for (auto& [hk, s] : st["scores"].items())
      scores[hk] = {s.value("local", 0.0), s.value("global", 0.0)};
    if (std::filesystem::exists(master_dir / "config.json"))
      master = load_model(master_dir, torch::kCPU);
    log(1, fmt::format("resumed at window {} with {} scores", last_window, scores.size()));
  }

  NeuronData data(a.dataset, h);
  const auto eval = data.held_out(h);
  // The shared init counts as the first published master: a merge that makes it worse (a
  // poisoned first window) is never published.
  if (!std::isfinite(best_global)) best_global = mean_loss(master, eval);
  const uint64_t first = a.start_window ? a.start_window : window_of(chain->block(), h);
  uint64_t done = 0;
  for (uint64_t w = std::max(first, last_window + 1); a.windows == 0 || done < a.windows;
       ++w, ++done) {
    try {
      wait_for_block(*chain, (w + 1) * h.blocks_per_window + h.grace_blocks, 0.1);
      Timer timer;
      const auto hash = chain->block_hash(w * h.blocks_per_window);
      const uint64_t key = slice_key(w, chain->block_hash((w + 1) * h.blocks_per_window - 1));
      GatherStats gs;
      // One read of the metagraph and commitments serves the gather and the scoring.
      const chain::Metagraph m = chain->metagraph(a.netuid);
      const auto commits = chain->commitments(a.netuid);
      auto updates = gather_updates(m, commits, h, config, w, {my_uid}, &gs);
      timer.lap("gather");
      for (auto& [uid, reason] : gs.rejected)
        log(1, fmt::format("window {}: uid {} scores 0: {}", w, uid, reason));

      auto global = data.batches(pages(global_pages_key(w, hash), h.eval_pages, data.configs), 0);
      const double base_global = mean_loss(master, global);
      const double base_eval = mean_loss(master, eval);
      nlohmann::json miners = nlohmann::json::object();
      auto ema = [&](double old, double x) { return h.score_ema * old + (1 - h.score_ema) * x; };
      // Per-batch global losses with each miner's slice written in (win-rate compares these).
      std::map<uint16_t, std::vector<double>> batch_losses;
      for (const auto& n : m.neurons) {
        auto c = commits.find(n.hotkey);
        if (n.uid == my_uid || c == commits.end() || c->second.rfind("master:", 0) == 0) continue;
        double d_local = 0, d_global = 0;
        std::string status = "ok";
        auto it = updates.find(n.uid);
        if (it == updates.end()) {
          auto r = gs.rejected.find(n.uid);
          status = r == gs.rejected.end() ? "missing" : r->second;
          if (scoring == "gradient-distance") d_local = d_global = -2;  // the worst distance
        } else if (scoring == "gradient-distance") {
          auto local =
              data.batches(pages(local_pages_key(w, n.uid), h.pages_per_window, data.configs),
                           h.max_micro_batches);
          d_local = d_global = gradient_agreement(master, local, it->second, key, h.compression);
        } else {
          auto local =
              data.batches(pages(local_pages_key(w, n.uid), h.pages_per_window, data.configs),
                           h.max_micro_batches);
          const double before_local = mean_loss(master, local);
          auto saved = apply_update(master, it->second, n.uid, h, key);
          const double after_local = mean_loss(master, local);
          std::vector<double> per_batch = batch_loss(master, global);
          restore_update(master, saved, h, key);
          double after_global = 0;
          for (double x : per_batch) after_global += x / static_cast<double>(per_batch.size());
          d_local = before_local - after_local;
          d_global = base_global - after_global;
          batch_losses[n.uid] = std::move(per_batch);
          if (!std::isfinite(d_local) || !std::isfinite(d_global))
            d_local = d_global = 0, status = "NonFinite loss", batch_losses.erase(n.uid);
        }
        Score& s = scores[n.hotkey];
        s.local = ema(s.local, d_local);
        s.global = ema(s.global, d_global);
        miners[std::to_string(n.uid)] = {{"hotkey", n.hotkey},
                                         {"local", d_local},
                                         {"global", d_global},
                                         {"score", s.score()},
                                         {"status", status}};
      }
      if (scoring == "win-rate") {
        // The pretraining subnet's rule: per batch the lower loss wins, the earlier upload gets an
        // epsilon advantage; the score is this window's win rate (no EMA).
        auto rates = win_rates(batch_losses, batch_loss(master, global), gs.uploaded_ms, 0.005);
        for (auto& [uid, j] : miners.items()) {
          auto r = rates.find(static_cast<uint16_t>(std::stoul(uid)));
          j["win_rate"] = r == rates.end() ? 0.0 : r->second;
          j["score"] = j["win_rate"];
        }
      }
      timer.lap("score");

      // The master takes the window's accepted updates (mean per slice position).
      if (!updates.empty()) {
        std::vector<PeerUpdate> peers;
        for (auto& [uid, u] : updates) peers.push_back({uid, &u});
        if (h.codec == "dct-topk")
          demo_merge(parameter_tensors(master), peers, h.dct_lr, h.weight_decay);
        else
          slice_merge(master->ordered_parameters(), peers, key, h.compression);
      }
      const double master_global = mean_loss(master, global);
      const double master_eval = mean_loss(master, eval);
      timer.lap("merge");

      // Weights: softmax of the scores of the miners seen this window.
      // win-rate: softmax(rate / 0.01) as the pretraining subnet; gradient-distance scores lie in
      // [-2, 0], so a temperature of 10; loss-delta: the hparam (its scores are loss deltas).
      const double temperature = scoring == "win-rate"            ? 1 / 0.01
                                 : scoring == "gradient-distance" ? 10.0
                                                                  : h.temperature;
      const std::string weights_status = set_softmax_weights(
          *chain, a.netuid, *hot, m.neurons.size(), miners, temperature,
          (w - first) % h.weights_interval == 0,
          [&](const std::string& msg) { log(1, fmt::format("window {}: {}", w, msg)); });
      timer.lap("weights");

      // Persist: master (dir swap), then the state that names the window (atomic rename).
      save_checkpoint(master_dir, master, default_tokenizer_path());
      bool published = false;
      if (master_eval < best_global) {
        best_global = master_eval;
        if (bucket) {
          bucket->put("master/config.json", read_file(master_dir / "config.json"));
          bucket->put("master/model.safetensors", read_file(master_dir / "model.safetensors"));
          published = true;
        }
      }
      nlohmann::json st = {
          {"window", w}, {"best_global", best_global}, {"scores", nlohmann::json::object()}};
      for (auto& [hk, s] : scores) st["scores"][hk] = {{"local", s.local}, {"global", s.global}};
      write_file_atomic(state_dir / "state.json", st.dump());
      timer.lap("persist");
      nlohmann::json line = {{"window", w},
                             {"block", chain->block()},
                             {"master_loss", master_eval},
                             {"base_loss", base_eval},
                             {"global_loss", master_global},
                             {"accepted", updates.size()},
                             {"bytes_down", gs.bytes},
                             {"weights", weights_status},
                             {"published", published},
                             {"miners", miners},
                             {"seconds", timer.laps()},
                             {"verify_seconds", gs.verify_seconds}};
      append_line(state_dir / "metrics.jsonl", line.dump());
      record_gather(metrics, gs);
      metrics.set("bistro_window", static_cast<double>(w));
      metrics.set("bistro_loss", master_eval);
      metrics.add("bistro_updates_scored_total", static_cast<double>(updates.size()));
      for (auto& [uid, j] : miners.items()) {
        metrics.set("bistro_score", j["score"].get<double>(), "uid=\"" + uid + "\"");
        metrics.set("bistro_weight", j["weight"].get<double>(), "uid=\"" + uid + "\"");
      }
      log(1,
          fmt::format("window {}: master loss {:.4f} -> {:.4f}, {} accepted, weights {}, {:.1f}s",
                      w, base_eval, master_eval, updates.size(), weights_status, timer.total()));
    } catch (const std::exception& e) {
      // A bad window (a chain or bucket failure) is logged and skipped; the neuron keeps running.
      log(0, fmt::format("window {} failed: {}; continuing with the next window", w, e.what()));
    }
  }
  return 0;
}

}  // namespace bistro
