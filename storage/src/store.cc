#include "outpost/storage/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <algorithm>
#include <tuple>

#include "outpost/base/files.h"
#include "outpost/base/limits.h"

namespace outpost::storage {

namespace {

using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::NodeId;

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

enum GCounterId : std::int64_t { kSpend = 1, kSpendReversed = 2, kVisits = 3 };

template <typename A>
std::span<const std::uint8_t> bv(const A& a) {
  return {a.data(), a.size()};
}

template <typename A>
bool to_array(const std::vector<std::uint8_t>& v, A& out) {
  if (v.size() != out.size()) return false;
  std::copy(v.begin(), v.end(), out.begin());
  return true;
}

Result<sync::SignedOp> row_to_op(const Statement& s, int body_col, int sig_col) {
  auto body = s.blob(body_col);
  auto sig = s.blob(sig_col);
  auto op = sync::load_signed_op(body, sig);
  if (!op.is_ok()) return op.status().with_context("stored op is damaged");
  return op;
}

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

namespace {

// Reads every CRDT row for the members selected by `where` (bound to ?1 when member != null).
Status load_members_where(Database& db, const MemberId* member,
                          std::map<MemberId, MemberState>& out) {
  const std::string where = member ? " WHERE member=?1" : "";
  auto bind = [&](Statement& s) {
    if (member) s.bind_blob(1, bv(*member));
  };
  auto read_id = [](const Statement& s, int col, NodeId& id) { return to_array(s.blob(col), id); };
  {
    OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare("SELECT member, field, value, hlc_wall, "
                                                     "hlc_logical, origin FROM member_fields" +
                                                     where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId origin{};
      if (!read_id(s, 0, id) || !read_id(s, 5, origin)) return Status::corruption("bad field row");
      sync::Hlc hlc{static_cast<std::uint64_t>(s.int64(3)), static_cast<std::uint32_t>(s.int64(4))};
      out[id].fields[static_cast<Field>(s.int64(1))].assign(s.text(2), hlc, origin);
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s, db.prepare("SELECT member, account, node, credit, debit FROM escrow" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId node{};
      if (!read_id(s, 0, id) || !read_id(s, 2, node)) return Status::corruption("bad escrow row");
      MemberState& m = out[id];
      sync::EscrowCounter& c = s.int64(1) == 1 ? m.points : m.wallet;
      // Zero entries are not state: skip them so loaded state equals replayed state.
      if (s.int64(3) > 0) OUTPOST_RETURN_IF_ERROR(c.credit(node, static_cast<std::uint64_t>(s.int64(3))));
      if (s.int64(4) > 0) OUTPOST_RETURN_IF_ERROR(c.apply_debit(node, static_cast<std::uint64_t>(s.int64(4))));
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s,
        db.prepare("SELECT member, account, src, dst, amount FROM escrow_moves" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId src{}, dst{};
      if (!read_id(s, 0, id) || !read_id(s, 2, src) || !read_id(s, 3, dst)) {
        return Status::corruption("bad move row");
      }
      MemberState& m = out[id];
      sync::EscrowCounter& c = s.int64(1) == 1 ? m.points : m.wallet;
      OUTPOST_RETURN_IF_ERROR(c.apply_move(src, dst, static_cast<std::uint64_t>(s.int64(4))));
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s,
        db.prepare("SELECT member, counter, node, month, amount FROM gcounters" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId node{};
      if (!read_id(s, 0, id) || !read_id(s, 2, node)) return Status::corruption("bad counter row");
      MemberState& m = out[id];
      std::int64_t which = s.int64(1);
      sync::GCounter& g = which == kSpend ? m.spend : which == kSpendReversed ? m.spend_reversed
                                                                              : m.visits;
      OUTPOST_RETURN_IF_ERROR(g.add(node, static_cast<std::uint32_t>(s.int64(3)),
                                    static_cast<std::uint64_t>(s.int64(4))));
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s,
        db.prepare("SELECT member, hlc_wall, hlc_logical, origin FROM pin_failures" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId origin{};
      if (!read_id(s, 0, id) || !read_id(s, 3, origin)) return Status::corruption("bad PIN failure row");
      out[id].pin_failures.add({static_cast<std::uint64_t>(s.int64(1)), static_cast<std::uint32_t>(s.int64(2))},
                               origin);
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::optional<MemberState>> Store::load_member(const MemberId& member) {
  std::map<MemberId, MemberState> all;
  OUTPOST_RETURN_IF_ERROR(load_members_where(*db_, &member, all));
  auto it = all.find(member);
  if (it == all.end()) return std::optional<MemberState>();
  return std::optional<MemberState>(std::move(it->second));
}

Result<std::map<MemberId, MemberState>> Store::load_all_members() {
  std::map<MemberId, MemberState> all;
  OUTPOST_RETURN_IF_ERROR(load_members_where(*db_, nullptr, all));
  return all;
}

namespace {

// The value of `key` in `map`, or 0 when absent (CRDT entries start at zero).
template <typename Map, typename Key>
std::uint64_t value_or_zero(const Map& map, const Key& key) {
  auto it = map.find(key);
  return it == map.end() ? 0 : it->second;
}

}  // namespace

// CRDT entries only grow and are never removed, so the rows to write are the entries of `m` that
// are new or changed against `before`: a top-up writes one escrow row, not the whole member (fewer
// statements, and fewer dirty pages for the commit to write to the WAL). Statements are prepared
// only when a row of theirs changed.
Status Store::save_member(const MemberId& id, const MemberState& m, const MemberState& before) {
  constexpr const char* kFieldSql =
      "INSERT INTO member_fields(member, field, value, hlc_wall, hlc_logical, origin) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(member, field) DO UPDATE SET "
      "value=excluded.value, hlc_wall=excluded.hlc_wall, hlc_logical=excluded.hlc_logical, "
      "origin=excluded.origin";
  constexpr const char* kEscrowSql =
      "INSERT INTO escrow(member, account, node, credit, debit) VALUES(?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(member, account, node) DO UPDATE SET credit=excluded.credit, "
      "debit=excluded.debit";
  constexpr const char* kMoveSql =
      "INSERT INTO escrow_moves(member, account, src, dst, amount) VALUES(?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(member, account, src, dst) DO UPDATE SET amount=excluded.amount";
  constexpr const char* kCounterSql =
      "INSERT INTO gcounters(member, counter, node, month, amount) VALUES(?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(member, counter, node, month) DO UPDATE SET amount=excluded.amount";

  for (const auto& [f, reg] : m.fields) {
    if (!reg.is_set()) continue;
    if (auto old = before.fields.find(f); old != before.fields.end() && old->second == reg) continue;
    OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kFieldSql));
    s.bind_blob(1, bv(id))
        .bind(2, static_cast<std::int64_t>(f))
        .bind(3, reg.value())
        .bind(4, static_cast<std::int64_t>(reg.hlc().wall_ms))
        .bind(5, static_cast<std::int64_t>(reg.hlc().logical))
        .bind_blob(6, bv(reg.origin()));
    OUTPOST_RETURN_IF_ERROR(s.run());
  }
  for (int account = 1; account <= 2; ++account) {
    const sync::EscrowCounter& c = account == 1 ? m.points : m.wallet;
    const sync::EscrowCounter& was = account == 1 ? before.points : before.wallet;
    std::map<NodeId, std::pair<std::uint64_t, std::uint64_t>> rows;
    for (const auto& [n, v] : c.credits()) rows[n].first = v;
    for (const auto& [n, v] : c.debits()) rows[n].second = v;
    for (const auto& [n, cd] : rows) {
      if (cd.first == value_or_zero(was.credits(), n) && cd.second == value_or_zero(was.debits(), n)) continue;
      OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kEscrowSql));
      s.bind_blob(1, bv(id))
          .bind(2, account)
          .bind_blob(3, bv(n))
          .bind(4, static_cast<std::int64_t>(cd.first))
          .bind(5, static_cast<std::int64_t>(cd.second));
      OUTPOST_RETURN_IF_ERROR(s.run());
    }
    for (const auto& [k, v] : c.moves()) {
      if (v == value_or_zero(was.moves(), k)) continue;
      OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kMoveSql));
      s.bind_blob(1, bv(id))
          .bind(2, account)
          .bind_blob(3, bv(k.first))
          .bind_blob(4, bv(k.second))
          .bind(5, static_cast<std::int64_t>(v));
      OUTPOST_RETURN_IF_ERROR(s.run());
    }
  }
  const std::tuple<std::int64_t, const sync::GCounter*, const sync::GCounter*> counters[] = {
      {kSpend, &m.spend, &before.spend},
      {kSpendReversed, &m.spend_reversed, &before.spend_reversed},
      {kVisits, &m.visits, &before.visits}};
  for (const auto& [which, g, was] : counters) {
    for (const auto& [k, v] : g->entries()) {
      if (v == value_or_zero(was->entries(), k)) continue;
      OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kCounterSql));
      s.bind_blob(1, bv(id))
          .bind(2, which)
          .bind_blob(3, bv(k.first))
          .bind(4, static_cast<std::int64_t>(k.second))
          .bind(5, static_cast<std::int64_t>(v));
      OUTPOST_RETURN_IF_ERROR(s.run());
    }
  }
  if (!(m.pin_failures == before.pin_failures)) OUTPOST_RETURN_IF_ERROR(save_pin_failures(id, m.pin_failures));
  return Status::ok();
}

// The newest PIN failures change as a whole (one added, the oldest dropped): rewrite the member's
// few rows.
Status Store::save_pin_failures(const MemberId& id, const sync::RecentEvents& failures) {
  OUTPOST_ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM pin_failures WHERE member=?1"));
  del.bind_blob(1, bv(id));
  OUTPOST_RETURN_IF_ERROR(del.run());
  for (const auto& e : failures.events()) {
    OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("INSERT INTO pin_failures(member, hlc_wall, hlc_logical, "
                                                       "origin) VALUES(?1, ?2, ?3, ?4)"));
    s.bind_blob(1, bv(id))
        .bind(2, static_cast<std::int64_t>(e.hlc.wall_ms))
        .bind(3, static_cast<std::int64_t>(e.hlc.logical))
        .bind_blob(4, bv(e.origin));
    OUTPOST_RETURN_IF_ERROR(s.run());
  }
  return Status::ok();
}

Result<std::vector<MemberId>> Store::find_members(Field field, const std::string& value) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT member FROM member_fields WHERE field=?1 AND value=?2 "
                                "ORDER BY member LIMIT 100"));
  s.bind(1, static_cast<std::int64_t>(field)).bind(2, value);
  std::vector<MemberId> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    MemberId id{};
    if (!to_array(s.blob(0), id)) return Status::corruption("bad member id row");
    out.push_back(id);
  }
  return out;
}

