#include "bistro/model/safetensors.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"

namespace bistro::safetensors {
namespace {

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A file built by hand: header JSON as given, then `data_bytes` bytes.
std::string raw_file(const std::string& header, std::size_t data_bytes) {
  uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\x01');
}

void expect_rejected(const std::string& file, const std::string& fragment) {
  try {
    View::parse(as_bytes(file), "peer.safetensors");
    FAIL() << "accepted a file that should fail with: " << fragment;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("peer.safetensors: ", 0), 0u) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

TEST(Safetensors, RoundTripsThroughMemoryAndDisk) {
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<int64_t> b = {1, -2, 3};
  std::vector<TensorRef> refs = {{"a", DType::F32, {2, 3}, a.data()},
                                 {"b.idx", DType::I64, {3}, b.data()}};
  const std::string bytes = serialize(refs, {{"format", "pt"}});
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u);  // data section aligned
  auto v = View::parse(as_bytes(bytes), "mem");
  ASSERT_EQ(v.tensors().size(), 2u);
  EXPECT_EQ(v.metadata().at("format"), "pt");
  const auto* ta = v.find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(v.data(*ta).data(), a.data(), 24), 0);
  const auto* tb = v.find("b.idx");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->dtype, DType::I64);
  EXPECT_EQ(std::memcmp(v.data(*tb).data(), b.data(), 24), 0);

  const auto path = std::filesystem::temp_directory_path() / "bistro_st_roundtrip.safetensors";
  write(path, refs, {{"format", "pt"}});
  EXPECT_EQ(read_file(path), bytes);
  File f(path);
  EXPECT_EQ(f.view().tensors().size(), 2u);
  std::filesystem::remove(path);
}

TEST(Safetensors, EmptyAndScalarTensors) {
  float x = 4.0f;
  auto bytes = serialize({{"scalar", DType::F32, {}, &x}, {"empty", DType::F32, {0, 5}, nullptr}});
  auto v = View::parse(as_bytes(bytes), "mem");
  EXPECT_EQ(v.find("scalar")->numel(), 1u);
  EXPECT_EQ(v.find("empty")->numel(), 0u);
}

TEST(Safetensors, RejectsTruncatedFile) {
  expect_rejected("abc", "truncated");
  float x[4] = {};
  auto good = serialize({{"t", DType::F32, {4}, x}});
  expect_rejected(good.substr(0, good.size() - 1), "out of range");
}

TEST(Safetensors, RejectsHeaderLengthBeyondFile) {
  std::string f = raw_file("{}", 0);
  uint64_t huge = 1000;
  std::memcpy(f.data(), &huge, 8);
  expect_rejected(f, "header length 1000 runs past the end");
  huge = 1ull << 40;
  std::memcpy(f.data(), &huge, 8);
  expect_rejected(f, "exceeds the limit");
}

TEST(Safetensors, RejectsOverlappingOffsets) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12),
                  "overlaps");
}

TEST(Safetensors, RejectsOutOfRangeOffsets) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
                  "out of range");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
                  "begin after end");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8),
                  "data_offsets");
}

TEST(Safetensors, RejectsUnknownDtype) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}})", 1),
                  "unknown dtype 'F8_E9'");
}

TEST(Safetensors, RejectsShapeByteSizeMismatch) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                  "need 12 bytes but its data_offsets span 8");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],)"
                           R"("data_offsets":[0,8]}})",
                           8),
                  "overflows");
}

TEST(Safetensors, RejectsHolesDuplicatesAndBadMetadata) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                  "belong to no tensor");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8),
                  "trailing bytes");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           8),
                  "duplicate entry 'a'");
  expect_rejected(raw_file(R"({"__metadata__":{"k":1}})", 0), "not a string");
  expect_rejected(raw_file(R"([1,2])", 0), "must be a JSON object");
  expect_rejected(raw_file(R"({"a":)", 0), "not valid JSON");
}

// Random corruptions of a valid file: every one is either accepted or rejected with an Error;
// nothing crashes (run under AddressSanitizer and UBSan in CI).
TEST(Safetensors, SurvivesRandomCorruption) {
  std::vector<float> a(16, 1.0f);
  std::vector<int32_t> b(5, 7);
  const auto good =
      serialize({{"weights", DType::F32, {4, 4}, a.data()}, {"idx", DType::I32, {5}, b.data()}},
                {{"window", "12"}});
  rng::Stream s(2024);
  int rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string f = good;
    const int edits = 1 + static_cast<int>(s.below(4));
    for (int e = 0; e < edits; ++e) {
      const auto pos = s.below(f.size());
      f[pos] = static_cast<char>(s.below(256));
    }
    if (s.below(4) == 0) f.resize(s.below(f.size() + 1));
    try {
      View::parse(as_bytes(f), "fuzz");
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace bistro::safetensors
