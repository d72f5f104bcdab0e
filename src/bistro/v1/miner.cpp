// The v1 miner: every window, train on the pages the protocol assigns to (window, uid), publish
// the slice of the weights the window's seed selects (or DeMo's compressed momentum), then gather
// the peers' updates and merge them. State (model, optimizer, last window) is checkpointed
// atomically after every window, so a crashed miner resumes where it stopped.
#include <fmt/format.h>

#include <cmath>
#include <future>
#include <nlohmann/json.hpp>

#include "bistro/chain/open_chain.hpp"
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

class Miner : Node {
 public:
  Miner(const NeuronArgs& a, const NeuronHparams& h);
  int run();

 private:
  // From this miner's own checkpoint, else from the validator's latest master, else the init.
  void resume();
  std::vector<Batch> load(uint64_t w);
  std::vector<Batch> take_batches(uint64_t w);
  // The window's training: a step (slices) or gradients only (DeMo: the step is the merge).
  double train(const std::vector<Batch>& batches);
  std::string encode(uint64_t w, uint64_t key);
  void merge(std::map<uint16_t, Update>& updates, uint64_t key);
  void persist(uint64_t w);
  void window(uint64_t w);

  const NeuronHparams& h_;
  std::filesystem::path ckpt_;
  LlamaConfig config_;
  Trainer trainer_;
  std::unique_ptr<DemoCompressor> demo_;
  std::unique_ptr<NeuronData> data_;
  uint64_t last_window_ = 0;
  std::future<std::vector<Batch>> prefetch_;
  uint64_t prefetched_ = 0;
};

Trainer make_trainer(const NeuronHparams& h) {
  Llama model(preset(h.preset));
  model->init_weights(h.init_seed);
  TrainOptions topt;
  topt.adamw.weight_decay = h.weight_decay;
  topt.schedule.lr = h.lr;
  return Trainer(std::move(model), topt);
}

Miner::Miner(const NeuronArgs& a, const NeuronHparams& h)
    : Node(a, "miner", "", "miner: --bucket is required (where this miner publishes its updates)"),
      h_(h),
      config_(preset(h.preset)),
      trainer_(make_trainer(h)) {
  log(1, fmt::format("uid {} on subnet {}, publishing to {}", uid_, a.netuid, a.bucket));
  ckpt_ = state_dir_ / "checkpoint";
  resume();
  // DeMo: momentum compressed in the DCT domain; every miner applies the same merged sign step.
  if (h.codec == "dct-topk")
    demo_ = std::make_unique<DemoCompressor>(
        trainer_.model()->ordered_parameters(),
        DemoOptions{.beta = 0.999, .k = h.dct_k, .chunk_cap = h.chunk_cap});
  if (demo_ && demo_->load(state_dir_ / "momentum.safetensors"))
    log(1, "resumed the DeMo momentum from the checkpoint");
  data_ = std::make_unique<NeuronData>(a.dataset, h);
}

void Miner::resume() {
  if (std::filesystem::exists(ckpt_ / "config.json")) {
    trainer_.resume(ckpt_);
    auto st = nlohmann::json::parse(read_file(state_dir_ / "state.json"), nullptr, false);
    check(st.is_object(), "{}: corrupt miner state", (state_dir_ / "state.json").string());
    last_window_ = st.value("window", uint64_t{0});
    log(1, fmt::format("resumed from {} at window {}", ckpt_.string(), last_window_));
    return;
  }
  auto master = master_bucket(*chain_, a_.netuid);
  if (!master) return;
  try {
    auto mb = open_bucket(*master);
    const auto file = state_dir_ / "master.safetensors";
    write_file_atomic(file, mb->get("master/model.safetensors"));
    load_weights(trainer_.model(), file);
    log(1, fmt::format("caught up from the master in {}", *master));
  } catch (const NotFound&) {
    log(2, "no master published yet; starting from the shared init");
  } catch (const std::exception& e) {
    log(1, fmt::format("cannot use the master in {}: {}; starting from the shared init", *master,
                       e.what()));
  }
}

std::vector<Batch> Miner::load(uint64_t w) {
  return data_->batches(pages(local_pages_key(w, uid_), h_.pages_per_window, data_->configs),
                        h_.max_micro_batches);
}

std::vector<Batch> Miner::take_batches(uint64_t w) {
  if (prefetch_.valid() && prefetched_ == w) return prefetch_.get();
  if (prefetch_.valid()) prefetch_.wait();  // never two readers of the dataset at once
  return load(w);
}

double Miner::train(const std::vector<Batch>& batches) {
  if (a_.behaviour == "lazy") return NAN;
  if (!demo_) return trainer_.step(batches).loss;
  for (auto& p : parameter_tensors(trainer_.model())) p.mutable_grad() = torch::Tensor();
  double loss = 0;
  for (const auto& b : batches) {
    auto l = trainer_.model()->loss(b.inputs, b.targets) / static_cast<double>(batches.size());
    l.backward();
    loss += l.item<double>();
  }
  return loss;
}

