// Power loss on real nodes: HQ and stores, each a real node::Ledger over a real storage::Store on
// its own MemVfs (storage/mem_vfs.h), syncing through the daemon's session adapter
// (make_ledger_sync_store) over simulated links, on a ManualEnv. The power goes at a random
// write of whatever a node does next (a POS request's commit, an ingest, a checkpoint), every
// write not yet synced is dropped, and the node reopens from what its VFS kept. Checks failure
// rule 4 (docs/architecture.md): no op a node acknowledged (its own, to a POS; a peer's, by
// ingesting it) is lost, the database opens and the node carries on; and at the end the chain
// converges with HQ holding every acknowledged op. docs/simulator.md, "Power loss".
#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/ledger_sync_store.h"
#include "outpost/node/log.h"
#include "outpost/storage/mem_vfs.h"
#include "outpost/sync/env.h"
#include "outpost/sync/session.h"

namespace outpost::node {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kStartMs = 1'790'000'000'000;  // 2026-09-21
constexpr int kStores = 3;
constexpr std::size_t kFinalDeliveriesMax = 20'000;

std::vector<std::uint8_t> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < 0 || n > 100000000) {
    ADD_FAILURE() << name << "='" << v << "' is not a whole number; using " << fallback;
    return fallback;
  }
  return static_cast<int>(n);
}

// libsodium's random source, while one exists, is a stream from a seed, so that the node ids
// and keys Ledger::init and hq_init make (from the OS otherwise) follow the seed: one seed, one
// run, across processes. Only for the chain's setup; the previous source comes back after.
class SeededSodiumRandom {
 public:
  explicit SeededSodiumRandom(std::uint64_t seed) {
    state_ = seed ^ 0x6a09e667f3bcc908ULL;
    was_sysrandom_ = std::strcmp(randombytes_implementation_name(), "sysrandom") == 0;
    randombytes_set_implementation(&impl_);
  }
  ~SeededSodiumRandom() {
    randombytes_set_implementation(was_sysrandom_ ? &randombytes_sysrandom_implementation
                                                  : &randombytes_internal_implementation);
  }
  SeededSodiumRandom(const SeededSodiumRandom&) = delete;
  SeededSodiumRandom& operator=(const SeededSodiumRandom&) = delete;

 private:
  static std::uint64_t next() {  // SplitMix64
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static const char* name() { return "outpost-sim-seeded"; }
  static std::uint32_t random() { return static_cast<std::uint32_t>(next()); }
  static void stir() {}
  static void buf(void* out, std::size_t n) {
    auto* p = static_cast<std::uint8_t*>(out);
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(next());
  }
  static inline std::uint64_t state_ = 0;
  static inline randombytes_implementation impl_ = {name, random, stir, nullptr, buf, nullptr};
  bool was_sysrandom_ = false;
};

struct SimNodeState {
  std::string name;
  std::string dir;
  bool is_hq = false;
  sync::NodeId id{};
  std::unique_ptr<storage::MemVfs> vfs;
  std::unique_ptr<Ledger> ledger;  // null while the node is down
  // What it acknowledged: its own ops (seq -> hash) and, per origin, how far it had ingested.
  std::map<std::uint64_t, sync::Hash32> own_acked;
  sync::VersionVector durable_floor;
  std::vector<sync::MemberId> members;
  std::uint64_t power_losses = 0;
};

struct SimLink {
  int a = 0, b = 0;
  std::unique_ptr<sync::SyncStore> store_a, store_b;
  std::unique_ptr<sync::SyncSession> session_a, session_b;
  std::deque<sync::Bytes> to_a, to_b;
};

class PowerLossChain {
 public:
  PowerLossChain(std::uint64_t seed, const fs::path& root)
      : seed_of_setup_(seed), rng_(seed), env_(kStartMs, seed) {
    set_log_env(env_);  // log lines carry simulated time
    make_on_disk(root);
  }
  ~PowerLossChain() {
    static sync::SystemEnv system_env;
    set_log_env(system_env);  // env_ goes with this chain
  }

  // Runs `steps` random steps, then heals and checks convergence. Returns the failures found.
  void run(int steps) {
    for (step_ = 0; step_ < steps && !::testing::Test::HasFatalFailure(); ++step_) {
      one_step();
      check_acknowledged_kept();
    }
    final_phase();
  }

