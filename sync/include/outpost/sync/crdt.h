// State-based CRDTs of Outpost's data model (docs/architecture.md, "Data model"):
//  - EscrowCounter: bounded counter (Balegas et al., SRDS 2015) for points and wallet. Entries
//    only grow; value = sum(credit) - sum(debit); rights(i) = credit[i] + moves into i -
//    moves out of i - debit[i]. Only node i lowers rights(i), and only when its own view shows
//    enough, which keeps every rights(i) >= 0 and value >= 0 under any partition.
//  - GCounter: grow-only counter bucketed per (node, month), for spend and visits.
//  - LwwRegister: last-writer-wins register ordered by (HLC, origin), then value.
//  - RecentEvents: the newest few events (HLC, origin) of a grow-only set, for the PIN lockout.
// merge() of each is commutative, associative and idempotent (tests/unit/sync_crdt_test.cc).
// Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/op.h"

namespace outpost::sync {

class EscrowCounter {
 public:
  // Adds rights created at node i (top-up, earn, reversal of a debit). Fails on overflow.
  Status credit(const NodeId& i, std::uint64_t amount);
  // The escrow guard: whether node i holds at least `amount` rights in this view, so that it
  // may consume or hand them on (rights(i) stays >= 0 whatever other nodes do meanwhile). The
  // rule book's rights rule (rule_book.h: rights_refusal) and debit()/move() ask it.
  bool covers(const NodeId& i, std::uint64_t amount) const;
  // Consumes rights at node i. Refused (kRefused) when rights(i) < amount in this view.
  Status debit(const NodeId& i, std::uint64_t amount);
  // Hands rights from i to j. Refused when rights(i) < amount in this view.
  Status move(const NodeId& i, const NodeId& j, std::uint64_t amount);

  // Unconditional variants used when applying ops another node already checked: they only add
  // to the grow-only entries. Fail only on counter overflow.
  Status apply_debit(const NodeId& i, std::uint64_t amount);
  Status apply_move(const NodeId& i, const NodeId& j, std::uint64_t amount);

  // Pointwise maximum of every entry.
  void merge(const EscrowCounter& other);

  // Σ credit − Σ debit. Signed: a replica that holds a debit but not yet the credit it drew on
  // can see a transient negative; the global state never is.
  std::int64_t value() const;
  std::int64_t rights(const NodeId& i) const;
  // Every node with a non-zero rights entry, with its rights.
  std::map<NodeId, std::int64_t> rights_by_node() const;

  const std::map<NodeId, std::uint64_t>& credits() const { return credit_; }
  const std::map<NodeId, std::uint64_t>& debits() const { return debit_; }
  const std::map<std::pair<NodeId, NodeId>, std::uint64_t>& moves() const { return moved_; }
  bool operator==(const EscrowCounter&) const = default;

 private:
  std::map<NodeId, std::uint64_t> credit_;
  std::map<NodeId, std::uint64_t> debit_;
  std::map<std::pair<NodeId, NodeId>, std::uint64_t> moved_;
};

class GCounter {
 public:
  Status add(const NodeId& node, std::uint32_t month, std::uint64_t amount);
  void merge(const GCounter& other);
  std::uint64_t total() const;
  // Sum of the buckets with month in [from_month, to_month].
  std::uint64_t sum_months(std::uint32_t from_month, std::uint32_t to_month) const;
  const std::map<std::pair<NodeId, std::uint32_t>, std::uint64_t>& entries() const { return e_; }
  bool operator==(const GCounter&) const = default;

 private:
  std::map<std::pair<NodeId, std::uint32_t>, std::uint64_t> e_;
};

class LwwRegister {
 public:
  // Writes `value` if (hlc, origin, value) is newer than the current write; returns whether it did.
  bool assign(const std::string& value, Hlc hlc, const NodeId& origin);
  void merge(const LwwRegister& other);
  bool is_set() const { return set_; }
  const std::string& value() const { return value_; }
  Hlc hlc() const { return hlc_; }
  const NodeId& origin() const { return origin_; }
  bool operator==(const LwwRegister&) const = default;

 private:
  bool set_ = false;
  std::string value_;
  Hlc hlc_{};
  NodeId origin_{};
};

// The newest kKept events of a grow-only set of events, each named by (HLC, origin): a member's
// wrong PINs (docs/api.md, "PIN"). add() and merge() keep the newest kKept of the union, which
// does not depend on the order of the unions: merge() is commutative, associative and idempotent.
// It answers "how many events (up to kKept) happened after time t" exactly, which is all the PIN
// lockout rule asks, in bounded space however many events there were.
class RecentEvents {
 public:
  static constexpr std::size_t kKept = limits::kPinFailuresMax;
  struct Event {
    Hlc hlc;
    NodeId origin{};
    auto operator<=>(const Event&) const = default;
  };
  void add(Hlc hlc, const NodeId& origin);
  void merge(const RecentEvents& other);
  // Events with an HLC above `after` (at most kKept).
  std::size_t count_after(Hlc after) const;
  // Newest first, at most kKept, no duplicates.
  const std::vector<Event>& events() const { return events_; }
  bool operator==(const RecentEvents&) const = default;

 private:
  std::vector<Event> events_;
};

// Adds b to a, failing instead of passing limits::kCounterMax.
Status checked_add(std::uint64_t& a, std::uint64_t b);

}  // namespace outpost::sync
