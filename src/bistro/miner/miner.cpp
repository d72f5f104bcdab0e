// The protocol v2 miner (codec sparseloco). Each window w:
//   0. wait     for record(w-1), which the validator publishes as soon as every miner uploaded,
//               and for its finality, stepping meanwhile from the lead's published record, or
//               before it is out from window w-1's end (waiting.cpp: the progress moves onto
//               theta_w when the final record lands)
//   1. sync     theta_w = outer_step(theta_{w-1}, record(w-1)) from the master validator's bucket
//               (catch_up.hpp: a late start, a restart or a hash mismatch reloads the checkpoint)
//   2. inner    H AdamW steps from theta_w on the pages of (w, uid)          (inner_loop.hpp)
//   3. encode   e <- beta e + (theta_w - theta_local); top-k, 2-bit; e <- e - sent
//   4. upload   update(w) to this miner's bucket, before the window ends
//   5. persist  theta_w, AdamW, e and the window, atomically (a SIGKILL loses at most a window)
// A miner may start window w as soon as record(w - 1) exists, before w's first block: its pages
// are known in advance and its upload is due only when w ends, so the window goes to the inner
// steps and a slow window is made up in the next.
// --behaviour KIND makes it one of the cheats of cheats.hpp instead (for the localnet and the
// tests of the validator's gauntlet); everything else about it stays the real miner.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "bistro/chain/open_chain.hpp"
#include "bistro/cheats/cheats.hpp"
#include "bistro/compress/error_feedback.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/metrics.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/miner/loco_miner.hpp"
#include "bistro/miner/miner.hpp"
#include "bistro/miner/ranks.hpp"
#include "bistro/miner/window_batches.hpp"
#include "bistro/protocol/arrivals.hpp"
#include "bistro/protocol/catch_up.hpp"
#include "bistro/protocol/node.hpp"
#include "bistro/protocol/node_ranks.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/protocol/peers.hpp"
#include "bistro/runtime/distributed.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/train/checkpoint.hpp"

