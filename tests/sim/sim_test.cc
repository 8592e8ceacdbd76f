// Deterministic simulation tests (tests/sim/sim.h, docs/simulator.md). CTest runs a bounded set of
// seeds; a soak runs more with OUTPOST_SIM_SEEDS=N OUTPOST_SIM_STEPS=M, and OUTPOST_SIM_SEED=S
// replays one seed (OUTPOST_SIM_TRACE=1 prints every action).
#include "sim.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace outpost::sim {
namespace {

// CTest's budget is CPU time: under AddressSanitizer (which makes the simulator's many small
// allocations several times dearer) the default runs take a third of the steps. Explicit
// OUTPOST_SIM_STEPS is honoured as given.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kStepScale = 3;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t kStepScale = 3;
#else
constexpr std::size_t kStepScale = 1;
#endif
#else
constexpr std::size_t kStepScale = 1;
#endif

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

bool env_trace() { return env_u64("OUTPOST_SIM_TRACE", 0) != 0; }

// The seeds to run: OUTPOST_SIM_SEED=S alone, else `first`..`first`+OUTPOST_SIM_SEEDS-1.
std::vector<std::uint64_t> seeds(std::uint64_t first, std::uint64_t count) {
  if (const char* one = std::getenv("OUTPOST_SIM_SEED"); one != nullptr && *one != '\0') {
    return {std::strtoull(one, nullptr, 10)};
  }
  std::vector<std::uint64_t> out;
  for (std::uint64_t k = 0; k < env_u64("OUTPOST_SIM_SEEDS", count); ++k) out.push_back(first + k);
  return out;
}

std::size_t steps(std::size_t fallback) {
  return env_u64("OUTPOST_SIM_STEPS", fallback / kStepScale);
}

// Runs `sim` and reports a failure with its reproduction line.
SimResult run_expecting_success(Simulator& sim) {
  SimResult r = sim.run();
  EXPECT_TRUE(r.ok) << r.failure;
  return r;
}

SimOptions options_for_seed(std::uint64_t seed, std::size_t default_steps) {
  SimOptions o = SimOptions::for_seed(seed, steps(default_steps));
  o.trace = env_trace();
  return o;
}

TEST(Sim, RandomSeedsNeverOverspendLoseOrReapplyAnOpAndAllNodesConverge) {
  const auto start = std::chrono::steady_clock::now();
  SimStats total;
  std::size_t runs = 0;
  std::string failed;
  for (std::uint64_t seed : seeds(1, 30)) {
    Simulator sim(options_for_seed(seed, 3000));
    SimResult r = run_expecting_success(sim);
    total.add(r.stats);
    ++runs;
    if (!r.ok) failed += " " + std::to_string(seed);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  std::cout << "[sim] " << runs << " seeds x " << steps(3000) << " steps in " << ms
            << " ms: " << total.summary() << std::endl;
  EXPECT_TRUE(failed.empty()) << "failing seeds:" << failed;
  // The run must have exercised what it claims to: escrow refusals, the broker, faults.
  if (runs >= 10) {
    EXPECT_GT(total.refusals, 0u);
    EXPECT_GT(total.broker_completed, 0u);
    EXPECT_GT(total.grants, 0u);
    EXPECT_GT(total.rebalances, 0u) << "the rebalancer's policy never moved anything: the runs prove nothing about it";
    EXPECT_GT(total.losses + total.duplicates + total.reorders, 0u);
    EXPECT_GT(total.crashes, 0u);
    EXPECT_GT(total.closes_by_session, 0u);
  }
}

// Store-and-forward: the last store links only to the store before it, never to HQ, yet all its
// acknowledged ops must reach HQ (checked by the final phase) through that neighbour.
TEST(Sim, StoreThatOnlyReachesANeighbourStillGetsItsLogToHq) {
  for (std::uint64_t seed : seeds(1000, 3)) {
    SimOptions o = options_for_seed(seed, 2000);
    const std::size_t far = o.stores, near = o.stores - 1;
    o.can_link = [far, near](std::size_t a, std::size_t b) {
      if (a != far && b != far) return true;
      return a == near || b == near;
    };
    o.replay_hint = "outpost_integration_tests --gtest_filter='Sim.StoreThatOnly*'";
    Simulator sim(o);
    if (!run_expecting_success(sim).ok) break;
    const auto& own = sim.node(far).log_of(sim.node(far).self());
    EXPECT_GT(own.size(), 0u) << "the far store acknowledged no op: the test proves nothing";
    EXPECT_EQ(sim.node(0).log_of(sim.node(far).self()).size(), own.size());
  }
}

// Negative control: a store that debits without checking its rights must be caught by invariant
// (1). If this passes silently, the checker is blind.
TEST(Sim, CheckerCatchesAStoreThatSpendsWithoutRights) {
  SimOptions o = SimOptions::for_seed(7, 3000);
  o.overspending_node = 2;
  Simulator sim(o);
  SimResult r = sim.run();
  ASSERT_FALSE(r.ok) << "an overspending store went unnoticed";
  EXPECT_EQ(r.invariant, Invariant::kNonNegative) << r.failure;
  EXPECT_NE(r.failure.find("reproduce with seed=7 step="), std::string::npos) << r.failure;
  EXPECT_NE(r.failure.find("< 0 in the global replay"), std::string::npos) << r.failure;
}

// Negative control: a Byzantine store signs two different ops with one seq and serves one to
// some peers and the other to the rest. An honest receiver must report the equivocation.
TEST(Sim, CheckerCatchesAnOriginThatSignsTwoOpsWithOneSeq) {
  SimOptions o = SimOptions::for_seed(11, 3000);
  o.loss_pm = o.dup_pm = o.reorder_pm = 0;
  o.equivocating_node = 3;
  o.equivocate_at_step = 400;
  Simulator sim(o);
  SimResult r = sim.run();
  ASSERT_FALSE(r.ok) << "an equivocating store went unnoticed";
  EXPECT_EQ(r.invariant, Invariant::kNoEquivocation) << r.failure;
  EXPECT_NE(r.failure.find("signed by store3"), std::string::npos) << r.failure;
  bool honest_reporter = false;
  for (std::size_t i = 0; i < sim.node_count(); ++i) {
    if (i != 3 && !sim.node(i).evidence().empty()) honest_reporter = true;
  }
  EXPECT_TRUE(honest_reporter) << r.failure;
}

// A seed is a complete description of a run: the same seed takes the same actions.
TEST(Sim, SameSeedReplaysTheSameRun) {
  SimOptions o = SimOptions::for_seed(5, 1000 / kStepScale);
  SimResult a = Simulator(o).run();
  SimResult b = Simulator(o).run();
  EXPECT_TRUE(a.ok) << a.failure;
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.stats.summary(), b.stats.summary());
  o.seed = 6;
  EXPECT_NE(Simulator(o).run().digest, a.digest);
}

// The simulated store must honour the SyncStore contract the checker relies on: a batch with a
// gap or an op whose bytes do not match its signature changes nothing, even when its other ops
// are valid; re-delivery is a duplicate.
TEST(SimNode, RefusesTheWholeBatchOnGapTamperedPrevOrBadSignature) {
  SimOptions o;
  o.stores = 1;
  Simulator sim(o);
  SimNode& hq = sim.node(0);
  SimNode& store = sim.node(1);
  Op enroll;
  enroll.kind = OpKind::kEnroll;
  enroll.member[0] = 1;
  enroll.fields = {{sync::Field::kCard, "1234567890"}};
  Op topup;
  topup.kind = OpKind::kTopup;
  topup.member[0] = 1;
  topup.account = Account::kWallet;
  topup.amount = 100;
  std::vector<SignedOp> ops = {hq.issue(enroll), hq.issue(topup), hq.issue(topup)};

  auto expect_refused = [&](std::vector<SignedOp> batch, const std::string& why) {
    auto r = store.ingest(batch);
    ASSERT_FALSE(r.is_ok()) << why;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << why;
    EXPECT_TRUE(store.logs().empty() || store.log_of(hq.self()).empty()) << why;
    EXPECT_TRUE(store.replica().version_vector().empty()) << why;
  };
  expect_refused({ops[0], ops[2]}, "gap");
  Bytes tampered = ops[1].signed_bytes;
  tampered[30] ^= 1;  // first byte of prev (docs/op-format.md: magic 4, version, kind, origin, seq)
  auto forged = sync::load_signed_op(tampered, ops[1].sig);
  ASSERT_TRUE(forged.is_ok());
  ASSERT_NE(forged->op.prev, ops[1].op.prev);
  expect_refused({ops[0], *forged}, "prev changed after signing");
  SignedOp bad_sig = ops[1];
  bad_sig.sig[5] ^= 1;
  bad_sig.hash = sync::op_hash(bad_sig.signed_bytes, bad_sig.sig);
  expect_refused({ops[0], bad_sig}, "bad signature");

  auto ok = store.ingest(ops);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->applied, 3u);
  auto again = store.ingest(ops);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->applied, 0u);
  EXPECT_EQ(again->duplicates, 3u);
  EXPECT_TRUE(store.replica() == hq.replica());
}