Result<std::optional<StoredRequest>> Store::find_request(const std::string& request_id) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT origin, seq, response FROM requests WHERE request_id=?1"));
  s.bind(1, request_id);
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<StoredRequest>();
  StoredRequest r;
  if (!to_array(s.blob(0), r.origin)) return Status::corruption("bad request row");
  r.seq = static_cast<std::uint64_t>(s.int64(1));
  r.response = s.text(2);
  return std::optional<StoredRequest>(std::move(r));
}

Status Store::put_request(const std::string& request_id, const NodeId& origin, std::uint64_t seq,
                          const std::string& response) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("INSERT INTO requests(request_id, origin, "
                                                     "seq, response) VALUES(?1, ?2, ?3, ?4)"));
  s.bind(1, request_id).bind_blob(2, bv(origin)).bind(3, static_cast<std::int64_t>(seq)).bind(4, response);
  return s.run();
}

namespace {

// `table` is "rosters" or "rules" (same shape: version, body, sig); `what` names it in errors.
Status put_document(Database& db, const char* table, const char* what, std::uint64_t version,
                    sync::ByteView body, const crypto::Signature& sig) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare(std::string("INSERT INTO ") + table +
                                                   "(version, body, sig) VALUES(?1, ?2, ?3)"));
  s.bind(1, static_cast<std::int64_t>(version)).bind_blob(2, body).bind_blob(3, bv(sig));
  Status st = s.run();
  if (st.code() == Code::kInvalidArgument) {
    return Status::invalid(std::string(what) + " v" + std::to_string(version) + " is already stored");
  }
  return st;
}

