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
//              naming an update the record does not hold, an omission naming one it holds, the
//              publisher objecting to its own
//   active     the stake that decides: the validators with a permit in `active` (those that
//              attested record(u-2) in time, docs/protocol.md), the publisher, and every
//              validator counted here (one that comes back counts again by attesting)
//   final      attesting stake >= quorum x active stake
//   refused    objecting stake > (1 - quorum) x active stake: it can never become final
//   censored   an update left out that attesting stake > (1 - quorum) x active stake names as
//              omitted (it admitted and measured it as helpful): the lead rests (lead_return.hpp)
// A lone validator's record is final on its own signature.
//
// window_finality judges every record of one window together, with two more rules:
//   one each   a validator that published a record of the window attests that one: its
//              attestations of the window's other records are ignored (its objections count)
//   replaced   the records are judged in the order given (the validators' order by stake), each
//              once. The publisher of a refused record before this one is not active for it, and
//              its statements on it are ignored, when this one starts from the same theta and
//              holds only updates the refused record held, less those its counted objections
//              named: a refusal lets the objectors remove updates, never add one. Without it a
//              lead above 1 - quorum of the stake could keep every replacement of its own refused
//              record from becoming final.
// With quorum > 1/2 and one active set, at most one record of a window is final: a refusal
// found stands, a refused record is not final, and every validator attests one record
// (docs/protocol.md).
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
  std::vector<std::string> replaced;   // refused records' publishers not active for this one
  std::map<uint16_t, double> omitted;  // uid -> counted attesting stake naming it as left out
  // The uids left out that attesters holding more than 1 - quorum of the active stake name (the
  // censorship rule, lead_return.hpp: it moves the lead, never what this record holds).
  std::vector<uint16_t> censored;
};

// `record` as parsed, `record_sha256` the hex SHA-256 of its bytes; `found` the attestations
// parsed from the validators' buckets (each verified against its bucket's owner).
// `excluded`: not active, their statements ignored (window_finality's "replaced"); `others`:
// publishers of other records of the window (their attestations of this one are ignored).
Finality finality(const WindowRecord& record, const std::string& record_sha256,
                  const std::vector<Attestation>& found,
                  const std::vector<StakedValidator>& validators,
                  const std::set<std::string>& active, double quorum,
                  const std::set<std::string>& excluded = {},
                  const std::set<std::string>& others = {});

struct PublishedRecord {
  WindowRecord record;
  std::string sha256;  // of its bytes
};

// What a replacement of refused record `refused` (judged `f`) may hold: uid -> the update file's
// SHA-256, its accepted updates less those f's counted objections named (window_finality's
// "replaced"; a follower builds its replacement from it).
std::map<uint16_t, std::string> replaceable_updates(const WindowRecord& refused, const Finality& f);

// Every record of one window (each by another publisher), judged in the order given.
std::vector<Finality> window_finality(const std::vector<PublishedRecord>& records,
                                      const std::vector<Attestation>& found,
                                      const std::vector<StakedValidator>& validators,
                                      const std::set<std::string>& active, double quorum);

}  // namespace bistro
