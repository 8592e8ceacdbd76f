#include "outpost/sync/replica.h"

namespace outpost::sync {

Result<ApplyResult> Replica::apply(const Op& op) {
  const std::uint64_t have = applied_seq(op.origin);
  switch (seq_place(have, op.seq)) {
    case SeqPlace::kHeld:
      return ApplyResult::kDuplicate;
    case SeqPlace::kBeyond:
      return Status::corruption("gap: op " + op_ref_string(op.origin, op.seq) + " after seq " +
                                std::to_string(have));
    case SeqPlace::kNext:
      break;
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
