#include "bistro/storage/s3_bucket.hpp"

#include <ctime>

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "bistro/storage/file_bucket.hpp"
#include "bistro/storage/xml.hpp"

namespace bistro {

namespace {
std::string content_md5(std::string_view data) {
  unsigned char digest[16];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_md5(), nullptr);
  unsigned char b64[32];
  const int len = EVP_EncodeBlock(b64, digest, 16);
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(len));
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
}  // namespace

S3Bucket::S3Bucket(S3Options options) : o_(std::move(options)) {
  check(!o_.bucket.empty(), "s3: no bucket name");
  const auto sep = o_.endpoint.find("://");
  check(sep != std::string::npos, "s3 endpoint '{}' needs a scheme (http:// or https://)",
        o_.endpoint);
  scheme_ = o_.endpoint.substr(0, sep);
  host_ = o_.endpoint.substr(sep + 3);
  while (!host_.empty() && host_.back() == '/') host_.pop_back();
  check(!host_.empty() && host_.find('/') == std::string::npos,
        "s3 endpoint '{}' must be scheme://host[:port]", o_.endpoint);
  if (o_.credentials.access_key.empty() && o_.read_credentials.access_key.empty()) {
    o_.credentials = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                      env("AWS_SESSION_TOKEN")};
  }
  auto usable = [](const AwsCredentials& c) {
    return !c.access_key.empty() && !c.secret_key.empty();
  };
  check(usable(o_.credentials) || usable(o_.read_credentials),
        "s3://{}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", o_.bucket);
  if (!usable(o_.read_credentials)) o_.read_credentials = o_.credentials;
}

HttpResponse S3Bucket::request(const std::string& method, const std::string& key,
                               const HeaderList& query, const HeaderList& headers,
                               std::string_view body,
                               const std::function<bool(const char*, size_t)>& on_data,
                               const std::function<void()>& on_attempt) {
  SigV4Request sr;
  sr.method = method;
  sr.host = o_.path_style ? host_ : o_.bucket + "." + host_;
  sr.path = o_.path_style ? "/" + o_.bucket + (key.empty() ? "" : "/" + key) : "/" + key;
  sr.query = query;
  sr.headers = headers;
  sr.payload_sha256 = sha256_hex(body);
  std::string qs;
  for (const auto& [k, v] : query) {
    qs += (qs.empty() ? "?" : "&") + url_escape(k, false) + "=" + url_escape(v, false);
  }
  const std::string url = scheme_ + "://" + sr.host + url_escape(sr.path, true) + qs;
  std::mt19937_64 jitter(std::random_device{}());
  double delay = o_.backoff_s;
  std::string last;
  for (int attempt = 1;; ++attempt) {
    if (on_attempt) on_attempt();  // e.g. a streaming download starts its part over
    // Signed afresh each attempt: the date is part of the signature.
    auto all = headers;
    all.emplace_back("Host", sr.host);
    const bool reads = method == "GET" || method == "HEAD";
    const auto& cred = reads ? o_.read_credentials : o_.credentials;
    check(!cred.access_key.empty(),
          "s3://{}/{}: {} needs write credentials, and this bucket was "
          "opened with read credentials only",
          o_.bucket, key, method);
    for (auto& h : sign_v4(sr, cred, o_.region, "s3", std::time(nullptr)).headers) {
      all.push_back(h);
    }
    std::optional<HttpResponse> r;
    try {
      HttpOptions ho = o_.http;
      ho.on_data = on_data;
      r = http_request(method, url, all, body, ho);
    } catch (const Error& e) {
      last = e.what();
    }
    if (r && r->status != 429 && r->status < 500) return *r;
    if (r) last = fmt::format("HTTP {} {}", r->status, xml_text(r->body, "Code").value_or(""));
    if (attempt >= o_.max_attempts) {
      fail("s3://{}/{}: {} failed after {} attempts: {}", o_.bucket, key, method, attempt, last);
    }
    std::uniform_real_distribution<double> j(0.5, 1.5);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay * j(jitter)));
    delay = std::min(delay * 2, 30.0);
  }
}

void S3Bucket::fail_response(const std::string& what, const HttpResponse& r) {
  const auto code = xml_text(r.body, "Code").value_or("");
  const auto message = xml_text(r.body, "Message").value_or(r.body.substr(0, 200));
  const auto text = fmt::format("{}: HTTP {} {}: {}", what, r.status, code, message);
  if (r.status == 404) throw NotFound(text);
  fail("{}", text);
}

void S3Bucket::put(const std::string& key, std::string_view data) {
  check_key(key, url());
  // Content-MD5 makes the server verify what arrived (BadDigest otherwise).
  const auto r = request(
      "PUT", key, {},
      {{"Content-Type", "application/octet-stream"}, {"Content-MD5", content_md5(data)}}, data);
  if (r.status != 200) fail_response(url() + "/" + key, r);
}

std::string S3Bucket::get(const std::string& key) {
  check_key(key, url());
  auto r = request("GET", key, {}, {}, {});
  if (r.status != 200) fail_response(url() + "/" + key, r);
  const auto it = r.headers.find("content-length");
  if (it != r.headers.end()) {
    check(std::to_string(r.body.size()) == it->second,
          "{}/{}: received {} bytes, Content-Length said {}", url(), key, r.body.size(),
          it->second);
  }
  return std::move(r.body);
}

