// Tokenizer: SentencePiece BPE models (the LLaMA-2 tokenizer.model that BISTRO used is one; the
// default is assets/tokenizer/bistro-8k.model, trained by this project on its default corpus with
// SentencePiece's own trainer, spm_train; see `bistro data train-tokenizer`).
//
// The model file is read and the BPE encoding is done here rather than through libsentencepiece:
// Debian's libsentencepiece exports its private copy of protobuf, which collides with the
// libprotobuf that libtorch loads and crashes the process at start-up. The encoding is held to
// spm_encode's output by tests. Supported: BPE models with identity normalisation (no
// precompiled character map), dummy prefix, whitespace escaping, byte fallback.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bistro {

class Dataset;

class Tokenizer {
 public:
  // Throws bistro::Error naming the file and the reason for a missing, malformed or unsupported
  // model.
  explicit Tokenizer(const std::filesystem::path& model);
  // Parses a model from bytes (origin names it in errors).
  static Tokenizer from_bytes(std::string_view bytes, std::string origin);

  std::vector<int32_t> encode(std::string_view text) const;
  // A document as BISTRO fed it: BOS, the text's tokens truncated so the whole fits in
  // max_tokens, then EOS.
  std::vector<int32_t> encode_document(std::string_view text, size_t max_tokens) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  int32_t unk_id() const { return unk_; }
  // The piece's text ("<s>", "\xe2\x96\x81the", ...); throws for an id out of range.
  const std::string& piece(int32_t id) const;
  const std::string& origin() const { return origin_; }

 private:
  Tokenizer() = default;
  struct Piece {
    std::string text;
    float score = 0;
    int type = 1;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  };
  std::string origin_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int32_t> mergeable_;  // normal and user-defined pieces
  std::array<int32_t, 256> byte_ids_{};                 // <0xXX> pieces, -1 if absent
  int32_t unk_ = 0, bos_ = 1, eos_ = 2;
  bool byte_fallback_ = false, add_dummy_prefix_ = true, escape_whitespaces_ = true;
};

// $BISTRO_TOKENIZER, else the bundled assets/tokenizer/bistro-8k.model.
std::filesystem::path default_tokenizer_path();

// Trains a BPE model with byte fallback (unk 0, bos 1, eos 2; identity normalisation, dummy
// prefix) with SentencePiece's spm_train on up to max_documents documents of the dataset,
// writing prefix.model and prefix.vocab.
void train_tokenizer(Dataset& dataset, const std::filesystem::path& prefix, int vocab_size,
                     uint64_t max_documents);

}  // namespace bistro
