// The v1 validator: once a window's upload deadline has passed, fetch every miner's update, verify
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
#include "bistro/core/metrics.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/protocol/node.hpp"
#include "bistro/protocol/peers.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/v1/v1.hpp"

namespace bistro::v1 {
namespace {

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

// The v1 validator's window: everything it learns from it.
struct Window {
  uint64_t w = 0, key = 0;
  chain::Metagraph m;
  std::map<std::string, std::string> commits;
  std::map<uint16_t, Update> updates;
  GatherStats gs;
  std::vector<Batch> global;
  double base_global = 0, base_eval = 0, master_global = 0, master_eval = 0;
  nlohmann::json miners = nlohmann::json::object();
  // Per-batch global losses with each miner's update written in (win-rate compares these).
  std::map<uint16_t, std::vector<double>> batch_losses;
  std::string weights_status;
  bool published = false;
  Timer timer;
};

class Validator : Node {
 public:
  Validator(const NeuronArgs& a, const NeuronHparams& h);
  int run();

 private:
  void resume();
  void gather(Window& x);
  // One miner's (d_local, d_global) and status, with its update applied to the master alone.
  void score_one(Window& x, const chain::Neuron& n);
  void score(Window& x);
  void merge(Window& x);
  void weights(Window& x);
  void persist(Window& x);
  void report(Window& x);

