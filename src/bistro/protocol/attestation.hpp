// A validator's signed statements on the records of window u, published in its own bucket
// (docs/protocol.md, "Attestations and finality"): one file per validator and window, holding one
// statement per record it judged. A statement attests the record's bytes (their SHA-256), or
// objects to it, naming the accepted updates its own measurement found harmful with the evidence
// (the gauntlet's harm test at the stated error rate); an attesting statement may also name the
// helpful updates the record left out ("omitted", optional). A file attests at most one record: a
// validator attests one record per window, and moves its attestation when that record is refused;
// its objections stay. finality.hpp counts them.
//
// An attestation is a peer's bytes: parse_attestation checks the size, the JSON structure and
// every field, that it is for the expected window, and its signature by the validator whose
// bucket it came from; each failure is an AttestationError naming the reason.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bistro/core/error.hpp"

namespace bistro {

class Signer;

struct Objection {
  uint16_t uid = 0;
  std::string sha256;  // the update file's, as the record names it
  double z = 0;        // the harm test's statistic on this validator's random pages (< 0: harm)
  uint64_t n = 0;      // sequences it read
  std::string reason;  // one line, for people
};

// An update the record left out that this validator admitted itself and measured as helpful on
// its random pages (z > the critical value at harm_alpha): the censorship rule (lead_return.hpp)
// counts them. It never changes what the record holds.
struct Omission {
  uint16_t uid = 0;
  std::string sha256;  // the update file's
  double z = 0;        // the test statistic on this validator's random pages (> 0: helps)
  uint64_t n = 0;      // sequences it read
};

// One statement (a file's window, harm_alpha, validator and scheme copied into each).
struct Attestation {
  uint64_t window = 0;
  std::string record_sha256;          // hex SHA-256 of record(window)'s bytes as fetched
  std::string publisher;              // hex public key that signed the record
  bool objects = false;               // false: attests the record
  std::vector<Objection> objections;  // when it objects: ascending uid, at least one
  std::vector<Omission> omitted;      // when it attests: ascending uid, at most kMaxOmissions
  double harm_alpha = 0;              // the harm test's error rate on honest updates
  std::string validator;              // hex public key (set by encode_attestation)
  std::string scheme;                 // set by encode_attestation
};

class AttestationError : public Error {
 public:
  using Error::Error;
};

inline constexpr size_t kMaxAttestationBytes = 64 << 10;
inline constexpr size_t kMaxStatements = 16;  // records of one window a validator judges
inline constexpr size_t kMaxOmissions = 64;   // updates one statement names as left out

// In the attesting validator's bucket.
std::string attestation_key(uint64_t window);

// `statements`: of one window, with one harm_alpha (the first's), each record named once, at most
// one attesting. Written as given: parse_attestation is the check.
std::string encode_attestation(std::vector<Attestation> statements, const Signer& signer);
// `validator`: the hex public key of the validator whose bucket it came from. Its statements, in
// the file's order.
std::vector<Attestation> parse_attestation(std::string_view bytes, uint64_t window,
                                           const std::string& validator);

}  // namespace bistro
