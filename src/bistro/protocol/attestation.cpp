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

std::string encode_attestation(std::vector<Attestation> statements, const Signer& signer) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : statements) {
    nlohmann::json objections = nlohmann::json::array();
    for (const auto& o : a.objections)
      objections.push_back(
          {{"uid", o.uid}, {"sha256", o.sha256}, {"z", o.z}, {"n", o.n}, {"reason", o.reason}});
    nlohmann::json statement = {{"record_sha256", a.record_sha256},
                                {"publisher", a.publisher},
                                {"verdict", a.objects ? "object" : "attest"},
                                {"objections", objections}};
    if (!a.omitted.empty()) {  // absent when none: the files of before the field stay valid
      nlohmann::json omitted = nlohmann::json::array();
      for (const auto& o : a.omitted)
        omitted.push_back({{"uid", o.uid}, {"sha256", o.sha256}, {"z", o.z}, {"n", o.n}});
      statement["omitted"] = omitted;
    }
    list.push_back(statement);
  }
  const nlohmann::json j = {{"bistro_attestation", "1"},
                            {"window", statements.empty() ? 0 : statements[0].window},
                            {"harm_alpha", statements.empty() ? 0.0 : statements[0].harm_alpha},
                            {"statements", list},
                            {"validator", to_hex(signer.public_key())},
                            {"scheme", signer.scheme()},
                            {"signature", zero_signature()}};
  return sign_json(j, signer);
}

std::vector<Attestation> parse_attestation(std::string_view bytes, uint64_t window,
                                           const std::string& validator) {
  const auto& v = validator;
  if (bytes.size() > kMaxAttestationBytes)
    bad(window, v,
        fmt::format("{} bytes, over the limit of {}", bytes.size(), kMaxAttestationBytes));
  const auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_object()) bad(window, v, "not a JSON object");
  auto str_of = [&](const nlohmann::json& o, const char* key) -> std::string {
    const auto it = o.find(key);
    if (it == o.end() || !it->is_string())
      bad(window, v, fmt::format("field {} missing or not a string", key));
    return it->get<std::string>();
  };
  auto str = [&](const char* key) { return str_of(j, key); };
  if (str("bistro_attestation") != "1") bad(window, v, "unknown attestation version");
  Attestation file;
  const auto wi = j.find("window");
  if (wi == j.end() || !wi->is_number_unsigned())
    bad(window, v, "field window missing or not unsigned");
  file.window = wi->get<uint64_t>();
  if (file.window != window) bad(window, v, fmt::format("it says window {}", file.window));
  file.validator = str("validator");
  file.scheme = str("scheme");
  const std::string sig = str("signature");
  if (file.validator != validator)
    bad(window, v,
        fmt::format("signed as {}, but found in validator {}'s bucket",
                    file.validator.substr(0, 16), validator.substr(0, 16)));
  if (!verify_signed_json(bytes, file.scheme, file.validator, sig))
    bad(window, v,
        fmt::format("signature does not verify for {} key {}", file.scheme, file.validator));
  const auto ha = j.find("harm_alpha");
  if (ha == j.end() || !ha->is_number() || !(ha->get<double>() >= 0 && ha->get<double>() < 1))
    bad(window, v, "field harm_alpha missing or outside [0, 1)");
  file.harm_alpha = ha->get<double>();
  const auto list = j.find("statements");
  if (list == j.end() || !list->is_array() || list->empty() || list->size() > kMaxStatements)
    bad(window, v,
        fmt::format("field statements missing, not an array, or not 1 to {} long", kMaxStatements));
  std::vector<Attestation> out;
  size_t attesting = 0;
  for (const auto& s : *list) {
    if (!s.is_object()) bad(window, v, "a statement is not a JSON object");
    Attestation a = file;
    a.record_sha256 = str_of(s, "record_sha256");
    a.publisher = str_of(s, "publisher");
    const std::string verdict = str_of(s, "verdict");
    if (!is_hex(a.record_sha256, 64)) bad(window, v, "record_sha256 is not 64 hex digits");
    if (!is_hex(a.publisher, 64)) bad(window, v, "publisher is not a 64-hex-digit key");
    for (const auto& earlier : out)
      if (earlier.record_sha256 == a.record_sha256)
        bad(window, v, fmt::format("two statements on record {}", a.record_sha256.substr(0, 12)));
    if (verdict != "attest" && verdict != "object")
      bad(window, v, fmt::format("verdict '{}' (attest or object)", verdict));
    a.objects = verdict == "object";
    attesting += !a.objects;
    const auto obj = s.find("objections");
    if (obj == s.end() || !obj->is_array())
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
    if (const auto om = s.find("omitted"); om != s.end()) {
      if (!om->is_array() || om->empty() || om->size() > kMaxOmissions)
        bad(window, v, fmt::format("field omitted not an array of 1 to {}", kMaxOmissions));
      if (a.objects)
        bad(window, v, "it objects and names omitted updates (only an attestation may)");
      for (const auto& o : *om) {
        if (!o.is_object() || !o.contains("uid") || !o["uid"].is_number_unsigned() ||
            o["uid"].get<uint64_t>() > 65535 || !o.contains("sha256") || !o["sha256"].is_string() ||
            !o.contains("z") || !o["z"].is_number() || !o.contains("n") ||
            !o["n"].is_number_unsigned())
          bad(window, v, "an omitted update lacks uid (u16), sha256, z or n");
        Omission x{static_cast<uint16_t>(o["uid"].get<uint64_t>()), o["sha256"].get<std::string>(),
                   o["z"].get<double>(), o["n"].get<uint64_t>()};
        if (!is_hex(x.sha256, 64))
          bad(window, v, fmt::format("omitted uid {}: sha256 is not 64 hex", x.uid));
        if (!a.omitted.empty() && x.uid <= a.omitted.back().uid)
          bad(window, v, "omitted updates are not in strictly ascending uid order");
        a.omitted.push_back(std::move(x));
      }
    }
    out.push_back(std::move(a));
  }
  // A validator attests one record per window: two would let it count towards two.
  if (attesting > 1) bad(window, v, fmt::format("it attests {} records of one window", attesting));
  return out;
}

}  // namespace bistro
