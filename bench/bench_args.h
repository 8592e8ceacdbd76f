// Command-line numbers of the benchmarks: a value that is not a whole number (or a number of
// seconds) in its range is refused with a message naming the flag, and the benchmark exits 2,
// instead of running with whatever atoi/atof made of it.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace outpost::bench {

// Returns `text` as an integer in [lo, hi], or exits 2 naming `flag`.
inline long int_arg(const char* flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "%s: '%s' is not a whole number from %ld to %ld\n", flag, text, lo, hi);
    std::exit(2);
  }
  return v;
}

// Returns `text` as a number of seconds in [lo, hi], or exits 2 naming `flag`.
inline double seconds_arg(const char* flag, const char* text, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v >= lo && v <= hi)) {
    std::fprintf(stderr, "%s: '%s' is not a number of seconds from %g to %g\n", flag, text, lo, hi);
    std::exit(2);
  }
  return v;
}

}  // namespace outpost::bench
