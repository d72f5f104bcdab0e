#include "bistro/substrate/metadata.hpp"

#include <fmt/format.h>

namespace bistro::substrate {
namespace {

constexpr uint32_t kMagic = 0x6174656d;  // "meta" little-endian
constexpr size_t kMaxTypes = 1 << 20;

std::string str(scale::Reader& r) {
  return r.bytes();
}
std::vector<std::string> strings(scale::Reader& r) {
  std::vector<std::string> out(r.length());
  for (auto& s : out) s = str(r);
  return out;
}
std::optional<std::string> opt_str(scale::Reader& r) {
  if (r.u8() == 0) return std::nullopt;
  return str(r);
}
uint32_t type_id(scale::Reader& r) {
  auto v = r.compact();
  if (v > UINT32_MAX) r.fail("type id beyond u32");
  return static_cast<uint32_t>(v);
}
std::optional<uint32_t> opt_type(scale::Reader& r) {
  uint8_t tag = r.u8();
  if (tag == 0) return std::nullopt;
  if (tag != 1) r.fail("bad Option tag");
  return type_id(r);
}

std::vector<Field> fields(scale::Reader& r) {
  std::vector<Field> out(r.length());
  for (auto& f : out) {
    f.name = opt_str(r);
    f.type = type_id(r);
    opt_str(r);  // type name
    strings(r);  // docs
  }
  return out;
}

// V16's deprecation notes, skipped: ItemDeprecationInfo (none, without a note, or a note and an
// optional since) and EnumDeprecationInfo (a map of variant index to the same, tags 1 and 2).
void item_deprecation(scale::Reader& r) {
  const uint8_t tag = r.u8();
  if (tag == 2) {
    str(r);
    opt_str(r);
  } else if (tag > 2) {
    r.fail(fmt::format("bad deprecation tag {}", tag));
  }
}
void enum_deprecation(scale::Reader& r) {
  for (size_t n = r.length(); n > 0; --n) {
    r.u8();  // variant index
    const uint8_t tag = r.u8();
    if (tag != 1 && tag != 2) r.fail(fmt::format("bad variant deprecation tag {}", tag));
    if (tag == 2) {
      str(r);
      opt_str(r);
    }
  }
}

TypeDef read_type(scale::Reader& r) {
  TypeDef t;
  t.path = strings(r);
  for (size_t n = r.length(); n > 0; --n) {  // type parameters: name, Option<type>
    str(r);
    opt_type(r);
  }
  const uint8_t kind = r.u8();
  switch (kind) {
    case 0:
      t.kind = TypeDef::Composite;
      t.fields = fields(r);
      break;
    case 1: {
      t.kind = TypeDef::VariantT;
      t.variants.resize(r.length());
      for (auto& v : t.variants) {
        v.name = str(r);
        v.fields = fields(r);
        v.index = r.u8();
        strings(r);
      }
      break;
    }
    case 2:
      t.kind = TypeDef::Sequence;
      t.element = type_id(r);
      break;
    case 3:
      t.kind = TypeDef::Array;
      t.length = r.u32();
      t.element = type_id(r);
      break;
    case 4: {
      t.kind = TypeDef::Tuple;
      t.tuple.resize(r.length());
      for (auto& e : t.tuple) e = type_id(r);
      break;
    }
    case 5: {
      t.kind = TypeDef::PrimitiveT;
      uint8_t p = r.u8();
      if (p > static_cast<uint8_t>(Primitive::I256)) r.fail(fmt::format("unknown primitive {}", p));
      t.primitive = static_cast<Primitive>(p);
      break;
    }
    case 6:
      t.kind = TypeDef::Compact;
      t.element = type_id(r);
      break;
    case 7:
      t.kind = TypeDef::BitSequence;
      t.element = type_id(r);
      type_id(r);
      break;
    default:
      r.fail(fmt::format("unknown type definition kind {}", kind));
  }
  strings(r);  // docs
  return t;
}

}  // namespace

Metadata Metadata::decode(std::string_view blob) {
  scale::Reader r(blob, "runtime metadata");
  if (blob.size() < 5 || r.u32() != kMagic) r.fail("not runtime metadata (no 'meta' magic)");
  Metadata m;
  m.version_ = r.u8();
  const uint8_t v = m.version_;
  if (v < 14 || v > 16)
    r.fail(fmt::format("metadata version {} is not supported (14, 15 and 16 are)", v));

  const size_t ntypes = r.length();
  if (ntypes > kMaxTypes) r.fail("too many types");
  m.types_.resize(ntypes);
  for (size_t i = 0; i < ntypes; ++i) {
    uint32_t id = type_id(r);
    if (id != i) r.fail(fmt::format("type ids out of order ({} at position {})", id, i));
    m.types_[i] = read_type(r);
  }

  // V16 wraps calls, events and errors with their variants' deprecation notes.
  auto enum_type = [&] {
    auto id = opt_type(r);
    if (id && v >= 16) enum_deprecation(r);
    return id;
  };
  m.pallets_.resize(r.length());
  for (auto& p : m.pallets_) {
    p.name = str(r);
    if (r.u8()) {
      p.storage_prefix = str(r);
      p.storage.resize(r.length());
      for (auto& e : p.storage) {
        e.name = str(r);
        r.u8();  // modifier
        uint8_t kind = r.u8();
        if (kind == 0) {
          e.value = type_id(r);
        } else if (kind == 1) {
          e.plain = false;
          e.hashers.resize(r.length());
          for (auto& h : e.hashers) {
            uint8_t x = r.u8();
            if (x > 6) r.fail(fmt::format("unknown storage hasher {}", x));
            h = static_cast<Hasher>(x);
          }
          e.key = type_id(r);
          e.value = type_id(r);
        } else {
          r.fail(fmt::format("unknown storage entry kind {}", kind));
        }
        e.default_value = r.bytes();
        strings(r);
        if (v >= 16) item_deprecation(r);
      }
    }
    p.calls = enum_type();
    p.events = enum_type();
    for (size_t n = r.length(); n > 0; --n) {  // constants
      str(r);
      type_id(r);
      r.bytes();
      strings(r);
      if (v >= 16) item_deprecation(r);
    }
    p.errors = enum_type();
    if (v >= 16) {
      for (size_t n = r.length(); n > 0; --n) {  // associated types
        str(r);
        type_id(r);
        strings(r);
      }
      for (size_t n = r.length(); n > 0; --n) {  // view functions
        r.raw(32);                               // id
        str(r);
        for (size_t k = r.length(); k > 0; --k) str(r), type_id(r);
        type_id(r);
        strings(r);
        item_deprecation(r);
      }
    }
    p.index = r.u8();
    if (v >= 15) strings(r);  // docs
    if (v >= 16) item_deprecation(r);
  }

  if (v == 14) {
    type_id(r);  // extrinsic type
    r.u8();      // version
  } else if (v == 15) {
    r.u8();                                  // version
    for (int i = 0; i < 4; ++i) type_id(r);  // address, call, signature, extra
  } else {
    r.bytes();                               // versions
    for (int i = 0; i < 3; ++i) type_id(r);  // address, call, signature
    // The extensions of each transaction extension version, as indexes into the list that
    // follows: a version 4 signed extrinsic carries those of version 0 (version 5's general
    // transactions name their version; bistro sends version 4).
    bool listed = false;
    for (size_t n = r.length(); n > 0; --n) {
      const uint8_t version = r.u8();
      std::vector<uint32_t> idx(r.length());
      for (auto& x : idx) x = type_id(r);
      if (version == 0) m.v4_extensions_ = std::move(idx), listed = true;
    }
    if (!listed) r.fail("no transaction extensions of version 0 (what version 4 extrinsics carry)");
  }
  m.extensions_.resize(r.length());
  for (auto& e : m.extensions_) {
    e.identifier = str(r);
    e.type = type_id(r);
    e.additional = type_id(r);
  }
  if (v >= 16) {
    std::vector<SignedExtension> v4;
    for (uint32_t x : m.v4_extensions_) {
      if (x >= m.extensions_.size())
        r.fail(fmt::format("transaction extension {} is not listed", x));
      v4.push_back(m.extensions_[x]);
    }
    m.extensions_ = std::move(v4);
  }
  if (v <= 15) type_id(r);  // runtime type
  if (v >= 15) {
    for (size_t n = r.length(); n > 0; --n) {
      std::string api = str(r);
      for (size_t k = r.length(); k > 0; --k) {
        RuntimeApiMethod method;
        method.api = api;
        method.name = str(r);
        method.inputs.resize(r.length());
        for (auto& f : method.inputs) {
          f.name = str(r);
          f.type = type_id(r);
        }
        method.output = type_id(r);
        strings(r);
        if (v >= 16) item_deprecation(r);
        m.apis_.push_back(std::move(method));
      }
      strings(r);
      if (v >= 16) {
        r.compact();  // the API's version
        item_deprecation(r);
      }
    }
    for (int i = 0; i < 3; ++i) type_id(r);    // outer enums
    for (size_t n = r.length(); n > 0; --n) {  // custom
      str(r);
      type_id(r);
      r.bytes();
    }
  }
  // Every type id mentioned must exist.
  auto valid = [&](uint32_t id) {
    if (id >= m.types_.size()) r.fail(fmt::format("type id {} is not in the registry", id));
  };
  for (const auto& t : m.types_) {
    for (const auto& f : t.fields) valid(f.type);
    for (const auto& v : t.variants)
      for (const auto& f : v.fields) valid(f.type);
    for (auto e : t.tuple) valid(e);
    if (t.kind == TypeDef::Sequence || t.kind == TypeDef::Array || t.kind == TypeDef::Compact)
      valid(t.element);
  }
  for (const auto& p : m.pallets_) {
    for (auto id : {p.calls, p.events, p.errors})
      if (id) valid(*id);
    for (const auto& e : p.storage) valid(e.value), valid(e.key);
  }
  for (const auto& e : m.extensions_) valid(e.type), valid(e.additional);
  return m;
}

const TypeDef& Metadata::type(uint32_t id) const {
  if (id >= types_.size()) throw scale::ScaleError(fmt::format("metadata: no type {}", id));
  return types_[id];
}

const Pallet* Metadata::find_pallet(std::string_view name) const {
  for (const auto& p : pallets_)
    if (p.name == name) return &p;
  return nullptr;
}

const Pallet& Metadata::pallet(std::string_view name) const {
  if (auto* p = find_pallet(name)) return *p;
  fail("the chain's runtime has no pallet {}", name);
}

const StorageEntry* Metadata::find_storage(std::string_view pallet_name,
                                           std::string_view item) const {
  const Pallet* p = find_pallet(pallet_name);
  if (p)
    for (const auto& e : p->storage)
      if (e.name == item) return &e;
  return nullptr;
}

const StorageEntry& Metadata::storage(std::string_view pallet_name, std::string_view item) const {
  if (auto* e = find_storage(pallet_name, item)) return *e;
  fail("the chain's runtime has no storage {}.{}", pallet_name, item);
}

bool Metadata::has_call(std::string_view pallet_name, std::string_view name) const {
  const Pallet* p = find_pallet(pallet_name);
  if (p && p->calls)
    for (const auto& v : type(*p->calls).variants)
      if (v.name == name) return true;
  return false;
}

Metadata::Call Metadata::call(std::string_view pallet_name, std::string_view name) const {
  const Pallet& p = pallet(pallet_name);
  if (p.calls)
    for (const auto& v : type(*p.calls).variants)
      if (v.name == name) return {p.index, v.index, v.fields};
  fail("the chain's runtime has no call {}.{}", pallet_name, name);
}

std::string Metadata::error_name(uint8_t pallet_index, uint8_t error) const {
  for (const auto& p : pallets_) {
    if (p.index != pallet_index) continue;
    if (p.errors)
      for (const auto& v : type(*p.errors).variants)
        if (v.index == error) return p.name + "." + v.name;
    return fmt::format("{}.error{}", p.name, error);
  }
  return fmt::format("pallet{}.error{}", pallet_index, error);
}

bool Metadata::is_empty(uint32_t id) const {
  const TypeDef& t = type(id);
  switch (t.kind) {
    case TypeDef::Composite:
      for (const auto& f : t.fields)
        if (!is_empty(f.type)) return false;
      return true;
    case TypeDef::Tuple:
      for (auto e : t.tuple)
        if (!is_empty(e)) return false;
      return true;
    case TypeDef::Array:
      return t.length == 0 || is_empty(t.element);
    default:
      return false;
  }
}

nlohmann::json Metadata::decode_value(uint32_t id, scale::Reader& r, int depth) const {
  if (depth > 64) r.fail("value nested too deeply");
  const TypeDef& t = type(id);
  auto number = [](scale::u128 v) -> nlohmann::json {
    if (v < (scale::u128{1} << 53)) return static_cast<uint64_t>(v);
    std::string s;
    for (; v; v /= 10) s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    return s;
  };
  auto is_u8 = [&](uint32_t e) {
    const TypeDef& et = type(e);
    return et.kind == TypeDef::PrimitiveT && et.primitive == Primitive::U8;
  };
  switch (t.kind) {
    case TypeDef::Composite: {
      if (t.fields.size() == 1 && !t.fields[0].name)
        return decode_value(t.fields[0].type, r, depth + 1);
      nlohmann::json out =
          t.fields.empty() || t.fields[0].name ? nlohmann::json::object() : nlohmann::json::array();
      for (const auto& f : t.fields) {
        auto v = decode_value(f.type, r, depth + 1);
        if (f.name)
          out[*f.name] = std::move(v);
        else
          out.push_back(std::move(v));
      }
      return out;
    }
    case TypeDef::VariantT: {
      uint8_t index = r.u8();
      for (const auto& v : t.variants) {
        if (v.index != index) continue;
        nlohmann::json values = nlohmann::json::array();
        for (const auto& f : v.fields) values.push_back(decode_value(f.type, r, depth + 1));
        return {{"name", v.name}, {"values", values}};
      }
      r.fail(fmt::format("variant index {} is not defined for {}", index,
                         t.path.empty() ? "an enum" : t.path.back()));
    }
    case TypeDef::Sequence:
    case TypeDef::Array: {
      const size_t n = t.kind == TypeDef::Sequence ? r.length() : t.length;
      if (is_u8(t.element)) return scale::to_hex(r.raw(n));
      nlohmann::json out = nlohmann::json::array();
      for (size_t i = 0; i < n; ++i) {
        if (r.done()) r.fail("sequence runs past the end");
        out.push_back(decode_value(t.element, r, depth + 1));
      }
      return out;
    }
    case TypeDef::Tuple: {
      nlohmann::json out = nlohmann::json::array();
      for (auto e : t.tuple) out.push_back(decode_value(e, r, depth + 1));
      return out;
    }
    case TypeDef::Compact:
      return number(r.compact());
    case TypeDef::BitSequence: {
      size_t bits = r.length(0);
      return scale::to_hex(r.raw((bits + 7) / 8));
    }
    case TypeDef::PrimitiveT:
      switch (t.primitive) {
        case Primitive::Bool:
          return r.boolean();
        case Primitive::Char:
          return r.u32();
        case Primitive::Str:
          return r.bytes();
        case Primitive::U8:
          return r.u8();
        case Primitive::U16:
          return r.u16();
        case Primitive::U32:
          return r.u32();
        case Primitive::U64:
          return number(r.u64());
        case Primitive::U128:
          return number(r.u128());
        case Primitive::U256:
          return scale::to_hex(r.raw(32));
        case Primitive::I8:
          return static_cast<int8_t>(r.u8());
        case Primitive::I16:
          return static_cast<int16_t>(r.u16());
        case Primitive::I32:
          return static_cast<int32_t>(r.u32());
        case Primitive::I64:
          return static_cast<int64_t>(r.u64());
        case Primitive::I128:
          return scale::to_hex(r.raw(16));
        case Primitive::I256:
          return scale::to_hex(r.raw(32));
      }
  }
  r.fail("unknown type");
}

// ---- builder

}  // namespace bistro::substrate
