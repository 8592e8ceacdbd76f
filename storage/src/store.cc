#include "outpost/storage/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "outpost/base/files.h"
#include "outpost/base/limits.h"
#include "store_internal.h"

namespace outpost::storage {

namespace {

using detail::bv;
using detail::row_to_op;
using detail::to_array;
using sync::MemberId;
using sync::MemberState;
using sync::NodeId;
using GC = detail::GCounterId;

// Migration i (1-based) brings a database from schema version i-1 to i. Never edit a shipped
// entry; append a new one and bump kSchemaVersion.
const char* const kMigrations[] = {
    // 1: op log, version vector, CRDT state, requests, metadata.
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE ops(
  origin BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, kind INTEGER NOT NULL,
  member BLOB NOT NULL, hlc_wall INTEGER NOT NULL, hlc_logical INTEGER NOT NULL,
  body BLOB NOT NULL, sig BLOB NOT NULL,
  PRIMARY KEY(origin, seq)) WITHOUT ROWID;
CREATE INDEX ops_by_member ON ops(member, hlc_wall, hlc_logical);
CREATE TABLE heads(origin BLOB PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE requests(request_id TEXT PRIMARY KEY, origin BLOB NOT NULL, seq INTEGER NOT NULL,
  response TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE member_fields(member BLOB NOT NULL, field INTEGER NOT NULL, value TEXT NOT NULL,
  hlc_wall INTEGER NOT NULL, hlc_logical INTEGER NOT NULL, origin BLOB NOT NULL,
  PRIMARY KEY(member, field)) WITHOUT ROWID;
CREATE INDEX member_fields_lookup ON member_fields(field, value);
CREATE TABLE escrow(member BLOB NOT NULL, account INTEGER NOT NULL, node BLOB NOT NULL,
  credit INTEGER NOT NULL, debit INTEGER NOT NULL,
  PRIMARY KEY(member, account, node)) WITHOUT ROWID;
CREATE TABLE escrow_moves(member BLOB NOT NULL, account INTEGER NOT NULL, src BLOB NOT NULL,
  dst BLOB NOT NULL, amount INTEGER NOT NULL,
  PRIMARY KEY(member, account, src, dst)) WITHOUT ROWID;
CREATE TABLE gcounters(member BLOB NOT NULL, counter INTEGER NOT NULL, node BLOB NOT NULL,
  month INTEGER NOT NULL, amount INTEGER NOT NULL,
  PRIMARY KEY(member, counter, node, month)) WITHOUT ROWID;
CREATE TABLE reversals(ref_origin BLOB NOT NULL, ref_seq INTEGER NOT NULL, by_seq INTEGER NOT NULL,
  PRIMARY KEY(ref_origin, ref_seq)) WITHOUT ROWID;
)sql",
    // 2: API credentials, alerts, PIN lockout.
    R"sql(
CREATE TABLE terminals(name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE alerts(id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
  kind TEXT NOT NULL, node TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE pin_attempts(member BLOB PRIMARY KEY, failures INTEGER NOT NULL,
  locked_until_ms INTEGER NOT NULL) WITHOUT ROWID;
)sql",
    // 3: replicated chain metadata: HQ-signed rosters (every accepted version, for audits),
    // HQ-signed program rules, HQ checkpoints, and equivocation evidence.
    R"sql(
CREATE TABLE rosters(version INTEGER PRIMARY KEY, body BLOB NOT NULL, sig BLOB NOT NULL);
CREATE TABLE rules(version INTEGER PRIMARY KEY, body BLOB NOT NULL, sig BLOB NOT NULL);
CREATE TABLE checkpoints(origin BLOB NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,
  sig BLOB NOT NULL, PRIMARY KEY(origin, seq)) WITHOUT ROWID;
CREATE TABLE equivocations(origin BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL,
  body BLOB NOT NULL, sig BLOB NOT NULL, seen_ms INTEGER NOT NULL,
  PRIMARY KEY(origin, seq, hash)) WITHOUT ROWID;
)sql",
    // 4: HQ tree head sets: root-signed, chain-wide (every origin's log length and head), one row
    // per version (docs/audit-bundle.md, "Tree head set").
    R"sql(
CREATE TABLE tree_heads(version INTEGER PRIMARY KEY, body BLOB NOT NULL, sig BLOB NOT NULL);
)sql",
    // 5: wrong PINs are replicated ops (pin_failure, docs/api.md "PIN"): the newest few of each
    // member are CRDT state (sync::RecentEvents); the per-node lockout table of schema 2 goes.
    R"sql(
CREATE TABLE pin_failures(member BLOB NOT NULL, hlc_wall INTEGER NOT NULL,
  hlc_logical INTEGER NOT NULL, origin BLOB NOT NULL,
  PRIMARY KEY(member, hlc_wall, hlc_logical, origin)) WITHOUT ROWID;
DROP TABLE pin_attempts;
)sql",
    // 6: HQ's view of its peers: the alerts each node reported over sync (attributed to the
    // node whose link delivered them), and when each peer was last heard from.
    R"sql(
CREATE TABLE peer_alerts(source BLOB NOT NULL, source_id INTEGER NOT NULL, at_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, kind TEXT NOT NULL, node TEXT NOT NULL, message TEXT NOT NULL,
  PRIMARY KEY(source, source_id)) WITHOUT ROWID;
CREATE INDEX peer_alerts_at ON peer_alerts(at_ms);
CREATE TABLE peer_contacts(node BLOB PRIMARY KEY, last_contact_ms INTEGER NOT NULL,
  down_since_ms INTEGER NOT NULL) WITHOUT ROWID;
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

}  // namespace

namespace {

// Refuses a database that is not Outpost's (kCorruption) or is newer than this binary
// (kUnsupported), given its PRAGMA application_id, user_version and sqlite_master row count.
Status check_identity(std::int64_t app, std::int64_t ver, std::int64_t tables) {
  if (app != kApplicationId && (app != 0 || tables != 0)) {
    return Status::corruption("not an Outpost database");
  }
  if (ver > kSchemaVersion) {
    return Status::unsupported("database schema version " + std::to_string(ver) +
                               " is newer than this binary's " + std::to_string(kSchemaVersion) +
                               "; upgrade outpost");
  }
  return Status::ok();
}

// Checks an existing, non-empty file through a read-only connection before Database::open
// switches it to WAL: that switch rewrites the file header, and a foreign or newer database
// must be refused without being changed.
Status check_existing_file(const std::string& path, const std::string& vfs) {
  if (vfs.empty()) {
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0 || sb.st_size == 0) return Status::ok();
  } else {
    sqlite3_vfs* v = sqlite3_vfs_find(vfs.c_str());
    int exists = 0;  // SQLite's "exists": present and not empty
    if (!v || v->xAccess(v, path.c_str(), SQLITE_ACCESS_EXISTS, &exists) != SQLITE_OK || !exists) {
      return Status::ok();  // Database::open reports a missing VFS or file
    }
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY,
                           vfs.empty() ? nullptr : vfs.c_str());
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, sqlite3_close);
  if (rc != SQLITE_OK) return sqlite_status(raw, rc, "cannot open");
  sqlite3_busy_timeout(raw, limits::kSqliteBusyTimeoutMs);
  std::int64_t values[3] = {0, 0, 0};
  const char* const queries[3] = {"PRAGMA application_id", "PRAGMA user_version",
                                  "SELECT count(*) FROM sqlite_master"};
  for (int i = 0; i < 3; ++i) {
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(raw, queries[i], -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) values[i] = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) return sqlite_status(raw, rc, "cannot read");
  }
  return check_identity(values[0], values[1], values[2]);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path, OpenMode mode,
                                           const StoreOptions& options) {
  OUTPOST_RETURN_IF_ERROR(check_existing_file(path, options.vfs).with_context(path));
  OUTPOST_ASSIGN_OR_RETURN(auto db, Database::open(path, mode, options.vfs));
  std::unique_ptr<Store> store(new Store(std::move(db)));
  OUTPOST_RETURN_IF_ERROR(store->migrate().with_context(path));
  return store;
}

