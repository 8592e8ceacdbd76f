// The Store's signed documents (rosters, rules, tree head sets), terminals, alerts,
// equivocation evidence and checkpoints (docs/architecture.md, "Data model").
#include "store_internal.h"

namespace outpost::storage {

using detail::bv;
using detail::to_array;
using sync::MemberId;
using sync::NodeId;
using GC = detail::GCounterId;

namespace {

// `table` is "rosters" or "rules" (same shape: version, body, sig); `what` names it in errors.
Status put_document(Database& db, const char* table, const char* what, std::uint64_t version,
                    sync::ByteView body, const crypto::Signature& sig) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare(std::string("INSERT INTO ") + table +
                                                   "(version, body, sig) VALUES(?1, ?2, ?3)"));
  s.bind(1, static_cast<std::int64_t>(version)).bind_blob(2, body).bind_blob(3, bv(sig));
  Status st = s.run();
  if (st.code() == Code::kInvalidArgument) {
    return Status::invalid(std::string(what) + " v" + std::to_string(version) +
                           " is already stored");
  }
  return st;
}

Result<StoredDocument> row_to_document(const Statement& s, const char* what) {
  StoredDocument r;
  r.version = static_cast<std::uint64_t>(s.int64(0));
  r.body = s.blob(1);
  if (!to_array(s.blob(2), r.sig))
    return Status::corruption(std::string("stored ") + what + " signature is damaged");
  return r;
}

Result<std::optional<StoredDocument>> read_document(Statement& s, const char* what) {
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<StoredDocument>();
  OUTPOST_ASSIGN_OR_RETURN(StoredDocument r, row_to_document(s, what));
  return std::optional<StoredDocument>(std::move(r));
}

Result<std::optional<StoredDocument>> latest_document(Database& db, const char* table,
                                                      const char* what) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare(std::string("SELECT version, body, sig FROM ") +
                                                   table + " ORDER BY version DESC LIMIT 1"));
  return read_document(s, what);
}

Result<std::optional<StoredDocument>> get_document(Database& db, const char* table,
                                                   const char* what, std::uint64_t version) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare(std::string("SELECT version, body, sig FROM ") +
                                                   table + " WHERE version=?1"));
  s.bind(1, static_cast<std::int64_t>(version));
  return read_document(s, what);
}

Result<std::vector<std::uint64_t>> document_versions(Database& db, const char* table) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db.prepare(std::string("SELECT version FROM ") + table + " ORDER BY version"));
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

Result<std::optional<StoredRoster>> Store::latest_roster() {
  return latest_document(*db_, "rosters", "roster");
}

Status Store::put_rules(std::uint64_t version, sync::ByteView body, const crypto::Signature& sig) {
  return put_document(*db_, "rules", "rules", version, body, sig);
}

Result<std::optional<StoredDocument>> Store::latest_rules() {
  return latest_document(*db_, "rules", "rules");
}

Result<std::optional<StoredRoster>> Store::get_roster(std::uint64_t version) {
  return get_document(*db_, "rosters", "roster", version);
}

Result<std::vector<std::uint64_t>> Store::roster_versions() {
  return document_versions(*db_, "rosters");
}

Status Store::add_terminal(const Terminal& t, const crypto::Hash32& token_hash) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("INSERT INTO terminals(name, role, token_hash, "
                                        "created_ms) VALUES(?1, ?2, ?3, ?4)"));
  s.bind(1, t.name).bind(2, t.role).bind_blob(3, bv(token_hash)).bind(4, t.created_ms);
  Status st = s.run();
  if (st.code() == Code::kInvalidArgument)
    return Status::invalid("terminal " + t.name + " already exists");
  return st;
}

Result<std::optional<Terminal>> Store::find_terminal(const crypto::Hash32& token_hash) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s,
      db_->prepare("SELECT name, role, created_ms FROM terminals WHERE token_hash=?1"));
  s.bind_blob(1, bv(token_hash));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<Terminal>();
  return std::optional<Terminal>(Terminal{s.text(0), s.text(1), s.int64(2)});
}

Result<std::vector<Terminal>> Store::list_terminals() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT name, role, created_ms FROM terminals ORDER BY name"));
  std::vector<Terminal> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    out.push_back(Terminal{s.text(0), s.text(1), s.int64(2)});
  }
  return out;
}

Status Store::add_alert(const Alert& a) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("INSERT INTO alerts(at_ms, kind, node, message) "
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

Result<std::vector<StoredSigned>> Store::checkpoints() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s,
      db_->prepare("SELECT origin, seq, body, sig FROM checkpoints ORDER BY origin, seq"));
  return read_signed_rows(s, "checkpoint");
}

Result<std::vector<StoredSigned>> Store::latest_checkpoints() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s,
      db_->prepare("SELECT c.origin, c.seq, c.body, c.sig FROM checkpoints c JOIN "
                   "(SELECT origin, max(seq) AS top FROM checkpoints GROUP BY origin) m "
                   "ON c.origin = m.origin AND c.seq = m.top ORDER BY c.origin"));
  return read_signed_rows(s, "checkpoint");
}

Status Store::put_checkpoints(const std::vector<StoredSigned>& rows) {
  OUTPOST_ASSIGN_OR_RETURN(Transaction txn, begin());
  OUTPOST_ASSIGN_OR_RETURN(
      Statement ins,
      db_->prepare(
          "INSERT OR IGNORE INTO checkpoints(origin, seq, body, sig) VALUES(?1, ?2, ?3, ?4)"));
  for (const auto& r : rows) {
    ins.bind_blob(1, r.origin)
        .bind(2, static_cast<std::int64_t>(r.seq))
        .bind_blob(3, r.body)
        .bind_blob(4, r.sig);
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

Result<std::vector<std::uint64_t>> Store::tree_head_set_versions() {
  return document_versions(*db_, "tree_heads");
}

// ==== end of HQ tree head sets ====

}  // namespace outpost::storage
