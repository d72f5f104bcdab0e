// Signer and Verifier: how an update is bound to the miner's hotkey. Schemes: "sr25519"
// (substrate's default, identity/sr25519.hpp) and "ed25519" (libsodium).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace bistro {

using PublicKey = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;

class Signer {
 public:
  virtual ~Signer() = default;
  virtual std::string scheme() const = 0;  // "ed25519", later "sr25519"
  virtual PublicKey public_key() const = 0;
  virtual Signature sign(std::span<const uint8_t> message) const = 0;
};

// True if `signature` by `key` under `scheme` covers `message`; false for an unknown scheme.
bool verify_signature(const std::string& scheme, const PublicKey& key,
                      std::span<const uint8_t> message, const Signature& signature);

// ed25519 from a 32-byte seed (libsodium's crypto_sign_seed_keypair).
std::unique_ptr<Signer> ed25519_signer(const std::array<uint8_t, 32>& seed);

std::string to_hex(std::span<const uint8_t> bytes);
// Throws bistro::Error naming `what` for a wrong length or a non-hex character.
template <size_t N>
std::array<uint8_t, N> from_hex(const std::string& hex, const std::string& what);

std::array<uint8_t, 32> sha256(std::span<const uint8_t> bytes);

// Initialises libsodium once (thread-safe); every use of libsodium calls this first.
void ensure_sodium();

}  // namespace bistro