std::string Miner::encode(uint64_t w, uint64_t key) {
  if (a_.behaviour == "garbage") {
    std::string bytes(4096, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + w) & 0xff);
    return bytes;
  }
  Update u = demo_ ? demo_->encode(h_.dct_lr)
                   : slice_encode(trainer_.model()->ordered_parameters(), key, h_.compression);
  u.window = w;
  u.uid = uid_;
  u.config_hash = config_hash(config_);
  return encode_update(std::move(u), *hot_);
}

void Miner::merge(std::map<uint16_t, Update>& updates, uint64_t key) {
  if (a_.behaviour == "lazy" || updates.empty()) return;
  std::vector<PeerUpdate> peers;
  for (auto& [peer_uid, u] : updates) peers.push_back({peer_uid, &u});
  if (demo_)
    demo_merge(parameter_tensors(trainer_.model()), peers, h_.dct_lr, h_.weight_decay);
  else
    slice_merge(trainer_.model()->ordered_parameters(), peers, key, h_.compression);
}

void Miner::persist(uint64_t w) {
  save_checkpoint(ckpt_, trainer_.model(), default_tokenizer_path(), &trainer_.optimizer());
  if (demo_) demo_->save(state_dir_ / "momentum.safetensors");
  write_file_atomic(state_dir_ / "state.json", nlohmann::json{{"window", w}}.dump());
}

void Miner::window(uint64_t w) {
  Timer timer;
  const auto batches = take_batches(w);
  timer.lap("pages");
  const double loss = train(batches);
  timer.lap("train");
  // Publish. Slice positions come from the hash of the window's last block, which exists only
  // once the window is over: nobody can pick values to send before training on it.
  const uint64_t last_block = (w + 1) * h_.blocks_per_window - 1;
  if (h_.codec == "slice") wait_for_block(*chain_, last_block, 0.05);
  const uint64_t key = h_.codec == "slice" ? slice_key(w, chain_->block_hash(last_block)) : 0;
  const std::string bytes = encode(w, key);
  timer.lap("encode");
  bucket_->put(update_key(w, uid_, hotkey_), bytes);
  timer.lap("upload");
  // Read the next window's pages while this one's gather waits for its end.
  prefetched_ = w + 1;
  prefetch_ = std::async(std::launch::async, [this, w] { return load(w + 1); });
  // Gather the peers' updates once the window is over, and merge.
  wait_for_block(*chain_, (w + 1) * h_.blocks_per_window, 0.1);
  timer.lap("wait");
  GatherStats gs;
  auto updates = gather_updates(chain_->metagraph(a_.netuid), chain_->commitments(a_.netuid), h_,
                                config_, w, {}, &gs);
  timer.lap("gather");
  merge(updates, key);
  timer.lap("merge");
  persist(w);
  timer.lap("checkpoint");
  const auto tokens = static_cast<int64_t>(batches.size()) * h_.batch_rows * h_.seq_len;
  nlohmann::json line = {{"window", w},
                         {"uid", uid_},
                         {"loss", loss},
                         {"tokens", tokens},
                         {"bytes_up", bytes.size()},
                         {"bytes_down", gs.bytes},
                         {"peers", updates.size()},
                         {"rejected", gs.rejected},
                         {"seconds", timer.laps()},
                         {"verify_seconds", gs.verify_seconds}};
  append_line(state_dir_ / "metrics.jsonl", line.dump());
  record_gather(metrics_, gs);
  metrics_.set("bistro_window", static_cast<double>(w));
  if (std::isfinite(loss)) metrics_.set("bistro_loss", loss);
  metrics_.set("bistro_tokens_per_second",
               static_cast<double>(tokens) / std::max(1e-9, line["seconds"].value("train", 0.0)));
  metrics_.add("bistro_bytes_up_total", static_cast<double>(bytes.size()));
  log(1, fmt::format("window {}: loss {:.4f}, merged {} peers ({} rejected), {:.1f}s", w, loss,
                     updates.size(), gs.rejected.size(), timer.total()));
}

int Miner::run() {
  const uint64_t first = a_.start_window ? a_.start_window : window_of(chain_->block(), h_);
  uint64_t done = 0;
  for (uint64_t w = std::max(first, last_window_ + 1); a_.windows == 0 || done < a_.windows;
       ++w, ++done) {
    try {
      wait_for_block(*chain_, w * h_.blocks_per_window, 0.1);
      if (window_of(chain_->block(), h_) > w) {
        log(1, fmt::format("window {} already over; skipping", w));
        continue;
      }
      window(w);
    } catch (const std::exception& e) {
      // A bad window (a chain or bucket failure) is logged and skipped; the neuron keeps running.
      log(0, fmt::format("window {} failed: {}; continuing with the next window", w, e.what()));
    }
  }
  return 0;
}

}  // namespace

int run_miner(const NeuronArgs& a, const NeuronHparams& h) {
  return Miner(a, h).run();
}

}  // namespace bistro::v1
