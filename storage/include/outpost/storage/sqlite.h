// RAII wrappers over the SQLite C API: Database (one connection), Statement (a prepared
// statement, reset on reuse) and Transaction (rolls back unless committed). Errors come back as
// Status with SQLite's message. A Database is not thread-safe: one owner thread uses it.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "outpost/base/status.h"

namespace outpost::storage {

class Database;

class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& o) noexcept
      : db_(o.db_), owner_(o.owner_), stmt_(o.stmt_), sql_(std::move(o.sql_)) {
    o.stmt_ = nullptr;
  }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds parameters by 1-based index. Blobs and text are copied (SQLITE_TRANSIENT).
  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, const std::string& v);
  Statement& bind_blob(int i, std::span<const std::uint8_t> v);
  Statement& bind_null(int i);

  // Advances: returns true with a row, false when done, or an error Status.
  Result<bool> step();
  // Runs a statement that returns no rows to completion.
  Status run();
  void reset();

  std::int64_t int64(int col) const;
  std::string text(int col) const;
  std::vector<std::uint8_t> blob(int col) const;
  bool is_null(int col) const;

 private:
  friend class Database;
  Statement(sqlite3* db, class Database* owner, sqlite3_stmt* s, std::string sql)
      : db_(db), owner_(owner), stmt_(s), sql_(std::move(sql)) {}
  // Resets the statement and hands it back to its Database's cache (or finalizes it).
  void release();
  sqlite3* db_ = nullptr;
  class Database* owner_ = nullptr;  // must outlive the statement (as the connection must)
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;  // the cache key
};

enum class OpenMode { kCreate, kExisting };

class Database {
 public:
  // Opens (or creates) the database at `path` in WAL mode with synchronous=FULL, foreign keys
  // on and the busy timeout from limits.h. kExisting fails with kNotFound if the file is absent.
  // `vfs` names a registered SQLite VFS to use instead of the default (a MemVfs, mem_vfs.h).
  static Result<std::unique_ptr<Database>> open(const std::string& path, OpenMode mode,
                                                const std::string& vfs = "");
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more SQL statements that return no rows.
  Status exec(const std::string& sql);
  // Runs one SQL statement that returns no rows through the statement cache (no parse after the
  // first call). For the statements every request runs: BEGIN, COMMIT, SAVEPOINT, RELEASE.
  Status exec_prepared(const std::string& sql);
  // Prepares a statement, reusing an idle one of the same SQL text when the connection has one
  // (a Statement returns to the cache, reset and unbound, when destroyed; at most
  // limits::kSqliteStatementCacheMax are kept). Not thread-safe, like the connection.
  Result<Statement> prepare(const std::string& sql);
  // Runs a single-value query (e.g. PRAGMA user_version).
  Result<std::int64_t> query_int(const std::string& sql);
  std::int64_t changes() const;
  sqlite3* handle() { return db_; }
  const std::string& path() const { return path_; }

 private:
  friend class Statement;
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  // Keeps `s` (already reset) for reuse, or finalizes it when the cache is full.
  void recycle(std::string sql, sqlite3_stmt* s);
  sqlite3* db_;
  std::string path_;
  std::multimap<std::string, sqlite3_stmt*> idle_;  // idle statements by SQL text
};

// A write transaction (BEGIN IMMEDIATE). Destroying it without commit() rolls back.
class Transaction {
 public:
  static Result<Transaction> begin(Database& db);
  ~Transaction();
  Transaction(Transaction&& o) noexcept : db_(o.db_), done_(o.done_) { o.done_ = true; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;

  // Commits; with synchronous=FULL the commit is durable (fsync'd) when this returns ok.
  Status commit();
  Status rollback();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
  bool done_ = false;
};

// A nested unit inside an open transaction (SAVEPOINT). Destroying it without release() rolls
// back to the savepoint, leaving the rest of the enclosing transaction intact. Used by group
// commit: each request of a batch is a savepoint inside one transaction with one fsync.
class Savepoint {
 public:
  static Result<Savepoint> begin(Database& db);
  ~Savepoint();
  Savepoint(Savepoint&& o) noexcept : db_(o.db_), done_(o.done_) { o.done_ = true; }
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  Savepoint& operator=(Savepoint&&) = delete;
  Status release();

 private:
  explicit Savepoint(Database* db) : db_(db) {}
  Database* db_;
  bool done_ = false;
};

// A read transaction (BEGIN DEFERRED): every read between begin() and destruction sees one
// snapshot of the database, while writers go on in WAL mode. Ends with ROLLBACK (it writes
// nothing). Used by exports that must be consistent across many queries.
class ReadSnapshot {
 public:
  static Result<ReadSnapshot> begin(Database& db);
  ~ReadSnapshot();
  ReadSnapshot(ReadSnapshot&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(ReadSnapshot&&) = delete;

 private:
  explicit ReadSnapshot(Database* db) : db_(db) {}
  Database* db_;
};

Status sqlite_status(sqlite3* db, int rc, const std::string& what);

}  // namespace outpost::storage
