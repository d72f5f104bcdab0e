// The protocol's knobs (templar's hparams file): every node of a subnet runs the same values,
// and each record names the hash of those it was made under.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace bistro {

// The protocol's knobs; every node of a subnet must use the same values (a JSON file with these
// names; unknown names are refused).
struct NeuronHparams {
  std::string preset = "tiny";
  uint64_t init_seed = 42;
  uint64_t blocks_per_window = 5;
  uint64_t pages_per_window = 3;  // the miner's local pages per window
  uint64_t eval_pages = 1;        // the validator's random global pages per window
  // sparseloco: what the validator reads per scored update, in micro-batches of batch_rows
  // sequences: of the miner's own pages (the first ones it trains on) and of the random pages.
  int64_t score_batches = 4;
  int64_t score_random_batches = 4;
  int64_t batch_rows = 8;
  int64_t seq_len = 128;
  int64_t max_micro_batches = 12;  // per window, per miner (bounds a window's work on a CPU)
  double lr = 2e-3;  // the miners' AdamW (slice: once per window; sparseloco: every inner step)
  double weight_decay = 0.1;
  // "sparseloco" (protocol v2, the default: H inner steps, error-feedback top-k pseudo-gradients,
  // one synchronized model), "slice" (BISTRO) or "dct-topk" (DeMo: compressed momentum).
  std::string codec = "sparseloco";
  int64_t inner_steps =
      12;  // sparseloco: H, AdamW steps a window is sized for (one micro-batch each)
  // sparseloco: a miner trains while its window lasts, up to this many steps (steps past the
  // pages' micro-batches draw on the window's next pages).
  int64_t max_inner_steps = 48;
  int64_t warmup_steps = 24;  // sparseloco: linear warmup of the inner lr (the miner's own steps)
  int64_t topk = 64;          // sparseloco: entries sent per 64 x 64 chunk (1.56%)
  double ef_beta = 0.95;      // sparseloco: error-feedback decay
  double outer_lr = 1.0;      // sparseloco: alpha of the outer step
  uint64_t checkpoint_interval = 5;  // sparseloco: windows between published checkpoints
  int64_t compression = 300;         // slices: max(1, numel / compression) values per tensor
  int64_t dct_k = 32;                // dct-topk: coefficients kept per chunk
  int64_t chunk_cap = 64;            // dct-topk: largest chunk side
  double dct_lr = 3e-3;              // dct-topk: the learning rate of the merged sign step
  double score_ema = 0.6;            // weight of the old value in the score EMAs
  double temperature = 20.0;  // softmax(score * temperature) -> weights (scores are loss deltas)
  uint64_t weights_interval = 1;  // windows between set_weights
  uint64_t grace_blocks = 1;      // validators start on window w at block (w + 1) * bpw + grace
  // sparseloco, several validators: blocks after window w's deadline when the next validator in
  // the failover order may publish record(w) in the lead's stead (docs/protocol.md, Failover)
  uint64_t failover_blocks = 5;
  // sparseloco: the share of the active validators' stake whose attestations make a record final
  // (protocol/finality.hpp, docs/protocol.md "Attestations and finality")
  double quorum = 2.0 / 3.0;
  // sparseloco: the validator's gauntlet (gauntlet.hpp, docs/protocol.md "The gauntlet").
  double rating_ema = 0.8;     // weight of the old rating
  uint64_t record_peers = 20;  // the most updates one record admits
  double copy_entries = 0.5;   // share of equal entries (index and value) that makes a copy
  double copy_indices = 0.6;   // share of equal indices that makes a copy
  double margin_floor = 0.25;  // own-page margins below this share of the median pay nothing
  double record_guard = 0.02;  // a record may raise the held-out loss by at most this share
  uint64_t upload_tolerance_ms = 2000;  // Last-Modified slack against the validator's clock
  // The judgement's error rates (one-sided tests on per-sequence paired losses): a harmless
  // update is left out for harm with probability <= harm_alpha; an update with no own-page work
  // shows evidence of it with probability <= evidence_alpha.
  double harm_alpha = 0.01;
  double evidence_alpha = 0.01;
  // A trusted miner keeps its trust (and its pay) on weaker evidence: an update with no own-page
  // work from a trusted miner passes with probability <= trust_alpha (gauntlet.hpp).
  double trust_alpha = 0.1;
  // The evidence test combines the miner's recent measured windows, each weighted by this per
  // window of age (0: this window alone; gauntlet.hpp).
  double evidence_decay = 0.5;
  // An unmeasured window of a trusted miner pays its measured scores' mean shrunk toward the
  // median passing update's with the weight of this many readings (gauntlet.hpp).
  double pay_prior = 8;
  // The evidence test is calibrated on the null it meets on real pages (gauntlet.hpp,
  // NullSpread) once this many placebo reads are pooled (0: never; the test as stated for
  // independent sequences).
  uint64_t null_reads = 30;
  // Where a new miner's pay goes while it waits for its first measurement under a scoring budget
  // (gauntlet.hpp, Rating::waited; paid back once it passes): the subnet owner's uid, 0 on
  // subtensor and on the local chain. -1: nowhere (the miners measured so far share it).
  int64_t burn_uid = 0;
  // The validator's cost: score_budget updates measured a window at most (0: every one; each
  // costs (2 + refs) x score_batches + score_random_batches micro-batch forwards), a rotating
  // sample when miners outnumber it (gauntlet.hpp, scoring_sample); close_budget: the share of
  // a window it may spend after the close measuring untrusted updates before it publishes.
  // judge_budget: the share of a window it may spend after the record measuring the rest of the
  // sample (the validator must keep pace with the windows: what does not fit stays unmeasured).
  uint64_t score_budget = 0;
  double close_budget = 0.25;
  double judge_budget = 0.3;
};
NeuronHparams load_hparams(const std::filesystem::path& file);  // empty path: defaults
nlohmann::json to_json(const NeuronHparams& h);
// Hex SHA-256 of to_json(h): records name the protocol they were made under.
std::string hparams_hash(const NeuronHparams& h);

}  // namespace bistro
