#include "outpost/sync/member_rules.h"

#include <algorithm>

#include "outpost/base/limits.h"

namespace outpost::sync {

namespace {

// "topup", or "reverse of a topup".
std::string what(const Op& op) {
  std::string w = kind_name(op.kind);
  if (op.kind == OpKind::kReverse) w += std::string(" of a ") + kind_name(op.ref_kind);
  return w;
}

RuleRefusal blocked(const Op& op) {
  return {"member_blocked", "member " + id_hex(op.member) + " is blocked: no " + what(op) +
                                " until the member is set active again"};
}

RuleRefusal closed(const Op& op) {
  return {"member_closed",
          "member " + id_hex(op.member) + " is closed: no " + what(op) + " on a closed account"};
}

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

std::optional<RuleRefusal> status_refusal(const MemberState& m, const Op& op) {
  const MemberStatus status = member_status(m);
  if (status == MemberStatus::kActive) return std::nullopt;
  bool refused_when_blocked = false;
  switch (op.kind) {
    case OpKind::kEarn:
    case OpKind::kRedeem:
    case OpKind::kTopup:
    case OpKind::kSpend:
    case OpKind::kMove:
      refused_when_blocked = true;
      break;
    case OpKind::kReverse:
      if (op.ref_kind == OpKind::kEarn) return std::nullopt;  // points taken back: always fine
      refused_when_blocked = op.ref_kind == OpKind::kTopup;   // wallet value paid out
      break;                                                  // spend, redeem: a refund
    default:
      return std::nullopt;
  }
  if (status == MemberStatus::kClosed) return closed(op);
  if (refused_when_blocked) return blocked(op);
  return std::nullopt;
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
