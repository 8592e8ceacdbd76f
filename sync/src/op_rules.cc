// The per-kind part of the rule book (rule_book.h): for each op kind, the status rule, the rights
// rule, its effect on member state and what replay and audit need to know of it. Every switch
// over OpKind here lists every kind and has no `default:`, so that a new kind fails to compile
// until each rule says what it does with it (see "Adding an op kind" in rule_book.h).
#include <algorithm>

#include "outpost/sync/member_rules.h"
#include "outpost/sync/rule_book.h"

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

// The message of an insufficient_rights refusal, worded for the kind of op refused.
std::string rights_message(const Op& op, const RuleRefusal::Rights& r) {
  switch (op.kind) {
    case OpKind::kRedeem:
    case OpKind::kSpend:
      return std::string(kind_name(op.kind)) + " of " + std::to_string(op.amount) + " " +
             (op.account == Account::kPoints ? "points" : "wallet") + " refused: balance " +
             std::to_string(r.balance) + ", rights here " + std::to_string(r.here) +
             ", shortfall " + std::to_string(r.shortfall);
    case OpKind::kMove:
      return "move of " + std::to_string(op.amount) + " refused: rights here " +
             std::to_string(r.here);
    case OpKind::kReverse:
      return "reversal of " + op_ref_string(op.ref_origin, op.ref_seq) + " needs " +
             std::to_string(op.amount) + " rights here, only " + std::to_string(r.here) +
             " are left (already spent)";
    case OpKind::kNone:
    case OpKind::kEnroll:
    case OpKind::kProfile:
    case OpKind::kEarn:
    case OpKind::kTopup:
    case OpKind::kPinFailure:
      break;
  }
  return std::string(kind_name(op.kind)) + " refused: not enough rights here";
}

}  // namespace

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
    case OpKind::kNone:
    case OpKind::kEnroll:
    case OpKind::kProfile:
    case OpKind::kPinFailure:
      return std::nullopt;
  }
  if (status == MemberStatus::kClosed) return closed(op);
  if (refused_when_blocked) return blocked(op);
  return std::nullopt;
}

bool lowers_rights(const Op& op) {
  switch (op.kind) {
    case OpKind::kRedeem:
    case OpKind::kSpend:
    case OpKind::kMove:
      return true;
    case OpKind::kReverse:
      return op.ref_kind == OpKind::kEarn || op.ref_kind == OpKind::kTopup;
    case OpKind::kNone:
    case OpKind::kEnroll:
    case OpKind::kProfile:
    case OpKind::kEarn:
    case OpKind::kTopup:
    case OpKind::kPinFailure:
      return false;
  }
  return false;
}

std::optional<RuleRefusal> rights_refusal(const MemberState& m, const Op& op, const NodeId& here) {
  if (!lowers_rights(op)) return std::nullopt;
  const EscrowCounter& c = m.counter(op.account);
  if (c.covers(here, op.amount)) return std::nullopt;
  RuleRefusal::Rights r;
  r.account = op.account;
  r.requested = op.amount;
  r.balance = c.value();
  const std::int64_t rights_here = c.rights(here);
  r.here = rights_here > 0 ? static_cast<std::uint64_t>(rights_here) : 0;
  r.shortfall = op.amount - r.here;  // covers() failed: here < amount
  for (const auto& [node, rights] : c.rights_by_node()) {
    if (node != here) r.elsewhere[node] = rights;
  }
  std::string message = rights_message(op, r);
  return RuleRefusal{"insufficient_rights", std::move(message), std::move(r)};
}

