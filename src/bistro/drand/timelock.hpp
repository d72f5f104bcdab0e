// drand timelock encryption, as subtensor's timelocked commit-reveal uses it: a message encrypted
// to a future round of drand's quicknet beacon can be read only with that round's signature,
// which the beacon publishes when the round comes (and subtensor's pallet drand stores). The
// scheme is Boneh-Franklin IBE on BLS12-381 (public key in G2, signatures in G1, identity
// SHA-256 of the round) with an AES-256-GCM body; the cryptography is the `timelock` crate's
// (src/bistro/drand/tlock, Rust, over arkworks), the wire form the one bittensor-drand and the
// chain read (tested against bittensor-drand in both directions).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace bistro::drand {

// Quicknet, the beacon subtensor follows (scheme bls-unchained-g1-rfc9380).
inline constexpr const char* kQuicknetPublicKeyHex =
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064"
    "510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ec"
    "e45a";
inline constexpr uint64_t kQuicknetGenesis = 1692803367;  // unix seconds of round 1
inline constexpr uint64_t kQuicknetPeriod = 3;            // seconds per round

// The latest round published by unix time `t` (at least 1): rounds are counted down, so a
// ciphertext never names a round that is not out by then.
uint64_t quicknet_round_at(double unix_seconds);

// `message` encrypted to quicknet round `round`. `seed` (32 bytes) seeds the randomness; the
// overload without one draws it from libsodium (a fixed seed is for tests only). Throws Error.
std::string timelock_encrypt(std::string_view message, uint64_t round);
std::string timelock_encrypt(std::string_view message, uint64_t round,
                             const std::array<uint8_t, 32>& seed,
                             std::string_view public_key_hex = kQuicknetPublicKeyHex);  // 96 bytes
// The message, from a ciphertext and its round's signature (48 bytes, compressed G1). Throws
// Error naming what is wrong: a malformed ciphertext, a malformed signature, or a signature that
// does not open it (another round's).
std::string timelock_decrypt(std::string_view ciphertext, std::string_view signature);

}  // namespace bistro::drand
