// bistro data prepare | pages | stats | train-tokenizer
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/data/hf_dataset.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/data/page_batches.hpp"
#include "bistro/data/pages.hpp"
#include "bistro/data/tokenizer.hpp"
#include "commands.hpp"

namespace bistro::cli {
namespace fs = std::filesystem;

void Progress::update(uint64_t done, uint64_t total) {
  const double f = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  if (isatty(STDERR_FILENO)) {
    const int width = 30, filled = static_cast<int>(f * width);
    fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {}/{}", label_, std::string(filled, '='),
               std::string(width - filled, ' '), 100 * f, done, total);
    if (done >= total) fmt::print(stderr, "\n");
  } else if (static_cast<int>(f * 10) != last_decile_) {
    last_decile_ = static_cast<int>(f * 10);
    fmt::print(stderr, "{} {:3.0f}% ({}/{})\n", label_, 100 * f, done, total);
  }
}

namespace {

std::vector<uint8_t> parse_hex(const std::string& hex) {
  std::string h = hex.rfind("0x", 0) == 0 ? hex.substr(2) : hex;
  check(h.size() % 2 == 0 && h.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos,
        "invalid hex '{}'", hex);
  std::vector<uint8_t> out;
  for (size_t i = 0; i < h.size(); i += 2) out.push_back(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

}  // namespace

std::unique_ptr<Dataset> open_dataset(const std::string& spec) {
  if (spec.rfind("hf:", 0) == 0) {
    HfOptions o;
    o.dataset = spec.substr(3);
    if (const char* e = std::getenv("BISTRO_HF_ENDPOINT")) o.endpoint = e;
    o.cache_dir = bistro_home() / "cache" / "hf";
    return std::make_unique<HfDataset>(o);
  }
  if (!spec.empty()) return std::make_unique<LocalDataset>(spec);
  const auto def = default_corpus_dir();
  if (!fs::exists(def / "COMPLETE")) {
    Progress bar("building the default corpus");
    build_default_corpus(def, {}, false, [&](uint64_t d, uint64_t t) { bar.update(d, t); });
  }
  return std::make_unique<LocalDataset>(def);
}

std::vector<Command> add_data_commands(CLI::App& app) {
  std::vector<Command> out;
  auto* data = app.add_subcommand("data", "datasets, corpus, tokenizer, pages");
  data->require_subcommand(1);

  struct PrepareArgs {
    std::string out;
    bool force = false;
  };
  auto prepare = std::make_shared<PrepareArgs>();
  auto* prep = data->add_subcommand("prepare", "build the default corpus from Debian's packages");
  prep->add_option("--out", prepare->out, "directory (default: $BISTRO_HOME/corpus/default)");
  prep->add_flag("--force", prepare->force, "rebuild even if complete");
  out.push_back({prep, [prepare] {
                   const fs::path dir =
                       prepare->out.empty() ? default_corpus_dir() : fs::path(prepare->out);
                   Progress bar("corpus");
                   const auto s = build_default_corpus(
                       dir, {}, prepare->force, [&](uint64_t d, uint64_t t) { bar.update(d, t); });
                   fmt::print("corpus {}: {} documents, {:.1f} MB of text, {} configs\n",
                              dir.string(), s.documents, s.bytes / 1e6, s.configs);
                   return 0;
                 }});

  struct PagesArgs {
    uint64_t window = 0, uid = 0;
    size_t n = 3;
    std::string dataset, block_hash;
  };
  auto pa = std::make_shared<PagesArgs>();
  auto* pages_cmd = data->add_subcommand("pages", "print the pages of a window");
  pages_cmd->add_option("--window", pa->window, "window")->required();
  pages_cmd->add_option("--uid", pa->uid, "miner uid (local pages)");
  pages_cmd->add_option("--n", pa->n, "number of pages");
  pages_cmd->add_option("--block-hash", pa->block_hash,
                        "hex hash of the window's last block: "
                        "print the global pages instead");
  pages_cmd->add_option("--dataset", pa->dataset, "dataset: DIR or hf:ORG/NAME (default corpus)");
  out.push_back({pages_cmd, [pa] {
                   auto ds = open_dataset(pa->dataset);
                   auto& d = *ds;
                   const uint64_t key =
                       pa->block_hash.empty()
                           ? local_pages_key(pa->window, pa->uid)
                           : global_pages_key(pa->window, parse_hex(pa->block_hash));
                   for (const auto& p : pages(key, pa->n, d.configs())) {
                     fmt::print("{}\t{}\n", p.config, p.offset);
                   }
                   return 0;
                 }});

  struct StatsArgs {
    std::string dataset, tokenizer;
    size_t pages = 20;
    int64_t seq_len = 2048;
  };
  auto sa = std::make_shared<StatsArgs>();
  auto* stats_cmd = data->add_subcommand("stats", "dataset, tokens per page, padding waste");
  stats_cmd->add_option("--dataset", sa->dataset, "dataset: DIR or hf:ORG/NAME (default corpus)");
  stats_cmd->add_option("--tokenizer", sa->tokenizer, "SentencePiece model (default bundled)");
  stats_cmd->add_option("--pages", sa->pages, "pages to sample (windows 0.., uid 0)");
  stats_cmd->add_option("--seq-len", sa->seq_len, "sequence length for the layouts");
  out.push_back(
      {stats_cmd, [sa] {
         auto dsp = open_dataset(sa->dataset);
         auto& ds = *dsp;
         const auto configs = ds.configs();
         uint64_t rows = 0;
         for (const auto& c : configs) rows += c.num_rows;
         const auto skips = ds.skips();
         fmt::print(
             "dataset {}: {} configs, {} rows; skipped {} (bad JSON {}, no text "
             "{}, bad UTF-8 {}, empty {})\n",
             ds.describe(), configs.size(), rows, skips.total(), skips.bad_json, skips.no_text,
             skips.bad_utf8, skips.empty);
         Tokenizer tok(sa->tokenizer.empty() ? default_tokenizer_path() : fs::path(sa->tokenizer));
         const auto sample = pages(local_pages_key(0, 0), sa->pages, configs);
         for (auto layout : {BatchLayout::Padded, BatchLayout::Packed}) {
           PageBatchOptions o{.batch_rows = 8, .seq_len = sa->seq_len, .layout = layout};
           LayoutStats st;
           const auto t0 = std::chrono::steady_clock::now();
           page_batches(ds, tok, sample, o, &st);
           const double secs =
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
           fmt::print(
               "{:6s} seq {}: {:.0f} tokens/page, {:.1f}% padding, {} truncated "
               "documents, {:.0f} tokens/s (tokenise + lay out)\n",
               layout == BatchLayout::Padded ? "padded" : "packed", sa->seq_len,
               static_cast<double>(st.tokens) / sample.size(), 100 * st.padding_fraction(),
               st.truncated, st.tokens / secs);
         }
         return 0;
       }});

  struct TrainTokArgs {
    std::string dataset, out = "bistro-8k";
    int vocab = 8192;
    uint64_t max_docs = 400'000;
  };
  auto ta = std::make_shared<TrainTokArgs>();
  auto* tt = data->add_subcommand("train-tokenizer", "train a SentencePiece BPE tokenizer");
  tt->add_option("--dataset", ta->dataset, "dataset: DIR or hf:ORG/NAME (default corpus)");
  tt->add_option("--out", ta->out, "output prefix (writes PREFIX.model, PREFIX.vocab)");
  tt->add_option("--vocab", ta->vocab, "vocabulary size");
  tt->add_option("--max-docs", ta->max_docs, "documents to train on");
  out.push_back({tt, [ta] {
                   auto ds = open_dataset(ta->dataset);
                   train_tokenizer(*ds, ta->out, ta->vocab, ta->max_docs);
                   fmt::print("wrote {}.model\n", ta->out);
                   return 0;
                 }});
  return out;
}

}  // namespace bistro::cli
