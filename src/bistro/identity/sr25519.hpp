// sr25519 as schnorrkel implements it (substrate's default key type): Schnorr signatures over
// Ristretto255 (libsodium) with Merlin transcripts (STROBE-128 over Keccak-f[1600], written here).
//   keypair from a 32-byte mini secret: h = SHA-512(mini); key = clamp(h[0..32]) / 8 (cofactor);
//   nonce = h[32..64]; public = key * B.
//   sign(context "substrate", msg): transcript "SigningContext" <- ("", context), ("sign-bytes",
//   msg), ("proto-name", "Schnorr-sig"), ("sign:pk", public), ("sign:R", R); k = challenge
//   "sign:c" (64 bytes, reduced); s = k key + r; signature R || s with bit 7 of byte 63 set.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "bistro/identity/signer.hpp"

namespace bistro {

struct Sr25519Keypair {
  std::array<uint8_t, 32> key;    // secret scalar
  std::array<uint8_t, 32> nonce;  // secret nonce seed
  PublicKey public_key;
};

Sr25519Keypair sr25519_from_mini_secret(const std::array<uint8_t, 32>& mini_secret);

Signature sr25519_sign(const Sr25519Keypair& kp, std::span<const uint8_t> message,
                       std::string_view context = "substrate");
bool sr25519_verify(const PublicKey& key, std::span<const uint8_t> message,
                    const Signature& signature, std::string_view context = "substrate");

std::unique_ptr<Signer> sr25519_signer(const std::array<uint8_t, 32>& mini_secret);

// Substrate's hard derivation ("//Alice"): the junction's chain code is its SCALE encoding
// (compact length + bytes) zero-padded to 32 bytes (or, if longer, its blake2b-256); a Merlin
// transcript "SchnorrRistrettoHDKD" over ("sign-bytes", ""), ("chain-code", cc), ("secret-key",
// key) yields the child mini secret as challenge "HDKD-hard".
std::array<uint8_t, 32> sr25519_hard_derive(const Sr25519Keypair& parent,
                                            std::string_view junction);
// Applies a path of hard junctions, "//Alice" or "//bistro//miner-1", to a mini secret.
std::array<uint8_t, 32> sr25519_derive_path(std::array<uint8_t, 32> mini_secret,
                                            std::string_view path);

// The Merlin transcript, exposed for tests.
class MerlinTranscript {
 public:
  explicit MerlinTranscript(std::string_view label);
  void append_message(std::string_view label, std::span<const uint8_t> message);
  void challenge_bytes(std::string_view label, std::span<uint8_t> out);

 private:
  void meta_ad(std::span<const uint8_t> data, bool more);
  void ad(std::span<const uint8_t> data, bool more);
  void prf(std::span<uint8_t> out, bool more);
  void begin_op(uint8_t flags, bool more);
  void absorb(std::span<const uint8_t> data);
  void run_f();

  std::array<uint8_t, 200> st_{};
  uint8_t pos_ = 0, pos_begin_ = 0, cur_flags_ = 0;
};

}  // namespace bistro
