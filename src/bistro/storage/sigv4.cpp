#include "bistro/storage/sigv4.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>

#include "bistro/core/error.hpp"
#include "bistro/data/http.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro {
namespace {
using Mac = std::array<uint8_t, crypto_auth_hmacsha256_BYTES>;

Mac hmac(std::string_view key, std::string_view data) {
  ensure_sodium();
  Mac out;
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
  crypto_auth_hmacsha256_final(&st, out.data());
  return out;
}

std::string_view as_view(const Mac& m) {
  return {reinterpret_cast<const char*>(m.data()), m.size()};
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Header values: trimmed, runs of spaces collapsed to one (the SigV4 rule).
std::string canonical_value(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}
}  // namespace

std::string sha256_hex(std::string_view data) {
  return to_hex(sha256({reinterpret_cast<const uint8_t*>(data.data()), data.size()}));
}

SigV4Result sign_v4(const SigV4Request& r, const AwsCredentials& cred, const std::string& region,
                    const std::string& service, std::time_t now) {
  check(!cred.access_key.empty() && !cred.secret_key.empty(), "S3 credentials are missing");
  std::tm tm{};
  gmtime_r(&now, &tm);
  char amz_date[17], date[9];
  std::strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
  std::strftime(date, sizeof date, "%Y%m%d", &tm);

  HeaderList headers;
  for (const auto& [k, v] : r.headers) headers.emplace_back(lower(k), canonical_value(v));
  headers.emplace_back("host", r.host);
  headers.emplace_back("x-amz-date", amz_date);
  if (r.content_sha256_header) headers.emplace_back("x-amz-content-sha256", r.payload_sha256);
  if (!cred.session_token.empty()) headers.emplace_back("x-amz-security-token", cred.session_token);
  std::sort(headers.begin(), headers.end());

  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : r.query) q.emplace_back(url_escape(k, false), url_escape(v, false));
  std::sort(q.begin(), q.end());
  std::string query;
  for (const auto& [k, v] : q) query += (query.empty() ? "" : "&") + k + "=" + v;

  std::string canonical_headers, signed_headers;
  for (const auto& [k, v] : headers) {
    canonical_headers += k + ":" + v + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + k;
  }
  SigV4Result out;
  out.canonical_request = r.method + "\n" + url_escape(r.path, true) + "\n" + query + "\n" +
                          canonical_headers + "\n" + signed_headers + "\n" + r.payload_sha256;
  const std::string scope = std::string(date) + "/" + region + "/" + service + "/aws4_request";
  out.string_to_sign = std::string("AWS4-HMAC-SHA256\n") + amz_date + "\n" + scope + "\n" +
                       sha256_hex(out.canonical_request);
  const auto k_date = hmac("AWS4" + cred.secret_key, date);
  const auto k_region = hmac(as_view(k_date), region);
  const auto k_service = hmac(as_view(k_region), service);
  const auto k_signing = hmac(as_view(k_service), "aws4_request");
  const auto sig = hmac(as_view(k_signing), out.string_to_sign);
  out.authorization = "AWS4-HMAC-SHA256 Credential=" + cred.access_key + "/" + scope +
                      ", SignedHeaders=" + signed_headers +
                      ", Signature=" + to_hex({sig.data(), sig.size()});
  out.headers = {{"Authorization", out.authorization}, {"x-amz-date", amz_date}};
  if (r.content_sha256_header) out.headers.emplace_back("x-amz-content-sha256", r.payload_sha256);
  if (!cred.session_token.empty())
    out.headers.emplace_back("x-amz-security-token", cred.session_token);
  return out;
}

}  // namespace bistro
