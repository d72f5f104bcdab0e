#include "bistro/data/corpus.hpp"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "bistro/core/compression.hpp"
#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"

namespace bistro {
namespace fs = std::filesystem;

namespace {
constexpr size_t kEntriesPerConfig = 20'000;
constexpr size_t kMinDocBytes = 40;

bool is_tag_line(std::string_view line) {
  // Whole-line editorial tags: "[1913 Webster]", "[Webster 1913 Suppl.]", "[PJC]".
  return line.size() >= 2 && line.front() == '[' && line.back() == ']' &&
         line.find('[', 1) == std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

void write_jsonl(const fs::path& path, const std::vector<std::string>& docs, size_t begin,
                 size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    out += nlohmann::json{{"text", docs[i]}}.dump(-1, ' ', false,
                                                  nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  write_file_atomic(path, out);
}
}  // namespace

std::vector<std::string> gcide_entries(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  auto flush = [&] {
    if (current.size() >= kMinDocBytes && current.rfind("00-database", 0) != 0 &&
        valid_utf8(current)) {
      out.push_back(current);
    }
    current.clear();
  };
  size_t pos = 0;
  bool blank_before = true;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view raw = text.substr(pos, nl - pos);
    pos = nl + 1;
    const auto line = trim(raw);
    if (line.empty()) {
      blank_before = true;
      continue;
    }
    // An entry starts at column 0 after a blank line; indented lines continue it.
    if (blank_before && raw.front() != ' ' && raw.front() != '\t') flush();
    blank_before = false;
    if (is_tag_line(line)) continue;
    if (!current.empty()) current += ' ';
    current += line;
  }
  flush();
  return out;
}

std::vector<std::string> fortune_entries(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  auto flush = [&] {
    const auto t = trim(current);
    if (t.size() >= kMinDocBytes && valid_utf8(t)) out.emplace_back(t);
    current.clear();
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line == "%") {
      flush();
    } else {
      current.append(line);
      current += '\n';
    }
  }
  flush();
  return out;
}

fs::path default_corpus_dir() {
  return bistro_home() / "corpus" / "default";
}

CorpusStats build_default_corpus(const fs::path& dir, const CorpusSources& sources, bool force,
                                 const std::function<void(uint64_t, uint64_t)>& progress) {
  const auto marker = dir / "COMPLETE";
  CorpusStats stats;
  if (!force && fs::exists(marker)) {
    const auto text = read_file(marker);
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object()) {
      stats.documents = j.value("documents", uint64_t{0});
      stats.bytes = j.value("bytes", uint64_t{0});
      stats.configs = j.value("configs", uint64_t{0});
      return stats;
    }
  }
  check(fs::exists(sources.gcide),
        "corpus source {} is missing: install dict-gcide (scripts/setup)", sources.gcide.string());
  check(fs::is_directory(sources.fortunes),
        "corpus source {} is missing: install fortunes (scripts/setup)", sources.fortunes.string());
  fs::create_directories(dir);
  fs::remove(marker);

  const auto gcide = gcide_entries(gunzip(read_file(sources.gcide), sources.gcide.string()));
  std::vector<std::string> fortunes;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(sources.fortunes)) {
    // Fortune text files have no extension; .dat indexes and .u8 links are skipped.
    if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    for (auto& d : fortune_entries(read_file(f))) fortunes.push_back(std::move(d));
  }
  const uint64_t total = gcide.size() + fortunes.size();
  uint64_t done = 0;
  for (size_t b = 0, part = 0; b < gcide.size(); b += kEntriesPerConfig, ++part) {
    const size_t e = std::min(gcide.size(), b + kEntriesPerConfig);
    write_jsonl(dir / fmt::format("gcide-{:02d}.jsonl", part), gcide, b, e);
    ++stats.configs;
    done += e - b;
    if (progress) progress(done, total);
  }
  write_jsonl(dir / "fortunes.jsonl", fortunes, 0, fortunes.size());
  ++stats.configs;
  done += fortunes.size();
  if (progress) progress(done, total);
  stats.documents = total;
  for (const auto& d : gcide) stats.bytes += d.size();
  for (const auto& d : fortunes) stats.bytes += d.size();
  write_file_atomic(marker, nlohmann::json{{"documents", stats.documents},
                                           {"bytes", stats.bytes},
                                           {"configs", stats.configs}}
                                    .dump() +
                                "\n");
  return stats;
}

}  // namespace bistro
