// LocalDataset: a directory of data files, one config per file, named by the file name without
// its extensions. Formats: .jsonl (one JSON object per line, text in "text"), .txt (documents
// separated by blank lines), each optionally compressed as .gz or .zst.
//
// Bad rows never stop loading: a line that is not JSON, has no string "text", or is not valid
// UTF-8, and empty documents, are skipped and counted per reason (skips()).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "bistro/data/dataset.hpp"

namespace bistro {

// Splits one file's decompressed bytes into documents, counting skips.
std::vector<std::string> parse_jsonl(std::string_view bytes, SkipCounts& skips);
std::vector<std::string> parse_text(std::string_view bytes, SkipCounts& skips);

class LocalDataset final : public Dataset {
 public:
  // Throws bistro::Error if the directory does not exist or holds no data files.
  explicit LocalDataset(std::filesystem::path dir);

  std::vector<ConfigInfo> configs() override;
  std::vector<std::string> rows(const std::string& config, uint64_t offset,
                                uint64_t length) override;
  std::string describe() const override { return "local:" + dir_.string(); }

  SkipCounts skips() override;

 private:
  const std::vector<std::string>& load(const std::string& config);

  std::filesystem::path dir_;
  std::map<std::string, std::filesystem::path> files_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> docs_;
  SkipCounts skips_;
};

}  // namespace bistro
