#include "outpost/sync/rebalance.h"

namespace outpost::sync {

std::optional<RebalanceMove> plan_rebalance(const EscrowCounter& counter, const NodeId& self,
                                            const std::map<NodeId, std::uint64_t>& last_seen_ms,
                                            std::uint64_t now_ms, const RebalancePolicy& policy) {
  const std::int64_t here = counter.rights(self);
  if (here <= 0) return std::nullopt;
  auto ago = [now_ms](std::uint64_t t) { return now_ms > t ? now_ms - t : 0; };
  const auto mine = last_seen_ms.find(self);
  if (mine != last_seen_ms.end() && ago(mine->second) < policy.idle_ms) return std::nullopt;  // still shops here
  const std::pair<const NodeId, std::uint64_t>* best = nullptr;
  for (const auto& entry : last_seen_ms) {  // ascending node id: ties keep the smaller id
    if (entry.first == self || ago(entry.second) >= policy.recent_ms) continue;
    if (best == nullptr || entry.second > best->second) best = &entry;
  }
  if (best == nullptr) return std::nullopt;
  // Rights only flow toward where the member was seen last: never to a node seen before this one
  // (so two idle holders cannot hand the same rights back and forth).
  if (mine != last_seen_ms.end() && best->second <= mine->second) return std::nullopt;
  const std::uint64_t held = static_cast<std::uint64_t>(here);
  const std::uint32_t keep = policy.keep_percent > 100 ? 100 : policy.keep_percent;
  // held <= 2^62 (limits::kCounterMax): held / 100 * keep cannot overflow.
  const std::uint64_t kept = held / 100 * keep + (held % 100) * keep / 100;
  const std::uint64_t amount = held - kept;
  if (amount == 0 || amount < policy.min_move) return std::nullopt;
  return RebalanceMove{best->first, amount};
}

}  // namespace outpost::sync
