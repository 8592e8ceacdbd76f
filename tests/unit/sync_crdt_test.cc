// CRDT state of sync/ (crdt.h, replica.h), the HLC clock (hlc.h) and program rules (rules.h).
//  - Lattice laws of every merge (commutative, associative, idempotent, empty is identity) over
//    random states from a fixed list of seeds plus one fresh seed per run.
//  - The escrow invariant (docs/architecture.md): K nodes each acting only through the checked
//    API of their own view, gossiping at random; after every step the merged global state has
//    value >= 0 and rights(i) >= 0 for every node, and every refusal happened only when the local
//    view lacked rights. Companion tests show what a naive counter would allow.
//  - Replica: in-order apply, duplicates, gaps, double reversal, the effects of every op kind,
//    and that merging replicas agrees with applying the union of their ops.
// Every randomized failure prints "reproduce with seed=N"; OUTPOST_SEED=N runs only that seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/sync/crdt.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/op.h"
#include "outpost/sync/rebalance.h"
#include "outpost/sync/replica.h"
#include "outpost/sync/rules.h"

namespace outpost::sync {
namespace {

// ---------------------------------------------------------------------------------------------
// Seeds and generators.

// 20 fixed seeds, so a plain run is reproducible, plus one fresh seed per run, so repeated CI
// runs keep exploring. OUTPOST_SEED=N replaces the list with N alone.
std::vector<std::uint64_t> seeds() {
  if (const char* env = std::getenv("OUTPOST_SEED")) {
    return {std::strtoull(env, nullptr, 10)};
  }
  std::vector<std::uint64_t> s = {1,        2,          3,          7,          42,
                                  99,       1234,       4321,       9001,       31337,
                                  65537,    100003,     271828,     314159,     8675309,
                                  20240229, 1709208000, 0xdeadbeef, 0xfeedface, 0x5eed5eed5eedULL};
  std::random_device rd;
  s.push_back((std::uint64_t{rd()} << 32) | rd());
  return s;
}

std::string repro(std::uint64_t seed) {
  return "reproduce with seed=" + std::to_string(seed) + " (OUTPOST_SEED=" + std::to_string(seed) +
         ")";
}

// A small deterministic RNG wrapper. Uses plain modulo instead of std::uniform_int_distribution,
// whose output differs between standard libraries, so a seed reproduces on every platform.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : g_(seed) {}
  // Uniform-ish integer in [lo, hi].
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) { return lo + g_() % (hi - lo + 1); }
  std::size_t index(std::size_t n) { return static_cast<std::size_t>(g_() % n); }
  bool chance(unsigned percent) { return g_() % 100 < percent; }

 private:
  std::mt19937_64 g_;
};

NodeId node(std::uint8_t n) {
  NodeId id{};
  id[0] = n;
  id[15] = 0x5a;
  return id;
}

MemberId member_id(std::uint8_t n) {
  MemberId id{};
  id[0] = 0xbe;
  id[15] = n;
  return id;
}

constexpr std::uint8_t kNodes = 4;

template <typename T>
T join(T a, const T& b) {
  a.merge(b);
  return a;
}

EscrowCounter random_escrow(Rng& rng) {
  EscrowCounter c;
  for (std::uint8_t i = 1; i <= kNodes; ++i) {
    if (rng.chance(70)) {
      EXPECT_TRUE(c.credit(node(i), rng.range(0, 1000)).is_ok());
    }
    if (rng.chance(50)) {
      EXPECT_TRUE(c.apply_debit(node(i), rng.range(0, 1000)).is_ok());
    }
    for (std::uint8_t j = 1; j <= kNodes; ++j) {
      if (i != j && rng.chance(25)) {
        EXPECT_TRUE(c.apply_move(node(i), node(j), rng.range(0, 500)).is_ok());
      }
    }
  }
  return c;
}

GCounter random_gcounter(Rng& rng) {
  GCounter g;
  const std::uint32_t base = 2024 * 12;
  for (int k = 0; k < 8; ++k) {
    if (rng.chance(60)) {
      EXPECT_TRUE(g.add(node(static_cast<std::uint8_t>(rng.range(1, kNodes))),
                        base + static_cast<std::uint32_t>(rng.range(0, 13)), rng.range(0, 5000))
                      .is_ok());
    }
  }
  return g;
}

// A write of a register as a real node makes it: the value is a function of the write's identity
// (hlc, origin), because one origin never issues two writes with the same HLC. The small ranges
// make equal HLCs across origins common, so the origin tie-break is exercised.
LwwRegister random_lww(Rng& rng) {
  LwwRegister r;
  int writes = static_cast<int>(rng.range(0, 3));
  for (int k = 0; k < writes; ++k) {
    Hlc hlc{rng.range(1, 3), static_cast<std::uint32_t>(rng.range(0, 2))};
    NodeId origin = node(static_cast<std::uint8_t>(rng.range(1, kNodes)));
    r.assign("v" + hlc.to_string() + "@" + std::to_string(origin[0]), hlc, origin);
  }
  return r;
}

MemberState random_member(Rng& rng) {
  MemberState m;
  for (std::uint8_t f = 1; f <= 7; ++f) {
    if (rng.chance(40)) m.fields[static_cast<Field>(f)] = random_lww(rng);
  }
  m.points = random_escrow(rng);
  m.wallet = random_escrow(rng);
  m.spend = random_gcounter(rng);
  m.spend_reversed = random_gcounter(rng);
  m.visits = random_gcounter(rng);
  return m;
}

// Checks commutativity, associativity, idempotence and the identity of the empty state for one
// triple of states.
template <typename T>
void expect_lattice_laws(const T& a, const T& b, const T& c, std::uint64_t seed) {
  EXPECT_TRUE(join(a, b) == join(b, a)) << "merge is not commutative; " << repro(seed);
  EXPECT_TRUE(join(join(a, b), c) == join(a, join(b, c)))
      << "merge is not associative; " << repro(seed);
  EXPECT_TRUE(join(a, a) == a) << "merge is not idempotent; " << repro(seed);
  EXPECT_TRUE(join(a, T{}) == a) << "merging the empty state changed a state; " << repro(seed);
  EXPECT_TRUE(join(T{}, a) == a) << "merging into the empty state lost data; " << repro(seed);
  // Merge is an upper bound: merging b into a never loses what a already had.
  EXPECT_TRUE(join(join(a, b), a) == join(a, b))
      << "merge result does not include its input; " << repro(seed);
}

constexpr int kTriplesPerSeed = 20;

TEST(EscrowCounterLawTest, MergeIsCommutativeAssociativeIdempotent) {
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    for (int k = 0; k < kTriplesPerSeed; ++k) {
      EscrowCounter a = random_escrow(rng), b = random_escrow(rng), c = random_escrow(rng);
      expect_lattice_laws(a, b, c, seed);
      // Every entry of the merge is the pointwise maximum, so value and rights are determined by
      // the merged entries alone, whichever order they arrived in.
      EXPECT_EQ(join(a, b).value(), join(b, a).value()) << repro(seed);
      if (HasFailure()) return;
    }
  }
}

TEST(GCounterLawTest, MergeIsCommutativeAssociativeIdempotent) {
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    for (int k = 0; k < kTriplesPerSeed; ++k) {
      GCounter a = random_gcounter(rng), b = random_gcounter(rng), c = random_gcounter(rng);
      expect_lattice_laws(a, b, c, seed);
      EXPECT_GE(join(a, b).total(), std::max(a.total(), b.total())) << repro(seed);
      if (HasFailure()) return;
    }
  }
}

TEST(LwwRegisterLawTest, MergeIsCommutativeAssociativeIdempotent) {
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    for (int k = 0; k < kTriplesPerSeed * 5; ++k) {
      LwwRegister a = random_lww(rng), b = random_lww(rng), c = random_lww(rng);
      expect_lattice_laws(a, b, c, seed);
      if (HasFailure()) return;
    }
  }
}

TEST(LwwRegisterLawTest, MergeConvergesEvenWhenAnEquivocatingOriginReusesAnHlc) {
  // Two writes with the same (hlc, origin) but different values only exist if an origin
  // equivocates (e.g. restored from an old backup). Replicas holding one each must still agree
  // after merging, or the state diverges for good.
  const Hlc hlc{100, 0};
  LwwRegister a, b;
  ASSERT_TRUE(a.assign("alice", hlc, node(1)));
  ASSERT_TRUE(b.assign("bob", hlc, node(1)));
  EXPECT_TRUE(join(a, b) == join(b, a)) << join(a, b).value() << " vs " << join(b, a).value();
}

