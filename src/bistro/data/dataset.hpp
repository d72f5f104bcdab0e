// A dataset is a list of configs; a config is a list of rows of text. This is the shape of the
// Hugging Face datasets-server (configs = dumps of fineweb-edu) and of a local directory (configs
// = files), so pages can be named (config, row offset) whatever the source.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bistro {

struct ConfigInfo {
  std::string name;
  uint64_t num_rows = 0;
  bool operator==(const ConfigInfo&) const = default;
};

// Rows a source could not use, by reason: counted and reported, never fatal.
struct SkipCounts {
  uint64_t bad_json = 0;
  uint64_t no_text = 0;
  uint64_t bad_utf8 = 0;
  uint64_t empty = 0;
  uint64_t total() const { return bad_json + no_text + bad_utf8 + empty; }
};

// Appends a document unless it is invalid UTF-8 or blank, which are counted instead.
void add_document(std::string doc, std::vector<std::string>& out, SkipCounts& skips);

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Every config with its row count, sorted by name (the order pages() relies on).
  virtual std::vector<ConfigInfo> configs() = 0;
  // Rows [offset, offset + length) of a config, clipped at its end. Throws bistro::Error naming
  // the config for an unknown config or an offset past the end.
  virtual std::vector<std::string> rows(const std::string& config, uint64_t offset,
                                        uint64_t length) = 0;
  virtual std::string describe() const = 0;
  // Rows skipped so far, by reason.
  virtual SkipCounts skips() = 0;
};

}  // namespace bistro
