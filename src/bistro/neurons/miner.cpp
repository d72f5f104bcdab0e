// The miner: every window, train on the pages the protocol assigns to (window, uid), publish the
// slice of the weights the window's seed selects, then gather the peers' slices and merge them.
// State (model, optimizer, last window) is checkpointed atomically after every window, so a
// crashed miner resumes where it stopped.
#include <fmt/format.h>

#include <cmath>
#include <future>
#include <nlohmann/json.hpp>

#include "bistro/chain/open_chain.hpp"
#include "bistro/compress/dct.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/identity/wallet.hpp"
#include "bistro/model/checkpoint.hpp"
#include "bistro/neurons/neuron.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/ops/metrics.hpp"
#include "bistro/storage/s3_bucket.hpp"

namespace bistro {

int run_miner(const NeuronArgs& a) {
  const NeuronHparams h = load_hparams(a.hparams_file);
  init_runtime(a.threads);
  check_neuron_device(a.device);
  if (h.codec == "sparseloco") return run_loco_miner(a, h);
  check(a.behaviour == "honest" || a.behaviour == "lazy" || a.behaviour == "garbage",
        "miner: behaviour '{}' needs codec sparseloco (codec {} has honest, lazy and garbage)",
        a.behaviour, h.codec);
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
  log(1, fmt::format("uid {} on subnet {}, publishing to {}", uid, a.netuid, a.bucket));

  const auto state_dir = neuron_state_dir(a, "miner", hotkey);
  const auto ckpt = state_dir / "checkpoint";
  const LlamaConfig config = preset(h.preset);
  Llama model(config);
  model->init_weights(h.init_seed);
  TrainOptions topt;
  topt.adamw.weight_decay = h.weight_decay;
  topt.schedule.lr = h.lr;
  Trainer trainer(std::move(model), topt);
  uint64_t last_window = 0;
  if (std::filesystem::exists(ckpt / "config.json")) {
    trainer.resume(ckpt);
    auto st = nlohmann::json::parse(read_file(state_dir / "state.json"), nullptr, false);
    check(st.is_object(), "{}: corrupt miner state", (state_dir / "state.json").string());
    last_window = st.value("window", uint64_t{0});
    log(1, fmt::format("resumed from {} at window {}", ckpt.string(), last_window));
  } else if (auto master = master_bucket(*chain, a.netuid)) {
    // A new miner starts from the validator's latest master rather than from the init.
    try {
      auto mb = open_bucket(*master);
      const auto file = state_dir / "master.safetensors";
      write_file_atomic(file, mb->get("master/model.safetensors"));
      load_weights(trainer.model(), file);
      log(1, fmt::format("caught up from the master in {}", *master));
    } catch (const NotFound&) {
      log(2, "no master published yet; starting from the shared init");
    } catch (const std::exception& e) {
      log(1, fmt::format("cannot use the master in {}: {}; starting from the shared init", *master,
                         e.what()));
    }
  }

  // DeMo: momentum compressed in the DCT domain; every miner applies the same merged sign step.
  std::unique_ptr<DemoCompressor> demo;
  if (h.codec == "dct-topk")
    demo = std::make_unique<DemoCompressor>(
        trainer.model()->ordered_parameters(),
        DemoOptions{.beta = 0.999, .k = h.dct_k, .chunk_cap = h.chunk_cap});
  if (demo && demo->load(state_dir / "momentum.safetensors"))
    log(1, "resumed the DeMo momentum from the checkpoint");

  NeuronData data(a.dataset, h);
  const uint64_t first = a.start_window ? a.start_window : window_of(chain->block(), h);
  uint64_t done = 0;
  auto load = [&](uint64_t window) {
    return data.batches(pages(local_pages_key(window, uid), h.pages_per_window, data.configs),
                        h.max_micro_batches);
  };
  std::future<std::vector<Batch>> prefetch;
  uint64_t prefetched = 0;
  for (uint64_t w = std::max(first, last_window + 1); a.windows == 0 || done < a.windows;
       ++w, ++done) {
    try {
      wait_for_block(*chain, w * h.blocks_per_window, 0.1);
      if (window_of(chain->block(), h) > w) {
        log(1, fmt::format("window {} already over; skipping", w));
        continue;
      }
      Timer timer;
      // Train on this window's pages.
      std::vector<Batch> batches;
      if (prefetch.valid() && prefetched == w) {
        batches = prefetch.get();
      } else {
        if (prefetch.valid()) prefetch.wait();  // never two readers of the dataset at once
        batches = load(w);
      }
      timer.lap("pages");
      double loss = NAN;
      if (a.behaviour != "lazy" && !demo) loss = trainer.step(batches).loss;
      if (a.behaviour != "lazy" && demo) {  // gradients only: the step is the merge
        for (auto& p : parameter_tensors(trainer.model())) p.mutable_grad() = torch::Tensor();
        loss = 0;
        for (const auto& b : batches) {
          auto l = trainer.model()->loss(b.inputs, b.targets) / static_cast<double>(batches.size());
          l.backward();
          loss += l.item<double>();
        }
      }
      timer.lap("train");
      // Publish. Slice positions come from the hash of the window's last block, which exists
      // only once the window is over: nobody can pick values to send before training on it.
      const uint64_t last_block = (w + 1) * h.blocks_per_window - 1;
      if (h.codec == "slice") wait_for_block(*chain, last_block, 0.05);
      const uint64_t key = h.codec == "slice" ? slice_key(w, chain->block_hash(last_block)) : 0;
      std::string bytes;
      if (a.behaviour == "garbage") {
        bytes = std::string(4096, '\0');
        for (size_t i = 0; i < bytes.size(); ++i)
          bytes[i] = static_cast<char>((i * 131 + w) & 0xff);
      } else {
        Update u = demo ? demo->encode(h.dct_lr)
                        : slice_encode(trainer.model()->ordered_parameters(), key, h.compression);
        u.window = w;
        u.uid = uid;
        u.config_hash = config_hash(config);
        bytes = encode_update(std::move(u), *hot);
      }
      timer.lap("encode");
      bucket->put(update_key(w, uid, hotkey), bytes);
      timer.lap("upload");
      // Read the next window's pages while this one's gather waits for its end.
      prefetched = w + 1;
      prefetch = std::async(std::launch::async, load, w + 1);
      // Gather the peers' slices once the window is over, and merge.
      wait_for_block(*chain, (w + 1) * h.blocks_per_window, 0.1);
      timer.lap("wait");
      GatherStats gs;
      auto updates = gather_updates(chain->metagraph(a.netuid), chain->commitments(a.netuid), h,
                                    config, w, {}, &gs);
      timer.lap("gather");
      if (a.behaviour != "lazy" && !updates.empty()) {
        std::vector<PeerUpdate> peers;
        for (auto& [peer_uid, u] : updates) peers.push_back({peer_uid, &u});
        if (demo)
          demo_merge(parameter_tensors(trainer.model()), peers, h.dct_lr, h.weight_decay);
        else
          slice_merge(trainer.model()->ordered_parameters(), peers, key, h.compression);
      }
      timer.lap("merge");
      save_checkpoint(ckpt, trainer.model(), default_tokenizer_path(), &trainer.optimizer());
      if (demo) demo->save(state_dir / "momentum.safetensors");
      write_file_atomic(state_dir / "state.json", nlohmann::json{{"window", w}}.dump());
      timer.lap("checkpoint");
      nlohmann::json line = {
          {"window", w},
          {"uid", uid},
          {"loss", loss},
          {"tokens", static_cast<int64_t>(batches.size()) * h.batch_rows * h.seq_len},
          {"bytes_up", bytes.size()},
          {"bytes_down", gs.bytes},
          {"peers", updates.size()},
          {"rejected", gs.rejected},
          {"seconds", timer.laps()},
          {"verify_seconds", gs.verify_seconds}};
      append_line(state_dir / "metrics.jsonl", line.dump());
      record_gather(metrics, gs);
      metrics.set("bistro_window", static_cast<double>(w));
      if (std::isfinite(loss)) metrics.set("bistro_loss", loss);
      metrics.set("bistro_tokens_per_second",
                  static_cast<double>(batches.size() * h.batch_rows * h.seq_len) /
                      std::max(1e-9, line["seconds"].value("train", 0.0)));
      metrics.add("bistro_bytes_up_total", static_cast<double>(bytes.size()));
      log(1, fmt::format("window {}: loss {:.4f}, merged {} peers ({} rejected), {:.1f}s", w, loss,
                         updates.size(), gs.rejected.size(), timer.total()));
    } catch (const std::exception& e) {
      // A bad window (a chain or bucket failure) is logged and skipped; the neuron keeps running.
      log(0, fmt::format("window {} failed: {}; continuing with the next window", w, e.what()));
    }
  }
  return 0;
}

}  // namespace bistro
