#include "bistro/chain/local_chain.hpp"

#include <sodium.h>
#include <sqlite3.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "bistro/chain/local_chain_db.hpp"
#include "bistro/chain/weights.hpp"
#include "bistro/chain/yuma.hpp"
#include "bistro/identity/ss58.hpp"

namespace bistro::chain {
namespace {

using sql::decode_row;
using sql::encode_row;
using sql::exec;
using sql::load_neurons;
using sql::load_subnet;
using sql::meta;
using sql::NeuronRow;
using sql::open_db;
using sql::set_meta;
using sql::Stmt;
using sql::SubnetRow;
using sql::Tx;

constexpr const char* kFormat = "bistro-local-chain/1";
constexpr size_t kMaxEpochsPerSync = 1000;  // a chain left idle for ages skips older epochs

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The first epoch block after `block` for this subnet.
uint64_t next_epoch_block(uint64_t block, uint16_t netuid, uint64_t tempo) {
  uint64_t period = tempo + 1;
  uint64_t b = block + 1;
  uint64_t r = (b + netuid + 1) % period;
  return r == 0 ? b : b + (period - r);
}

// Hash commits of weights (commit-reveal), oldest first by seq; added after the first format, so
// an older chain file gains it when opened.
constexpr const char* kCommitsTable =
    "CREATE TABLE IF NOT EXISTS weight_commits(seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, hash BLOB NOT NULL, "
    "commit_block INTEGER NOT NULL)";

std::string hotkey_of(const Signer& s) {
  return ss58_encode(s.public_key());
}

}  // namespace

void LocalChain::create(const std::filesystem::path& path, const LocalChainOptions& options) {
  check(!std::filesystem::exists(path), "local chain {}: already exists", path.string());
  check(options.block_time_ms > 0, "local chain: block time must be positive");
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  // Build under a temporary name and rename: a crash never leaves half a chain file.
  std::filesystem::path tmp = path;
  tmp += ".creating";
  std::filesystem::remove(tmp);
  sqlite3* db = open_db(tmp, true);
  try {
    exec(db, R"sql(
      CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE subnets(netuid INTEGER PRIMARY KEY, hyperparameters TEXT NOT NULL,
        created_block INTEGER NOT NULL, synced_block INTEGER NOT NULL,
        last_step_block INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE neurons(netuid INTEGER NOT NULL REFERENCES subnets(netuid), uid INTEGER NOT NULL,
        hotkey TEXT NOT NULL, coldkey TEXT NOT NULL, block_at_registration INTEGER NOT NULL,
        last_update INTEGER NOT NULL, validator_permit INTEGER NOT NULL DEFAULT 0,
        active INTEGER NOT NULL DEFAULT 1, incentive INTEGER NOT NULL DEFAULT 0,
        dividends INTEGER NOT NULL DEFAULT 0, consensus INTEGER NOT NULL DEFAULT 0,
        trust INTEGER NOT NULL DEFAULT 0, validator_trust INTEGER NOT NULL DEFAULT 0,
        emission INTEGER NOT NULL DEFAULT 0, weights BLOB NOT NULL DEFAULT x'',
        bonds BLOB NOT NULL DEFAULT x'', PRIMARY KEY(netuid, uid), UNIQUE(netuid, hotkey));
      CREATE TABLE stake(hotkey TEXT PRIMARY KEY, coldkey TEXT NOT NULL, amount INTEGER NOT NULL);
      CREATE TABLE commitments(netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, data BLOB NOT NULL,
        block INTEGER NOT NULL, PRIMARY KEY(netuid, hotkey));
      CREATE TABLE epochs(netuid INTEGER NOT NULL, block INTEGER NOT NULL, result TEXT NOT NULL,
        PRIMARY KEY(netuid, block));
    )sql");
    exec(db, kCommitsTable);
    ensure_sodium();
    uint64_t created = now_ms();
    uint8_t seed[16];
    for (int i = 0; i < 8; ++i) seed[i] = static_cast<uint8_t>(options.genesis_seed >> (8 * i));
    for (int i = 0; i < 8; ++i) seed[8 + i] = static_cast<uint8_t>(created >> (8 * i));
    BlockHash genesis;
    crypto_generichash(genesis.data(), genesis.size(), seed, sizeof seed, nullptr, 0);
    set_meta(db, "format", kFormat);
    set_meta(db, "genesis_ms", std::to_string(created));
    set_meta(db, "block_time_ms", std::to_string(options.block_time_ms));
    set_meta(db, "genesis_hash", to_hex(genesis));
    exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (...) {
    sqlite3_close(db);
    std::filesystem::remove(tmp);
    throw;
  }
  sqlite3_close(db);
  std::filesystem::remove(tmp.string() + "-wal");
  std::filesystem::remove(tmp.string() + "-shm");
  std::filesystem::rename(tmp, path);
}

LocalChain::LocalChain(const std::filesystem::path& path) : path_(path) {
  check(std::filesystem::exists(path),
        "local chain {}: no such file (create it with `bistro chain init`)", path.string());
  db_ = open_db(path, false);
  try {
    std::string format = meta(db_, "format");
    check(format == kFormat, "local chain {}: unsupported format '{}' (expected {})", path.string(),
          format, kFormat);
    exec(db_, kCommitsTable);
  } catch (const Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    std::string what = e.what();
    if (what.find(path.string()) == std::string::npos)
      fail("local chain {}: {}", path.string(), what);
    throw;
  }
}

LocalChain::~LocalChain() {
  sqlite3_close(db_);
}

uint64_t LocalChain::now_block() {
  uint64_t genesis = std::stoull(meta(db_, "genesis_ms"));
  uint64_t bt = std::stoull(meta(db_, "block_time_ms"));
  uint64_t now = now_ms();
  return now > genesis ? (now - genesis) / bt : 0;
}

uint64_t LocalChain::block() {
  std::lock_guard lock(mu_);
  return now_block();
}

double LocalChain::seconds_until(uint64_t block) {
  std::lock_guard lock(mu_);
  const double genesis = std::stod(meta(db_, "genesis_ms"));
  const double bt = std::stod(meta(db_, "block_time_ms"));
  return (genesis + static_cast<double>(block) * bt - static_cast<double>(now_ms())) / 1000.0;
}

uint64_t LocalChain::block_time_ms() {
  std::lock_guard lock(mu_);
  return std::stoull(meta(db_, "block_time_ms"));
}

BlockHash LocalChain::block_hash(uint64_t block) {
  std::lock_guard lock(mu_);
  const uint64_t now = now_block();
  check(block <= now, "local chain: block {} is in the future (now {})", block, now);
  auto genesis = from_hex<32>(meta(db_, "genesis_hash"), "local chain genesis hash");
  uint8_t input[40];
  std::copy(genesis.begin(), genesis.end(), input);
  for (int i = 0; i < 8; ++i) input[32 + i] = static_cast<uint8_t>(block >> (8 * i));
  BlockHash out;
  ensure_sodium();
  crypto_generichash(out.data(), out.size(), input, sizeof input, nullptr, 0);
  return out;
}

void LocalChain::advance(uint64_t blocks) {
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  uint64_t genesis = std::stoull(meta(db_, "genesis_ms"));
  uint64_t shift = blocks * std::stoull(meta(db_, "block_time_ms"));
  check(shift <= genesis, "local chain: cannot advance {} blocks", blocks);
  set_meta(db_, "genesis_ms", std::to_string(genesis - shift));
  tx.commit();
}

void LocalChain::require_subnet(uint16_t netuid) {
  if (!load_subnet(db_, netuid))
    throw ChainError("SubnetNotExists",
                     fmt::format("subnet {} does not exist on {}", netuid, path_.string()));
}

void LocalChain::sync(uint16_t netuid) {
  auto subnet = load_subnet(db_, netuid);
  if (!subnet) return;
  const uint64_t now = now_block();
  const Hyperparameters& h = subnet->h;
  uint64_t b = next_epoch_block(subnet->synced_block, netuid, h.tempo);
  if (b > now) return;
  // Skip epochs beyond the most recent kMaxEpochsPerSync (an idle chain catching up).
  uint64_t period = uint64_t{h.tempo} + 1;
  uint64_t pending = (now - b) / period + 1;
  if (pending > kMaxEpochsPerSync) b += (pending - kMaxEpochsPerSync) * period;
  uint64_t last_step = subnet->last_step_block;
  for (; b <= now; b += period) {
    auto rows = load_neurons(db_, netuid);
    if (rows.empty()) {
      last_step = b;
      continue;
    }
    EpochParams p;
    p.block = b;
    p.tempo = h.tempo;
    p.activity_cutoff = h.activity_cutoff;
    p.max_validators = h.max_validators;
    p.kappa = h.kappa;
    p.bonds_penalty = h.bonds_penalty;
    p.bonds_moving_average = h.bonds_moving_average;
    p.yuma3 = h.yuma3;
    p.liquid_alpha = h.liquid_alpha;
    p.alpha_low = h.alpha_low;
    p.alpha_high = h.alpha_high;
    p.alpha_sigmoid_steepness = h.alpha_sigmoid_steepness;
    p.stake_threshold = h.stake_threshold;
    p.last_mechanism_step_block = last_step;
    p.emission = h.emission_per_block * period;
    // The subnet owner is uid 0, the first hotkey registered: subtensor registers the owner's
    // hotkey at uid 0 when it creates a subnet. Its self-weight counts (the pay a validator holds
    // back is weighted to it; gauntlet.hpp, GauntletParams::burn_uid).
    p.owner_uid = 0;
    EpochState st;
    for (auto& r : rows) {
      st.stake.push_back(r.n.stake);
      st.last_update.push_back(r.n.last_update);
      st.block_at_registration.push_back(r.n.block_at_registration);
      st.validator_permit.push_back(r.n.validator_permit);
      st.weights.push_back(r.weights);
      st.bonds.push_back(r.bonds);
    }
    EpochResult res = run_epoch(p, st);
    Stmt u(db_,
           "UPDATE neurons SET active=?, validator_permit=?, incentive=?, dividends=?, "
           "consensus=?, trust=?, validator_trust=?, emission=?, bonds=CASE WHEN ? THEN ? ELSE "
           "bonds END WHERE netuid=? AND uid=?");
    for (size_t i = 0; i < rows.size(); ++i) {
      u.reset();
      u.bind(1, res.active[i]).bind(2, res.validator_permit[i]).bind(3, res.incentive[i]);
      u.bind(4, res.dividends[i]).bind(5, res.consensus[i]).bind(6, res.trust[i]);
      u.bind(7, res.validator_trust[i]).bind(8, static_cast<int64_t>(res.emission[i]));
      u.bind(9, res.bonds[i].has_value()).bind(10, res.bonds[i] ? encode_row(*res.bonds[i]) : "");
      u.bind(11, netuid).bind(12, static_cast<int64_t>(i)).run();
    }
    nlohmann::json record = {
        {"incentive", res.incentive}, {"dividends", res.dividends}, {"emission", res.emission}};
    Stmt ins(db_, "INSERT OR REPLACE INTO epochs(netuid, block, result) VALUES(?, ?, ?)");
    ins.bind(1, netuid).bind(2, static_cast<int64_t>(b)).text(3, record.dump()).run();
    last_step = b;
  }
  Stmt s(db_, "UPDATE subnets SET synced_block = ?, last_step_block = ? WHERE netuid = ?");
  s.bind(1, static_cast<int64_t>(now))
      .bind(2, static_cast<int64_t>(last_step))
      .bind(3, netuid)
      .run();
}

void LocalChain::create_subnet(uint16_t netuid, const Hyperparameters& h) {
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  if (load_subnet(db_, netuid))
    throw ChainError("SubnetExists", fmt::format("subnet {} already exists", netuid));
  uint64_t now = now_block();
  Stmt s(db_,
         "INSERT INTO subnets(netuid, hyperparameters, created_block, synced_block) "
         "VALUES(?, ?, ?, ?)");
  s.bind(1, netuid).text(2, to_json(h).dump()).bind(3, static_cast<int64_t>(now));
  s.bind(4, static_cast<int64_t>(now)).run();
  tx.commit();
}

void LocalChain::set_hyperparameters(uint16_t netuid, const Hyperparameters& h) {
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  require_subnet(netuid);
  sync(netuid);
  Stmt s(db_, "UPDATE subnets SET hyperparameters = ? WHERE netuid = ?");
  s.text(1, to_json(h).dump()).bind(2, netuid).run();
  tx.commit();
}

std::vector<uint16_t> LocalChain::subnets() {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT netuid FROM subnets ORDER BY netuid");
  std::vector<uint16_t> out;
  while (s.step()) out.push_back(static_cast<uint16_t>(s.i64(0)));
  return out;
}

Hyperparameters LocalChain::hyperparameters(uint16_t netuid) {
  std::lock_guard lock(mu_);
  auto subnet = load_subnet(db_, netuid);
  if (!subnet) throw ChainError("SubnetNotExists", fmt::format("subnet {} does not exist", netuid));
  return subnet->h;
}

std::vector<SparseRow> LocalChain::weights(uint16_t netuid) {
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  require_subnet(netuid);
  std::vector<SparseRow> out;
  for (auto& r : load_neurons(db_, netuid)) out.push_back(std::move(r.weights));
  tx.commit();
  return out;
}

Metagraph LocalChain::metagraph(uint16_t netuid) {
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  require_subnet(netuid);
  sync(netuid);
  Metagraph m;
  m.netuid = netuid;
  m.block = now_block();
  for (auto& r : load_neurons(db_, netuid)) m.neurons.push_back(std::move(r.n));
  tx.commit();
  return m;
}

uint16_t LocalChain::register_neuron(uint16_t netuid, const Signer& coldkey,
                                     const std::string& hotkey) {
  ss58_decode(hotkey);  // throws a clear error for a malformed address
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  require_subnet(netuid);
  sync(netuid);
  const Hyperparameters h = load_subnet(db_, netuid)->h;
  auto rows = load_neurons(db_, netuid);
  for (auto& r : rows)
    if (r.n.hotkey == hotkey) return r.n.uid;  // already registered: idempotent
  const uint64_t now = now_block();
  const std::string cold = hotkey_of(coldkey);
  uint16_t uid;
  if (rows.size() < h.max_uids) {
    uid = static_cast<uint16_t>(rows.size());
    Stmt s(db_,
           "INSERT INTO neurons(netuid, uid, hotkey, coldkey, block_at_registration, last_update) "
           "VALUES(?, ?, ?, ?, ?, ?)");
    s.bind(1, netuid).bind(2, uid).text(3, hotkey).text(4, cold);
    s.bind(5, static_cast<int64_t>(now)).bind(6, static_cast<int64_t>(now)).run();
  } else {
    // Replace the lowest-emission neuron, non-immune ones first; ties: earliest registration,
    // then lowest uid (subtensor's get_neuron_to_prune).
    const NeuronRow* best = nullptr;
    bool best_immune = true;
    for (auto& r : rows) {
      bool immune = now - std::min(now, r.n.block_at_registration) < h.immunity_period;
      auto key = std::tuple(immune, r.n.emission, r.n.block_at_registration, r.n.uid);
      if (!best || key < std::tuple(best_immune, best->n.emission, best->n.block_at_registration,
                                    best->n.uid)) {
        best = &r;
        best_immune = immune;
      }
    }
    uid = best->n.uid;
    Stmt s(db_,
           "UPDATE neurons SET hotkey=?, coldkey=?, block_at_registration=?, last_update=?, "
           "validator_permit=0, active=1, incentive=0, dividends=0, consensus=0, trust=0, "
           "validator_trust=0, emission=0, weights=x'', bonds=x'' WHERE netuid=? AND uid=?");
    s.text(1, hotkey).text(2, cold).bind(3, static_cast<int64_t>(now));
    s.bind(4, static_cast<int64_t>(now)).bind(5, netuid).bind(6, uid).run();
  }
  tx.commit();
  return uid;
}

void LocalChain::set_weights(uint16_t netuid, const Signer& signer,
                             const std::vector<uint16_t>& uids, const std::vector<uint16_t>& values,
                             uint64_t version_key) {
  if (hyperparameters(netuid).commit_reveal)
    return commit_reveal_weights(netuid, signer, uids, values, version_key);
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  require_subnet(netuid);
  sync(netuid);
  store_weights(netuid, hotkey_of(signer), uids, values, version_key, false);
  tx.commit();
}

void LocalChain::store_weights(uint16_t netuid, const std::string& hotkey,
                               const std::vector<uint16_t>& uids,
                               const std::vector<uint16_t>& values, uint64_t version_key,
                               bool revealed) {
  const Hyperparameters h = load_subnet(db_, netuid)->h;
  auto rows = load_neurons(db_, netuid);
  Caller caller;
  for (auto& r : rows)
    if (r.n.hotkey == hotkey) {
      caller.uid = r.n.uid;
      caller.validator_permit = r.n.validator_permit;
      caller.last_update = r.n.last_update;
    }
  // A reveal is not rate limited, and the commit already counted as the uid's activity.
  WeightRules rules{.subnet_n = static_cast<uint16_t>(rows.size()),
                    .min_allowed_weights = h.min_allowed_weights,
                    .max_weight_limit = h.max_weight_limit,
                    .version_key = h.weights_version_key,
                    .rate_limit = revealed ? 0 : h.weights_rate_limit};
  const uint64_t now = now_block();
  if (auto err = check_set_weights(rules, caller, uids, values, version_key, now))
    throw ChainError(*err,
                     fmt::format("{} by {} on subnet {} at block {}",
                                 revealed ? "reveal_weights" : "set_weights", hotkey, netuid, now));
  SparseRow row;
  std::vector<uint16_t> up = max_upscale(values);
  for (size_t k = 0; k < uids.size(); ++k) row.emplace_back(uids[k], up[k]);
  Stmt s(db_, "UPDATE neurons SET weights = ?, last_update = ? WHERE netuid = ? AND uid = ?");
  s.bind(1, encode_row(row))
      .bind(2, static_cast<int64_t>(revealed ? caller.last_update : now))
      .bind(3, netuid)
      .bind(4, *caller.uid);
  s.run();
}

LocalChain::Commits LocalChain::commits_of(uint16_t netuid, const std::string& hotkey,
                                           const char* call) {
  require_subnet(netuid);
  sync(netuid);
  Commits c;
  c.h = load_subnet(db_, netuid)->h;
  c.now = now_block();
  c.what = fmt::format("{} by {} on subnet {} at block {}", call, hotkey, netuid, c.now);
  if (!c.h.commit_reveal) throw ChainError("CommitRevealDisabled", c.what);
  const uint64_t epoch = epoch_index(netuid, c.h.tempo, c.now);
  Stmt q(db_,
         "SELECT seq, hash, commit_block FROM weight_commits WHERE netuid = ? AND hotkey = ? "
         "ORDER BY seq");
  q.bind(1, netuid).text(2, hotkey);
  while (q.step()) {
    StoredCommit sc{q.i64(0), q.str(1), static_cast<uint64_t>(q.i64(2))};
    const uint64_t reveal_epoch = epoch_index(netuid, c.h.tempo, sc.block) + c.h.reveal_period;
    (epoch > reveal_epoch ? c.expired : c.live).push_back(std::move(sc));
  }
  return c;
}

void LocalChain::drop_commits(uint16_t netuid, const std::string& hotkey, int64_t through_seq) {
  Stmt(db_, "DELETE FROM weight_commits WHERE netuid = ? AND hotkey = ? AND seq <= ?")
      .bind(1, netuid)
      .text(2, hotkey)
      .bind(3, through_seq)
      .run();
}

// A refused call changes nothing (the transaction rolls back), as a failed extrinsic on subtensor.
void LocalChain::commit_weights(uint16_t netuid, const Signer& signer, const std::string& hash) {
  const std::string hotkey = hotkey_of(signer);
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  const Commits c = commits_of(netuid, hotkey, "commit_weights");
  if (hash.size() != 32) throw ChainError("InvalidCommitHash", c.what + ": not 32 bytes");
  std::optional<NeuronRow> me;
  for (auto& r : load_neurons(db_, netuid))
    if (r.n.hotkey == hotkey) me = r;
  if (!me) throw ChainError("HotKeyNotRegisteredInSubNet", c.what);
  if (me->n.last_update != 0 && c.now - std::min(c.now, me->n.last_update) < c.h.weights_rate_limit)
    throw ChainError("CommittingWeightsTooFast", c.what);
  if (c.live.size() >= 10) throw ChainError("TooManyUnrevealedCommits", c.what);
  if (!c.expired.empty()) drop_commits(netuid, hotkey, c.expired.back().seq);
  Stmt(db_, "INSERT INTO weight_commits(netuid, hotkey, hash, commit_block) VALUES(?, ?, ?, ?)")
      .bind(1, netuid)
      .text(2, hotkey)
      .bind(3, hash)
      .bind(4, static_cast<int64_t>(c.now))
      .run();
  Stmt(db_, "UPDATE neurons SET last_update = ? WHERE netuid = ? AND uid = ?")
      .bind(1, static_cast<int64_t>(c.now))
      .bind(2, netuid)
      .bind(3, me->n.uid)
      .run();
  tx.commit();
}

void LocalChain::reveal_weights(uint16_t netuid, const Signer& signer,
                                const std::vector<uint16_t>& uids,
                                const std::vector<uint16_t>& values,
                                const std::vector<uint16_t>& salt, uint64_t version_key) {
  const std::string hotkey = hotkey_of(signer);
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  const Commits c = commits_of(netuid, hotkey, "reveal_weights");
  if (c.live.empty() && c.expired.empty()) throw ChainError("NoWeightsCommitFound", c.what);
  const std::string hash =
      weights_commit_hash(signer.public_key(), netuid, uids, values, salt, version_key);
  auto same = [&](const StoredCommit& sc) { return sc.hash == hash; };
  auto it = std::find_if(c.live.begin(), c.live.end(), same);
  if (it == c.live.end())
    throw ChainError(std::any_of(c.expired.begin(), c.expired.end(), same) ? "ExpiredWeightCommit"
                     : c.live.empty()                                      ? "NoWeightsCommitFound"
                                      : "InvalidRevealCommitHashNotMatch",
                     c.what);
  const uint64_t reveal_epoch = epoch_index(netuid, c.h.tempo, it->block) + c.h.reveal_period;
  if (epoch_index(netuid, c.h.tempo, c.now) != reveal_epoch)
    throw ChainError("RevealTooEarly",
                     fmt::format("{}: committed at block {}, revealed in epoch {}", c.what,
                                 it->block, reveal_epoch));
  drop_commits(netuid, hotkey, it->seq);  // it and every earlier one are used up
  store_weights(netuid, hotkey, uids, values, version_key, true);
  tx.commit();
}

std::filesystem::path LocalChain::reveals_dir() {
  auto dir = path_;
  dir += ".reveals";
  return dir;
}

void LocalChain::set_commitment(uint16_t netuid, const Signer& signer, const std::string& data) {
  const std::string hotkey = hotkey_of(signer);
  if (data.size() > kMaxCommitmentBytes)
    throw ChainError(
        "TooManyFieldsInCommitmentInfo",
        fmt::format("commitment of {} bytes (at most {})", data.size(), kMaxCommitmentBytes));
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  require_subnet(netuid);
  sync(netuid);
  Stmt q(db_, "SELECT 1 FROM neurons WHERE netuid = ? AND hotkey = ?");
  q.bind(1, netuid).text(2, hotkey);
  if (!q.step())
    throw ChainError("AccountNotAllowedCommit",
                     fmt::format("{} is not registered on subnet {}", hotkey, netuid));
  Stmt s(db_, "INSERT OR REPLACE INTO commitments(netuid, hotkey, data, block) VALUES(?, ?, ?, ?)");
  s.bind(1, netuid).text(2, hotkey).bind(3, data).bind(4, static_cast<int64_t>(now_block())).run();
  tx.commit();
}

std::map<std::string, std::string> LocalChain::commitments(uint16_t netuid) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT hotkey, data FROM commitments WHERE netuid = ?");
  s.bind(1, netuid);
  std::map<std::string, std::string> out;
  while (s.step()) out[s.str(0)] = s.str(1);
  return out;
}

void LocalChain::add_stake(const std::string& hotkey, const std::string& coldkey, uint64_t amount) {
  ss58_decode(hotkey);
  ss58_decode(coldkey);
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  Stmt q(db_, "SELECT COALESCE(SUM(amount), 0) FROM stake");
  q.step();
  // Keep the total inside I64F64's integer range, where the epoch normalises stake.
  check(static_cast<uint64_t>(q.i64(0)) + amount < (uint64_t{1} << 62) &&
            amount < (uint64_t{1} << 62),
        "local chain: stake of {} rao is too large", amount);
  Stmt s(db_,
         "INSERT INTO stake(hotkey, coldkey, amount) VALUES(?, ?, ?) "
         "ON CONFLICT(hotkey) DO UPDATE SET amount = amount + excluded.amount");
  s.text(1, hotkey).text(2, coldkey).bind(3, static_cast<int64_t>(amount)).run();
  tx.commit();
}

std::vector<EpochRecord> LocalChain::epochs(uint16_t netuid, uint64_t since) {
  std::lock_guard lock(mu_);
  Tx tx(db_, true);
  sync(netuid);
  Stmt s(db_, "SELECT block, result FROM epochs WHERE netuid = ? AND block >= ? ORDER BY block");
  s.bind(1, netuid).bind(2, static_cast<int64_t>(since));
  std::vector<EpochRecord> out;
  while (s.step()) {
    EpochRecord r;
    r.block = static_cast<uint64_t>(s.i64(0));
    auto j = nlohmann::json::parse(s.str(1), nullptr, false);
    check(j.is_object(), "local chain: corrupt epoch record at block {}", r.block);
    r.incentive = j.value("incentive", std::vector<uint16_t>{});
    r.dividends = j.value("dividends", std::vector<uint16_t>{});
    r.emission = j.value("emission", std::vector<uint64_t>{});
    out.push_back(std::move(r));
  }
  tx.commit();
  return out;
}

}  // namespace bistro::chain
