// Runtime metadata (v14, v15 and v16): the type registry, each pallet's storage entries, calls
// and errors, the signed extensions (v16: those version 4 extrinsics carry), and (v15 and later)
// the runtime APIs. Everything the subtensor client sends or reads is looked up here, never
// hard-coded to one runtime: call indices, storage hashers, extension lists, error names. The blob
// is hostile input: decoding is bounds-checked and a bad blob fails with a clear error.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bistro/substrate/hashing.hpp"
#include "bistro/substrate/scale.hpp"

namespace bistro::substrate {

struct Field {
  std::optional<std::string> name;
  uint32_t type = 0;
};
struct Variant {
  std::string name;
  std::vector<Field> fields;
  uint8_t index = 0;
};

enum class Primitive : uint8_t {
  Bool,
  Char,
  Str,
  U8,
  U16,
  U32,
  U64,
  U128,
  U256,
  I8,
  I16,
  I32,
  I64,
  I128,
  I256
};

struct TypeDef {
  enum Kind : uint8_t {
    Composite,
    VariantT,
    Sequence,
    Array,
    Tuple,
    PrimitiveT,
    Compact,
    BitSequence
  };
  Kind kind = Composite;
  std::vector<std::string> path;
  std::vector<Field> fields;      // Composite
  std::vector<Variant> variants;  // Variant
  uint32_t element = 0;           // Sequence, Array, Compact (inner), BitSequence (store)
  uint32_t length = 0;            // Array
  std::vector<uint32_t> tuple;    // Tuple
  Primitive primitive = Primitive::Bool;
};

struct StorageEntry {
  std::string name;
  bool plain = true;
  std::vector<Hasher> hashers;
  uint32_t key = 0, value = 0;
  std::string default_value;
};

struct Pallet {
  std::string name;
  uint8_t index = 0;
  std::string storage_prefix;
  std::vector<StorageEntry> storage;
  std::optional<uint32_t> calls, events, errors;  // variant type ids
};

struct SignedExtension {
  std::string identifier;
  uint32_t type = 0, additional = 0;
};

struct RuntimeApiMethod {
  std::string api, name;
  std::vector<Field> inputs;
  uint32_t output = 0;
};

class Metadata {
 public:
  // Decodes a metadata blob as returned by state_getMetadata or Metadata_metadata_at_version
  // (magic "meta", version 14, 15 or 16).
  static Metadata decode(std::string_view blob);

  uint8_t version() const { return version_; }
  const TypeDef& type(uint32_t id) const;
  const Pallet& pallet(std::string_view name) const;  // throws "runtime has no pallet X"
  const Pallet* find_pallet(std::string_view name) const;
  const StorageEntry& storage(std::string_view pallet, std::string_view item) const;
  const StorageEntry* find_storage(std::string_view pallet, std::string_view item) const;
  // The call's variant: its (pallet index, call index) and argument fields.
  struct Call {
    uint8_t pallet = 0, index = 0;
    std::vector<Field> args;
  };
  Call call(std::string_view pallet, std::string_view name) const;
  bool has_call(std::string_view pallet, std::string_view name) const;
  // "Pallet.Error" for a DispatchError::Module (pallet index, first error byte).
  std::string error_name(uint8_t pallet, uint8_t error) const;
  const std::vector<SignedExtension>& extensions() const { return extensions_; }
  const std::vector<RuntimeApiMethod>& runtime_apis() const { return apis_; }
  // True when values of the type take no bytes (unit structs, empty tuples).
  bool is_empty(uint32_t type) const;

  // Decodes one value of `type` into JSON (numbers above 2^53 as decimal strings, byte arrays
  // and sequences of u8 as 0x hex, variants as {"name": ..., "values": [...]}).
  nlohmann::json decode_value(uint32_t type, scale::Reader& r, int depth = 0) const;

 private:
  uint8_t version_ = 0;
  std::vector<TypeDef> types_;
  std::vector<Pallet> pallets_;
  std::vector<SignedExtension> extensions_;
  std::vector<uint32_t> v4_extensions_;  // v16: extension version 0's (version 4 extrinsics)
  std::vector<RuntimeApiMethod> apis_;
};

// Builds metadata blobs (v14) from a small spec: used by tests and the in-process test node, so
// the client is tested against bytes made from the format's definition rather than captured ones.
class MetadataBuilder {
 public:
  uint32_t add(TypeDef t);  // returns the type id
  uint32_t primitive(Primitive p);
  uint32_t sequence(uint32_t element);
  uint32_t array(uint32_t element, uint32_t length);
  uint32_t compact(uint32_t inner);
  uint32_t composite(std::vector<std::string> path, std::vector<Field> fields);
  uint32_t variant(std::vector<std::string> path, std::vector<Variant> variants);
  uint32_t tuple(std::vector<uint32_t> elements);
  void pallet(Pallet p) { pallets_.push_back(std::move(p)); }
  void extension(SignedExtension e) { extensions_.push_back(std::move(e)); }
  void runtime_api(RuntimeApiMethod m) { apis_.push_back(std::move(m)); }  // v15 only
  std::string build(uint8_t version = 14) const;

 private:
  std::vector<TypeDef> types_;
  std::vector<Pallet> pallets_;
  std::vector<SignedExtension> extensions_;
  std::vector<RuntimeApiMethod> apis_;
};

}  // namespace bistro::substrate
