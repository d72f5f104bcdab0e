// A small HTTP GET over libcurl for JSON APIs (the datasets-server). Transport failures throw
// bistro::Error naming the URL and curl's reason; HTTP status codes are returned, not thrown.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bistro {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

struct HttpOptions {
  double timeout_s = 30;
  double connect_timeout_s = 10;
  uint64_t max_body_bytes = 64ull << 20;
  // If set, a 2xx response body is handed to this as it arrives (returning false aborts) instead
  // of being collected in HttpResponse::body; error bodies are still collected.
  std::function<bool(const char* data, size_t size)> on_data;
};

HttpResponse http_get(const std::string& url, const HttpOptions& options = {});

// Any method, with request headers and a body (empty for none). HEAD reads no body.
HttpResponse http_request(const std::string& method, const std::string& url,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view body, const HttpOptions& options = {});

// Percent-encodes per RFC 3986: A-Z a-z 0-9 - _ . ~ kept (and '/' when keep_slash), everything
// else %XX with uppercase hex. (SigV4 canonical requests use exactly this encoding.)
std::string url_escape(std::string_view s, bool keep_slash = false);

}  // namespace bistro
