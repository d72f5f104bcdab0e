// The datasets-server client against a real HTTP server on loopback that the test starts and
// fills with fixtures shaped like the datasets-server's answers.
#include "bistro/data/hf_dataset.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "bistro/core/error.hpp"
#include "bistro/data/pages.hpp"
#include "test_util.hpp"

namespace bistro {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::error_of;

class FakeDatasetsServer {
 public:
  std::atomic<int> fail_5xx{0}, fail_429{0}, delay_ms{0};
  std::atomic<bool> malformed{false};

  FakeDatasetsServer() {
    srv_.Get("/size", [this](const httplib::Request& req, httplib::Response& res) {
      if (handle_faults(res)) return;
      if (req.get_param_value("dataset") != "org/corpus") return not_found(res);
      json splits = json::array();
      for (const auto& [config, rows] : configs_) {
        splits.push_back({{"dataset", "org/corpus"},
                          {"config", config},
                          {"split", "train"},
                          {"num_rows", rows},
                          {"num_bytes_parquet_files", 1234}});
      }
      splits.push_back(
          {{"dataset", "org/corpus"}, {"config", "CC-A"}, {"split", "test"}, {"num_rows", 7}});
      res.set_content(json{{"size", {{"dataset", {{"num_rows", 370}}}, {"splits", splits}}},
                           {"pending", json::array()},
                           {"failed", json::array()}}
                          .dump(),
                      "application/json");
    });
    srv_.Get("/rows", [this](const httplib::Request& req, httplib::Response& res) {
      if (handle_faults(res)) return;
      if (req.get_param_value("dataset") != "org/corpus") return not_found(res);
      const auto config = req.get_param_value("config");
      const uint64_t offset = std::stoull(req.get_param_value("offset"));
      const uint64_t length = std::stoull(req.get_param_value("length"));
      const uint64_t total = configs_.count(config) ? configs_.at(config) : 0;
      if (offset >= total || length > 100) {
        res.status = 422;
        res.set_content(R"({"error": "Parameter 'offset' must be below the number of rows"})",
                        "application/json");
        return;
      }
      json rows = json::array();
      for (uint64_t i = offset; i < std::min(total, offset + length); ++i) {
        json row = {{"id", i}};
        if (i % 50 != 7) row["text"] = config + " document " + std::to_string(i);  // 7, 57: none
        rows.push_back({{"row_idx", i}, {"row", row}, {"truncated_cells", json::array()}});
      }
      res.set_content(json{{"rows", rows}, {"num_rows_total", total}}.dump(), "application/json");
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    while (!srv_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeDatasetsServer() {
    srv_.stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  bool handle_faults(httplib::Response& res) {
    if (int d = delay_ms.load()) std::this_thread::sleep_for(std::chrono::milliseconds(d));
    if (fail_5xx > 0) {
      --fail_5xx;
      res.status = 503;
      res.set_content(R"({"error": "The server is busy."})", "application/json");
      return true;
    }
    if (fail_429 > 0) {
      --fail_429;
      res.status = 429;
      res.set_header("Retry-After", "0");
      res.set_content(R"({"error": "Too many requests."})", "application/json");
      return true;
    }
    if (malformed) {
      res.set_content("{\"rows\": [", "application/json");
      return true;
    }
    return false;
  }
  void not_found(httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error": "The dataset does not exist."})", "application/json");
  }

  std::map<std::string, uint64_t> configs_ = {{"CC-B", 120}, {"CC-A", 250}};
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
};

struct TempCache {
  fs::path path = fs::temp_directory_path() / ("bistro_hf_" + std::to_string(::getpid()));
  TempCache() { fs::remove_all(path); }
  ~TempCache() { fs::remove_all(path); }
};

HfOptions options(const FakeDatasetsServer& s, const fs::path& cache = {}) {
  HfOptions o;
  o.endpoint = s.endpoint();
  o.dataset = "org/corpus";
  o.cache_dir = cache;
  o.backoff_s = 0.01;
  o.http.timeout_s = 5;
  return o;
}

TEST(HfDataset, ListsTheSplitsConfigsSorted) {
  FakeDatasetsServer s;
  HfDataset ds(options(s));
  EXPECT_EQ(ds.configs(), (std::vector<ConfigInfo>{{"CC-A", 250}, {"CC-B", 120}}));
  ds.configs();
  EXPECT_EQ(ds.requests(), 1u);  // remembered
}

TEST(HfDataset, ReadsRowsCountsSkipsAndSplitsLongReads) {
  FakeDatasetsServer s;
  auto o = options(s);
  HfDataset ds(o);
  const auto rows = ds.rows("CC-A", 0, 250);  // 3 requests of at most 100 rows
  EXPECT_EQ(ds.requests(), 3u);
  EXPECT_EQ(rows.size(), 250u - 5u);  // rows 7, 57, 107, 157, 207 have no text
  EXPECT_EQ(rows.front(), "CC-A document 0");
  EXPECT_EQ(ds.skips().no_text, 5u);
  EXPECT_EQ(ds.rows("CC-B", 100, 100).size(), 19u);  // clipped at 120 rows; row 107 skipped
}

TEST(HfDataset, CachesPagesOnDisk) {
  FakeDatasetsServer s;
  TempCache cache;
  {
    HfDataset ds(options(s, cache.path));
    ds.rows("CC-A", 100, 100);
    ds.rows("CC-A", 100, 100);
    EXPECT_EQ(ds.requests(), 1u);
  }
  HfDataset again(options(s, cache.path));  // a new process would see the same files
  EXPECT_EQ(again.rows("CC-A", 100, 100).front(), "CC-A document 100");
  EXPECT_EQ(again.requests(), 0u);
}

TEST(HfDataset, RetriesServerErrorsAndRateLimits) {
  FakeDatasetsServer s;
  s.fail_5xx = 2;
  HfDataset ds(options(s));
  EXPECT_EQ(ds.rows("CC-A", 0, 10).size(), 9u);
  EXPECT_EQ(ds.requests(), 3u);
  s.fail_429 = 1;
  EXPECT_EQ(ds.rows("CC-B", 0, 10).size(), 9u);
  EXPECT_EQ(ds.requests(), 5u);
}

TEST(HfDataset, GivesUpWithTheLastReason) {
  FakeDatasetsServer s;
  s.fail_5xx = 100;
  auto o = options(s);
  o.max_attempts = 3;
  HfDataset ds(o);
  const auto e = error_of([&] { ds.rows("CC-A", 0, 10); });
  EXPECT_NE(e.find("gave up after 3 attempts: HTTP 503: The server is busy."), std::string::npos)
      << e;
}

TEST(HfDataset, ClientErrorsFailAtOnceWithTheServersMessage) {
  FakeDatasetsServer s;
  auto o = options(s);
  o.dataset = "org/missing";
  HfDataset ds(o);
  const auto e = error_of([&] { ds.configs(); });
  EXPECT_NE(e.find("HTTP 404: The dataset does not exist."), std::string::npos) << e;
  EXPECT_EQ(ds.requests(), 1u);
  HfDataset good(options(s));
  const auto past = error_of([&] { good.rows("CC-B", 500, 100); });
  EXPECT_NE(past.find("HTTP 422"), std::string::npos) << past;
}

TEST(HfDataset, MalformedJsonIsAnErrorAndIsNotCached) {
  FakeDatasetsServer s;
  TempCache cache;
  s.malformed = true;
  HfDataset ds(options(s, cache.path));
  const auto e = error_of([&] { ds.rows("CC-A", 0, 10); });
  EXPECT_NE(e.find("malformed JSON from http://127.0.0.1:"), std::string::npos) << e;
  s.malformed = false;
  EXPECT_EQ(ds.rows("CC-A", 0, 10).size(), 9u);
}

TEST(HfDataset, TimeoutsAndUnreachableServersAreNamed) {
  FakeDatasetsServer s;
  s.delay_ms = 1500;
  auto o = options(s);
  o.http.timeout_s = 0.2;
  o.max_attempts = 2;
  HfDataset slow(o);
  const auto e = error_of([&] { slow.configs(); });
  EXPECT_NE(e.find("gave up after 2 attempts"), std::string::npos) << e;
  EXPECT_NE(e.find("Timeout"), std::string::npos) << e;
  s.delay_ms = 0;

  auto u = options(s);
  u.endpoint = "http://127.0.0.1:1";
  u.max_attempts = 2;
  HfDataset down(u);
  const auto d = error_of([&] { down.configs(); });
  EXPECT_NE(d.find("127.0.0.1:1/size"), std::string::npos) << d;
  EXPECT_NE(d.find("onnect"), std::string::npos) << d;  // "Couldn't connect to server"
}

TEST(HfDataset, PagesWorkOverTheServer) {
  FakeDatasetsServer s;
  HfDataset ds(options(s));
  const auto p = pages(local_pages_key(3, 1), 4, ds.configs());
  for (const auto& page : p) {
    EXPECT_FALSE(ds.rows(page.config, page.offset, kPageRows).empty());
  }
}

}  // namespace
}  // namespace bistro