  std::uint64_t power_losses() const {
    std::uint64_t n = 0;
    for (const auto& node : nodes_) n += node.power_losses;
    return n;
  }
  std::uint64_t own_acked() const {
    std::uint64_t n = 0;
    for (const auto& node : nodes_) n += node.own_acked.size();
    return n;
  }

 private:
  std::uint64_t pick(std::uint64_t n) { return rng_() % n; }

  // The chain is enrolled on disk with the CLI's functions, then each database moves into its
  // node's MemVfs; the key files stay on disk (read only).
  void make_on_disk(const fs::path& root) {
    SeededSodiumRandom keys_from_seed(seed_of_setup_);
    const std::string hq_dir = (root / "hq").string();
    ASSERT_TRUE(hq_init(hq_dir, "hq", kHqValidDaysDefault, env_).is_ok());
    add_node("hq", hq_dir, true);
    for (int i = 1; i <= kStores; ++i) {
      const std::string name = "store-" + std::to_string(i);
      const std::string dir = (root / name).string();
      ASSERT_TRUE(Ledger::init(dir, InitOptions{name, "store"}).is_ok());
      auto req = make_enroll_request(dir);
      ASSERT_TRUE(req.is_ok()) << req.status().to_string();
      auto file = hq_enroll(hq_dir, name, sync::NodeRole::kStore, *req, 30, env_);
      ASSERT_TRUE(file.is_ok()) << file.status().to_string();
      ASSERT_TRUE(install_enrollment(dir, *file).is_ok());
      add_node(name, dir, false);
    }
    static int vfs_serial = 0;
    for (auto& node : nodes_) {
      auto vfs = storage::MemVfs::create("outpost-power-loss-" + std::to_string(++vfs_serial));
      ASSERT_TRUE(vfs.is_ok());
      node.vfs = std::move(vfs).value();
      const fs::path db = fs::path(node.dir) / kDbFile;
      for (const char* suffix : {"", "-wal"}) {
        const fs::path f = db.string() + suffix;
        if (fs::exists(f)) node.vfs->put_file(f.string(), read_file(f));
      }
      open_node(node);
      ASSERT_TRUE(node.ledger);
      node.id = node.ledger->node_id();
    }
    roster_ = nodes_[0].ledger->roster();
    ASSERT_TRUE(roster_);
  }

  void add_node(const std::string& name, const std::string& dir, bool is_hq) {
    SimNodeState n;
    n.name = name;
    n.dir = dir;
    n.is_hq = is_hq;
    nodes_.push_back(std::move(n));
  }

  void open_node(SimNodeState& node) {
    node.vfs->power_on();
    auto l = Ledger::open(node.dir, env_, storage::StoreOptions{node.vfs->name()});
    ASSERT_TRUE(l.is_ok()) << "step " << step_ << ": " << node.name
                           << " does not open after a power loss: " << l.status().to_string();
    node.ledger = std::move(l).value();
  }

  bool up(int i) const { return nodes_[static_cast<std::size_t>(i)].ledger != nullptr; }

  void one_step() {
    env_.advance(pick(50));
    const std::uint64_t r = pick(100);
    if (r < 30) {
      pos_request(1 + static_cast<int>(pick(kStores)));
    } else if (r < 75) {
      deliver_one();
    } else if (r < 83) {
      connect(static_cast<int>(pick(nodes_.size())), static_cast<int>(pick(nodes_.size())));
    } else if (r < 88) {
      // The power goes at one of the next writes of this node, whatever makes it.
      auto& node = nodes_[pick(nodes_.size())];
      if (node.ledger) node.vfs->crash_at_write(1 + pick(12));
    } else if (r < 92) {
      restart_one();
    } else {
      pump_all();
    }
    reap_dead_nodes();
    mix(r);
    for (const auto& n : nodes_) {
      mix(n.ledger ? 1 + n.own_acked.size() : 0);
      mix(n.durable_floor.size());
    }
    mix(links_.size());
  }

