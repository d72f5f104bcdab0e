// Catch-up and synchronisation: how a node gets and keeps the one shared model. The master
// validator (the highest-staked one with a "master:URL" commitment) publishes in its bucket, per
// window u, record(u) and a mirror of each update it accepted, and every `checkpoint_interval`
// windows a checkpoint of theta. A node moves theta forward by applying records in order
// (apply_record); a node that starts late, restarts, or finds its hash differs from a record's
// loads the latest checkpoint and replays the records since (catch_up).
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "bistro/chain/chain.hpp"
#include "bistro/model/hf_tokenizer.hpp"
#include "bistro/protocol/lead_return.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/protocol/record.hpp"
#include "bistro/protocol/record_finality.hpp"

namespace bistro {

class Bucket;

struct MasterSource {
  std::string bucket_url;
  std::string hotkey_ss58;
  std::string validator_hex;  // its public key: records must be signed by it
  double stake = 0;           // TAO, as the chain shows it
  bool permit = false;        // a validator permit
};
// Every validator with a master: commitment in failover order: stake descending, then uid.
std::vector<MasterSource> validator_order(chain::Chain& chain, uint16_t netuid);
// The first of validator_order: the lead at the start (nullopt: no validator has committed).
std::optional<MasterSource> find_master(chain::Chain& chain, uint16_t netuid);
// The block after which a record(u) missing from the lead's bucket is looked for in the other
// validators' (and the k-th after the lead may publish it from block failover_block + (k-1) *
// failover_blocks + 1): window u's deadline plus failover_blocks.
uint64_t failover_block(uint64_t u, const NeuronHparams& h);
// The block until which a follower waits for a final record(u) before it gives the window up:
// the deadline of window u+1, or, when later, failover_blocks after the last of `candidates`
// failover turns began (its record then has a failover period to gather the quorum). Waiting
// less gave up before the first turn began (failover_blocks = blocks_per_window): every
// follower of a killed or stalled lead failed the window, measured it again and lost the next.
uint64_t record_wait_block(uint64_t u, const NeuronHparams& h, uint64_t candidates);

// A record that cannot be applied: names the window, the uid where one is at fault, and why.
class SyncError : public Error {
 public:
  using Error::Error;
};

// checkpoints/latest.json: the window of the latest published checkpoint and its params_hash.
struct CheckpointPointer {
  uint64_t window;
  std::string params_hash;
};

class ModelSync {
 public:
  using Log = std::function<void(int level, const std::string&)>;
  ModelSync(chain::Chain& chain, uint16_t netuid, const NeuronHparams& h, const LlamaConfig& config,
            std::filesystem::path scratch, Log log);

  // The final record(u) (finality.hpp): of the records the validators published for u, the one
  // a stake quorum attested, verified against this node's model, protocol and its publisher's
  // key; nullopt while none is. Its publisher is read first from then on. Records and
  // attestations that are bad are logged and skipped.
  std::optional<WindowRecord> fetch_record(uint64_t u);
  // Polls fetch_record until it appears or the chain reaches `give_up_block`.
  std::optional<WindowRecord> wait_record(uint64_t u, uint64_t give_up_block);
  // record(u) as published, final or not: the current lead's, or past its failover block the
  // first found in the failover order (what a follower judges and attests). A record that is
  // there but bad throws SyncError.
  std::optional<WindowRecord> fetch_published(uint64_t u);
  // record(u) as the current lead published it, final or not: no failover, and nothing about
  // who leads changes (what a miner trains on while the record's finality is pending). A record
  // that is there but bad throws SyncError.
  std::optional<WindowRecord> fetch_lead_record(uint64_t u);
  // Every record of window u the validators published, each with its finality now. The active
  // stake is read for window max(u, now - 1): a validator that stopped attesting drops out of it
  // two windows later, so a dead lead delays finality by two windows at most.
  std::vector<RecordFinality> records_of(uint64_t u);

  // theta_u -> theta_{u+1}: checks base_hash, fetches each accepted update (the miner's
  // bucket, else the master's mirror) and its SHA-256, decodes it, takes the outer step and
  // checks params_hash. SyncError on any mismatch; theta is left alone unless the outer step ran.
  // Updates already in hand (by uid, with their bytes' SHA-256) are not fetched again.
  void apply_record(const WindowRecord& r, const std::vector<torch::Tensor>& theta,
                    const std::map<uint16_t, std::pair<std::string, const Update*>>& known = {});

  // Loads the latest published checkpoint into model; returns its window (theta at that
  // window's start), or nullopt when none is published yet.
  std::optional<uint64_t> load_latest_checkpoint(Llama& model);

