// The rule book: the rules that decide whether an op is acceptable and what it does to a member,
// each written once, as pure functions (no SQLite, no clock, no JSON, no I/O). The ledger (when it
// signs a request and when it ingests a peer's ops), `outpost log verify`, `outpost-audit verify`
// and the simulator call these and re-implement none of them (docs/sync-protocol.md, "The rule
// book"). Two parts:
//  - the log rule, judge_op(): whether a signed op is the next op of its origin's log as a node
//    holds it (apply, duplicate, gap, unknown origin, bad signature, revoked, equivocation, fork);
//  - per op kind: the status rule (status_refusal), the rights rule (rights_refusal), the effect
//    on member state (apply_effects), and what signing, replay and audit need to know of a kind
//    (lowers_rights, value_change, points_for_purchase, reversal_of, match_reversal,
//    same_request). The member rules that are not per kind (profile status changes, PIN lockout)
//    are in member_rules.h.
// Pure functions of their arguments; thread-compatible. Callbacks run on the calling thread.
//
// Adding an op kind touches the encoding, this rule book and the API/CLI, and nothing else:
//  1. The encoding: the OpKind value, kOpKindMax, kind_name() and validate_op()'s shape rules in
//     sync/op.h and sync/src/op.cc; its byte layout in docs/op-format.md and golden bytes in
//     tests/unit/sync_op_test.cc.
//  2. This rule book: a case in each switch over OpKind in sync/src/op_rules.cc. They have no
//     `default:`, so -Wswitch (an error here) names every one a new kind still lacks:
//     status_refusal, lowers_rights, value_change, is_reversible, apply_effects, same_request.
//     Unit tests in tests/unit/rule_book_test.cc: one refusal and one application, exact.
//     (A kind whose effect needs a new part of MemberState also adds it to member_state.h, with
//     its merge(), and to storage/, which persists member state.)
//  3. The API/CLI: a Ledger request that builds the op and asks status_refusal()/rights_refusal()
//     before signing it (node/), its HTTP route and CLI command, and docs/api.md.
// The log rule, sync, `log verify`, the audit's replay and the simulator then take the new kind
// as they are: they judge logs by judge_op() and apply ops by apply_effects().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/member_state.h"
#include "outpost/sync/op.h"
#include "outpost/sync/rules.h"

namespace outpost::sync {

// ---------------------------------------------------------------------------------------------
// The log rule
// ---------------------------------------------------------------------------------------------

// An origin's log as a node holds it: ops 1..seq, contiguous, and the hash of the op at `seq`.
struct LogHead {
  std::uint64_t seq = 0;  // 0: nothing held of this origin
  Hash32 hash{};          // of the op at `seq`; all zero when seq is 0
};

// What the node knows of an origin, from its newest roster.
struct OriginTrust {
  std::optional<crypto::PublicKey> key;  // nullopt: the origin is unknown here
  std::optional<std::uint64_t> cutoff;   // revoked: the last seq that stays valid
};

enum class LogVerdict : std::uint8_t {
  kApply,          // the origin's next op: validly signed, in force, chained to the head
  kDuplicate,      // the very op held at its seq (same hash): nothing to do
  kGap,            // seq beyond head + 1: ops are missing before it (signature not checked)
  kUnknownOrigin,  // no key for the origin: it cannot be authenticated
  kBadSignature,   // the origin's key does not verify it, or its hash is not its bytes'
  kRevoked,        // validly signed after the origin's revocation cut-off: invalid everywhere
  kEquivocation,   // validly signed, but another op than the one held at its seq: evidence
  kFork,           // validly signed successor of another op than the held head: evidence
  kMalformed,      // seq 0, or seq 1 naming a previous op: no origin signs it (decode refuses)
};
// "apply", "duplicate", "gap", "unknown_origin", "bad_signature", "revoked", "equivocation",
// "fork", "malformed".
const char* log_verdict_name(LogVerdict v);
// Whether the verdict makes the op evidence that its origin signed two histories (kept, raised
// as an alert against the origin, never applied).
inline bool is_equivocation_evidence(LogVerdict v) {
  return v == LogVerdict::kEquivocation || v == LogVerdict::kFork;
}

struct LogRuling {
  LogVerdict verdict = LogVerdict::kApply;
  // The op names a seq the node already holds (seq <= head.seq): kDuplicate, kEquivocation, or
  // a kUnknownOrigin / kBadSignature op that conflicts with the held one.
  bool at_held_seq = false;
  // kBadSignature: what the signature check said (e.g. "bad signature on op ...").
  Status signature;
};

// The hash of the op the node holds at `seq` (<= head.seq), or nullopt if it cannot tell.
using HeldHash = std::function<std::optional<Hash32>(std::uint64_t seq)>;
// Verifies the judged op's signature under `key`, and that its hash is its bytes' (verify_op
// does both). Callers that verified ahead, on other threads, answer from what they recorded.
using SignatureCheck = std::function<Status(const crypto::PublicKey& key)>;

// Where `seq` falls against a log whose head is `head_seq`: held already, the next one, or
// beyond a gap. The one seq-contiguity rule: judge_op() and Replica (which holds no hashes) use it.
enum class SeqPlace : std::uint8_t { kHeld, kNext, kBeyond };
SeqPlace seq_place(std::uint64_t head_seq, std::uint64_t seq);

// The log rule: judges `op` (whose hash is `hash`) against its origin's log as held (`head`,
// `held`) and what the node knows of the origin (`trust`). In this order, the first that applies:
//  1. kMalformed  seq 0, or seq 1 with a non-zero prev.
//  2. seq <= head.seq: kDuplicate when held(seq) is `hash`; otherwise the signature decides:
//     kEquivocation when it verifies (evidence only ever after the signature verifies), else
//     kUnknownOrigin / kBadSignature. at_held_seq is set.
//  3. kGap        seq > head.seq + 1 (refused before the signature is checked: it is cheap).
//  4. kUnknownOrigin, kBadSignature: the signature under trust.key, through `check`.
//  5. kRevoked    seq > trust.cutoff.
//  6. kFork       prev is not head.hash.
//  7. kApply.
// Callers decide what each verdict means for them (refuse a batch, skip an origin, report a
// finding); the verdict itself is the same everywhere. `held` may be empty (nothing is known at
// held seqs: such ops are conflicts to authenticate); `check` is called at most once.
LogRuling judge_op(const LogHead& head, const OriginTrust& trust, const Op& op, const Hash32& hash,
                   const HeldHash& held, const SignatureCheck& check);
// The same for a whole signed op, its signature checked by verify_op.
LogRuling judge_op(const LogHead& head, const OriginTrust& trust, const SignedOp& op,
                   const HeldHash& held);

// ---------------------------------------------------------------------------------------------
// Per op kind
// ---------------------------------------------------------------------------------------------

// A refusal by a rule: `code` for programs (the API's "error"), `message` for people, and the
// typed facts behind it.
struct RuleRefusal {
  // insufficient_rights: the account and where its value sits, seen from the node that refused.
  struct Rights {
    Account account = Account::kNone;
    std::uint64_t requested = 0;
    std::int64_t balance = 0;                  // the account's value
    std::uint64_t here = 0;                    // rights at the refusing node (0 when negative)
    std::uint64_t shortfall = 0;               // requested - here
    std::map<NodeId, std::int64_t> elsewhere;  // the other nodes' non-zero rights
  };
  RuleRefusal(std::string code_in, std::string message_in)
      : code(std::move(code_in)), message(std::move(message_in)) {}
  RuleRefusal(std::string code_in, std::string message_in, Rights rights_in)
      : code(std::move(code_in)), message(std::move(message_in)), rights(std::move(rights_in)) {}