  const NeuronHparams& h_;
  std::filesystem::path master_dir_;
  LlamaConfig config_;
  Llama master_;
  std::map<std::string, Score> scores_;  // by hotkey: a replaced uid starts from zero
  uint64_t last_window_ = 0, first_ = 0;
  double best_global_ = INFINITY;
  std::unique_ptr<NeuronData> data_;
  std::vector<Batch> eval_;
};

Validator::Validator(const NeuronArgs& a, const NeuronHparams& h)
    : Node(a, "validator", "master:", ""), h_(h), config_(preset(h.preset)), master_(config_) {
  master_dir_ = state_dir_ / "master";
  master_->init_weights(h.init_seed);
  resume();
  data_ = std::make_unique<NeuronData>(a.dataset, h);
  eval_ = data_->held_out(h);
  // The shared init counts as the first published master: a merge that makes it worse (a
  // poisoned first window) is never published.
  if (!std::isfinite(best_global_)) best_global_ = mean_loss(master_, eval_);
}

void Validator::resume() {
  if (!std::filesystem::exists(state_dir_ / "state.json")) return;
  auto st = nlohmann::json::parse(read_file(state_dir_ / "state.json"), nullptr, false);
  check(st.is_object(), "{}: corrupt validator state", (state_dir_ / "state.json").string());
  last_window_ = st.value("window", uint64_t{0});
  best_global_ = st.value("best_global", INFINITY);
  for (auto& [hk, s] : st["scores"].items())
    scores_[hk] = {s.value("local", 0.0), s.value("global", 0.0)};
  if (std::filesystem::exists(master_dir_ / "config.json"))
    master_ = load_model(master_dir_, torch::kCPU);
  log(1, fmt::format("resumed at window {} with {} scores", last_window_, scores_.size()));
}

void Validator::gather(Window& x) {
  const auto hash = chain_->block_hash(x.w * h_.blocks_per_window);
  x.key = slice_key(x.w, chain_->block_hash((x.w + 1) * h_.blocks_per_window - 1));
  // One read of the metagraph and commitments serves the gather and the scoring.
  x.m = chain_->metagraph(a_.netuid);
  x.commits = chain_->commitments(a_.netuid);
  x.updates = gather_updates(x.m, x.commits, h_, config_, x.w, {uid_}, &x.gs);
  x.timer.lap("gather");
  for (auto& [uid, reason] : x.gs.rejected)
    log(1, fmt::format("window {}: uid {} scores 0: {}", x.w, uid, reason));
  x.global = data_->batches(pages(global_pages_key(x.w, hash), h_.eval_pages, data_->configs), 0);
  x.base_global = mean_loss(master_, x.global);
  x.base_eval = mean_loss(master_, eval_);
}

void Validator::score_one(Window& x, const chain::Neuron& n) {
  double d_local = 0, d_global = 0;
  std::string status = "ok";
  auto it = x.updates.find(n.uid);
  const bool distance = a_.scoring == "gradient-distance";
  if (it == x.updates.end()) {
    auto r = x.gs.rejected.find(n.uid);
    status = r == x.gs.rejected.end() ? "missing" : r->second;
    if (distance) d_local = d_global = -2;  // the worst distance
  } else {
    auto local =
        data_->batches(pages(local_pages_key(x.w, n.uid), h_.pages_per_window, data_->configs),
                       h_.max_micro_batches);
    if (distance) {
      d_local = d_global = gradient_agreement(master_, local, it->second, x.key, h_.compression);
    } else {
      const double before_local = mean_loss(master_, local);
      auto saved = apply_update(master_, it->second, n.uid, h_, x.key);
      const double after_local = mean_loss(master_, local);
      std::vector<double> per_batch = batch_loss(master_, x.global);
      restore_update(master_, saved, h_, x.key);
      double after_global = 0;
      for (double v : per_batch) after_global += v / static_cast<double>(per_batch.size());
      d_local = before_local - after_local;
      d_global = x.base_global - after_global;
      x.batch_losses[n.uid] = std::move(per_batch);
      if (!std::isfinite(d_local) || !std::isfinite(d_global))
        d_local = d_global = 0, status = "NonFinite loss", x.batch_losses.erase(n.uid);
    }
  }
  auto ema = [&](double old, double v) { return h_.score_ema * old + (1 - h_.score_ema) * v; };
  Score& s = scores_[n.hotkey];
  s.local = ema(s.local, d_local);
  s.global = ema(s.global, d_global);
  x.miners[std::to_string(n.uid)] = {{"hotkey", n.hotkey},
                                     {"local", d_local},
                                     {"global", d_global},
                                     {"score", s.score()},
                                     {"status", status}};
}

void Validator::score(Window& x) {
  for (const auto& n : x.m.neurons) {
    auto c = x.commits.find(n.hotkey);
    if (n.uid == uid_ || c == x.commits.end() || c->second.rfind("master:", 0) == 0) continue;
    score_one(x, n);
  }
  if (a_.scoring == "win-rate") {
    // The pretraining subnet's rule: per batch the lower loss wins, the earlier upload gets an
    // epsilon advantage; the score is this window's win rate (no EMA).
    auto rates = win_rates(x.batch_losses, batch_loss(master_, x.global), x.gs.uploaded_ms, 0.005);
    for (auto& [uid, j] : x.miners.items()) {
      auto r = rates.find(static_cast<uint16_t>(std::stoul(uid)));
      j["win_rate"] = r == rates.end() ? 0.0 : r->second;
      j["score"] = j["win_rate"];
    }
  }
  x.timer.lap("score");
}

void Validator::merge(Window& x) {
  // The master takes the window's accepted updates (mean per slice position).
  if (!x.updates.empty()) {
    std::vector<PeerUpdate> peers;
    for (auto& [uid, u] : x.updates) peers.push_back({uid, &u});
    if (h_.codec == "dct-topk")
      demo_merge(parameter_tensors(master_), peers, h_.dct_lr, h_.weight_decay);
    else
      slice_merge(master_->ordered_parameters(), peers, x.key, h_.compression);
  }
  x.master_global = mean_loss(master_, x.global);
  x.master_eval = mean_loss(master_, eval_);
  x.timer.lap("merge");
}

void Validator::weights(Window& x) {
  // Weights: softmax of the scores of the miners seen this window. win-rate: softmax(rate /
  // 0.01) as the pretraining subnet; gradient-distance scores lie in [-2, 0], so a temperature
  // of 10; loss-delta: the hparam (its scores are loss deltas).
  const double temperature = a_.scoring == "win-rate"            ? 1 / 0.01
                             : a_.scoring == "gradient-distance" ? 10.0
                                                                 : h_.temperature;
  x.weights_status = set_softmax_weights(
      *chain_, a_.netuid, *hot_, x.m.neurons.size(), x.miners, temperature,
      (x.w - first_) % h_.weights_interval == 0,
      [&](const std::string& msg) { log(1, fmt::format("window {}: {}", x.w, msg)); });
  x.timer.lap("weights");
}

void Validator::persist(Window& x) {
  // The master (a directory swap), then the state that names the window (an atomic rename).
  save_checkpoint(master_dir_, master_, default_tokenizer_path());
  if (x.master_eval < best_global_) {
    best_global_ = x.master_eval;
    if (bucket_) {
      bucket_->put("master/config.json", read_file(master_dir_ / "config.json"));
      bucket_->put("master/model.safetensors", read_file(master_dir_ / "model.safetensors"));
      x.published = true;
    }
  }
  nlohmann::json st = {
      {"window", x.w}, {"best_global", best_global_}, {"scores", nlohmann::json::object()}};
  for (auto& [hk, s] : scores_) st["scores"][hk] = {{"local", s.local}, {"global", s.global}};
  write_file_atomic(state_dir_ / "state.json", st.dump());
  x.timer.lap("persist");
}

void Validator::report(Window& x) {
  nlohmann::json line = {{"window", x.w},
                         {"block", chain_->block()},
                         {"master_loss", x.master_eval},
                         {"base_loss", x.base_eval},
                         {"global_loss", x.master_global},
                         {"accepted", x.updates.size()},
                         {"bytes_down", x.gs.bytes},
                         {"weights", x.weights_status},
                         {"published", x.published},
                         {"miners", x.miners},
                         {"seconds", x.timer.laps()},
                         {"verify_seconds", x.gs.verify_seconds}};
  append_line(state_dir_ / "metrics.jsonl", line.dump());
  record_gather(metrics_, x.gs);
  metrics_.set("bistro_window", static_cast<double>(x.w));
  metrics_.set("bistro_loss", x.master_eval);
  metrics_.add("bistro_updates_scored_total", static_cast<double>(x.updates.size()));
  for (auto& [uid, j] : x.miners.items()) {
    metrics_.set("bistro_score", j["score"].get<double>(), "uid=\"" + uid + "\"");
    metrics_.set("bistro_weight", j["weight"].get<double>(), "uid=\"" + uid + "\"");
  }
  log(1,
      fmt::format("window {}: master loss {:.4f} -> {:.4f}, {} accepted, weights {}, {:.1f}s", x.w,
                  x.base_eval, x.master_eval, x.updates.size(), x.weights_status, x.timer.total()));
}

int Validator::run() {
  first_ = a_.start_window ? a_.start_window : window_of(chain_->block(), h_);
  uint64_t done = 0;
  for (uint64_t w = std::max(first_, last_window_ + 1); a_.windows == 0 || done < a_.windows;
       ++w, ++done) {
    try {
      wait_for_block(*chain_, window_deadline_block(w, h_), 0.1);
      Window x;
      x.w = w;
      gather(x);
      score(x);
      merge(x);
      weights(x);
      persist(x);
      report(x);
    } catch (const std::exception& e) {
      // A bad window (a chain or bucket failure) is logged and skipped; the neuron keeps running.
      log(0, fmt::format("window {} failed: {}; continuing with the next window", w, e.what()));
    }
  }
  return 0;
}

}  // namespace

int run_validator(const NeuronArgs& a, const NeuronHparams& h) {
  return Validator(a, h).run();
}

}  // namespace bistro::v1