Status Store::migrate() {
  auto app = db_->query_int("PRAGMA application_id");
  if (!app.is_ok()) return app.status();
  auto ver = db_->query_int("PRAGMA user_version");
  if (!ver.is_ok()) return ver.status();
  auto tables = db_->query_int("SELECT count(*) FROM sqlite_master");
  if (!tables.is_ok()) return tables.status();
  OUTPOST_RETURN_IF_ERROR(check_identity(*app, *ver, *tables));
  for (std::int64_t v = *ver; v < kSchemaVersion; ++v) {
    OUTPOST_ASSIGN_OR_RETURN(Transaction txn, begin());
    OUTPOST_RETURN_IF_ERROR(db_->exec(kMigrations[v]));
    OUTPOST_RETURN_IF_ERROR(db_->exec("PRAGMA application_id=" + std::to_string(kApplicationId) +
                                      "; PRAGMA user_version=" + std::to_string(v + 1)));
    OUTPOST_RETURN_IF_ERROR(txn.commit());
  }
  return Status::ok();
}

Status Store::set_meta(const std::string& key, const std::string& value) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) "
                                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value"));
  s.bind(1, key).bind(2, value);
  return s.run();
}

Result<std::optional<std::string>> Store::get_meta(const std::string& key) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("SELECT value FROM meta WHERE key=?1"));
  s.bind(1, key);
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.text(0));
}

