#include "bistro/protocol/signed_json.hpp"

#include <span>

#include "bistro/core/error.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro {
namespace {

std::span<const uint8_t> as_u8(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

constexpr size_t kPrefix = 13;  // "signature":"

}  // namespace

const std::string& zero_signature() {
  static const std::string zeros(128, '0');
  return zeros;
}

std::string sign_json(const nlohmann::json& j, const Signer& signer) {
  std::string bytes = j.dump();
  const auto at = bytes.find("\"signature\":\"" + zero_signature() + "\"");
  check(at != std::string::npos, "sign_json: the signature placeholder is missing");
  bytes.replace(at + kPrefix, 128, to_hex(signer.sign(as_u8(bytes))));
  return bytes;
}

bool verify_signed_json(std::string_view bytes, const std::string& scheme, const std::string& key,
                        const std::string& signature) {
  if (!is_hex(signature, 128)) return false;
  std::string blanked(bytes);
  const std::string field = "\"signature\":\"" + signature + "\"";
  const auto at = blanked.find(field);
  if (at == std::string::npos || blanked.find(field, at + 1) != std::string::npos) return false;
  blanked.replace(at + kPrefix, 128, zero_signature());
  try {
    return verify_signature(scheme, from_hex<32>(key, "public key"), as_u8(blanked),
                            from_hex<64>(signature, "signature"));
  } catch (const Error&) {
    return false;
  }
}

}  // namespace bistro
