#include "bistro/identity/wallet.hpp"

#include <sodium.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/identity/mnemonic.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/identity/ss58.hpp"

namespace bistro {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr uint8_t kNaclSalt[16] = {0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc,
                                   0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1};

std::array<uint8_t, 32> nacl_key(const std::string& password) {
  ensure_sodium();
  std::array<uint8_t, 32> key;
  check(crypto_pwhash(key.data(), key.size(), password.data(), password.size(), kNaclSalt, 8,
                      512ull << 20, crypto_pwhash_ALG_ARGON2I13) == 0,
        "wallet: Argon2 key derivation ran out of memory");
  return key;
}

std::string hex0x(std::span<const uint8_t> b) {
  return "0x" + to_hex(b);
}
}  // namespace

Keyfile keyfile_from_seed(const std::array<uint8_t, 32>& mini) {
  Keyfile k;
  k.mini_secret = mini;
  k.public_key = sr25519_from_mini_secret(mini).public_key;
  k.ss58_address = ss58_encode(k.public_key);
  return k;
}

Keyfile keyfile_from_mnemonic(const std::string& phrase) {
  auto k = keyfile_from_seed(mini_secret_from_mnemonic(phrase));
  k.secret_phrase = phrase;
  return k;
}

std::string keyfile_json(const Keyfile& k) {
  json j = {{"accountId", hex0x(k.public_key)},
            {"cryptoType", 1},  // sr25519, as btcli marks it
            {"publicKey", hex0x(k.public_key)},
            {"ss58Address", k.ss58_address}};
  if (k.has_secret) {
    const auto kp = sr25519_from_mini_secret(k.mini_secret);
    std::vector<uint8_t> priv(kp.key.begin(), kp.key.end());
    priv.insert(priv.end(), kp.nonce.begin(), kp.nonce.end());
    j["privateKey"] = hex0x(priv);
    j["secretSeed"] = hex0x(k.mini_secret);
    j["secretPhrase"] = k.secret_phrase.empty() ? json(nullptr) : json(k.secret_phrase);
  }
  return j.dump(1);
}

Keyfile parse_keyfile(std::string_view text, const std::string& origin) {
  const auto j = json::parse(text, nullptr, false);
  check(j.is_object(), "{}: not a keyfile (expected a JSON object)", origin);
  Keyfile k;
  auto str = [&](const char* key) -> std::string {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
  };
  // btcli writes the scheme as substrate's KeypairType: 0 ed25519, 1 sr25519, 2 ecdsa.
  if (j.contains("cryptoType")) {
    check(j["cryptoType"].is_number_integer(), "{}: cryptoType is not a number", origin);
    const auto type = j["cryptoType"].get<int64_t>();
    check(type == 1,
          "{}: key type {} (cryptoType {}) is not supported: bistro signs with sr25519 keys "
          "(btcli's default; --hotkey-crypto-type/--coldkey-crypto-type sr25519)",
          origin,
          type == 0   ? "ed25519"
          : type == 2 ? "ecdsa"
                      : "unknown",
          type);
  }
  const auto seed = str("secretSeed");
  if (!seed.empty()) {
    check(seed.rfind("0x", 0) == 0, "{}: secretSeed must start with 0x", origin);
    k = keyfile_from_seed(from_hex<32>(seed.substr(2), origin + " secretSeed"));
    k.secret_phrase = str("secretPhrase");
  } else if (!str("secretPhrase").empty()) {
    k = keyfile_from_mnemonic(str("secretPhrase"));
  } else {
    const auto pub = str("publicKey");
    check(pub.rfind("0x", 0) == 0, "{}: no secretSeed, secretPhrase or publicKey", origin);
    k.public_key = from_hex<32>(pub.substr(2), origin + " publicKey");
    k.ss58_address = ss58_encode(k.public_key);
    k.has_secret = false;
  }
  const auto addr = str("ss58Address");
  check(addr.empty() || addr == k.ss58_address, "{}: ss58Address {} does not match the key ({})",
        origin, addr, k.ss58_address);
  return k;
}

std::string nacl_encrypt(std::string_view plaintext, const std::string& password) {
  const auto key = nacl_key(password);
  uint8_t nonce[crypto_secretbox_NONCEBYTES];
  randombytes_buf(nonce, sizeof nonce);
  std::string out = "$NACL";
  out.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
  std::string box(plaintext.size() + crypto_secretbox_MACBYTES, '\0');
  crypto_secretbox_easy(reinterpret_cast<uint8_t*>(box.data()),
                        reinterpret_cast<const uint8_t*>(plaintext.data()), plaintext.size(), nonce,
                        key.data());
  return out + box;
}

std::string nacl_decrypt(std::string_view file, const std::string& password,
                         const std::string& origin) {
  check(file.rfind("$NACL", 0) == 0, "{}: not a $NACL-encrypted keyfile", origin);
  check(file.size() >= 5 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES,
        "{}: encrypted keyfile is truncated", origin);
  const auto key = nacl_key(password);
  const auto* nonce = reinterpret_cast<const uint8_t*>(file.data() + 5);
  const auto box = file.substr(5 + crypto_secretbox_NONCEBYTES);
  std::string plain(box.size() - crypto_secretbox_MACBYTES, '\0');
  check(crypto_secretbox_open_easy(reinterpret_cast<uint8_t*>(plain.data()),
                                   reinterpret_cast<const uint8_t*>(box.data()), box.size(), nonce,
                                   key.data()) == 0,
        "{}: wrong password (or the file is corrupt)", origin);
  return plain;
}

Keyfile read_keyfile(const fs::path& path, const std::optional<std::string>& password) {
  check(fs::exists(path), "keyfile {} does not exist", path.string());
  const auto bytes = read_file(path);
  if (bytes.rfind("$NACL", 0) == 0) {
    check(password.has_value(), "{} is encrypted: a password is needed", path.string());
    return parse_keyfile(nacl_decrypt(bytes, *password, path.string()), path.string());
  }
  return parse_keyfile(bytes, path.string());
}

void write_keyfile(const fs::path& path, const Keyfile& k,
                   const std::optional<std::string>& password, bool overwrite) {
  check(overwrite || !fs::exists(path), "{} exists; pass --overwrite to replace it", path.string());
  fs::create_directories(path.parent_path());
  const auto json_text = keyfile_json(k);
  const std::string bytes = password ? nacl_encrypt(json_text, *password) : json_text;
  write_file_atomic(path, bytes);
  if (k.has_secret) ::chmod(path.c_str(), 0600);
}

void write_coldkey(const WalletPaths& wallet, const Keyfile& k,
                   const std::optional<std::string>& password, bool overwrite) {
  write_keyfile(wallet.coldkey(), k, password, overwrite);
  Keyfile pub = k;
  pub.has_secret = false;
  write_keyfile(wallet.coldkeypub(), pub, std::nullopt, overwrite);
}

fs::path default_wallet_root() {
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".bittensor" / "wallets";
}

}  // namespace bistro
