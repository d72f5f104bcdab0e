#include "bistro/compress/update.hpp"

#include <algorithm>
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
// 12-bit index packing: (a, b) -> a[0:8], a[8:12] | b[0:4] << 4, b[4:12]; an odd last index
// takes two bytes.
std::vector<uint8_t> pack12(const std::vector<int32_t>& idx) {
  std::vector<uint8_t> out((idx.size() * 3 + 1) / 2);
  for (size_t i = 0, o = 0; i < idx.size(); i += 2, o += 3) {
    const uint32_t a = static_cast<uint32_t>(idx[i]);
    const uint32_t b = i + 1 < idx.size() ? static_cast<uint32_t>(idx[i + 1]) : 0;
    out[o] = static_cast<uint8_t>(a & 0xff);
    out[o + 1] = static_cast<uint8_t>((a >> 8) | ((b & 0xf) << 4));
    if (i + 1 < idx.size()) out[o + 2] = static_cast<uint8_t>(b >> 4);
  }
  return out;
}

std::vector<int32_t> unpack12(std::span<const std::byte> bytes, size_t n) {
  std::vector<int32_t> out(n);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0, o = 0; i < n; i += 2, o += 3) {
    out[i] = p[o] | ((p[o + 1] & 0xf) << 8);
    if (i + 1 < n) out[i + 1] = (p[o + 1] >> 4) | (p[o + 2] << 4);
  }
  return out;
}

// sparseloco: each value is one of the four levels; its code is that level's position.
std::vector<uint8_t> pack_codes(const std::vector<float>& v, const std::vector<float>& levels,
                                const std::string& name) {
  std::vector<uint8_t> out((v.size() + 3) / 4, 0);
  for (size_t i = 0; i < v.size(); ++i) {
    const auto it = std::find(levels.begin(), levels.end(), v[i]);
    check(it != levels.end(), "update tensor {}: value {} is not one of its levels", name, v[i]);
    out[i / 4] |= static_cast<uint8_t>((it - levels.begin()) << (2 * (i % 4)));
  }
  return out;
}

float rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return v.empty() ? 0.0f : static_cast<float>(std::sqrt(s / static_cast<double>(v.size())));
}

// Codes for 8-bit (q in [-127, 127], value q * scale) and 2-bit (c in 0..3, value
// (c - 1.5) * scale) quantisation over +-6 RMS.
std::vector<uint8_t> quantize(const std::vector<float>& v, int bits, float* scale) {
  const float range = 6.0f * rms(v);
  std::vector<uint8_t> out;
  if (bits == 8) {
    *scale = range / 127.0f;
    out.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const float q = *scale > 0 ? std::nearbyint(std::clamp(v[i] / *scale, -127.0f, 127.0f)) : 0;
      out[i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  } else {
    *scale = range / 2.0f;  // four bins of width 2 range / 4
    out.assign((v.size() + 3) / 4, 0);
    for (size_t i = 0; i < v.size(); ++i) {
      const float c = *scale > 0 ? std::floor((v[i] + range) / *scale) : 1;
      const auto code = static_cast<uint8_t>(std::clamp(c, 0.0f, 3.0f));
      out[i / 4] |= static_cast<uint8_t>(code << (2 * (i % 4)));
    }
  }
  return out;
}

std::vector<float> dequantize(std::span<const std::byte> bytes, size_t n, int bits, float scale) {
  std::vector<float> out(n);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0; i < n; ++i) {
    if (bits == 8) {
      out[i] = static_cast<float>(static_cast<int8_t>(p[i])) * scale;
    } else {
      const int code = (p[i / 4] >> (2 * (i % 4))) & 3;
      out[i] = (static_cast<float>(code) - 1.5f) * scale;
    }
  }
  return out;
}
}  // namespace

std::vector<float> quantize_roundtrip(const std::vector<float>& values, int bits, float* scale) {
  if (bits == 32) {
    *scale = 0;
    return values;
  }
  const auto codes = quantize(values, bits, scale);
  return dequantize({reinterpret_cast<const std::byte*>(codes.data()), codes.size()}, values.size(),
                    bits, *scale);
}

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

bool is_chunked_codec(const std::string& codec) {
  return codec == "dct-topk" || codec == "sparseloco";
}

