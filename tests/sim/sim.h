// The deterministic chaos simulator of an Outpost chain (docs/simulator.md), in the style of
// TigerBeetle's VOPR and FoundationDB's simulation. HQ and N stores run in ONE thread from one
// seed, each the node we ship: a node::Ledger over a storage::Store whose SQLite runs on the
// node's own storage::MemVfs, the daemon's session adapter (make_ledger_sync_store) under real
// sync::SyncSessions, and a real sync::RightsBroker driven as the daemon drives it
// (outpost/node/broker_driver.h). Links lose, duplicate and reorder messages; partitions, process
// crashes, power losses at any write and time come from one std::mt19937_64. After every step
// the simulator checks the invariants of docs/simulator.md and on failure reports
// "reproduce with seed=N step=K". Test-only code; single-threaded.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "outpost/node/ledger.h"
#include "outpost/storage/mem_vfs.h"
#include "outpost/sync/broker.h"
#include "outpost/sync/env.h"
#include "outpost/sync/replica.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/session.h"

namespace outpost::sim {

using sync::Bytes;
using sync::MemberId;
using sync::NodeId;

// A negative control: a fault the checker must report (docs/simulator.md, "The tests").
enum class Control {
  kNone,
  kSpendWithoutRights,    // a store's key signs a spend beyond its rights into its log
  kSignTwoOpsWithOneSeq,  // a store's key signs a second op for a held seq, given to HQ
  kSyncsDoNotPersist,     // every store's disk acknowledges syncs it does not keep
};

// What the simulator may do, with relative weights, and the faults of its links.
struct SimOptions {
  std::uint64_t seed = 1;
  std::size_t stores = 3;
  std::size_t steps = 300;
  std::size_t final_steps_max = 20'000;  // bound of the final (heal and converge) phase
  unsigned w_pos = 25;
  unsigned w_deliver = 50;
  unsigned w_pump = 3;
  unsigned w_connect = 20;
  unsigned w_cut = 1;
  unsigned w_isolate = 1;
  unsigned w_heal = 3;
  unsigned w_crash = 1;
  unsigned w_power = 2;
  unsigned w_restart = 4;
  unsigned w_tick = 3;
  unsigned w_rebalance = 3;
  // Per-mille chance that a delivery instead loses, duplicates or reorders a message.
  unsigned loss_pm = 10;
  unsigned dup_pm = 10;
  unsigned reorder_pm = 10;
  // The link driver's deadlines (the daemon's handshake deadline and idle timeout): a link whose
  // HELLO or whose ACK for an in-flight batch has not arrived within this long is closed.
  std::uint64_t deadline_ms = 15'000;
  // How often every node's log is verified afresh (Ledger::verify_log), besides the end.
  std::size_t full_check_every_steps = 500;
  // Which pairs of nodes can ever link (a store that only reaches a neighbour). Empty: all.
  std::function<bool(std::size_t, std::size_t)> can_link;
  Control control = Control::kNone;
  std::size_t control_at_step = 100;  // the first step the control may act
  bool trace = false;                 // print every action to stderr
  std::string replay_hint = "outpost_integration_tests --gtest_filter='Sim.RandomSeeds*'";

