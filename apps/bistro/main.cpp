// bistro: one binary, one subcommand per job.
#include <fmt/format.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <thread>

#include <chrono>
#include <filesystem>
#include <functional>

#include <unistd.h>
#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/data/page_batches.hpp"
#include "bistro/data/tokenizer.hpp"
#include "bistro/identity/sr25519.hpp"
#include "bistro/model/config.hpp"
#include "bistro/ops/bench_compress.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/train/text_batches.hpp"

#include "bistro/ops/bench_chain.hpp"
#include "bistro/ops/bench_data.hpp"
#include "bistro/ops/bench_score.hpp"
#include "bistro/ops/bench_train.hpp"
#include "bistro/ops/experiment_attack.hpp"
#include "bistro/ops/experiment_converge.hpp"
#include "bistro/runtime/distributed.hpp"
#include "bistro/runtime/launch.hpp"
#include "bistro/train/trainer.hpp"
#include "commands.hpp"

namespace fs = std::filesystem;
using namespace bistro;

namespace {

struct Common {
  int threads = 0;
  std::string device = "cpu";
  std::string dtype = "fp32";
};

void add_common(CLI::App* app, Common& c) {
  app->add_option("--threads", c.threads, "libtorch threads (0: all cores)");
  app->add_option("--device", c.device, "cpu, cuda or cuda:N");
  app->add_option("--dtype", c.dtype, "fp32, or bf16 (autocast; fp32 weights and optimizer)");
}

// --preset NAME or --config config.json (a Hugging Face LlamaConfig).
struct ModelChoice {
  std::string preset = "tiny";
  std::string config_path;
  LlamaConfig resolve() const {
    if (!config_path.empty()) return LlamaConfig::from_json(read_file(config_path), config_path);
    return bistro::preset(preset);
  }
};

void add_model_choice(CLI::App* app, ModelChoice& m) {
  app->add_option("--preset", m.preset, "model preset: tiny, small, bistro-1b");
  app->add_option("--config", m.config_path, "Hugging Face config.json instead of a preset");
}

struct TrainArgs {
  Common common;
  ModelChoice model;
  int64_t steps = 30, batch = 8, seq_len = 128, micro_batches = 1, warmup = 5;
  double lr = 1e-3, weight_decay = 0.1, clip = 1.0;
  uint64_t seed = 42;
  std::string text_path, save_dir, resume_dir, init_dir, dataset_dir, tokenizer_path;
  size_t pages = 1;
  std::string layout = "packed";
  int ranks = 1;               // --ranks: local data-parallel ranks to spawn
  double ranks_timeout = 300;  // seconds for the rendezvous and each collective
};

// Every rank must train the same way: the arguments that decide the computation, compared at start.
std::string train_fingerprint(const TrainArgs& a) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", a.model.preset,
                     a.model.config_path, a.steps, a.batch, a.seq_len, a.micro_batches, a.warmup,
                     a.lr, a.weight_decay, a.clip, a.seed, a.text_path, a.init_dir, a.resume_dir,
                     a.dataset_dir, a.tokenizer_path, a.pages, a.layout, a.common.dtype);
}

