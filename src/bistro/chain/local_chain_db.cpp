#include "bistro/chain/local_chain_db.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace bistro::chain::sql {

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    int code = sqlite3_errcode(db);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
      fail("local chain: the chain file is locked by another process for too long ({})", msg);
    fail("local chain: {}", msg);
  }
}

std::string encode_row(const SparseRow& row) {
  std::string out;
  for (auto [j, v] : row) {
    for (uint16_t x : {j, v}) {
      out.push_back(static_cast<char>(x & 0xff));
      out.push_back(static_cast<char>(x >> 8));
    }
  }
  return out;
}

SparseRow decode_row(const std::string& blob, const char* what) {
  check(blob.size() % 4 == 0, "local chain: corrupt {} row ({} bytes)", what, blob.size());
  SparseRow row;
  auto u16 = [&](size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(blob[at]) |
                                 (static_cast<uint8_t>(blob[at + 1]) << 8));
  };
  for (size_t k = 0; k < blob.size(); k += 4) row.emplace_back(u16(k), u16(k + 2));
  return row;
}

std::vector<NeuronRow> load_neurons(sqlite3* db, uint16_t netuid) {
  Stmt s(
      db,
      "SELECT n.uid, n.hotkey, n.coldkey, n.block_at_registration, n.last_update, "
      "n.validator_permit, n.active, n.incentive, n.dividends, n.consensus, n.trust, "
      "n.validator_trust, n.emission, n.weights, n.bonds, COALESCE(s.amount, 0) "
      "FROM neurons n LEFT JOIN stake s ON s.hotkey = n.hotkey WHERE n.netuid = ? ORDER BY n.uid");
  s.bind(1, netuid);
  std::vector<NeuronRow> out;
  while (s.step()) {
    NeuronRow r;
    r.n.uid = static_cast<uint16_t>(s.i64(0));
    check(r.n.uid == out.size(), "local chain: corrupt neurons table (uid {} out of sequence)",
          r.n.uid);
    r.n.hotkey = s.str(1);
    r.n.coldkey = s.str(2);
    r.n.block_at_registration = static_cast<uint64_t>(s.i64(3));
    r.n.last_update = static_cast<uint64_t>(s.i64(4));
    r.n.validator_permit = s.i64(5) != 0;
    r.n.active = s.i64(6) != 0;
    r.n.incentive = static_cast<uint16_t>(s.i64(7));
    r.n.dividends = static_cast<uint16_t>(s.i64(8));
    r.n.consensus = static_cast<uint16_t>(s.i64(9));
    r.n.trust = static_cast<uint16_t>(s.i64(10));
    r.n.validator_trust = static_cast<uint16_t>(s.i64(11));
    r.n.emission = static_cast<uint64_t>(s.i64(12));
    r.weights = decode_row(s.str(13), "weights");
    r.bonds = decode_row(s.str(14), "bonds");
    r.n.stake = static_cast<uint64_t>(s.i64(15));
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<SubnetRow> load_subnet(sqlite3* db, uint16_t netuid) {
  Stmt s(db, "SELECT hyperparameters, synced_block, last_step_block FROM subnets WHERE netuid = ?");
  s.bind(1, netuid);
  if (!s.step()) return std::nullopt;
  SubnetRow r;
  auto j = nlohmann::json::parse(s.str(0), nullptr, false);
  check(!j.is_discarded(), "local chain: corrupt hyperparameters for subnet {}", netuid);
  r.h = hyperparameters_from_json(j, fmt::format("local chain subnet {}", netuid));
  r.synced_block = static_cast<uint64_t>(s.i64(1));
  r.last_step_block = static_cast<uint64_t>(s.i64(2));
  return r;
}

std::string meta(sqlite3* db, const char* key) {
  Stmt s(db, "SELECT value FROM meta WHERE key = ?");
  s.text(1, key);
  if (!s.step()) fail("local chain: not a bistro chain file (no '{}' entry)", key);
  return s.str(0);
}

void set_meta(sqlite3* db, const char* key, const std::string& value) {
  Stmt s(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  s.text(1, key).text(2, value).run();
}

sqlite3* open_db(const std::filesystem::path& path, bool create) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    fail("local chain {}: cannot open: {}", path.string(), msg);
  }
  sqlite3_busy_timeout(db, 30'000);
  try {
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON");
  } catch (const Error& e) {
    sqlite3_close(db);
    fail("local chain {}: {}", path.string(), e.what());
  }
  return db;
}

// Hash commits of weights (commit-reveal), oldest first by seq; added after the first format, so

}  // namespace bistro::chain::sql
