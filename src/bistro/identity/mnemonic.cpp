#include "bistro/identity/mnemonic.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include <sstream>
#include <unordered_map>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro {

const std::vector<std::string>& bip39_words() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w;
    std::istringstream in(read_file(std::string(BISTRO_ASSET_DIR) + "/bip39/english.txt"));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) w.push_back(line);
    }
    check(w.size() == 2048, "bip39 word list has {} words, expected 2048", w.size());
    return w;
  }();
  return words;
}

std::vector<uint8_t> mnemonic_to_entropy(const std::string& phrase) {
  static const auto index = [] {
    std::unordered_map<std::string, int> m;
    const auto& w = bip39_words();
    for (int i = 0; i < static_cast<int>(w.size()); ++i) m[w[i]] = i;
    return m;
  }();
  std::vector<int> ids;
  std::istringstream in(phrase);
  for (std::string word; in >> word;) {
    auto it = index.find(word);
    check(it != index.end(), "mnemonic: '{}' is not a BIP39 English word", word);
    ids.push_back(it->second);
  }
  const size_t n = ids.size();
  check(n >= 12 && n <= 24 && n % 3 == 0, "mnemonic: {} words, expected 12, 15, 18, 21 or 24", n);
  const size_t bits = n * 11, checksum_bits = bits / 33, entropy_bytes = (bits - checksum_bits) / 8;
  std::vector<uint8_t> all((bits + 7) / 8, 0);
  for (size_t i = 0; i < n; ++i) {
    for (int b = 0; b < 11; ++b) {
      if (ids[i] & (1 << (10 - b))) {
        const size_t pos = i * 11 + b;
        all[pos / 8] |= static_cast<uint8_t>(0x80 >> (pos % 8));
      }
    }
  }
  std::vector<uint8_t> entropy(all.begin(), all.begin() + entropy_bytes);
  const auto hash = sha256(entropy);
  const uint8_t expect = static_cast<uint8_t>(hash[0] >> (8 - checksum_bits));
  const uint8_t got = static_cast<uint8_t>(all[entropy_bytes] >> (8 - checksum_bits));
  check(expect == got, "mnemonic: checksum mismatch (a word is wrong or out of order)");
  return entropy;
}

std::string entropy_to_mnemonic(const std::vector<uint8_t>& entropy) {
  check(entropy.size() >= 16 && entropy.size() <= 32 && entropy.size() % 4 == 0,
        "mnemonic: entropy of {} bytes, expected 16, 20, 24, 28 or 32", entropy.size());
  std::vector<uint8_t> all = entropy;
  all.push_back(sha256(entropy)[0]);
  const size_t words = entropy.size() * 8 * 33 / 32 / 11;
  std::string out;
  for (size_t i = 0; i < words; ++i) {
    int v = 0;
    for (int b = 0; b < 11; ++b) {
      const size_t pos = i * 11 + b;
      v = (v << 1) | ((all[pos / 8] >> (7 - pos % 8)) & 1);
    }
    out += (out.empty() ? "" : " ") + bip39_words()[v];
  }
  return out;
}

std::string generate_mnemonic(int words) {
  check(words >= 12 && words <= 24 && words % 3 == 0, "mnemonic: {} words is not a BIP39 length",
        words);
  ensure_sodium();
  std::vector<uint8_t> entropy(static_cast<size_t>(words) * 4 / 3);
  randombytes_buf(entropy.data(), entropy.size());
  return entropy_to_mnemonic(entropy);
}

std::array<uint8_t, 32> mini_secret_from_mnemonic(const std::string& phrase,
                                                  const std::string& password) {
  const auto entropy = mnemonic_to_entropy(phrase);
  const std::string salt = "mnemonic" + password;
  uint8_t seed[64];
  check(PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(entropy.data()),
                          static_cast<int>(entropy.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), 2048, EVP_sha512(), 64, seed) == 1,
        "mnemonic: PBKDF2 failed");
  std::array<uint8_t, 32> out;
  std::copy(seed, seed + 32, out.begin());
  sodium_memzero(seed, sizeof seed);
  return out;
}

}  // namespace bistro
