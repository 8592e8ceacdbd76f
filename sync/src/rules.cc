#include "outpost/sync/rules.h"

#include <set>

#include "outpost/base/limits.h"

namespace outpost::sync {

Status ProgramRules::validate() const {
  if (tiers.empty() || tiers.size() > 16) return Status::invalid("rules need 1 to 16 tiers");
  if (unit_minor == 0 || unit_minor > limits::kAmountMax) return Status::invalid("unit_minor out of range");
  if (window_months < 1 || window_months > 120) return Status::invalid("window_months must be 1..120");
  if (tiers.front().threshold_minor != 0) return Status::invalid("the first tier must start at 0");
  std::set<std::string> names;
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const Tier& t = tiers[i];
    if (t.name.empty() || t.name.size() > 32) return Status::invalid("tier names must be 1..32 bytes");
    if (!names.insert(t.name).second) return Status::invalid("duplicate tier name " + t.name);
    if (t.points_per_unit > 10'000) return Status::invalid("points_per_unit above 10000");
    if (t.threshold_minor > limits::kAmountMax) return Status::invalid("threshold too large");
    if (i > 0 && t.threshold_minor <= tiers[i - 1].threshold_minor) {
      return Status::invalid("tier thresholds must ascend");
    }
  }
  return Status::ok();
}

const Tier& ProgramRules::tier_for(std::uint64_t spend_minor) const {
  OUTPOST_CHECK(!tiers.empty());
  const Tier* best = &tiers.front();
  for (const Tier& t : tiers) {
    if (t.threshold_minor <= spend_minor) best = &t;
  }
  return *best;
}

std::uint64_t ProgramRules::points_for(std::uint64_t spend_minor, const Tier& tier) const {
  // spend_minor <= kAmountMax (1e12) and points_per_unit <= 1e4: the product fits in uint64.
  return (spend_minor / unit_minor) * tier.points_per_unit;
}

ProgramRules default_rules() {
  ProgramRules r;
  r.version = 1;
  r.unit_minor = 100;
  r.window_months = 12;
  r.tiers = {{"member", 0, 1}, {"silver", 50'000, 2}, {"gold", 200'000, 3}};
  return r;
}

}  // namespace outpost::sync
