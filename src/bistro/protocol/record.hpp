// The window record: what makes every node's model the same. Once window u's updates are in, the
// validator publishes record(u): the uids it accepted, each with the SHA-256 of the update file it
// accepted, the hash of the parameters the outer step starts from (theta_u) and the hash of the
// parameters it produces (theta_{u+1}). Every node applies exactly that set; a node whose
// parameters hash differently from `base_hash` or `params_hash` has diverged and resynchronises
// (catch_up.hpp). docs/protocol.md specifies the format.
//
// A record is a peer's bytes: parse_record checks the size, the JSON structure and every field,
// the signature (over the file with its signature's hex digits set to '0', as updates), and that
// it is for this window, model and protocol; each failure is a RecordError naming the reason.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bistro/core/error.hpp"

namespace bistro {

class Signer;

struct RecordEntry {
  uint16_t uid = 0;
  std::string hotkey;  // SS58
  std::string sha256;  // hex, of the update file's bytes
};

struct WindowRecord {
  uint64_t window = 0;                // the window whose updates these are
  std::string config_hash;            // the model (update.hpp's config_hash)
  std::string hparams_hash;           // the protocol's knobs (hparams_hash in hparams.hpp)
  std::string base_hash;              // params_hash(theta_window), before the outer step
  std::string params_hash;            // params_hash(theta_{window+1}), after it
  std::vector<RecordEntry> accepted;  // ascending uid
  std::string validator;              // hex public key (set by encode_record)
  std::string scheme;                 // set by encode_record
};

class RecordError : public Error {
 public:
  using Error::Error;
};

// What a reader requires of a record.
struct RecordExpectation {
  uint64_t window = 0;
  std::string config_hash, hparams_hash;
  std::string validator;  // hex public key of the validator whose bucket it came from
};

inline constexpr size_t kMaxRecordBytes = 1 << 20;

std::string encode_record(WindowRecord record, const Signer& signer);
WindowRecord parse_record(std::string_view bytes, const RecordExpectation& expected);

// A record names an update by sha256_hex of its bytes (storage/sigv4.hpp).

}  // namespace bistro
