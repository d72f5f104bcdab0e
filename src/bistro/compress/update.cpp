#include "bistro/compress/update.hpp"

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "bistro/compress/chunks.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/model/safetensors.hpp"

namespace bistro {
namespace st = safetensors;

namespace {
const std::string kZeroSignature(128, '0');

[[noreturn]] void reject(Reject r, const std::string& msg) {
  throw UpdateError(r, msg);
}

std::span<const uint8_t> as_u8(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

uint64_t parse_u64(const std::map<std::string, std::string>& m, const char* key,
                   std::string_view origin) {
  auto it = m.find(key);
  if (it == m.end()) reject(Reject::Malformed, fmt::format("{}: metadata lacks {}", origin, key));
  const auto& s = it->second;
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos) {
    reject(Reject::Malformed,
           fmt::format("{}: metadata {} '{}' is not an integer", origin, key, s));
  }
  return std::stoull(s);
}

std::string get(const std::map<std::string, std::string>& m, const char* key,
                std::string_view origin) {
  auto it = m.find(key);
  if (it == m.end()) reject(Reject::Malformed, fmt::format("{}: metadata lacks {}", origin, key));
  return it->second;
}
}  // namespace

const char* reject_name(Reject r) {
  switch (r) {
    case Reject::TooLarge:
      return "too-large";
    case Reject::Malformed:
      return "malformed";
    case Reject::WrongCodec:
      return "wrong-codec";
    case Reject::WrongWindow:
      return "wrong-window";
    case Reject::WrongUid:
      return "wrong-uid";
    case Reject::WrongHotkey:
      return "wrong-hotkey";
    case Reject::WrongConfig:
      return "wrong-config";
    case Reject::BadSignature:
      return "bad-signature";
    case Reject::MissingTensor:
      return "missing-tensor";
    case Reject::ExtraTensor:
      return "extra-tensor";
    case Reject::BadShape:
      return "bad-shape";
    case Reject::IndexOutOfRange:
      return "index-out-of-range";
    case Reject::DuplicateIndex:
      return "duplicate-index";
    case Reject::NonFinite:
      return "non-finite";
    case Reject::ValueTooLarge:
      return "value-too-large";
  }
  return "unknown";
}

std::string config_hash(const LlamaConfig& config) {
  return to_hex(sha256(as_u8(config.to_json())));
}

TensorLayout tensor_layout(const std::string& codec, int64_t k, int64_t chunk_cap,
                           const std::vector<int64_t>& shape) {
  if (codec == "dct-topk") {
    const auto plan = chunk_plan(shape, chunk_cap);
    return {plan.chunks(), clamp_k(k, plan), plan.size()};
  }
  check(codec == "slice", "unknown update codec '{}'", codec);
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  return {1, static_cast<int64_t>(slice_count(numel, k)), 0};
}

uint64_t max_update_bytes(const UpdateExpectation& e) {
  uint64_t bytes = 64 << 10;  // header and metadata
  for (const auto& p : e.params) {
    const auto l = tensor_layout(e.codec, e.k, e.chunk_cap, p.shape);
    bytes += 512 + static_cast<uint64_t>(l.rows * l.k) * (e.codec == "dct-topk" ? 8 : 4);
  }
  return bytes;
}

std::string encode_update(Update u, const Signer& signer) {
  u.scheme = signer.scheme();
  u.hotkey = to_hex(signer.public_key());
  std::vector<st::TensorRef> refs;
  for (const auto& t : u.tensors) {
    check(t.val.size() == static_cast<size_t>(t.rows * t.k),
          "update tensor {}: {} values for {}x{}", t.name, t.val.size(), t.rows, t.k);
    if (u.codec == "dct-topk") {
      check(t.idx.size() == t.val.size(), "update tensor {}: index and value counts differ",
            t.name);
      refs.push_back({t.name + ".idx", st::DType::I32, {t.rows, t.k}, t.idx.data()});
      refs.push_back({t.name + ".val", st::DType::F32, {t.rows, t.k}, t.val.data()});
    } else {
      refs.push_back({t.name + ".val", st::DType::F32, {t.k}, t.val.data()});
    }
  }
  std::map<std::string, std::string> meta = {
      {"bistro_update", "1"},
      {"codec", u.codec},
      {"k", std::to_string(u.k)},
      {"chunk_cap", std::to_string(u.chunk_cap)},
      {"window", std::to_string(u.window)},
      {"uid", std::to_string(u.uid)},
      {"hotkey", u.hotkey},
      {"scheme", u.scheme},
      {"config_hash", u.config_hash},
      {"signature", kZeroSignature},
  };
  std::string bytes = st::serialize(refs, meta);
  const auto sig = to_hex(signer.sign(as_u8(bytes)));
  const auto at = bytes.find("\"signature\":\"" + kZeroSignature + "\"");
  check(at != std::string::npos, "encode_update: signature placeholder not found");
  bytes.replace(at + 13, 128, sig);
  return bytes;
}

Update decode_update(std::string_view bytes, const UpdateExpectation& e, std::string_view origin) {
  const auto O = std::string(origin);
  const uint64_t limit = max_update_bytes(e);
  if (bytes.size() > limit) {
    reject(Reject::TooLarge,
           fmt::format("{}: {} bytes, over the limit of {}", O, bytes.size(), limit));
  }
  st::View view;
  try {
    view = st::View::parse({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, O);
  } catch (const UpdateError&) {
    throw;
  } catch (const Error& ex) {
    reject(Reject::Malformed, ex.what());
  }
  const auto& m = view.metadata();
  Update u;
  if (get(m, "bistro_update", O) != "1") reject(Reject::Malformed, O + ": unknown format version");
  u.codec = get(m, "codec", O);
  u.k = static_cast<int64_t>(parse_u64(m, "k", O));
  u.chunk_cap = static_cast<int64_t>(parse_u64(m, "chunk_cap", O));
  u.window = parse_u64(m, "window", O);
  u.uid = parse_u64(m, "uid", O);
  u.hotkey = get(m, "hotkey", O);
  u.scheme = get(m, "scheme", O);
  u.config_hash = get(m, "config_hash", O);
  const std::string sig_hex = get(m, "signature", O);

  if (u.codec != e.codec || u.k != e.k || u.chunk_cap != e.chunk_cap) {
    reject(Reject::WrongCodec,
           fmt::format("{}: codec {} k {} chunk {}, expected {} k {} chunk {}", O, u.codec, u.k,
                       u.chunk_cap, e.codec, e.k, e.chunk_cap));
  }
  if (u.window != e.window) {
    reject(Reject::WrongWindow, fmt::format("{}: window {}, expected {}", O, u.window, e.window));
  }
  if (u.uid != e.uid)
    reject(Reject::WrongUid, fmt::format("{}: uid {}, expected {}", O, u.uid, e.uid));
  if (u.hotkey != e.hotkey) {
    reject(Reject::WrongHotkey,
           fmt::format("{}: signed by {}, expected {}", O, u.hotkey, e.hotkey));
  }
  if (u.config_hash != e.config_hash) {
    reject(Reject::WrongConfig,
           fmt::format("{}: made for model config {}, this model is {}", O,
                       u.config_hash.substr(0, 16), e.config_hash.substr(0, 16)));
  }

  // The signature covers the file with its own hex digits zeroed.
  {
    std::string blanked(bytes);
    const std::string field = "\"signature\":\"" + sig_hex + "\"";
    const auto at = blanked.find(field);
    if (sig_hex.size() != 128 || at == std::string::npos ||
        blanked.find(field, at + 1) != std::string::npos) {
      reject(Reject::BadSignature, O + ": signature field is malformed");
    }
    blanked.replace(at + 13, 128, kZeroSignature);
    bool ok = false;
    try {
      ok = verify_signature(u.scheme, from_hex<32>(u.hotkey, "hotkey"), as_u8(blanked),
                            from_hex<64>(sig_hex, "signature"));
    } catch (const Error&) {
      ok = false;
    }
    if (!ok)
      reject(Reject::BadSignature,
             fmt::format("{}: signature does not verify for {} key {}", O, u.scheme, u.hotkey));
  }

  const bool dct = u.codec == "dct-topk";
  std::set<std::string> expected_names;
  for (const auto& p : e.params) {
    const auto layout = tensor_layout(e.codec, e.k, e.chunk_cap, p.shape);
    UpdateTensor t;
    t.name = p.name;
    t.rows = layout.rows;
    t.k = layout.k;
    const std::vector<int64_t> shape =
        dct ? std::vector<int64_t>{layout.rows, layout.k} : std::vector<int64_t>{layout.k};
    auto fetch = [&](const std::string& suffix, st::DType dtype) -> std::span<const std::byte> {
      const std::string name = p.name + suffix;
      expected_names.insert(name);
      const auto* info = view.find(name);
      if (!info) reject(Reject::MissingTensor, fmt::format("{}: tensor {} is missing", O, name));
      if (info->dtype != dtype || info->shape != shape) {
        reject(Reject::BadShape,
               fmt::format("{}: tensor {} is {} [{}], expected {} [{}]", O, name,
                           st::dtype_name(info->dtype), fmt::join(info->shape, ", "),
                           st::dtype_name(dtype), fmt::join(shape, ", ")));
      }
      return view.data(*info);
    };
    const auto vals = fetch(".val", st::DType::F32);
    t.val.resize(vals.size() / 4);
    std::memcpy(t.val.data(), vals.data(), vals.size());
    for (size_t i = 0; i < t.val.size(); ++i) {
      if (!std::isfinite(t.val[i])) {
        reject(Reject::NonFinite, fmt::format("{}: {}.val[{}] is not finite", O, p.name, i));
      }
      if (std::fabs(t.val[i]) > e.max_abs_value) {
        reject(Reject::ValueTooLarge, fmt::format("{}: |{}.val[{}]| = {} exceeds {}", O, p.name, i,
                                                  std::fabs(t.val[i]), e.max_abs_value));
      }
    }
    if (dct) {
      const auto idx = fetch(".idx", st::DType::I32);
      t.idx.resize(idx.size() / 4);
      std::memcpy(t.idx.data(), idx.data(), idx.size());
      std::vector<int32_t> seen(static_cast<size_t>(layout.chunk_size), -1);
      for (int64_t r = 0; r < t.rows; ++r) {
        for (int64_t s = 0; s < t.k; ++s) {
          const int32_t i = t.idx[r * t.k + s];
          if (i < 0 || i >= layout.chunk_size) {
            reject(Reject::IndexOutOfRange, fmt::format("{}: {}.idx[{}][{}] = {} outside [0, {})",
                                                        O, p.name, r, s, i, layout.chunk_size));
          }
          if (seen[i] == r) {
            reject(Reject::DuplicateIndex,
                   fmt::format("{}: {}.idx[{}] repeats index {}", O, p.name, r, i));
          }
          seen[i] = static_cast<int32_t>(r);
        }
      }
    }
    u.tensors.push_back(std::move(t));
  }
  for (const auto& info : view.tensors()) {
    if (!expected_names.count(info.name)) {
      reject(Reject::ExtraTensor, fmt::format("{}: unexpected tensor {}", O, info.name));
    }
  }
  return u;
}

}  // namespace bistro
