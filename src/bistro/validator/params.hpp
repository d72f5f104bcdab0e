// The gauntlet's knobs (validator/gauntlet.hpp gives the rules they tune), read from the
// protocol's hparams. Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bistro {

struct GauntletParams {
  double copy_entries = 0.5;  // share of entries equal in index and value that makes a copy
  double copy_indices = 0.6;  // share of equal indices alone that makes a copy
  int64_t upload_tolerance_ms = 2000;  // bucket clocks and S3's 1 s Last-Modified resolution
  // The slack after the close (-1: upload_tolerance_ms). S3 truncates Last-Modified to the
  // second, which only makes an object look earlier: the validator narrows this to half a block
  // so that an upload one block late is late whatever the block time.
  int64_t late_tolerance_ms = -1;
  double rating_ema = 0.8;     // weight of the old rating
  double margin_floor = 0.25;  // window score: margin / median margin, minus this floor, rescaled
  double score_cap = 2.0;      // the most one window pays, in median margins
  size_t record_peers = 20;    // the most updates one record admits
  // The tests' error rates (one-sided): an update that does no harm on random pages is left out
  // for harm with probability <= harm_alpha; an update with no own-page effect (trained on other
  // pages) shows evidence with probability <= evidence_alpha.
  double harm_alpha = 0.01;
  double evidence_alpha = 0.01;
  // The evidence test's error rate for a trusted miner (its last measured update passed): trust
  // is won at evidence_alpha and kept at trust_alpha, a sequential test with hysteresis. An
  // honest miner's margin shows 2-4 standard errors a window where the own-page signal is weak
  // (two miners, error feedback mixing past windows' pages into each update), so one test at
  // 1% failed a third of its windows and cost it its trust, its pay and its next window's
  // place on trust; a miner that stopped working keeps its trust for 1 / (1 - trust_alpha)
  // measurements at most in expectation, and wins it back only at evidence_alpha.
  double trust_alpha = 0.1;
  // The evidence test reads the miner's recent measured windows, not this one alone: the
  // per-window t statistics of its own-page margins (capped at +-kEvidenceCap), weighted by
  // evidence_decay^age and combined as Stouffer's z (sum w t / sqrt(sum w^2)). A miner with no
  // own-page work shows z > t_critical at about the test's rate all the same (its windows'
  // pages, references and random pages differ, so their t are independent); an honest miner
  // whose margin shows 1-2 standard errors a window shows 2-4 over its recent windows. A miner
  // that stops working is carried by its past for about two windows (the cap bounds the carry;
  // its margin, about 0, earns it next to no pay). 0: this window alone.
  double evidence_decay = 0.5;
  // An unmeasured window of a trusted miner pays its expected score: the mean of its paid
  // measured scores (each weighted by rating_ema per later reading) shrunk toward the median
  // passing update's score, 1, with the weight of pay_prior readings. Under a scoring budget a
  // miner is measured every few windows, and repeating its last reading paid honest miners
  // doing equal work 4x apart (a reading's spread between honest windows is about 35%); the
  // prior stands for what the other miners' readings say. 0: the readings' own mean.
  double pay_prior = 8;
  // The evidence test's null as measured on real pages (NullSpread): each window's own-page t is
  // divided by this before the test and before it joins the miner's past, so the test passes an
  // update with no own-page work at about its stated rate. 1: the test as for independent
  // sequences. The validator sets it every window.
  double null_spread = 1;
  // Where a new miner's pay goes while it waits for its first measurement (Rating::waited): the
  // subnet owner's uid (subtensor registers the owner's hotkey as uid 0 when the subnet is
  // created; the local chain, its first validator). -1: nowhere, the measured miners share it.
  int burn_uid = 0;
  size_t sketch_size = 256;     // hashes kept per update for the copy pre-filter
  uint64_t replay_windows = 4;  // windows of sketches kept to catch replays
};

struct NeuronHparams;
// The hparams' gauntlet knobs (the rest keep their defaults; the validator sets null_spread and
// late_tolerance_ms each window).
GauntletParams gauntlet_params(const NeuronHparams& h);

}  // namespace bistro
