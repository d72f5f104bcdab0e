// bistro chain init | status | register | stake | metagraph | weights | get-weights | commit |
// commitments | advance: a subnet from the command line, on the embedded local chain (or, with the
// subtensor client, the real network).
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bistro/chain/local_chain.hpp"
#include "bistro/chain/open_chain.hpp"
#include "bistro/chain/weights.hpp"
#include "bistro/core/files.hpp"
#include "bistro/identity/ss58.hpp"
#include "commands.hpp"

namespace bistro::cli {
namespace {

struct ChainArgs {
  std::string network, wallet_path, wallet_name = "default", wallet_hotkey = "default";
  std::string hparams, data, hotkey;
  uint16_t netuid = 1;
  int mechid = 0;
  double block_time = 12.0, amount = 0;
  uint64_t blocks = 1, tempo = 0;
  std::vector<uint16_t> uids;
  std::vector<double> weights;
  bool json = false;
};

void add_network(CLI::App* c, ChainArgs& a) {
  c->add_option("--subtensor.network", a.network,
                "chain: a local chain file (file:PATH or PATH.db; default $BISTRO_HOME/chain.db)");
}
void add_netuid(CLI::App* c, ChainArgs& a) {
  c->add_option("--netuid", a.netuid, "subnet uid");
}
void add_mechid(CLI::App* c, ChainArgs& a) {
  c->add_option("--mechid", a.mechid, "the subnet's mechanism (0: its first and, often, only)")
      ->check(CLI::Range(0, 255));
}
void add_wallet(CLI::App* c, ChainArgs& a) {
  c->add_option("--wallet.path", a.wallet_path, "wallets directory (default ~/.bittensor/wallets)");
  c->add_option("--wallet.name", a.wallet_name, "wallet (coldkey) name");
  c->add_option("--wallet.hotkey", a.wallet_hotkey, "hotkey name");
}

chain::LocalChain& local(chain::Chain& c, const char* what) {
  auto* l = dynamic_cast<chain::LocalChain*>(&c);
  check(l != nullptr, "chain {} only works on a local chain", what);
  return *l;
}

std::string tao(uint64_t rao) {
  return fmt::format("{:.4f}", static_cast<double>(rao) / 1e9);
}
std::string prop(uint16_t v) {
  return fmt::format("{:.4f}", v / 65535.0);
}

void print_metagraph(const chain::Metagraph& m, bool json) {
  if (json) {
    nlohmann::json out = {
        {"netuid", m.netuid}, {"block", m.block}, {"neurons", nlohmann::json::array()}};
    for (const auto& n : m.neurons)
      out["neurons"].push_back({{"uid", n.uid},
                                {"hotkey", n.hotkey},
                                {"coldkey", n.coldkey},
                                {"stake", n.stake},
                                {"validator_permit", n.validator_permit},
                                {"active", n.active},
                                {"incentive", n.incentive},
                                {"dividends", n.dividends},
                                {"consensus", n.consensus},
                                {"trust", n.trust},
                                {"validator_trust", n.validator_trust},
                                {"emission", n.emission},
                                {"last_update", n.last_update},
                                {"block_at_registration", n.block_at_registration}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("subnet {} at block {}: {} neurons\n", m.netuid, m.block, m.neurons.size());
  fmt::print("{:>4} {:<14} {:>12} {:>3} {:>3} {:>9} {:>9} {:>9} {:>9} {:>12} {:>10}\n", "UID",
             "HOTKEY", "STAKE(τ)", "VP", "ACT", "INCENTIVE", "DIVIDENDS", "CONSENSUS", "VTRUST",
             "EMISSION(τ)", "UPDATED");
  for (const auto& n : m.neurons)
    fmt::print("{:>4} {:<14} {:>12} {:>3} {:>3} {:>9} {:>9} {:>9} {:>9} {:>12} {:>10}\n", n.uid,
               n.hotkey.substr(0, 12) + "..", tao(n.stake), n.validator_permit ? "*" : "",
               n.active ? "*" : "", prop(n.incentive), prop(n.dividends), prop(n.consensus),
               prop(n.validator_trust), tao(n.emission), n.last_update);
}

}  // namespace

std::vector<Command> add_chain_commands(CLI::App& app) {
  std::vector<Command> out;
  auto* chain_cmd = app.add_subcommand("chain", "subnet state: local chain or Bittensor");
  chain_cmd->require_subcommand(1);
  auto a = std::make_shared<ChainArgs>();

  auto* init = chain_cmd->add_subcommand("init", "create a local chain file with one subnet");
  add_network(init, *a);
  add_netuid(init, *a);
  init->add_option("--block-time", a->block_time, "seconds per block (12 on Bittensor)");
  init->add_option("--tempo", a->tempo, "blocks between epochs (default 360)");
  init->add_option("--hparams", a->hparams, "JSON file of hyperparameters (subtensor names)");
  out.push_back({init, [a] {
                   std::filesystem::path path = a->network.empty()
                                                    ? chain::default_local_chain_path()
                                                : a->network.rfind("file:", 0) == 0
                                                    ? std::filesystem::path(a->network.substr(5))
                                                    : std::filesystem::path(a->network);
                   check(a->block_time > 0, "--block-time must be positive");
                   chain::Hyperparameters h;
                   if (!a->hparams.empty()) {
                     auto j = nlohmann::json::parse(read_file(a->hparams), nullptr, false);
                     check(!j.is_discarded(), "{}: not valid JSON", a->hparams);
                     h = chain::hyperparameters_from_json(j, a->hparams);
                   }
                   if (a->tempo) {
                     check(a->tempo <= 65535, "--tempo must fit in u16");
                     h.tempo = static_cast<uint16_t>(a->tempo);
                   }
                   chain::LocalChain::create(
                       path, {.block_time_ms = static_cast<uint64_t>(a->block_time * 1000)});
                   chain::LocalChain(path).create_subnet(a->netuid, h);
                   fmt::print("local chain {} with subnet {} (tempo {}, block time {} s)\n",
                              path.string(), a->netuid, h.tempo, a->block_time);
                   return 0;
                 }});

  auto* status = chain_cmd->add_subcommand(
      "status", "block, hash, seconds per block and subnet hyperparameters");
  add_network(status, *a);
  add_netuid(status, *a);
  out.push_back({status, [a] {
                   auto c = chain::open_chain(a->network);
                   uint64_t b = c->block();
                   fmt::print("block {} hash 0x{}; {:.3f} s a block\n", b, to_hex(c->block_hash(b)),
                              c->seconds_per_block());
                   fmt::print("subnet {} hyperparameters:\n{}\n", a->netuid,
                              chain::to_json(c->hyperparameters(a->netuid)).dump(2));
                   return 0;
                 }});

  auto* reg = chain_cmd->add_subcommand("register", "register the wallet's hotkey on a subnet");
  add_network(reg, *a);
  add_netuid(reg, *a);
  add_wallet(reg, *a);
  out.push_back({reg, [a] {
                   auto c = chain::open_chain(a->network);
                   auto cold =
                       wallet_signer(a->wallet_path, a->wallet_name, a->wallet_hotkey, true);
                   auto hot =
                       wallet_signer(a->wallet_path, a->wallet_name, a->wallet_hotkey, false);
                   const std::string hk = ss58_encode(hot->public_key());
                   fmt::print("registered {} as uid {} on subnet {}\n", hk,
                              c->register_neuron(a->netuid, *cold, hk), a->netuid);
                   return 0;
                 }});

  auto* stake = chain_cmd->add_subcommand("stake", "add stake to a hotkey (local chain)");
  add_network(stake, *a);
  add_wallet(stake, *a);
  stake->add_option("--hotkey", a->hotkey, "SS58 hotkey (default: the wallet's hotkey)");
  stake->add_option("--amount", a->amount, "TAO")->required();
  out.push_back(
      {stake, [a] {
         auto c = chain::open_chain(a->network);
         check(a->amount > 0 && a->amount < 1e9, "--amount must be in (0, 1e9) TAO");
         std::string hk = a->hotkey, cold;
         if (hk.empty())
           hk = ss58_encode(wallet_signer(a->wallet_path, a->wallet_name, a->wallet_hotkey, false)
                                ->public_key());
         cold = ss58_encode(
             wallet_signer(a->wallet_path, a->wallet_name, a->wallet_hotkey, true)->public_key());
         local(*c, "stake").add_stake(hk, cold, static_cast<uint64_t>(a->amount * 1e9));
         fmt::print("staked {} τ to {}\n", a->amount, hk);
         return 0;
       }});

  auto* meta = chain_cmd->add_subcommand("metagraph", "the subnet's neurons as a table");
  add_network(meta, *a);
  add_netuid(meta, *a);
  meta->add_flag("--json", a->json, "print JSON");
  out.push_back({meta, [a] {
                   print_metagraph(chain::open_chain(a->network)->metagraph(a->netuid), a->json);
                   return 0;
                 }});

  auto* weights = chain_cmd->add_subcommand("weights", "set weights from the wallet's hotkey");
  add_network(weights, *a);
  add_netuid(weights, *a);
  add_wallet(weights, *a);
  add_mechid(weights, *a);
  weights->add_option("--uids", a->uids, "uids")->required()->delimiter(',');
  weights->add_option("--weights", a->weights, "scores (any scale)")->required()->delimiter(',');
  out.push_back({weights, [a] {
                   check(a->uids.size() == a->weights.size(),
                         "--uids and --weights have different lengths ({} vs {})", a->uids.size(),
                         a->weights.size());
                   uint16_t top = 0;
                   for (uint16_t u : a->uids) top = std::max(top, u);
                   std::vector<double> scores(top + 1u, 0.0);
                   for (size_t k = 0; k < a->uids.size(); ++k) scores[a->uids[k]] = a->weights[k];
                   auto w = chain::weights_from_scores(scores);
                   check(!w.uids.empty(), "every weight is zero: nothing to set");
                   auto c = chain::open_chain(a->network);
                   auto hot =
                       wallet_signer(a->wallet_path, a->wallet_name, a->wallet_hotkey, false);
                   c->select_mechanism(a->netuid, static_cast<uint8_t>(a->mechid));
                   c->set_weights(a->netuid, *hot, w.uids, w.values,
                                  c->hyperparameters(a->netuid).weights_version_key);
                   fmt::print("set {} weights on subnet {}{}\n", w.uids.size(), a->netuid,
                              a->mechid ? fmt::format(" mechanism {}", a->mechid) : "");
                   return 0;
                 }});

  auto* get_weights = chain_cmd->add_subcommand(
      "get-weights", "every uid's weights as the chain stores them (u16 values)");
  add_network(get_weights, *a);
  add_netuid(get_weights, *a);
  add_mechid(get_weights, *a);
  get_weights->add_flag("--json", a->json, "print JSON: {uid: [[dest, value], ...]}");
  out.push_back({get_weights, [a] {
                   auto c = chain::open_chain(a->network);
                   c->select_mechanism(a->netuid, static_cast<uint8_t>(a->mechid));
                   const auto rows = c->weights(a->netuid);
                   nlohmann::json j = nlohmann::json::object();
                   for (size_t uid = 0; uid < rows.size(); ++uid) {
                     if (rows[uid].empty()) continue;
                     j[std::to_string(uid)] = rows[uid];
                     if (!a->json) {
                       fmt::print("uid {}:", uid);
                       for (auto [dest, v] : rows[uid]) fmt::print(" {}={}", dest, v);
                       fmt::print("\n");
                     }
                   }
                   if (a->json) fmt::print("{}\n", j.dump());
                   return 0;
                 }});

  auto* commit = chain_cmd->add_subcommand("commit", "publish a commitment (e.g. a bucket)");
  add_network(commit, *a);
  add_netuid(commit, *a);
  add_wallet(commit, *a);
  commit->add_option("--data", a->data, "the commitment text")->required();
  out.push_back({commit, [a] {
                   auto c = chain::open_chain(a->network);
                   auto hot =
                       wallet_signer(a->wallet_path, a->wallet_name, a->wallet_hotkey, false);
                   c->set_commitment(a->netuid, *hot, a->data);
                   fmt::print("committed {} bytes on subnet {}\n", a->data.size(), a->netuid);
                   return 0;
                 }});

  auto* commits = chain_cmd->add_subcommand("commitments", "every commitment on a subnet");
  add_network(commits, *a);
  add_netuid(commits, *a);
  out.push_back({commits, [a] {
                   for (auto& [hk, data] : chain::open_chain(a->network)->commitments(a->netuid))
                     fmt::print("{} {}\n", hk, data);
                   return 0;
                 }});

  auto* advance = chain_cmd->add_subcommand("advance", "move a local chain's clock forward");
  add_network(advance, *a);
  advance->add_option("--blocks", a->blocks, "blocks to skip");
  out.push_back({advance, [a] {
                   auto c = chain::open_chain(a->network);
                   local(*c, "advance").advance(a->blocks);
                   fmt::print("block {}\n", c->block());
                   return 0;
                 }});
  return out;
}

}  // namespace bistro::cli
