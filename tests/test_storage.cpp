// Buckets: the file backend, the XML reader, and the S3 backend against a real S3 server (s3rver
// from npm) that the test starts on a free loopback port, cross-checked with boto3.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/storage/file_bucket.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/storage/xml.hpp"
#include "test_util.hpp"

#include <httplib.h>

extern char** environ;

namespace bistro {
namespace {
namespace fs = std::filesystem;
using test::error_of;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("bistro_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string source_dir() {
  const char* d = std::getenv("BISTRO_SOURCE_DIR");
  return d ? d : ".";
}

// ---- behaviour every backend shares

void exercise(Bucket& b) {
  b.put("a/b/one.bin", "first");
  b.put("a/b/one.bin", "hello world");  // replaced
  b.put("a/two.bin", std::string(3000, 'x'));
  b.put("c with space/caf\xc3\xa9+x=y.bin", "unicode");
  EXPECT_EQ(b.get("a/b/one.bin"), "hello world");
  EXPECT_EQ(b.get("c with space/caf\xc3\xa9+x=y.bin"), "unicode");
  EXPECT_EQ(b.get_range("a/b/one.bin", 6, 5), "world");
  EXPECT_EQ(b.get_range("a/b/one.bin", 6, 100), "world");  // clipped
  const auto h = b.head("a/two.bin");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->size, 3000u);
  EXPECT_FALSE(b.head("a/none.bin").has_value());
  EXPECT_THROW(b.get("a/none.bin"), NotFound);
  // The bytes and the info in one call: what head() and get() say.
  const auto o = b.get_object("a/two.bin");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->bytes, std::string(3000, 'x'));
  EXPECT_EQ(o->info.size, 3000u);
  EXPECT_EQ(o->info.modified_ms, h->modified_ms);
  EXPECT_GT(o->info.modified_ms, 0);
  EXPECT_FALSE(b.get_object("a/none.bin").has_value());
  const auto all = b.list("a/");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].key, "a/b/one.bin");
  EXPECT_EQ(all[0].size, 11u);
  EXPECT_EQ(all[1].key, "a/two.bin");
  EXPECT_EQ(b.list("zzz").size(), 0u);
  b.remove("a/two.bin");
  b.remove("a/two.bin");  // removing twice is fine
  EXPECT_FALSE(b.head("a/two.bin").has_value());
  EXPECT_THROW(b.put("../escape", "x"), Error);
  EXPECT_THROW(b.put("/abs", "x"), Error);
  EXPECT_THROW(b.put("a//b", "x"), Error);
}

TEST(FileBucket, BehavesLikeABucket) {
  TempDir d("fb");
  FileBucket b(d.path);
  exercise(b);
}

TEST(FileBucket, ConcurrentWritersNeverExposeHalfObjects) {
  TempDir d("fb_conc");
  FileBucket b(d.path);
  const std::string big_a(1 << 20, 'a'), big_b(1 << 20, 'b');
  b.put("obj", big_a);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) b.put("obj", i % 2 ? big_a : big_b);
    stop = true;
  });
  int reads = 0;
  while (!stop) {
    const auto got = b.get("obj");
    ASSERT_TRUE(got == big_a || got == big_b);
    ++reads;
  }
  writer.join();
  EXPECT_GT(reads, 0);
  EXPECT_EQ(b.list("").size(), 1u);  // no temporary files listed
}

// ---- XML

TEST(Xml, ReadsS3Answers) {
  const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Contents><Key>a&amp;b &lt;c&gt; &#233;&#x263A;</Key><Size>12</Size><ETag>&quot;x&quot;</ETag></Contents>
<Contents><Key>d</Key><Size>0</Size></Contents><KeyCount>2</KeyCount><IsTruncated>false</IsTruncated>
</ListBucketResult>)";
  const auto c = xml_elements(xml, "Contents");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(xml_text(c[0], "Key"), "a&b <c> \xc3\xa9\xe2\x98\xba");
  EXPECT_EQ(xml_text(c[0], "ETag"), "\"x\"");
  EXPECT_EQ(xml_text(xml, "IsTruncated"), "false");
  EXPECT_EQ(xml_text(xml, "KeyCount"), "2");  // not confused with <Key>
  EXPECT_FALSE(xml_text(xml, "Missing").has_value());
  EXPECT_EQ(xml_decode("&bogus; &#xD800; &#99999999999; &"), "&bogus; &#xD800; &#99999999999; &");
}