Result<Head> Store::head(const NodeId& origin) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("SELECT seq, hash FROM heads WHERE origin=?1"));
  s.bind_blob(1, bv(origin));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  Head h;
  if (row) {
    h.seq = static_cast<std::uint64_t>(s.int64(0));
    if (!to_array(s.blob(1), h.hash)) return Status::corruption("stored head hash is damaged");
  }
  return h;
}

Result<std::map<NodeId, std::uint64_t>> Store::version_vector() {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("SELECT origin, seq FROM heads"));
  std::map<NodeId, std::uint64_t> vv;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    NodeId id{};
    if (!to_array(s.blob(0), id)) return Status::corruption("stored origin id is damaged");
    vv[id] = static_cast<std::uint64_t>(s.int64(1));
  }
  return vv;
}

Status Store::append_op(const sync::SignedOp& sop, const MemberState* current) {
  const sync::Op& op = sop.op;
  OUTPOST_ASSIGN_OR_RETURN(Head h, head(op.origin));
  // Invariant: each origin's log is contiguous and hash-chained.
  if (op.seq != h.seq + 1) {
    return Status::corruption("op " + sync::op_ref_string(op.origin, op.seq) +
                              " is not next after seq " + std::to_string(h.seq));
  }
  if (op.prev != h.hash) {
    return Status::corruption("op " + sync::op_ref_string(op.origin, op.seq) +
                              " does not chain to the previous op");
  }
  OUTPOST_ASSIGN_OR_RETURN(
      Statement ins,
      db_->prepare("INSERT INTO ops(origin, seq, hash, kind, member, hlc_wall, hlc_logical, body, "
                   "sig) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  ins.bind_blob(1, bv(op.origin))
      .bind(2, static_cast<std::int64_t>(op.seq))
      .bind_blob(3, bv(sop.hash))
      .bind(4, static_cast<std::int64_t>(op.kind))
      .bind_blob(5, bv(op.member))
      .bind(6, static_cast<std::int64_t>(op.hlc.wall_ms))
      .bind(7, static_cast<std::int64_t>(op.hlc.logical))
      .bind_blob(8, sop.signed_bytes)
      .bind_blob(9, bv(sop.sig));
  OUTPOST_RETURN_IF_ERROR(ins.run());
  OUTPOST_ASSIGN_OR_RETURN(
      Statement up, db_->prepare("INSERT INTO heads(origin, seq, hash) VALUES(?1, ?2, ?3) ON "
                                 "CONFLICT(origin) DO UPDATE SET seq=excluded.seq, "
                                 "hash=excluded.hash"));
  up.bind_blob(1, bv(op.origin)).bind(2, static_cast<std::int64_t>(op.seq)).bind_blob(3, bv(sop.hash));
  OUTPOST_RETURN_IF_ERROR(up.run());

  if (op.kind == sync::OpKind::kReverse) {
    OUTPOST_ASSIGN_OR_RETURN(auto prior, reversed_by(op.ref_origin, op.ref_seq));
    if (prior) {
      return Status::corruption("op " + sync::op_ref_string(op.ref_origin, op.ref_seq) +
                                " is already reversed");
    }
    OUTPOST_ASSIGN_OR_RETURN(Statement rv, db_->prepare("INSERT INTO reversals(ref_origin, "
                                                        "ref_seq, by_seq) VALUES(?1, ?2, ?3)"));
    rv.bind_blob(1, bv(op.ref_origin))
        .bind(2, static_cast<std::int64_t>(op.ref_seq))
        .bind(3, static_cast<std::int64_t>(op.seq));
    OUTPOST_RETURN_IF_ERROR(rv.run());
  }

  std::optional<MemberState> loaded;
  if (current == nullptr) {
    OUTPOST_ASSIGN_OR_RETURN(loaded, load_member(op.member));
    current = loaded ? &*loaded : nullptr;
  }
  static const MemberState kEmpty;
  const MemberState& before = current ? *current : kEmpty;
  MemberState m = before;
  OUTPOST_RETURN_IF_ERROR(sync::apply_effects(m, op));
  return save_member(op.member, m, before);
}

Result<std::optional<sync::SignedOp>> Store::get_op(const NodeId& origin, std::uint64_t seq) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT body, sig FROM ops WHERE origin=?1 AND seq=?2"));
  s.bind_blob(1, bv(origin)).bind(2, static_cast<std::int64_t>(seq));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<sync::SignedOp>();
  OUTPOST_ASSIGN_OR_RETURN(sync::SignedOp op, row_to_op(s, 0, 1));
  return std::optional<sync::SignedOp>(std::move(op));
}

Result<std::vector<sync::SignedOp>> Store::ops_of_origin(const NodeId& origin,
                                                         std::uint64_t from_seq,
                                                         std::size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT body, sig FROM ops WHERE origin=?1 AND seq>=?2 "
                                        "ORDER BY seq LIMIT ?3"));
  s.bind_blob(1, bv(origin))
      .bind(2, static_cast<std::int64_t>(from_seq))
      .bind(3, static_cast<std::int64_t>(limit));
  std::vector<sync::SignedOp> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    OUTPOST_ASSIGN_OR_RETURN(sync::SignedOp op, row_to_op(s, 0, 1));
    out.push_back(std::move(op));
  }
  return out;
}

