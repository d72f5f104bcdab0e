// The default embedded corpus: English prose that Debian packages ship, converted once into a
// LocalDataset directory so that bistro trains with no network.
//   - dict-gcide: the GNU Collaborative International Dictionary of English (Webster 1913 and
//     later), one document per entry, ~200k entries;
//   - fortunes / fortunes-min: one document per fortune.
// Written as gcide-NN.jsonl (20,000 entries per config) and fortunes.jsonl, then a COMPLETE
// marker, so an interrupted build is redone and a finished one is not.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace bistro {

struct CorpusSources {
  std::filesystem::path gcide = "/usr/share/dictd/gcide.dict.dz";
  std::filesystem::path fortunes = "/usr/share/games/fortunes";
};

struct CorpusStats {
  uint64_t documents = 0;
  uint64_t bytes = 0;
  uint64_t configs = 0;
};

// Splits the decompressed GCIDE dictionary into cleaned entries (one line each; editorial tags
// like "[1913 Webster]" removed; the 00-database-* header entries dropped).
std::vector<std::string> gcide_entries(std::string_view dict_text);
// Splits a fortune file into fortunes (separated by lines holding only "%").
std::vector<std::string> fortune_entries(std::string_view text);

// The default corpus directory: bistro_home()/corpus/default (core/files.hpp).
std::filesystem::path default_corpus_dir();

// Builds the corpus in `dir` unless its COMPLETE marker exists (or `force`). `progress` gets
// (done, total) in documents. Throws bistro::Error naming a missing source package.
CorpusStats build_default_corpus(const std::filesystem::path& dir, const CorpusSources& sources,
                                 bool force,
                                 const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace bistro