  // The options CTest and the soak use for `seed`: the seed also varies the chain size and the
  // link fault rates, so that a run of seeds covers clean, lossy and very lossy links.
  static SimOptions for_seed(std::uint64_t seed, std::size_t steps);
};

struct SimStats {
  std::uint64_t steps = 0, acked_ops = 0, enrolls = 0, earns = 0, topups = 0, spends = 0;
  std::uint64_t redeems = 0, refusals = 0, moves = 0, rebalances = 0, grants = 0;
  std::uint64_t broker_requests = 0, broker_granted = 0, retried_debits = 0;
  std::uint64_t deliveries = 0, losses = 0, duplicates = 0, reorders = 0;
  std::uint64_t connects = 0, closes = 0, closes_by_session = 0, deadline_closes = 0;
  std::uint64_t partitions = 0, crashes = 0, power_losses = 0, write_crashes = 0, restarts = 0;
  std::uint64_t ops_received_new = 0, full_checks = 0, final_steps = 0;
  void add(const SimStats& o);
  std::string summary() const;
};

// Which check failed. The numbers are those of docs/simulator.md.
enum class Invariant {
  kNone = 0,
  kNoOverspend = 1,     // (1) in the union of every log, no value or rights below zero
  kNoAckedOpLost = 2,   // (2) failure rule 4: no node loses an op it acknowledged
  kAppliedOnce = 3,     // (3) a node's state is the replay of its log, each op once
  kNoEquivocation = 4,  // (4) no two ops of one (origin, seq) anywhere
  kQuiescence = 5,      // (5) the final phase settles within its bound
  kConvergence = 6,     // (6) after settling, every node holds the same ops and state
  kNodeFailed = 7,      // (7) a node does not reopen, or its database fails outside a fault
};

struct SimResult {
  bool ok = true;
  Invariant invariant = Invariant::kNone;
  std::uint64_t seed = 0;
  std::size_t step = 0;
  std::string failure;  // "reproduce with seed=N step=K: ..." plus the last actions
  SimStats stats;
  std::uint64_t digest = 0;     // hash of every action and op: equal for equal seeds
  std::uint64_t far_acked = 0;  // ops the last store acknowledged (all of them reached HQ)
};

// A node's clock: the simulation's, read with the node's fixed skew.
class SkewedEnv final : public sync::Env {
 public:
  SkewedEnv(sync::Env& base, std::int64_t skew_ms) : base_(base), skew_ms_(skew_ms) {}
  std::uint64_t now_ms() override {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(base_.now_ms()) + skew_ms_);
  }
  std::uint64_t steady_ms() override { return base_.steady_ms(); }
  std::uint64_t random_u64() override { return base_.random_u64(); }

 private:
  sync::Env& base_;
  std::int64_t skew_ms_;
};

// A debit the rights broker is gathering rights for (the API's retry, docs/api.md).
struct WaitingDebit {
  bool points = false;  // redeem (points) or spend (wallet)
  MemberId member{};
  std::uint64_t amount = 0;
  std::string request_id;
};

// One simulated node. The Ledger and the broker are its process: both go in a crash or a power
// loss, and the Ledger reopens on what the node's VFS kept.
struct ChainNode {
  std::string name;
  std::string dir;  // the data dir on disk: its key files (the database lives in `vfs`)
  bool is_hq = false;
  NodeId id{};
  std::unique_ptr<SkewedEnv> env;
  std::unique_ptr<storage::MemVfs> vfs;
  std::unique_ptr<node::Ledger> ledger;  // null while down
  std::unique_ptr<sync::RightsBroker> broker;
  std::map<std::uint64_t, WaitingDebit> waiting;  // by broker ticket
  bool isolated = false;
  MemberId rebalance_cursor{};
  // Failure rule 4: its own acknowledged ops (seq -> hash) and every op it held (committed) at
  // the end of the last step it was up.
  std::map<std::uint64_t, sync::Hash32> own_acked;
  sync::VersionVector durable_floor;
  sync::Replica shadow;  // the replay of its log, op by op as they appear (invariant 3)
};

// A link: a pair of real SyncSessions over the daemon's adapter, and two message queues.
struct ChainLink {
  std::size_t node[2] = {0, 0};
  std::uint64_t id = 0;  // the link's id in both nodes' brokers
  std::unique_ptr<sync::SyncStore> store[2];
  std::unique_ptr<sync::SyncSession> session[2];
  std::deque<Bytes> inbox[2];  // inbox[s]: messages in flight towards side s
  std::uint64_t opened_ms = 0;
  std::optional<std::uint64_t> waiting_since_ms[2];  // side has batches in flight since
  bool broker_up[2] = {false, false};
  bool dead = false;
};

