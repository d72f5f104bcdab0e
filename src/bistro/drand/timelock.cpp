#include "bistro/drand/timelock.hpp"

#include <sodium.h>

#include <cmath>

#include "bistro/core/error.hpp"
#include "bistro/identity/signer.hpp"

extern "C" {
// src/bistro/drand/tlock/lib.rs: 0 on success, else one of the codes below; *out_len gets the
// output's size (also when the buffer was too small).
int bistro_tlock_encrypt(const uint8_t* public_key, size_t public_key_len, uint64_t round,
                         const uint8_t* msg, size_t msg_len, const uint8_t* seed, uint8_t* out,
                         size_t out_cap, size_t* out_len);
int bistro_tlock_decrypt(const uint8_t* ciphertext, size_t ciphertext_len, const uint8_t* signature,
                         size_t signature_len, uint8_t* out, size_t out_cap, size_t* out_len);
}

namespace bistro::drand {
namespace {

enum Status : int {
  kOk = 0,
  kBadPublicKey,
  kEncryptionFailed,
  kOutputTooSmall,
  kBadCiphertext,
  kBadSignature,
  kDecryptionFailed,
  kPanicked
};

const uint8_t* bytes(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// Calls one of the entry points with a buffer that grows once if it was too small.
template <typename F>
std::string call(F&& f, size_t guess, const char* what) {
  std::string out(guess, '\0');
  size_t n = 0;
  int rc = f(reinterpret_cast<uint8_t*>(out.data()), out.size(), &n);
  if (rc == kOutputTooSmall) {
    out.assign(n, '\0');
    rc = f(reinterpret_cast<uint8_t*>(out.data()), out.size(), &n);
  }
  switch (rc) {
    case kOk:
      out.resize(n);
      return out;
    case kBadPublicKey:
      fail("drand {}: the beacon's public key is not a point of G2", what);
    case kBadCiphertext:
      fail("drand {}: malformed timelock ciphertext", what);
    case kBadSignature:
      fail("drand {}: the signature is not a compressed point of G1 (48 bytes)", what);
    case kDecryptionFailed:
      fail("drand {}: the signature does not open this ciphertext (another round's?)", what);
    default:
      fail("drand {}: the timelock library failed (code {})", what, rc);
  }
}

}  // namespace

uint64_t quicknet_round_at(double t) {
  const double r = std::floor((t - static_cast<double>(kQuicknetGenesis)) /
                              static_cast<double>(kQuicknetPeriod));
  return r < 1 ? 1 : static_cast<uint64_t>(r);
}

std::string timelock_encrypt(std::string_view message, uint64_t round) {
  ensure_sodium();
  std::array<uint8_t, 32> seed;
  randombytes_buf(seed.data(), seed.size());
  return timelock_encrypt(message, round, seed);
}

std::string timelock_encrypt(std::string_view message, uint64_t round,
                             const std::array<uint8_t, 32>& seed, std::string_view public_key_hex) {
  const auto pk = from_hex<96>(std::string(public_key_hex), "drand public key");
  return call(
      [&](uint8_t* out, size_t cap, size_t* n) {
        return bistro_tlock_encrypt(pk.data(), pk.size(), round, bytes(message), message.size(),
                                    seed.data(), out, cap, n);
      },
      message.size() + 512, "encryption");
}

std::string timelock_decrypt(std::string_view ciphertext, std::string_view signature) {
  return call(
      [&](uint8_t* out, size_t cap, size_t* n) {
        return bistro_tlock_decrypt(bytes(ciphertext), ciphertext.size(), bytes(signature),
                                    signature.size(), out, cap, n);
      },
      ciphertext.size(), "decryption");
}

}  // namespace bistro::drand