int run_train(const TrainArgs& a) {
  // Ranks: torchrun's environment, or --ranks N spawned here (before libtorch starts its threads).
  std::unique_ptr<runtime::LocalRanks> local;
  const auto env = runtime::launch_ranks(a.ranks, local);
  const int world = env ? env->world_size : 1;
  int threads = a.common.threads;
  if (threads == 0 && world > 1)  // the host's cores shared out, as torchrun's OMP_NUM_THREADS
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world);
  init_runtime(threads);
  auto compute = parse_compute(a.common.device, a.common.dtype);
  if (env && compute.device.is_cuda()) {
    runtime::require_rank_gpu(*env);
    if (!compute.device.has_index())
      compute.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env->local_rank));
  }
  const auto device = compute.device;
  auto ranks =
      env ? std::make_unique<runtime::Ranks>(
                *env, std::chrono::milliseconds(static_cast<int64_t>(a.ranks_timeout * 1e3)))
          : std::make_unique<runtime::Ranks>();
  ranks->require_same("training arguments", train_fingerprint(a));
  const bool lead = ranks->rank() == 0;
  Llama model = [&] {
    if (!a.init_dir.empty()) return load_model(a.init_dir, device);
    Llama m(a.model.resolve());
    m->init_weights(a.seed);
    m->to(device);
    return m;
  }();
  model->set_bf16(compute.bf16);
  const auto& config = model->config();
  TrainOptions opt;
  opt.adamw.weight_decay = a.weight_decay;
  opt.schedule = {
      .lr = a.lr, .warmup_steps = a.warmup, .total_steps = a.steps, .min_lr_ratio = 0.1};
  opt.grad_clip = a.clip;
  Trainer trainer(model, opt);
  if (!a.resume_dir.empty()) trainer.resume(a.resume_dir);
  {  // every rank starts from rank 0's parameters (DDP's first broadcast)
    std::vector<torch::Tensor> params;
    for (auto& [name, p] : model->ordered_parameters()) params.push_back(p);
    ranks->broadcast(params);
  }
  trainer.set_ranks(ranks.get());

  // Data: pages of the dataset (the default corpus unless --dataset), tokenised, one optimiser
  // step per window as BISTRO takes it; or, with --text, random byte-level windows of a file.
  std::function<std::vector<Batch>(int64_t)> step_batches;
  std::string source;
  if (!a.text_path.empty()) {
    auto data = std::make_shared<TextBatches>(read_file(a.text_path), a.batch, a.seq_len,
                                              rng::derive(a.seed, uint64_t(trainer.steps())));
    step_batches = [data, &a, device](int64_t) {
      std::vector<Batch> micro;
      for (int64_t m = 0; m < a.micro_batches; ++m) {
        auto b = data->next();
        micro.push_back({b.inputs.to(device), b.targets.to(device)});
      }
      return micro;
    };
    source = a.text_path + " (bytes)";
  } else {
    std::shared_ptr<Dataset> ds = cli::open_dataset(a.dataset_dir);
    auto tok = std::make_shared<Tokenizer>(a.tokenizer_path.empty() ? default_tokenizer_path()
                                                                    : fs::path(a.tokenizer_path));
    check(tok->vocab_size() <= config.vocab_size,
          "tokenizer {} has {} pieces but the model's vocab_size is {}", tok->origin(),
          tok->vocab_size(), config.vocab_size);
    auto configs = std::make_shared<std::vector<ConfigInfo>>(ds->configs());
    const PageBatchOptions po{
        .batch_rows = a.batch, .seq_len = a.seq_len, .layout = parse_layout(a.layout)};
    step_batches = [ds, tok, configs, po, &a, device](int64_t step) {
      const auto window_pages = pages(local_pages_key(step, 0), a.pages, *configs);
      std::vector<Batch> micro;
      for (const auto& tb : page_batches(*ds, *tok, window_pages, po)) {
        micro.push_back(to_batch(tb, device));
      }
      return micro;
    };
    source = fmt::format("{}, {} page(s) per step, {} layout", ds->describe(), a.pages, a.layout);
  }
  if (lead) {
    fmt::print(
        "bistro train: {} parameters, {} layers, hidden {}, rows of {} tokens in batches of {}, "
        "{} threads, {}{}\n",
        config.parameter_count(), config.num_hidden_layers, config.hidden_size, a.seq_len, a.batch,
        torch::get_num_threads(), compute.describe(),
        world > 1 ? fmt::format(", {} ranks (gloo)", world) : "");
    fmt::print("data: {}\nBLAS: {}\n", source, detect_blas().description);
  }
  using Clock = std::chrono::steady_clock;
  const int64_t first = trainer.steps();
  int64_t counted = 0;  // every rank's counted targets
  for (int64_t s = first; s < a.steps; ++s) {
    // The step's global batch, micro-batch i on rank i mod the ranks.
    auto all = step_batches(s);
    std::vector<Batch> micro;
    for (size_t i = 0; i < all.size(); ++i)
      if (static_cast<int>(i % static_cast<size_t>(world)) == ranks->rank())
        micro.push_back(std::move(all[i]));
    const auto t0 = Clock::now();
    const double reduce0 = ranks->seconds_summing();
    const auto r = trainer.step(micro);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    counted += r.tokens;
    if (!lead) continue;
    fmt::print("step {:4d}  loss {:.6f}  lr {:.2e}  grad-norm {:.3f}  {:.0f} tok/s{}\n", s + 1,
               r.loss, r.lr, r.grad_norm, r.tokens / secs,
               world > 1 ? fmt::format("  all-reduce {:.0f} ms",
                                       (ranks->seconds_summing() - reduce0) * 1e3)
                         : "");
    std::fflush(stdout);
  }
  if (world > 1 && lead && trainer.steps() > first)
    fmt::print("all-reduce: {:.2f} MB and {:.0f} ms a step over {} ranks\n",
               ranks->bytes_summed() / 1e6 / static_cast<double>(trainer.steps() - first),
               ranks->seconds_summing() * 1e3 / static_cast<double>(trainer.steps() - first),
               world);
  if (lead)
    fmt::print("trained on {} counted tokens in {} steps\n", counted, trainer.steps() - first);
  if (local) local->wait();
  if (!a.save_dir.empty() && lead) {
    // Byte-level training (--text) has no tokenizer to carry.
    trainer.save(a.save_dir, !a.text_path.empty()       ? fs::path()
                             : a.tokenizer_path.empty() ? default_tokenizer_path()
                                                        : fs::path(a.tokenizer_path));
    fmt::print("saved checkpoint to {}\n", a.save_dir);
  }
  return 0;
}

