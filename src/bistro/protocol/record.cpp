#include "bistro/protocol/record.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bistro/identity/signer.hpp"
#include "bistro/protocol/signed_json.hpp"

namespace bistro {
namespace {

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

[[noreturn]] void bad(uint64_t window, const std::string& why) {
  throw RecordError(fmt::format("record for window {}: {}", window, why));
}

}  // namespace

std::string encode_record(WindowRecord r, const Signer& signer) {
  r.validator = to_hex(signer.public_key());
  r.scheme = signer.scheme();
  nlohmann::json accepted = nlohmann::json::array();
  for (const auto& e : r.accepted)
    accepted.push_back({{"uid", e.uid}, {"hotkey", e.hotkey}, {"sha256", e.sha256}});
  const nlohmann::json j = {{"bistro_record", "1"},         {"window", r.window},
                            {"config_hash", r.config_hash}, {"hparams_hash", r.hparams_hash},
                            {"base_hash", r.base_hash},     {"params_hash", r.params_hash},
                            {"accepted", accepted},         {"validator", r.validator},
                            {"scheme", r.scheme},           {"signature", zero_signature()}};
  return sign_json(j, signer);
}

WindowRecord parse_record(std::string_view bytes, const RecordExpectation& e) {
  const uint64_t w = e.window;
  if (bytes.size() > kMaxRecordBytes)
    bad(w, fmt::format("{} bytes, over the limit of {}", bytes.size(), kMaxRecordBytes));
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_object()) bad(w, "not a JSON object");
  auto str = [&](const char* key) -> std::string {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string())
      bad(w, fmt::format("field {} missing or not a string", key));
    return it->get<std::string>();
  };
  if (str("bistro_record") != "1") bad(w, "unknown record version");
  WindowRecord r;
  auto wi = j.find("window");
  if (wi == j.end() || !wi->is_number_unsigned()) bad(w, "field window missing or not unsigned");
  r.window = wi->get<uint64_t>();
  r.config_hash = str("config_hash");
  r.hparams_hash = str("hparams_hash");
  r.base_hash = str("base_hash");
  r.params_hash = str("params_hash");
  r.validator = str("validator");
  r.scheme = str("scheme");
  const std::string sig = str("signature");
  if (r.window != e.window) bad(w, fmt::format("it says window {}", r.window));
  if (r.config_hash != e.config_hash)
    bad(w, fmt::format("made for model config {}, this model is {}", r.config_hash.substr(0, 16),
                       e.config_hash.substr(0, 16)));
  if (r.hparams_hash != e.hparams_hash)
    bad(w, fmt::format("made under hparams {}, this node runs {}", r.hparams_hash.substr(0, 16),
                       e.hparams_hash.substr(0, 16)));
  if (!is_hex(r.base_hash, 32) || !is_hex(r.params_hash, 32))
    bad(w, "base_hash and params_hash must be 32 hex digits");
  if (r.validator != e.validator)
    bad(w, fmt::format("signed by {}, expected the validator {}", r.validator, e.validator));
  // The signature covers the bytes as published with its own digits zeroed.
  if (!verify_signed_json(bytes, r.scheme, r.validator, sig))
    bad(w, fmt::format("signature does not verify for {} key {}", r.scheme, r.validator));
  auto acc = j.find("accepted");
  if (acc == j.end() || !acc->is_array()) bad(w, "field accepted missing or not an array");
  for (const auto& a : *acc) {
    if (!a.is_object() || !a.contains("uid") || !a["uid"].is_number_unsigned() ||
        a["uid"].get<uint64_t>() > 65535 || !a.contains("hotkey") || !a["hotkey"].is_string() ||
        !a.contains("sha256") || !a["sha256"].is_string())
      bad(w, "an accepted entry lacks uid (u16), hotkey or sha256");
    RecordEntry entry{static_cast<uint16_t>(a["uid"].get<uint64_t>()),
                      a["hotkey"].get<std::string>(), a["sha256"].get<std::string>()};
    if (!is_hex(entry.sha256, 64))
      bad(w, fmt::format("uid {}: sha256 is not 64 hex digits", entry.uid));
    if (!r.accepted.empty() && entry.uid <= r.accepted.back().uid)
      bad(w, "accepted uids are not strictly ascending");
    r.accepted.push_back(std::move(entry));
  }
  return r;
}

}  // namespace bistro
