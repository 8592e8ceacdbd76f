// Ledger: the store's member-operation service. Validates a request, builds the op, signs it,
// appends it to this node's chain and applies it to CRDT state in one SQLite transaction that is
// durable before the call returns. Idempotent by request_id. Used by the `outpost` CLI (directly
// on a data dir) and by outpostd. Not thread-safe: one owner serializes calls (the daemon's
// group-commit writer).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/outcome.h"
#include "outpost/node/views.h"
#include "outpost/storage/store.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/op.h"
#include "outpost/sync/rebalance.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rules.h"
#include "outpost/sync/session.h"

namespace outpost::node {

using Json = nlohmann::ordered_json;

// Files inside a data dir.
inline constexpr const char* kDbFile = "outpost.db";
inline constexpr const char* kSigningKeyFile = "node.key";
inline constexpr const char* kRulesFile = "rules.toml";

struct EnrollRequest {
  std::string request_id;
  std::string card;
  std::string name;
  std::string phone;
  std::string birthday;  // YYYY-MM-DD or empty
};

struct VerifyReport {
  std::uint64_t ops_checked = 0;
  std::uint64_t origins = 0;
  std::uint64_t members_compared = 0;
  std::vector<std::string> findings;  // empty when the log verifies
  bool ok() const { return findings.empty(); }
};

struct InitOptions {
  std::string name;
  std::string role = "store";
};

// Opens the database of the data dir `dir` (an existing one; nothing is created). Errors name
// the problem: kNotFound when `dir` is missing or is no data dir, kPermission when it or its
// database cannot be read, otherwise as storage::Store::open. With `options.vfs` set the
// database is the file of that path on that SQLite VFS (the simulator's MemVfs), not on disk.
Result<std::unique_ptr<storage::Store>> open_data_dir_store(
    const std::string& dir, const storage::StoreOptions& options = {});

// Signatures checked ahead of ingest on another thread (the daemon's verifier thread), so that
// the ledger worker, which stores and applies ops one batch at a time, does not also spend its
// core verifying them. An entry says: the op whose hash (SHA-256 over its signed bytes and its
// signature) is `hash` verifies under `key`; ingest uses an entry at most once. Bounded (the
// oldest entries go first). Thread-safe.
class VerifiedSignatures {
 public:
  static constexpr std::size_t kEntriesMax = 16384;  // 64 batches of 256 ops
  void add(const sync::Hash32& hash, const crypto::PublicKey& key);
  // True, and the entry is forgotten, when the op with `hash` was verified under exactly `key`.
  bool take(const sync::Hash32& hash, const crypto::PublicKey& key);

 private:
  std::mutex mu_;
  std::map<sync::Hash32, crypto::PublicKey> by_hash_;
  std::deque<sync::Hash32> order_;
};

class Ledger {
 public:
  // Creates a new data dir: the directory (mode 0700), the node's signing key (0600) and the
  // database with this node's identity. Fails if `dir` already holds an Outpost database.
  static Status init(const std::string& dir, const InitOptions& options);

  // Opens an existing data dir. Fails with kNotFound if it is not a data dir, kCorruption for
  // a damaged key or database, kUnsupported for a database from a newer version.
  // `store_options` as open_data_dir_store's.
  static Result<std::unique_ptr<Ledger>> open(const std::string& dir, sync::Clock& clock,
                                              const storage::StoreOptions& store_options = {});

  const sync::NodeId& node_id() const { return node_id_; }
  const std::string& node_name() const { return node_name_; }
  const crypto::PublicKey& public_key() const { return key_.public_key(); }
  // The program rules in force: HQ's newest signed rules once this node holds some, else the
  // data dir's rules.toml, else the defaults (docs/program-rules.md).
  const sync::ProgramRules& rules() const { return rules_; }
  // "hq" (signed by the root, received over sync or issued here), "file" or "default".
  const std::string& rules_source() const { return rules_source_; }
  // Version of the newest signed rules held; 0 when none.
  std::uint64_t signed_rules_version() const { return signed_rules_version_; }
  storage::Store& store() { return *store_; }

  // --- group commit ---
  // Opens one transaction for many requests: until commit_batch(), each mutating request runs
  // in its own savepoint (a failed or refused one leaves the others intact) and nothing is
  // durable. commit_batch() makes all of them durable with one fsync; an error means none of
  // them happened and their answers must not be given.
  Status begin_batch();
  Status commit_batch();
  bool in_batch() const { return batch_.has_value(); }

