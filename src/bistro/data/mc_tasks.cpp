#include "bistro/data/mc_tasks.hpp"

#include <nlohmann/json.hpp>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"

namespace bistro {

namespace {
McItem parse_item(std::string_view line, const std::string& where) {
  const auto j = nlohmann::json::parse(line, nullptr, false);
  check(j.is_object(), "{}: not a JSON object", where);
  McItem item;
  const char* ctx = j.contains("query") ? "query" : "context";
  check(j.contains(ctx) && j[ctx].is_string(), "{}: no \"query\" or \"context\" string", where);
  item.context = j[ctx].get<std::string>();
  check(j.contains("choices") && j["choices"].is_array() && !j["choices"].empty(),
        "{}: \"choices\" must be a non-empty array of strings", where);
  for (const auto& c : j["choices"]) {
    check(c.is_string(), "{}: \"choices\" must be a non-empty array of strings", where);
    item.choices.push_back(c.get<std::string>());
  }
  const char* gold = j.contains("gold") ? "gold" : "label";
  check(j.contains(gold) && j[gold].is_number_integer(), "{}: no integer \"gold\" or \"label\"",
        where);
  const auto g = j[gold].get<int64_t>();
  check(g >= 0 && static_cast<size_t>(g) < item.choices.size(),
        "{}: \"{}\" {} is not the index of one of its {} choices", where, gold, g,
        item.choices.size());
  item.gold = static_cast<size_t>(g);
  return item;
}
}  // namespace

std::vector<McItem> parse_mc_tasks(std::string_view text, const std::string& origin) {
  std::vector<McItem> out;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    out.push_back(parse_item(line, fmt::format("{}:{}", origin, line_no)));
  }
  check(!out.empty(), "{}: no tasks (expected JSON lines with query, choices and gold)", origin);
  return out;
}

std::vector<McItem> read_mc_tasks(const std::filesystem::path& file) {
  check(std::filesystem::exists(file), "task file {} does not exist", file.string());
  return parse_mc_tasks(read_file(file), file.string());
}

}  // namespace bistro