Result<StoredDocument> row_to_document(const Statement& s, const char* what) {
  StoredDocument r;
  r.version = static_cast<std::uint64_t>(s.int64(0));
  r.body = s.blob(1);
  if (!to_array(s.blob(2), r.sig)) return Status::corruption(std::string("stored ") + what + " signature is damaged");
  return r;
}

Result<std::optional<StoredDocument>> read_document(Statement& s, const char* what) {
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<StoredDocument>();
  OUTPOST_ASSIGN_OR_RETURN(StoredDocument r, row_to_document(s, what));
  return std::optional<StoredDocument>(std::move(r));
}

Result<std::optional<StoredDocument>> latest_document(Database& db, const char* table, const char* what) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare(std::string("SELECT version, body, sig FROM ") + table +
                                                   " ORDER BY version DESC LIMIT 1"));
  return read_document(s, what);
}

Result<std::optional<StoredDocument>> get_document(Database& db, const char* table, const char* what,
                                                   std::uint64_t version) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db.prepare(std::string("SELECT version, body, sig FROM ") + table + " WHERE version=?1"));
  s.bind(1, static_cast<std::int64_t>(version));
  return read_document(s, what);
}

Result<std::vector<std::uint64_t>> document_versions(Database& db, const char* table) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare(std::string("SELECT version FROM ") + table + " ORDER BY version"));
  std::vector<std::uint64_t> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    out.push_back(static_cast<std::uint64_t>(s.int64(0)));
  }
  return out;
}

}  // namespace