TEST(ReplicaMemberStateLawTest, MergeIsCommutativeAssociativeIdempotent) {
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    for (int k = 0; k < kTriplesPerSeed / 2; ++k) {
      MemberState a = random_member(rng), b = random_member(rng), c = random_member(rng);
      expect_lattice_laws(a, b, c, seed);
      if (HasFailure()) return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random op logs, as nodes would write them, for the replica properties.

constexpr std::uint8_t kOrigins = 3;
constexpr std::uint8_t kMembers = 3;
constexpr std::uint64_t kJan2024Ms = 1704067200000;  // 2024-01-01T00:00:00Z
constexpr std::uint64_t kDayMs = 86'400'000;

// Builds a random, valid log of `n` ops for `origin`. Debits and moves stay within what the
// origin's own view shows, as a real node would; reversals name an earlier, unreversed op.
std::vector<Op> random_log(Rng& rng, std::uint8_t origin, std::size_t n) {
  std::vector<Op> log;
  std::map<MemberId, MemberState> view;
  std::vector<std::size_t> reversible;  // indexes into log
  std::uint64_t wall_ms = kJan2024Ms + rng.range(0, 30) * kDayMs;
  for (std::size_t k = 0; k < n; ++k) {
    wall_ms += rng.range(0, 20) * kDayMs;
    Op op;
    op.origin = node(origin);
    op.seq = k + 1;
    op.prev[0] = static_cast<std::uint8_t>(k);  // not checked by Replica; any value but genesis
    if (op.seq == 1) op.prev = Hash32{};
    op.hlc = Hlc{wall_ms, static_cast<std::uint32_t>(k)};
    op.member = member_id(static_cast<std::uint8_t>(rng.range(1, kMembers)));
    MemberState& m = view[op.member];
    const std::uint64_t choice = rng.range(0, 99);
    if (choice < 15) {
      op.kind = m.fields.count(Field::kCard) ? OpKind::kProfile : OpKind::kEnroll;
      op.fields = {{Field::kCard, "card" + std::to_string(rng.range(0, 9))}};
      if (rng.chance(50)) op.fields.push_back({Field::kName, "n" + std::to_string(k)});
    } else if (choice < 40) {
      op.kind = OpKind::kEarn;
      op.account = Account::kPoints;
      op.spend_minor = rng.range(1, 100'000);
      op.amount = op.spend_minor / 100;
    } else if (choice < 55) {
      op.kind = OpKind::kTopup;
      op.account = Account::kWallet;
      op.amount = rng.range(1, 5'000);
    } else if (choice < 70) {
      const bool points = rng.chance(50);
      op.kind = points ? OpKind::kRedeem : OpKind::kSpend;
      op.account = points ? Account::kPoints : Account::kWallet;
      const std::int64_t have = (points ? m.points : m.wallet).rights(op.origin);
      if (have <= 0) continue;
      op.amount = rng.range(1, static_cast<std::uint64_t>(have));
    } else if (choice < 85) {
      op.kind = OpKind::kMove;
      op.account = rng.chance(50) ? Account::kPoints : Account::kWallet;
      const std::int64_t have =
          (op.account == Account::kPoints ? m.points : m.wallet).rights(op.origin);
      if (have <= 0) continue;
      op.amount = rng.range(1, static_cast<std::uint64_t>(have));
      std::uint8_t to = static_cast<std::uint8_t>(rng.range(1, kNodes));
      if (to == origin) to = static_cast<std::uint8_t>(to % kNodes + 1);
      op.target = node(to);
    } else {
      if (reversible.empty()) continue;
      const std::size_t pick = rng.index(reversible.size());
      const Op& ref = log[reversible[pick]];
      op.member = ref.member;
      // Undoing a credit takes rights back, so the origin (like the ledger) only does it while
      // it still holds them.
      if (ref.kind == OpKind::kEarn || ref.kind == OpKind::kTopup) {
        const MemberState& rm = view[ref.member];
        const std::int64_t have =
            (ref.account == Account::kPoints ? rm.points : rm.wallet).rights(op.origin);
        if (have < static_cast<std::int64_t>(ref.amount)) continue;
      }
      op.kind = OpKind::kReverse;
      op.account = ref.account;
      op.amount = ref.amount;
      op.spend_minor = ref.kind == OpKind::kEarn ? ref.spend_minor : 0;
      op.ref_origin = ref.origin;
      op.ref_seq = ref.seq;
      op.ref_kind = ref.kind;
      reversible.erase(reversible.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    // `continue` above skipped this op; keep seqs contiguous by re-numbering.
    op.seq = log.size() + 1;
    if (op.seq == 1) op.prev = Hash32{};
    EXPECT_TRUE(validate_op(op).is_ok()) << validate_op(op).to_string();
    EXPECT_TRUE(apply_effects(view[op.member], op).is_ok());
    if (op.kind == OpKind::kEarn || op.kind == OpKind::kTopup || op.kind == OpKind::kRedeem ||
        op.kind == OpKind::kSpend) {
      reversible.push_back(log.size());
    }
    log.push_back(op);
  }
  return log;
}

struct History {
  std::vector<std::vector<Op>> logs;  // one per origin
};

History random_history(Rng& rng) {
  History h;
  for (std::uint8_t o = 1; o <= kOrigins; ++o) h.logs.push_back(random_log(rng, o, 40));
  return h;
}

// Applies, for each origin, the first prefix[o] ops of its log, interleaving origins at random.
Replica replica_of(const History& h, const std::vector<std::size_t>& prefix, Rng& rng) {
  Replica r;
  std::vector<std::size_t> next(h.logs.size(), 0);
  for (;;) {
    std::vector<std::size_t> ready;
    for (std::size_t o = 0; o < h.logs.size(); ++o) {
      if (next[o] < prefix[o]) ready.push_back(o);
    }
    if (ready.empty()) break;
    const std::size_t o = ready[rng.index(ready.size())];
    auto res = r.apply(h.logs[o][next[o]++]);
    EXPECT_TRUE(res.is_ok() && *res == ApplyResult::kApplied) << res.status().to_string();
  }
  return r;
}

std::vector<std::size_t> random_prefix(const History& h, Rng& rng) {
  std::vector<std::size_t> p;
  for (const auto& log : h.logs) p.push_back(rng.range(0, log.size()));
  return p;
}

TEST(ReplicaLawTest, MergeIsCommutativeAssociativeIdempotent) {
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    const History h = random_history(rng);
    for (int k = 0; k < 5; ++k) {
      Replica a = replica_of(h, random_prefix(h, rng), rng);
      Replica b = replica_of(h, random_prefix(h, rng), rng);
      Replica c = replica_of(h, random_prefix(h, rng), rng);
      expect_lattice_laws(a, b, c, seed);
      if (HasFailure()) return;
    }
  }
}

TEST(ReplicaLawTest, MergingReplicasEqualsApplyingTheUnionOfTheirOps) {
  // State-based sync (merge) and op-based sync (apply the missing ops) must agree, or a node's
  // state would depend on how it caught up.
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    const History h = random_history(rng);
    std::vector<std::size_t> pa = random_prefix(h, rng), pb = random_prefix(h, rng);
    std::vector<std::size_t> pu(pa.size());
    for (std::size_t o = 0; o < pa.size(); ++o) pu[o] = std::max(pa[o], pb[o]);
    Replica merged = join(replica_of(h, pa, rng), replica_of(h, pb, rng));
    Replica applied = replica_of(h, pu, rng);
    EXPECT_TRUE(merged == applied) << "merge disagrees with op replay; " << repro(seed);
    if (HasFailure()) return;
  }
}

TEST(ReplicaLawTest, StateDoesNotDependOnTheInterleavingOfOrigins) {
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    const History h = random_history(rng);
    std::vector<std::size_t> all;
    for (const auto& log : h.logs) all.push_back(log.size());
    Replica first = replica_of(h, all, rng);
    Replica second = replica_of(h, all, rng);
    EXPECT_TRUE(first == second) << "delivery order changed the state; " << repro(seed);
    // Applying the whole history again changes nothing.
    Replica again = first;
    for (const auto& log : h.logs) {
      for (const Op& op : log) {
        auto res = again.apply(op);
        EXPECT_TRUE(res.is_ok() && *res == ApplyResult::kDuplicate) << repro(seed);
      }
    }
    EXPECT_TRUE(again == first) << "re-delivery changed the state; " << repro(seed);
    // Ops written by nodes that only spend their own rights never leave a negative balance.
    for (const auto& [id, m] : first.members()) {
      EXPECT_GE(m.points.value(), 0) << repro(seed);
      EXPECT_GE(m.wallet.value(), 0) << repro(seed);
      for (std::uint8_t i = 1; i <= kNodes; ++i) {
        EXPECT_GE(m.points.rights(node(i)), 0) << repro(seed);
        EXPECT_GE(m.wallet.rights(node(i)), 0) << repro(seed);
      }
    }
    if (HasFailure()) return;
  }
}

// ---------------------------------------------------------------------------------------------
// The escrow invariant under gossip.

constexpr int kEscrowSteps = 400;

struct EscrowSim {
  std::vector<EscrowCounter> views;  // views[i] is node i+1's own view
  std::uint64_t credited = 0;        // model: sum of accepted credits
  std::uint64_t debited = 0;         // model: sum of accepted debits
  int refusals = 0;
  int accepted_debits = 0;
};

EscrowCounter global_state(const EscrowSim& sim) {
  EscrowCounter g;
  for (const EscrowCounter& v : sim.views) g.merge(v);
  return g;
}

// One random step of node `self` (1-based): credit, debit, move or gossip. Returns a description
// for failure messages.
std::string escrow_step(EscrowSim& sim, Rng& rng) {
  const std::uint8_t self = static_cast<std::uint8_t>(rng.range(1, kNodes));
  EscrowCounter& view = sim.views[self - 1];
  const NodeId me = node(self);
  const std::uint64_t choice = rng.range(0, 99);
  if (choice < 20) {
    const std::uint64_t amount = rng.range(1, 100);
    EXPECT_TRUE(view.credit(me, amount).is_ok());
    sim.credited += amount;
    return "node " + std::to_string(self) + " credits " + std::to_string(amount);
  }
  if (choice < 65) {
    const bool is_move = choice >= 50;
    const std::uint64_t amount = rng.range(1, 150);
    const std::int64_t have = view.rights(me);
    std::uint8_t to = static_cast<std::uint8_t>(rng.range(1, kNodes));
    if (to == self) to = static_cast<std::uint8_t>(to % kNodes + 1);
    Status st = is_move ? view.move(me, node(to), amount) : view.debit(me, amount);
    std::string what = "node " + std::to_string(self) + (is_move ? " moves " : " debits ") +
                       std::to_string(amount) + (is_move ? " to " + std::to_string(to) : "") +
                       " holding " + std::to_string(have);
    if (st.is_ok()) {
      EXPECT_GE(have, static_cast<std::int64_t>(amount)) << "accepted without rights: " << what;
      if (!is_move) {
        sim.debited += amount;
        ++sim.accepted_debits;
      }
    } else {
      EXPECT_EQ(st.code(), Code::kRefused) << what << ": " << st.to_string();
      EXPECT_LT(have, static_cast<std::int64_t>(amount)) << "refused despite rights: " << what;
      EXPECT_EQ(view.rights(me), have) << "a refusal changed the view: " << what;
      ++sim.refusals;
    }
    return what;
  }
  // Gossip: one node sends its whole view to another (one direction, as a partial sync would),
  // sometimes both directions.
  std::uint8_t to = static_cast<std::uint8_t>(rng.range(1, kNodes));
  if (to == self) to = static_cast<std::uint8_t>(to % kNodes + 1);
  sim.views[to - 1].merge(view);
  if (rng.chance(30)) sim.views[self - 1].merge(sim.views[to - 1]);
  return "gossip " + std::to_string(self) + " -> " + std::to_string(to);
}

void check_escrow_invariants(const EscrowSim& sim, const std::string& step, std::uint64_t seed) {
  const EscrowCounter g = global_state(sim);
  EXPECT_GE(g.value(), 0) << "global value negative after " << step << "; " << repro(seed);
  EXPECT_EQ(g.value(), static_cast<std::int64_t>(sim.credited - sim.debited))
      << "global value lost or invented money after " << step << "; " << repro(seed);
  std::int64_t sum_rights = 0;
  for (std::uint8_t i = 1; i <= kNodes; ++i) {
    const std::int64_t global_rights = g.rights(node(i));
    EXPECT_GE(global_rights, 0) << "rights(" << int{i} << ") negative after " << step << "; "
                                << repro(seed);
    // A node's view of its own rights can only be stale-low (it has not yet seen a move in).
    EXPECT_LE(sim.views[i - 1].rights(node(i)), global_rights)
        << "node " << int{i} << " overstates its rights after " << step << "; " << repro(seed);
    sum_rights += global_rights;
  }
  EXPECT_EQ(sum_rights, g.value()) << "rights do not add up to the value; " << repro(seed);
}

TEST(EscrowInvariantTest, GossipingNodesNeverDriveValueOrRightsNegative) {
  int total_refusals = 0, total_debits = 0;
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    EscrowSim sim;
    sim.views.resize(kNodes);
    for (int step = 0; step < kEscrowSteps; ++step) {
      const std::string what = "step " + std::to_string(step) + " (" + escrow_step(sim, rng) + ")";
      check_escrow_invariants(sim, what, seed);
      if (HasFailure()) {
        ADD_FAILURE() << "stopped at " << what << "; " << repro(seed);
        return;
      }
    }
    total_refusals += sim.refusals;
    total_debits += sim.accepted_debits;
  }
  // The workload must actually exercise both outcomes, or the invariant holds vacuously.
  EXPECT_GT(total_refusals, 0);
  EXPECT_GT(total_debits, 0);
}

// ---------------------------------------------------------------------------------------------
// What a naive design would break, and why the escrow counter does not.

TEST(EscrowNaiveTest, PnCounterLetsTwoPartitionedStoresSpendTheSameHundred) {
  // A plain PN-counter: each store checks value() before spending. Both see 100 and both spend.
  struct PnCounter {
    std::map<NodeId, std::uint64_t> p, n;
    std::int64_t value() const {
      std::int64_t v = 0;
      for (const auto& [k, x] : p) v += static_cast<std::int64_t>(x);
      for (const auto& [k, x] : n) v -= static_cast<std::int64_t>(x);
      return v;
    }
    void merge(const PnCounter& o) {
      for (const auto& [k, x] : o.p) p[k] = std::max(p[k], x);
      for (const auto& [k, x] : o.n) n[k] = std::max(n[k], x);
    }
  };
  PnCounter a, b;
  a.p[node(1)] = 100;  // top-up at store 1
  b.merge(a);          // store 2 learns of it, then the link drops
  if (a.value() >= 100) a.n[node(1)] += 100;
  if (b.value() >= 100) b.n[node(2)] += 100;
  a.merge(b);
  EXPECT_EQ(a.value(), -100) << "the naive counter should demonstrate the overspend";
}

TEST(EscrowNaiveTest, SecondStoreSpendingTheSameRightsIsRefused) {
  // The same scenario with escrow: store 2 sees the balance but holds no rights, so it refuses.
  EscrowCounter a, b;
  ASSERT_TRUE(a.credit(node(1), 100).is_ok());
  b.merge(a);
  EXPECT_EQ(b.value(), 100);
  EXPECT_EQ(b.rights(node(2)), 0);
  EXPECT_TRUE(a.debit(node(1), 100).is_ok());
  Status st = b.debit(node(2), 100);
  EXPECT_EQ(st.code(), Code::kRefused) << st.to_string();
  EscrowCounter g = join(a, b);
  EXPECT_EQ(g.value(), 0);
  EXPECT_EQ(g.rights(node(1)), 0);
  EXPECT_EQ(g.rights(node(2)), 0);
}

TEST(EscrowNaiveTest, UncheckedDebitAtANodeWithoutRightsDrivesTheGlobalValueNegative) {
  // Why a node must only use the checked debit on its own view: apply_debit (for replaying ops
  // other nodes already checked) would let store 2 spend rights that sit at store 1.
  EscrowCounter a, b;
  ASSERT_TRUE(a.credit(node(1), 100).is_ok());
  b.merge(a);
  ASSERT_TRUE(a.debit(node(1), 100).is_ok());
  ASSERT_TRUE(b.apply_debit(node(2), 100).is_ok());
  EscrowCounter g = join(a, b);
  EXPECT_EQ(g.value(), -100);
  EXPECT_EQ(g.rights(node(2)), -100);
}

TEST(EscrowNaiveTest, SameRightsCannotBeMovedAndSpentTwiceByTheirHolder) {
  // Only the holder lowers its rights, and it does so sequentially in its own view: after
  // handing 80 of 100 to store 2 it cannot also spend 50.
  EscrowCounter a;
  ASSERT_TRUE(a.credit(node(1), 100).is_ok());
  ASSERT_TRUE(a.move(node(1), node(2), 80).is_ok());
  EXPECT_EQ(a.debit(node(1), 50).code(), Code::kRefused);
  EXPECT_EQ(a.move(node(1), node(3), 21).code(), Code::kRefused);
  EXPECT_TRUE(a.debit(node(1), 20).is_ok());
  EXPECT_EQ(a.rights(node(1)), 0);
  EXPECT_EQ(a.value(), 80);
}

TEST(EscrowNaiveTest, DebitIsRefusedWhenTheBalanceCoversItButTheRightsSitElsewhere) {
  EscrowCounter c;
  ASSERT_TRUE(c.credit(node(1), 60).is_ok());
  ASSERT_TRUE(c.credit(node(2), 60).is_ok());
  EXPECT_EQ(c.value(), 120);
  EXPECT_EQ(c.debit(node(1), 100).code(), Code::kRefused);
  ASSERT_TRUE(c.move(node(2), node(1), 40).is_ok());  // the rights broker's move
  EXPECT_TRUE(c.debit(node(1), 100).is_ok());
  EXPECT_EQ(c.value(), 20);
  EXPECT_EQ(c.rights(node(2)), 20);
}

TEST(EscrowNaiveTest, StaleViewOfAnIncomingMoveUnderstatesRightsNeverOverstates) {
  EscrowCounter at1, at2;
  ASSERT_TRUE(at1.credit(node(1), 100).is_ok());
  ASSERT_TRUE(at1.move(node(1), node(2), 30).is_ok());
  // Store 2 has not heard of the move: it sees no rights and refuses.
  EXPECT_EQ(at2.rights(node(2)), 0);
  EXPECT_EQ(at2.debit(node(2), 30).code(), Code::kRefused);
  at2.merge(at1);
  EXPECT_EQ(at2.rights(node(2)), 30);
  EXPECT_TRUE(at2.debit(node(2), 30).is_ok());
}

// ---------------------------------------------------------------------------------------------
// EscrowCounter, GCounter and LwwRegister unit behaviour.

TEST(EscrowCounterTest, RightsFollowCreditsMovesAndDebits) {
  EscrowCounter c;
  ASSERT_TRUE(c.credit(node(1), 100).is_ok());
  ASSERT_TRUE(c.move(node(1), node(2), 30).is_ok());
  ASSERT_TRUE(c.move(node(2), node(3), 10).is_ok());
  ASSERT_TRUE(c.debit(node(3), 10).is_ok());
  EXPECT_EQ(c.value(), 90);
  EXPECT_EQ(c.rights(node(1)), 70);
  EXPECT_EQ(c.rights(node(2)), 20);
  EXPECT_EQ(c.rights(node(3)), 0);
  EXPECT_EQ(c.rights(node(4)), 0);
  // rights_by_node lists only non-zero holders.
  std::map<NodeId, std::int64_t> want = {{node(1), 70}, {node(2), 20}};
  EXPECT_EQ(c.rights_by_node(), want);
}

TEST(EscrowCounterTest, MoveToSelfIsInvalidAndChangesNothing) {
  EscrowCounter c;
  ASSERT_TRUE(c.credit(node(1), 100).is_ok());
  const EscrowCounter before = c;
  EXPECT_EQ(c.move(node(1), node(1), 10).code(), Code::kInvalidArgument);
  EXPECT_TRUE(c == before);
}

TEST(EscrowCounterTest, RefusedDebitAndMoveChangeNothing) {
  EscrowCounter c;
  ASSERT_TRUE(c.credit(node(1), 10).is_ok());
  const EscrowCounter before = c;
  EXPECT_EQ(c.debit(node(1), 11).code(), Code::kRefused);
  EXPECT_EQ(c.move(node(1), node(2), 11).code(), Code::kRefused);
  EXPECT_EQ(c.debit(node(2), 1).code(), Code::kRefused);
  EXPECT_TRUE(c == before);
}

TEST(EscrowCounterTest, CreditPastTheCounterMaximumIsRefusedNotWrapped) {
  EscrowCounter c;
  ASSERT_TRUE(c.credit(node(1), limits::kCounterMax).is_ok());
  const EscrowCounter before = c;
  EXPECT_EQ(c.credit(node(1), 1).code(), Code::kRefused);
  EXPECT_TRUE(c == before);
  std::uint64_t x = limits::kCounterMax - 5;
  EXPECT_TRUE(checked_add(x, 5).is_ok());
  EXPECT_EQ(x, limits::kCounterMax);
  EXPECT_FALSE(checked_add(x, 1).is_ok());
  std::uint64_t y = 0;
  EXPECT_FALSE(checked_add(y, std::numeric_limits<std::uint64_t>::max()).is_ok());
  EXPECT_EQ(y, 0u);
}

TEST(EscrowCounterTest, ZeroAmountLeavesNoEntrySoEqualStatesCompareEqual) {
  // An earn below one unit credits 0 points. If that left a 0 entry, a replica rebuilt from
  // storage (which keeps no 0 rows) would compare unequal to a replay of the same log.
  EscrowCounter c;
  ASSERT_TRUE(c.credit(node(1), 0).is_ok());
  ASSERT_TRUE(c.apply_debit(node(1), 0).is_ok());
  ASSERT_TRUE(c.debit(node(1), 0).is_ok());
  ASSERT_TRUE(c.apply_move(node(1), node(2), 0).is_ok());
  ASSERT_TRUE(c.move(node(1), node(2), 0).is_ok());
  EXPECT_TRUE(c == EscrowCounter{});
  EXPECT_TRUE(c.credits().empty());
  EXPECT_TRUE(c.debits().empty());
  EXPECT_TRUE(c.moves().empty());
  GCounter g;
  ASSERT_TRUE(g.add(node(1), 100, 0).is_ok());
  EXPECT_TRUE(g == GCounter{});
  EscrowCounter merged = join(EscrowCounter{}, c);
  EXPECT_TRUE(merged == EscrowCounter{});
}

TEST(GCounterTest, SumMonthsIncludesBothEndsOnly) {
  GCounter g;
  ASSERT_TRUE(g.add(node(1), 100, 5).is_ok());
  ASSERT_TRUE(g.add(node(2), 100, 7).is_ok());
  ASSERT_TRUE(g.add(node(1), 101, 11).is_ok());
  ASSERT_TRUE(g.add(node(1), 102, 13).is_ok());
  ASSERT_TRUE(g.add(node(1), 100, 1).is_ok());  // adds to the existing bucket
  EXPECT_EQ(g.total(), 37u);
  EXPECT_EQ(g.sum_months(100, 100), 13u);
  EXPECT_EQ(g.sum_months(101, 102), 24u);
  EXPECT_EQ(g.sum_months(99, 99), 0u);
  EXPECT_EQ(g.sum_months(100, 102), 37u);
  EXPECT_EQ(g.add(node(1), 100, limits::kCounterMax).code(), Code::kRefused);
  EXPECT_EQ(g.total(), 37u);
}

TEST(LwwRegisterTest, NewerHlcWinsAndOriginBreaksTies) {
  LwwRegister r;
  EXPECT_FALSE(r.is_set());
  EXPECT_TRUE(r.assign("a", Hlc{10, 0}, node(2)));
  EXPECT_FALSE(r.assign("older", Hlc{9, 5}, node(4)));
  EXPECT_FALSE(r.assign("same-hlc-lower-origin", Hlc{10, 0}, node(1)));
  EXPECT_EQ(r.value(), "a");
  EXPECT_TRUE(r.assign("same-hlc-higher-origin", Hlc{10, 0}, node(3)));
  EXPECT_TRUE(r.assign("newer-logical", Hlc{10, 1}, node(1)));
  EXPECT_EQ(r.value(), "newer-logical");
  EXPECT_EQ(r.hlc(), (Hlc{10, 1}));
  EXPECT_EQ(r.origin(), node(1));
  // Re-applying the same write is not a change.
  EXPECT_FALSE(r.assign("newer-logical", Hlc{10, 1}, node(1)));
}

// ---------------------------------------------------------------------------------------------
// HLC.

TEST(HlcTest, StaysMonotonicWhenTheWallClockGoesBackwards) {
  HlcClock c;
  Hlc t1 = c.now(1000);
  Hlc t2 = c.now(900);   // clock stepped back
  Hlc t3 = c.now(1000);  // back to where it was
  Hlc t4 = c.now(1001);
  EXPECT_EQ(t1, (Hlc{1000, 0}));
  EXPECT_EQ(t2, (Hlc{1000, 1}));
  EXPECT_EQ(t3, (Hlc{1000, 2}));
  EXPECT_EQ(t4, (Hlc{1001, 0}));
  EXPECT_LT(t1, t2);
  EXPECT_LT(t2, t3);
  EXPECT_LT(t3, t4);
}

TEST(HlcTest, RandomWallClockNeverProducesANonIncreasingTimestamp) {
  for (std::uint64_t seed : seeds()) {
    SCOPED_TRACE(repro(seed));  // printed with every failure below, helpers included
    Rng rng(seed);
    HlcClock c;
    Hlc last{};
    for (int k = 0; k < 500; ++k) {
      if (rng.chance(20)) {
        Hlc remote{rng.range(0, 2000), static_cast<std::uint32_t>(rng.range(0, 5))};
        c.observe(remote, rng.range(0, 2000));
        EXPECT_GE(c.last(), remote) << repro(seed);
        EXPECT_GE(c.last(), last) << repro(seed);
        last = c.last();
        continue;
      }
      Hlc t = c.now(rng.range(0, 2000));
      EXPECT_GT(t, last) << "timestamp did not advance at step " << k << "; " << repro(seed);
      last = t;
    }
    if (HasFailure()) return;
  }
}

TEST(HlcTest, ObservingARemoteTimestampAheadOrdersLaterEventsAfterIt) {
  HlcClock c;
  (void)c.now(1000);
  c.observe(Hlc{5000, 3}, 1000);  // the peer's clock is ahead of ours
  EXPECT_EQ(c.last(), (Hlc{5000, 3}));
  EXPECT_EQ(c.now(1000), (Hlc{5000, 4}));
  EXPECT_EQ(c.now(6000), (Hlc{6000, 0}));
  // A remote timestamp behind us changes nothing.
  c.observe(Hlc{10, 0}, 10);
  EXPECT_EQ(c.last(), (Hlc{6000, 0}));
  // Our own wall clock ahead of both wins.
  c.observe(Hlc{6000, 9}, 7000);
  EXPECT_EQ(c.last(), (Hlc{7000, 0}));
}

TEST(HlcTest, LogicalCounterOverflowStillAdvancesTheTimestamp) {
  // A peer-supplied timestamp with the largest logical value must not make our next event wrap
  // to a smaller timestamp.
  HlcClock c(Hlc{5000, std::numeric_limits<std::uint32_t>::max()});
  Hlc next = c.now(4000);
  EXPECT_GT(next, (Hlc{5000, std::numeric_limits<std::uint32_t>::max()}));
  EXPECT_GT(c.now(4000), next);
}

TEST(HlcTest, MonthIndexOfKnownDates) {
  EXPECT_EQ(month_index(0), 1970u * 12);                   // 1970-01-01T00:00:00.000Z
  EXPECT_EQ(month_index(2678399999), 1970u * 12);          // 1970-01-31T23:59:59.999Z
  EXPECT_EQ(month_index(2678400000), 1970u * 12 + 1);      // 1970-02-01
  EXPECT_EQ(month_index(1709164800000), 2024u * 12 + 1);   // 2024-02-29T00:00:00.000Z
  EXPECT_EQ(month_index(1709251199999), 2024u * 12 + 1);   // 2024-02-29T23:59:59.999Z
  EXPECT_EQ(month_index(1709251200000), 2024u * 12 + 2);   // 2024-03-01
  EXPECT_EQ(month_index(1798761599999), 2026u * 12 + 11);  // 2026-12-31T23:59:59.999Z
  EXPECT_EQ(month_index(1798761600000), 2027u * 12);       // 2027-01-01T00:00:00.000Z
  EXPECT_EQ(month_index(951782400000), 2000u * 12 + 1);    // 2000-02-29 (leap century)
  EXPECT_EQ(month_index(4107542400000), 2100u * 12 + 2);   // 2100-03-01 (no Feb 29)
  EXPECT_EQ(month_index(4107456000000), 2100u * 12 + 1);   // 2100-02-28
}

TEST(HlcTest, MonthStringRendersYearAndMonth) {
  EXPECT_EQ(month_string(1970 * 12), "1970-01");
  EXPECT_EQ(month_string(2024 * 12 + 1), "2024-02");
  EXPECT_EQ(month_string(2026 * 12 + 11), "2026-12");
  EXPECT_EQ(month_string(month_index(1798761600000)), "2027-01");
  EXPECT_EQ(month_string(5), "0000-06");
}

// ---------------------------------------------------------------------------------------------
// The rebalancer's policy (sync/rebalance.h).

constexpr std::uint64_t kRebalanceNow = 1'790'000'000'000;

EscrowCounter credited(const NodeId& at, std::uint64_t amount) {
  EscrowCounter c;
  EXPECT_TRUE(c.credit(at, amount).is_ok());
  return c;
}

TEST(RebalanceTest, IdleRightsGoToTheStoreTheMemberUsedMostRecently) {
  const EscrowCounter c = credited(node(1), 1000);
  const std::map<NodeId, std::uint64_t> seen = {{node(1), kRebalanceNow - 8 * kDayMs},
                                                {node(2), kRebalanceNow - 2 * kDayMs},
                                                {node(3), kRebalanceNow - 1 * kDayMs}};
  auto plan = plan_rebalance(c, node(1), seen, kRebalanceNow, RebalancePolicy{});
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->to, node(3));
  EXPECT_EQ(plan->amount, 1000u);
}

TEST(RebalanceTest, RightsStayWhileTheMemberStillShopsHereOrNowhereElseRecently) {
  const EscrowCounter c = credited(node(1), 1000);
  RebalancePolicy p;
  // Seen here 6 days ago (idle after 7): stays.
  EXPECT_FALSE(plan_rebalance(c, node(1), {{node(1), kRebalanceNow - 6 * kDayMs}, {node(2), kRebalanceNow}},
                              kRebalanceNow, p));
  // Elsewhere only 31 days ago (recent means 30): stays.
  EXPECT_FALSE(plan_rebalance(c, node(1), {{node(2), kRebalanceNow - 31 * kDayMs}}, kRebalanceNow, p));
  // Never seen anywhere else: stays.
  EXPECT_FALSE(plan_rebalance(c, node(1), {}, kRebalanceNow, p));
  EXPECT_FALSE(plan_rebalance(c, node(1), {{node(1), kRebalanceNow - 9 * kDayMs}}, kRebalanceNow, p));
  // A node that holds nothing proposes nothing.
  EXPECT_FALSE(plan_rebalance(c, node(2), {{node(3), kRebalanceNow}}, kRebalanceNow, p));
  // A clock behind the ops' times (skew) counts as "just now", never as idle.
  EXPECT_FALSE(plan_rebalance(c, node(1), {{node(1), kRebalanceNow + kDayMs}, {node(2), kRebalanceNow}},
                              kRebalanceNow, p));
}

TEST(RebalanceTest, RightsNeverFlowBackToANodeThatSawTheMemberEarlier) {
  RebalancePolicy p;
  p.idle_ms = 0;  // everything is idle at once: the worst case for back-and-forth
  const std::map<NodeId, std::uint64_t> seen = {{node(1), kRebalanceNow - 10 * kDayMs},
                                                {node(2), kRebalanceNow - 9 * kDayMs}};
  EscrowCounter c = credited(node(1), 700);
  auto first = plan_rebalance(c, node(1), seen, kRebalanceNow, p);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->to, node(2));
  ASSERT_TRUE(c.move(node(1), node(2), first->amount).is_ok());
  EXPECT_FALSE(plan_rebalance(c, node(2), seen, kRebalanceNow, p)) << "node 2 handed the rights back";
  // Equal times: nobody moves (no node saw the member later than the holder).
  EXPECT_FALSE(plan_rebalance(credited(node(1), 5), node(1), {{node(1), kRebalanceNow}, {node(2), kRebalanceNow}},
                              kRebalanceNow, p));
}

