// Reading finality from the buckets (finality.hpp is the rule; this is the I/O): every record of
// window u that a validator published, each with its attestations from every validator's bucket
// and its finality, the active set read from the attestations and records of windows u-1 and u-2
// (docs/protocol.md, "Attestations and finality"). A bad record or attestation is logged once with
// the validator and the reason and skipped; an unreachable bucket counts as publishing nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bistro/protocol/finality.hpp"

namespace bistro {

struct ValidatorView {
  std::string hotkey_ss58;
  std::string key;  // hex public key
  double stake = 0;
  bool permit = false;
  std::string bucket_url;
};

struct RecordFinality {
  std::string publisher_ss58;
  WindowRecord record;
  std::string sha256;  // of the record's bytes
  Finality finality;
  int64_t published_ms = 0;  // the record's Last-Modified (0: unknown)
  int64_t final_ms = 0;      // when the counted attestations first reached the quorum, by their
                             // Last-Modified (0: not final, or unknown)
};

// The active validators for window u: those with an attestation or a record of window u-1 or u-2;
// all of them when none has (a subnet's first windows).
std::set<std::string> active_validators(const std::vector<ValidatorView>& validators, uint64_t u);

// `active`: the active set when the caller holds it (active_validators'), else read here.
std::vector<RecordFinality> read_window_finality(const std::vector<ValidatorView>& validators,
                                                 uint64_t u, const std::string& config_hash,
                                                 const std::string& hparams_hash, double quorum,
                                                 const std::function<void(const std::string&)>& log,
                                                 const std::set<std::string>* active = nullptr);

}  // namespace bistro
