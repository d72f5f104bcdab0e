#include "bistro/identity/signer.hpp"

#include <sodium.h>

#include <mutex>

#include "bistro/core/error.hpp"
#include "bistro/identity/sr25519.hpp"

namespace bistro {
void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] { check(sodium_init() >= 0, "libsodium failed to initialise"); });
}

namespace {

class Ed25519Signer final : public Signer {
 public:
  explicit Ed25519Signer(const std::array<uint8_t, 32>& seed) {
    ensure_sodium();
    crypto_sign_seed_keypair(pk_.data(), sk_.data(), seed.data());
  }
  ~Ed25519Signer() override { sodium_memzero(sk_.data(), sk_.size()); }
  std::string scheme() const override { return "ed25519"; }
  PublicKey public_key() const override { return pk_; }
  Signature sign(std::span<const uint8_t> m) const override {
    Signature s;
    crypto_sign_detached(s.data(), nullptr, m.data(), m.size(), sk_.data());
    return s;
  }

 private:
  PublicKey pk_;
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> sk_;
};
}  // namespace

bool verify_signature(const std::string& scheme, const PublicKey& key, std::span<const uint8_t> m,
                      const Signature& s) {
  ensure_sodium();
  if (scheme == "ed25519") {
    return crypto_sign_verify_detached(s.data(), m.data(), m.size(), key.data()) == 0;
  }
  if (scheme == "sr25519") return sr25519_verify(key, m, s);
  return false;
}

std::unique_ptr<Signer> ed25519_signer(const std::array<uint8_t, 32>& seed) {
  return std::make_unique<Ed25519Signer>(seed);
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += d[b >> 4];
    out += d[b & 15];
  }
  return out;
}

template <size_t N>
std::array<uint8_t, N> from_hex(const std::string& hex, const std::string& what) {
  check(hex.size() == 2 * N, "{}: expected {} hex digits, got {}", what, 2 * N, hex.size());
  std::array<uint8_t, N> out{};
  auto nib = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    fail("{}: '{}' is not a hex digit", what, c);
  };
  for (size_t i = 0; i < N; ++i)
    out[i] = static_cast<uint8_t>(nib(hex[2 * i]) * 16 + nib(hex[2 * i + 1]));
  return out;
}
template std::array<uint8_t, 32> from_hex<32>(const std::string&, const std::string&);
template std::array<uint8_t, 64> from_hex<64>(const std::string&, const std::string&);
template std::array<uint8_t, 96> from_hex<96>(const std::string&, const std::string&);

std::array<uint8_t, 32> sha256(std::span<const uint8_t> bytes) {
  ensure_sodium();
  std::array<uint8_t, 32> out;
  crypto_hash_sha256(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace bistro