namespace bistro {

void MinerState::save(uint64_t window, uint64_t first, Llama& shared, Trainer& trainer,
                      const ErrorFeedback& ef) const {
  save_checkpoint(dir / "shared", shared, default_tokenizer_path(), &trainer.optimizer());
  ef.save(dir / "error_feedback.safetensors");
  write_file_atomic(dir / "state.json",
                    nlohmann::json{{"window", window},
                                   {"first", first},
                                   {"params_hash", params_hash(parameter_tensors(shared))}}
                        .dump());
}
std::optional<uint64_t> MinerState::first() const {
  try {
    auto st = nlohmann::json::parse(read_file(dir / "state.json"), nullptr, false);
    if (st.is_object() && st["first"].is_number_unsigned()) return st["first"].get<uint64_t>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}
std::optional<uint64_t> MinerState::load(Llama& shared, Trainer& trainer, ErrorFeedback& ef,
                                         const std::function<void(const std::string&)>& log) const {
  if (!std::filesystem::exists(dir / "state.json")) return std::nullopt;
  try {
    auto st = nlohmann::json::parse(read_file(dir / "state.json"), nullptr, false);
    check(st.is_object() && st["window"].is_number_unsigned() && st["params_hash"].is_string(),
          "{}: not a miner state", (dir / "state.json").string());
    load_weights(shared, dir / "shared" / "model.safetensors");
    check(load_optimizer(dir / "shared", trainer.model(), trainer.optimizer()),
          "{}: no optimizer state", (dir / "shared").string());
    ef.load(dir / "error_feedback.safetensors");
    if (params_hash(parameter_tensors(shared)) != st["params_hash"].get<std::string>()) {
      log("the saved shared model does not match its state (killed mid-write?); using the "
          "master's checkpoint");
      return std::nullopt;
    }
    return st["window"].get<uint64_t>();
  } catch (const std::exception& e) {
    log(fmt::format("cannot resume from {}: {}; using the master's checkpoint", dir.string(),
                    e.what()));
    return std::nullopt;
  }
}

namespace {

// The model the inner steps train, on the compute device (theta stays on the CPU, where the
// outer step, the hash and the error feedback are).
Trainer inner_trainer(const NeuronHparams& h, const Compute& c) {
  Llama work(preset(h.preset));
  work->init_weights(h.init_seed);
  work->to(c.device);
  work->set_bf16(c.bf16);
  return Trainer(std::move(work), inner_train_options(h));
}

}  // namespace

LocoMiner::LocoMiner(const NeuronArgs& a, const NeuronHparams& h, runtime::Ranks& group)
    : Node(a, "miner", "", "miner: --bucket is required (where this miner publishes its updates)"),
      h_(h),
      kind_(parse_behaviour(a.behaviour)),
      config_(preset(h.preset)),
      shared_(config_),
      trainer_(inner_trainer(h, compute_)),
      ranks_(group, trainer_) {
  ranks_.log = [this](const std::string& m) { log(0, m); };
  log(1, fmt::format("uid {} on subnet {}, publishing to {} (sparseloco, H = {}, {}{}{})", uid_,
                     a.netuid, a.bucket, h.inner_steps, compute_.describe(),
                     group.size() > 1 ? fmt::format(", {} ranks", group.size()) : "",
                     kind_ == Behaviour::Honest ? "" : std::string(", behaviour ") + a.behaviour));
  shared_->init_weights(h.init_seed);
  ef_ = std::make_unique<ErrorFeedback>(
      shared_->ordered_parameters(),
      ErrorFeedbackOptions{.beta = h.ef_beta, .k = h.topk, .chunk_cap = h.chunk_cap});
  theta_ = parameter_tensors(shared_);
  local_ = parameter_tensors(trainer_.model());
  state_.dir = state_dir_;
  at_ = state_.load(shared_, trainer_, *ef_, [&](const std::string& m) { log(1, m); });
  if (at_) log(1, fmt::format("resumed: shared model at window {}", *at_));
  sync_ = std::make_unique<ModelSync>(*chain_, a.netuid, h, config_, state_dir_ / "sync",
                                      [&](int level, const std::string& m) { log(level, m); });
  data_ = std::make_unique<NeuronData>(a.dataset, h);
  trains_ = behaviour_trains(kind_) && !(kind_ == Behaviour::Sybil && a.copy_uid >= 0);
}

uint64_t LocoMiner::pages_key(uint64_t window) const {
  const uint64_t key = local_pages_key(window, uid_);
  return kind_ == Behaviour::DataCheat ? rng::derive(key, "data-cheat") : key;  // not its pages
}

std::vector<Batch> LocoMiner::load(uint64_t window) {
  return data_->batches(pages(pages_key(window), h_.pages_per_window, data_->configs),
                        h_.max_micro_batches);
}

std::optional<Update> LocoMiner::peer_update(uint64_t w, uint64_t until) {
  const auto m = chain_->metagraph(a_.netuid);
  const auto commits = chain_->commitments(a_.netuid);
  const chain::Neuron* victim = nullptr;
  for (const auto& n : m.neurons) {
    auto it = commits.find(n.hotkey);
    if (n.uid == uid_ || it == commits.end() || it->second.rfind("master:", 0) == 0) continue;
    if (a_.copy_uid >= 0 ? n.uid == a_.copy_uid : !victim || n.uid < victim->uid) victim = &n;
  }
  if (!victim) return std::nullopt;
  auto b = open_bucket(commits.at(victim->hotkey));
  const auto key = update_key(w, victim->uid, victim->hotkey);
  while (chain_->block() < until) {
    if (b->head(key))
      return decode_update(b->get(key),
                           update_expectation(h_, config_, w, victim->uid, victim->hotkey), key);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

uint64_t LocoMiner::start() {
  // --windows N ends the run at window first + N, first being where the first run began (kept
  // in the state, so a restart ends where the first run would have). A miner without a state
  // starts from the master's checkpoint, at its window when that is ahead.
  const auto saved_first = state_.first();
  first_ = a_.start_window ? a_.start_window : saved_first.value_or(window_of(chain_->block(), h_));
  if (at_) return std::max(first_, *at_ + 1);  // theta_at from the state: window at was trained
  std::optional<uint64_t> c;
  auto pinged = std::chrono::steady_clock::now();
  for (bool logged = false; !c; std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
    if (std::chrono::steady_clock::now() - pinged > std::chrono::seconds(5)) {
      ranks_.tell(RankOp::Ping);  // the other ranks wait on rank 0: within their timeout
      pinged = std::chrono::steady_clock::now();
    }
    try {
      c = sync_->load_latest_checkpoint(shared_);
    } catch (const std::exception& e) {
      if (!logged) log(1, fmt::format("waiting for the master's checkpoint: {}", e.what()));
      logged = true;
    }
  }
  log(1, fmt::format("starting from the master's checkpoint of window {}", *c));
  at_ = c;
  if (!a_.start_window && !saved_first) first_ = std::max(first_, *c);
  return std::max(first_, *c);  // theta_c from a checkpoint: window c is still to train
}

bool LocoMiner::in_time(const MinerWindow& x, double per_step) const {
  const double spent =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - x.started).count();
  return spent + 1.5 * per_step < x.time_left;
}

const Batch& LocoMiner::batch(MinerWindow& x, int64_t i) {
  return x.batches->at(ranks_.index(i, x.batches->own()));
}

void LocoMiner::start_local(bool full) {
  copy_parameters(local_, theta_);
  ranks_.tell(RankOp::SetParams, 0, 0, full || !ranks_synced_);
  ranks_synced_ = true;
}

void LocoMiner::train(MinerWindow& x) {
  InnerLoopPlan plan;
  plan.max_steps = h_.max_inner_steps - x.inner.steps;
  plan.batch = [&](int64_t i) -> const Batch& { return batch(x, x.used + i); };
  plan.in_time = [&](double per_step) { return in_time(x, per_step); };
  plan.before_step = [&](int64_t i) { ranks_.tell(RankOp::Step, x.batches->key(), x.used + i); };
  const auto rest = inner_loop(trainer_, plan);
  x.inner.loss = (x.inner.loss * static_cast<double>(x.inner.steps) +
                  rest.loss * static_cast<double>(rest.steps)) /
                 static_cast<double>(std::max<int64_t>(1, x.inner.steps + rest.steps));
  x.inner.steps += rest.steps, x.inner.tokens += rest.tokens;
  if (x.inner.steps < h_.inner_steps)
    log(1, fmt::format("window {}: {} of {} inner steps fit before the deadline", x.w,
                       x.inner.steps, h_.inner_steps));
}

std::string LocoMiner::encode(MinerWindow& x) {
  const uint64_t w = x.w;
  if (kind_ == Behaviour::Garbage) {
    std::string bytes(4096, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + w) & 0xff);
    return bytes;
  }
  Update u = ef_->encode(pseudo_gradient(theta_, local_));  // zeros when it did not train
  const bool copies = kind_ == Behaviour::Copycat || kind_ == Behaviour::LateCopycat ||
                      (kind_ == Behaviour::Sybil && a_.copy_uid >= 0);
  const bool noise = kind_ == Behaviour::Noise ||
                     (kind_ == Behaviour::NegativeExploit && w >= first_ + kNegativeExploitZeros);
  if (copies || noise) {
    // The late copycat waits until two blocks before the deadline, then takes what is there.
    if (kind_ == Behaviour::LateCopycat) wait_for_block(*chain_, x.deadline - 2, 0.05);
    if (auto peer = peer_update(w, x.deadline - 1)) {
      u = noise ? noise_update(parameter_specs(config_), h_.topk, h_.chunk_cap, update_rms(*peer),
                               rng::derive(w, uid_))
                : std::move(*peer);
    } else {
      log(1, fmt::format("window {}: no peer update to {}", w, noise ? "match" : "copy"));
    }
  }
  if (kind_ == Behaviour::Replay && w > 0) {  // a peer's update of the previous window
    if (auto peer = peer_update(w - 1, chain_->block() + 1)) u = std::move(*peer);
  }
  poison_as(kind_, u);
  u.window = w;
  u.uid = uid_;
  u.config_hash = config_hash(config_);
  return encode_update(std::move(u), *hot_);
}

void LocoMiner::report(MinerWindow& x) {
  const double total = x.timer.total();
  // Time in inner steps, those taken while record(w-1) was not out included.
  const double inner_s = x.timer.laps().value("inner", 0.0);
  const double share = total > 0 ? inner_s / total : 0.0;
  nlohmann::json line = {{"window", x.w},
                         {"uid", uid_},
                         {"loss", trains_ ? x.inner.loss : NAN},
                         {"behaviour", a_.behaviour},
                         {"tokens", x.inner.tokens},
                         {"inner_steps", x.inner.steps},
                         {"waiting_steps", x.waiting_steps},
                         {"dropped_steps", x.dropped_steps},
                         {"bytes_up", x.bytes.size()},
                         {"params_hash", x.theta_hash},
                         {"inner_share", share},
                         {"record_requests", sync_->record_requests() - x.requests_before},
                         {"seconds", x.timer.laps()}};
  append_line(state_dir_ / "metrics.jsonl", line.dump());
  metrics_.set("bistro_window", static_cast<double>(x.w));
  if (trains_) metrics_.set("bistro_loss", x.inner.loss);
  metrics_.set("bistro_inner_share", share);
  metrics_.add("bistro_bytes_up_total", static_cast<double>(x.bytes.size()));
  log(1, fmt::format("window {}: loss {:.4f} over {} inner steps, sent {} bytes, theta {}, "
                     "{:.0f}% of {:.1f}s in inner steps",
                     x.w, x.inner.loss, x.inner.steps, x.bytes.size(), x.theta_hash.substr(0, 12),
                     100 * share, total));
}

void LocoMiner::window(uint64_t w) {
  MinerWindow x;
  x.w = w;
  x.requests_before = sync_->record_requests();
  if (window_of(chain_->block(), h_) > w) {
    log(1, fmt::format("window {} already over; skipping", w));
    return;
  }
  x.deadline = window_deadline_block(w, h_);
  // 1. sync: theta_w, by the records up to w - 1. One window behind (record(w-1) not out yet),
  // an honest miner gathers its first step's gradients meanwhile; further behind, it catches up
  // first.
  const bool overlap = trains_ && at_ && *at_ + 1 == w;
  if (!overlap) {
    at_ = sync_->catch_up(shared_, at_, w, window_start_block(w + 1, h_));
    if (!at_ || *at_ != w) {
      log(0, fmt::format("window {}: not in sync with the master (at {}); skipping the window", w,
                         at_ ? std::to_string(*at_) : "nothing"));
      return;
    }
  }
  x.timer.lap("sync");
  std::vector<Batch> first;
  if (prefetch_.valid() && prefetched_ == w) {
    first = prefetch_.get();
  } else {
    if (prefetch_.valid()) prefetch_.wait();  // never two readers of the dataset at once
    first = load(w);
  }
  x.batches = std::make_unique<WindowBatches>(*data_, h_, pages_key(w), std::move(first));
  x.timer.lap("pages");
  // 2. inner loop from theta_w, cut short rather than miss the upload deadline (the validator
  // closes the window at block (w + 1) bpw + grace): until the deadline by the chain's own clock
  // (chain.hpp, seconds_until), and at most a window and its grace, so a miner that starts early
  // does not send an update many windows' work large.
  if (!overlap) start_local(false);  // (overlapping, train_while_waiting moves it to theta_w)
  x.started = std::chrono::steady_clock::now();
  x.time_left = std::min(
      chain_->seconds_until(x.deadline),
      static_cast<double>(h_.blocks_per_window + h_.grace_blocks) * chain_->seconds_per_block());
  if (overlap && !train_while_waiting(x)) return;
  if (trains_) train(x), local_at_ = w;
  x.timer.lap("inner");
  x.theta_hash = params_hash(theta_);
  // 3. encode the pseudo-gradient with error feedback; 4. upload (the late cheat: one block after
  // the window closed); 5. persist.
  x.bytes = encode(x);
  x.timer.lap("encode");
  if (kind_ == Behaviour::Late) wait_for_block(*chain_, x.deadline + 1, 0.05);
  bucket_->put(update_key(w, uid_, hotkey_), x.bytes);
  x.timer.lap("upload");
  prefetched_ = w + 1;
  prefetch_ = std::async(std::launch::async, [this, w] { return load(w + 1); });
  state_.save(w, first_, shared_, trainer_, *ef_);
  x.timer.lap("checkpoint");
  report(x);
}

int LocoMiner::run() {
  const uint64_t from = start();
  const uint64_t end = a_.windows ? first_ + a_.windows : UINT64_MAX;
  for (uint64_t w = from; w < end; ++w) {
    try {
      window(w);
    } catch (const std::exception& e) {
      // A bad window (a chain or bucket failure) is logged and skipped; the neuron keeps running.
      log(0,
          fmt::format("window {} failed: {}; continuing with the next window", w, error_line(e)));
      ranks_.check_alive();  // a lost rank: go on alone
    }
  }
  ranks_.tell(RankOp::Stop);
  return 0;
}

namespace {

// Ranks 1..N-1 of a miner: its trainer and data only, following rank 0 (ranks.hpp).
int follow_miner(const NeuronArgs& a, const NeuronHparams& h, runtime::Ranks& group) {
  const Compute compute = rank_compute(a);
  Trainer trainer = inner_trainer(h, compute);
  NeuronData data(a.dataset, h);
  MinerRanks ranks(group, trainer);
  std::unique_ptr<WindowBatches> current;
  ranks.follow([&](uint64_t key, int64_t index) -> const Batch& {
    if (!current || current->key() != key) current = std::make_unique<WindowBatches>(data, h, key);
    return current->at(index);
  });
  return 0;
}

}  // namespace

int run_loco_miner(const NeuronArgs& a, const NeuronHparams& h) {
  // Ranks: torchrun's environment, or --ranks N spawned here; one hotkey and uid for all.
  NodeRanks r(a, h, "miner");
  if (r.group->rank() != 0) return follow_miner(a, h, *r.group);
  const int rc = LocoMiner(a, h, *r.group).run();
  r.finish();
  return rc;
}

}  // namespace bistro
