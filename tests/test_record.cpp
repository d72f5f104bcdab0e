// The window record (protocol/record.hpp): a validator's signed statement of which updates enter
// window u's outer step. Round trip, and every way a hostile or stale record is refused.
#include <gtest/gtest.h>

#include "bistro/identity/signer.hpp"
#include "bistro/protocol/record.hpp"

namespace bistro {
namespace {

struct Fixture {
  std::unique_ptr<Signer> validator = ed25519_signer({9, 9, 9});
  WindowRecord record() const {
    WindowRecord r;
    r.window = 41;
    r.config_hash = std::string(64, 'c');
    r.hparams_hash = std::string(64, 'd');
    r.base_hash = std::string(32, 'a');
    r.params_hash = std::string(32, 'b');
    r.accepted = {{1, "5Fminer1", std::string(64, '1')}, {7, "5Fminer7", std::string(64, '7')}};
    return r;
  }
  RecordExpectation expect() const {
    return {41, std::string(64, 'c'), std::string(64, 'd'), to_hex(validator->public_key())};
  }
};

std::string error_of(const std::string& bytes, const RecordExpectation& e) {
  try {
    parse_record(bytes, e);
  } catch (const RecordError& err) {
    return err.what();
  }
  return "accepted";
}

TEST(Record, RoundTripsSigned) {
  Fixture f;
  const auto bytes = encode_record(f.record(), *f.validator);
  const auto r = parse_record(bytes, f.expect());
  EXPECT_EQ(r.window, 41u);
  EXPECT_EQ(r.base_hash, std::string(32, 'a'));
  EXPECT_EQ(r.params_hash, std::string(32, 'b'));
  ASSERT_EQ(r.accepted.size(), 2u);
  EXPECT_EQ(r.accepted[1].uid, 7);
  EXPECT_EQ(r.accepted[1].hotkey, "5Fminer7");
  EXPECT_EQ(r.accepted[1].sha256, std::string(64, '7'));
  EXPECT_EQ(r.scheme, "ed25519");
}

TEST(Record, RefusesEachProblemByName) {
  Fixture f;
  const auto good = encode_record(f.record(), *f.validator);
  auto e = f.expect();
  e.window = 42;
  EXPECT_NE(error_of(good, e).find("it says window 41"), std::string::npos);
  e = f.expect();
  e.config_hash = std::string(64, 'e');
  EXPECT_NE(error_of(good, e).find("model config"), std::string::npos);
  e = f.expect();
  e.hparams_hash = std::string(64, 'e');
  EXPECT_NE(error_of(good, e).find("hparams"), std::string::npos);
  e = f.expect();
  e.validator = to_hex(ed25519_signer({1})->public_key());
  EXPECT_NE(error_of(good, e).find("expected the validator"), std::string::npos);
  // Signed by the expected key's impostor: the key field says the right key, the signature fails.
  {
    auto forged = encode_record(f.record(), *ed25519_signer({1}));
    const auto real = to_hex(f.validator->public_key());
    const auto fake = to_hex(ed25519_signer({1})->public_key());
    forged.replace(forged.find(fake), fake.size(), real);
    EXPECT_NE(error_of(forged, f.expect()).find("does not verify"), std::string::npos);
  }
  // One accepted uid changed after signing.
  {
    auto tampered = good;
    tampered.replace(tampered.find("\"uid\":7"), 7, "\"uid\":8");
    EXPECT_NE(error_of(tampered, f.expect()).find("does not verify"), std::string::npos);
  }
  auto bad_entries = f.record();
  bad_entries.accepted = {{7, "a", std::string(64, '7')}, {1, "b", std::string(64, '1')}};
  EXPECT_NE(error_of(encode_record(bad_entries, *f.validator), f.expect()).find("ascending"),
            std::string::npos);
  bad_entries.accepted = {{7, "a", "not-hex"}};
  EXPECT_NE(error_of(encode_record(bad_entries, *f.validator), f.expect()).find("sha256"),
            std::string::npos);
  auto bad_hash = f.record();
  bad_hash.params_hash = "short";
  EXPECT_NE(error_of(encode_record(bad_hash, *f.validator), f.expect()).find("32 hex"),
            std::string::npos);
  EXPECT_NE(error_of("[1, 2]", f.expect()).find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{\"bistro_record\": \"1\"", f.expect()).find("not a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMaxRecordBytes + 1, ' '), f.expect()).find("over the limit"),
            std::string::npos);
  EXPECT_NE(error_of("{\"bistro_record\": \"2\"}", f.expect()).find("version"), std::string::npos);
}

// Flipping any one byte of a signed record never yields an accepted record that differs.
TEST(Record, SurvivesCorruption) {
  Fixture f;
  const auto good = encode_record(f.record(), *f.validator);
  for (size_t i = 0; i < good.size(); i += 3) {
    auto bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x55);
    try {
      const auto r = parse_record(bad, f.expect());
      // Only bytes the signature does not cover (its own digits are zeroed) could pass, and a
      // changed signature digit cannot verify.
      ADD_FAILURE() << "accepted a record corrupted at byte " << i << ": " << r.window;
    } catch (const RecordError&) {
    }
  }
}

}  // namespace
}  // namespace bistro