  void mix(std::uint64_t v) {  // FNV-1a, byte by byte
    for (int i = 0; i < 8; ++i) {
      digest_ = (digest_ ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
    }
  }

  void pos_request(int i) {
    SimNodeState& node = nodes_[static_cast<std::size_t>(i)];
    if (!node.ledger) return;
    Ledger& l = *node.ledger;
    Result<Reply> reply = Status::invalid("none");
    const std::string rid = "sim-" + std::to_string(step_) + "-" + std::to_string(pick(1u << 30));
    if (node.members.empty() || pick(10) == 0) {
      const std::string card = std::to_string(40000000 + pick(10'000'000));
      reply = l.enroll(EnrollRequest{rid, card, "Member", "", ""});
      if (reply.is_ok() && !reply->refused) {
        auto m = l.resolve_member(card);
        if (m.is_ok()) node.members.push_back(*m);
      }
    } else {
      const sync::MemberId member = node.members[pick(node.members.size())];
      reply = pick(2) == 0 ? l.topup(rid, member, 1 + pick(100), "")
                           : l.spend(rid, member, 1 + pick(60), "");
    }
    if (!reply.is_ok() || reply->refused || !node.vfs->powered()) return;  // not acknowledged
    auto head = l.store().head(node.id);
    ASSERT_TRUE(head.is_ok());
    node.own_acked[head->seq] = head->hash;  // the answer to the POS: the op is durable
    pump_node(i);
  }

  void connect(int a, int b) {
    if (a == b || !up(a) || !up(b) || linked(a, b)) return;
    if (!nodes_[static_cast<std::size_t>(a)].is_hq && !nodes_[static_cast<std::size_t>(b)].is_hq &&
        pick(2) == 0) {
      return;  // store-store links are rarer than links to HQ
    }
    auto link = std::make_unique<SimLink>();
    link->a = a;
    link->b = b;
    link->store_a = make_store(a, b);
    link->store_b = make_store(b, a);
    link->session_a = std::make_unique<sync::SyncSession>(*link->store_a, node(b).id);
    link->session_b = std::make_unique<sync::SyncSession>(*link->store_b, node(a).id);
    SimLink& l = *link;
    links_.push_back(std::move(link));
    for (auto& m : l.session_a->start(env_.steady_ms()).send) l.to_b.push_back(std::move(m));
    for (auto& m : l.session_b->start(env_.steady_ms()).send) l.to_a.push_back(std::move(m));
  }

  std::unique_ptr<sync::SyncStore> make_store(int self, int peer) {
    const sync::SignedCertificate* sc = roster_->find(node(peer).id);
    EXPECT_NE(sc, nullptr);
    return make_ledger_sync_store(*node(self).ledger, env_, node(self).is_hq, nullptr,
                                  sc ? sc->cert : sync::Certificate{});
  }

  SimNodeState& node(int i) { return nodes_[static_cast<std::size_t>(i)]; }

  bool linked(int a, int b) const {
    for (const auto& l : links_) {
      if ((l->a == a && l->b == b) || (l->a == b && l->b == a)) return true;
    }
    return false;
  }

  // Delivers the next message of a random non-empty direction; true if one was delivered.
  bool deliver_one() {
    std::vector<std::pair<std::size_t, bool>> ready;  // (link, toward a)
    for (std::size_t i = 0; i < links_.size(); ++i) {
      if (!links_[i]->to_a.empty()) ready.emplace_back(i, true);
      if (!links_[i]->to_b.empty()) ready.emplace_back(i, false);
    }
    if (ready.empty()) return false;
    const auto [index, toward_a] = ready[pick(ready.size())];
    SimLink& l = *links_[index];
    auto& queue = toward_a ? l.to_a : l.to_b;
    sync::Bytes msg = std::move(queue.front());
    queue.pop_front();
    sync::SyncSession& session = toward_a ? *l.session_a : *l.session_b;
    const int receiver = toward_a ? l.a : l.b;
    sync::SessionOutput out = session.on_message(msg, env_.steady_ms());
    if (!node(receiver).vfs->powered()) return true;  // it died on this message
    apply(l, toward_a, std::move(out));
    note_durable(receiver);
    pump_node(receiver);
    return true;
  }

  void apply(SimLink& l, bool from_a, sync::SessionOutput out) {
    auto& queue = from_a ? l.to_b : l.to_a;
    for (auto& m : out.send) queue.push_back(std::move(m));
    if (out.close) close_link(&l);
  }

  void close_link(const SimLink* link) {
    std::erase_if(links_, [link](const auto& l) { return l.get() == link; });
  }

  // Everything the node holds now was committed with an fsync: a later power loss must keep it.
  void note_durable(int i) {
    auto vv = node(i).ledger->store().version_vector();
    ASSERT_TRUE(vv.is_ok());
    node(i).durable_floor = *vv;
  }

  void pump_node(int i) {
    for (std::size_t k = 0; k < links_.size(); ++k) {
      SimLink& l = *links_[k];
      if (l.a != i && l.b != i) continue;
      const bool from_a = l.a == i;
      sync::SessionOutput out = (from_a ? l.session_a : l.session_b)->pump();
      if (!node(i).vfs->powered()) return;
      const std::size_t before = links_.size();
      apply(l, from_a, std::move(out));
      if (links_.size() != before) return;  // closed: the indices moved
    }
  }

  void pump_all() {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      if (up(i)) pump_node(i);
    }
  }