int run_bench_train(const TrainBenchOptions& o, bool json) {
  const auto r = run_train_bench(o);
  if (json) {
    fmt::print(
        "{{\"preset\": \"{}\", \"batch\": {}, \"seq_len\": {}, \"threads\": {}, \"fused\": {}, "
        "\"device\": \"{}\", \"dtype\": \"{}\", \"tokens_per_s\": {:.2f}, \"step_ms\": {:.2f}, "
        "\"gflops\": {:.2f}, \"sgemm_gflops\": {:.2f}, \"mfu\": {:.4f}}}\n",
        o.preset, o.batch, o.seq_len, r.threads, o.fused, o.device, o.dtype, r.tokens_per_s,
        r.step_ms, r.gflops, r.sgemm_gflops, r.mfu);
    return 0;
  }
  fmt::print("bench train: preset {}, batch {}x{}, {} threads, device {} {}, fused ops {}\n",
             o.preset, o.batch, o.seq_len, r.threads, o.device, o.dtype, o.fused ? "on" : "off");
  fmt::print("  step          {:10.1f} ms\n", r.step_ms);
  fmt::print("  throughput    {:10.1f} tokens/s\n", r.tokens_per_s);
  fmt::print("  matmul rate   {:10.1f} GFLOP/s  ({:.3g} FLOP/token)\n", r.gflops,
             r.flops_per_token);
  if (r.sgemm_gflops > 0) {
    fmt::print("  sgemm peak    {:10.1f} GFLOP/s  (4096^3)\n", r.sgemm_gflops);
    fmt::print("  of peak       {:10.1f} %\n", 100.0 * r.gflops / r.sgemm_gflops);
  }
  if (r.mfu > 0)
    fmt::print("  MFU           {:10.1f} %  (of {} TFLOP/s)\n", 100 * r.mfu, o.peak_tflops);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bistro: incentivised, decentralised training of one shared language model"};
  app.require_subcommand(1);

  TrainArgs train;
  auto* train_cmd = app.add_subcommand("train", "train a model on the corpus (the quick start)");
  add_common(train_cmd, train.common);
  add_model_choice(train_cmd, train.model);
  train_cmd->add_option("--steps", train.steps, "optimizer steps");
  train_cmd->add_option("--batch", train.batch, "sequences per micro-batch");
  train_cmd->add_option("--seq-len", train.seq_len, "tokens per sequence");
  train_cmd->add_option("--micro-batches", train.micro_batches,
                        "micro-batches per step (with --text)");
  train_cmd->add_option("--pages", train.pages, "pages of 100 documents per step");
  train_cmd->add_option("--layout", train.layout, "packed or padded (one document per row)");
  train_cmd->add_option("--dataset", train.dataset_dir,
                        "dataset: DIR or hf:ORG/NAME (default corpus)");
  train_cmd->add_option("--tokenizer", train.tokenizer_path, "SentencePiece model");
  train_cmd->add_option("--lr", train.lr, "peak learning rate");
  train_cmd->add_option("--warmup", train.warmup, "warmup steps");
  train_cmd->add_option("--weight-decay", train.weight_decay, "AdamW weight decay");
  train_cmd->add_option("--clip", train.clip, "global gradient-norm clip (0: off)");
  train_cmd->add_option("--seed", train.seed, "init and data seed");
  train_cmd->add_option("--text", train.text_path, "train on a text file's bytes instead");
  train_cmd->add_option("--init", train.init_dir, "start from this checkpoint directory");
  train_cmd->add_option("--save", train.save_dir, "write a checkpoint directory at the end");
  train_cmd->add_option("--resume", train.resume_dir, "resume weights, optimizer and step");
  train_cmd->add_option("--ranks", train.ranks,
                        "data-parallel ranks on this host (torchrun's RANK/WORLD_SIZE also work)");
  train_cmd->add_option("--ranks-timeout", train.ranks_timeout,
                        "seconds to wait for the ranks to meet, and in each all-reduce");

  auto* bench_cmd = app.add_subcommand("bench", "benchmarks");
  bench_cmd->require_subcommand(1);
  TrainBenchOptions bench;
  bool bench_json = false, bench_unfused = false;
  auto* bench_train = bench_cmd->add_subcommand("train", "training throughput vs sgemm peak");
  bench_train->add_option("--preset", bench.preset, "model preset");
  bench_train->add_option("--batch", bench.batch, "sequences per step");
  bench_train->add_option("--seq-len", bench.seq_len, "tokens per sequence");
  bench_train->add_option("--steps", bench.steps, "timed steps");
  bench_train->add_option("--warmup", bench.warmup, "untimed steps first");
  bench_train->add_option("--threads", bench.threads, "libtorch threads (0: all cores)");
  bench_train->add_option("--device", bench.device, "cpu, cuda or cuda:N");
  bench_train->add_option("--dtype", bench.dtype, "fp32 or bf16 (autocast)");
  bench_train->add_option("--peak-tflops", bench.peak_tflops,
                          "the chip's spec peak in --dtype, for the MFU (H100/H200 bf16: 989)");
  bench_train->add_flag("--unfused", bench_unfused, "use stock libtorch ops only");
  bench_train->add_flag("--json", bench_json, "one JSON line");
  bench_train->add_option("--profile", bench.profile_path, "write a Chrome trace of one step");
  bool no_peak = false;
  bench_train->add_flag("--no-peak", no_peak, "skip the sgemm peak measurement");

  int bench_chain_uids = 256, bench_chain_validators = 64, bench_chain_procs = 8;
  double bench_chain_seconds = 5;
  auto* bench_chain = bench_cmd->add_subcommand("chain", "Yuma epoch time; local chain writes");
  bench_chain->add_option("--uids", bench_chain_uids, "subnet size");
  bench_chain->add_option("--validators", bench_chain_validators, "validators with dense weights");
  bench_chain->add_option("--processes", bench_chain_procs, "concurrent writer processes");
  bench_chain->add_option("--seconds", bench_chain_seconds, "seconds per write measurement");
  std::string bench_data_dataset;
  uint64_t bench_data_docs = 50'000;
  int64_t bench_data_seq = 2048;
  auto* bench_data = bench_cmd->add_subcommand("data", "tokenise + pack vs spm_encode");
  bench_data->add_option("--dataset", bench_data_dataset,
                         "dataset: DIR or hf:ORG/NAME (default corpus)");
  bench_data->add_option("--docs", bench_data_docs, "documents to encode");
  bench_data->add_option("--seq-len", bench_data_seq, "packed row length");

  CompressBenchOptions bc;
  bool bc_json = false;
  auto* bench_compress = bench_cmd->add_subcommand("compress", "update encode/decode/merge");
  bench_compress->add_option("--preset", bc.preset, "model preset (shapes)");
  bench_compress->add_option("--codec", bc.codec, "dct-topk or slice");
  bench_compress->add_option("--k", bc.k, "dct: coefficients per chunk; slice: compression");
  bench_compress->add_option("--layers", bc.layers, "keep only this many decoder layers");
  bench_compress->add_option("--value-bits", bc.value_bits, "dct values: 32, 8 or 2");
  bench_compress->add_option("--index-bits", bc.index_bits, "dct indices: 32 or 12");
  bench_compress->add_option("--peers", bc.peers, "updates merged");
  bench_compress->add_option("--threads", bc.threads, "libtorch threads (0: all cores)");
  bench_compress->add_option("--repeats", bc.repeats, "merges timed (median)");
  bench_compress->add_flag("--json", bc_json, "one JSON line");

  ScoreBenchOptions bs;
  auto* bench_score = bench_cmd->add_subcommand(
      "score", "the validator's measurement of one update, on 1 or N ranks");
  bench_score->add_option("--preset", bs.preset, "model preset");
  bench_score->add_option("--updates", bs.updates, "updates timed (after one untimed)");
  bench_score->add_option("--threads", bs.threads, "libtorch threads per rank");
  bench_score->add_option("--ranks", bs.ranks, "data-parallel ranks on this host");
  bench_score->add_option("--device", bs.device, "cpu, cuda or cuda:N");
  bench_score->add_option("--dtype", bs.dtype, "fp32 or bf16 (autocast)");

  auto* experiment_cmd = app.add_subcommand("experiment", "experiments");
  experiment_cmd->require_subcommand(1);
  AttackOptions att;
  auto* attack = experiment_cmd->add_subcommand(
      "attack", "a simulated protocol v2 subnet with cheating miners against the gauntlet");
  attack->add_option("--uids", att.uids, "uids, the validator's included");
  attack->add_option("--cheat-share", att.cheat_share, "share of the miners that cheat");
  attack->add_option("--score-budget", att.score_budget,
                     "updates the validator measures a window (0: all; else a rotating sample)");
  attack->add_option("--kinds", att.kinds, "comma list of cheating kinds, or all");
  attack->add_option("--windows", att.windows, "windows");
  attack->add_option("--inner-steps", att.inner_steps, "H: inner steps per window");
  attack->add_option("--batch-rows", att.batch_rows, "rows per micro-batch");
  attack->add_option("--threads", att.threads, "miners trained and updates scored at once");
  attack->add_option("--seed", att.seed, "who cheats, keys, random pages");
  bool no_clean = false;
  attack->add_flag("--no-clean", no_clean, "skip the run without the cheaters");
  attack->add_option("--summary", att.summary, "append the summary JSON here");
  attack->add_flag("--check", att.check, "exit 1 unless every goal holds");
  ConvergeOptions conv;
  auto* converge = experiment_cmd->add_subcommand(
      "converge",
      "simulated miners, same token budget: DDP, DiLoCo, SparseLoCo, DeMo (dct-topk), slices");
  converge->add_option("--preset", conv.preset, "model preset");
  converge->add_option("--miners", conv.miners, "simulated miners");
  converge->add_option("--steps", conv.steps, "inner steps per miner (DDP: optimizer steps)");
  converge->add_option("--inner-steps", conv.inner_steps, "H: inner steps per window");
  converge->add_option("--batch", conv.batch, "rows per miner per inner step");
  converge->add_option("--seq-len", conv.seq_len, "tokens per row");
  converge->add_option("--adamw-lr", conv.adamw_lr, "AdamW peak lr (DDP, inner steps, slices)");
  converge->add_option("--warmup", conv.warmup, "AdamW warmup steps");
  converge->add_option("--loco-k", conv.loco_k, "SparseLoCo entries per 64 x 64 chunk");
  converge->add_option("--loco-beta", conv.loco_beta, "SparseLoCo error-feedback decay");
  converge->add_option("--loco-value-bits", conv.loco_value_bits, "SparseLoCo values: 2 or 32");
  converge->add_option("--outer-lr", conv.outer_lr, "SparseLoCo outer step size alpha");
  converge->add_option("--outer-delay", conv.outer_delay,
                       "SparseLoCo: windows before an aggregate is applied (the neurons use 1)");
  converge->add_option("--diloco-lr", conv.diloco_lr, "DiLoCo outer Nesterov lr");
  converge->add_option("--diloco-momentum", conv.diloco_momentum, "DiLoCo outer momentum");
  converge->add_option("--summary", conv.summary_path, "append one JSON line per method here");
  converge->add_option("--demo-lr", conv.demo_lr, "DeMo sign-SGD peak lr");
  converge->add_option("--demo-beta", conv.demo_beta, "DeMo momentum decay");
  converge->add_option("--chunk-cap", conv.chunk_cap, "DCT chunk size cap per dimension");
  converge->add_option("--k-embed", conv.k_embed, "DeMo k for the embedding and head (0: --k)");
  converge->add_option("--shared-k", conv.shared_k,
                       "DeMo sends k positions per chunk shared by all miners (from the window)");
  converge->add_option("--k", conv.dct_k, "DCT coefficients per chunk");
  converge->add_option("--value-bits", conv.dct_value_bits, "DCT values through 8- or 2-bit");
  converge->add_option("--compression", conv.slice_compression, "slice compression");
  converge->add_option("--eval-every", conv.eval_every, "windows between evaluations");
  converge->add_option("--csv", conv.csv_path, "write the CSV here (default stdout)");
  converge->add_option("--methods", conv.methods,
                       "comma list: ddp,diloco,sparseloco,dct-topk,slice");
  converge->add_option("--threads", conv.threads, "libtorch threads (0: all cores)");
  converge->add_option("--device", conv.device, "cpu, cuda or cuda:N (dct-topk, slice: cpu)");
  converge->add_option("--dtype", conv.dtype, "fp32 or bf16 (autocast)");

  auto* bench_sign = bench_cmd->add_subcommand("sign", "sr25519 vs ed25519 sign and verify rates");

  auto* model_cmd = app.add_subcommand("model", "inspect and create models");
  model_cmd->require_subcommand(1);
  ModelChoice info_model;
  auto* info_cmd = model_cmd->add_subcommand("info", "print a model's shape and size");
  add_model_choice(info_cmd, info_model);
  std::string checkpoint_dir;
  info_cmd->add_option("--checkpoint", checkpoint_dir, "a checkpoint directory instead");
  ModelChoice init_model;
  uint64_t init_seed = 42;
  std::string init_out;
  auto* init_cmd = model_cmd->add_subcommand("init", "write a freshly initialised checkpoint");
  add_model_choice(init_cmd, init_model);
  init_cmd->add_option("--seed", init_seed, "init seed");
  init_cmd->add_option("--out", init_out, "checkpoint directory")->required();

  auto data_commands = cli::add_data_commands(app);
  for (auto& c : cli::add_bucket_commands(app)) data_commands.push_back(std::move(c));
  for (auto& c : cli::add_wallet_commands(app)) data_commands.push_back(std::move(c));
  for (auto& c : cli::add_chain_commands(app)) data_commands.push_back(std::move(c));
  for (auto& c : cli::add_neuron_commands(app)) data_commands.push_back(std::move(c));
  for (auto& c : cli::add_eval_commands(app)) data_commands.push_back(std::move(c));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    for (const auto& c : data_commands) {
      if (*c.app) return c.run();
    }
    if (*train_cmd) return run_train(train);
    if (*bench_train) {
      bench.fused = !bench_unfused;
      bench.measure_peak = !no_peak;
      return run_bench_train(bench, bench_json);
    }
    if (*attack) {
      att.clean = !no_clean;
      return run_attack_experiment(att);
    }
    if (*converge) {
      run_converge_experiment(conv);
      return 0;
    }
    if (*bench_score) return run_score_bench(bs);
    if (*bench_compress) {
      const auto r = run_compress_bench(bc);
      if (bc_json) {
        fmt::print(
            "{{\"encode_s\": {:.4f}, \"serialize_s\": {:.4f}, \"decode_s\": {:.4f}, "
            "\"merge_s\": {:.4f}, \"wire_bytes\": {}, \"model_bytes\": {}, "
            "\"parameters\": {}}}\n",
            r.encode_s, r.serialize_s, r.decode_s, r.merge_s, r.wire_bytes, r.model_bytes,
            r.parameters);
        return 0;
      }
      fmt::print("bench compress: {} shapes ({} parameters), codec {} k {}, {} peers\n", bc.preset,
                 r.parameters, bc.codec, bc.k, bc.peers);
      fmt::print(
          "  encode {:.3f} s, serialise+sign {:.3f} s, decode+verify {:.3f} s, merge {:.3f} s\n",
          r.encode_s, r.serialize_s, r.decode_s, r.merge_s);
      fmt::print("  wire {:.2f} MB vs fp32 model {:.1f} MB: {:.0f}x smaller\n", r.wire_bytes / 1e6,
                 r.model_bytes / 1e6, double(r.model_bytes) / r.wire_bytes);
      return 0;
    }
    if (*bench_sign) {
      // Sign and verify a 32-byte digest (what an update signature covers in practice is the
      // whole file; the per-byte hashing cost is the same for both schemes).
      std::array<uint8_t, 32> msg{};
      const auto sr = sr25519_from_mini_secret({1});
      const auto ed = ed25519_signer({1});
      auto rate = [](const std::function<void()>& op) {
        using C = std::chrono::steady_clock;
        const auto t0 = C::now();
        int n = 0;
        while (std::chrono::duration<double>(C::now() - t0).count() < 1.0) {
          op();
          ++n;
        }
        return n / std::chrono::duration<double>(C::now() - t0).count();
      };
      Signature srs = sr25519_sign(sr, msg), eds = ed->sign(msg);
      const double sr_sign = rate([&] { srs = sr25519_sign(sr, msg); });
      const double sr_verify = rate([&] { sr25519_verify(sr.public_key, msg, srs); });
      const double ed_sign = rate([&] { eds = ed->sign(msg); });
      const double ed_verify =
          rate([&] { verify_signature("ed25519", ed->public_key(), msg, eds); });
      fmt::print("          sign/s    verify/s\n");
      fmt::print("sr25519 {:8.0f} {:11.0f}\n", sr_sign, sr_verify);
      fmt::print("ed25519 {:8.0f} {:11.0f}\n", ed_sign, ed_verify);
      return 0;
    }
    if (*bench_chain) {
      auto dir = std::filesystem::temp_directory_path() /
                 ("bistro-bench-chain-" + std::to_string(getpid()));
      auto r = run_chain_bench(dir, bench_chain_uids, bench_chain_validators, bench_chain_procs,
                               bench_chain_seconds);
      fmt::print("bench chain: {} uids, {} validators with dense weights\n", bench_chain_uids,
                 bench_chain_validators);
      fmt::print(
          "  epoch (median of 15)  yuma3 {:.2f} ms | yuma3+liquid alpha {:.2f} ms | classic "
          "{:.2f} ms  (goal < 50 ms)\n",
          r.epoch_ms_yuma3, r.epoch_ms_liquid, r.epoch_ms_classic);
      fmt::print(
          "  SQLite chain, {} processes at once: set_weights ({} uids) {:.0f}/s, "
          "set_commitment {:.0f}/s\n",
          r.processes, bench_chain_uids, r.set_weights_per_s, r.commitments_per_s);
      return 0;
    }
    if (*bench_data) {
      auto ds = cli::open_dataset(bench_data_dataset);
      const auto model = default_tokenizer_path();
      const Tokenizer tok(model);
      const auto r = run_data_bench(*ds, tok, model.string(), bench_data_docs, bench_data_seq);
      fmt::print("bench data: {} documents, {:.1f} MB, {} tokens ({:.2f} bytes/token), 1 thread\n",
                 r.documents, r.bytes / 1e6, r.tokens, double(r.bytes) / r.tokens);
      fmt::print("  bistro encode + pack  {:10.0f} tokens/s  {:6.2f} s\n",
                 r.tokens / r.bistro_seconds, r.bistro_seconds);
      fmt::print("  spm_encode            {:10.0f} tokens/s  {:6.2f} s\n", r.tokens / r.spm_seconds,
                 r.spm_seconds);
      fmt::print("  ratio bistro/spm_encode {:.2f}x\n", r.spm_seconds / r.bistro_seconds);
      return 0;
    }
    if (*info_cmd) {
      LlamaConfig c = checkpoint_dir.empty()
                          ? info_model.resolve()
                          : load_model(checkpoint_dir, c10::Device(c10::kCPU))->config();
      fmt::print("{}parameters: {}\n", c.to_json(), c.parameter_count());
      return 0;
    }
    if (*init_cmd) {
      init_runtime(0);
      Llama m(init_model.resolve());
      m->init_weights(init_seed);
      save_checkpoint(init_out, m, default_tokenizer_path());
      fmt::print("wrote {} ({} parameters)\n", init_out, m->config().parameter_count());
      return 0;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "bistro: error: {}\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    fmt::print(stderr, "bistro: error: {}\n", error_line(e));
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "bistro: error: {}\n", error_line(e));
    return 1;
  }
  return 0;
}
