#include "bistro/model/hf_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"

namespace bistro {
namespace fs = std::filesystem;

namespace {
void check_fits(const Tokenizer& t, int64_t model_vocab_size, const std::string& what) {
  check(t.vocab_size() <= model_vocab_size,
        "{}: the tokenizer has {} pieces but the model's vocab_size is {} (they do not match)",
        what, t.vocab_size(), model_vocab_size);
}
}  // namespace

void write_hf_tokenizer(const fs::path& dir, const fs::path& spm_model, int64_t model_vocab_size) {
  const std::string bytes = read_file(spm_model);
  const Tokenizer t = Tokenizer::from_bytes(bytes, spm_model.string());
  check_fits(t, model_vocab_size, spm_model.string());
  nlohmann::json special = nlohmann::json::object();
  if (t.bos_id() >= 0) special["bos_token"] = t.piece(t.bos_id());
  if (t.eos_id() >= 0) special["eos_token"] = t.piece(t.eos_id());
  if (t.unk_id() >= 0) special["unk_token"] = t.piece(t.unk_id());
  nlohmann::json config = special;
  config["tokenizer_class"] = "LlamaTokenizer";
  // bistro feeds a document as BOS, its tokens, EOS; transformers adds the BOS itself.
  config["add_bos_token"] = t.bos_id() >= 0;
  config["add_eos_token"] = false;
  // "legacy" keeps SentencePiece's own handling of a leading space (the non-legacy fast tokenizer
  // drops the dummy prefix before one); "<s>" written in a text is text to bistro, so it must be
  // to transformers too.
  config["legacy"] = true;
  config["split_special_tokens"] = true;
  config["clean_up_tokenization_spaces"] = false;
  write_file_atomic(dir / kTokenizerFile, bytes);
  write_file_atomic(dir / kTokenizerConfigFile, config.dump(2));
  write_file_atomic(dir / kSpecialTokensFile, special.dump(2));
}

Tokenizer checkpoint_tokenizer(const fs::path& dir, int64_t model_vocab_size) {
  const auto file = dir / kTokenizerFile;
  check(fs::exists(file),
        "checkpoint {}: no tokenizer files ({} is missing; bistro writes it with every "
        "checkpoint)",
        dir.string(), kTokenizerFile);
  Tokenizer t(file);
  check_fits(t, model_vocab_size, "checkpoint " + dir.string());
  return t;
}

}  // namespace bistro
