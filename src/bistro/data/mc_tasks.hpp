// Multiple-choice tasks from a local JSONL file in lm-evaluation-harness's processed-document
// shape: one JSON object per line with the context ("query", or "context"), "choices" (a
// non-empty array of strings) and the right answer's index ("gold", or "label"). Blank lines are
// skipped. A file is the user's, not a peer's, but it is still parsed as hostile bytes.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace bistro {

struct McItem {
  std::string context;
  std::vector<std::string> choices;
  size_t gold = 0;
};

// Throws bistro::Error naming the file, the line and the reason for a malformed line (not JSON,
// a missing or mistyped field, a gold index outside the choices), and for a file with no items.
std::vector<McItem> parse_mc_tasks(std::string_view text, const std::string& origin);
std::vector<McItem> read_mc_tasks(const std::filesystem::path& file);

}  // namespace bistro
