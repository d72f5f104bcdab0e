// The tokenizer a checkpoint carries, in the files transformers reads: tokenizer.model (the
// SentencePiece model itself), tokenizer_config.json and special_tokens_map.json, so that
// `AutoTokenizer.from_pretrained(dir)` gives the ids bistro's Tokenizer gives (slow and fast
// tokenizer alike: "legacy" SentencePiece handling of a leading space, and special-token
// strings in the text are plain text, as they are to bistro).
#pragma once

#include <cstdint>
#include <filesystem>

#include "bistro/data/tokenizer.hpp"

namespace bistro {

inline constexpr const char* kTokenizerFile = "tokenizer.model";
inline constexpr const char* kTokenizerConfigFile = "tokenizer_config.json";
inline constexpr const char* kSpecialTokensFile = "special_tokens_map.json";

// Writes the three files into dir from a SentencePiece model. Throws bistro::Error naming the
// model when it is not a supported one or has more pieces than the model's vocab_size (a model
// may have more rows than pieces; never fewer).
void write_hf_tokenizer(const std::filesystem::path& dir, const std::filesystem::path& spm_model,
                        int64_t model_vocab_size);

// The tokenizer a checkpoint directory carries, checked against the model's vocab_size. Throws
// bistro::Error naming the directory: no tokenizer files, or a vocabulary that does not fit.
Tokenizer checkpoint_tokenizer(const std::filesystem::path& dir, int64_t model_vocab_size);

}  // namespace bistro
