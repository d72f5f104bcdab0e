// bistro miner | validator | localnet: the neurons, with the standard subnet flags.
#include <fmt/format.h>

#include "bistro/cheats/cheats.hpp"
#include "bistro/localnet/localnet.hpp"
#include "bistro/miner/miner.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/v1/v1.hpp"
#include "bistro/validator/validator.hpp"
#include "commands.hpp"

namespace bistro::cli {
namespace {

// `bistro miner` and `bistro validator`: the runtime, the hparams, and the protocol they name
// (v2 by default; v1's codecs slice and dct-topk).
int run_miner(const NeuronArgs& a) {
  const NeuronHparams h = load_hparams(a.hparams_file);
  init_runtime(a.threads);
  neuron_compute(a, h.codec);
  if (h.codec == "sparseloco") return run_loco_miner(a, h);
  check(a.ranks == 1, "miner: --ranks needs codec sparseloco (codec {} runs one rank)", h.codec);
  check(a.behaviour == "honest" || a.behaviour == "lazy" || a.behaviour == "garbage",
        "miner: behaviour '{}' needs codec sparseloco (codec {} has honest, lazy and garbage)",
        a.behaviour, h.codec);
  return v1::run_miner(a, h);
}

int run_validator(const NeuronArgs& a) {
  const NeuronHparams h = load_hparams(a.hparams_file);
  check(a.scoring == "loss-delta" || a.scoring == "win-rate" || a.scoring == "gradient-distance",
        "validator: unknown --scoring '{}' (loss-delta, win-rate or gradient-distance)", a.scoring);
  check(a.ranks == 1 || h.codec == "sparseloco",
        "validator: --ranks needs codec sparseloco (codec {} runs one rank)", h.codec);
  init_runtime(a.threads);
  neuron_compute(a, h.codec);
  check(h.codec != "sparseloco" || a.scoring == "loss-delta",
        "validator: codec sparseloco scores by loss-delta (got --scoring {})", a.scoring);
  check(a.scoring != "gradient-distance" || h.codec == "slice",
        "validator: gradient-distance scoring needs the slice codec (hparams codec is {})",
        h.codec);
  // Dishonest kinds (tests and the localnet) follow protocol v2's records.
  check(parse_validator_behaviour(a.behaviour) == ValidatorBehaviour::Honest ||
            h.codec == "sparseloco",
        "validator: behaviour '{}' needs codec sparseloco", a.behaviour);
  return h.codec == "sparseloco" ? run_loco_validator(a, h) : v1::run_validator(a, h);
}

void add_neuron_flags(CLI::App* c, NeuronArgs& a) {
  c->add_option("--wallet.name", a.wallet_name, "wallet (coldkey) name");
  c->add_option("--wallet.hotkey", a.wallet_hotkey, "hotkey name");
  c->add_option("--wallet.path", a.wallet_path, "wallets directory (default ~/.bittensor/wallets)");
  c->add_option("--subtensor.network", a.network,
                "chain: a local chain file (file:PATH or PATH.db; default $BISTRO_HOME/chain.db)");
  c->add_option("--netuid", a.netuid, "subnet uid");
  c->add_option("--mechid", a.mechid, "validator: the subnet mechanism its weights go to")
      ->check(CLI::Range(0, 255));
  c->add_option("--bucket", a.bucket, "where this neuron publishes: file:///dir or s3://bucket");
  c->add_option("--device", a.device, "cpu, cuda or cuda:N (protocol v2)");
  c->add_option("--dtype", a.dtype, "fp32, or bf16 (autocast; the shared model stays fp32)");
  c->add_option("--hparams", a.hparams_file, "JSON file of protocol hyperparameters");
  c->add_option("--state", a.state_dir, "state directory (default $BISTRO_HOME/<role>/<hotkey>)");
  c->add_option("--dataset", a.dataset, "dataset directory (default: the embedded corpus)");
  c->add_flag("--register", a.register_neuron, "register the hotkey if it is not registered");
  c->add_option("--threads", a.threads, "CPU threads");
  c->add_option("--ranks", a.ranks,
                "data-parallel ranks on this host, one hotkey (torchrun's RANK/WORLD_SIZE also "
                "work): a miner's share each step's micro-batches, a validator's each "
                "measurement's");
  c->add_option("--start-window", a.start_window, "first window (default: the current one)");
  c->add_option("--windows", a.windows, "stop after this many windows (default: run forever)");
  c->add_option("--behaviour", a.behaviour,
                "miner: honest, or a cheat for tests and the localnet: lazy, garbage, copycat, "
                "late-copycat, replay, noise, poison, poison-max, data-cheat, late, sybil, "
                "negative-exploit (v1 codecs: lazy and garbage only); validator: honest, "
                "self-weight, weight-copier")
      ->group("");  // hidden
  c->add_option("--copy-uid", a.copy_uid, "miner cheats that copy: whose update (default lowest)")
      ->group("");
  c->add_option("--scoring", a.scoring, "validator: loss-delta | win-rate | gradient-distance");
  c->add_option("--metrics.port", a.metrics_port, "serve Prometheus metrics on this port (0: any)");
  c->add_flag_callback(
      "--logging.debug", [&a] { a.log_level = 2; }, "debug logs");
  c->add_flag_callback(
      "--logging.trace", [&a] { a.log_level = 3; }, "trace logs");
}

}  // namespace

std::vector<Command> add_neuron_commands(CLI::App& app) {
  std::vector<Command> out;
  auto a = std::make_shared<NeuronArgs>();
  auto* miner = app.add_subcommand(
      "miner", "train on the assigned pages, publish updates, follow the shared model");
  add_neuron_flags(miner, *a);
  out.push_back({miner, [a] { return run_miner(*a); }});
  auto* validator = app.add_subcommand("validator", "score miners' updates, set weights");
  add_neuron_flags(validator, *a);
  out.push_back({validator, [a] { return run_validator(*a); }});

  auto l = std::make_shared<LocalnetOptions>();
  auto* localnet = app.add_subcommand("localnet", "a whole subnet on this machine, one command");
  localnet->add_option("--miners", l->miners, "miner processes");
  localnet->add_option("--windows", l->windows, "windows to run");
  localnet->add_option("--dir", l->dir, "run directory (default $BISTRO_HOME/localnet/<time>)");
  localnet->add_option("--block-time", l->block_time,
                       "seconds per block (default: calibrated to this machine)");
  localnet->add_option("--hparams", l->hparams_file, "protocol hyperparameters (JSON)");
  localnet->add_option("--lazy", l->lazy, "miners that never train (for comparison)");
  localnet->add_option("--garbage", l->garbage, "miners that upload garbage");
  localnet->add_option("--cheat", l->cheats,
                       "KIND:N, repeatable: N more miners of a cheating kind (copycat, "
                       "late-copycat, replay, noise, poison, poison-max, data-cheat, late, sybil, "
                       "negative-exploit, lazy, garbage)");
  localnet->add_flag(
      "--kill-validator", l->kill_validator,
      "SIGKILL the validator mid-run and restart it (v2: two windows later; v1: at once)");
  localnet->add_flag("--kill-lead", l->kill_lead,
                     "with --validators >= 2: SIGKILL the lead mid-run and restart it three "
                     "windows later (failover; it rejoins as a follower)");
  localnet->add_flag("--kill-follower", l->kill_follower,
                     "with --validators >= 2: SIGKILL validator-1 (a follower) mid-run and restart "
                     "it three windows later");
  localnet->add_flag("--kill-miner", l->kill_miner,
                     "SIGKILL miner-0 mid-run and restart it two windows later (catch-up check)");
  localnet->add_option("--first-window", l->first_window,
                       "start at this window (another draw of the miners' pages, which depend on "
                       "the window and the uid; default: the next window)");
  localnet->add_flag("--baseline", l->baseline,
                     "afterwards, train one AdamW model on the union of the miners' pages and "
                     "plot it beside the master");
  localnet->add_option("--threads", l->threads, "threads per process");
  localnet->add_option("--miner-ranks", l->miner_ranks,
                       "data-parallel ranks per honest miner (gloo on this host)");
  localnet->add_option("--validator-ranks", l->validator_ranks,
                       "data-parallel ranks per honest validator (gloo on this host)");
  localnet->add_option("--validators", l->validators,
                       "validators (v2): the first leads, the others follow its records");
  localnet->add_option("--stakes", l->stakes, "each validator's stake in TAO, the lead's first")
      ->delimiter(',');
  localnet->add_option("--dishonest-lead", l->dishonest_lead,
                       "the lead (highest-staked validator) of a dishonest kind: admit-all, "
                       "censor or stall");
  localnet->add_option("--validator-cheat", l->validator_cheats,
                       "KIND, repeatable: one more validator of a dishonest kind (self-weight: "
                       "every weight on one miner; weight-copier: copies the consensus)");
  localnet->add_flag("--commit-reveal", l->commit_reveal,
                     "the subnet hides weights by hash commit-reveal (revealed an epoch later)");
  localnet->add_option("--device", l->device, "every neuron's device: cpu, cuda or cuda:N");
  localnet->add_option("--dtype", l->dtype, "every neuron's dtype: fp32 or bf16 (autocast)");
  localnet->add_option("--scoring", l->scoring,
                       "validator scoring: loss-delta | win-rate | gradient-distance");
  localnet->add_option("--bucket-url", l->bucket_url,
                       "S3 instead of file buckets: s3://PREFIX (each neuron uses the existing "
                       "bucket PREFIX-<name>; endpoint and keys from $BISTRO_S3_ENDPOINT, $AWS_*)");
  out.push_back({localnet, [l] { return run_localnet(*l); }});
  return out;
}

}  // namespace bistro::cli
