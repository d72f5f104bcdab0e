#include "bistro/substrate/rpc.hpp"

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "bistro/data/http.hpp"
#include "bistro/substrate/websocket.hpp"

namespace bistro::substrate {

std::string network_url(const std::string& n) {
  if (n == "finney") return "wss://entrypoint-finney.opentensor.ai:443";
  if (n == "test") return "wss://test.finney.opentensor.ai:443";
  if (n == "local") return "ws://127.0.0.1:9944";
  for (const char* scheme : {"ws://", "wss://", "http://", "https://"})
    if (n.rfind(scheme, 0) == 0) return n;
  fail(
      "--subtensor.network {}: not finney, test, local or a ws://, wss://, http:// or https:// URL",
      n);
}

RpcClient::RpcClient(std::string url, RpcOptions options)
    : url_(std::move(url)), options_(options) {}

RpcClient::~RpcClient() = default;

std::string RpcClient::exchange(const std::string& body, uint64_t id, const std::string& method,
                                bool& retry) {
  retry = true;
  if (url_.rfind("ws", 0) == 0) {
    if (!ws_) ws_ = std::make_unique<WebSocket>(url_, options_.timeout_s);
    try {
      ws_->send_text(body);
      for (;;) {  // skip anything that is not our reply (subscription notifications)
        std::string text = ws_->receive();
        auto j = nlohmann::json::parse(text, nullptr, false);
        if (j.is_object() && j.contains("id") && j["id"] == id) return text;
      }
    } catch (...) {
      ws_.reset();  // reconnect on the next attempt
      throw;
    }
  }
  HttpOptions http;
  http.timeout_s = options_.timeout_s;
  http.max_body_bytes = 256ull << 20;  // metadata is a few MB
  auto r = http_request("POST", url_, {{"Content-Type", "application/json"}}, body, http);
  if (r.status >= 500 || r.status == 429) fail("HTTP {}", r.status);
  retry = false;
  if (r.status != 200)
    fail("node {}: {} answered HTTP {}: {}", url_, method, r.status, r.body.substr(0, 200));
  return r.body;
}

nlohmann::json RpcClient::call(const std::string& method, const nlohmann::json& params) {
  const uint64_t id = next_id_++;
  const nlohmann::json request = {
      {"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
  const std::string body = request.dump();
  double backoff = options_.backoff_s;
  std::string last_error;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    std::string text;
    bool retry = true;
    try {
      text = exchange(body, id, method, retry);
    } catch (const Error& e) {
      if (!retry) throw;
      last_error = e.what();  // transport: reconnect and retry
      if (attempt < options_.attempts) {
        std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
        backoff *= 2;
      }
      continue;
    }
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) fail("node {}: {} returned a reply that is not JSON-RPC", url_, method);
    if (j.contains("error") && !j["error"].is_null()) {
      const auto& e = j["error"];
      const int64_t code = e.value("code", int64_t{0});
      const std::string message = e.value("message", std::string("error"));
      std::string data = e.contains("data") ? (e["data"].is_string() ? e["data"].get<std::string>()
                                                                     : e["data"].dump())
                                            : "";
      throw RpcError(code, message,
                     fmt::format("node {}: {} failed: {} ({}){}", url_, method, message, code,
                                 data.empty() ? "" : ": " + data));
    }
    if (!j.contains("result"))
      fail("node {}: {} returned neither a result nor an error", url_, method);
    return j["result"];
  }
  fail("node {} unreachable after {} attempts ({}): {}", url_, options_.attempts, method,
       last_error);
}

}  // namespace bistro::substrate
