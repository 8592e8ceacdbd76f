// Member rules that are not per op kind, part of the rule book (rule_book.h, which holds the
// per-kind status rule status_refusal()): a member's status, the rule for changing it, and the
// PIN lockout, documented in docs/api.md ("Member status", "PIN"). Pure functions of the
// member's replicated state (no SQLite, no clock they are not given, no JSON). The ledger asks
// them before it signs an op, at whichever node the request arrives, against that node's view.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/sync/member_state.h"
#include "outpost/sync/op.h"
#include "outpost/sync/rule_book.h"

namespace outpost::sync {

enum class MemberStatus { kActive, kBlocked, kClosed };

// The member's status field; "active" when unset.
MemberStatus member_status(const MemberState& m);

// Whether a profile update of `fields` may be made for member `m`: setting status `closed` needs a
// zero wallet balance (wallet_not_empty), and a closed member gets another status only when the
// caller says `reopen` (member_closed), so that no stale screen reopens an account by accident.
std::optional<RuleRefusal> profile_refusal(const MemberState& m,
                                           const std::vector<FieldValue>& fields, bool reopen);

// The PIN lockout of a member at wall time `now_ms`. Wrong PINs are pin_failure ops, made at any
// node and kept chain-wide (MemberState::pin_failures); the count restarts at the reset mark, the
// newer HLC of the pin_reset field (a right PIN) and the pin_hash field (a new PIN). The wallet is
// locked while at least limits::kPinFailuresMax wrong PINs are newer than the mark and the newest
// of them, by its HLC, is less than limits::kPinLockoutMs old.
struct PinLock {
  std::size_t failures = 0;           // wrong PINs since the reset mark, at most kPinFailuresMax
  std::uint64_t locked_until_ms = 0;  // wall time the lock ends; 0 when not locked
  bool locked() const { return locked_until_ms != 0; }
};
PinLock pin_lock(const MemberState& m, std::uint64_t now_ms);

}  // namespace outpost::sync
