// Replica: the in-memory CRDT state that a set of ops produces. It is the reference semantics of
// every op kind: the node's SQL state, `outpost log verify`, the audit verifier and the simulator
// all compare against it. Applies each origin's ops in seq order; re-applying an op it already
// holds is a no-op. Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include "outpost/base/status.h"
#include "outpost/sync/crdt.h"
#include "outpost/sync/op.h"
#include "outpost/sync/rules.h"

namespace outpost::sync {

struct MemberState {
  std::map<Field, LwwRegister> fields;
  EscrowCounter points;
  EscrowCounter wallet;
  GCounter spend;           // purchase amounts, per (node, month)
  GCounter spend_reversed;  // purchase amounts of reversed earns, per (node, month)
  GCounter visits;          // purchases, per (node, month)
  RecentEvents pin_failures;  // the newest wrong PINs (pin_failure ops), chain-wide

  void merge(const MemberState& other);
  bool operator==(const MemberState&) const = default;
  // Spend counted toward tiers: the `window` months ending with `month`, net of reversals.
  std::uint64_t rolling_spend(std::uint32_t month, std::uint32_t window) const;
  std::string field(Field f) const;
};

enum class ApplyResult { kApplied, kDuplicate };

class Replica {
 public:
  // Applies `op` if it is the next seq of its origin. Returns kDuplicate for an op already
  // applied, kCorruption for a gap (seq beyond next) or for a second reversal of one op.
  Result<ApplyResult> apply(const Op& op);

  // Merges another replica's state (pointwise), for the CRDT law tests and the simulator.
  void merge(const Replica& other);

  const std::map<MemberId, MemberState>& members() const { return members_; }
  const MemberState* member(const MemberId& id) const;
  std::uint64_t applied_seq(const NodeId& origin) const;
  const std::map<NodeId, std::uint64_t>& version_vector() const { return vv_; }
  bool is_reversed(const NodeId& origin, std::uint64_t seq) const;
  bool operator==(const Replica& other) const {
    return members_ == other.members_ && vv_ == other.vv_ && reversed_ == other.reversed_;
  }

 private:
  std::map<MemberId, MemberState> members_;
  std::map<NodeId, std::uint64_t> vv_;
  std::set<std::pair<NodeId, std::uint64_t>> reversed_;
};

// Applies the effects of one op to a member's state (no seq bookkeeping). Debits are applied
// unconditionally: the origin checked its rights before signing.
Status apply_effects(MemberState& m, const Op& op);

}  // namespace outpost::sync