TEST(Xml, SurvivesRandomBytes) {
  rng::Stream s(3);
  const std::string seed = "<a><Contents><Key>k&amp;</Key><Size>1</Size></Contents></a>";
  size_t found = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string x = seed;
    for (int e = 0; e < 3; ++e) x[s.below(x.size())] = static_cast<char>(s.below(256));
    for (auto c : xml_elements(x, "Contents")) found += xml_text(c, "Key").has_value();
  }
  EXPECT_GT(found, 0u);
}

// ---- S3 against s3rver

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

class S3rver {
 public:
  explicit S3rver(std::string service_endpoint = "") : dir_("s3rver") {
    port_ = free_port();
    const std::string script = source_dir() + "/tools/node/node_modules/s3rver/bin/s3rver.js";
    // s3rver encrypts continuation tokens with a cipher OpenSSL 3 keeps in its legacy provider.
    std::vector<std::string> args = {"node",
                                     "--openssl-legacy-provider",
                                     script,
                                     "-d",
                                     dir_.path.string(),
                                     "-a",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(port_),
                                     "--silent",
                                     "--configure-bucket",
                                     "bistro"};
    if (!service_endpoint.empty())
      args.insert(args.end(), {"--service-endpoint", service_endpoint});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "node", nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
    for (int i = 0; i < 200 && pid_ > 0 && !can_connect(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~S3rver() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool up() const { return pid_ > 0 && can_connect(port_); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  S3Options options() const {
    S3Options o;
    o.endpoint = endpoint();
    o.bucket = "bistro";
    o.credentials = {"S3RVER", "S3RVER", ""};
    o.backoff_s = 0.01;
    return o;
  }

 private:
  TempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST(S3Bucket, BehavesLikeABucketAgainstS3rver) {
  S3rver server;
  ASSERT_TRUE(server.up()) << "s3rver did not start (scripts/setup installs it)";
  S3Bucket b(server.options());
  exercise(b);
}

// Virtual-hosted addressing (bucket in the host name, as AWS wants): curl resolves
// bistro.s3.localhost to loopback, and s3rver maps BUCKET.s3.localhost to the bucket.
TEST(S3Bucket, VirtualHostedAddressing) {
  S3rver server("localhost");
  ASSERT_TRUE(server.up());
  auto o = server.options();
  o.endpoint = "http://s3.localhost:" + server.endpoint().substr(server.endpoint().rfind(':') + 1);
  o.path_style = false;
  S3Bucket b(o);
  b.put("vhost/key.bin", "virtual");
  EXPECT_EQ(b.get("vhost/key.bin"), "virtual");
  EXPECT_EQ(b.list("vhost/").size(), 1u);
  // The same object through path-style addressing.
  S3Bucket p(server.options());
  EXPECT_EQ(p.get("vhost/key.bin"), "virtual");
}

TEST(S3Bucket, ListsAcrossPages) {
  S3rver server;
  ASSERT_TRUE(server.up());
  S3Bucket b(server.options());
  for (int i = 0; i < 1005; ++i) b.put(fmt::format("many/{:04d}", i), "x");  // > 1000: two pages
  const auto all = b.list("many/");
  ASSERT_EQ(all.size(), 1005u);
  EXPECT_EQ(all.back().key, "many/1004");
}

TEST(S3Bucket, NamesServerErrors) {
  S3rver server;
  ASSERT_TRUE(server.up());
  auto o = server.options();
  o.bucket = "no-such-bucket";
  S3Bucket b(o);
  try {
    b.put("k", "v");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NoSuchBucket"), std::string::npos) << e.what();
  }
  auto down = server.options();
  down.endpoint = "http://127.0.0.1:1";
  down.max_attempts = 2;
  S3Bucket unreachable(down);
  try {
    unreachable.get("k");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("failed after 2 attempts"), std::string::npos) << e.what();
  }
  auto nocred = server.options();
  nocred.credentials = {};
  setenv("AWS_ACCESS_KEY_ID", "", 1);
  EXPECT_THROW(S3Bucket{nocred}, Error);
}

TEST(S3Bucket, LargeFilesGoInPartsBothWays) {
  S3rver server;
  ASSERT_TRUE(server.up());
  auto o = server.options();
  o.multipart_threshold = 6 << 20;
  o.part_size = 5 << 20;  // S3's minimum part
  o.parallel = 3;
  std::atomic<uint64_t> last_done{0}, last_total{0}, calls{0};
  o.on_progress = [&](uint64_t done, uint64_t total) {
    last_done = done;
    last_total = total;
    ++calls;
  };
  S3Bucket b(o);
  TempDir d("s3_multipart");
  std::string payload((17 << 20) + 12345, '\0');  // 4 parts, the last one short
  rng::Stream s(2);
  for (auto& c : payload) c = static_cast<char>(s.below(256));
  write_file_atomic(d.path / "up", payload);
  b.put_file("big/object.bin", d.path / "up");
  ASSERT_EQ(b.head("big/object.bin")->size, payload.size());
  EXPECT_EQ(calls, 4u);  // one report per part
  EXPECT_EQ(last_done, payload.size());
  EXPECT_EQ(last_total, payload.size());
  b.get_file("big/object.bin", d.path / "down");
  EXPECT_EQ(read_file(d.path / "down"), payload);
  // And boto3 reads bistro's multipart object.
  const std::string ref =
      "/usr/bin/python3 " + source_dir() + "/tests/reference/s3_ref.py " + server.endpoint();
  ASSERT_EQ(std::system((ref + " get bistro big/object.bin " + (d.path / "boto").string()).c_str()),
            0);
  EXPECT_EQ(read_file(d.path / "boto"), payload);
  // A failed download leaves nothing behind.
  EXPECT_THROW(b.get_file("big/missing.bin", d.path / "none"), NotFound);
  EXPECT_FALSE(fs::exists(d.path / "none"));
}

// Faults an S3 server can produce, from a fixture server on loopback.
class FaultyS3 {
 public:
  std::atomic<int> requests{0};
  std::mutex mu;
  std::vector<std::string> keys;  // "METHOD access-key" per signed request
  static std::string credential_of(const httplib::Request& req) {
    const auto auth = req.get_header_value("Authorization");
    const auto at = auth.find("Credential=");
    return at == std::string::npos ? "" : auth.substr(at + 11, auth.find('/', at) - at - 11);
  }
  FaultyS3() {
    srv_.Get(R"(/bistro)", [this](const httplib::Request&, httplib::Response& res) {
      ++requests;
      res.set_content(
          "<ListBucketResult><Contents><Key>a</Key><Size>12x</Size></Contents>"
          "<IsTruncated>false</IsTruncated></ListBucketResult>",
          "application/xml");
    });
    srv_.Get(R"(/bistro/who)", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      std::lock_guard<std::mutex> lock(mu);
      keys.push_back("GET " + credential_of(req));
      res.set_content("ok", "application/octet-stream");
    });
    srv_.Put(R"(/bistro/who)", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      std::lock_guard<std::mutex> lock(mu);
      keys.push_back("PUT " + credential_of(req));
      res.set_content("", "application/xml");
    });
    srv_.Get(R"(/bistro/denied)", [this](const httplib::Request&, httplib::Response& res) {
      ++requests;
      res.status = 403;
      res.set_content("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                      "application/xml");
    });
    srv_.Get(R"(/bistro/reset)", [this](const httplib::Request&, httplib::Response& res) {
      ++requests;
      // Promise 1000 bytes, send 10, drop the connection.
      res.set_content_provider(1000, "application/octet-stream",
                               [](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset == 0) sink.write("0123456789", 10);
                                 return offset == 0;
                               });
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    while (!srv_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FaultyS3() {
    srv_.stop();
    thread_.join();
  }
  S3Options options() const {
    S3Options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    o.bucket = "bistro";
    o.credentials = {"AKID", "SECRET", ""};
    o.max_attempts = 3;
    o.backoff_s = 0.01;
    return o;
  }

 private:
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
};

TEST(S3Bucket, FaultsAreRetriedOrNamed) {
  FaultyS3 s;
  S3Bucket b(s.options());
  EXPECT_NE(error_of([&] { b.list(""); }).find("malformed ListBucketResult entry"),
            std::string::npos);
  const int before = s.requests;
  const auto denied = error_of([&] { b.get("denied"); });
  EXPECT_NE(denied.find("s3://bistro/denied: HTTP 403 AccessDenied: Access Denied"),
            std::string::npos)
      << denied;
  EXPECT_EQ(s.requests - before, 1);  // not retried
  const int before_reset = s.requests;
  const auto reset = error_of([&] { b.get("reset"); });
  EXPECT_NE(reset.find("s3://bistro/reset: GET failed after 3 attempts"), std::string::npos)
      << reset;
  EXPECT_EQ(s.requests - before_reset, 3);  // retried
  TempDir d("s3_faults");
  EXPECT_THROW(b.get_file("reset", d.path / "out"), Error);
  EXPECT_TRUE(fs::is_empty(d.path));  // no partial file left behind
}

TEST(S3Bucket, ReadsAndWritesUseTheirOwnCredentials) {
  FaultyS3 s;
  auto o = s.options();
  o.credentials = {"WRITEKEY", "w-secret", ""};
  o.read_credentials = {"READKEY", "r-secret", ""};
  S3Bucket both(o);
  both.put("who", "x");
  EXPECT_EQ(both.get("who"), "ok");
  // A validator holds the published read keys only: it can read, and cannot write.
  auto ro = s.options();
  ro.credentials = {};
  ro.read_credentials = {"READKEY", "r-secret", ""};
  S3Bucket reader(ro);
  EXPECT_EQ(reader.get("who"), "ok");
  EXPECT_NE(error_of([&] { reader.put("who", "x"); }).find("needs write credentials"),
            std::string::npos);
  std::lock_guard<std::mutex> lock(s.mu);
  EXPECT_EQ(s.keys, (std::vector<std::string>{"PUT WRITEKEY", "GET READKEY", "GET READKEY"}));
}

// Secrets never reach error messages, whatever fails.
TEST(S3Bucket, ErrorsNeverContainSecrets) {
  S3rver server;
  ASSERT_TRUE(server.up());
  const std::string secret = "TOPSECRETvalue/with+chars";
  std::vector<std::string> messages;
  auto collect = [&](S3Options o, auto&& op) {
    o.credentials = {"S3RVER", secret, "SESSIONTOKENsecret"};
    o.max_attempts = 2;
    try {
      S3Bucket b(o);
      op(b);
    } catch (const Error& e) {
      messages.push_back(e.what());
    }
  };
  auto o = server.options();
  o.bucket = "missing-bucket";
  collect(o, [](S3Bucket& b) { b.put("k", "v"); });
  collect(server.options(), [](S3Bucket& b) { b.get("no/such/key"); });
  auto down = server.options();
  down.endpoint = "http://127.0.0.1:1";
  collect(down, [](S3Bucket& b) { b.list(""); });
  ASSERT_EQ(messages.size(), 3u);
  for (const auto& m : messages) {
    EXPECT_EQ(m.find(secret), std::string::npos) << m;
    EXPECT_EQ(m.find("SESSIONTOKENsecret"), std::string::npos) << m;
    EXPECT_EQ(m.find("Signature="), std::string::npos) << m;
  }
}

// Objects written by bistro read back byte for byte with boto3, and the reverse (boto3's
// multipart uploads included).
TEST(S3Bucket, InteroperatesWithBoto3) {
  S3rver server;
  ASSERT_TRUE(server.up());
  S3Bucket b(server.options());
  TempDir d("s3_interop");
  std::string payload(7 << 20, '\0');
  rng::Stream s(1);
  for (auto& c : payload) c = static_cast<char>(s.below(256));
  const std::string ref =
      "/usr/bin/python3 " + source_dir() + "/tests/reference/s3_ref.py " + server.endpoint();

  b.put("from-bistro/x.bin", payload);
  ASSERT_EQ(std::system((ref + " get bistro from-bistro/x.bin " + (d.path / "a").string()).c_str()),
            0);
  EXPECT_EQ(read_file(d.path / "a"), payload);

  write_file_atomic(d.path / "b", payload);
  ASSERT_EQ(std::system((ref + " put bistro from-boto3/multi.bin " + (d.path / "b").string() +
                         " --multipart")
                            .c_str()),
            0);
  EXPECT_EQ(b.get("from-boto3/multi.bin"), payload);
  EXPECT_EQ(b.get_range("from-boto3/multi.bin", 6 << 20, 10), payload.substr(6 << 20, 10));
}

}  // namespace
}  // namespace bistro