  // --- mutating requests (each one durable op, or a refusal, or an error) ---
  // Every one follows the request_id rule (replay()), and every one that moves value follows the
  // member status rule (sync::status_refusal: refusals member_blocked, member_closed).
  Result<Outcome> enroll(const EnrollRequest& req);
  // Updates profile fields. Status changes follow sync::profile_refusal: closing needs a zero
  // wallet (refusal wallet_not_empty, with the balance), and a closed member gets another status
  // only with `reopen` (refusal member_closed).
  Result<Outcome> update_profile(const std::string& request_id, const sync::MemberId& member,
                                 const std::vector<sync::FieldValue>& fields, bool reopen = false);
  // Records a purchase of `purchase_minor` and credits the points the member's tier earns.
  Result<Outcome> earn(const std::string& request_id, const sync::MemberId& member,
                       std::uint64_t purchase_minor, const std::string& receipt);
  Result<Outcome> redeem(const std::string& request_id, const sync::MemberId& member,
                         std::uint64_t points, const std::string& receipt);
  Result<Outcome> topup(const std::string& request_id, const sync::MemberId& member,
                        std::uint64_t amount_minor, const std::string& receipt);

  // Proof that a request may spend from a member's PIN-protected wallet or change its PIN: the
  // PIN was checked (pin_gate(), check_pin()) against the hash the member had then, or an operator
  // overrode it (pin_override(); the note is recorded in the op's receipt). Only the Ledger makes
  // one, so no path can spend past a PIN by forgetting to check it.
  class PinClearance {
   public:
    const sync::MemberId& member() const { return member_; }

   private:
    friend class Ledger;
    sync::MemberId member_{};
    std::string hash_;  // the pin_hash the PIN was checked against (empty: the member had none)
    std::string note_;  // non-empty: an operator override, recorded in the op's receipt
  };
  // Pays `amount_minor` from the wallet. A member with a PIN needs `pin`, a clearance for this
  // member and its current PIN (otherwise refused with pin_wrong; a repeated request_id of a spend
  // that went through is answered without one).
  Result<Outcome> spend(const std::string& request_id, const sync::MemberId& member,
                        std::uint64_t amount_minor, const std::string& receipt,
                        const PinClearance* pin = nullptr);
  // Reverses one op of this node, at most once.
  Result<Outcome> reverse(const std::string& request_id, const sync::NodeId& origin,
                          std::uint64_t seq);
  // Hands `amount` rights of `account` for `member` from this node to `target` (rights broker).
  Result<Outcome> move_rights(const std::string& request_id, const sync::MemberId& member,
                              sync::Account account, std::uint64_t amount,
                              const sync::NodeId& target);

  // Sets the member's wallet PIN (Argon2id hash, replicated as the pin_hash profile field).
  // The PIN must be 4 to 8 digits. Hashes on the calling thread (~0.1-0.2 s): outpostd hashes
  // off its ledger worker and calls set_pin_hash(). A member who has a PIN already needs
  // `authority`: a clearance of the old PIN (check_pin with kProfile) or an operator's
  // pin_override(); otherwise refused with pin_wrong.
  Result<Outcome> set_pin(const std::string& request_id, const sync::MemberId& member,
                          const std::string& pin, const PinClearance* authority = nullptr);
  // Sets the member's wallet PIN from its Argon2id hash (crypto::hash_pin of a valid PIN).
  Result<Outcome> set_pin_hash(const std::string& request_id, const sync::MemberId& member,
                               const std::string& pin_hash,
                               const PinClearance* authority = nullptr);
  // An operator's override of `member`'s PIN for one spend or PIN change: `note` (at most
  // limits::kReceiptBytesMax bytes with the receipt) is recorded in that op's receipt, so that
  // auditors see who passed the PIN by and why. The caller decides who may override: outpostd
  // an admin terminal, the CLI its operator (who holds the data dir).
  static PinClearance pin_override(const sync::MemberId& member, const std::string& note);