std::string S3Bucket::get_range(const std::string& key, uint64_t offset, uint64_t length) {
  check_key(key, url());
  if (length == 0) return {};
  auto r = request("GET", key, {},
                   {{"Range", fmt::format("bytes={}-{}", offset, offset + length - 1)}}, {});
  if (r.status == 416) return {};  // offset past the end
  if (r.status != 206 && r.status != 200) fail_response(url() + "/" + key, r);
  if (r.status == 200) r.body = r.body.substr(std::min<uint64_t>(offset, r.body.size()), length);
  return std::move(r.body);
}

namespace {

// What a HEAD or a GET's headers say of the object.
ObjectInfo info_from(const std::string& key, const HttpResponse& r) {
  ObjectInfo info{key, 0, ""};
  if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
    info.size = std::stoull(it->second);
  }
  if (auto it = r.headers.find("etag"); it != r.headers.end()) info.etag = it->second;
  if (auto it = r.headers.find("last-modified"); it != r.headers.end()) {
    // RFC 7231 IMF-fixdate, e.g. "Sun, 22 Nov 2026 13:51:01 GMT"; unparsable leaves 0.
    std::tm tm{};
    if (strptime(it->second.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm))
      info.modified_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  return info;
}

}  // namespace

std::optional<ObjectInfo> S3Bucket::head(const std::string& key) {
  check_key(key, url());
  const auto r = request("HEAD", key, {}, {}, {});
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail_response(url() + "/" + key, r);
  return info_from(key, r);
}

std::optional<Object> S3Bucket::get_object(const std::string& key) {
  check_key(key, url());
  auto r = request("GET", key, {}, {}, {});
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail_response(url() + "/" + key, r);
  Object o{std::move(r.body), info_from(key, r)};
  check(r.headers.find("content-length") == r.headers.end() || o.info.size == o.bytes.size(),
        "{}/{}: received {} bytes, Content-Length said {}", url(), key, o.bytes.size(),
        o.info.size);
  o.info.size = o.bytes.size();
  return o;
}

std::vector<ObjectInfo> S3Bucket::list(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  std::string token;
  for (int page = 0; page < 100000; ++page) {
    HeaderList q = {{"list-type", "2"}, {"prefix", prefix}};
    if (!token.empty()) q.emplace_back("continuation-token", token);
    const auto r = request("GET", "", q, {}, {});
    if (r.status != 200) fail_response(url() + "?prefix=" + prefix, r);
    for (auto c : xml_elements(r.body, "Contents")) {
      ObjectInfo info;
      info.key = xml_text(c, "Key").value_or("");
      const auto size = xml_text(c, "Size").value_or("");
      check(!info.key.empty() && !size.empty() &&
                size.find_first_not_of("0123456789") == std::string::npos && size.size() < 20,
            "{}: malformed ListBucketResult entry", url());
      info.size = std::stoull(size);
      info.etag = xml_text(c, "ETag").value_or("");
      out.push_back(std::move(info));
    }
    if (xml_text(r.body, "IsTruncated").value_or("false") != "true") return out;
    token = xml_text(r.body, "NextContinuationToken").value_or("");
    check(!token.empty(), "{}: truncated listing without a continuation token", url());
  }
  fail("{}: listing did not end after 100000 pages", url());
}

void S3Bucket::remove(const std::string& key) {
  check_key(key, url());
  const auto r = request("DELETE", key, {}, {}, {});
  if (r.status != 204 && r.status != 200 && r.status != 404) fail_response(url() + "/" + key, r);
}

