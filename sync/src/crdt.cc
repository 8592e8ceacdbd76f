#include "outpost/sync/crdt.h"

#include <algorithm>
#include <functional>

#include "outpost/base/limits.h"

namespace outpost::sync {

Status checked_add(std::uint64_t& a, std::uint64_t b) {
  if (b > limits::kCounterMax || a > limits::kCounterMax - b) {
    return Status::refused("counter would exceed its maximum");
  }
  a += b;
  return Status::ok();
}

namespace {
template <typename K>
std::uint64_t get(const std::map<K, std::uint64_t>& m, const K& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}
template <typename K>
void merge_max(std::map<K, std::uint64_t>& into, const std::map<K, std::uint64_t>& from) {
  for (const auto& [k, v] : from) {
    if (v == 0) continue;  // never create a zero entry (see credit())
    auto& slot = into[k];
    slot = std::max(slot, v);
  }
}
}  // namespace

// A zero amount leaves no entry: entries that are absent and entries that are 0 mean the same,
// and keeping only the first form makes operator== compare meaning (e.g. a replay of the log
// against the state loaded from storage, which keeps no zero rows).

Status EscrowCounter::credit(const NodeId& i, std::uint64_t amount) {
  if (amount == 0) return Status::ok();
  std::uint64_t next = get(credit_, i);
  OUTPOST_RETURN_IF_ERROR(checked_add(next, amount));
  credit_[i] = next;
  return Status::ok();
}

bool EscrowCounter::covers(const NodeId& i, std::uint64_t amount) const {
  const std::int64_t have = rights(i);
  return have >= 0 && static_cast<std::uint64_t>(have) >= amount;
}

Status EscrowCounter::debit(const NodeId& i, std::uint64_t amount) {
  if (!covers(i, amount)) return Status::refused("not enough rights at this node");
  OUTPOST_RETURN_IF_ERROR(apply_debit(i, amount));
  // Invariant: only node i lowers rights(i), and never below zero.
  OUTPOST_CHECK(rights(i) >= 0);
  return Status::ok();
}

Status EscrowCounter::move(const NodeId& i, const NodeId& j, std::uint64_t amount) {
  if (i == j) return Status::invalid("cannot move rights to the same node");
  if (!covers(i, amount)) return Status::refused("not enough rights at this node");
  OUTPOST_RETURN_IF_ERROR(apply_move(i, j, amount));
  OUTPOST_CHECK(rights(i) >= 0);
  return Status::ok();
}

Status EscrowCounter::apply_debit(const NodeId& i, std::uint64_t amount) {
  if (amount == 0) return Status::ok();
  std::uint64_t next = get(debit_, i);
  OUTPOST_RETURN_IF_ERROR(checked_add(next, amount));
  debit_[i] = next;
  return Status::ok();
}

Status EscrowCounter::apply_move(const NodeId& i, const NodeId& j, std::uint64_t amount) {
  if (amount == 0) return Status::ok();
  auto key = std::make_pair(i, j);
  std::uint64_t next = get(moved_, key);
  OUTPOST_RETURN_IF_ERROR(checked_add(next, amount));
  moved_[key] = next;
  return Status::ok();
}

void EscrowCounter::merge(const EscrowCounter& other) {
  merge_max(credit_, other.credit_);
  merge_max(debit_, other.debit_);
  merge_max(moved_, other.moved_);
}

std::int64_t EscrowCounter::value() const {
  // All entries are below kCounterMax (2^62) and bounded in count by the node count, so the
  // sums fit in signed 128-bit; clamp into int64 for reporting.
  __int128 v = 0;
  for (const auto& [k, c] : credit_) v += c;
  for (const auto& [k, d] : debit_) v -= d;
  return static_cast<std::int64_t>(v);
}

std::int64_t EscrowCounter::rights(const NodeId& i) const {
  __int128 r = static_cast<__int128>(get(credit_, i)) - get(debit_, i);
  for (const auto& [k, m] : moved_) {
    if (k.second == i) r += m;
    if (k.first == i) r -= m;
  }
  return static_cast<std::int64_t>(r);
}

std::map<NodeId, std::int64_t> EscrowCounter::rights_by_node() const {
  std::map<NodeId, std::int64_t> out;
  for (const auto& [k, c] : credit_) out[k];
  for (const auto& [k, d] : debit_) out[k];
  for (const auto& [k, m] : moved_) {
    out[k.first];
    out[k.second];
  }
  for (auto it = out.begin(); it != out.end();) {
    it->second = rights(it->first);
    if (it->second == 0) {
      it = out.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

Status GCounter::add(const NodeId& node, std::uint32_t month, std::uint64_t amount) {
  if (amount == 0) return Status::ok();
  auto key = std::make_pair(node, month);
  std::uint64_t next = get(e_, key);
  OUTPOST_RETURN_IF_ERROR(checked_add(next, amount));
  e_[key] = next;
  return Status::ok();
}

void GCounter::merge(const GCounter& other) { merge_max(e_, other.e_); }

std::uint64_t GCounter::total() const {
  std::uint64_t t = 0;
  for (const auto& [k, v] : e_) t += v;
  return t;
}

std::uint64_t GCounter::sum_months(std::uint32_t from_month, std::uint32_t to_month) const {
  std::uint64_t t = 0;
  for (const auto& [k, v] : e_) {
    if (k.second >= from_month && k.second <= to_month) t += v;
  }
  return t;
}

bool LwwRegister::assign(const std::string& value, Hlc hlc, const NodeId& origin) {
  // The value breaks the (only equivocation-possible) tie of equal (hlc, origin), so that merge
  // stays commutative for every pair of states.
  if (set_ && std::tie(hlc, origin, value) <= std::tie(hlc_, origin_, value_)) return false;
  set_ = true;
  value_ = value;
  hlc_ = hlc;
  origin_ = origin;
  return true;
}

void LwwRegister::merge(const LwwRegister& other) {
  if (other.set_) assign(other.value_, other.hlc_, other.origin_);
}

void RecentEvents::add(Hlc hlc, const NodeId& origin) {
  const Event e{hlc, origin};
  auto at = std::lower_bound(events_.begin(), events_.end(), e, std::greater<Event>());
  if (at != events_.end() && *at == e) return;  // already held
  events_.insert(at, e);
  if (events_.size() > kKept) events_.resize(kKept);
}

void RecentEvents::merge(const RecentEvents& other) {
  for (const Event& e : other.events_) add(e.hlc, e.origin);
}

std::size_t RecentEvents::count_after(Hlc after) const {
  return static_cast<std::size_t>(
      std::count_if(events_.begin(), events_.end(), [&](const Event& e) { return e.hlc > after; }));
}

}  // namespace outpost::sync