  // The PIN check of a spend (`purpose` kSpend) or a PIN change (kProfile), in two steps so that
  // the Argon2id verification runs off the thread that owns the ledger. The caller asks
  // pin_gate() without a verdict; kVerify names the hash the PIN must be checked against; the
  // caller verifies it on another thread and asks again, in the transaction of the spend, with
  // the verdict. Races are settled at that second call, against the state then: a verdict for a
  // hash that is no longer the member's (the PIN was changed, here or by sync, meanwhile) gets
  // kVerify again with the new hash; a lockout that began meanwhile refuses even a right PIN.
  struct PinVerdict {
    std::string hash;    // the pin_hash the PIN was checked against
    bool match = false;  // whether it matched
  };
  struct PinGate {
    enum class Kind { kPass, kRefuse, kVerify };
    Kind kind = Kind::kPass;
    Refusal refusal;  // kRefuse: the answer (member_blocked, member_closed, pin_wrong, pin_locked)
    std::string hash;        // kVerify: check the PIN against this hash
    PinClearance clearance;  // kPass: for spend() or set_pin_hash()
  };
  // kPass: the member has no PIN, or `verdict` says the PIN matches its current hash (a
  // pin_reset op then restarts the failure count chain-wide, when there were failures).
  // kRefuse: for a spend, a member that is not active (sync::status_refusal); locked
  // (sync::pin_lock: counted chain-wide); no PIN given; or `verdict` says wrong for the current
  // hash (a pin_failure op records it, replicated to every node; the kPinFailuresMax-th locks).
  // kVerify: see above.
  Result<PinGate> pin_gate(const sync::MemberId& member, sync::OpKind purpose, bool pin_given,
                           const PinVerdict* verdict, std::uint64_t now_ms);
  // pin_gate() in one call, verifying the hash on the calling thread (the CLI): kPass or kRefuse.
  Result<PinGate> check_pin(const sync::MemberId& member, sync::OpKind purpose,
                            const std::string* pin, std::uint64_t now_ms);
  static constexpr int kPinFailuresMax = static_cast<int>(limits::kPinFailuresMax);
  static constexpr std::uint64_t kPinLockoutMs = limits::kPinLockoutMs;
  // True when `request_id` was already executed here.
  Result<bool> has_request(const std::string& request_id);

  // Creates an API credential and returns its bearer token (shown once; only its hash is kept).
  Result<std::string> add_terminal(const std::string& name, const std::string& role);

  // --- replication (called by the sync session on the worker thread) ---
  // Verifies and applies ops received from a peer, all or nothing (a savepoint): signature
  // under the origin's key, revocation cut-off, seq contiguity and chain. Equivocations (a
  // correctly signed second op at a held seq, or a correctly signed forked successor) are kept
  // as evidence and raised as alerts against their origin, never applied. An op whose signature
  // fails refuses the batch with a `bad_signature` alert against `from`, the authenticated peer
  // that sent it (none when unknown), never against the origin it names. A correctly signed op
  // of this node's own origin above its head proves the chain holds that seq: the node fences
  // up to it (see check_fence) when the batch does not bring it back. Durable when the enclosing
  // transaction (the worker's batch) commits.
  Result<sync::IngestReport> ingest(const std::vector<sync::SignedOp>& ops,
                                    const std::optional<sync::NodeId>& from = std::nullopt);
  // Rights broker, holder side: moves min(amount, rights held here) to `to` with a move op.
  Result<std::uint64_t> grant_rights(const sync::NodeId& to, const sync::MemberId& member,
                                     sync::Account account, std::uint64_t amount);
  // Rebalancer (docs/sync-protocol.md, "Rebalancer"): looks at up to `members_max` members with
  // balances after `*cursor` (then advances it, wrapping to the start), and moves the idle rights
  // this node holds toward the node where each member now shops (sync::plan_rebalance). Each move
  // is an ordinary move op, durable with the enclosing batch. Returns the moves made (one line
  // each). Only rights held here move, so no move can overdraw anything.
  Result<std::vector<std::string>> rebalance(sync::MemberId* cursor, std::size_t members_max, std::uint64_t now_ms,
                                             const sync::RebalancePolicy& policy);
  // Records an alert (kinds: refused_spend, bad_signature, equivocation, revoked_peer, ...).
  void raise_alert(const std::string& kind, const std::string& node, const std::string& message);
  // Lets ingest skip the signature checks another thread already made (see VerifiedSignatures).
  void set_verified_signatures(std::shared_ptr<VerifiedSignatures> v) { verified_ = std::move(v); }

  // --- queries ---
  // Resolves "32-hex id" or a card number to a member id; kNotFound if unknown.
  Result<sync::MemberId> resolve_member(const std::string& id_or_card);
  Result<std::vector<sync::MemberId>> find_by_card(const std::string& card);
  Result<std::vector<sync::MemberId>> find_by_phone(const std::string& phone);
  // A member's profile, PIN state, tier and accounts (schema::member_json); kNotFound if unknown.
  Result<MemberView> member_view(const sync::MemberId& member);
  // Up to `limit` (at most limits::kHistoryRowsMax) of a member's ops, newest first, each with
  // its reversal (schema::history_json); kNotFound for an unknown member.
  Result<std::vector<HistoryEntry>> history(const sync::MemberId& member, std::size_t limit);
  // This node, what it holds and its seq fence (schema::status_json).
  Result<NodeStatus> node_status();

