#include "bistro/identity/sr25519.hpp"

#include <sodium.h>

#include <cstring>
#include <vector>

#include "bistro/core/error.hpp"

namespace bistro {
namespace {

// ---- Keccak-f[1600]
constexpr uint64_t kRoundConstants[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
constexpr int kRho[25] = {0,  1,  62, 28, 27, 36, 44, 6,  55, 20, 3,  10, 43,
                          25, 39, 41, 45, 15, 21, 8,  18, 2,  61, 56, 14};

uint64_t rotl(uint64_t x, int n) {
  return n == 0 ? x : (x << n) | (x >> (64 - n));
}

void keccak_f(std::array<uint8_t, 200>& bytes) {
  uint64_t a[25];
  for (int i = 0; i < 25; ++i) {
    uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | bytes[i * 8 + b];
    a[i] = v;
  }
  for (int round = 0; round < 24; ++round) {
    uint64_t c[5], d[5], b[25];
    for (int x = 0; x < 5; ++x) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (int x = 0; x < 5; ++x) d[x] = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
    for (int i = 0; i < 25; ++i) a[i] ^= d[i % 5];
    // rho and pi: lane (x, y) moves to (y, 2x + 3y).
    for (int x = 0; x < 5; ++x) {
      for (int y = 0; y < 5; ++y)
        b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], kRho[x + 5 * y]);
    }
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 5; ++x) {
        a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
      }
    }
    a[0] ^= kRoundConstants[round];
  }
  for (int i = 0; i < 25; ++i) {
    for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<uint8_t>(a[i] >> (8 * b));
  }
}

constexpr uint8_t kR = 166;  // STROBE-128 rate
constexpr uint8_t kFlagI = 1, kFlagA = 2, kFlagC = 4, kFlagT = 8, kFlagM = 16, kFlagK = 32;

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

MerlinTranscript::MerlinTranscript(std::string_view label) {
  const uint8_t init[6] = {1, kR + 2, 1, 0, 1, 96};
  std::memcpy(st_.data(), init, 6);
  std::memcpy(st_.data() + 6, "STROBEv1.0.2", 12);
  keccak_f(st_);
  meta_ad(bytes_of("Merlin v1.0"), false);
  append_message("dom-sep", bytes_of(label));
}

void MerlinTranscript::run_f() {
  st_[pos_] ^= pos_begin_;
  st_[pos_ + 1] ^= 0x04;
  st_[kR + 1] ^= 0x80;
  keccak_f(st_);
  pos_ = 0;
  pos_begin_ = 0;
}

void MerlinTranscript::absorb(std::span<const uint8_t> data) {
  for (uint8_t b : data) {
    st_[pos_] ^= b;
    if (++pos_ == kR) run_f();
  }
}

void MerlinTranscript::begin_op(uint8_t flags, bool more) {
  if (more) {
    check(flags == cur_flags_, "merlin: continued operation with different flags");
    return;
  }
  check((flags & kFlagT) == 0, "merlin: transport operations are not supported");
  const uint8_t old_begin = pos_begin_;
  pos_begin_ = static_cast<uint8_t>(pos_ + 1);
  cur_flags_ = flags;
  const uint8_t header[2] = {old_begin, flags};
  absorb(header);
  if ((flags & (kFlagC | kFlagK)) != 0 && pos_ != 0) run_f();
}

void MerlinTranscript::meta_ad(std::span<const uint8_t> data, bool more) {
  begin_op(kFlagM | kFlagA, more);
  absorb(data);
}

void MerlinTranscript::ad(std::span<const uint8_t> data, bool more) {
  begin_op(kFlagA, more);
  absorb(data);
}

void MerlinTranscript::prf(std::span<uint8_t> out, bool more) {
  begin_op(kFlagI | kFlagA | kFlagC, more);
  for (auto& b : out) {
    b = st_[pos_];
    st_[pos_] = 0;
    if (++pos_ == kR) run_f();
  }
}