Result<std::vector<sync::SignedOp>> Store::ops_of_member(const MemberId& member,
                                                         std::size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT body, sig FROM ops WHERE member=?1 ORDER BY "
                                        "hlc_wall DESC, hlc_logical DESC, origin LIMIT ?2"));
  s.bind_blob(1, bv(member)).bind(2, static_cast<std::int64_t>(limit));
  std::vector<sync::SignedOp> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    OUTPOST_ASSIGN_OR_RETURN(sync::SignedOp op, row_to_op(s, 0, 1));
    out.push_back(std::move(op));
  }
  return out;
}

Result<std::uint64_t> Store::op_count() {
  OUTPOST_ASSIGN_OR_RETURN(std::int64_t n, db_->query_int("SELECT count(*) FROM ops"));
  return static_cast<std::uint64_t>(n);
}

Result<std::optional<std::uint64_t>> Store::reversed_by(const NodeId& origin, std::uint64_t seq) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT by_seq FROM reversals WHERE ref_origin=?1 AND ref_seq=?2"));
  s.bind_blob(1, bv(origin)).bind(2, static_cast<std::int64_t>(seq));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>(s.int64(0)));
}

Status Store::checkpoint_wal() { return db_->exec("PRAGMA wal_checkpoint(TRUNCATE)"); }

Status Store::make_single_file() { return db_->exec("PRAGMA journal_mode=DELETE"); }

Status Store::backup_to(const std::string& path,
                        const std::vector<std::pair<std::string, std::string>>& meta_in_copy) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) == 0) return Status::invalid(path + " already exists; a backup never overwrites a file");
  {
    OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("VACUUM INTO ?1"));
    s.bind(1, path);
    Status st = s.run();
    if (!st.is_ok()) {
      ::unlink(path.c_str());
      return Status::io_error("cannot write backup " + path + ": " + st.message());
    }
  }
  // The copy is in rollback-journal mode; a transaction with synchronous=FULL fsyncs the whole
  // file, which makes the VACUUM INTO pages durable too.
  auto finish = [&]() -> Status {
    OUTPOST_ASSIGN_OR_RETURN(auto copy, Database::open(path, OpenMode::kExisting));
    OUTPOST_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(*copy));
    for (const auto& [key, value] : meta_in_copy) {
      OUTPOST_ASSIGN_OR_RETURN(Statement s, copy->prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) "
                                                          "ON CONFLICT(key) DO UPDATE SET value=excluded.value"));
      s.bind(1, key).bind(2, value);
      OUTPOST_RETURN_IF_ERROR(s.run());
    }
    OUTPOST_RETURN_IF_ERROR(txn.commit());
    return copy->exec("PRAGMA journal_mode=DELETE");
  };
  Status st = finish();
  if (st.is_ok()) st = fsync_parent_dir(path);
  if (!st.is_ok()) {
    ::unlink(path.c_str());
    ::unlink((path + "-wal").c_str());
    ::unlink((path + "-shm").c_str());
    return Status::io_error("cannot finish backup " + path + ": " + st.message());
  }
  return Status::ok();
}

}  // namespace outpost::storage