namespace {
// Runs work(i) for i in [0, n) on up to `parallel` threads; rethrows the first failure after all
// threads stop.
void run_parallel(size_t n, int parallel, const std::function<void(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::exception_ptr first;
  std::atomic<bool> failed{false};
  auto loop = [&] {
    for (size_t i; !failed && (i = next++) < n;) {
      try {
        work(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::max(1, parallel); ++t) threads.emplace_back(loop);
  loop();
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

// Sums the bytes of finished parts (from any thread) and reports the running total.
class PartProgress {
 public:
  explicit PartProgress(const std::function<void(uint64_t, uint64_t)>& callback)
      : callback(callback) {}
  void operator()(uint64_t n, uint64_t total) {
    std::lock_guard<std::mutex> lock(mu);
    done += n;
    if (callback) callback(done, total);
  }

 private:
  const std::function<void(uint64_t, uint64_t)>& callback;
  std::mutex mu;
  uint64_t done = 0;
};

std::string read_at(int fd, uint64_t offset, uint64_t length, const std::string& what) {
  std::string buf(length, '\0');
  uint64_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(fd, buf.data() + done, length - done, static_cast<off_t>(offset + done));
    check(n > 0, "{}: read failed at offset {}", what, offset + done);
    done += static_cast<uint64_t>(n);
  }
  return buf;
}
}  // namespace

void S3Bucket::put_file(const std::string& key, const std::filesystem::path& file) {
  check_key(key, url());
  const uint64_t size = std::filesystem::file_size(file);
  if (size <= o_.multipart_threshold) return Bucket::put_file(key, file);
  const std::string what = url() + "/" + key;
  auto r = request("POST", key, {{"uploads", ""}}, {}, {});
  if (r.status != 200) fail_response(what, r);
  const auto upload_id = xml_text(r.body, "UploadId").value_or("");
  check(!upload_id.empty(), "{}: CreateMultipartUpload answered without an UploadId", what);
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "cannot open {}", file.string());
  const size_t parts = static_cast<size_t>((size + o_.part_size - 1) / o_.part_size);
  std::vector<std::string> etags(parts);
  PartProgress report(o_.on_progress);
  try {
    run_parallel(parts, o_.parallel, [&](size_t i) {
      const uint64_t offset = i * o_.part_size;
      const auto body = read_at(fd, offset, std::min(o_.part_size, size - offset), file.string());
      const auto pr =
          request("PUT", key, {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}},
                  {{"Content-MD5", content_md5(body)}}, body);
      if (pr.status != 200) fail_response(fmt::format("{} part {}", what, i + 1), pr);
      const auto it = pr.headers.find("etag");
      check(it != pr.headers.end(), "{} part {}: no ETag in the answer", what, i + 1);
      etags[i] = it->second;
      report(body.size(), size);
    });
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < parts; ++i) {
      xml +=
          fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, etags[i]);
    }
    xml += "</CompleteMultipartUpload>";
    const auto done = request("POST", key, {{"uploadId", upload_id}}, {}, xml);
    // S3 can answer 200 and still report an error in the body.
    if (done.status != 200 || xml_text(done.body, "Code").has_value()) fail_response(what, done);
  } catch (...) {
    ::close(fd);
    try {
      request("DELETE", key, {{"uploadId", upload_id}}, {}, {});  // abort: free the parts
    } catch (...) {
    }
    throw;
  }
  ::close(fd);
}

void S3Bucket::get_file(const std::string& key, const std::filesystem::path& file) {
  const auto info = head(key);
  if (!info) throw NotFound(fmt::format("{}/{}: no such object", url(), key));
  if (info->size <= o_.multipart_threshold) return Bucket::get_file(key, file);
  // Ranged GETs in parallel into a temporary file, renamed into place once complete.
  const auto tmp = std::filesystem::path(file.string() + fmt::format(".tmp.{}", ::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check(fd >= 0, "cannot create {}", tmp.string());
  const size_t parts = static_cast<size_t>((info->size + o_.part_size - 1) / o_.part_size);
  PartProgress report(o_.on_progress);
  try {
    run_parallel(parts, o_.parallel, [&](size_t i) {
      const uint64_t offset = i * o_.part_size;
      const uint64_t length = std::min(o_.part_size, info->size - offset);
      // Streamed straight into the file at its offset: nothing is held in memory. A retried
      // attempt starts writing at the part's offset again.
      uint64_t written = 0;
      auto sink = [&](const char* data, size_t n) {
        if (written + n > length) return false;
        size_t done = 0;
        while (done < n) {
          const ssize_t w =
              ::pwrite(fd, data + done, n - done, static_cast<off_t>(offset + written + done));
          if (w <= 0) return false;
          done += static_cast<size_t>(w);
        }
        written += n;
        return true;
      };
      const HeaderList range = {{"Range", fmt::format("bytes={}-{}", offset, offset + length - 1)}};
      const auto r = request(
          "GET", key, {}, range, {}, [&](const char* d, size_t n) { return sink(d, n); },
          [&] { written = 0; });
      if (r.status != 206) fail_response(url() + "/" + key, r);
      check(written == length, "{}/{}: range at {} delivered {} of {} bytes", url(), key, offset,
            written, length);
      report(length, info->size);
    });
    check(::fsync(fd) == 0, "cannot fsync {}", tmp.string());
  } catch (...) {
    ::close(fd);
    std::filesystem::remove(tmp);
    throw;
  }
  ::close(fd);
  std::filesystem::rename(tmp, file);
}

std::unique_ptr<Bucket> open_bucket(const std::string& url,
                                    std::function<void(uint64_t, uint64_t)> on_progress) {
  if (url.rfind("s3://", 0) == 0) {
    S3Options o;
    o.bucket = url.substr(5);
    while (!o.bucket.empty() && o.bucket.back() == '/') o.bucket.pop_back();
    if (auto e = env("BISTRO_S3_ENDPOINT"); !e.empty()) o.endpoint = e;
    if (auto r = env("AWS_REGION"); !r.empty()) o.region = r;
    o.path_style = env("BISTRO_S3_PATH_STYLE") != "0";
    o.on_progress = std::move(on_progress);
    return std::make_unique<S3Bucket>(o);
  }
  if (url.rfind("file://", 0) == 0) return std::make_unique<FileBucket>(url.substr(7));
  check(url.find("://") == std::string::npos, "unsupported bucket URL '{}' (file:// or s3://)",
        url);
  return std::make_unique<FileBucket>(url);
}

}  // namespace bistro
