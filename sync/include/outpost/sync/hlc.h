// Hybrid logical clock (Kulkarni et al.): timestamps that follow causality and stay close to wall
// time. Pure: the wall time is passed in by the caller (an Env at the edge, env.h), so tests and
// the simulator drive it deterministically. Not thread-safe; the owner serializes calls.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "outpost/sync/env.h"  // Clock: the wall time callers pass in

namespace outpost::sync {

struct Hlc {
  std::uint64_t wall_ms = 0;   // milliseconds since the Unix epoch, as seen by the issuer
  std::uint32_t logical = 0;   // tie-breaker within one wall_ms
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads the defaulted comparison
  auto operator<=>(const Hlc&) const = default;
  std::string to_string() const;
};

class HlcClock {
 public:
  HlcClock() = default;
  explicit HlcClock(Hlc last) : last_(last) {}

  // Returns a timestamp for a local event at wall time `wall_ms`, strictly greater than every
  // timestamp this clock issued or observed before.
  Hlc now(std::uint64_t wall_ms);
  // Records a timestamp received from another node so later local events order after it.
  void observe(Hlc remote, std::uint64_t wall_ms);
  Hlc last() const { return last_; }

 private:
  Hlc last_{};
};

// Months since year 0 (year * 12 + month - 1) of a UTC millisecond timestamp: the bucket key of
// spend and visit counters. Pure integer arithmetic (civil-from-days), no time zone library.
std::uint32_t month_index(std::uint64_t wall_ms);
// Renders a month index as "YYYY-MM".
std::string month_string(std::uint32_t month);

}  // namespace outpost::sync
