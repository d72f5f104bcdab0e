// When record(u) is final: the stake quorum of the validators' attestations (attestation.hpp;
// docs/protocol.md, "Attestations and finality"). Pure: the same record, attestations, validator
// set and active set give the same answer on every node.
//
//   counted    an attestation signed by a validator with a permit, for this window and this
//              record's bytes, once per validator, whose objections (if any) name updates the
//              record holds with the hash it holds them by. The record's own signature is its
//              publisher's attestation.
//   ignored    every other one, with one line naming the validator and the reason: not a
//              validator's key, no permit, another window or record, sent twice, an objection
//              naming an update the record does not hold, the publisher objecting to its own
//   active     the stake that decides: the validators with a permit in `active` (those that
//              attested record(u-2) in time, docs/protocol.md), the publisher, and every
//              validator counted here (one that comes back counts again by attesting)
//   final      attesting stake >= quorum x active stake
//   refused    objecting stake > (1 - quorum) x active stake: it can never become final
// A lone validator's record is final on its own signature.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bistro/protocol/attestation.hpp"
#include "bistro/protocol/record.hpp"

namespace bistro {

struct StakedValidator {
  std::string key;  // hex public key
  double stake = 0;
  bool permit = false;
};

struct IgnoredAttestation {
  std::string validator;  // hex public key as signed
  std::string reason;
};

struct Finality {
  bool final = false;
  bool refused = false;
  double attested = 0, objected = 0, active = 0;            // stake
  std::vector<std::string> attesters, objectors;            // counted, in the order given
  std::map<uint16_t, std::vector<std::string>> objections;  // uid -> the reasons counted
  std::vector<IgnoredAttestation> ignored;
};

// `record` as parsed, `record_sha256` the hex SHA-256 of its bytes; `found` the attestations
// parsed from the validators' buckets (each verified against its bucket's owner).
Finality finality(const WindowRecord& record, const std::string& record_sha256,
                  const std::vector<Attestation>& found,
                  const std::vector<StakedValidator>& validators,
                  const std::set<std::string>& active, double quorum);

}  // namespace bistro