Status Store::put_roster(std::uint64_t version, sync::ByteView body, const crypto::Signature& sig) {
  return put_document(*db_, "rosters", "roster", version, body, sig);
}

Result<std::optional<StoredRoster>> Store::latest_roster() { return latest_document(*db_, "rosters", "roster"); }

Status Store::put_rules(std::uint64_t version, sync::ByteView body, const crypto::Signature& sig) {
  return put_document(*db_, "rules", "rules", version, body, sig);
}

Result<std::optional<StoredDocument>> Store::latest_rules() { return latest_document(*db_, "rules", "rules"); }

Result<std::optional<StoredRoster>> Store::get_roster(std::uint64_t version) {
  return get_document(*db_, "rosters", "roster", version);
}

Result<std::vector<std::uint64_t>> Store::roster_versions() { return document_versions(*db_, "rosters"); }

Status Store::add_terminal(const Terminal& t, const crypto::Hash32& token_hash) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("INSERT INTO terminals(name, role, token_hash, "
                                                     "created_ms) VALUES(?1, ?2, ?3, ?4)"));
  s.bind(1, t.name).bind(2, t.role).bind_blob(3, bv(token_hash)).bind(4, t.created_ms);
  Status st = s.run();
  if (st.code() == Code::kInvalidArgument) return Status::invalid("terminal " + t.name + " already exists");
  return st;
}

Result<std::optional<Terminal>> Store::find_terminal(const crypto::Hash32& token_hash) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT name, role, created_ms FROM terminals WHERE token_hash=?1"));
  s.bind_blob(1, bv(token_hash));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<Terminal>();
  return std::optional<Terminal>(Terminal{s.text(0), s.text(1), s.int64(2)});
}

Result<std::vector<Terminal>> Store::list_terminals() {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT name, role, created_ms FROM terminals ORDER BY name"));
  std::vector<Terminal> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    out.push_back(Terminal{s.text(0), s.text(1), s.int64(2)});
  }
  return out;
}

Status Store::add_alert(const Alert& a) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("INSERT INTO alerts(at_ms, kind, node, message) "
                                                     "VALUES(?1, ?2, ?3, ?4)"));
  s.bind(1, a.at_ms).bind(2, a.kind).bind(3, a.node).bind(4, a.message);
  OUTPOST_RETURN_IF_ERROR(s.run());
  // Bounded: keep the newest 10000 alerts.
  return db_->exec("DELETE FROM alerts WHERE id <= (SELECT max(id) FROM alerts) - 10000");
}

Result<bool> Store::add_equivocation(const sync::SignedOp& op, std::int64_t seen_ms) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("INSERT OR IGNORE INTO equivocations(origin, seq, hash, body, sig, "
                                "seen_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
  s.bind_blob(1, bv(op.op.origin))
      .bind(2, static_cast<std::int64_t>(op.op.seq))
      .bind_blob(3, bv(op.hash))
      .bind_blob(4, op.signed_bytes)
      .bind_blob(5, bv(op.sig))
      .bind(6, seen_ms);
  OUTPOST_RETURN_IF_ERROR(s.run());
  return db_->changes() > 0;
}

