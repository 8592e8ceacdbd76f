#include "outpost/sync/member_rules.h"

#include <algorithm>

#include "outpost/base/limits.h"

namespace outpost::sync {

namespace {

Hlc register_hlc(const MemberState& m, Field f) {
  auto it = m.fields.find(f);
  return it == m.fields.end() || !it->second.is_set() ? Hlc{} : it->second.hlc();
}

}  // namespace

MemberStatus member_status(const MemberState& m) {
  const std::string s = m.field(Field::kStatus);
  if (s == "blocked") return MemberStatus::kBlocked;
  if (s == "closed") return MemberStatus::kClosed;
  return MemberStatus::kActive;
}

std::optional<RuleRefusal> profile_refusal(const MemberState& m,
                                           const std::vector<FieldValue>& fields, bool reopen) {
  auto status = std::find_if(fields.begin(), fields.end(),
                             [](const FieldValue& f) { return f.field == Field::kStatus; });
  if (status == fields.end()) return std::nullopt;
  const bool is_closed = member_status(m) == MemberStatus::kClosed;
  if (is_closed && status->value != "closed" && !reopen) {
    return RuleRefusal{"member_closed",
                       "member is closed; setting status '" + status->value +
                           "' reopens the account, which needs an explicit reopen"};
  }
  if (status->value == "closed" && m.wallet.value() != 0) {
    return RuleRefusal{"wallet_not_empty", "the wallet holds " + std::to_string(m.wallet.value()) +
                                               "; refund it to zero before closing the account"};
  }
  return std::nullopt;
}

PinLock pin_lock(const MemberState& m, std::uint64_t now_ms) {
  const Hlc mark = std::max(register_hlc(m, Field::kPinReset), register_hlc(m, Field::kPinHash));
  PinLock lock;
  lock.failures = m.pin_failures.count_after(mark);
  if (lock.failures < limits::kPinFailuresMax) return lock;
  // Invariant: the newest events come first, and at least one is newer than the mark.
  const std::uint64_t newest_ms = m.pin_failures.events().front().hlc.wall_ms;
  const std::uint64_t until = newest_ms + limits::kPinLockoutMs;
  if (now_ms < until) lock.locked_until_ms = until;
  return lock;
}

}  // namespace outpost::sync
