#include "outpost/sync/hlc.h"

#include <cstdio>
#include <limits>

namespace outpost::sync {

std::string Hlc::to_string() const {
  return std::to_string(wall_ms) + "." + std::to_string(logical);
}

Hlc HlcClock::now(std::uint64_t wall_ms) {
  if (wall_ms > last_.wall_ms) {
    last_ = Hlc{wall_ms, 0};
  } else if (last_.logical == std::numeric_limits<std::uint32_t>::max()) {
    // Never wrap to a smaller timestamp: move to the next millisecond instead.
    last_ = Hlc{last_.wall_ms + 1, 0};
  } else {
    last_.logical += 1;
  }
  return last_;
}

void HlcClock::observe(Hlc remote, std::uint64_t wall_ms) {
  Hlc next = last_;
  if (remote > next) next = remote;
  if (wall_ms > next.wall_ms) next = Hlc{wall_ms, 0};
  last_ = next;
}

std::uint32_t month_index(std::uint64_t wall_ms) {
  // Howard Hinnant's civil_from_days, for days since 1970-01-01.
  std::int64_t z = static_cast<std::int64_t>(wall_ms / 86'400'000ULL) + 719468;
  std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  std::int64_t doe = z - era * 146097;
  std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t y = yoe + era * 400;
  std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  std::int64_t mp = (5 * doy + 2) / 153;
  std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y += 1;
  return static_cast<std::uint32_t>(y * 12 + (m - 1));
}

std::string month_string(std::uint32_t month) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04u-%02u", month / 12, month % 12 + 1);
  return buf;
}

}  // namespace outpost::sync