  // Brings model from window `at` (theta_at) to `target` by records at .. target-1, waiting for
  // each until `give_up_block`; on a SyncError reloads the latest checkpoint and replays from
  // there. Returns the window theta is at afterwards (target, or less if it gave up), nullopt
  // when it holds no known state (no checkpoint yet, or resynchronising failed).
  std::optional<uint64_t> catch_up(Llama& model, std::optional<uint64_t> at, uint64_t target,
                                   uint64_t give_up_block);

  // The validator whose records are read first: find_master's at the start, then whoever
  // published the last record found (a failover moves it).
  const std::optional<MasterSource>& master();
  // Makes `source` the one read first (a validator that took over reads its own bucket).
  void set_master(const MasterSource& source);
  // `source` leads from window u's record on: when it is not the current lead, that lead was
  // passed over at u (lead_return.hpp), and `source` is read first from then on.
  void pass_to(uint64_t u, const MasterSource& source);
  // The same, by the publisher's hotkey (one without a master: commitment is not read first).
  void pass_to(uint64_t u, const std::string& publisher_ss58);
  // Before window u (a validator's): a lead that censored u-2 is passed over, and a validator
  // above the lead that is back, in sync and rested takes the lead again (lead_return.hpp,
  // docs/protocol.md "Who leads"); returns true when it moved master().
  bool choose_lead(uint64_t u);
  // The SHA-256 of record(u)'s bytes as last fetched (empty: not fetched): what an attestation
  // names.
  std::string record_sha256(uint64_t u) const;
  // GETs of records sent so far (the cost of waiting for them).
  uint64_t record_requests() const { return record_requests_; }
  // The last final record catch_up applied (nullopt: none yet): what a node that needs it right
  // after catching up reads without fetching it again.
  const std::optional<WindowRecord>& last_applied() const { return last_applied_; }

 private:
  uint64_t record_requests_ = 0;
  std::map<uint64_t, std::string> record_sha_;  // the last few windows'
  void remember_sha(uint64_t u, const std::string& sha);
  // The validators as a window saw them, and the active sets read (by window read).
  std::map<uint64_t, std::vector<ValidatorView>> views_;
  std::map<uint64_t, std::set<std::string>> active_;
  std::set<std::string> logged_;   // lines about bad records and attestations, logged once
  std::set<std::string> refused_;  // the records this node has seen refused (their SHA-256)
  std::optional<WindowRecord> last_applied_;
  std::map<std::string, PassedOver> passed_;  // leads passed over, by hotkey (lead_return.hpp)
  uint64_t master_from_ = 0;                  // the first window master() leads
  // Window u's final record as the lead rules read it (empty publisher while none is final).
  struct FinalView {
    std::string publisher;            // hotkey
    std::set<std::string> attesters;  // counted, hex keys
    std::vector<uint16_t> censored;   // Finality::censored
  };
  std::map<uint64_t, FinalView> finals_;
  const FinalView& final_view(uint64_t u);
  const std::vector<ValidatorView>& views(uint64_t u);
  // Loads it into model and checks its hash against the pointer; returns its window.
  uint64_t load_checkpoint(Llama& model, const CheckpointPointer& c);
  // record(u) from `source`'s bucket, checked against its key; nullopt when absent.
  std::optional<WindowRecord> fetch_from(const MasterSource& source, Bucket& bucket, uint64_t u);
  std::string fetch_update(const WindowRecord& r, const RecordEntry& e,
                           const std::map<std::string, std::string>& commits);

  chain::Chain& chain_;
  uint16_t netuid_;
  const NeuronHparams& h_;
  const LlamaConfig& config_;
  std::filesystem::path scratch_;
  Log log_;
  std::optional<MasterSource> master_;
  std::unique_ptr<Bucket> bucket_;
};

// checkpoints/latest.json of the bucket at `url`: nullopt when none is published; SyncError
// naming the bucket when the pointer is malformed.
std::optional<CheckpointPointer> read_checkpoint_pointer(Bucket& bucket, const std::string& url);

// What a published checkpoint holds (checkpoints/{window:010}/...): the model and its tokenizer.
inline constexpr std::array<const char*, 5> kPublishedCheckpointFiles = {
    "config.json", "model.safetensors", kTokenizerFile, kTokenizerConfigFile, kSpecialTokensFile};
// Downloads every file of the checkpoint of `window` into dir; a missing one is named (Error).
void download_checkpoint(Bucket& bucket, const std::string& url, uint64_t window,
                         const std::filesystem::path& dir);

// The validator's side: publish theta as the checkpoint of `window` (files, then latest.json).
void publish_checkpoint(Bucket& bucket, const Llama& model, uint64_t window,
                        const std::filesystem::path& scratch);

}  // namespace bistro
