// The local chain's SQLite layer (local_chain.hpp): prepared statements, transactions, the
// neurons' and subnets' rows, and the file's meta entries. Internal to chain/local_chain*.cpp.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bistro/chain/chain.hpp"
#include "bistro/chain/yuma.hpp"
#include "bistro/core/error.hpp"

namespace bistro::chain::sql {

// A prepared statement; binds by position (1-based), steps, reads columns.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      fail("local chain: cannot prepare statement: {}", sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, int64_t v) { return ok(sqlite3_bind_int64(s_, i, v)); }
  Stmt& bind(int i, const std::string& v) {
    return ok(sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Stmt& text(int i, const std::string& v) {
    return ok(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  // True while there is a row.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(rc);
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  void run() {
    while (step()) {
    }
  }
  int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
  std::string str(int c) {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }

 private:
  Stmt& ok(int rc) {
    if (rc != SQLITE_OK) throw_sqlite(rc);
    return *this;
  }
  [[noreturn]] void throw_sqlite(int rc) {
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
      fail("local chain: the chain file is locked by another process for too long ({})",
           sqlite3_errmsg(db_));
    fail("local chain: {}", sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

// Runs SQL with no result rows; a locked file or any error is an Error naming the local chain.
void exec(sqlite3* db, const char* sql);

// A transaction: IMMEDIATE takes the write lock up front, so concurrent writers queue (busy
// timeout) instead of failing half way. Rolls back unless committed.
class Tx {
 public:
  Tx(sqlite3* db, bool write) : db_(db) { exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN"); }
  ~Tx() {
    if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT");
    db_ = nullptr;
  }

 private:
  sqlite3* db_;
};

// A weights or bonds row as a blob: (uid, value) pairs of little-endian u16.
std::string encode_row(const SparseRow& row);
// The reverse; a blob of the wrong length is an Error naming `what` (weights or bonds).
SparseRow decode_row(const std::string& blob, const char* what);

struct NeuronRow {
  Neuron n;
  SparseRow weights, bonds;
};
// Every neuron of the subnet by uid, with its stake; uids out of sequence are an Error.
std::vector<NeuronRow> load_neurons(sqlite3* db, uint16_t netuid);

struct SubnetRow {
  Hyperparameters h;
  uint64_t synced_block = 0, last_step_block = 0;
};
std::optional<SubnetRow> load_subnet(sqlite3* db, uint16_t netuid);

// The meta table's entry (an Error when absent: not a bistro chain file), and setting one.
std::string meta(sqlite3* db, const char* key);
void set_meta(sqlite3* db, const char* key, const std::string& value);
// Opens (or creates) the chain file in WAL mode with a 30 s busy timeout.
sqlite3* open_db(const std::filesystem::path& path, bool create);

}  // namespace bistro::chain::sql
