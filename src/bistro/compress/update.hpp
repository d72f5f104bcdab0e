// The update wire format: a safetensors file, never pickle (Python BISTRO loaded peers' files with
// torch.load, which runs code). docs/protocol.md specifies it:
//   dct-topk: for each parameter P, "P.idx" I32 [chunks, k] and "P.val" F32 [chunks, k]
//             (packed: "P.idx" U8 12-bit pairs; "P.val" I8 or U8 2-bit codes plus "P.scale");
//   sparseloco: the same chunked layout over the parameter's own coordinates; 2-bit values are
//             U8 codes plus "P.levels" F32 [4] (each code's decoded value);
//   slice:    for each parameter P, "P.val" F32 [k] (positions follow from the window's seed).
//   __metadata__: bistro_update "1", codec, k (dct: coefficients per chunk; slice: compression),
//   chunk_cap, window, uid, hotkey (hex public key), scheme, config_hash (hex SHA-256 of the
//   model's config.json), signature (hex; signed over the whole file with the signature's own
//   hex digits set to '0').
//
// decode_update treats the bytes as hostile and checks, before anything touches a model: size
// limit (from the codec parameters), structure, codec and parameters, window, uid, hotkey and
// config hash against what the object key and the chain promise, the signature, the exact
// tensor set and shapes for the model, index ranges, duplicate indices within a chunk, NaN/Inf
// and value bounds. Each failure is an UpdateError with a named reason a validator can log and
// score as zero.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bistro/core/error.hpp"
#include "bistro/model/config.hpp"

namespace bistro {

class Signer;

enum class Reject {
  TooLarge,
  Malformed,
  WrongCodec,
  WrongWindow,
  WrongUid,
  WrongHotkey,
  WrongConfig,
  BadSignature,
  MissingTensor,
  ExtraTensor,
  BadShape,
  IndexOutOfRange,
  DuplicateIndex,
  NonFinite,
  ValueTooLarge,
};
const char* reject_name(Reject r);

class UpdateError : public Error {
 public:
  UpdateError(Reject reason, const std::string& message)
      : Error(std::string(reject_name(reason)) + ": " + message), reason_(reason) {}
  Reject reason() const { return reason_; }

 private:
  Reject reason_;
};

struct UpdateTensor {
  std::string name;
  int64_t rows = 1;          // dct: chunks; slice: 1
  int64_t k = 0;             // entries per row
  std::vector<int32_t> idx;  // dct only: rows x k coefficient indices within the chunk
  std::vector<float> val;    // rows x k values
  // sparseloco with 2-bit values: the four decoded levels (every val is one of them).
  std::vector<float> levels;
};

struct Update {
  std::string codec;  // "sparseloco", "dct-topk" or "slice"
  int64_t k = 32;     // sparseloco/dct: entries kept per chunk; slice: compression factor
  int64_t chunk_cap = 64;
  // dct-topk wire options (templar's later format): values as 32-bit floats, or 8-bit or 2-bit
  // codes over +-6 RMS of the tensor's sent values; indices as int32 or packed 12-bit.
  int value_bits = 32;
  int index_bits = 32;
  uint64_t window = 0;
  uint64_t uid = 0;
  std::string config_hash;
  std::string scheme;                 // set by encode_update from the signer
  std::string hotkey;                 // hex public key, set by encode_update
  std::vector<UpdateTensor> tensors;  // in parameter_specs() order
};

// One peer's decoded update, as the merges and the outer step take them.
struct PeerUpdate {
  uint64_t uid;
  const Update* update;
};

struct UpdateExpectation {
  std::string codec;
  int64_t k = 32;
  int64_t chunk_cap = 64;
  int value_bits = 32;
  int index_bits = 32;
  uint64_t window = 0;
  uint64_t uid = 0;
  std::string hotkey;  // the hotkey registered for uid, hex
  std::string config_hash;
  std::vector<ParameterSpec> params;
  float max_abs_value = 1e4f;
};

// Hex SHA-256 of config.to_json(): updates only apply to the model they were made for.
std::string config_hash(const LlamaConfig& config);

// dct-topk and sparseloco: [chunks, k] indices and values per parameter.
bool is_chunked_codec(const std::string& codec);

// Rows and k each parameter must have under the codec.
struct TensorLayout {
  int64_t rows, k, chunk_size;
};
TensorLayout tensor_layout(const std::string& codec, int64_t k, int64_t chunk_cap,
                           const std::vector<int64_t>& shape);

// Quantise values as the wire does (bits 8 or 2) and return what a decoder reads back, with the
// scale written beside them; bits 32 returns the values unchanged and scale 0.
std::vector<float> quantize_roundtrip(const std::vector<float>& values, int bits, float* scale);

uint64_t max_update_bytes(const UpdateExpectation& e);

std::string encode_update(Update update, const Signer& signer);
Update decode_update(std::string_view bytes, const UpdateExpectation& expected,
                     std::string_view origin);

}  // namespace bistro
