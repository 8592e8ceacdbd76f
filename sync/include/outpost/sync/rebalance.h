// The rebalancer's policy (docs/sync-protocol.md, "Rebalancer"): which idle escrow rights a node
// hands on to the store a member now uses, so that the member can spend there even when that
// store is cut off later. A pure function of one member's escrow view and where the member was
// last seen; the daemon (node/) runs it on a timer over the members whose rights it holds. It
// only ever proposes moving rights the deciding node holds itself, so applying a proposal is an
// ordinary escrow move (EscrowCounter::move) and cannot break the non-negative invariant.
// Policy, not truth: it reads wall-clock times of ops, which decide nothing but where rights wait.
// Pure functions and value types; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "outpost/sync/crdt.h"
#include "outpost/sync/op.h"

namespace outpost::sync {

struct RebalancePolicy {
  // Rights held at a node are idle when the member made no op there for this long.
  std::uint64_t idle_ms = 7ULL * 24 * 3600 * 1000;
  // The member "uses" a node that saw an op of theirs within this long; the most recent one is
  // where idle rights go.
  std::uint64_t recent_ms = 30ULL * 24 * 3600 * 1000;
  // Share of idle rights the holder keeps (0..100), for a member who may come back.
  std::uint32_t keep_percent = 0;
  // Smaller moves are not worth an op.
  std::uint64_t min_move = 1;
};

// Returns the amount `self` should move of `account` to `to`, or nothing. `last_seen_ms` is, per
// node, the wall time of the member's newest op made at that node (any kind); `now_ms` the
// deciding node's clock. Moves only when: self holds rights > 0 in `counter`, the member made no
// op at self for policy.idle_ms, another node saw the member within policy.recent_ms and more
// recently than self did (the most recent such node is the target; ties go to the smaller node
// id), and the amount after keep_percent is at least min_move. Rights thus only flow toward the
// node that saw the member last, so holders never pass them back and forth.
struct RebalanceMove {
  NodeId to{};
  std::uint64_t amount = 0;
};
std::optional<RebalanceMove> plan_rebalance(const EscrowCounter& counter, const NodeId& self,
                                            const std::map<NodeId, std::uint64_t>& last_seen_ms,
                                            std::uint64_t now_ms, const RebalancePolicy& policy);

}  // namespace outpost::sync
