// bistro eval CHECKPOINT|BUCKET_URL [--dataset SPEC ...] [--tasks FILE.jsonl ...] [--json OUT]
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/model/hf_tokenizer.hpp"
#include "bistro/ops/eval.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/storage/sigv4.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/train/evaluate.hpp"
#include "commands.hpp"

namespace bistro::cli {
namespace fs = std::filesystem;

namespace {
struct EvalArgs {
  std::string checkpoint, json_out, save_batches;
  std::vector<std::string> datasets, tasks;
  EvalOptions options;
  int threads = 0;
  std::string device = "cpu", dtype = "fp32";
};

// A checkpoint directory, or the latest one published in a bucket (a URL: s3://, file://).
fs::path resolve_checkpoint(const std::string& spec, nlohmann::json& out) {
  if (spec.find("://") == std::string::npos) {
    out["checkpoint"] = spec;
    return spec;
  }
  uint64_t window = 0;
  const auto cache = bistro_home() / "cache" / "checkpoints" / sha256_hex(spec).substr(0, 16);
  const auto dir = fetch_published_checkpoint(spec, cache, &window);
  out["checkpoint"] = dir.string();
  out["bucket"] = spec;
  out["window"] = window;
  fmt::print("bistro eval: {}: the master's checkpoint of window {}\n", spec, window);
  return dir;
}

int run_eval(const EvalArgs& a) {
  init_runtime(a.threads);
  const Compute compute = parse_compute(a.device, a.dtype);
  nlohmann::json out;
  const auto dir = resolve_checkpoint(a.checkpoint, out);
  auto model = load_model(dir, compute.device);
  model->set_bf16(compute.bf16);
  out["device"] = compute.describe();
  const auto& config = model->config();
  const Tokenizer tok = checkpoint_tokenizer(dir, config.vocab_size);
  fmt::print("bistro eval: {} ({} parameters, tokenizer {} pieces)\n", dir.string(),
             config.parameter_count(), tok.vocab_size());
  out["parameters"] = config.parameter_count();
  std::vector<std::vector<McItem>> tasks;  // read first: a malformed file fails before any work
  for (const auto& file : a.tasks) tasks.push_back(read_mc_tasks(file));
  out["datasets"] = nlohmann::json::array();
  out["tasks"] = nlohmann::json::array();
  std::vector<std::string> datasets = a.datasets;
  if (datasets.empty()) datasets.push_back("");  // the default corpus
  std::vector<std::string> rows;
  for (const auto& spec : datasets) {
    const std::string name = spec.empty() ? "default corpus" : spec;
    auto ds = open_dataset(spec);
    Progress bar("eval " + name);
    const auto r = eval_held_out(
        model, tok, *ds, name, a.options, [&](uint64_t d, uint64_t t) { bar.update(d, t); },
        a.save_batches);
    out["datasets"].push_back({{"dataset", r.dataset},
                               {"pages", a.options.pages},
                               {"tokens", r.tokens},
                               {"loss", r.loss},
                               {"perplexity", r.perplexity},
                               {"seconds", r.seconds},
                               {"tokens_per_s", r.tokens / r.seconds}});
    rows.push_back(fmt::format("  {:<32} {:>9} {:>8.4f} {:>10.2f} {:>10.0f}", r.dataset, r.tokens,
                               r.loss, r.perplexity, r.tokens / r.seconds));
  }
  if (!rows.empty()) {
    fmt::print("  {:<32} {:>9} {:>8} {:>10} {:>10}\n", "dataset (held-out pages)", "tokens", "loss",
               "perplexity", "tokens/s");
    for (const auto& r : rows) fmt::print("{}\n", r);
  }
  if (!a.tasks.empty())
    fmt::print("  {:<32} {:>9} {:>8} {:>10}\n", "task", "items", "acc", "acc_norm");
  for (size_t i = 0; i < a.tasks.size(); ++i) {
    const auto& file = a.tasks[i];
    Progress bar("eval " + file);
    const auto r = eval_mc(model, tok, tasks[i], fs::path(file).stem().string(),
                           [&](uint64_t d, uint64_t t) { bar.update(d, t); });
    out["tasks"].push_back({{"task", r.task},
                            {"file", file},
                            {"items", r.items},
                            {"acc", r.acc},
                            {"acc_norm", r.acc_norm},
                            {"seconds", r.seconds}});
    fmt::print("  {:<32} {:>9} {:>8.4f} {:>10.4f}\n", r.task, r.items, r.acc, r.acc_norm);
  }
  if (!a.json_out.empty()) write_file_atomic(a.json_out, out.dump(2));
  return 0;
}
}  // namespace

std::vector<Command> add_eval_commands(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* c = app.add_subcommand(
      "eval", "held-out loss and perplexity of a checkpoint, and multiple-choice accuracy");
  c->add_option("checkpoint", a->checkpoint,
                "a checkpoint directory, or a bucket URL (s3://..., file://...): the master's "
                "latest published checkpoint")
      ->required();
  c->add_option("--dataset", a->datasets,
                "repeatable: a directory, hf:ORG/NAME, or \"\" for the default corpus (the "
                "default)");
  c->add_option("--tasks", a->tasks,
                "repeatable: multiple-choice JSONL in lm-evaluation-harness's shape (query, "
                "choices, gold)");
  c->add_option("--pages", a->options.pages, "held-out pages per dataset")->capture_default_str();
  c->add_option("--batch", a->options.batch_rows, "rows per micro-batch")->capture_default_str();
  c->add_option("--seq-len", a->options.seq_len, "tokens per row")->capture_default_str();
  c->add_option("--json", a->json_out, "write the results as JSON");
  c->add_option("--save-batches", a->save_batches,
                "write the evaluated token batches (safetensors) for an independent check");
  c->add_option("--threads", a->threads, "libtorch threads (0: all cores)");
  c->add_option("--device", a->device, "cpu, cuda or cuda:N");
  c->add_option("--dtype", a->dtype, "fp32 or bf16 (autocast)");
  return {{c, [a] { return run_eval(*a); }}};
}

}  // namespace bistro::cli
