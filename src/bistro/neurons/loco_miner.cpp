// The protocol v2 miner (codec sparseloco). Each window w:
//   0. wait     for record(w-1), which the validator publishes as soon as every miner uploaded
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

#include <chrono>
#include <cmath>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "bistro/chain/open_chain.hpp"
#include "bistro/compress/error_feedback.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/model/checkpoint.hpp"
#include "bistro/neurons/arrivals.hpp"
#include "bistro/neurons/catch_up.hpp"
#include "bistro/neurons/cheats.hpp"
#include "bistro/neurons/inner_loop.hpp"
#include "bistro/neurons/outer_step.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/ops/metrics.hpp"
#include "bistro/storage/s3_bucket.hpp"

namespace bistro {
namespace {

// What a restarted miner needs: theta at the start of its last window, its own AdamW and
// error-feedback state. `state.json` is written last and names the hash of the theta file, so a
// kill between the writes is detected (and the master's checkpoint used instead).
struct MinerState {
  std::filesystem::path dir;
  // theta_w and AdamW's moments in one checkpoint directory (the local weights are not kept:
  // every window starts them from theta), the error feedback beside it, state.json last.
  void save(uint64_t window, uint64_t first, Llama& shared, Trainer& trainer,
            const ErrorFeedback& ef) const {
    save_checkpoint(dir / "shared", shared, default_tokenizer_path(), &trainer.optimizer());
    ef.save(dir / "error_feedback.safetensors");
    write_file_atomic(dir / "state.json",
                      nlohmann::json{{"window", window},
                                     {"first", first},
                                     {"params_hash", params_hash(parameter_tensors(shared))}}
                          .dump());
  }
  // The window the run began at (--windows counts from it), when a state says so.
  std::optional<uint64_t> first() const {
    try {
      auto st = nlohmann::json::parse(read_file(dir / "state.json"), nullptr, false);
      if (st.is_object() && st["first"].is_number_unsigned()) return st["first"].get<uint64_t>();
    } catch (const std::exception&) {
    }
    return std::nullopt;
  }
  // The window theta is at, or nullopt when there is no usable state.
  std::optional<uint64_t> load(Llama& shared, Trainer& trainer, ErrorFeedback& ef,
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
};

}  // namespace

int run_loco_miner(const NeuronArgs& a, const NeuronHparams& h) {
  const Behaviour kind = parse_behaviour(a.behaviour);
  auto chain = chain::open_chain(a.network);
  const auto hot = load_hotkey(a);
  const std::string hotkey = ss58_encode(hot->public_key());
  const std::string who = fmt::format("miner {}", hotkey.substr(0, 8));
  auto log = [&](int level, const std::string& m) { neuron_log(level, a.log_level, who, m); };

  Metrics metrics;
  auto metrics_server = start_metrics(a, metrics, [&](const std::string& m) { log(1, m); });
  const uint16_t uid = ensure_registered(*chain, a, *hot);
  check(!a.bucket.empty(), "miner: --bucket is required (where this miner publishes its updates)");
  auto bucket = commit_bucket(*chain, a, *hot, "");
  log(1, fmt::format("uid {} on subnet {}, publishing to {} (sparseloco, H = {}{})", uid, a.netuid,
                     a.bucket, h.inner_steps,
                     kind == Behaviour::Honest ? "" : std::string(", behaviour ") + a.behaviour));

  const auto state_dir = neuron_state_dir(a, "miner", hotkey);
  const LlamaConfig config = preset(h.preset);
  Llama shared(config);  // theta: the model every node holds
  shared->init_weights(h.init_seed);
  Llama work(config);
  work->init_weights(h.init_seed);
  Trainer trainer(std::move(work), inner_train_options(h));
  ErrorFeedback ef(shared->ordered_parameters(),
                   {.beta = h.ef_beta, .k = h.topk, .chunk_cap = h.chunk_cap});
  const auto theta = parameter_tensors(shared);
  const auto local = parameter_tensors(trainer.model());
  const MinerState state{state_dir};
  std::optional<uint64_t> at =
      state.load(shared, trainer, ef, [&](const std::string& m) { log(1, m); });
  if (at) log(1, fmt::format("resumed: shared model at window {}", *at));
  ModelSync sync(*chain, a.netuid, h, config, state_dir / "sync",
                 [&](int level, const std::string& m) { log(level, m); });

  NeuronData data(a.dataset, h);
  auto pages_key = [&](uint64_t window) {
    const uint64_t key = local_pages_key(window, uid);
    return kind == Behaviour::DataCheat ? rng::derive(key, "data-cheat") : key;  // not its pages
  };
  auto load = [&](uint64_t window) {
    return data.batches(pages(pages_key(window), h.pages_per_window, data.configs),
                        h.max_micro_batches);
  };
  // The cheats that feed on a peer: the update of window w of --copy-uid (default: the lowest
  // other miner's uid), polled until it appears or the chain reaches `until`.
  auto peer_update = [&](uint64_t w, uint64_t until) -> std::optional<Update> {
    const auto m = chain->metagraph(a.netuid);
    const auto commits = chain->commitments(a.netuid);
    const chain::Neuron* victim = nullptr;
    for (const auto& n : m.neurons) {
      auto it = commits.find(n.hotkey);
      if (n.uid == uid || it == commits.end() || it->second.rfind("master:", 0) == 0) continue;
      if (a.copy_uid >= 0 ? n.uid == a.copy_uid : !victim || n.uid < victim->uid) victim = &n;
    }
    if (!victim) return std::nullopt;
    auto b = open_bucket(commits.at(victim->hotkey));
    const auto key = update_key(w, victim->uid, victim->hotkey);
    while (chain->block() < until) {
      if (b->head(key))
        return decode_update(b->get(key),
                             update_expectation(h, config, w, victim->uid, victim->hotkey), key);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  };
  std::future<std::vector<Batch>> prefetch;
  uint64_t prefetched = 0;
  // --windows N ends the run at window first + N, first being where the first run began (kept
  // in the state, so a restart ends where the first run would have). A miner without a state
  // starts from the master's checkpoint, at its window when that is ahead.
  const auto saved_first = state.first();
  uint64_t first =
      a.start_window ? a.start_window : saved_first.value_or(window_of(chain->block(), h));
  bool from_checkpoint = false;
  if (!at) {
    std::optional<uint64_t> c;
    for (bool logged = false; !c; std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
      try {
        c = sync.load_latest_checkpoint(shared);
      } catch (const std::exception& e) {
        if (!logged) log(1, fmt::format("waiting for the master's checkpoint: {}", e.what()));
        logged = true;
      }
    }
    log(1, fmt::format("starting from the master's checkpoint of window {}", *c));
    at = c;
    from_checkpoint = true;
    if (!a.start_window && !saved_first) first = std::max(first, *c);
  }
  const uint64_t end = a.windows ? first + a.windows : UINT64_MAX;
  const bool trains = behaviour_trains(kind) && !(kind == Behaviour::Sybil && a.copy_uid >= 0);
  // theta_at from a checkpoint: window `at` is still to train; from the state: it was trained.
  for (uint64_t w = std::max(first, from_checkpoint ? *at : *at + 1); w < end; ++w) {
    try {
      Timer timer;
      trainer.clear_accumulated();  // gradients gathered for a window that was then skipped
      const uint64_t requests_before = sync.record_requests();
      if (window_of(chain->block(), h) > w) {
        log(1, fmt::format("window {} already over; skipping", w));
        continue;
      }
      const uint64_t deadline = window_start_block(w + 1, h) + h.grace_blocks;
      // 1. sync: theta_w, by the records up to w - 1. One window behind (record(w-1) not out
      // yet), an honest miner gathers its first step's gradients meanwhile (below); further
      // behind, it catches up first.
      const bool overlap = trains && at && *at + 1 == w;
      if (!overlap) {
        at = sync.catch_up(shared, at, w, window_start_block(w + 1, h));
        if (!at || *at != w) {
          log(0, fmt::format("window {}: not in sync with the master (at {}); skipping the window",
                             w, at ? std::to_string(*at) : "nothing"));
          continue;
        }
      }
      timer.lap("sync");
      std::vector<Batch> batches;
      if (prefetch.valid() && prefetched == w) {
        batches = prefetch.get();
      } else {
        if (prefetch.valid()) prefetch.wait();  // never two readers of the dataset at once
        batches = load(w);
      }
      timer.lap("pages");
      // 2. inner loop from theta_w, cut short rather than miss the upload deadline (the
      // validator closes the window at block (w + 1) bpw + grace): the time left is counted from
      // the middle of the current block, and the next step plus the encode and upload must fit.
      copy_parameters(local, theta);
      const auto started = std::chrono::steady_clock::now();
      const double spb = chain->seconds_per_block();
      // Until the deadline (the chain's own clock: chain.hpp, seconds_until), and at most a
      // window and its grace: a miner that starts early (its first window) does not send an
      // update many windows' work large.
      const double time_left =
          std::min(chain->seconds_until(deadline),
                   static_cast<double>(h.blocks_per_window + h.grace_blocks) * spb);
      auto in_time = [&](double per_step) {
        const double spent =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return spent + 1.5 * per_step < time_left;
      };
      // Steps beyond the pages' micro-batches draw on the window's next pages (the same key's
      // stream: pages 3..5, 6..8, ...), so a fast miner trains on fresh data, not the same again.
      size_t page_sets = 1;
      auto batch = [&](int64_t i) -> const Batch& {
        while (static_cast<size_t>(i) >= batches.size()) {
          const size_t set = page_sets++;
          const uint64_t ppw = h.pages_per_window;
          auto more = pages(pages_key(w), ppw * (set + 1), data.configs);
          more.erase(more.begin(), more.begin() + static_cast<ptrdiff_t>(ppw * set));
          const auto extra = data.batches(more, h.max_micro_batches);
          if (extra.empty()) break;
          batches.insert(batches.end(), extra.begin(), extra.end());
        }
        return batches[static_cast<size_t>(i) % batches.size()];
      };
      // While record(w-1) is not out, the miner gathers the gradients of its first micro-batches
      // at theta_{w-1}: its first step at theta_w takes them all (more tokens in one step, one
      // step's staleness). Steps taken at theta_{w-1} would repeat the outer step's progress.
      // The record is looked for at most once per poll interval.
      InnerLoopResult inner;
      int64_t used = 0;  // micro-batches consumed
      if (overlap) {
        const double poll = default_poll_interval(spb * static_cast<double>(h.blocks_per_window));
        auto last_look = std::chrono::steady_clock::now() - std::chrono::hours(1);
        double per_batch = 0;
        while (!(at && *at == w)) {
          const auto now = std::chrono::steady_clock::now();
          if (std::chrono::duration<double>(now - last_look).count() >= poll) {
            last_look = now;
            at = sync.catch_up(shared, at, w, 0);  // one look, no waiting
            timer.lap("wait");
            continue;
          }
          if (used >= h.max_micro_batches || !in_time(per_batch)) {
            at = sync.catch_up(shared, at, w, deadline);  // wait for it
            timer.lap("wait");
            break;
          }
          const auto t = std::chrono::steady_clock::now();
          trainer.accumulate(batch(used++));
          per_batch = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
          timer.lap("accumulate");
        }
        if (!at || *at != w) {
          log(0, fmt::format("window {}: record {} did not come before the deadline (at {}); "
                             "skipping the window",
                             w, w - 1, at ? std::to_string(*at) : "nothing"));
          continue;
        }
        copy_parameters(local, theta);  // theta_w; the gathered gradients stay
      }
      if (trains) {
        if (trainer.accumulated() > 0) {
          const auto s = trainer.step_accumulated();
          inner.loss = s.loss, inner.tokens = s.tokens, inner.steps = 1;
        }
        InnerLoopPlan plan;
        plan.max_steps = h.max_inner_steps - inner.steps;
        plan.batch = [&](int64_t i) -> const Batch& { return batch(used + i); };
        plan.in_time = in_time;
        const auto rest = inner_loop(trainer, plan);
        inner.loss = (inner.loss * static_cast<double>(inner.steps) +
                      rest.loss * static_cast<double>(rest.steps)) /
                     static_cast<double>(std::max<int64_t>(1, inner.steps + rest.steps));
        inner.steps += rest.steps, inner.tokens += rest.tokens;
      }
      if (inner.steps < h.inner_steps && trains)
        log(1, fmt::format("window {}: {} of {} inner steps fit before the deadline", w,
                           inner.steps, h.inner_steps));
      timer.lap("inner");
      const std::string theta_hash = params_hash(theta);
      // 3. encode the pseudo-gradient with error feedback.
      std::string bytes;
      if (kind == Behaviour::Garbage) {
        bytes = std::string(4096, '\0');
        for (size_t i = 0; i < bytes.size(); ++i)
          bytes[i] = static_cast<char>((i * 131 + w) & 0xff);
      } else {
        Update u = ef.encode(pseudo_gradient(theta, local));  // zeros when it did not train
        const bool copies = kind == Behaviour::Copycat || kind == Behaviour::LateCopycat ||
                            (kind == Behaviour::Sybil && a.copy_uid >= 0);
        const bool noise = kind == Behaviour::Noise || (kind == Behaviour::NegativeExploit &&
                                                        w >= first + kNegativeExploitZeros);
        if (copies || noise) {
          // The late copycat waits until two blocks before the deadline, then takes what is there.
          if (kind == Behaviour::LateCopycat) wait_for_block(*chain, deadline - 2, 0.05);
          if (auto peer = peer_update(w, deadline - 1)) {
            u = noise ? noise_update(parameter_specs(config), h.topk, h.chunk_cap,
                                     update_rms(*peer), rng::derive(w, uid))
                      : std::move(*peer);
          } else {
            log(1, fmt::format("window {}: no peer update to {}", w, noise ? "match" : "copy"));
          }
        }
        if (kind == Behaviour::Replay && w > 0) {  // a peer's update of the previous window
          if (auto peer = peer_update(w - 1, chain->block() + 1)) u = std::move(*peer);
        }
        poison_as(kind, u);
        u.window = w;
        u.uid = uid;
        u.config_hash = config_hash(config);
        bytes = encode_update(std::move(u), *hot);
      }
      timer.lap("encode");
      // 4. upload (the late cheat: one block after the window closed).
      if (kind == Behaviour::Late) wait_for_block(*chain, deadline + 1, 0.05);
      bucket->put(update_key(w, uid, hotkey), bytes);
      timer.lap("upload");
      prefetched = w + 1;
      prefetch = std::async(std::launch::async, load, w + 1);
      // 5. persist.
      state.save(w, first, shared, trainer, ef);
      timer.lap("checkpoint");
      const double total = timer.total();
      // Time computing the window's gradients: its steps, and the gradients gathered for its
      // first step while the record was not out.
      const double inner_s =
          timer.laps().value("inner", 0.0) + timer.laps().value("accumulate", 0.0);
      nlohmann::json line = {{"window", w},
                             {"uid", uid},
                             {"loss", trains ? inner.loss : NAN},
                             {"behaviour", a.behaviour},
                             {"tokens", inner.tokens},
                             {"inner_steps", inner.steps},
                             {"bytes_up", bytes.size()},
                             {"params_hash", theta_hash},
                             {"inner_share", total > 0 ? inner_s / total : 0.0},
                             {"record_requests", sync.record_requests() - requests_before},
                             {"seconds", timer.laps()}};
      append_line(state_dir / "metrics.jsonl", line.dump());
      metrics.set("bistro_window", static_cast<double>(w));
      if (trains) metrics.set("bistro_loss", inner.loss);
      metrics.set("bistro_inner_share", total > 0 ? inner_s / total : 0.0);
      metrics.add("bistro_bytes_up_total", static_cast<double>(bytes.size()));
      log(1, fmt::format("window {}: loss {:.4f} over {} inner steps, sent {} bytes, theta {}, "
                         "{:.0f}% of {:.1f}s in inner steps",
                         w, inner.loss, inner.steps, bytes.size(), theta_hash.substr(0, 12),
                         total > 0 ? 100 * inner_s / total : 0.0, total));
    } catch (const std::exception& e) {
      // A bad window (a chain or bucket failure) is logged and skipped; the neuron keeps running.
      log(0, fmt::format("window {} failed: {}; continuing with the next window", w, e.what()));
    }
  }
  return 0;
}

}  // namespace bistro