void MerlinTranscript::append_message(std::string_view label, std::span<const uint8_t> message) {
  const uint32_t n = static_cast<uint32_t>(message.size());
  const uint8_t len[4] = {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8),
                          static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 24)};
  meta_ad(bytes_of(label), false);
  meta_ad(len, true);
  ad(message, false);
}

void MerlinTranscript::challenge_bytes(std::string_view label, std::span<uint8_t> out) {
  const uint32_t n = static_cast<uint32_t>(out.size());
  const uint8_t len[4] = {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8),
                          static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 24)};
  meta_ad(bytes_of(label), false);
  meta_ad(len, true);
  prf(out, false);
}

Sr25519Keypair sr25519_from_mini_secret(const std::array<uint8_t, 32>& mini) {
  ensure_sodium();
  uint8_t h[64];
  crypto_hash_sha512(h, mini.data(), mini.size());
  Sr25519Keypair kp;
  h[0] &= 248;
  h[31] &= 63;
  h[31] |= 64;
  // Divide the clamped 256-bit little-endian integer by the cofactor 8.
  uint8_t low = 0;
  for (int i = 31; i >= 0; --i) {
    const uint8_t b = h[i];
    kp.key[i] = static_cast<uint8_t>((b >> 3) | (low << 5));
    low = b & 7;
  }
  std::memcpy(kp.nonce.data(), h + 32, 32);
  sodium_memzero(h, sizeof h);
  check(crypto_scalarmult_ristretto255_base(kp.public_key.data(), kp.key.data()) == 0,
        "sr25519: degenerate secret key");
  return kp;
}

namespace {
MerlinTranscript signing_transcript(std::string_view context, std::span<const uint8_t> message,
                                    const PublicKey& pk) {
  MerlinTranscript t("SigningContext");
  t.append_message("", bytes_of(context));
  t.append_message("sign-bytes", message);
  t.append_message("proto-name", bytes_of("Schnorr-sig"));
  t.append_message("sign:pk", pk);
  return t;
}

std::array<uint8_t, 32> challenge(MerlinTranscript& t, const uint8_t* R) {
  t.append_message("sign:R", std::span<const uint8_t>(R, 32));
  uint8_t wide[64];
  t.challenge_bytes("sign:c", wide);
  std::array<uint8_t, 32> k;
  crypto_core_ristretto255_scalar_reduce(k.data(), wide);
  return k;
}
}  // namespace

Signature sr25519_sign(const Sr25519Keypair& kp, std::span<const uint8_t> message,
                       std::string_view context) {
  ensure_sodium();
  auto t = signing_transcript(context, message, kp.public_key);
  // Witness: hash of the nonce seed, the transcript's challenge so far and fresh randomness
  // (schnorrkel mixes the same three), so r never repeats across messages or calls.
  uint8_t seed[64 + 32 + 32], wide[64];
  MerlinTranscript witness = t;
  witness.challenge_bytes("witness", std::span<uint8_t>(seed, 64));
  std::memcpy(seed + 64, kp.nonce.data(), 32);
  randombytes_buf(seed + 96, 32);
  crypto_hash_sha512(wide, seed, sizeof seed);
  uint8_t r[32];
  crypto_core_ristretto255_scalar_reduce(r, wide);
  Signature sig;
  check(crypto_scalarmult_ristretto255_base(sig.data(), r) == 0, "sr25519: degenerate nonce");
  const auto k = challenge(t, sig.data());
  uint8_t kx[32], s[32];
  crypto_core_ristretto255_scalar_mul(kx, k.data(), kp.key.data());
  crypto_core_ristretto255_scalar_add(s, kx, r);
  std::memcpy(sig.data() + 32, s, 32);
  sig[63] |= 0x80;  // schnorrkel's marker: distinguishes sr25519 from older signatures
  sodium_memzero(r, sizeof r);
  sodium_memzero(seed, sizeof seed);
  return sig;
}

