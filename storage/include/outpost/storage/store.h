// Store: the node's SQLite replica and all of its SQL: the signed op log (per-origin chains), the
// version vector, CRDT state per member (escrow counters, G-counters, LWW fields), POS request
// idempotency and node metadata. Schema migrations are versioned (PRAGMA user_version); a
// database written by a newer binary is refused. Not thread-safe: one owner serializes calls.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/storage/sqlite.h"
#include "outpost/sync/op.h"
#include "outpost/sync/replica.h"

namespace outpost::storage {

// Schema version this binary writes. History in storage/src/store.cc (kMigrations).
inline constexpr int kSchemaVersion = 6;
// PRAGMA application_id of an Outpost database ("OPST").
inline constexpr std::int32_t kApplicationId = 0x4f505354;

struct Head {
  std::uint64_t seq = 0;
  sync::Hash32 hash{};
};

struct Terminal {
  std::string name;
  std::string role;  // "pos" or "admin"
  std::int64_t created_ms = 0;
};

struct Alert {
  std::int64_t id = 0;
  std::int64_t at_ms = 0;
  std::string kind;  // refused_spend, bad_signature, equivocation, revoked_peer, clock_skew, ...
  std::string node;  // node id hex the alert is about, may be empty
  std::string message;
};

// An alert another node raised and reported over sync (HQ keeps its stores' alerts). `source` is
// the node whose authenticated link delivered it; `node` is what the alert is about.
struct PeerAlert {
  sync::NodeId source{};
  std::int64_t source_id = 0;  // the source's own alert number
  std::int64_t at_ms = 0;      // the source's clock when raised
  std::int64_t received_ms = 0;
  std::string kind;
  std::string node;  // node id hex the alert is about, may be empty
  std::string message;
};

// Alerts held per reporting node and kind.
struct AlertCount {
  sync::NodeId source{};
  std::string kind;
  std::int64_t count = 0;
  std::int64_t latest_at_ms = 0;
};

// What a node remembers of a peer's link across restarts.
struct PeerContact {
  sync::NodeId node{};
  std::int64_t last_contact_ms = 0;  // 0: never heard from
  std::int64_t down_since_ms = 0;    // 0: up when written (or never up)
};

// An HQ-signed, versioned document as stored: its canonical body and the root's signature
// (a roster, docs/roster-format.md; program rules, docs/program-rules.md; a tree head set,
// docs/audit-bundle.md). Tables rosters, rules and tree_heads share this shape.
struct StoredDocument {
  std::uint64_t version = 0;
  sync::Bytes body;
  crypto::Signature sig{};
};
using StoredRoster = StoredDocument;
// An HQ tree head set as stored (docs/audit-bundle.md, "Tree head set").
using StoredTreeHeadSet = StoredDocument;

// A signed record keyed by (origin, seq): an HQ checkpoint or a piece of equivocation evidence.
struct StoredSigned {
  sync::NodeId origin{};
  std::uint64_t seq = 0;
  sync::Bytes body;
  crypto::Signature sig{};
};



struct StoredRequest {
  sync::NodeId origin{};
  std::uint64_t seq = 0;
  std::string response;  // the JSON answer given the first time
};

struct StoreOptions {
  // A registered SQLite VFS to open the database on, instead of the default (the simulator's
  // MemVfs, mem_vfs.h). Empty: the operating system's files.
  std::string vfs;
};

class Store {
 public:
  // Opens the database at `path`, creating and migrating it when mode is kCreate. Fails with
  // kUnsupported for a schema newer than kSchemaVersion and kCorruption for a file that is not
  // an Outpost database.
  static Result<std::unique_ptr<Store>> open(const std::string& path, OpenMode mode,
                                             const StoreOptions& options = {});

  Database& db() { return *db_; }
  // Starts a write transaction; everything written until commit() is atomic and durable.
  Result<Transaction> begin() { return Transaction::begin(*db_); }

  // --- metadata (key/value) ---
  Status set_meta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> get_meta(const std::string& key);