Result<std::uint64_t> Store::equivocation_count() {
  OUTPOST_ASSIGN_OR_RETURN(std::int64_t n, db_->query_int("SELECT count(*) FROM equivocations"));
  return static_cast<std::uint64_t>(n);
}

namespace {
// Reads (origin, seq, body, sig) rows; `what` names the table in the corruption message.
Result<std::vector<StoredSigned>> read_signed_rows(Statement& s, const std::string& what) {
  std::vector<StoredSigned> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    StoredSigned r;
    const sync::Bytes origin = s.blob(0);
    const sync::Bytes sig = s.blob(3);
    if (origin.size() != r.origin.size() || sig.size() != r.sig.size()) {
      return Status::corruption("stored " + what + " row is damaged");
    }
    std::copy(origin.begin(), origin.end(), r.origin.begin());
    std::copy(sig.begin(), sig.end(), r.sig.begin());
    r.seq = static_cast<std::uint64_t>(s.int64(1));
    r.body = s.blob(2);
    out.push_back(std::move(r));
  }
  return out;
}
}  // namespace

Result<std::vector<StoredSigned>> Store::equivocations() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s,
      db_->prepare("SELECT origin, seq, body, sig FROM equivocations ORDER BY origin, seq, hash"));
  return read_signed_rows(s, "equivocation");
}

Result<std::vector<sync::MemberId>> Store::members_with_balances_after(const sync::MemberId& after,
                                                                      std::size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("SELECT DISTINCT member FROM escrow WHERE member > ?1 "
                                                     "ORDER BY member LIMIT ?2"));
  s.bind_blob(1, bv(after)).bind(2, static_cast<std::int64_t>(limit));
  std::vector<sync::MemberId> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    sync::MemberId id{};
    if (!to_array(s.blob(0), id)) return Status::corruption("stored escrow row has a damaged member id");
    out.push_back(id);
  }
  return out;
}

Result<std::vector<StoredSigned>> Store::checkpoints() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT origin, seq, body, sig FROM checkpoints ORDER BY origin, seq"));
  return read_signed_rows(s, "checkpoint");
}

Result<std::vector<StoredSigned>> Store::latest_checkpoints() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT c.origin, c.seq, c.body, c.sig FROM checkpoints c JOIN "
                                "(SELECT origin, max(seq) AS top FROM checkpoints GROUP BY origin) m "
                                "ON c.origin = m.origin AND c.seq = m.top ORDER BY c.origin"));
  return read_signed_rows(s, "checkpoint");
}

Status Store::put_checkpoints(const std::vector<StoredSigned>& rows) {
  OUTPOST_ASSIGN_OR_RETURN(Transaction txn, begin());
  OUTPOST_ASSIGN_OR_RETURN(
      Statement ins,
      db_->prepare("INSERT OR IGNORE INTO checkpoints(origin, seq, body, sig) VALUES(?1, ?2, ?3, ?4)"));
  for (const auto& r : rows) {
    ins.bind_blob(1, r.origin).bind(2, static_cast<std::int64_t>(r.seq)).bind_blob(3, r.body).bind_blob(4, r.sig);
    OUTPOST_RETURN_IF_ERROR(ins.run());
    ins.reset();
  }
  return txn.commit();
}

// ==== HQ tree head sets (schema 4): table tree_heads. Kept as one block; see store.h. ====

Status Store::put_tree_head_set(std::uint64_t version, sync::ByteView body,
                                const crypto::Signature& sig) {
  return put_document(*db_, "tree_heads", "tree head set", version, body, sig);
}

Result<std::optional<StoredTreeHeadSet>> Store::latest_tree_head_set() {
  return latest_document(*db_, "tree_heads", "tree head set");
}

Result<std::optional<StoredTreeHeadSet>> Store::get_tree_head_set(std::uint64_t version) {
  return get_document(*db_, "tree_heads", "tree head set", version);
}

Result<std::vector<std::uint64_t>> Store::tree_head_set_versions() { return document_versions(*db_, "tree_heads"); }

// ==== end of HQ tree head sets ====

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
