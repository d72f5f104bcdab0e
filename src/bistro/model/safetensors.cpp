#include "bistro/model/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"

namespace bistro::safetensors {
using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {
struct DTypeEntry {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

uint64_t checked_numel(const std::vector<int64_t>& shape, std::string_view what) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    check(d >= 0, "{}: negative dimension {}", what, d);
    if (d != 0 && n > (~0ull) / static_cast<uint64_t>(d)) fail("{}: shape overflows", what);
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

std::string header_json(const std::vector<TensorRef>& tensors,
                        const std::map<std::string, std::string>& metadata, uint64_t* data_size) {
  // nlohmann's ordered_json keeps insertion order, so the data offsets read in file order.
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    check(seen.insert(t.name).second, "safetensors: duplicate tensor name {}", t.name);
    check(t.name != "__metadata__", "safetensors: reserved tensor name __metadata__");
    const uint64_t bytes = checked_numel(t.shape, t.name) * dtype_size(t.dtype);
    h[t.name] = {{"dtype", dtype_name(t.dtype)},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  *data_size = offset;
  std::string s = h.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  while ((s.size() + 8) % 8 != 0) s.push_back(' ');
  return s;
}

std::string length_prefix(uint64_t n) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out;
}
}  // namespace

std::size_t dtype_size(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

std::string_view dtype_name(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& e : kDTypes)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

View View::parse(std::span<const std::byte> bytes, std::string_view origin, const Limits& limits) {
  View v;
  v.origin_ = std::string(origin);
  const auto O = v.origin_;
  check(bytes.size() <= limits.max_file_bytes, "{}: file is {} bytes, over the limit of {}", O,
        bytes.size(), limits.max_file_bytes);
  check(bytes.size() >= 8, "{}: truncated: {} bytes, too short for the 8-byte header length", O,
        bytes.size());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  check(n <= limits.max_header_bytes, "{}: header length {} exceeds the limit of {} bytes", O, n,
        limits.max_header_bytes);
  check(n <= bytes.size() - 8, "{}: header length {} runs past the end of the {}-byte file", O, n,
        bytes.size());
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), n);
  v.data_section_ = bytes.subspan(8 + n);

  // Duplicate top-level keys are an attack on readers that keep the first or the last one:
  // reject them instead of choosing.
  std::set<std::string> keys;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      auto k = parsed.get<std::string>();
      if (!keys.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json h;
  try {
    h = json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON: {}", O, e.what());
  }
  check(duplicate.empty(), "{}: duplicate entry '{}' in the header", O, duplicate);
  check(h.is_object(), "{}: header must be a JSON object", O);

  for (auto& [name, entry] : h.items()) {
    if (name == "__metadata__") {
      check(entry.is_object(), "{}: __metadata__ must be an object of strings", O);
      for (auto& [k, val] : entry.items()) {
        check(val.is_string(), "{}: metadata value for '{}' is not a string", O, k);
        v.metadata_[k] = val.get<std::string>();
      }
      continue;
    }
    check(entry.is_object(), "{}: tensor '{}' entry is not an object", O, name);
    check(entry.contains("dtype") && entry["dtype"].is_string(), "{}: tensor '{}' has no dtype", O,
          name);
    const auto dtype_text = entry["dtype"].get<std::string>();
    auto dtype = parse_dtype(dtype_text);
    check(dtype.has_value(), "{}: tensor '{}' has unknown dtype '{}'", O, name, dtype_text);
    check(entry.contains("shape") && entry["shape"].is_array(), "{}: tensor '{}' has no shape", O,
          name);
    TensorInfo t;
    t.name = name;
    t.dtype = *dtype;
    for (auto& d : entry["shape"]) {
      check(d.is_number_integer() && d.get<int64_t>() >= 0,
            "{}: tensor '{}' has an invalid dimension {}", O, name, d.dump());
      t.shape.push_back(d.get<int64_t>());
    }
    const auto& off = entry.contains("data_offsets") ? entry["data_offsets"] : json();
    check(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
              off[1].is_number_unsigned(),
          "{}: tensor '{}' needs data_offsets [begin, end] of non-negative integers", O, name);
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    check(t.begin <= t.end, "{}: tensor '{}' has data_offsets [{}, {}] with begin after end", O,
          name, t.begin, t.end);
    check(t.end <= v.data_section_.size(),
          "{}: tensor '{}' data_offsets [{}, {}] are out of range (data section is {} bytes)", O,
          name, t.begin, t.end, v.data_section_.size());
    const uint64_t numel = checked_numel(t.shape, fmt::format("{}: tensor '{}'", O, name));
    const uint64_t size = dtype_size(t.dtype);
    check(numel <= (~0ull) / size && numel * size == t.end - t.begin,
          "{}: tensor '{}' shape and dtype need {} bytes but its data_offsets span {}", O, name,
          numel * size, t.end - t.begin);
    v.tensors_.push_back(std::move(t));
  }

  std::sort(v.tensors_.begin(), v.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const auto& t : v.tensors_) {
    check(t.begin >= cursor, "{}: tensor '{}' overlaps the previous tensor's bytes", O, t.name);
    check(t.begin == cursor, "{}: {} bytes before tensor '{}' belong to no tensor", O,
          t.begin - cursor, t.name);
    cursor = t.end;
  }
  check(cursor == v.data_section_.size(), "{}: {} trailing bytes belong to no tensor", O,
        v.data_section_.size() - cursor);
  return v;
}

const TensorInfo* View::find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::span<const std::byte> View::data(const TensorInfo& t) const {
  return data_section_.subspan(t.begin, t.end - t.begin);
}

File::File(const std::filesystem::path& path, const Limits& limits)
    : map_(std::make_unique<MappedFile>(path)),
      view_(View::parse(map_->bytes(), path.string(), limits)) {}

File::~File() = default;

void File::release(const TensorInfo& t) const {
  map_->release(view_.data(t));
}

std::string serialize(const std::vector<TensorRef>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  uint64_t data_size = 0;
  const std::string header = header_json(tensors, metadata, &data_size);
  std::string out = length_prefix(header.size()) + header;
  out.reserve(out.size() + data_size);
  for (const auto& t : tensors) {
    const uint64_t bytes = checked_numel(t.shape, t.name) * dtype_size(t.dtype);
    out.append(static_cast<const char*>(t.data), bytes);
  }
  return out;
}

void write(const std::filesystem::path& path, const std::vector<TensorRef>& tensors,
           const std::map<std::string, std::string>& metadata) {
  uint64_t data_size = 0;
  const std::string header = header_json(tensors, metadata, &data_size);
  AtomicFile f(path);
  f.write(length_prefix(header.size()));
  f.write(header);
  for (const auto& t : tensors) {
    f.write(t.data, checked_numel(t.shape, t.name) * dtype_size(t.dtype));
  }
  f.commit();
}

}  // namespace bistro::safetensors