  // --- op log ---
  Result<Head> head(const sync::NodeId& origin);
  Result<std::map<sync::NodeId, std::uint64_t>> version_vector();
  // Appends an op that must be the next of its origin (seq = head + 1, prev = head hash) and
  // applies it to the member's CRDT state. Fails with kCorruption on a gap or broken chain and
  // kRefused on counter overflow; the caller's transaction then rolls back. `current`, when
  // given, is the member's state as load_member() returned it inside the same transaction (it
  // is not read again); null means "load it". Only the CRDT rows the op changes are written.
  Status append_op(const sync::SignedOp& op, const sync::MemberState* current = nullptr);
  Result<std::optional<sync::SignedOp>> get_op(const sync::NodeId& origin, std::uint64_t seq);
  // Ops of one origin with seq >= from_seq, ascending, at most `limit`.
  Result<std::vector<sync::SignedOp>> ops_of_origin(const sync::NodeId& origin,
                                                    std::uint64_t from_seq, std::size_t limit);
  // The newest ops touching a member, newest first, at most `limit`.
  Result<std::vector<sync::SignedOp>> ops_of_member(const sync::MemberId& member,
                                                    std::size_t limit);
  Result<std::uint64_t> op_count();
  Result<std::optional<std::uint64_t>> reversed_by(const sync::NodeId& origin, std::uint64_t seq);

  // --- members ---
  Result<std::optional<sync::MemberState>> load_member(const sync::MemberId& member);
  Result<std::map<sync::MemberId, sync::MemberState>> load_all_members();
  // The wall-clock HLC time (ms) of each member's enroll op held here (the earliest, should a
  // member have two), for reports.
  Result<std::map<sync::MemberId, std::uint64_t>> enroll_times();
  // Up to `limit` members that hold points or wallet value (an escrow row), in id order after
  // `after` (all zero: from the first). The rebalancer walks them a page per tick.
  Result<std::vector<sync::MemberId>> members_with_balances_after(const sync::MemberId& after, std::size_t limit);
  // Members whose current value of `field` equals `value`.
  Result<std::vector<sync::MemberId>> find_members(sync::Field field, const std::string& value);

  // --- POS idempotency ---
  Result<std::optional<StoredRequest>> find_request(const std::string& request_id);
  Status put_request(const std::string& request_id, const sync::NodeId& origin,
                     std::uint64_t seq, const std::string& response);

  // --- equivocation evidence: a second op signed for a held (origin, seq) ---
  // Keeps `op` as evidence; returns false when that exact op was already kept.
  Result<bool> add_equivocation(const sync::SignedOp& op, std::int64_t seen_ms);
  Result<std::uint64_t> equivocation_count();
  // Every piece of evidence, ordered by (origin, seq, hash): the op's signed bytes and signature.
  Result<std::vector<StoredSigned>> equivocations();

  // --- HQ checkpoints (signed tree heads, docs/audit-bundle.md) ---
  // Every stored checkpoint, ordered by (origin, seq).
  Result<std::vector<StoredSigned>> checkpoints();
  // The newest checkpoint of each origin (highest seq), ordered by origin.
  Result<std::vector<StoredSigned>> latest_checkpoints();
  // Stores checkpoints the caller signed; one already stored for (origin, seq) is kept. One
  // transaction: all or none.
  Status put_checkpoints(const std::vector<StoredSigned>& rows);

  // ---- HQ tree head sets (schema 4; docs/audit-bundle.md, "Tree head set") ----
  // Stores a set the caller signed or verified. kInvalidArgument if that version is already
  // stored (two `hq checkpoint` runs raced: one version never names two different sets).
  Status put_tree_head_set(std::uint64_t version, sync::ByteView body,
                           const crypto::Signature& sig);
  // The highest stored version, or nullopt when HQ never signed one.
  Result<std::optional<StoredTreeHeadSet>> latest_tree_head_set();
  Result<std::optional<StoredTreeHeadSet>> get_tree_head_set(std::uint64_t version);
  // Every stored version, ascending.
  Result<std::vector<std::uint64_t>> tree_head_set_versions();
  // ---- end of tree head sets ----