  // Re-verifies every signature and chain link of every origin held, replays the log into a
  // fresh replica and compares it with the stored CRDT state.
  Result<VerifyReport> verify_log();

  // Returns the public key of a known origin (this node; enrolled peers once a roster exists).
  std::optional<crypto::PublicKey> origin_key(const sync::NodeId& origin) const;

  // --- identity (docs/security.md) ---
  // The newest roster this node holds; null before enrollment. origin_key() and ingest() use
  // it (keys, revocation cutoffs), and a node the roster revokes signs nothing.
  std::shared_ptr<const sync::Roster> roster() const { return roster_; }
  // Verifies an offered roster (root signature, network, every certificate), stores it if it
  // may succeed the current one and starts using it. kRefused for a version that is not newer
  // (ignore it), kPermission or kCorruption for one that must not be accepted, kNotFound when
  // this node is not enrolled.
  Status accept_roster(sync::ByteView body, sync::ByteView sig);
  // Re-reads the newest stored roster (e.g. after `outpost hq enroll` or `hq revoke` wrote one).
  Status reload_roster();
  // Like reload_roster(), but only when the database holds a roster version other than the one
  // in use (another process, `outpost hq enroll|revoke`, wrote it). Returns whether it changed.
  Result<bool> refresh_roster();
  // Verifies offered HQ-signed rules (root, network, content), stores them if newer and puts
  // them in force. kRefused for a version that is not newer (ignore it), kPermission or
  // kCorruption for rules that must not be accepted, kNotFound when this node is not enrolled.
  Status accept_rules(sync::ByteView body, sync::ByteView sig);
  // Puts the newest stored signed rules in force when another process (`outpost hq rules`)
  // stored a version other than the one in force. Returns whether they changed.
  Result<bool> refresh_rules();
  // --- HQ tree head sets, carried by sync (docs/sync-protocol.md, BLOB kind 3) ---
  // Version of the newest tree head set held; 0 when none.
  std::uint64_t tree_head_version() const { return tree_head_version_; }
  // Verifies and stores an offered set (node::accept_tree_head_set; kRefused: ignore it) and
  // compares its heads with this node's own copies of those ops: a head whose op differs here
  // raises a `checkpoint_mismatch` alert (HQ and this node hold different histories).
  Status accept_tree_heads(sync::ByteView body, sync::ByteView sig);
  // Re-reads the newest stored version (after `outpost hq checkpoint` in another process or on
  // the daemon's checkpoint thread). Returns whether it changed.
  Result<bool> refresh_tree_heads();
  // OK unless the roster revokes this node; then kPermission with a message for the operator.
  // Every op this node would sign is refused with it.
  Status signing_allowed() const;

  // --- restored from a backup (docs/architecture.md, failure rule 7; docs/operations.md,
  // "Backup and restore") ---
  // A node must never sign a seq it already used: after a restore its database may lack its own
  // newest ops, which its peers hold. This "seq fence" keeps it from signing until it knows
  // (docs/security.md, "Seq fence"):
  //  - a database restored with `outpost restore` is marked; a store signs nothing until it has
  //    heard from HQ which of its own ops the chain holds; an HQ node until a peer's claim is
  //    met: the peer holds no more of HQ's ops than HQ does, or sync brought them back;
  //  - whenever HQ's HELLO shows more of a store's own ops than it holds (a copy restored by
  //    other means), the store signs nothing until it has ingested them back;
  //  - whenever a peer delivers an op of this node's origin, correctly signed with its own key,
  //    above its head that cannot be applied yet, it signs nothing until it has the ops up to it.
  // A store's claim alone never fences (a rogue store could claim seqs it cannot deliver and stop
  // a store, or HQ, for good): it raises an alert. "HQ" is the role in the certificate the
  // link authenticated. The fence is persisted, so a restart does not lift it. Every op this node
  // would sign is refused with kUnavailable and a message for the operator while fenced.
  Status check_fence(std::uint64_t own_head_seq) const;
  // Records a peer's HELLO: `own_seq_at_peer` is this node's seq in the peer's version vector;
  // `peer_name` and `peer_is_hq` come from the certificate the link authenticated, never from
  // the HELLO. Raises an `own_seq_behind` alert when the peer holds more than this node does.
  Status observe_peer_hello(const std::string& peer_name, bool peer_is_hq, std::uint64_t own_seq_at_peer);
  // The fence state (schema::fence_json).
  Result<FenceState> fence_state();
  // Lifts the fence by operator decision (`outpost fence release`): this node may then reuse a
  // seq its peers hold, which they will record as equivocation. Returns the state before.
  Result<FenceState> release_fence();
  // Marks `store` (a restored copy of a data dir's database) as awaiting a peer.
  static Status mark_restored(storage::Store& store);

