// Wallets in btcli's layout: <path>/<name>/coldkey, coldkeypub.txt, hotkeys/<hotkey>. Keyfiles are
// JSON {accountId, cryptoType (1: sr25519, the only type supported), publicKey, privateKey,
// secretPhrase, secretSeed, ss58Address} (hex with 0x); the coldkey may be encrypted as "$NACL" ||
// nonce(24) || secretbox(json) under an Argon2i13 key (opslimit 8, memlimit 512 MiB, btcli's fixed
// salt). Hotkeys are plain, as btcli writes them. Secrets are written 0600 and atomically, and
// never over an existing key without overwrite.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bistro/identity/sr25519.hpp"

namespace bistro {

struct Keyfile {
  std::string secret_phrase;              // may be empty (regenerated from a seed)
  std::array<uint8_t, 32> mini_secret{};  // "secretSeed"
  PublicKey public_key{};
  std::string ss58_address;
  bool has_secret = true;  // false for coldkeypub.txt
};

Keyfile keyfile_from_mnemonic(const std::string& phrase);
Keyfile keyfile_from_seed(const std::array<uint8_t, 32>& mini_secret);

std::string keyfile_json(const Keyfile& k);
Keyfile parse_keyfile(std::string_view json, const std::string& origin);
// "$NACL" files need a password; plain JSON does not. Errors name the file.
Keyfile read_keyfile(const std::filesystem::path& path, const std::optional<std::string>& password);
void write_keyfile(const std::filesystem::path& path, const Keyfile& k,
                   const std::optional<std::string>& password, bool overwrite);

std::string nacl_encrypt(std::string_view plaintext, const std::string& password);
std::string nacl_decrypt(std::string_view file, const std::string& password,
                         const std::string& origin);

struct WalletPaths {
  std::filesystem::path root;  // ~/.bittensor/wallets unless --wallet.path
  std::string name, hotkey;
  std::filesystem::path coldkey() const { return root / name / "coldkey"; }
  std::filesystem::path coldkeypub() const { return root / name / "coldkeypub.txt"; }
  std::filesystem::path hotkey_file() const { return root / name / "hotkeys" / hotkey; }
};
std::filesystem::path default_wallet_root();

// Writes the coldkey (encrypted when a password is given) and its coldkeypub.txt.
void write_coldkey(const WalletPaths& wallet, const Keyfile& k,
                   const std::optional<std::string>& password, bool overwrite);

}  // namespace bistro