  std::string code;
  std::string message;
  std::optional<Rights> rights;  // set for insufficient_rights
};

// The status rule: whether `op` may be made for member `m`, given the member's status. Earn,
// redeem, top-up, spend and rights moves are refused for a blocked member (member_blocked) and a
// closed one (member_closed). A reversal is judged by what it does to the member: undoing an earn
// (points taken back) is always allowed; undoing a top-up pays wallet value out and is refused
// like a spend; undoing a spend or a redeem is a refund to the member, allowed for a blocked
// member (the sale did not happen) and refused for a closed one (a closed account receives
// nothing). Enroll, profile and pin_failure pass; profile_refusal() (member_rules.h) judges
// status changes.
std::optional<RuleRefusal> status_refusal(const MemberState& m, const Op& op);

// Whether applying `op` can lower its origin's rights: redeem, spend, move, and the reversal of
// a credit (earn, topup). Exactly these ops must pass rights_refusal() before they are signed.
bool lowers_rights(const Op& op);

// The rights rule (the escrow guard, DESIGN.md "Data model"): whether node `here` holds enough
// rights of op.account for `op` in this view, so that its rights stay >= 0 however the other
// nodes' ops interleave. nullopt for every op that does not lower rights. Refusal
// insufficient_rights, with the message of its kind and the typed Rights.
std::optional<RuleRefusal> rights_refusal(const MemberState& m, const Op& op, const NodeId& here);

// Applies the effects of `op` to a member's state (no seq bookkeeping: see Replica, judge_op).
// Debits and moves are applied unconditionally: the origin checked its rights before signing.
// Fails only on counter overflow or an op kind with no effect defined (kCorruption).
Status apply_effects(MemberState& m, const Op& op);

// The change `op` makes to its account's value: +amount for a credit (earn, topup, the reversal
// of a redeem or spend), -amount for a debit (redeem, spend, the reversal of an earn or topup), 0
// for a move and for ops without an account.
std::int64_t value_change(const Op& op);

// The points an earn of `purchase_minor` credits to member `m` (null: not known here yet) in
// month `month`: the tier its rolling spend reaches under `rules`, then that tier's rate.
std::uint64_t points_for_purchase(const MemberState* m, const ProgramRules& rules,
                                  std::uint32_t month, std::uint64_t purchase_minor);

// Whether an op of `kind` can be reversed (earn, redeem, topup, spend).
bool is_reversible(OpKind kind);
// The reversal of `target` (is_reversible(target.kind)): kind, member, account, amount, the
// purchase of an earn and the reference. Origin, seq, prev, HLC and request id are the signer's.
Op reversal_of(const Op& target);
// Whether `reversal` undoes `target` exactly, as reversal_of() builds it.
enum class ReversalMatch : std::uint8_t {
  kExact,
  kWrongKind,  // ref_kind is not the target's kind
  kNotExact,   // member, account, amount or purchase differ
};
ReversalMatch match_reversal(const Op& reversal, const Op& target);

// The request_id rule's comparison (docs/api.md, "request_id"): whether the op a request_id
// already made (`made`) is the operation asked for again (`asked`): same kind and member and, per
// kind, the same amount, purchase, reversed op or rights move. An enrollment makes its member id,
// so only its kind can be compared; a reversal is named by the op it reverses.
bool same_request(const Op& made, const Op& asked);

}  // namespace outpost::sync
