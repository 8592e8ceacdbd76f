// Replica: the in-memory CRDT state that a set of ops produces, each op applied by the rule book
// (rule_book.h: apply_effects). The node's SQL state, `outpost log verify`, the audit verifier
// and the simulator all compare against it. Applies each origin's ops in seq order (seq_place);
// re-applying an op it already holds is a no-op. Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include "outpost/base/status.h"
#include "outpost/sync/member_state.h"
#include "outpost/sync/op.h"
#include "outpost/sync/rule_book.h"

namespace outpost::sync {

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

}  // namespace outpost::sync
