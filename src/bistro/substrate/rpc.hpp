// JSON-RPC 2.0 to a substrate node over WebSocket (ws://, wss://: one persistent connection) or
// HTTP(S) (a node serves both on the same port). Transport failures and 5xx answers are retried
// with backoff, reconnecting when the node dropped the connection; an error object from the node
// is thrown as RpcError.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bistro/core/error.hpp"

namespace bistro::substrate {

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

// finney, test, local, or a ws(s):// / http(s):// URL -> the endpoint URL.
std::string network_url(const std::string& network);

class WebSocket;

class RpcClient {
 public:
  explicit RpcClient(std::string url, RpcOptions options = {});
  ~RpcClient();
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::array());
  const std::string& url() const { return url_; }

 private:
  // One request over the current transport: the reply text, or an Error on transport failure.
  std::string exchange(const std::string& body, uint64_t id, const std::string& method,
                       bool& retry);

  std::string url_;
  RpcOptions options_;
  uint64_t next_id_ = 1;
  std::unique_ptr<WebSocket> ws_;
};

}  // namespace bistro::substrate