TEST(RebalanceTest, KeepPercentAndMinimumMoveAreHonouredAndTiesGoToTheSmallerId) {
  const EscrowCounter c = credited(node(1), 1001);
  const std::map<NodeId, std::uint64_t> seen = {{node(3), kRebalanceNow}, {node(2), kRebalanceNow}};
  RebalancePolicy p;
  p.keep_percent = 25;
  auto plan = plan_rebalance(c, node(1), seen, kRebalanceNow, p);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->to, node(2));
  EXPECT_EQ(plan->amount, 1001u - 250u);  // keeps floor(1001 * 25 / 100) = 250
  p.min_move = 752;
  EXPECT_FALSE(plan_rebalance(c, node(1), seen, kRebalanceNow, p));
  p.min_move = 1;
  p.keep_percent = 100;
  EXPECT_FALSE(plan_rebalance(c, node(1), seen, kRebalanceNow, p));
}

// Property: whatever the counter and the times, a proposal is a move the holder's own view
// allows, so applying it never drives any node's rights or the value below zero.
TEST(RebalanceTest, EveryProposalIsAnAllowedEscrowMoveForAnyHistory) {
  for (std::uint64_t seed : seeds()) {
    Rng rng(seed);
    for (int round = 0; round < 200; ++round) {
      EscrowCounter c;
      for (int i = 0; i < 6; ++i) {
        const NodeId at = node(static_cast<std::uint8_t>(rng.range(1, 4)));
        const std::uint64_t amount = rng.range(1, 500);
        switch (rng.index(3)) {
          case 0: (void)c.credit(at, amount); break;
          case 1: (void)c.debit(at, amount); break;
          default: (void)c.move(at, node(static_cast<std::uint8_t>(rng.range(1, 4))), amount); break;
        }
      }
      std::map<NodeId, std::uint64_t> seen;
      for (std::uint8_t n = 1; n <= 4; ++n) {
        if (rng.chance(70)) seen[node(n)] = kRebalanceNow - rng.range(0, 40) * kDayMs;
      }
      RebalancePolicy p;
      p.keep_percent = static_cast<std::uint32_t>(rng.range(0, 100));
      const NodeId self = node(static_cast<std::uint8_t>(rng.range(1, 4)));
      auto plan = plan_rebalance(c, self, seen, kRebalanceNow, p);
      if (!plan) continue;
      ASSERT_NE(plan->to, self) << repro(seed);
      ASSERT_LE(static_cast<std::int64_t>(plan->amount), c.rights(self)) << repro(seed);
      ASSERT_TRUE(c.move(self, plan->to, plan->amount).is_ok()) << repro(seed);
      for (const auto& [n, r] : c.rights_by_node()) ASSERT_GE(r, 0) << repro(seed);
      ASSERT_GE(c.value(), 0) << repro(seed);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Program rules.

TEST(RulesTest, DefaultRulesAreValidAndDocumented) {
  ProgramRules r = default_rules();
  ASSERT_TRUE(r.validate().is_ok()) << r.validate().to_string();
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.unit_minor, 100u);
  EXPECT_EQ(r.window_months, 12u);
  ASSERT_EQ(r.tiers.size(), 3u);
  EXPECT_EQ(r.tiers[0].name, "member");
  EXPECT_EQ(r.tiers[0].threshold_minor, 0u);
  EXPECT_EQ(r.tiers[0].points_per_unit, 1u);
  EXPECT_EQ(r.tiers[1].name, "silver");
  EXPECT_EQ(r.tiers[1].threshold_minor, 50'000u);
  EXPECT_EQ(r.tiers[1].points_per_unit, 2u);
  EXPECT_EQ(r.tiers[2].name, "gold");
  EXPECT_EQ(r.tiers[2].threshold_minor, 200'000u);
  EXPECT_EQ(r.tiers[2].points_per_unit, 3u);
}

TEST(RulesTest, ValidateRefusesEachBadRule) {
  struct Case {
    const char* what;
    std::function<void(ProgramRules&)> mutate;
  };
  const std::vector<Case> cases = {
      {"no tiers", [](ProgramRules& r) { r.tiers.clear(); }},
      {"17 tiers",
       [](ProgramRules& r) {
         r.tiers.clear();
         for (std::uint64_t i = 0; i < 17; ++i) r.tiers.push_back({"t" + std::to_string(i), i, 1});
       }},
      {"unit_minor 0", [](ProgramRules& r) { r.unit_minor = 0; }},
      {"unit_minor above kAmountMax",
       [](ProgramRules& r) { r.unit_minor = limits::kAmountMax + 1; }},
      {"window 0 months", [](ProgramRules& r) { r.window_months = 0; }},
      {"window 121 months", [](ProgramRules& r) { r.window_months = 121; }},
      {"first tier above 0", [](ProgramRules& r) { r.tiers[0].threshold_minor = 1; }},
      {"empty tier name", [](ProgramRules& r) { r.tiers[1].name.clear(); }},
      {"33-byte tier name", [](ProgramRules& r) { r.tiers[1].name.assign(33, 'n'); }},
      {"duplicate tier name", [](ProgramRules& r) { r.tiers[2].name = r.tiers[0].name; }},
      {"points_per_unit 10001", [](ProgramRules& r) { r.tiers[2].points_per_unit = 10'001; }},
      {"threshold above kAmountMax",
       [](ProgramRules& r) { r.tiers[2].threshold_minor = limits::kAmountMax + 1; }},
      {"equal thresholds",
       [](ProgramRules& r) { r.tiers[2].threshold_minor = r.tiers[1].threshold_minor; }},
      {"descending thresholds", [](ProgramRules& r) { r.tiers[2].threshold_minor = 10; }},
      {"control character in a tier name", [](ProgramRules& r) { r.tiers[1].name = "sil\nver"; }},
      {"version 0", [](ProgramRules& r) { r.version = 0; }},
  };
  for (const Case& c : cases) {
    ProgramRules r = default_rules();
    c.mutate(r);
    Status st = r.validate();
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << c.what << ": " << st.to_string();
  }
}

TEST(RulesTest, ValidateAcceptsValuesAtTheirLimits) {
  ProgramRules r = default_rules();
  r.window_months = 1;
  EXPECT_TRUE(r.validate().is_ok());
  r.window_months = 120;
  r.unit_minor = 1;
  r.tiers[0].name.assign(32, 'n');
  r.tiers[2].points_per_unit = 10'000;
  r.tiers[2].threshold_minor = limits::kAmountMax;
  EXPECT_TRUE(r.validate().is_ok()) << r.validate().to_string();
  r.tiers.clear();
  for (std::uint64_t i = 0; i < 16; ++i) r.tiers.push_back({"t" + std::to_string(i), i, 1});
  EXPECT_TRUE(r.validate().is_ok()) << r.validate().to_string();
  r.tiers.resize(1);
  EXPECT_TRUE(r.validate().is_ok()) << r.validate().to_string();
}

ProgramRules two_tier_rules() {
  ProgramRules r;
  r.version = 7;
  r.unit_minor = 100;
  r.window_months = 12;
  r.tiers = {{"a", 0, 1}, {"gold", 5000, 3}};
  return r;
}

NetworkId network_1_to_16() {
  NetworkId n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(i + 1);
  return n;
}

// Golden bytes of docs/program-rules.md, "Signed rules": every byte is pinned here.
TEST(SignedRulesTest, EncodingMatchesTheDocumentedGoldenBytes) {
  const Bytes body = encode_rules(two_tier_rules(), network_1_to_16(), 0x0102030405060708ULL);
  EXPECT_EQ(crypto::to_hex(body),
            "4f50524c"                          // magic "OPRL"
            "01"                                // format
            "0102030405060708090a0b0c0d0e0f10"  // network id
            "07000000"                          // version u32
            "0807060504030201"                  // issued_ms u64
            "6400000000000000"                  // unit_minor u64
            "0c000000"                          // window_months u32
            "02"                                // tier count
            "01" "61" "0000000000000000" "0100000000000000"          // "a": from 0, 1 per unit
            "04" "676f6c64" "8813000000000000" "0300000000000000");  // "gold": from 5000, 3 per unit
  auto back = decode_rules(body);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->rules.version, 7u);
  EXPECT_EQ(back->issued_ms, 0x0102030405060708ULL);
  EXPECT_EQ(back->network_id, network_1_to_16());
  ASSERT_EQ(back->rules.tiers.size(), 2u);
  EXPECT_EQ(back->rules.tiers[1].name, "gold");
  EXPECT_EQ(back->rules.tiers[1].threshold_minor, 5000u);
  EXPECT_EQ(back->rules.tiers[1].points_per_unit, 3u);
}

TEST(SignedRulesTest, DecodeRefusesTruncationTrailingBytesBadMagicFormatAndInvalidRules) {
  const Bytes good = encode_rules(two_tier_rules(), network_1_to_16(), 1);
  for (std::size_t n = 0; n < good.size(); ++n) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(decode_rules(cut).status().code(), Code::kCorruption) << "truncated to " << n;
  }
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(decode_rules(trailing).status().code(), Code::kCorruption);
  Bytes magic = good;
  magic[0] ^= 1;
  EXPECT_EQ(decode_rules(magic).status().code(), Code::kCorruption);
  Bytes format = good;
  format[4] = 2;
  EXPECT_EQ(decode_rules(format).status().code(), Code::kUnsupported);
  // Thresholds that do not ascend decode to rules validate() refuses.
  Bytes descending = good;
  descending[descending.size() - 16] = 0;  // "gold" threshold 5000 (88 13 00 ..) becomes 0,
  descending[descending.size() - 15] = 0;  // equal to the first tier's
  EXPECT_EQ(decode_rules(descending).status().code(), Code::kCorruption);
  Bytes zero_tiers = good;
  zero_tiers[45] = 0;  // the tier count
  EXPECT_EQ(decode_rules(zero_tiers).status().code(), Code::kCorruption);
  Bytes huge(limits::kRulesBytesMax + 1, 0);
  EXPECT_EQ(decode_rules(huge).status().code(), Code::kCorruption);
}

TEST(SignedRulesTest, OnlyTheRootOfThisNetworkCanIssueRules) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(7);
  auto root = crypto::SigningKey::from_seed(seed);
  ASSERT_TRUE(root.is_ok());
  seed.fill(8);
  auto other = crypto::SigningKey::from_seed(seed);
  ASSERT_TRUE(other.is_ok());
  const SignedRules sr = sign_rules(two_tier_rules(), network_1_to_16(), 5, *root);
  auto ok = verify_rules(sr.body, sr.sig, root->public_key(), network_1_to_16());
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->rules.version, 7u);
  EXPECT_EQ(ok->body, sr.body);

  EXPECT_EQ(verify_rules(sr.body, sr.sig, other->public_key(), network_1_to_16()).status().code(),
            Code::kPermission);
  NetworkId elsewhere = network_1_to_16();
  elsewhere[0] ^= 0xff;
  EXPECT_EQ(verify_rules(sr.body, sr.sig, root->public_key(), elsewhere).status().code(), Code::kPermission);
  Bytes tampered = sr.body;
  tampered[tampered.size() - 8] = 9;  // "gold" now earns 9 per unit
  EXPECT_EQ(verify_rules(tampered, sr.sig, root->public_key(), network_1_to_16()).status().code(),
            Code::kPermission);
  EXPECT_EQ(verify_rules(sr.body, ByteView(sr.sig.data(), 63), root->public_key(), network_1_to_16()).status().code(),
            Code::kCorruption);
}

TEST(RulesTest, TierForPicksTheHighestThresholdReached) {
  ProgramRules r = default_rules();
  EXPECT_EQ(r.tier_for(0).name, "member");
  EXPECT_EQ(r.tier_for(49'999).name, "member");
  EXPECT_EQ(r.tier_for(50'000).name, "silver");
  EXPECT_EQ(r.tier_for(199'999).name, "silver");
  EXPECT_EQ(r.tier_for(200'000).name, "gold");
  EXPECT_EQ(r.tier_for(std::numeric_limits<std::uint64_t>::max()).name, "gold");
}

TEST(RulesTest, PointsForFloorsToWholeUnits) {
  ProgramRules r = default_rules();
  const Tier& member = r.tiers[0];
  const Tier& gold = r.tiers[2];
  EXPECT_EQ(r.points_for(0, member), 0u);
  EXPECT_EQ(r.points_for(99, member), 0u);  // under one unit earns nothing
  EXPECT_EQ(r.points_for(100, member), 1u);
  EXPECT_EQ(r.points_for(199, member), 1u);
  EXPECT_EQ(r.points_for(12'345, gold), 369u);  // floor(123.45) * 3
  r.unit_minor = 250;
  EXPECT_EQ(r.points_for(749, gold), 6u);  // floor(2.996) * 3, not round(8.988)
  // The largest purchase at the richest allowed rate fits without overflow.
  r.unit_minor = 1;
  Tier richest{"r", 0, 10'000};
  EXPECT_EQ(r.points_for(limits::kAmountMax, richest), limits::kAmountMax * 10'000);
}

// ---------------------------------------------------------------------------------------------
// Replica.

const NodeId kStore = node(1);
const NodeId kOtherStore = node(2);
const MemberId kAda = member_id(1);
constexpr std::uint64_t kFeb2024Ms = 1707000000000;  // 2024-02-03T22:40:00Z

// A builder of one origin's log with contiguous seqs.
class LogBuilder {
 public:
  explicit LogBuilder(const NodeId& origin) : origin_(origin) {}

  Op next(OpKind kind, std::uint64_t wall_ms = kFeb2024Ms) {
    Op op;
    op.kind = kind;
    op.origin = origin_;
    op.seq = ++seq_;
    if (op.seq > 1) op.prev[0] = 1;
    op.hlc = Hlc{wall_ms, static_cast<std::uint32_t>(seq_)};
    op.member = kAda;
    return op;
  }
  Op enroll(const std::string& card) {
    Op op = next(OpKind::kEnroll);
    op.fields = {{Field::kCard, card}, {Field::kName, "Ada"}};
    return op;
  }
  Op earn(std::uint64_t purchase_minor, std::uint64_t points, std::uint64_t wall_ms = kFeb2024Ms) {
    Op op = next(OpKind::kEarn, wall_ms);
    op.account = Account::kPoints;
    op.spend_minor = purchase_minor;
    op.amount = points;
    return op;
  }
  Op amount_op(OpKind kind, std::uint64_t amount) {
    Op op = next(kind);
    op.account = (kind == OpKind::kRedeem) ? Account::kPoints : Account::kWallet;
    op.amount = amount;
    return op;
  }
  Op move(Account account, const NodeId& to, std::uint64_t amount) {
    Op op = next(OpKind::kMove);
    op.account = account;
    op.target = to;
    op.amount = amount;
    return op;
  }
  Op reverse(const Op& ref, std::uint64_t wall_ms = kFeb2024Ms) {
    Op op = next(OpKind::kReverse, wall_ms);
    op.account = ref.account;
    op.amount = ref.amount;
    op.spend_minor = ref.kind == OpKind::kEarn ? ref.spend_minor : 0;
    op.ref_origin = ref.origin;
    op.ref_seq = ref.seq;
    op.ref_kind = ref.kind;
    return op;
  }

 private:
  NodeId origin_;
  std::uint64_t seq_ = 0;
};

void apply_ok(Replica& r, const Op& op) {
  ASSERT_TRUE(validate_op(op).is_ok()) << validate_op(op).to_string();
  auto res = r.apply(op);
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  ASSERT_EQ(*res, ApplyResult::kApplied);
}

TEST(ReplicaTest, AppliesOpsOfEachOriginInSeqOrder) {
  Replica r;
  LogBuilder a(kStore), b(kOtherStore);
  apply_ok(r, a.enroll("6280001"));
  apply_ok(r, b.amount_op(OpKind::kTopup, 500));
  apply_ok(r, a.earn(1000, 10));
  EXPECT_EQ(r.applied_seq(kStore), 2u);
  EXPECT_EQ(r.applied_seq(kOtherStore), 1u);
  EXPECT_EQ(r.applied_seq(node(3)), 0u);
  std::map<NodeId, std::uint64_t> vv = {{kStore, 2}, {kOtherStore, 1}};
  EXPECT_EQ(r.version_vector(), vv);
  const MemberState* m = r.member(kAda);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->field(Field::kCard), "6280001");
  EXPECT_EQ(m->points.value(), 10);
  EXPECT_EQ(m->wallet.value(), 500);
  EXPECT_EQ(r.member(member_id(9)), nullptr);
}

TEST(ReplicaTest, ReappliedOpIsDuplicateAndChangesNothing) {
  Replica r;
  LogBuilder a(kStore);
  Op enroll = a.enroll("6280001");
  Op earn = a.earn(1000, 10);
  apply_ok(r, enroll);
  apply_ok(r, earn);
  const Replica before = r;
  for (const Op& op : {enroll, earn}) {
    auto res = r.apply(op);
    ASSERT_TRUE(res.is_ok()) << res.status().to_string();
    EXPECT_EQ(*res, ApplyResult::kDuplicate);
  }
  EXPECT_TRUE(r == before);
}

TEST(ReplicaTest, GapInSeqIsCorruptionAndChangesNothing) {
  Replica r;
  LogBuilder a(kStore);
  apply_ok(r, a.enroll("6280001"));
  (void)a.earn(1000, 10);  // seq 2 never arrives
  Op seq3 = a.earn(2000, 20);
  const Replica before = r;
  auto res = r.apply(seq3);
  ASSERT_FALSE(res.is_ok());
  EXPECT_EQ(res.status().code(), Code::kCorruption);
  EXPECT_TRUE(r == before);
  // A first op that is not seq 1 is a gap too.
  LogBuilder b(kOtherStore);
  (void)b.enroll("1");
  EXPECT_EQ(r.apply(b.amount_op(OpKind::kTopup, 5)).status().code(), Code::kCorruption);
}

TEST(ReplicaTest, SecondReversalOfTheSameOpIsRejected) {
  Replica r;
  LogBuilder a(kStore);
  apply_ok(r, a.enroll("6280001"));
  Op topup = a.amount_op(OpKind::kTopup, 500);
  apply_ok(r, topup);
  apply_ok(r, a.reverse(topup));
  EXPECT_TRUE(r.is_reversed(kStore, topup.seq));
  const Replica before = r;
  auto res = r.apply(a.reverse(topup));
  ASSERT_FALSE(res.is_ok());
  EXPECT_EQ(res.status().code(), Code::kCorruption);
  EXPECT_TRUE(r == before);
  EXPECT_EQ(r.member(kAda)->wallet.value(), 0);
}

TEST(ReplicaTest, FailedApplyLeavesTheReplicaUnchanged) {
  // An op whose effects cannot apply (here a reverse of an enroll, which validate_op would have
  // refused) must not leave an empty member behind.
  Replica r;
  LogBuilder a(kStore);
  Op bad = a.next(OpKind::kReverse);
  bad.ref_origin = kStore;
  bad.ref_kind = OpKind::kEnroll;
  bad.ref_seq = 1;
  bad.member = member_id(7);
  auto res = r.apply(bad);
  ASSERT_FALSE(res.is_ok());
  EXPECT_TRUE(r == Replica{});
  EXPECT_EQ(r.member(member_id(7)), nullptr);
  EXPECT_TRUE(r.members().empty());
}

TEST(ReplicaTest, ZeroPointEarnLeavesTheSameStateAsOneRebuiltWithoutZeroEntries) {
  Replica r;
  LogBuilder a(kStore);
  apply_ok(r, a.enroll("6280001"));
  apply_ok(r, a.earn(99, 0));  // below one earn unit
  const MemberState& m = *r.member(kAda);
  EXPECT_TRUE(m.points == EscrowCounter{});
  EXPECT_EQ(m.spend.total(), 99u);
  EXPECT_EQ(m.visits.total(), 1u);
}

TEST(ReplicaTest, ReversedEarnNoLongerCountsTowardTheRollingWindow) {
  Replica r;
  LogBuilder a(kStore);
  const std::uint32_t feb = month_index(kFeb2024Ms);
  apply_ok(r, a.enroll("6280001"));
  Op big = a.earn(60'000, 600);
  apply_ok(r, big);
  apply_ok(r, a.earn(5'000, 50));
  EXPECT_EQ(r.member(kAda)->rolling_spend(feb, 12), 65'000u);
  EXPECT_EQ(default_rules().tier_for(r.member(kAda)->rolling_spend(feb, 12)).name, "silver");
  apply_ok(r, a.reverse(big));
  const MemberState& m = *r.member(kAda);
  EXPECT_EQ(m.rolling_spend(feb, 12), 5'000u);
  EXPECT_EQ(default_rules().tier_for(m.rolling_spend(feb, 12)).name, "member");
  EXPECT_EQ(m.points.value(), 50);
  // The purchase itself still counts as a visit; spend is kept, net of the reversal.
  EXPECT_EQ(m.visits.total(), 2u);
  EXPECT_EQ(m.spend.total(), 65'000u);
  EXPECT_EQ(m.spend_reversed.total(), 60'000u);
}

TEST(ReplicaTest, RollingWindowDropsMonthsOlderThanTheWindow) {
  Replica r;
  LogBuilder a(kStore);
  constexpr std::uint64_t kJan2023Ms = 1673740800000;  // 2023-01-15
  constexpr std::uint64_t kMar2024Ms = 1710460800000;  // 2024-03-15
  apply_ok(r, a.enroll("6280001"));
  apply_ok(r, a.earn(70'000, 700, kJan2023Ms));
  apply_ok(r, a.earn(1'000, 10, kMar2024Ms));
  const MemberState& m = *r.member(kAda);
  const std::uint32_t mar = month_index(kMar2024Ms);
  EXPECT_EQ(m.rolling_spend(mar, 12), 1'000u);   // Apr 2023 .. Mar 2024
  EXPECT_EQ(m.rolling_spend(mar, 15), 71'000u);  // Jan 2023 .. Mar 2024
  // A window longer than the calendar does not underflow.
  EXPECT_EQ(m.rolling_spend(5, 120), 0u);
}

TEST(ReplicaTest, ReversalCountsInItsOwnMonthAndNeverMakesRollingSpendNegative) {
  // The reversal of an earn from an old month is bucketed in the reversal's own month, so a
  // window can hold the reversal but not the purchase; the spend floors at zero.
  Replica r;
  LogBuilder a(kStore);
  constexpr std::uint64_t kDec2023Ms = 1702425600000;  // 2023-12-13
  apply_ok(r, a.enroll("6280001"));
  Op old = a.earn(10'000, 100, kDec2023Ms);
  apply_ok(r, old);
  apply_ok(r, a.reverse(old, kFeb2024Ms));
  const std::uint32_t feb = month_index(kFeb2024Ms);
  EXPECT_EQ(r.member(kAda)->rolling_spend(feb, 1), 0u);
  EXPECT_EQ(r.member(kAda)->rolling_spend(feb, 3), 0u);
}

TEST(ReplicaTest, ApplyEffectsOfEveryKind) {
  LogBuilder a(kStore);
  const std::uint32_t feb = month_index(kFeb2024Ms);
  MemberState m;

  // enroll: sets each field as an LWW write at (hlc, origin).
  Op enroll = a.enroll("6280001");
  ASSERT_TRUE(apply_effects(m, enroll).is_ok());
  EXPECT_EQ(m.field(Field::kCard), "6280001");
  EXPECT_EQ(m.field(Field::kName), "Ada");
  EXPECT_EQ(m.fields.at(Field::kCard).hlc(), enroll.hlc);
  EXPECT_EQ(m.fields.at(Field::kCard).origin(), kStore);
  EXPECT_EQ(m.field(Field::kPhone), "");

  // profile: a newer write replaces, an older one is ignored.
  Op profile = a.next(OpKind::kProfile);
  profile.fields = {{Field::kName, "Ada King"}};
  ASSERT_TRUE(apply_effects(m, profile).is_ok());
  EXPECT_EQ(m.field(Field::kName), "Ada King");
  Op stale = profile;
  stale.hlc = Hlc{kFeb2024Ms - 1, 0};
  stale.fields = {{Field::kName, "stale"}};
  ASSERT_TRUE(apply_effects(m, stale).is_ok());
  EXPECT_EQ(m.field(Field::kName), "Ada King");

  // earn: credits points at the origin, adds spend and one visit in the op's month.
  ASSERT_TRUE(apply_effects(m, a.earn(12'345, 123)).is_ok());
  EXPECT_EQ(m.points.rights(kStore), 123);
  EXPECT_EQ(m.spend.sum_months(feb, feb), 12'345u);
  EXPECT_EQ(m.visits.sum_months(feb, feb), 1u);

  // redeem: debits points at the origin.
  Op redeem = a.amount_op(OpKind::kRedeem, 23);
  ASSERT_TRUE(apply_effects(m, redeem).is_ok());
  EXPECT_EQ(m.points.value(), 100);
  EXPECT_EQ(m.points.debits().at(kStore), 23u);

  // topup: credits the wallet at the origin.
  Op topup = a.amount_op(OpKind::kTopup, 1'000);
  ASSERT_TRUE(apply_effects(m, topup).is_ok());
  EXPECT_EQ(m.wallet.rights(kStore), 1'000);

  // spend: debits the wallet at the origin.
  Op spend = a.amount_op(OpKind::kSpend, 250);
  ASSERT_TRUE(apply_effects(m, spend).is_ok());
  EXPECT_EQ(m.wallet.value(), 750);

  // move: hands rights of the named account to the target; the value does not change.
  ASSERT_TRUE(apply_effects(m, a.move(Account::kWallet, kOtherStore, 300)).is_ok());
  EXPECT_EQ(m.wallet.value(), 750);
  EXPECT_EQ(m.wallet.rights(kStore), 450);
  EXPECT_EQ(m.wallet.rights(kOtherStore), 300);
  ASSERT_TRUE(apply_effects(m, a.move(Account::kPoints, kOtherStore, 40)).is_ok());
  EXPECT_EQ(m.points.rights(kOtherStore), 40);
  EXPECT_EQ(m.points.rights(kStore), 60);

  // reverse of redeem: credits the points back at the origin.
  ASSERT_TRUE(apply_effects(m, a.reverse(redeem)).is_ok());
  EXPECT_EQ(m.points.value(), 123);
  EXPECT_EQ(m.points.rights(kStore), 83);
  // reverse of spend: credits the wallet back.
  ASSERT_TRUE(apply_effects(m, a.reverse(spend)).is_ok());
  EXPECT_EQ(m.wallet.value(), 1'000);
  EXPECT_EQ(m.wallet.rights(kStore), 700);
  // reverse of topup: debits the wallet at the origin. Applied unconditionally: the origin
  // checked that it still held the rights before it signed the reversal.
  ASSERT_TRUE(apply_effects(m, a.reverse(topup)).is_ok());
  EXPECT_EQ(m.wallet.value(), 0);
  EXPECT_EQ(m.wallet.rights(kStore), -300);
  EXPECT_EQ(m.wallet.rights(kOtherStore), 300);
  // reverse of earn: debits the points and records the purchase as reversed spend.
  Op earn = a.earn(5'000, 50);
  ASSERT_TRUE(apply_effects(m, earn).is_ok());
  ASSERT_TRUE(apply_effects(m, a.reverse(earn)).is_ok());
  EXPECT_EQ(m.points.value(), 123);
  EXPECT_EQ(m.spend_reversed.sum_months(feb, feb), 5'000u);
  EXPECT_EQ(m.rolling_spend(feb, 12), 12'345u);
}

TEST(ReplicaTest, ConcurrentProfileWritesConvergeToTheSameWinner) {
  LogBuilder a(kStore), b(kOtherStore);
  Op ea = a.enroll("111");
  Op eb = b.enroll("222");
  eb.hlc = ea.hlc;  // same HLC at two stores: the higher origin id wins everywhere
  Replica r1, r2;
  apply_ok(r1, ea);
  apply_ok(r1, eb);
  apply_ok(r2, eb);
  apply_ok(r2, ea);
  EXPECT_TRUE(r1 == r2);
  EXPECT_EQ(r1.member(kAda)->field(Field::kCard), "222");
}

}  // namespace
}  // namespace outpost::sync
