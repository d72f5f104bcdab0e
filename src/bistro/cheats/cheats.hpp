// Cheating miners, as behaviours of the real miner (`bistro miner --behaviour KIND`, localnet
// `--cheat KIND:N`) and of `bistro experiment attack`. Each is an attack a live subnet met
// (../shared/FACTS.md); the validator's gauntlet (gauntlet.hpp) must leave every one of them
// with nothing. Torch-free: the update transforms work on the wire structure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <map>

#include "bistro/chain/chain.hpp"
#include "bistro/compress/update.hpp"
#include "bistro/model/config.hpp"

namespace bistro {

enum class Behaviour {
  Honest,
  Lazy,             // never trains: sends zeros
  Garbage,          // random bytes
  Copycat,          // re-signs a peer's update of the same window as soon as it appears
  LateCopycat,      // the same, just before the window closes
  Replay,           // re-signs a peer's update of the previous window
  Noise,            // random indices and values at an honest update's norm
  Poison,           // its own pseudo-gradient, sign-reversed and scaled x1000 (clamped to 9000)
  PoisonMax,        // sign-reversed, every value at the largest the format allows (1e4)
  DataCheat,        // trains on random pages instead of its assigned ones
  Late,             // trains honestly and uploads after the window closed
  Sybil,            // one operator's uids sending one update: the first trains, the others copy it
  NegativeExploit,  // zeros for its first windows, then noise (templar #108)
};
// Parses a kind ("poison-max", ...); an unknown name is an error listing the kinds.
Behaviour parse_behaviour(const std::string& name);
const char* behaviour_name(Behaviour b);
// Every kind but honest, in declaration order.
std::vector<Behaviour> cheat_kinds();
// Does this behaviour run the inner loop on its pages (the honest work, before any cheat)?
bool behaviour_trains(Behaviour b);
// Windows of zeros the negative-score exploit sends before it switches to noise.
inline constexpr uint64_t kNegativeExploitZeros = 3;

// Sign-reversed, scaled by `factor` and clamped to +-limit (values and 2-bit levels alike).
void poison_update(Update& u, float factor, float limit);
// What the poisoning kinds do to their own update (poison: x1000 clamped to 9000; poison-max:
// every value at 1e4, the largest the format allows; both sign-reversed); other kinds: nothing.
void poison_as(Behaviour b, Update& u);
// An update of the same layout as the protocol's sparseloco codec (k per chunk, 2-bit levels)
// with random distinct indices and random codes, each tensor at the given RMS.
Update noise_update(const std::vector<ParameterSpec>& params, int64_t k, int64_t chunk_cap,
                    const std::vector<float>& rms, uint64_t seed);
// Per-tensor RMS of an update's values (what a noise miner matches).
std::vector<float> update_rms(const Update& u);

// Dishonest validators (`bistro validator --behaviour KIND`, localnet `--validator-cheat KIND`):
// they follow the lead's records like any follower but measure nothing, and set weights of their
// own making. Yuma Consensus is to leave them less validator trust and fewer dividends per stake
// than the honest validators.
enum class ValidatorBehaviour {
  Honest,
  SelfWeight,    // every weight on its own miner (here: the lowest-uid committed miner)
  WeightCopier,  // the chain's last consensus weights (Neuron::consensus), copied without scoring
  // As a lead (localnet --dishonest-lead): admits every verified update without judging and
  // skips the record's guard; as a follower it attests whatever it applies.
  AdmitAll,
  // The next two judge, attest and set weights as an honest validator does; only their records
  // differ. As a lead: leaves the lowest-uid committed miner out of every record it publishes.
  Censor,
  // Publishes no record (it follows, in the lead's turn too) but stays online and attests.
  Stall,
  // Honest, on an overloaded machine (localnet --validator-cheat slow): as a follower it reads the
  // records of window u no sooner than window u+1's deadline, so it is a window behind.
  Slow,
};
// Whether a validator of this kind measures, attests and sets weights as an honest one does.
bool judges_honestly(ValidatorBehaviour b);
// "honest", "self-weight", "weight-copier", "admit-all", "censor", "stall" or "slow"; an unknown
// name is an error listing them.
ValidatorBehaviour parse_validator_behaviour(const std::string& name);
const char* validator_behaviour_name(ValidatorBehaviour b);
// The weights a dishonest validator sets (uid -> weight, over `miners`; empty: none to set, e.g.
// a copier before the first consensus).
std::map<uint16_t, double> dishonest_weights(ValidatorBehaviour b, const chain::Metagraph& m,
                                             const std::vector<uint16_t>& miners);

}  // namespace bistro
