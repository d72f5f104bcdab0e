// HfDataset: the Hugging Face datasets-server that BISTRO read fineweb-edu through.
//   GET {endpoint}/size?dataset=D            -> configs and their splits' row counts
//   GET {endpoint}/rows?dataset=D&config=C&split=S&offset=O&length=L  -> rows, text in row.text
// Every answer is cached on disk (keyed by dataset, config, split, offset, length; written
// atomically), so a page is fetched once per machine. Transport errors, 5xx and 429 are retried
// with exponential backoff and jitter (429 honours Retry-After); other 4xx and malformed JSON
// fail at once with the server's own message.
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>

#include "bistro/data/dataset.hpp"
#include "bistro/data/http.hpp"

namespace bistro {

struct HfOptions {
  std::string endpoint = "https://datasets-server.huggingface.co";
  std::string dataset;  // e.g. HuggingFaceFW/fineweb-edu-score-2
  std::string split = "train";
  std::filesystem::path cache_dir;  // empty: no cache
  int max_attempts = 5;
  double backoff_s = 1.0;  // first retry delay; doubles each time, +-50% jitter
  double max_backoff_s = 60.0;
  uint64_t max_length = 100;  // the server's page limit: longer reads are split
  HttpOptions http;
};

class HfDataset final : public Dataset {
 public:
  explicit HfDataset(HfOptions options);

  std::vector<ConfigInfo> configs() override;
  std::vector<std::string> rows(const std::string& config, uint64_t offset,
                                uint64_t length) override;
  std::string describe() const override;
  SkipCounts skips() override;

  uint64_t requests() const { return requests_; }  // HTTP requests actually made

 private:
  std::string fetch(const std::string& path_and_query, const std::string& cache_key);

  HfOptions o_;
  std::mutex mu_;
  std::optional<std::vector<ConfigInfo>> configs_;
  SkipCounts skips_;
  uint64_t requests_ = 0;
};

}  // namespace bistro
