// The node's environment (as LevelDB's Env): everything it takes from its surroundings that is
// not bytes on a link or rows in its database: the wall clock, the monotonic clock and
// randomness. The node reads time and randomness only through an Env (docs/style.md, "Time,
// randomness and I/O"), so tests and the simulator drive the same code from a seed
// (docs/simulator.md). Timers stay on the daemon's Asio io_context; what they fire on reads this.
//
// SystemEnv is the daemon's and CLI's, ManualEnv the tests' and the simulator's. Both are
// thread-safe: the daemon reads its Env from the io thread, the ledger worker and link strands.
#pragma once

#include <atomic>
#include <cstdint>

namespace outpost::sync {

class Env {
 public:
  virtual ~Env() = default;
  // Returns the wall time in milliseconds since the Unix epoch (HLC timestamps, certificate
  // validity, log lines). May jump when an operator sets the clock.
  virtual std::uint64_t now_ms() = 0;
  // Returns monotonic milliseconds from an arbitrary origin (deadlines, timeouts, backoff): never
  // goes back, so a clock set back cannot stretch a deadline.
  virtual std::uint64_t steady_ms() = 0;
  // Returns 64 random bits for choices that need not be secret (backoff jitter, which peer to try).
  // Keys and nonces come from crypto::random_bytes, never from here.
  virtual std::uint64_t random_u64() = 0;
};

// The name the node's signatures use where they only read the wall clock: the same interface.
using Clock = Env;

// The real machine: the system clocks and the OS random source.
class SystemEnv final : public Env {
 public:
  std::uint64_t now_ms() override;
  std::uint64_t steady_ms() override;
  std::uint64_t random_u64() override;
};

// A deterministic environment: time moves only when told, and randomness is a SplitMix64 stream
// from a seed, so one seed gives one run.
class ManualEnv final : public Env {
 public:
  explicit ManualEnv(std::uint64_t start_ms, std::uint64_t seed = 0)
      : now_ms_(start_ms), steady_ms_(0), random_state_(seed) {}
  std::uint64_t now_ms() override { return now_ms_.load(); }
  std::uint64_t steady_ms() override { return steady_ms_.load(); }
  std::uint64_t random_u64() override;
  // Moves both clocks forward by `delta_ms`.
  void advance(std::uint64_t delta_ms) {
    now_ms_ += delta_ms;
    steady_ms_ += delta_ms;
  }
  // Sets the wall clock (which may go back, as an operator's clock can); the monotonic clock
  // moves forward by as much as the wall clock did, or not at all.
  void set(std::uint64_t ms) {
    const std::uint64_t before = now_ms_.exchange(ms);
    if (ms > before) steady_ms_ += ms - before;
  }

 private:
  std::atomic<std::uint64_t> now_ms_;
  std::atomic<std::uint64_t> steady_ms_;
  std::atomic<std::uint64_t> random_state_;
};

}  // namespace outpost::sync
