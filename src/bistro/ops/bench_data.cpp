#include "bistro/ops/bench_data.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/data/batches.hpp"
#include "bistro/data/dataset.hpp"
#include "bistro/data/tokenizer.hpp"

namespace bistro {
namespace fs = std::filesystem;

DataBenchResult run_data_bench(Dataset& dataset, const Tokenizer& tokenizer,
                               const std::string& model_path, uint64_t max_documents,
                               int64_t seq_len) {
  DataBenchResult r;
  std::vector<std::string> docs;
  for (const auto& c : dataset.configs()) {
    if (c.num_rows == 0 || docs.size() >= max_documents) continue;
    for (auto& d :
         dataset.rows(c.name, 0, std::min<uint64_t>(c.num_rows, max_documents - docs.size()))) {
      for (auto& ch : d) {
        if (ch == '\n' || ch == '\r') ch = ' ';
      }
      r.bytes += d.size();
      docs.push_back(std::move(d));
    }
  }
  r.documents = docs.size();
  const fs::path dir =
      fs::temp_directory_path() / ("bistro_bench_data_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    AtomicFile f(dir / "in.txt");
    for (const auto& d : docs) {
      f.write(d);
      f.write("\n");
    }
    f.commit();
  }
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(docs.size());
  for (const auto& d : docs) ids.push_back(tokenizer.encode_document(d, size_t{1} << 20));
  LayoutStats stats;
  layout_batches(ids, 8, seq_len, BatchLayout::Packed, tokenizer.eos_id(), &stats);
  r.bistro_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.tokens = stats.tokens;

  const std::string cmd =
      fmt::format("spm_encode --model='{}' --output_format=id < '{}' > /dev/null", model_path,
                  (dir / "in.txt").string());
  t0 = Clock::now();
  const int rc = std::system(cmd.c_str());
  r.spm_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  fs::remove_all(dir);
  check(rc == 0, "spm_encode failed (exit {}); install the sentencepiece package", rc);
  return r;
}

}  // namespace bistro