  // A node whose power went is down: its links drop, its Ledger (a dead process) is destroyed.
  void reap_dead_nodes() {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      SimNodeState& n = node(i);
      if (!n.ledger || n.vfs->powered()) continue;
      std::erase_if(links_, [i](const auto& l) { return l->a == i || l->b == i; });
      n.ledger.reset();
      ++n.power_losses;
    }
  }

  void restart_one() {
    std::vector<int> down;
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      if (!up(i)) down.push_back(i);
    }
    if (down.empty()) return;
    open_node(node(down[pick(down.size())]));
  }

  // Failure rule 4 after every step: each node that is up holds every op it acknowledged.
  void check_acknowledged_kept() {
    for (auto& n : nodes_) {
      if (!n.ledger) continue;
      auto vv = n.ledger->store().version_vector();
      ASSERT_TRUE(vv.is_ok());
      for (const auto& [origin, seq] : n.durable_floor) {
        ASSERT_GE(vv->count(origin) ? vv->at(origin) : 0, seq)
            << "reproduce with seed=" << seed_note() << " step=" << step_ << ": " << n.name
            << " lost ops it had ingested and acknowledged";
      }
      if (n.own_acked.empty()) continue;
      const auto& [seq, hash] = *n.own_acked.rbegin();
      auto ops = n.ledger->store().ops_of_origin(n.id, seq, 1);
      ASSERT_TRUE(ops.is_ok());
      ASSERT_EQ(ops->size(), 1u) << "reproduce with seed=" << seed_note() << " step=" << step_
                                 << ": " << n.name << " lost its acknowledged op " << seq;
      ASSERT_EQ(ops->front().hash, hash)
          << n.name << " holds another op at acknowledged seq " << seq;
    }
  }

  std::string seed_note() const { return std::to_string(seed_); }

  void final_phase() {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      node(i).vfs->crash_at_write(0);
      if (!up(i)) open_node(node(i));
      ASSERT_TRUE(up(i));
    }
    check_acknowledged_kept();
    links_.clear();
    for (int i = 1; i < static_cast<int>(nodes_.size()); ++i) connect(0, i);
    for (std::size_t k = 0; k < kFinalDeliveriesMax; ++k) {
      if (!deliver_one()) {
        pump_all();
        if (!deliver_one()) break;
      }
    }
    auto hq_vv = node(0).ledger->store().version_vector();
    ASSERT_TRUE(hq_vv.is_ok());
    for (auto& n : nodes_) {
      auto vv = n.ledger->store().version_vector();
      ASSERT_TRUE(vv.is_ok());
      EXPECT_EQ(*vv, *hq_vv) << n.name << " did not converge with HQ (seed=" << seed_note() << ")";
      for (const auto& [seq, hash] : n.own_acked) {
        auto ops = node(0).ledger->store().ops_of_origin(n.id, seq, 1);
        ASSERT_TRUE(ops.is_ok());
        ASSERT_EQ(ops->size(), 1u) << "HQ lacks acknowledged op " << seq << " of " << n.name;
        EXPECT_EQ(ops->front().hash, hash);
        mix(seq);
        for (std::uint8_t b : hash) mix(b);
      }
    }
  }

  std::uint64_t seed_of_setup_;
  std::mt19937_64 rng_;
  sync::ManualEnv env_;
  std::uint64_t seed_ = 0;
  std::uint64_t digest_ = 0xcbf29ce484222325ULL;
  int step_ = 0;
  std::vector<SimNodeState> nodes_;
  std::vector<std::unique_ptr<SimLink>> links_;
  std::shared_ptr<const sync::Roster> roster_;

 public:
  void set_seed(std::uint64_t s) { seed_ = s; }
  std::uint64_t digest() const { return digest_; }
};