class SeededSodiumRandom;  // sim_chain.cc

class Simulator {
 public:
  // Makes the chain's data dirs under `root` (on disk, for the keys) and moves each database
  // into its node's MemVfs. `root` must exist and be empty.
  Simulator(SimOptions options, const std::filesystem::path& root);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Runs the chaos phase then the final phase, checking invariants after every step. Stops at
  // the first failure.
  SimResult run();
  ChainNode& node(std::size_t i) { return nodes_[i]; }
  std::size_t node_count() const { return nodes_.size(); }

 private:
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  void note(const std::string& action);
  void mix(std::uint64_t v);
  bool fail(Invariant which, const std::string& what);
  std::uint64_t now() { return env_.steady_ms(); }

  // Setup and node lifecycle (sim_chain.cc).
  void make_chain(const std::filesystem::path& root);
  bool open_node(std::size_t i);
  bool alive(std::size_t i) const;
  void take_down(std::size_t i, const std::string& why);
  void reap_dead_nodes();
  void crash(std::size_t i);
  void power_loss(std::size_t i);
  void restart_one();

  // POS traffic, the broker and the rebalancer (sim_pos.cc).
  void pos_request(std::size_t i);
  void enroll(std::size_t i);
  void debit(std::size_t i, const WaitingDebit& d, bool may_ask);
  bool acknowledge(std::size_t i, const Result<node::Outcome>& r, const char* what);
  void ask_rights(std::size_t i, const WaitingDebit& d);
  void run_broker(std::size_t i, const sync::BrokerOutput& out);
  void on_rights_done(std::size_t i, const sync::RightsDone& d);
  void advance_brokers();
  void rebalance(std::size_t i);
  void run_control();
  bool inject(std::size_t at, const sync::SignedOp& op);

  // The network (sim_net.cc).
  void step_chaos();
  void deliver(bool faults);
  void deliver_to(ChainLink& link, int side, const Bytes& bytes);
  void handle_output(ChainLink& link, int side, sync::SessionOutput out);
  void pump_node(std::size_t i);
  bool pump_all();
  bool can_connect(std::size_t a, std::size_t b) const;
  ChainLink* find_link(std::size_t a, std::size_t b);
  void connect(std::size_t a, std::size_t b);
  void close_link(ChainLink& link, const std::string& reason);
  void close_links_of(std::size_t i, const std::string& reason);
  void partition();
  void heal();
  void check_deadlines();
  void collect_dead_links();

  // Invariants and the final phase (sim_check.cc).
  bool check_step();
  bool scan_node(std::size_t i, std::set<MemberId>& touched);
  bool check_durable(std::size_t i, const sync::VersionVector& vv);
  bool check_full();
  bool final_phase();
  bool idle() const;
  bool all_hold_everything();
  bool check_convergence();

  SimOptions o_;
  std::unique_ptr<SeededSodiumRandom> random_;  // first: the keys and request ids follow the seed
  std::mt19937_64 rng_;
  sync::ManualEnv env_;
  std::size_t step_ = 0;
  std::vector<ChainNode> nodes_;
  // HQ's roster after enrolling every store: the certificates the links authenticate (a store
  // enrolled early learns the later ones by sync, as in the field).
  std::shared_ptr<const sync::Roster> roster_;
  std::vector<std::unique_ptr<ChainLink>> links_;
  std::set<std::pair<std::size_t, std::size_t>> cut_;  // partitioned pairs
  std::vector<MemberId> members_;                      // enrolled and acknowledged somewhere
  std::uint64_t next_link_id_ = 1;
  bool control_done_ = false;
  // The truth: every op any node held, per origin in seq order, and their replay.
  std::map<NodeId, std::vector<sync::Hash32>> global_ops_;
  sync::Replica global_;
  std::deque<std::string> recent_;  // the last actions, printed with a failure
  SimResult result_;
};

}  // namespace outpost::sim
