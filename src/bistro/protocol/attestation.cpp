#include "bistro/protocol/attestation.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bistro/identity/signer.hpp"
#include "bistro/protocol/signed_json.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro {
namespace {

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

[[noreturn]] void bad(uint64_t window, const std::string& validator, const std::string& why) {
  throw AttestationError(fmt::format("attestation of window {} from validator {}: {}", window,
                                     validator.substr(0, 16), why));
}

}  // namespace

std::string attestation_key(uint64_t window) {
  return fmt::format("attestations/{:010}.json", window);
}

std::string encode_attestation(Attestation a, const Signer& signer) {
  a.validator = to_hex(signer.public_key());
  a.scheme = signer.scheme();
  nlohmann::json objections = nlohmann::json::array();
  for (const auto& o : a.objections)
    objections.push_back(
        {{"uid", o.uid}, {"sha256", o.sha256}, {"z", o.z}, {"n", o.n}, {"reason", o.reason}});
  const nlohmann::json j = {{"bistro_attestation", "1"},
                            {"window", a.window},
                            {"record_sha256", a.record_sha256},
                            {"publisher", a.publisher},
                            {"verdict", a.objects ? "object" : "attest"},
                            {"objections", objections},
                            {"harm_alpha", a.harm_alpha},
                            {"validator", a.validator},
                            {"scheme", a.scheme},
                            {"signature", zero_signature()}};
  return sign_json(j, signer);
}

Attestation parse_attestation(std::string_view bytes, uint64_t window,
                              const std::string& validator) {
  const auto& v = validator;
  if (bytes.size() > kMaxAttestationBytes)
    bad(window, v,
        fmt::format("{} bytes, over the limit of {}", bytes.size(), kMaxAttestationBytes));
  const auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_object()) bad(window, v, "not a JSON object");
  auto str = [&](const char* key) -> std::string {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string())
      bad(window, v, fmt::format("field {} missing or not a string", key));
    return it->get<std::string>();
  };
  if (str("bistro_attestation") != "1") bad(window, v, "unknown attestation version");
  Attestation a;
  const auto wi = j.find("window");
  if (wi == j.end() || !wi->is_number_unsigned())
    bad(window, v, "field window missing or not unsigned");
  a.window = wi->get<uint64_t>();
  if (a.window != window) bad(window, v, fmt::format("it says window {}", a.window));
  a.record_sha256 = str("record_sha256");
  a.publisher = str("publisher");
  a.validator = str("validator");
  a.scheme = str("scheme");
  const std::string verdict = str("verdict"), sig = str("signature");
  if (!is_hex(a.record_sha256, 64)) bad(window, v, "record_sha256 is not 64 hex digits");
  if (!is_hex(a.publisher, 64)) bad(window, v, "publisher is not a 64-hex-digit key");
  if (a.validator != validator)
    bad(window, v,
        fmt::format("signed as {}, but found in validator {}'s bucket", a.validator.substr(0, 16),
                    validator.substr(0, 16)));
  if (!verify_signed_json(bytes, a.scheme, a.validator, sig))
    bad(window, v, fmt::format("signature does not verify for {} key {}", a.scheme, a.validator));
  if (verdict != "attest" && verdict != "object")
    bad(window, v, fmt::format("verdict '{}' (attest or object)", verdict));
  a.objects = verdict == "object";
  const auto ha = j.find("harm_alpha");
  if (ha == j.end() || !ha->is_number() || !(ha->get<double>() >= 0 && ha->get<double>() < 1))
    bad(window, v, "field harm_alpha missing or outside [0, 1)");
  a.harm_alpha = ha->get<double>();
  const auto obj = j.find("objections");
  if (obj == j.end() || !obj->is_array())
    bad(window, v, "field objections missing or not an array");
  for (const auto& o : *obj) {
    if (!o.is_object() || !o.contains("uid") || !o["uid"].is_number_unsigned() ||
        o["uid"].get<uint64_t>() > 65535 || !o.contains("sha256") || !o["sha256"].is_string() ||
        !o.contains("z") || !o["z"].is_number() || !o.contains("n") ||
        !o["n"].is_number_unsigned() || !o.contains("reason") || !o["reason"].is_string())
      bad(window, v, "an objection lacks uid (u16), sha256, z, n or reason");
    Objection x{static_cast<uint16_t>(o["uid"].get<uint64_t>()), o["sha256"].get<std::string>(),
                o["z"].get<double>(), o["n"].get<uint64_t>(), o["reason"].get<std::string>()};
    if (!is_hex(x.sha256, 64)) bad(window, v, fmt::format("uid {}: sha256 is not 64 hex", x.uid));
    if (!a.objections.empty() && x.uid <= a.objections.back().uid)
      bad(window, v, "objections are not in strictly ascending uid order");
    a.objections.push_back(std::move(x));
  }
  if (a.objects != !a.objections.empty())
    bad(window, v, a.objects ? "it objects but names no update" : "it attests but names updates");
  return a;
}

}  // namespace bistro
