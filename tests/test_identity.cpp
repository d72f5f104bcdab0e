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

#include "bistro/identity/sr25519.hpp"

namespace bistro {
namespace {

TEST(Sr25519, PublicKeysMatchSubstrate) {
  EXPECT_EQ(
      to_hex(sr25519_from_mini_secret(
                 from_hex<32>("e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
                              "alice"))
                 .public_key),
      "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d");
  EXPECT_EQ(to_hex(sr25519_from_mini_secret({}).public_key),
            "def12e42f3e487e9b14095aa8d5cc16a33491f1b50dadcf8811d1480f3fa8627");
  EXPECT_EQ(to_hex(sr25519_from_mini_secret(
                       mini_secret_from_mnemonic("bottom drive obey lake curtain smoke basket "
                                                 "hold race lonely fit walk"))
                       .public_key),
            "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a");
}

TEST(Sr25519, HardDerivationGivesTheDevAccounts) {
  const auto root = mini_secret_from_mnemonic(
      "bottom drive obey lake curtain smoke basket hold race lonely fit walk");
  const auto alice = sr25519_derive_path(root, "//Alice");
  EXPECT_EQ(to_hex(alice), "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a");
  EXPECT_EQ(ss58_encode(sr25519_from_mini_secret(sr25519_derive_path(root, "//Bob")).public_key),
            "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty");
  EXPECT_THROW(sr25519_derive_path(root, "/soft"), Error);
  EXPECT_THROW(sr25519_derive_path(root, "//a///b"), Error);
}

TEST(Sr25519, VerifiesASubstrateSignature) {
  const auto alice =
      from_hex<32>("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", "alice");
  const auto sig = from_hex<64>(
      "e8fcba6ab9a676d348f7e856abf256dc7c0c6a578eed11f48390d179607fd95e8af99f66e8f4912ac1b7f5b455"
      "aa468459889aa6d38f6dfcf3552d45cdfe0080",
      "sig");
  const std::string msg = "hello bittensor";
  const auto m = std::span(reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
  EXPECT_TRUE(sr25519_verify(alice, m, sig));
  auto bad = sig;
  bad[5] ^= 1;
  EXPECT_FALSE(sr25519_verify(alice, m, bad));
  const std::string other = "hello bittensor!";
  EXPECT_FALSE(sr25519_verify(
      alice, std::span(reinterpret_cast<const uint8_t*>(other.data()), other.size()), sig));
}

TEST(Sr25519, SignsWhatItVerifiesAndPlugsIntoSigner) {
  const auto signer = sr25519_signer(
      from_hex<32>("e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a", "alice"));
  EXPECT_EQ(signer->scheme(), "sr25519");
  const std::string msg = "update bytes";
  const auto m = std::span(reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
  const auto a = signer->sign(m), b = signer->sign(m);
  EXPECT_NE(a, b);  // randomised witness
  EXPECT_TRUE(sr25519_verify(signer->public_key(), m, a));
  EXPECT_TRUE(sr25519_verify(signer->public_key(), m, b));
  EXPECT_TRUE(verify_signature("sr25519", signer->public_key(), m, a));
}

}  // namespace
}  // namespace bistro

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "bistro/core/files.hpp"

#include <functional>
#include "bistro/identity/wallet.hpp"

namespace bistro {
namespace {

TEST(Wallet, KeyfilesRoundTripPlainAndEncrypted) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("bistro_wallet_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  WalletPaths w{dir, "default", "miner"};
  const auto cold = keyfile_from_mnemonic(
      "bottom drive obey lake curtain smoke basket hold race lonely fit walk");
  EXPECT_EQ(cold.ss58_address,
            ss58_encode(from_hex<32>(
                "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a", "pk")));
  write_keyfile(w.coldkey(), cold, std::string("correct horse"), false);
  Keyfile pub = cold;
  pub.has_secret = false;
  write_keyfile(w.coldkeypub(), pub, std::nullopt, false);
  const auto hot = keyfile_from_seed(sr25519_derive_path(cold.mini_secret, "//Alice"));
  write_keyfile(w.hotkey_file(), hot, std::nullopt, false);

  EXPECT_EQ(read_file(w.coldkey()).rfind("$NACL", 0), 0u);
  struct stat st {};
  ::stat(w.coldkey().c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto back = read_keyfile(w.coldkey(), std::string("correct horse"));
  EXPECT_EQ(back.mini_secret, cold.mini_secret);
  EXPECT_EQ(back.secret_phrase, cold.secret_phrase);
  EXPECT_THROW(read_keyfile(w.coldkey(), std::string("wrong")), Error);
  EXPECT_THROW(read_keyfile(w.coldkey(), std::nullopt), Error);
  EXPECT_EQ(read_keyfile(w.coldkeypub(), std::nullopt).public_key, cold.public_key);
  EXPECT_FALSE(read_keyfile(w.coldkeypub(), std::nullopt).has_secret);
  EXPECT_EQ(read_keyfile(w.hotkey_file(), std::nullopt).ss58_address,
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
  // Never over an existing key without overwrite.
  EXPECT_THROW(write_keyfile(w.hotkey_file(), cold, std::nullopt, false), Error);
  // A keyfile whose address disagrees with its key is refused.
  auto text = keyfile_json(hot);
  text.replace(text.find(hot.ss58_address), hot.ss58_address.size(),
               "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty");
  EXPECT_THROW(parse_keyfile(text, "tampered"), Error);
  std::filesystem::remove_all(dir);
}

// A hotkey file as btcli writes it (//Alice), typed by hand.
TEST(Wallet, LoadsAHandWrittenBtcliKeyfile) {
  const std::string btcli =
      R"({"accountId": "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
 "publicKey": "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
 "privateKey": "0x00",
 "secretPhrase": null,
 "secretSeed": "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
 "ss58Address": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"})";
  const auto k = parse_keyfile(btcli, "alice");
  EXPECT_EQ(k.ss58_address, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
  EXPECT_TRUE(k.has_secret);
}

TEST(Wallet, BadKeyfilesAreNamed) {
  auto error_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  const auto enc = nacl_encrypt(keyfile_json(keyfile_from_seed({7})), "pw");
  EXPECT_NE(error_of([&] { nacl_decrypt(enc.substr(0, 30), "pw", "cut"); }).find("truncated"),
            std::string::npos);
  auto flipped = enc;
  flipped.back() ^= 1;
  EXPECT_NE(error_of([&] { nacl_decrypt(flipped, "pw", "flip"); }).find("wrong password"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_keyfile("$ARGON2{...}", "odd"); }).find("not a keyfile"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_keyfile(R"({"secretSeed": "0x12"})", "short");
            }).find("expected 64 hex digits"),
            std::string::npos);
  // btcli's other key types are named (the keyfile's own cryptoType), not misread as sr25519.
  const std::string ed =
      R"({"cryptoType": 0, "secretSeed": "0x3f48f85eac0f212037ef55ef3d4786526a8d137b43e6ce871c08c6ccb4973ad8"})";
  EXPECT_NE(error_of([&] {
              parse_keyfile(ed, "ed.key");
            }).find("ed.key: key type ed25519 (cryptoType 0) is not supported"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_keyfile(R"({"cryptoType": "x"})", "odd.key");
            }).find("odd.key: cryptoType is not a number"),
            std::string::npos);
  // No secret in any of these messages.
  EXPECT_EQ(error_of([&] { nacl_decrypt(flipped, "pw", "flip"); }).find("0x"), std::string::npos);
}

}  // namespace
}  // namespace bistro
