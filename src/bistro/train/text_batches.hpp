// Byte-level batches from plain text: the quick start's data until the tokenizer and the page
// pipeline (docs: data) replace it. Token id = byte + 3, leaving 0..2 for pad, BOS and EOS as in
// SentencePiece's byte-fallback layout.
#pragma once

#include <cstdint>
#include <string>

#include "bistro/core/rng.hpp"
#include "bistro/train/trainer.hpp"

namespace bistro {

class TextBatches {
 public:
  // Throws bistro::Error if the text is shorter than one sequence.
  TextBatches(std::string text, int64_t batch, int64_t seq_len, uint64_t seed);
  // Random windows of seq_len + 1 bytes: inputs are the first seq_len, targets the last seq_len.
  Batch next();

 private:
  std::string text_;
  int64_t batch_, seq_len_;
  rng::Stream stream_;
};

// The bundled text: the license texts every Debian system ships in base-files.
std::string bundled_text();

}  // namespace bistro
