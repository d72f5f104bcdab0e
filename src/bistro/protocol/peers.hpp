// The parts of a neuron that talk to peers and to the operator: keys from the wallet, registration,
// gathering the peers' updates for a window (in parallel, each verified; a bad peer is skipped and
// its reason recorded), and small helpers for state and metrics.
#pragma once

#include <chrono>
#include <functional>
#include <map>

#include "bistro/protocol/neuron.hpp"
#include "bistro/storage/bucket.hpp"

namespace bistro {

std::unique_ptr<Signer> load_hotkey(const NeuronArgs& a);
std::unique_ptr<Signer> load_coldkey(const NeuronArgs& a);
// The hotkey's uid; registers with the coldkey when --register was given, else fails clearly.
uint16_t ensure_registered(chain::Chain& chain, const NeuronArgs& a, const Signer& hotkey);
// Opens --bucket and makes this hotkey's commitment `prefix` + its URL (miners commit the bare
// URL, validators "master:" + URL), writing the chain only when it holds something else.
std::unique_ptr<Bucket> commit_bucket(chain::Chain& chain, const NeuronArgs& a,
                                      const Signer& hotkey, const std::string& prefix);
std::filesystem::path neuron_state_dir(const NeuronArgs& a, const std::string& role,
                                       const std::string& hotkey);

struct GatherStats {
  uint64_t bytes = 0;
  std::map<uint16_t, std::string> rejected;  // uid -> reason (missing, malformed, bad signature...)
  double seconds = 0;                        // wall time of the whole gather
  double verify_seconds = 0;                 // decode + signature checks, summed over peers
  std::map<uint16_t, int64_t> uploaded_ms;   // when each object was last written (bucket clock)
  bool keep_bytes = false;                   // set by the caller: keep each verified file's bytes
  std::map<uint16_t, std::string> files;     // uid -> the bytes that verified (keep_bytes)
};
// One peer's update for `window`, fetched from its bucket and verified: `update` when it verified,
// else `reason` ("missing", "unreachable bucket: ...", or the wire format's complaint). `known`:
// the object's info when the caller already has it (no HEAD is sent then).
struct FetchedUpdate {
  std::optional<Update> update;
  std::string file;  // the verified bytes, when kept
  std::string reason;
  uint64_t bytes = 0;
  double verify = 0;  // seconds
  int64_t uploaded_ms = 0;
};
FetchedUpdate fetch_update(Bucket& bucket, const NeuronHparams& h, const LlamaConfig& config,
                           uint64_t window, uint16_t uid, const std::string& hotkey,
                           bool keep_bytes, const std::optional<ObjectInfo>& known = std::nullopt);

// Every committed peer's verified update for `window`, by uid (ascending), from the metagraph and
// commitments the caller already read. `skip`: uids not to fetch. At most 8 downloads in flight.
std::map<uint16_t, Update> gather_updates(const chain::Metagraph& m,
                                          const std::map<std::string, std::string>& commits,
                                          const NeuronHparams& h, const LlamaConfig& config,
                                          uint64_t window, const std::vector<uint16_t>& skip,
                                          GatherStats* stats);

// The bucket where the highest-staked validator publishes the master model ("master:URL"
// commitments), if any.
std::optional<std::string> master_bucket(chain::Chain& chain, uint16_t netuid);

class Metrics;
class MetricsServer;
// Starts the metrics endpoint when --metrics.port was given (nullptr otherwise).
std::unique_ptr<MetricsServer> start_metrics(const NeuronArgs& a, Metrics& m,
                                             const std::function<void(const std::string&)>& log);
// Records a gather's bytes, latency and rejections (by reason) in the metrics.
void record_gather(Metrics& m, const GatherStats& gs);

// Weights from scores: softmax(score * temperature) over the miners in `miners` (uid -> JSON with
// "score"; each gets its "weight"), set on the chain when `due`. Returns "set", "not due" or the
// chain's error name (logged through `log`).
std::string set_softmax_weights(chain::Chain& chain, uint16_t netuid, const Signer& hotkey,
                                size_t neurons, nlohmann::json& miners, double temperature,
                                bool due, const std::function<void(const std::string&)>& log);
// Sets the "weight" of each miner in `miners` (uid -> JSON), plus `extra` (uid -> weight: pay
// held back for the subnet owner's uid), on the chain when `due`; "not due", "no positive
// weight" (nothing is set), "set" or the chain's error name.
std::string set_chain_weights(chain::Chain& chain, uint16_t netuid, const Signer& hotkey,
                              size_t neurons, const nlohmann::json& miners, bool due,
                              const std::function<void(const std::string&)>& log,
                              const std::map<uint16_t, double>& extra = {});

// Appends one line (with a newline) to a file, creating it.
void append_line(const std::filesystem::path& file, const std::string& line);

// Wall-clock laps for the per-window time split (laps of one name add up).
class Timer {
 public:
  void lap(const std::string& name);
  nlohmann::json laps() const;
  double total() const;

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
  std::vector<std::pair<std::string, double>> laps_;
};

}  // namespace bistro
