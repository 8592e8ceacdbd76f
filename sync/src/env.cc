#include "outpost/sync/env.h"

#include <chrono>
#include <span>

#include "outpost/crypto/crypto.h"

namespace outpost::sync {

// The one implementation that reads the system clocks (node/ never does:
// tests/unit/env_test.cc checks its sources).
std::uint64_t SystemEnv::now_ms() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

std::uint64_t SystemEnv::steady_ms() {
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

std::uint64_t SystemEnv::random_u64() {
  std::uint64_t v = 0;
  crypto::random_bytes(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
  return v;
}

std::uint64_t ManualEnv::random_u64() {
  // SplitMix64 (Steele, Lea, Flood 2014): one fetch_add keeps concurrent callers distinct.
  std::uint64_t z = random_state_.fetch_add(0x9e3779b97f4a7c15ULL) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace outpost::sync