 private:
  // What ingest_batch() saw besides its result: recorded even when the batch is refused.
  struct IngestFindings {
    bool bad_signature = false;       // an op's signature failed under its origin's key
    std::uint64_t own_seq_proven = 0;  // highest seq of a correctly signed op of our own origin
  };
  // ingest() without the alerts and the fence.
  Result<sync::IngestReport> ingest_batch(const std::vector<sync::SignedOp>& ops,
                                          IngestFindings& found);
  // Fences up to `seq` when it is above both the held head and the floor (persisted).
  Status raise_own_seq_floor(std::uint64_t seq, const std::string& why);
  // HQ restored with the mark: stops waiting once the head meets a peer's claim.
  Status lift_restore_wait_if_met();
  Ledger(std::unique_ptr<storage::Store> store, crypto::SigningKey key, sync::Clock& clock)
      : store_(std::move(store)), key_(std::move(key)), clock_(clock) {}

  // Runs the common path: idempotency check, op build (seq, prev, hlc), `check` (may refuse),
  // sign, append+apply, record the answer (schema::done_json), commit.
  using Check = std::function<Result<std::optional<Refusal>>(sync::Op&, const sync::MemberState*)>;
  Result<Outcome> execute(const std::string& request_id, sync::Op op, bool member_must_exist,
                          const Check& check);
  // The request_id rule of every mutating request (docs/api.md, "request_id"): when `request_id`
  // already made an op, fills `out` with its stored first answer and returns true if that op is
  // the operation `asked` describes (sync::same_request), and fails with
  // kInvalidArgument, naming the op, if it is another one. Returns false for an unused id.
  Result<bool> replay(const std::string& request_id, const sync::Op& asked, Outcome& out);
  Result<Outcome> debit(const std::string& request_id, const sync::MemberId& member,
                        sync::OpKind kind, std::uint64_t amount, const std::string& receipt,
                        const PinClearance* pin);
  // Refuses (pin_wrong, message `needed`) op `o` of member `m`, which has a PIN, unless `pin`
  // clears it; an override's note is added to the op's receipt.
  static Result<std::optional<Refusal>> pin_cleared(const sync::MemberState& m, sync::Op& o,
                                                    const PinClearance* pin, const char* needed);
  // Records a wrong PIN for `member` (a pin_failure op) / restarts the count (a pin_reset field).
  Status record_pin_failure(const sync::MemberId& member);
  Status reset_pin_failures(const sync::MemberId& member);

  std::unique_ptr<storage::Store> store_;
  crypto::SigningKey key_;
  sync::Clock& clock_;
  sync::NodeId node_id_{};
  std::string node_name_;
  // Loads HQ's newest signed rules, if this node is enrolled and holds some.
  Status reload_signed_rules();

  sync::ProgramRules rules_;
  std::string rules_source_ = "default";
  std::uint64_t tree_head_version_ = 0;
  bool is_hq_ = false;
  bool awaiting_peer_ = false;       // meta "restored_awaiting_peer"
  std::uint64_t own_seq_floor_ = 0;  // meta "own_seq_floor": highest own seq a peer holds
  // HQ restored with the mark: the own seq each peer (by certificate name) claimed to hold; the
  // wait ends when the head reaches one of them. In memory only (the mark itself is persisted).
  std::map<std::string, std::uint64_t> restore_claims_;
  std::uint64_t signed_rules_version_ = 0;
  std::optional<storage::Transaction> batch_;
  std::shared_ptr<VerifiedSignatures> verified_;
  // verify_op, unless the verifier thread already checked this op under `key`.
  Status verify_received(const sync::SignedOp& sop, const crypto::PublicKey& key);
  std::shared_ptr<const sync::Roster> roster_;
};

// --- input validation shared by the CLI and the HTTP API (one-line errors) ---
// Parses a positive integer amount in [1, limits::kAmountMax]; rejects signs, decimals,
// whitespace, leading '+', empty strings and overflow.
Result<std::uint64_t> parse_amount(const std::string& text, const char* what);
Status validate_card(const std::string& card);
Status validate_phone(const std::string& phone);
Status validate_name(const std::string& name);
Status validate_birthday(const std::string& date);
Status validate_request_id(const std::string& request_id);
// A member PIN: 4 to 8 digits.
Status validate_pin(const std::string& pin);
// Returns a fresh random request id (32 hex digits).
std::string new_request_id();

// Loads rules from a TOML file (docs/program-rules.md); kNotFound if absent.
Result<sync::ProgramRules> load_rules_file(const std::string& path);

}  // namespace outpost::node