Status apply_effects(MemberState& m, const Op& op) {
  const std::uint32_t month = month_index(op.hlc.wall_ms);
  switch (op.kind) {
    case OpKind::kEnroll:
    case OpKind::kProfile:
      for (const auto& f : op.fields) m.fields[f.field].assign(f.value, op.hlc, op.origin);
      return Status::ok();
    case OpKind::kEarn:
      OUTPOST_RETURN_IF_ERROR(m.points.credit(op.origin, op.amount));
      OUTPOST_RETURN_IF_ERROR(m.spend.add(op.origin, month, op.spend_minor));
      return m.visits.add(op.origin, month, 1);
    case OpKind::kRedeem:
      return m.points.apply_debit(op.origin, op.amount);
    case OpKind::kTopup:
      return m.wallet.credit(op.origin, op.amount);
    case OpKind::kSpend:
      return m.wallet.apply_debit(op.origin, op.amount);
    case OpKind::kMove:
      return m.counter(op.account).apply_move(op.origin, op.target, op.amount);
    case OpKind::kReverse:
      switch (op.ref_kind) {
        case OpKind::kEarn:
          OUTPOST_RETURN_IF_ERROR(m.points.apply_debit(op.origin, op.amount));
          return m.spend_reversed.add(op.origin, month, op.spend_minor);
        case OpKind::kRedeem:
          return m.points.credit(op.origin, op.amount);
        case OpKind::kTopup:
          return m.wallet.apply_debit(op.origin, op.amount);
        case OpKind::kSpend:
          return m.wallet.credit(op.origin, op.amount);
        default:
          return Status::corruption("reverse of an unreversible kind");
      }
    case OpKind::kPinFailure:
      m.pin_failures.add(op.hlc, op.origin);
      return Status::ok();
    case OpKind::kNone:
      break;
  }
  return Status::corruption("unknown op kind");
}

std::int64_t value_change(const Op& op) {
  const auto amount = static_cast<std::int64_t>(op.amount);
  switch (op.kind) {
    case OpKind::kEarn:
    case OpKind::kTopup:
      return amount;
    case OpKind::kRedeem:
    case OpKind::kSpend:
      return -amount;
    case OpKind::kReverse: {
      if (!is_reversible(op.ref_kind)) return 0;
      Op undone;
      undone.kind = op.ref_kind;
      undone.amount = op.amount;
      return -value_change(undone);
    }
    case OpKind::kNone:
    case OpKind::kEnroll:
    case OpKind::kProfile:
    case OpKind::kMove:
    case OpKind::kPinFailure:
      return 0;
  }
  return 0;
}

std::uint64_t points_for_purchase(const MemberState* m, const ProgramRules& rules,
                                  std::uint32_t month, std::uint64_t purchase_minor) {
  const std::uint64_t spend = m ? m->rolling_spend(month, rules.window_months) : 0;
  return rules.points_for(purchase_minor, rules.tier_for(spend));
}

bool is_reversible(OpKind kind) {
  switch (kind) {
    case OpKind::kEarn:
    case OpKind::kRedeem:
    case OpKind::kTopup:
    case OpKind::kSpend:
      return true;
    case OpKind::kNone:
    case OpKind::kEnroll:
    case OpKind::kProfile:
    case OpKind::kReverse:
    case OpKind::kMove:
    case OpKind::kPinFailure:
      return false;
  }
  return false;
}

Op reversal_of(const Op& target) {
  Op op;
  op.kind = OpKind::kReverse;
  op.member = target.member;
  op.account = target.account;
  op.amount = target.amount;
  op.spend_minor = target.kind == OpKind::kEarn ? target.spend_minor : 0;
  op.ref_origin = target.origin;
  op.ref_seq = target.seq;
  op.ref_kind = target.kind;
  return op;
}

ReversalMatch match_reversal(const Op& reversal, const Op& target) {
  if (reversal.ref_kind != target.kind) return ReversalMatch::kWrongKind;
  const Op want = reversal_of(target);
  const bool exact = reversal.member == want.member && reversal.account == want.account &&
                     reversal.amount == want.amount && reversal.spend_minor == want.spend_minor;
  return exact ? ReversalMatch::kExact : ReversalMatch::kNotExact;
}

bool same_request(const Op& made, const Op& asked) {
  if (made.kind != asked.kind) return false;
  switch (asked.kind) {
    case OpKind::kEnroll:
      return true;
    case OpKind::kReverse:
      return made.ref_origin == asked.ref_origin && made.ref_seq == asked.ref_seq;
    case OpKind::kEarn:
      return made.member == asked.member && made.spend_minor == asked.spend_minor;
    case OpKind::kNone:
    case OpKind::kProfile:
    case OpKind::kRedeem:
    case OpKind::kTopup:
    case OpKind::kSpend:
    case OpKind::kMove:
    case OpKind::kPinFailure:
      return made.member == asked.member && made.account == asked.account &&
             made.amount == asked.amount && made.target == asked.target;
  }
  return false;
}

}  // namespace outpost::sync
