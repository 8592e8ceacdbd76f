// Deterministic simulation tests (tests/sim/sim.h, docs/simulator.md). CTest runs a few seeds of
// a few hundred steps; a soak runs more with OUTPOST_SIM_SEEDS=N OUTPOST_SIM_STEPS=M, and
// OUTPOST_SIM_SEED=S replays one seed (OUTPOST_SIM_TRACE=1 prints every action).
#include "sim.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/node/log.h"

namespace outpost::sim {
namespace {

namespace fs = std::filesystem;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (*end != '\0') {
    ADD_FAILURE() << name << "='" << v << "' is not a whole number; using " << fallback;
    return fallback;
  }
  return n;
}

// The seeds to run: OUTPOST_SIM_SEED=S alone, else `first`..`first`+OUTPOST_SIM_SEEDS-1.
std::vector<std::uint64_t> seeds(std::uint64_t first, std::uint64_t count) {
  if (const char* one = std::getenv("OUTPOST_SIM_SEED"); one != nullptr && *one != '\0') {
    return {env_u64("OUTPOST_SIM_SEED", first)};
  }
  std::vector<std::uint64_t> out;
  for (std::uint64_t k = 0; k < env_u64("OUTPOST_SIM_SEEDS", count); ++k) out.push_back(first + k);
  return out;
}

std::size_t steps(std::size_t fallback) { return env_u64("OUTPOST_SIM_STEPS", fallback); }

// A scratch directory for one chain's data dirs (their key files; the databases live in VFSs).
class TempRoot {
 public:
  TempRoot() {
    std::string tmpl = (fs::temp_directory_path() / "outpost-sim-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempRoot() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

SimResult run_sim(SimOptions o) {
  EXPECT_TRUE(crypto::init().is_ok());
  node::set_log_level(node::LogLevel::kWarn);  // the nodes' info lines would drown the output
  o.trace = env_u64("OUTPOST_SIM_TRACE", 0) != 0;
  TempRoot root;
  EXPECT_FALSE(root.path().empty());
  Simulator sim(std::move(o), root.path());
  return sim.run();
}

// Seeds 1..6 (OUTPOST_SIM_SEEDS) of 300 steps (OUTPOST_SIM_STEPS), each with a chain of HQ and
// 3-5 stores and its own link fault rate. Fails on any invariant, and if the runs together did
// not exercise what they claim to check: every fault kind, refusals, the broker, the rebalancer.
// With many seeds and steps it is the soak (docs/simulator.md, "Soak").
TEST(Sim, RandomSeedsNeverOverspendLoseOrReapplyAnOpAndAllNodesConverge) {
  const auto started = std::chrono::steady_clock::now();  // for the printed throughput only
  SimStats total;
  std::string failed;
  const std::vector<std::uint64_t> run = seeds(1, 6);
  for (std::uint64_t seed : run) {
    SimResult r = run_sim(SimOptions::for_seed(seed, steps(300)));
    EXPECT_TRUE(r.ok) << r.failure;
    total.add(r.stats);
    if (!r.ok) failed += " " + std::to_string(seed);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double all_steps = static_cast<double>(total.steps + total.final_steps);
  std::printf("[sim] %zu seeds, %s, %.0f steps/s\n[sim] %s\n", run.size(),
              failed.empty() ? "0 invariant breaks" : ("FAILED:" + failed).c_str(),
              seconds > 0 ? all_steps / seconds : 0.0, total.summary().c_str());
  if (run.size() < 6) return;  // a replay of one seed need not cover everything
  EXPECT_GT(total.losses, 0u);
  EXPECT_GT(total.duplicates, 0u);
  EXPECT_GT(total.reorders, 0u);
  EXPECT_GT(total.partitions, 0u);
  EXPECT_GT(total.crashes, 0u);
  EXPECT_GT(total.power_losses, 0u);
  EXPECT_GT(total.write_crashes, 0u) << "no power loss in the middle of a write";
  EXPECT_GT(total.restarts, 0u);
  EXPECT_GT(total.closes_by_session, 0u);
  EXPECT_GT(total.refusals, 0u);
  EXPECT_GT(total.broker_granted, 0u) << "the broker never brought rights";
  EXPECT_GT(total.grants, 0u);
  EXPECT_GT(total.retried_debits, 0u);
  EXPECT_GT(total.rebalances, 0u) << "the rebalancer never moved anything";
  EXPECT_GT(total.acked_ops, 0u);
}

// Store-and-forward: the last store links only to the store before it, never to HQ, yet all its
// acknowledged ops must reach HQ (checked by the final phase) through that neighbour.
TEST(Sim, StoreThatOnlyReachesANeighbourStillGetsItsLogToHq) {
  for (std::uint64_t seed : seeds(1000, 2)) {
    SimOptions o = SimOptions::for_seed(seed, steps(300));
    const std::size_t far = o.stores, near = o.stores - 1;
    o.can_link = [far, near](std::size_t a, std::size_t b) {
      if (a != far && b != far) return true;
      return a == near || b == near;
    };
    o.replay_hint = "outpost_integration_tests --gtest_filter='Sim.StoreThatOnly*'";
    const SimResult r = run_sim(o);
    ASSERT_TRUE(r.ok) << r.failure;
    EXPECT_GT(r.far_acked, 0u) << "the far store acknowledged no op: the test proves nothing";
  }
}

// The negative controls: each makes a real node do what the checker exists to catch, and fails
// if the checker stays silent (then it is blind) or names another invariant.
SimResult run_control(Control c, std::uint64_t seed) {
  SimOptions o = SimOptions::for_seed(seed, 400);
  o.control = c;
  o.control_at_step = 60;
  o.replay_hint = "outpost_integration_tests --gtest_filter='Sim.CheckerCatches*'";
  SimResult r = run_sim(o);
  std::cout << "[sim] the checker says: " << r.failure.substr(0, r.failure.find('\n')) << "\n";
  return r;
}

TEST(Sim, CheckerCatchesAStoreThatSpendsWithoutRights) {
  const SimResult r = run_control(Control::kSpendWithoutRights, 7);
  ASSERT_FALSE(r.ok) << "a spend beyond the store's rights went unnoticed";
  EXPECT_EQ(r.invariant, Invariant::kNoOverspend) << r.failure;
  EXPECT_NE(r.failure.find("reproduce with seed=7 step="), std::string::npos) << r.failure;
}

TEST(Sim, CheckerCatchesAnOriginThatSignsTwoOpsWithOneSeq) {
  const SimResult r = run_control(Control::kSignTwoOpsWithOneSeq, 8);
  ASSERT_FALSE(r.ok) << "two ops signed for one seq went unnoticed";
  EXPECT_EQ(r.invariant, Invariant::kNoEquivocation) << r.failure;
}

TEST(Sim, CheckerCatchesADiskThatDropsSyncedWrites) {
  const SimResult r = run_control(Control::kSyncsDoNotPersist, 9);
  ASSERT_FALSE(r.ok) << "a power loss on a disk that keeps no sync lost nothing acknowledged?";
  EXPECT_EQ(r.invariant, Invariant::kNoAckedOpLost) << r.failure;
}

// One seed fixes the whole run: node ids and keys, every choice, the simulated time, and so
// every op's hash. Fails if anything in the run escapes the seed.
TEST(Sim, SameSeedReplaysTheSameRun) {
  const SimResult a = run_sim(SimOptions::for_seed(7, 250));
  const SimResult b = run_sim(SimOptions::for_seed(7, 250));
  const SimResult c = run_sim(SimOptions::for_seed(8, 250));
  ASSERT_TRUE(a.ok && b.ok && c.ok) << a.failure << b.failure << c.failure;
  EXPECT_EQ(a.digest, b.digest) << "seed 7 ran two different ways";
  EXPECT_NE(a.digest, c.digest) << "the digest does not depend on the run";
  EXPECT_GT(a.stats.acked_ops, 0u);
}

}  // namespace
}  // namespace outpost::sim
