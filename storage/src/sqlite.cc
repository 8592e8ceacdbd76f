#include "outpost/storage/sqlite.h"

#include <sys/stat.h>

#include "outpost/base/limits.h"

namespace outpost::storage {

Status sqlite_status(sqlite3* db, int rc, const std::string& what) {
  std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return Status::corruption(msg);
    case SQLITE_CONSTRAINT:
      return Status::invalid(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return Status::permission(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::unavailable(msg);
    default:
      return Status::io_error(msg);
  }
}

Statement::~Statement() { release(); }

void Statement::release() {
  if (!stmt_) return;
  sqlite3_reset(stmt_);  // ends any read it holds open: a cached statement keeps no lock
  sqlite3_clear_bindings(stmt_);
  if (owner_) {
    owner_->recycle(std::move(sql_), stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    release();
    db_ = o.db_;
    owner_ = o.owner_;
    stmt_ = o.stmt_;
    sql_ = std::move(o.sql_);
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement& Statement::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Statement& Statement::bind(int i, const std::string& v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_blob(int i, std::span<const std::uint8_t> v) {
  sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_null(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_status(db_, rc, "sqlite step");
}

Status Statement::run() {
  auto r = step();
  Status st = r.is_ok() ? Status::ok() : r.status();
  reset();
  return st;
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
std::string Statement::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : "";
}
std::vector<std::uint8_t> Statement::blob(int col) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::vector<std::uint8_t>(p, p + n) : std::vector<std::uint8_t>();
}
bool Statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

namespace {

// Whether `path` exists, on the operating system or on the named VFS.
bool database_exists(const std::string& path, const std::string& vfs) {
  if (vfs.empty()) {
    struct stat sb {};
    return ::stat(path.c_str(), &sb) == 0;
  }
  sqlite3_vfs* v = sqlite3_vfs_find(vfs.c_str());
  int exists = 0;
  return v && v->xAccess(v, path.c_str(), SQLITE_ACCESS_EXISTS, &exists) == SQLITE_OK && exists;
}

}  // namespace

Result<std::unique_ptr<Database>> Database::open(const std::string& path, OpenMode mode,
                                                 const std::string& vfs) {
  if (mode == OpenMode::kExisting && !database_exists(path, vfs)) {
    return Status::not_found("database " + path + " does not exist");
  }
  if (!vfs.empty() && sqlite3_vfs_find(vfs.c_str()) == nullptr) {
    return Status::invalid("open " + path + ": no SQLite VFS named " + vfs);
  }
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
              (mode == OpenMode::kCreate ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    Status st = sqlite_status(db, rc, "open " + path);
    sqlite3_close(db);
    return st;
  }
  std::unique_ptr<Database> d(new Database(db, path));
  sqlite3_busy_timeout(db, limits::kSqliteBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 1);
  // A ledger must not rely on defaults: WAL for concurrent readers, FULL so that a commit is on
  // disk before it returns (docs/architecture.md, failure rule 1).
  auto mode_r = d->prepare("PRAGMA journal_mode=WAL");
  if (!mode_r.is_ok()) return mode_r.status().with_context("open " + path);
  auto row = mode_r->step();
  if (!row.is_ok()) return row.status().with_context("open " + path);
  if (!*row || mode_r->text(0) != "wal") {
    return Status::io_error("open " + path + ": cannot enable WAL mode");
  }
  OUTPOST_RETURN_IF_ERROR(d->exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  OUTPOST_RETURN_IF_ERROR(
      d->exec("PRAGMA wal_autocheckpoint=" + std::to_string(limits::kSqliteWalAutocheckpointPages)));
  return d;
}

Database::~Database() {
  for (auto& [sql, s] : idle_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

void Database::recycle(std::string sql, sqlite3_stmt* s) {
  if (idle_.size() >= limits::kSqliteStatementCacheMax) {
    sqlite3_finalize(s);
    return;
  }
  idle_.emplace(std::move(sql), s);
}

Status Database::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Status st = sqlite_status(nullptr, rc, "sql");
    return Status(st.code(), "sql: " + msg);
  }
  return Status::ok();
}

Status Database::exec_prepared(const std::string& sql) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, prepare(sql));
  return s.run();
}

Result<Statement> Database::prepare(const std::string& sql) {
  if (auto it = idle_.find(sql); it != idle_.end()) {
    sqlite3_stmt* s = it->second;
    idle_.erase(it);
    return Statement(db_, this, s, sql);
  }
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) return sqlite_status(db_, rc, "prepare");
  return Statement(db_, this, s, sql);
}

Result<std::int64_t> Database::query_int(const std::string& sql) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, prepare(sql));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return Status::not_found("query returned no row");
  return s.int64(0);
}

std::int64_t Database::changes() const { return sqlite3_changes64(db_); }

Result<Transaction> Transaction::begin(Database& db) {
  OUTPOST_RETURN_IF_ERROR(db.exec_prepared("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (!done_) (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
  OUTPOST_CHECK(!done_);
  Status st = db_->exec_prepared("COMMIT");
  if (!st.is_ok()) {
    (void)db_->exec("ROLLBACK");
  }
  done_ = true;
  return st;
}

Status Transaction::rollback() {
  if (done_) return Status::ok();
  done_ = true;
  return db_->exec("ROLLBACK");
}

Result<Savepoint> Savepoint::begin(Database& db) {
  OUTPOST_RETURN_IF_ERROR(db.exec_prepared("SAVEPOINT request"));
  return Savepoint(&db);
}

Savepoint::~Savepoint() {
  if (!done_) (void)db_->exec("ROLLBACK TO request; RELEASE request");
}

Status Savepoint::release() {
  OUTPOST_CHECK(!done_);
  done_ = true;
  return db_->exec_prepared("RELEASE request");
}

Result<ReadSnapshot> ReadSnapshot::begin(Database& db) {
  OUTPOST_RETURN_IF_ERROR(db.exec("BEGIN DEFERRED"));
  return ReadSnapshot(&db);
}

ReadSnapshot::~ReadSnapshot() {
  if (db_ != nullptr) {
    Status st = db_->exec("ROLLBACK");  // read-only: nothing to keep
    (void)st;
  }
}

}  // namespace outpost::storage