TensorLayout tensor_layout(const std::string& codec, int64_t k, int64_t chunk_cap,
                           const std::vector<int64_t>& shape) {
  if (is_chunked_codec(codec)) {
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
    const uint64_t n = static_cast<uint64_t>(l.rows * l.k);
    if (is_chunked_codec(e.codec)) {
      const uint64_t idx = e.index_bits == 12 ? (n * 3 + 1) / 2 : n * 4;
      const uint64_t val = e.value_bits == 32 ? n * 4 : e.value_bits == 8 ? n : (n + 3) / 4;
      bytes += 768 + idx + val;
    } else {
      bytes += 512 + n * 4;
    }
  }
  return bytes;
}

std::string encode_update(Update u, const Signer& signer) {
  u.scheme = signer.scheme();
  u.hotkey = to_hex(signer.public_key());
  const bool loco = u.codec == "sparseloco";
  check(u.value_bits == 32 || (u.codec == "dct-topk" && (u.value_bits == 8 || u.value_bits == 2)) ||
            (loco && u.value_bits == 2),
        "update: value_bits {} is not supported for {}", u.value_bits, u.codec);
  check(u.index_bits == 32 || (is_chunked_codec(u.codec) && u.index_bits == 12),
        "update: index_bits {} is not supported for {}", u.index_bits, u.codec);
  std::vector<st::TensorRef> refs;
  std::vector<std::vector<uint8_t>> packed;  // keeps packed buffers alive until serialised
  packed.reserve(2 * u.tensors.size());
  std::vector<float> scales(u.tensors.size());
  for (size_t ti = 0; ti < u.tensors.size(); ++ti) {
    const auto& t = u.tensors[ti];
    check(t.val.size() == static_cast<size_t>(t.rows * t.k),
          "update tensor {}: {} values for {}x{}", t.name, t.val.size(), t.rows, t.k);
    if (!is_chunked_codec(u.codec)) {
      refs.push_back({t.name + ".val", st::DType::F32, {t.k}, t.val.data()});
      continue;
    }
    check(t.idx.size() == t.val.size(), "update tensor {}: index and value counts differ", t.name);
    if (u.index_bits == 12) {
      packed.push_back(pack12(t.idx));
      refs.push_back({t.name + ".idx",
                      st::DType::U8,
                      {static_cast<int64_t>(packed.back().size())},
                      packed.back().data()});
    } else {
      refs.push_back({t.name + ".idx", st::DType::I32, {t.rows, t.k}, t.idx.data()});
    }
    if (u.value_bits == 32) {
      refs.push_back({t.name + ".val", st::DType::F32, {t.rows, t.k}, t.val.data()});
    } else if (loco) {
      check(t.levels.size() == 4, "update tensor {}: 2-bit sparseloco needs 4 levels", t.name);
      packed.push_back(pack_codes(t.val, t.levels, t.name));
      refs.push_back({t.name + ".val",
                      st::DType::U8,
                      {static_cast<int64_t>(packed.back().size())},
                      packed.back().data()});
      refs.push_back({t.name + ".levels", st::DType::F32, {4}, t.levels.data()});
    } else {
      packed.push_back(quantize(t.val, u.value_bits, &scales[ti]));
      const auto shape = u.value_bits == 8
                             ? std::vector<int64_t>{t.rows, t.k}
                             : std::vector<int64_t>{static_cast<int64_t>(packed.back().size())};
      refs.push_back({t.name + ".val", u.value_bits == 8 ? st::DType::I8 : st::DType::U8, shape,
                      packed.back().data()});
      refs.push_back({t.name + ".scale", st::DType::F32, {1}, &scales[ti]});
    }
  }
  std::map<std::string, std::string> meta = {
      {"bistro_update", "1"},
      {"codec", u.codec},
      {"k", std::to_string(u.k)},
      {"chunk_cap", std::to_string(u.chunk_cap)},
      {"value_bits", std::to_string(u.value_bits)},
      {"index_bits", std::to_string(u.index_bits)},
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
  u.value_bits = static_cast<int>(std::min<uint64_t>(parse_u64(m, "value_bits", O), 64));
  u.index_bits = static_cast<int>(std::min<uint64_t>(parse_u64(m, "index_bits", O), 64));
  u.window = parse_u64(m, "window", O);
  u.uid = parse_u64(m, "uid", O);
  u.hotkey = get(m, "hotkey", O);
  u.scheme = get(m, "scheme", O);
  u.config_hash = get(m, "config_hash", O);
  const std::string sig_hex = get(m, "signature", O);

  if (u.codec != e.codec || u.k != e.k || u.chunk_cap != e.chunk_cap ||
      u.value_bits != e.value_bits || u.index_bits != e.index_bits) {
    reject(
        Reject::WrongCodec,
        fmt::format("{}: codec {} k {} chunk {} bits {}/{}, expected {} k {} chunk {} bits {}/{}",
                    O, u.codec, u.k, u.chunk_cap, u.value_bits, u.index_bits, e.codec, e.k,
                    e.chunk_cap, e.value_bits, e.index_bits));
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

  const bool dct = is_chunked_codec(u.codec);
  const bool loco = u.codec == "sparseloco";
  std::set<std::string> expected_names;
  for (const auto& p : e.params) {
    const auto layout = tensor_layout(e.codec, e.k, e.chunk_cap, p.shape);
    UpdateTensor t;
    t.name = p.name;
    t.rows = layout.rows;
    t.k = layout.k;
    const std::vector<int64_t> shape =
        dct ? std::vector<int64_t>{layout.rows, layout.k} : std::vector<int64_t>{layout.k};
    auto fetch = [&](const std::string& suffix, st::DType dtype,
                     const std::vector<int64_t>& want) -> std::span<const std::byte> {
      const std::string name = p.name + suffix;
      expected_names.insert(name);
      const auto* info = view.find(name);
      if (!info) reject(Reject::MissingTensor, fmt::format("{}: tensor {} is missing", O, name));
      if (info->dtype != dtype || info->shape != want) {
        reject(Reject::BadShape,
               fmt::format("{}: tensor {} is {} [{}], expected {} [{}]", O, name,
                           st::dtype_name(info->dtype), fmt::join(info->shape, ", "),
                           st::dtype_name(dtype), fmt::join(want, ", ")));
      }
      return view.data(*info);
    };
    const size_t n = static_cast<size_t>(layout.rows * layout.k);
    if (u.value_bits == 32) {
      const auto vals = fetch(".val", st::DType::F32, shape);
      t.val.resize(n);
      std::memcpy(t.val.data(), vals.data(), vals.size());
    } else if (loco) {
      const auto lv = fetch(".levels", st::DType::F32, {4});
      t.levels.resize(4);
      std::memcpy(t.levels.data(), lv.data(), 16);
      for (float l : t.levels)  // the values checks below see only the levels that are used
        if (!std::isfinite(l))
          reject(Reject::NonFinite, fmt::format("{}: {}.levels holds {}", O, p.name, l));
      const auto codes = fetch(".val", st::DType::U8, {static_cast<int64_t>((n + 3) / 4)});
      const auto* c = reinterpret_cast<const uint8_t*>(codes.data());
      t.val.resize(n);
      for (size_t i = 0; i < n; ++i) t.val[i] = t.levels[(c[i / 4] >> (2 * (i % 4))) & 3];
    } else {
      const auto sc = fetch(".scale", st::DType::F32, {1});
      float scale;
      std::memcpy(&scale, sc.data(), 4);
      if (!std::isfinite(scale) || scale < 0) {
        reject(Reject::NonFinite, fmt::format("{}: {}.scale is {}", O, p.name, scale));
      }
      const auto codes = u.value_bits == 8
                             ? fetch(".val", st::DType::I8, shape)
                             : fetch(".val", st::DType::U8, {static_cast<int64_t>((n + 3) / 4)});
      t.val = dequantize(codes, n, u.value_bits, scale);
    }
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
      if (u.index_bits == 12) {
        t.idx = unpack12(fetch(".idx", st::DType::U8, {static_cast<int64_t>((n * 3 + 1) / 2)}), n);
      } else {
        const auto idx = fetch(".idx", st::DType::I32, shape);
        t.idx.resize(n);
        std::memcpy(t.idx.data(), idx.data(), idx.size());
      }
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
