// MemberState: one member's replicated state, the CRDTs that the member's ops change (profile
// registers, points and wallet escrow counters, spend and visit counters, recent wrong PINs).
// The rule book (rule_book.h) says what each op kind does to it; Replica holds one per member.
// Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "outpost/sync/crdt.h"
#include "outpost/sync/op.h"

namespace outpost::sync {

struct MemberState {
  std::map<Field, LwwRegister> fields;
  EscrowCounter points;
  EscrowCounter wallet;
  GCounter spend;             // purchase amounts, per (node, month)
  GCounter spend_reversed;    // purchase amounts of reversed earns, per (node, month)
  GCounter visits;            // purchases, per (node, month)
  RecentEvents pin_failures;  // the newest wrong PINs (pin_failure ops), chain-wide

  void merge(const MemberState& other);
  bool operator==(const MemberState&) const = default;
  // Spend counted toward tiers: the `window` months ending with `month`, net of reversals.
  std::uint64_t rolling_spend(std::uint32_t month, std::uint32_t window) const;
  std::string field(Field f) const;
  // The escrow counter of `account` (points or wallet; any other account gives the wallet's).
  const EscrowCounter& counter(Account account) const;
  EscrowCounter& counter(Account account);
};

}  // namespace outpost::sync
