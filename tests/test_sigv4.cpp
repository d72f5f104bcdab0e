#include "bistro/storage/sigv4.hpp"

#include "bistro/data/http.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace bistro {
namespace {

const AwsCredentials kExample{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(SigV4, Encoding) {
  EXPECT_EQ(url_escape("a b/c~d_e.f-g", true), "a%20b/c~d_e.f-g");
  EXPECT_EQ(url_escape("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(url_escape("caf\xc3\xa9+=*", false), "caf%C3%A9%2B%3D%2A");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// AWS's published SigV4 test suite, case get-vanilla (service "service", 2015-08-30T12:36:00Z).
TEST(SigV4, AwsTestSuiteGetVanilla) {
  SigV4Request r{.method = "GET",
                 .host = "example.amazonaws.com",
                 .path = "/",
                 .query = {},
                 .headers = {},
                 .payload_sha256 = sha256_hex(""),
                 .content_sha256_header = false};
  const auto s = sign_v4(r, kExample, "us-east-1", "service", 1440938160);
  EXPECT_EQ(s.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// More cases of the same suite: a POST, and query parameters that must be sorted.
TEST(SigV4, AwsTestSuitePostVanillaAndQueryOrder) {
  SigV4Request post{.method = "POST",
                    .host = "example.amazonaws.com",
                    .path = "/",
                    .query = {},
                    .headers = {},
                    .payload_sha256 = sha256_hex(""),
                    .content_sha256_header = false};
  EXPECT_EQ(sign_v4(post, kExample, "us-east-1", "service", 1440938160).authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
  SigV4Request query{.method = "GET",
                     .host = "example.amazonaws.com",
                     .path = "/",
                     .query = {{"Param2", "value2"}, {"Param1", "value1"}},
                     .headers = {},
                     .payload_sha256 = sha256_hex(""),
                     .content_sha256_header = false};
  EXPECT_EQ(sign_v4(query, kExample, "us-east-1", "service", 1440938160).authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

// botocore (Debian's python3-botocore) signs 60 generated S3 requests; bistro must produce the
// byte-identical Authorization header for each.
TEST(SigV4, MatchesBotocore) {
  const char* src = std::getenv("BISTRO_SOURCE_DIR");
  const std::string script = std::string(src ? src : ".") + "/tests/reference/sigv4_ref.py";
  const auto out = run("/usr/bin/python3 " + script);
  const auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "reference script failed: " << out.substr(0, 300);
  const std::time_t now = j["time"].get<std::time_t>();
  int compared = 0;
  for (const auto& c : j["cases"]) {
    SigV4Request r;
    r.method = c["method"];
    r.host = c["host"];
    r.path = c["path"];
    for (const auto& q : c["query"]) r.query.emplace_back(q[0], q[1]);
    for (const auto& h : c["headers"]) r.headers.emplace_back(h[0], h[1]);
    r.payload_sha256 = c["payload_sha256"];
    AwsCredentials cred = kExample;
    cred.session_token = c["token"];
    const auto s = sign_v4(r, cred, c["region"], "s3", now);
    EXPECT_EQ(s.authorization, c["authorization"].get<std::string>())
        << c.dump() << "\ncanonical request:\n"
        << s.canonical_request;
    ++compared;
  }
  EXPECT_EQ(compared, 60);
}

}  // namespace
}  // namespace bistro