class TempRoot {
 public:
  TempRoot() {
    std::string tmpl = (fs::temp_directory_path() / "outpost-power-loss-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempRoot() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct SeedResult {
  std::uint64_t digest = 0;
  std::uint64_t power_losses = 0;
  std::uint64_t acked = 0;
};

// Runs one seed in a fresh directory.
SeedResult run_seed(std::uint64_t seed, int steps) {
  SCOPED_TRACE("reproduce with seed=" + std::to_string(seed) +
               ": OUTPOST_SIM_POWER_FIRST=" + std::to_string(seed) +
               " OUTPOST_SIM_POWER_SEEDS=1 OUTPOST_SIM_POWER_STEPS=" + std::to_string(steps));
  TempRoot root;
  EXPECT_FALSE(root.path().empty());
  if (root.path().empty()) return {};
  PowerLossChain chain(seed, root.path());
  if (::testing::Test::HasFatalFailure()) return {};
  chain.set_seed(seed);
  chain.run(steps);
  return SeedResult{chain.digest(), chain.power_losses(), chain.own_acked()};
}

// Seeds FIRST .. FIRST+N-1 (OUTPOST_SIM_POWER_FIRST, default 1; OUTPOST_SIM_POWER_SEEDS), each
// a few hundred steps with power losses at random writes. Fails if an acknowledged op is lost, a
// node does not reopen, or the chain does not converge; and if the run lost no power or
// acknowledged nothing (it would prove nothing). With large N and steps, it is the soak
// (docs/simulator.md, "Soak").
TEST(SimPowerLoss, RealNodesLoseNoAcknowledgedOpAcrossPowerLossesAndConverge) {
  ASSERT_TRUE(crypto::init().is_ok());
  const int first = env_int("OUTPOST_SIM_POWER_FIRST", 1);
  const int seeds = env_int("OUTPOST_SIM_POWER_SEEDS", 3);
  const int steps = env_int("OUTPOST_SIM_POWER_STEPS", 400);
  std::uint64_t losses = 0, acked = 0, digest = 0;
  const auto started = std::chrono::steady_clock::now();  // for the printed throughput only
  for (int seed = first; seed < first + seeds && !HasFatalFailure(); ++seed) {
    const SeedResult r = run_seed(static_cast<std::uint64_t>(seed), steps);
    losses += r.power_losses;
    acked += r.acked;
    digest = digest * 0x100000001b3ULL ^ r.digest;
  }
  EXPECT_GT(losses, 0u) << "no power was lost: the run checked nothing";
  EXPECT_GT(acked, 0u) << "no op was acknowledged: the run checked nothing";
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double total_steps = static_cast<double>(seeds) * steps;
  std::printf(
      "power loss sim: %d seeds x %d steps = %.0f steps, %llu power losses, %llu acknowledged "
      "ops, %s, %.0f steps/s, digest %016llx\n",
      seeds, steps, total_steps, static_cast<unsigned long long>(losses),
      static_cast<unsigned long long>(acked),
      HasFailure() ? "INVARIANT BROKEN" : "0 invariant breaks",
      seconds > 0 ? total_steps / seconds : 0.0, static_cast<unsigned long long>(digest));
}

// One seed fixes the whole run: node ids and keys (from the seeded setup), every choice, the
// simulated time, and so every op's hash. Fails if anything in the run escapes the seed.
TEST(SimPowerLoss, SameSeedReplaysTheSameRun) {
  ASSERT_TRUE(crypto::init().is_ok());
  const SeedResult a = run_seed(7, 300);
  const SeedResult b = run_seed(7, 300);
  const SeedResult c = run_seed(8, 300);
  EXPECT_EQ(a.digest, b.digest) << "seed 7 ran two different ways";
  EXPECT_NE(a.digest, c.digest) << "the digest does not depend on the run";
}

}  // namespace
}  // namespace outpost::node
