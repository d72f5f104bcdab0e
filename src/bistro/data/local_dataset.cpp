#include "bistro/data/local_dataset.hpp"

#include <nlohmann/json.hpp>

#include "bistro/core/compression.hpp"
#include "bistro/core/error.hpp"

namespace bistro {
namespace fs = std::filesystem;

namespace {
// "a.jsonl.gz" -> ("a", "jsonl"); unsupported names give an empty format.
std::pair<std::string, std::string> config_and_format(const fs::path& p) {
  std::string name = p.filename().string();
  for (const char* z : {".gz", ".zst"}) {
    if (name.ends_with(z)) name.resize(name.size() - std::strlen(z));
  }
  for (const char* f : {"jsonl", "txt"}) {
    const std::string ext = std::string(".") + f;
    if (name.ends_with(ext) && name.size() > ext.size()) {
      return {name.substr(0, name.size() - ext.size()), f};
    }
  }
  return {"", ""};
}
}  // namespace

std::vector<std::string> parse_jsonl(std::string_view bytes, SkipCounts& skips) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) nl = bytes.size();
    const auto line = bytes.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank line
    if (!valid_utf8(line)) {
      ++skips.bad_utf8;
      continue;
    }
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      ++skips.bad_json;
    } else if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      ++skips.no_text;
    } else {
      add_document(j["text"].get<std::string>(), out, skips);
    }
  }
  return out;
}

std::vector<std::string> parse_text(std::string_view bytes, SkipCounts& skips) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find("\n\n", pos);
    if (end == std::string_view::npos) end = bytes.size();
    std::string doc(bytes.substr(pos, end - pos));
    pos = end + 2;
    while (pos < bytes.size() && bytes[pos] == '\n') ++pos;
    if (!doc.empty()) add_document(std::move(doc), out, skips);
  }
  return out;
}

LocalDataset::LocalDataset(fs::path dir) : dir_(std::move(dir)) {
  check(fs::is_directory(dir_), "dataset directory {} does not exist", dir_.string());
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (!e.is_regular_file()) continue;
    auto [config, format] = config_and_format(e.path());
    if (format.empty()) continue;
    auto [it, inserted] = files_.emplace(config, e.path());
    check(inserted, "dataset {}: two files give config '{}' ({} and {})", dir_.string(), config,
          it->second.filename().string(), e.path().filename().string());
  }
  check(!files_.empty(), "dataset {}: no .jsonl or .txt files (optionally .gz/.zst)",
        dir_.string());
}

const std::vector<std::string>& LocalDataset::load(const std::string& config) {
  auto it = docs_.find(config);
  if (it != docs_.end()) return it->second;
  auto f = files_.find(config);
  check(f != files_.end(), "dataset {}: unknown config '{}'", dir_.string(), config);
  const std::string bytes = read_maybe_compressed(f->second);
  const bool jsonl = config_and_format(f->second).second == "jsonl";
  auto docs = jsonl ? parse_jsonl(bytes, skips_) : parse_text(bytes, skips_);
  return docs_.emplace(config, std::move(docs)).first->second;
}

std::vector<ConfigInfo> LocalDataset::configs() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ConfigInfo> out;
  for (const auto& [name, path] : files_) out.push_back({name, load(name).size()});
  return out;  // std::map keeps names sorted
}

std::vector<std::string> LocalDataset::rows(const std::string& config, uint64_t offset,
                                            uint64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto& docs = load(config);
  check(offset < docs.size(), "dataset {}: config '{}' has {} rows, offset {} is past the end",
        dir_.string(), config, docs.size(), offset);
  const uint64_t end = std::min<uint64_t>(docs.size(), offset + length);
  return {docs.begin() + offset, docs.begin() + end};
}

SkipCounts LocalDataset::skips() {
  std::lock_guard<std::mutex> lock(mu_);
  return skips_;
}

}  // namespace bistro
