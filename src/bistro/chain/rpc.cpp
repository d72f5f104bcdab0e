#include "bistro/chain/rpc.hpp"

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "bistro/data/http.hpp"

namespace bistro::chain {

std::string network_url(const std::string& n) {
  if (n == "finney") return "https://entrypoint-finney.opentensor.ai:443";
  if (n == "test") return "https://test.finney.opentensor.ai:443";
  if (n == "local") return "http://127.0.0.1:9944";
  if (n.rfind("ws://", 0) == 0) return "http://" + n.substr(5);
  if (n.rfind("wss://", 0) == 0) return "https://" + n.substr(6);
  if (n.rfind("http://", 0) == 0 || n.rfind("https://", 0) == 0) return n;
  fail(
      "--subtensor.network {}: not finney, test, local or a ws://, wss://, http:// or https:// URL",
      n);
}

RpcClient::RpcClient(std::string url, RpcOptions options)
    : url_(std::move(url)), options_(options) {}

nlohmann::json RpcClient::call(const std::string& method, const nlohmann::json& params) {
  const nlohmann::json request = {
      {"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}, {"params", params}};
  const std::string body = request.dump();
  HttpOptions http;
  http.timeout_s = options_.timeout_s;
  http.max_body_bytes = 256ull << 20;  // metadata is a few MB
  double backoff = options_.backoff_s;
  std::string last_error;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    try {
      auto r = http_request("POST", url_, {{"Content-Type", "application/json"}}, body, http);
      if (r.status >= 500 || r.status == 429) {
        last_error = fmt::format("HTTP {}", r.status);
      } else if (r.status != 200) {
        fail("node {}: {} answered HTTP {}: {}", url_, method, r.status, r.body.substr(0, 200));
      } else {
        auto j = nlohmann::json::parse(r.body, nullptr, false);
        if (!j.is_object()) fail("node {}: {} returned a reply that is not JSON-RPC", url_, method);
        if (j.contains("error") && !j["error"].is_null()) {
          const auto& e = j["error"];
          const int64_t code = e.value("code", int64_t{0});
          const std::string message = e.value("message", std::string("error"));
          std::string data =
              e.contains("data")
                  ? (e["data"].is_string() ? e["data"].get<std::string>() : e["data"].dump())
                  : "";
          throw RpcError(code, message,
                         fmt::format("node {}: {} failed: {} ({}){}", url_, method, message, code,
                                     data.empty() ? "" : ": " + data));
        }
        if (!j.contains("result"))
          fail("node {}: {} returned neither a result nor an error", url_, method);
        return j["result"];
      }
    } catch (const RpcError&) {
      throw;
    } catch (const Error& e) {
      std::string what = e.what();
      if (what.rfind("node ", 0) == 0) throw;  // a well-formed answer we cannot use
      last_error = what;                       // transport: reconnect and retry
    }
    if (attempt < options_.attempts) {
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff *= 2;
    }
  }
  fail("node {} unreachable after {} attempts ({}): {}", url_, options_.attempts, method,
       last_error);
}

}  // namespace bistro::chain
