#include "outpost/sync/replica.h"

namespace outpost::sync {

void MemberState::merge(const MemberState& other) {
  for (const auto& [f, reg] : other.fields) fields[f].merge(reg);
  points.merge(other.points);
  wallet.merge(other.wallet);
  spend.merge(other.spend);
  spend_reversed.merge(other.spend_reversed);
  visits.merge(other.visits);
  pin_failures.merge(other.pin_failures);
}

std::uint64_t MemberState::rolling_spend(std::uint32_t month, std::uint32_t window) const {
  std::uint32_t from = month + 1 >= window ? month + 1 - window : 0;
  std::uint64_t plus = spend.sum_months(from, month);
  std::uint64_t minus = spend_reversed.sum_months(from, month);
  return plus > minus ? plus - minus : 0;
}

std::string MemberState::field(Field f) const {
  auto it = fields.find(f);
  return it == fields.end() ? std::string() : it->second.value();
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
    case OpKind::kMove: {
      EscrowCounter& c = op.account == Account::kPoints ? m.points : m.wallet;
      return c.apply_move(op.origin, op.target, op.amount);
    }
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

Result<ApplyResult> Replica::apply(const Op& op) {
  std::uint64_t have = applied_seq(op.origin);
  if (op.seq <= have) return ApplyResult::kDuplicate;
  if (op.seq != have + 1) {
    return Status::corruption("gap: op " + op_ref_string(op.origin, op.seq) + " after seq " +
                              std::to_string(have));
  }
  if (op.kind == OpKind::kReverse && is_reversed(op.ref_origin, op.ref_seq)) {
    return Status::corruption("op " + op_ref_string(op.ref_origin, op.ref_seq) +
                              " is reversed twice");
  }
  // Work on a copy (not members_[op.member], which would insert an empty member even when the
  // op then fails) so that a failed apply changes nothing.
  auto it = members_.find(op.member);
  MemberState next = it == members_.end() ? MemberState{} : it->second;
  OUTPOST_RETURN_IF_ERROR(apply_effects(next, op));
  members_[op.member] = std::move(next);
  if (op.kind == OpKind::kReverse) reversed_.insert({op.ref_origin, op.ref_seq});
  vv_[op.origin] = op.seq;
  return ApplyResult::kApplied;
}

void Replica::merge(const Replica& other) {
  for (const auto& [id, m] : other.members_) members_[id].merge(m);
  for (const auto& [origin, seq] : other.vv_) vv_[origin] = std::max(vv_[origin], seq);
  reversed_.insert(other.reversed_.begin(), other.reversed_.end());
}

const MemberState* Replica::member(const MemberId& id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

std::uint64_t Replica::applied_seq(const NodeId& origin) const {
  auto it = vv_.find(origin);
  return it == vv_.end() ? 0 : it->second;
}

bool Replica::is_reversed(const NodeId& origin, std::uint64_t seq) const {
  return reversed_.count({origin, seq}) > 0;
}

}  // namespace outpost::sync