// Two honest nodes holding different forks of an equivocating origin never exchange the two ops
// of one seq (a session sends only above the peer's version vector): the conflict shows as a
// validly signed op whose prev is not the held op. That must be kept as evidence, and must not
// refuse the batch, or one Byzantine store would stop every other origin's ops between them.
TEST(SimNode, KeepsAForkedSuccessorAsEvidenceAndStillAppliesOtherOrigins) {
  SimOptions o;
  o.stores = 3;
  Simulator sim(o);
  SimNode& byz = sim.node(1);
  SimNode& other = sim.node(3);
  SimNode& receiver = sim.node(2);
  Op enroll;
  enroll.kind = OpKind::kEnroll;
  enroll.member[0] = 7;
  enroll.fields = {{sync::Field::kCard, "1234567890"}};
  Op topup;
  topup.kind = OpKind::kTopup;
  topup.member[0] = 7;
  topup.account = Account::kWallet;
  topup.amount = 100;
  byz.issue(enroll);
  byz.equivocate(byz.issue(topup));
  byz.issue(topup);
  auto honest = byz.ops_for_peer(2, byz.self(), 1, 10);  // even peers get the acknowledged chain
  auto forked = byz.ops_for_peer(1, byz.self(), 2, 10);  // odd peers get the fork from seq 2
  ASSERT_EQ(honest->size(), 3u);
  ASSERT_EQ(forked->size(), 2u);
  ASSERT_NE((*forked)[0].hash, (*honest)[1].hash);
  ASSERT_TRUE(receiver.ingest({(*honest)[0], (*honest)[1]}).is_ok());

  SignedOp unrelated = other.issue(enroll);
  auto r = receiver.ingest({(*forked)[1], unrelated});  // seq 3 on top of the other seq 2
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->applied, 1u) << "the other origin's op must still apply";
  ASSERT_EQ(r->equivocations.size(), 1u);
  EXPECT_NE(r->equivocations[0].find("signed by store1"), std::string::npos);
  EXPECT_EQ(receiver.log_of(byz.self()).size(), 2u) << "no op of the fork is applied";
  EXPECT_EQ(receiver.log_of(other.self()).size(), 1u);

  auto same_seq = receiver.ingest({(*forked)[0]});  // the other op for a held seq
  ASSERT_TRUE(same_seq.is_ok());
  EXPECT_EQ(same_seq->equivocations.size(), 1u);
  EXPECT_EQ(receiver.evidence().size(), 2u);
}

}  // namespace
}  // namespace outpost::sim