  // Copies the WAL into the database file and truncates it (at a clean shutdown).
  Status checkpoint_wal();
  // Writes a consistent copy of the whole database to `path` (SQLite's VACUUM INTO: one read
  // transaction, so concurrent writers are not blocked and the copy is never torn), sets the
  // `meta_in_copy` entries in the copy only, and makes the copy durable (file and directory
  // fsync'd). kInvalidArgument if `path` exists; kIoError if it cannot be written (a partial
  // copy is removed).
  Status backup_to(const std::string& path, const std::vector<std::pair<std::string, std::string>>& meta_in_copy);
  // Copies the WAL into the database file and switches this connection's database to rollback-
  // journal mode, so that the file alone is the whole database (a backup that was opened as a
  // Store to read it). The next Store::open switches it back to WAL.
  Status make_single_file();

  // --- HQ-signed rosters: every accepted version is kept (audits, later peers) ---
  // Stores a roster the caller has verified (sync::verify_roster) and found newer. kInvalidArgument
  // if that version is already stored.
  Status put_roster(std::uint64_t version, sync::ByteView body, const crypto::Signature& sig);
  // The highest stored version, or nullopt when the node has no roster yet.
  Result<std::optional<StoredRoster>> latest_roster();
  Result<std::optional<StoredRoster>> get_roster(std::uint64_t version);
  // Every stored version, ascending.
  Result<std::vector<std::uint64_t>> roster_versions();

  // --- HQ-signed program rules: every accepted version is kept ---
  // Stores rules the caller has verified (sync::verify_rules) and found newer. kInvalidArgument
  // if that version is already stored.
  Status put_rules(std::uint64_t version, sync::ByteView body, const crypto::Signature& sig);
  // The highest stored version, or nullopt when no signed rules were received yet.
  Result<std::optional<StoredDocument>> latest_rules();

  // --- API credentials (tokens are stored as SHA-256 hashes only) ---
  Status add_terminal(const Terminal& t, const crypto::Hash32& token_hash);
  Result<std::optional<Terminal>> find_terminal(const crypto::Hash32& token_hash);
  Result<std::vector<Terminal>> list_terminals();

  // --- alerts (local to this node, newest first) ---
  Status add_alert(const Alert& a);
  Result<std::vector<Alert>> recent_alerts(std::size_t limit);

  // Up to `limit` of this node's own alerts with an id above `after_id`, ascending.
  Result<std::vector<Alert>> alerts_after(std::int64_t after_id, std::size_t limit);
  // Own alerts held per kind (source: zero id).
  Result<std::vector<AlertCount>> alert_counts();
  // Makes the next own alert's id greater than `id` (after a restore from an old backup, HQ may
  // already hold alerts under the ids this node would reuse).
  Status reserve_alert_ids(std::int64_t id);

  // --- alerts other nodes reported (storage/src/store_peers.cc) ---
  // Stores `alerts` of `source`, ignoring ids already held, and keeps the newest
  // limits::kPeerAlertsPerSourceMax of that source.
  Status add_peer_alerts(const sync::NodeId& source, const std::vector<PeerAlert>& alerts);
  // The highest alert id of `source` held (0 when none).
  Result<std::int64_t> peer_alerts_cursor(const sync::NodeId& source);
  // Newest first (by the source's clock): every source's, or only `source`'s.
  Result<std::vector<PeerAlert>> recent_peer_alerts(const std::optional<sync::NodeId>& source, std::size_t limit);
  Result<std::vector<AlertCount>> peer_alert_counts();

  // --- last contact with each peer (storage/src/store_peers.cc) ---
  Status put_peer_contact(const PeerContact& c);
  Result<std::vector<PeerContact>> peer_contacts();

 private:
  explicit Store(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  Status migrate();
  // Writes the rows of `m` that differ from `before` (every row when `before` is empty state).
  Status save_member(const sync::MemberId& id, const sync::MemberState& m,
                     const sync::MemberState& before);
  Status save_pin_failures(const sync::MemberId& id, const sync::RecentEvents& failures);
  std::unique_ptr<Database> db_;
};

}  // namespace outpost::storage