bool sr25519_verify(const PublicKey& key, std::span<const uint8_t> message,
                    const Signature& signature, std::string_view context) {
  ensure_sodium();
  if ((signature[63] & 0x80) == 0) return false;
  uint8_t s[32];
  std::memcpy(s, signature.data() + 32, 32);
  s[31] &= 0x7f;
  // s must be a canonical scalar (below the group order).
  uint8_t wide[64] = {};
  std::memcpy(wide, s, 32);
  uint8_t reduced[32];
  crypto_core_ristretto255_scalar_reduce(reduced, wide);
  if (sodium_memcmp(reduced, s, 32) != 0) return false;
  if (crypto_core_ristretto255_is_valid_point(key.data()) != 1 ||
      crypto_core_ristretto255_is_valid_point(signature.data()) != 1) {
    return false;
  }
  auto t = signing_transcript(context, message, key);
  const auto k = challenge(t, signature.data());
  // R == s B - k A
  uint8_t sb[32], ka[32], rhs[32], neg_k[32];
  if (crypto_scalarmult_ristretto255_base(sb, s) != 0) return false;
  crypto_core_ristretto255_scalar_negate(neg_k, k.data());
  if (crypto_scalarmult_ristretto255(ka, neg_k, key.data()) != 0) return false;
  crypto_core_ristretto255_add(rhs, sb, ka);
  return sodium_memcmp(rhs, signature.data(), 32) == 0;
}

namespace {
class Sr25519Signer final : public Signer {
 public:
  explicit Sr25519Signer(const std::array<uint8_t, 32>& mini)
      : kp_(sr25519_from_mini_secret(mini)) {}
  ~Sr25519Signer() override {
    sodium_memzero(kp_.key.data(), 32);
    sodium_memzero(kp_.nonce.data(), 32);
  }
  std::string scheme() const override { return "sr25519"; }
  PublicKey public_key() const override { return kp_.public_key; }
  Signature sign(std::span<const uint8_t> m) const override { return sr25519_sign(kp_, m); }

 private:
  Sr25519Keypair kp_;
};
}  // namespace

std::array<uint8_t, 32> sr25519_hard_derive(const Sr25519Keypair& parent,
                                            std::string_view junction) {
  ensure_sodium();
  // SCALE: compact length prefix, then the bytes.
  std::vector<uint8_t> encoded;
  const size_t n = junction.size();
  if (n < 64) {
    encoded.push_back(static_cast<uint8_t>(n << 2));
  } else {
    check(n < (1u << 14), "sr25519: junction of {} bytes is too long", n);
    encoded.push_back(static_cast<uint8_t>(((n << 2) | 1) & 0xff));
    encoded.push_back(static_cast<uint8_t>((n << 2) >> 8));
  }
  encoded.insert(encoded.end(), junction.begin(), junction.end());
  std::array<uint8_t, 32> cc{};
  if (encoded.size() > 32) {
    crypto_generichash(cc.data(), cc.size(), encoded.data(), encoded.size(), nullptr, 0);
  } else {
    std::copy(encoded.begin(), encoded.end(), cc.begin());
  }
  MerlinTranscript t("SchnorrRistrettoHDKD");
  t.append_message("sign-bytes", {});
  t.append_message("chain-code", cc);
  t.append_message("secret-key", parent.key);
  std::array<uint8_t, 32> child;
  t.challenge_bytes("HDKD-hard", child);
  return child;
}

std::array<uint8_t, 32> sr25519_derive_path(std::array<uint8_t, 32> mini, std::string_view path) {
  while (!path.empty()) {
    check(path.rfind("//", 0) == 0, "sr25519: derivation path '{}' must be hard junctions (//name)",
          path);
    path.remove_prefix(2);
    const size_t end = std::min(path.find('/'), path.size());
    const auto junction = path.substr(0, end);
    check(!junction.empty(), "sr25519: empty junction in derivation path");
    mini = sr25519_hard_derive(sr25519_from_mini_secret(mini), junction);
    path.remove_prefix(end);
  }
  return mini;
}

std::unique_ptr<Signer> sr25519_signer(const std::array<uint8_t, 32>& mini_secret) {
  return std::make_unique<Sr25519Signer>(mini_secret);
}

}  // namespace bistro
