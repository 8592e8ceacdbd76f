#include "outpost/sync/member_state.h"

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

const EscrowCounter& MemberState::counter(Account account) const {
  return account == Account::kPoints ? points : wallet;
}

EscrowCounter& MemberState::counter(Account account) {
  return account == Account::kPoints ? points : wallet;
}

}  // namespace outpost::sync
