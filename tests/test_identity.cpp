#include <gtest/gtest.h>

#include "bistro/core/error.hpp"
#include "bistro/identity/mnemonic.hpp"
#include "bistro/identity/ss58.hpp"

namespace bistro {
namespace {

// Vectors from ../shared/FACTS.md.
TEST(Ss58, EncodesTheWellKnownDevAccounts) {
  const auto alice =
      from_hex<32>("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", "alice");
  EXPECT_EQ(ss58_encode(alice), "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
  const auto bob =
      from_hex<32>("8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", "bob");
  EXPECT_EQ(ss58_encode(bob), "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty");
  EXPECT_EQ(ss58_decode("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"), alice);
}

TEST(Ss58, RejectsBadAddressesByName) {
  auto error_of = [](const std::string& a) {
    try {
      ss58_decode(a);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  // One character changed: the checksum catches it.
  EXPECT_NE(error_of("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ").find("checksum"),
            std::string::npos);
  EXPECT_NE(error_of("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKut0Y").find("base58"),
            std::string::npos);  // '0' is not base58
  EXPECT_NE(error_of("5Grwva").find("expected 35"), std::string::npos);
  const auto alice = ss58_decode("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
  EXPECT_NE(error_of(ss58_encode(alice, 0)).find("network prefix 0, expected 42"),
            std::string::npos);
}

TEST(Mnemonic, DevPhraseGivesSubstratesMiniSecret) {
  EXPECT_EQ(to_hex(mini_secret_from_mnemonic(
                "bottom drive obey lake curtain smoke basket hold race lonely fit walk")),
            "fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e");
}

TEST(Mnemonic, RoundTripsAndChecksItsChecksum) {
  for (int words : {12, 15, 24}) {
    const auto phrase = generate_mnemonic(words);
    const auto entropy = mnemonic_to_entropy(phrase);
    EXPECT_EQ(entropy.size(), static_cast<size_t>(words) * 4 / 3);
    EXPECT_EQ(entropy_to_mnemonic(entropy), phrase);
  }
  // BIP39's all-zero vector.
  EXPECT_EQ(entropy_to_mnemonic(std::vector<uint8_t>(16, 0)),
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
            "abandon about");
  EXPECT_THROW(mnemonic_to_entropy("abandon abandon abandon abandon abandon abandon abandon "
                                   "abandon abandon abandon abandon abandon"),
               Error);  // checksum
  EXPECT_THROW(mnemonic_to_entropy("bottom drive obey lake curtain smoke basket hold race "
                                   "lonely fit notaword"),
               Error);
  EXPECT_THROW(mnemonic_to_entropy("bottom drive obey"), Error);
}

}  // namespace
}  // namespace bistro
