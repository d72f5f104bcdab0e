// Checkpoints in the Hugging Face layout: a directory with config.json, model.safetensors
// (fp32, Hugging Face parameter names) and the tokenizer's files, which transformers'
// LlamaForCausalLM.from_pretrained and AutoTokenizer.from_pretrained load unchanged, and the
// reverse. Training checkpoints add optimizer.safetensors (AdamW moments, with
// the step count in its metadata).
//
// A checkpoint directory is replaced as a whole: it is written beside the target and renamed over
// it, so a crash leaves either the previous checkpoint or the new one.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "bistro/model/llama.hpp"

namespace bistro {

class AdamW;

// Builds a model from dir/config.json and loads dir/model.safetensors into it.
Llama load_model(const std::filesystem::path& dir, c10::Device device);

// Copies a safetensors file into the model's parameters: every parameter must be present with
// its exact shape (F32, F16 or BF16), and no other tensors may be present. Throws bistro::Error
// naming the file and the tensor.
void load_weights(Llama& model, const std::filesystem::path& file);

// Writes model weights (and, when given, optimizer state) as a checkpoint directory, with the
// tokenizer files of `tokenizer` (a SentencePiece model; hf_tokenizer.hpp) when it is not empty:
// the models bistro trains on text carry theirs (pass default_tokenizer_path() for the bundled
// one); a byte-level model has none.
void save_checkpoint(const std::filesystem::path& dir, const Llama& model,
                     const std::filesystem::path& tokenizer, const AdamW* optimizer = nullptr,
                     const std::map<std::string, std::string>& metadata = {});

// Restores optimizer state saved by save_checkpoint; returns false if dir has none.
bool load_optimizer(const std::filesystem::path& dir, const Llama& model, AdamW& optimizer);

}  // namespace bistro
