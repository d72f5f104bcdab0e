// What miners and validators share: how the standard subnet flags reach them, the data and model
// every node builds identically, and the small helpers of a neuron's life (hparams.hpp holds the
// protocol's knobs, window.hpp the clock and the object keys).
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "bistro/chain/chain.hpp"
#include "bistro/compress/update.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/data/page_batches.hpp"
#include "bistro/data/tokenizer.hpp"
#include "bistro/model/llama.hpp"
#include "bistro/protocol/hparams.hpp"
#include "bistro/protocol/window.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/train/trainer.hpp"

namespace bistro {

// How the standard subnet flags and bistro's own options reach a neuron.
struct NeuronArgs {
  std::string network;  // --subtensor.network
  uint16_t netuid = 1;
  int mechid = 0;  // --mechid: the subnet mechanism a validator's weights go to
  std::string wallet_path, wallet_name = "default", wallet_hotkey = "default";
  std::string bucket;  // --bucket: where this neuron publishes (file:///dir or s3://bucket)
  std::string device = "cpu";
  std::string dtype = "fp32";  // fp32, or bf16 (autocast; runtime/runtime.hpp)
  std::string state_dir;  // checkpoints, scores, metrics (default $BISTRO_HOME/<role>/<hotkey>)
  std::string hparams_file;
  std::string dataset;  // empty: the embedded corpus
  bool register_neuron = false;
  int threads = 1;
  int ranks = 1;                     // --ranks: data-parallel ranks to spawn on this host
  uint64_t start_window = 0;         // 0: the current window
  uint64_t windows = 0;              // 0: run forever
  std::string behaviour = "honest";  // honest, or a cheat of cheats.hpp (tests, the localnet)
  int copy_uid = -1;  // the cheats that copy: whose update (-1: the lowest other miner's uid)
  int log_level = 1;  // 0 quiet, 1 info, 2 debug, 3 trace
  std::string scoring = "loss-delta";  // validator: loss-delta | win-rate | gradient-distance
  int metrics_port = -1;               // >= 0: serve Prometheus text on 127.0.0.1:port (0 any)
};

// The data every node rebuilds from public inputs.
struct NeuronData {
  LocalDataset dataset;
  Tokenizer tokenizer;
  std::vector<ConfigInfo> configs;
  PageBatchOptions options;
  NeuronData(const std::string& dataset_dir, const NeuronHparams& h);
  // Micro-batches of the given pages (at most `max_batches`; 0 = all).
  std::vector<Batch> batches(const std::vector<Page>& pages, int64_t max_batches);
  // `n` micro-batches of documents drawn one by one (pages of one row) by `key`: sequences from
  // as many places in the dataset as there are documents, so that they are nearly independent
  // samples of it (the validator's random pages; a whole page is one config's neighbourhood).
  std::vector<Batch> sample(uint64_t key, int64_t n);
  // The micro-batches a miner trains on first in a window: its own pages, at most
  // max_micro_batches of them (what the validator picks its own-page sample from).
  std::vector<Batch> window_batches(uint64_t window, uint16_t uid, const NeuronHparams& h);
  // The validator's fixed held-out set, the same every window (the master's progress is read on
  // it): `eval_pages` pages keyed by "bistro/validator-eval"; all their micro-batches under v1,
  // the first 6 under sparseloco (whose validator evaluates it every window, between records).
  std::vector<Batch> held_out(const NeuronHparams& h);
};

double mean_loss(Llama& model, const std::vector<Batch>& batches);
// `n` micro-batches' worth of rows, chosen by `key` without replacement from all the rows, in
// their order, regrouped n micro-batches of the same shape (all of them when n >= their count):
// the validator reads a secret subset of what a miner trained on. Rows, not whole micro-batches:
// a micro-batch's rows are consecutive stretches of the same pages and move together, so whole
// ones made the own-page test's sequences far from independent. The micro-batches must share
// one shape (throws otherwise).
std::vector<Batch> pick_batches(const std::vector<Batch>& batches, int64_t n, uint64_t key);
// The sparseloco miner's inner AdamW: lr, weight decay, warmup over its own steps, no decay after.
TrainOptions inner_train_options(const NeuronHparams& h);
// The model's parameters in parameter_specs() order (what the merges take).
std::vector<torch::Tensor> parameter_tensors(Llama& model);
// to[i] = from[i] for every tensor, outside autograd (moving one model's weights into another, or
// putting saved ones back).
void copy_parameters(const std::vector<torch::Tensor>& to, const std::vector<torch::Tensor>& from);
// A detached copy of every tensor (to put them back later).
std::vector<torch::Tensor> clone_parameters(const std::vector<torch::Tensor>& from);
// to[i] += onto[i] - from[i] for every tensor, outside autograd: progress made from `from` moves
// onto `onto` (the miner that trained while record(w-1) was out). The difference is taken on
// onto's device and moved to to's.
void rebase_parameters(const std::vector<torch::Tensor>& to, const std::vector<torch::Tensor>& from,
                       const std::vector<torch::Tensor>& onto);

// The update expectation for a peer: codec, window, uid, hotkey and model as the protocol says.
UpdateExpectation update_expectation(const NeuronHparams& h, const LlamaConfig& config,
                                     uint64_t window, uint16_t uid, const std::string& hotkey_ss58);

// A line-oriented log to stderr with the neuron's name, filtered by level.
void neuron_log(int level, int threshold, const std::string& who, const std::string& message);

// Waits until the chain reaches `block`, polling at a fraction of the block time.
void wait_for_block(chain::Chain& chain, uint64_t block, double block_seconds);

// --device and --dtype for a neuron of `codec`: protocol v2 computes anywhere (docs/protocol.md,
// "Devices"); v1's codecs only on the CPU in fp32.
Compute neuron_compute(const NeuronArgs& a, const std::string& codec);

}  // namespace bistro
