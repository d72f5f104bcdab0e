// AWS Signature Version 4, as S3 and every S3-compatible service (R2, MinIO, Ceph) verify it.
// Written here because curl's built-in signer (7.88) gets ListObjectsV2 queries wrong
// (../shared/FACTS.md): the canonical query is built from the decoded parameters, each
// re-encoded (A-Z a-z 0-9 - _ . ~ kept, everything else %XX, '/' included) and sorted by key then
// value; the canonical path is the decoded object path re-encoded with '/' kept, never
// normalised. Held byte-for-byte to botocore's signer by tests.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bistro {

struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct SigV4Request {
  std::string method;  // GET, PUT, ...
  std::string
      host;  // as in the Host header: "bucket.s3.us-east-1.amazonaws.com" or "127.0.0.1:4568"
  std::string path;            // decoded, starting with '/': "/bucket/key with spaces"
  HeaderList query;            // decoded name/value pairs, any order
  HeaderList headers;          // extra headers to sign (e.g. Range, Content-Type)
  std::string payload_sha256;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
  // S3 wants the payload hash as a signed x-amz-content-sha256 header; other services do not.
  bool content_sha256_header = true;
};

struct SigV4Result {
  HeaderList headers;  // to send: Authorization, x-amz-date, x-amz-content-sha256, token
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;
};

std::string sha256_hex(std::string_view data);

// Signs at `now` (UTC seconds).
SigV4Result sign_v4(const SigV4Request& request, const AwsCredentials& credentials,
                    const std::string& region, const std::string& service, std::time_t now);

}  // namespace bistro
