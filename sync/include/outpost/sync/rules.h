// Program rules: tiers by rolling spend and the points earned per purchase. Rules are data signed
// by HQ in later versions; here they are a value type with validation and the pure functions that
// derive a tier and an earn amount. Tiers are never stored as truth (DESIGN.md "Tier").
// Integer arithmetic only. Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/base/status.h"

namespace outpost::sync {

struct Tier {
  std::string name;
  std::uint64_t threshold_minor = 0;  // rolling-window spend at which the tier starts
  std::uint64_t points_per_unit = 0;  // points earned per `unit_minor` of purchase
};

struct ProgramRules {
  std::uint32_t version = 1;
  std::uint64_t unit_minor = 100;    // purchase amount per earn unit (100 = one currency unit)
  std::uint32_t window_months = 12;  // rolling window of spend for tiers, including this month
  std::vector<Tier> tiers;           // ascending thresholds; the first starts at 0

  // Checks: 1..16 tiers, first threshold 0, strictly ascending thresholds, unique non-empty
  // names, unit_minor >= 1, window 1..120 months, points_per_unit <= 10000.
  Status validate() const;
  // Returns the highest tier whose threshold is <= spend_minor.
  const Tier& tier_for(std::uint64_t spend_minor) const;
  // Points earned for a purchase: floor(spend_minor / unit_minor) * points_per_unit.
  std::uint64_t points_for(std::uint64_t spend_minor, const Tier& tier) const;
};

// The rules a new chain starts with; documented in docs/program-rules.md.
ProgramRules default_rules();

}  // namespace outpost::sync
