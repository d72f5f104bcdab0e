// A JSON document signed by a hotkey, as records and attestations are published: its "signature"
// field holds 128 hex digits that sign the document's bytes as published with those digits set
// to '0' (docs/protocol.md). No canonical form is needed: the reader verifies the bytes it got.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace bistro {

class Signer;

// 128 '0's: what a document to be signed carries in its "signature" field.
const std::string& zero_signature();

// `j`'s bytes (its "signature" must be zero_signature()), signed by `signer`.
std::string sign_json(const nlohmann::json& j, const Signer& signer);

// Whether `signature` (the document's "signature" field) is 128 hex digits that appear once in
// `bytes` and verify, by `scheme` and the hex public key `key`, over `bytes` with them zeroed.
bool verify_signed_json(std::string_view bytes, const std::string& scheme, const std::string& key,
                        const std::string& signature);

}  // namespace bistro
