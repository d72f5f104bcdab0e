// S3Bucket: any S3-compatible service over libcurl, every request signed with SigV4.
// Path-style (endpoint/bucket/key: MinIO, s3rver, R2) or virtual-hosted (bucket.endpoint/key:
// AWS). Retries transport errors, 5xx and 429/503 SlowDown with exponential backoff and jitter;
// other errors fail at once with S3's own code and message.
#pragma once

#include <functional>

#include "bistro/data/http.hpp"
#include "bistro/storage/bucket.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro {

struct S3Options {
  std::string endpoint = "https://s3.us-east-1.amazonaws.com";  // scheme://host[:port]
  std::string region = "us-east-1";                             // R2: "auto"
  std::string bucket;
  bool path_style = true;
  // Write credentials; if both these and read_credentials are empty, AWS_ACCESS_KEY_ID /
  // AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment.
  AwsCredentials credentials;
  // Used for GET/HEAD/list when set (else `credentials`). A miner publishes read-only keys for
  // its bucket so validators can fetch it, while its write keys never leave it; a validator
  // needs only these.
  AwsCredentials read_credentials;
  uint64_t multipart_threshold = 16ull << 20;  // files above this go up in parts ...
  uint64_t part_size = 8ull << 20;             // ... of this size (S3's minimum is 5 MiB),
  int parallel = 8;                            // this many in flight; downloads likewise
  // Called after each part of a multipart upload or ranged download: (bytes done, total).
  std::function<void(uint64_t, uint64_t)> on_progress;
  int max_attempts = 5;
  double backoff_s = 0.2;
  HttpOptions http;
};

class S3Bucket final : public Bucket {
 public:
  explicit S3Bucket(S3Options options);

  void put(const std::string& key, std::string_view data) override;
  std::string get(const std::string& key) override;
  std::string get_range(const std::string& key, uint64_t offset, uint64_t length) override;
  std::optional<Object> get_object(const std::string& key) override;
  std::optional<ObjectInfo> head(const std::string& key) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  // Above multipart_threshold: multipart upload / ranged download with `parallel` parts in
  // flight, streaming from and to the file (memory: parallel x part_size).
  void put_file(const std::string& key, const std::filesystem::path& file) override;
  void get_file(const std::string& key, const std::filesystem::path& file) override;
  std::string url() const override { return "s3://" + o_.bucket; }

 private:
  HttpResponse request(const std::string& method, const std::string& key, const HeaderList& query,
                       const HeaderList& headers, std::string_view body,
                       const std::function<bool(const char*, size_t)>& on_data = {},
                       const std::function<void()>& on_attempt = {});
  [[noreturn]] void fail_response(const std::string& what, const HttpResponse& r);

  S3Options o_;
  std::string scheme_, host_;
};

// "file:///dir", a plain directory, or "s3://bucket" (endpoint, region and path style from
// $BISTRO_S3_ENDPOINT, $AWS_REGION, $BISTRO_S3_PATH_STYLE; credentials from the AWS variables).
std::unique_ptr<Bucket> open_bucket(const std::string& url,
                                    std::function<void(uint64_t, uint64_t)> on_progress = {});

}  // namespace bistro
