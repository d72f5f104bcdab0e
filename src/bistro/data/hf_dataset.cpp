#include "bistro/data/hf_dataset.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "bistro/core/compression.hpp"
#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"

namespace bistro {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
// The server's {"error": "..."} message, if the body carries one.
std::string server_error(const std::string& body) {
  const auto j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    return j["error"].get<std::string>();
  }
  return body.substr(0, 200);
}

json parse_json(const std::string& body, const std::string& url) {
  auto j = json::parse(body, nullptr, false);
  check(!j.is_discarded(), "malformed JSON from {}", url);
  return j;
}
}  // namespace

HfDataset::HfDataset(HfOptions options) : o_(std::move(options)) {
  check(!o_.dataset.empty(), "datasets-server: no dataset name given");
  check(o_.max_attempts >= 1, "datasets-server: max_attempts must be at least 1");
  while (!o_.endpoint.empty() && o_.endpoint.back() == '/') o_.endpoint.pop_back();
  if (!o_.cache_dir.empty()) fs::create_directories(o_.cache_dir);
}

std::string HfDataset::describe() const {
  return "hf:" + o_.dataset + " via " + o_.endpoint;
}

std::string HfDataset::fetch(const std::string& path_and_query, const std::string& cache_key) {
  const fs::path cache = o_.cache_dir.empty()
                             ? fs::path()
                             : o_.cache_dir / fmt::format("{:016x}.json", rng::hash(cache_key));
  if (!cache.empty() && fs::exists(cache)) return read_file(cache);
  const std::string url = o_.endpoint + path_and_query;
  std::mt19937_64 jitter(std::random_device{}());
  double delay = o_.backoff_s;
  std::string last_problem;
  for (int attempt = 1; attempt <= o_.max_attempts; ++attempt) {
    double wait = delay;
    std::optional<HttpResponse> r;
    ++requests_;
    try {
      r = http_get(url, o_.http);
    } catch (const Error& e) {
      last_problem = e.what();  // transport failure: retried
    }
    if (r && r->status == 200) {
      parse_json(r->body, url);  // a malformed answer is an error, and is not cached
      if (!cache.empty()) write_file_atomic(cache, r->body);
      return r->body;
    }
    if (r) {
      const std::string message = server_error(r->body);
      // Other client errors will not change on retry.
      check(r->status == 429 || r->status >= 500, "GET {}: HTTP {}: {}", url, r->status, message);
      last_problem = fmt::format("HTTP {}: {}", r->status, message);
      if (r->status == 429 && r->headers.count("retry-after")) {
        try {
          wait = std::max(0.0, std::stod(r->headers.at("retry-after")));
        } catch (...) {
        }
      }
    }
    if (attempt == o_.max_attempts) break;
    std::uniform_real_distribution<double> j(0.5, 1.5);
    std::this_thread::sleep_for(
        std::chrono::duration<double>(std::min(o_.max_backoff_s, wait * j(jitter))));
    delay = std::min(o_.max_backoff_s, delay * 2);
  }
  fail("GET {}: gave up after {} attempts: {}", url, o_.max_attempts, last_problem);
}

std::vector<ConfigInfo> HfDataset::configs() {
  std::lock_guard<std::mutex> lock(mu_);
  if (configs_) return *configs_;
  const std::string q = "/size?dataset=" + url_escape(o_.dataset);
  const auto body = fetch(q, "size|" + o_.dataset);
  const auto j = parse_json(body, o_.endpoint + q);
  const auto where = o_.endpoint + q;
  check(j.is_object() && j.contains("size") && j["size"].is_object() &&
            j["size"].contains("splits") && j["size"]["splits"].is_array(),
        "{}: answer has no size.splits list", where);
  std::vector<ConfigInfo> out;
  for (const auto& s : j["size"]["splits"]) {
    check(s.is_object() && s.contains("config") && s["config"].is_string() && s.contains("split") &&
              s["split"].is_string() && s.contains("num_rows") &&
              s["num_rows"].is_number_unsigned(),
          "{}: a split entry lacks config, split or num_rows", where);
    if (s["split"] != o_.split) continue;
    out.push_back({s["config"].get<std::string>(), s["num_rows"].get<uint64_t>()});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  out.erase(std::unique(out.begin(), out.end(), [](auto& a, auto& b) { return a.name == b.name; }),
            out.end());
  check(!out.empty(), "{}: no config has a '{}' split", where, o_.split);
  configs_ = out;
  return out;
}

std::vector<std::string> HfDataset::rows(const std::string& config, uint64_t offset,
                                         uint64_t length) {
  std::vector<std::string> out;
  for (uint64_t done = 0; done < length;) {
    const uint64_t n = std::min(o_.max_length, length - done);
    const uint64_t at = offset + done;
    const std::string q =
        fmt::format("/rows?dataset={}&config={}&split={}&offset={}&length={}",
                    url_escape(o_.dataset), url_escape(config), url_escape(o_.split), at, n);
    std::string body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      body = fetch(q, fmt::format("rows|{}|{}|{}|{}|{}", o_.dataset, config, o_.split, at, n));
    }
    const auto where = o_.endpoint + q;
    const auto j = parse_json(body, where);
    check(j.is_object() && j.contains("rows") && j["rows"].is_array(),
          "{}: answer has no rows list", where);
    const auto& rows = j["rows"];
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& r : rows) {
      if (!r.is_object() || !r.contains("row") || !r["row"].is_object() ||
          !r["row"].contains("text") || !r["row"]["text"].is_string()) {
        ++skips_.no_text;
        continue;
      }
      add_document(r["row"]["text"].get<std::string>(), out, skips_);
    }
    if (rows.size() < n) break;  // the config ended
    done += n;
  }
  return out;
}

SkipCounts HfDataset::skips() {
  std::lock_guard<std::mutex> lock(mu_);
  return skips_;
}

}  // namespace bistro
