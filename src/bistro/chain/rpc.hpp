// JSON-RPC 2.0 to a substrate node over HTTP(S). A node serves HTTP and WebSocket on the same port,
// so ws:// and wss:// URLs are reached over http:// and https:// (bistro polls; it needs no
// subscriptions). Transport failures and 5xx answers are retried with backoff (a dropped
// connection is simply reopened); an error object from the node is thrown as RpcError.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bistro/core/error.hpp"

namespace bistro::chain {

class RpcError : public Error {
 public:
  RpcError(int64_t code, const std::string& message, const std::string& detail)
      : Error(detail), code_(code), message_(message) {}
  int64_t code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  int64_t code_;
  std::string message_;
};

struct RpcOptions {
  double timeout_s = 30;
  int attempts = 5;         // transport retries
  double backoff_s = 0.25;  // doubled after each failed attempt
};

// finney, test, local, or a ws(s):// / http(s):// URL -> the HTTP endpoint.
std::string network_url(const std::string& network);

class RpcClient {
 public:
  explicit RpcClient(std::string url, RpcOptions options = {});
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::array());
  const std::string& url() const { return url_; }

 private:
  std::string url_;
  RpcOptions options_;
  uint64_t next_id_ = 1;
};

}  // namespace bistro::chain
