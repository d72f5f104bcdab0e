// BIP39 mnemonics as substrate uses them: the words encode entropy (+ a SHA-256 checksum), and
// the 32-byte mini secret is PBKDF2-HMAC-SHA512 over the *entropy* (not the words, unlike
// BIP39 seeds), salt "mnemonic" + password, 2048 rounds, first 32 bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace bistro {

// The English word list (assets/bip39/english.txt, the BIP's public list).
const std::vector<std::string>& bip39_words();

// Entropy from a mnemonic of 12, 15, 18, 21 or 24 words; throws bistro::Error naming an unknown
// word, a wrong word count or a checksum mismatch.
std::vector<uint8_t> mnemonic_to_entropy(const std::string& phrase);
std::string entropy_to_mnemonic(const std::vector<uint8_t>& entropy);
// A fresh 12-word (128-bit) mnemonic from libsodium's CSPRNG.
std::string generate_mnemonic(int words = 12);

std::array<uint8_t, 32> mini_secret_from_mnemonic(const std::string& phrase,
                                                  const std::string& password = "");

}  // namespace bistro
