// MetadataBuilder (metadata.hpp): v14 and v15 blobs written from the format's definition.
#include <fmt/format.h>

#include "bistro/substrate/metadata.hpp"

namespace bistro::substrate {
namespace {

constexpr uint32_t kMagic = 0x6174656d;  // "meta" little-endian

void write_fields(scale::Writer& w, const std::vector<Field>& fs) {
  w.compact(fs.size());
  for (const auto& f : fs) {
    if (f.name) {
      w.u8(1).bytes(*f.name);
    } else {
      w.u8(0);
    }
    w.compact(f.type).u8(0).compact(0);
  }
}

}  // namespace

uint32_t MetadataBuilder::add(TypeDef t) {
  types_.push_back(std::move(t));
  return static_cast<uint32_t>(types_.size() - 1);
}
uint32_t MetadataBuilder::primitive(Primitive p) {
  TypeDef t;
  t.kind = TypeDef::PrimitiveT;
  t.primitive = p;
  return add(t);
}
uint32_t MetadataBuilder::sequence(uint32_t e) {
  TypeDef t;
  t.kind = TypeDef::Sequence;
  t.element = e;
  return add(t);
}
uint32_t MetadataBuilder::array(uint32_t e, uint32_t n) {
  TypeDef t;
  t.kind = TypeDef::Array;
  t.element = e;
  t.length = n;
  return add(t);
}
uint32_t MetadataBuilder::compact(uint32_t e) {
  TypeDef t;
  t.kind = TypeDef::Compact;
  t.element = e;
  return add(t);
}
uint32_t MetadataBuilder::composite(std::vector<std::string> path, std::vector<Field> f) {
  TypeDef t;
  t.path = std::move(path);
  t.fields = std::move(f);
  return add(t);
}
uint32_t MetadataBuilder::variant(std::vector<std::string> path, std::vector<Variant> v) {
  TypeDef t;
  t.kind = TypeDef::VariantT;
  t.path = std::move(path);
  t.variants = std::move(v);
  return add(t);
}
uint32_t MetadataBuilder::tuple(std::vector<uint32_t> e) {
  TypeDef t;
  t.kind = TypeDef::Tuple;
  t.tuple = std::move(e);
  return add(t);
}

std::string MetadataBuilder::build(uint8_t version) const {
  check(version == 14 || version == 15, "MetadataBuilder: version {} (14 or 15)", version);
  scale::Writer w;
  w.u32(kMagic).u8(version).compact(types_.size());
  for (size_t i = 0; i < types_.size(); ++i) {
    const TypeDef& t = types_[i];
    w.compact(i).compact(t.path.size());
    for (const auto& s : t.path) w.bytes(s);
    w.compact(0);  // no type parameters
    switch (t.kind) {
      case TypeDef::Composite:
        w.u8(0);
        write_fields(w, t.fields);
        break;
      case TypeDef::VariantT:
        w.u8(1).compact(t.variants.size());
        for (const auto& v : t.variants) {
          w.bytes(v.name);
          write_fields(w, v.fields);
          w.u8(v.index).compact(0);
        }
        break;
      case TypeDef::Sequence:
        w.u8(2).compact(t.element);
        break;
      case TypeDef::Array:
        w.u8(3).u32(t.length).compact(t.element);
        break;
      case TypeDef::Tuple:
        w.u8(4).compact(t.tuple.size());
        for (auto e : t.tuple) w.compact(e);
        break;
      case TypeDef::PrimitiveT:
        w.u8(5).u8(static_cast<uint8_t>(t.primitive));
        break;
      case TypeDef::Compact:
        w.u8(6).compact(t.element);
        break;
      case TypeDef::BitSequence:
        w.u8(7).compact(t.element).compact(t.element);
        break;
    }
    w.compact(0);  // docs
  }
  auto opt = [&](const std::optional<uint32_t>& id) {
    if (id)
      w.u8(1).compact(*id);
    else
      w.u8(0);
  };
  w.compact(pallets_.size());
  for (const auto& p : pallets_) {
    w.bytes(p.name);
    if (p.storage.empty()) {
      w.u8(0);
    } else {
      w.u8(1).bytes(p.storage_prefix.empty() ? p.name : p.storage_prefix).compact(p.storage.size());
      for (const auto& e : p.storage) {
        w.bytes(e.name).u8(1);
        if (e.plain) {
          w.u8(0).compact(e.value);
        } else {
          w.u8(1).compact(e.hashers.size());
          for (auto h : e.hashers) w.u8(static_cast<uint8_t>(h));
          w.compact(e.key).compact(e.value);
        }
        w.bytes(e.default_value).compact(0);
      }
    }
    opt(p.calls);
    opt(p.events);
    w.compact(0);  // constants
    opt(p.errors);
    w.u8(p.index);
    if (version == 15) w.compact(0);  // docs
  }
  if (version == 14)
    w.compact(0).u8(4);  // extrinsic type, version
  else
    w.u8(4).compact(0).compact(0).compact(0).compact(0);  // version, address/call/signature/extra
  w.compact(extensions_.size());
  for (const auto& e : extensions_) w.bytes(e.identifier).compact(e.type).compact(e.additional);
  w.compact(0);  // runtime type
  if (version == 15) {
    std::map<std::string, std::vector<const RuntimeApiMethod*>> by_api;
    for (const auto& m : apis_) by_api[m.api].push_back(&m);
    w.compact(by_api.size());
    for (const auto& [api, methods] : by_api) {
      w.bytes(api).compact(methods.size());
      for (const auto* m : methods) {
        w.bytes(m->name).compact(m->inputs.size());
        for (const auto& f : m->inputs) w.bytes(f.name.value_or("")).compact(f.type);
        w.compact(m->output).compact(0);
      }
      w.compact(0);  // docs
    }
    w.compact(0).compact(0).compact(0).compact(0);  // outer enums, no custom entries
  }
  return w.take();
}

}  // namespace bistro::substrate
