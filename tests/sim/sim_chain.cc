// The simulator's chain and its nodes' lives (sim.h, docs/simulator.md): the data dirs enrolled
// with the CLI's own functions, each database moved into its node's MemVfs, and the faults that
// end a node's process (a crash, a power loss at a write) and start it again.
#include <sodium.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "outpost/crypto/crypto.h"
#include "outpost/node/identity.h"
#include "outpost/node/log.h"
#include "sim.h"

namespace outpost::sim {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kStartMs = 1'790'000'000'000;  // 2026-09-21

std::vector<std::uint8_t> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

// libsodium's random source, while the simulator lives, is a stream from the seed, so that the
// node ids and keys Ledger::init and hq_init make, and the request ids of the broker's grants and
// the rebalancer's moves (which the ops carry), follow the seed: one seed, one run, across
// processes. The previous source comes back after.
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

SimOptions SimOptions::for_seed(std::uint64_t seed, std::size_t steps) {
  SimOptions o;
  o.seed = seed;
  o.steps = steps;
  o.stores = 3 + seed % 3;
  const unsigned faults[] = {0, 10, 25, 50};
  o.loss_pm = o.dup_pm = o.reorder_pm = faults[(seed / 3) % 4];
  return o;
}

Simulator::Simulator(SimOptions options, const fs::path& root)
    : o_(std::move(options)),
      random_(std::make_unique<SeededSodiumRandom>(o_.seed)),
      rng_(o_.seed),
      env_(kStartMs, o_.seed) {
  result_.seed = o_.seed;
  result_.digest = 0xcbf29ce484222325ULL;
  node::set_log_env(env_);  // log lines carry simulated time
  make_chain(root);
}

Simulator::~Simulator() {
  links_.clear();
  for (auto& n : nodes_) n.ledger.reset();  // every connection closes before its VFS goes
  static sync::SystemEnv system_env;
  node::set_log_env(system_env);  // env_ goes with the simulator
}

// The chain is enrolled on disk with the CLI's functions, then each database moves into its
// node's VFS; the key files stay on disk (read only).
void Simulator::make_chain(const fs::path& root) {
  auto add = [this](const std::string& name, const fs::path& dir, bool is_hq) {
    ChainNode n;
    n.name = name;
    n.dir = dir.string();
    n.is_hq = is_hq;
    const auto skew_ms = static_cast<std::int64_t>(below(4001)) - 2000;
    n.env = std::make_unique<SkewedEnv>(env_, skew_ms);
    nodes_.push_back(std::move(n));
  };
  const fs::path hq_dir = root / "hq";
  auto hq = node::hq_init(hq_dir.string(), "hq", node::kHqValidDaysDefault, env_);
  if (!hq.is_ok()) return (void)fail(Invariant::kNodeFailed, "hq_init: " + hq.status().to_string());
  add("hq", hq_dir, true);
  for (std::size_t i = 1; i <= o_.stores; ++i) {
    const std::string name = "store" + std::to_string(i);
    const fs::path dir = root / name;
    Status st = node::Ledger::init(dir.string(), node::InitOptions{name, "store"});
    auto req = st.is_ok() ? node::make_enroll_request(dir.string()) : Result<node::Json>(st);
    auto file = req.is_ok()
                    ? node::hq_enroll(hq_dir.string(), name, sync::NodeRole::kStore, *req, 30, env_)
                    : Result<node::Json>(req.status());
    if (file.is_ok()) st = node::install_enrollment(dir.string(), *file).status();
    if (!file.is_ok() || !st.is_ok()) {
      return (void)fail(
          Invariant::kNodeFailed,
          "enrolling " + name + ": " + (file.is_ok() ? st : file.status()).to_string());
    }
    add(name, dir, false);
  }
  static int vfs_serial = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    ChainNode& n = nodes_[i];
    auto vfs = storage::MemVfs::create("outpost-sim-" + std::to_string(++vfs_serial));
    if (!vfs.is_ok()) return (void)fail(Invariant::kNodeFailed, vfs.status().to_string());
    n.vfs = std::move(vfs).value();
    const fs::path db = fs::path(n.dir) / node::kDbFile;
    for (const char* suffix : {"", "-wal"}) {
      const fs::path f = db.string() + suffix;
      if (fs::exists(f)) n.vfs->put_file(f.string(), read_file(f));
    }
    if (o_.control == Control::kSyncsDoNotPersist && !n.is_hq) n.vfs->set_syncs_persist(false);
    if (!open_node(i)) return;
    n.id = n.ledger->node_id();
  }
  roster_ = nodes_[0].ledger->roster();
  if (!roster_) fail(Invariant::kNodeFailed, "HQ holds no roster");
}

bool Simulator::open_node(std::size_t i) {
  ChainNode& n = nodes_[i];
  n.vfs->power_on();
  auto l = node::Ledger::open(n.dir, *n.env, storage::StoreOptions{n.vfs->name()});
  if (!l.is_ok()) {
    return fail(Invariant::kNodeFailed, n.name + " does not open: " + l.status().to_string());
  }
  n.ledger = std::move(l).value();
  sync::BrokerPolicy policy;
  policy.relay = n.is_hq;  // as the daemon sets it (peers_links.cc)
  n.broker = std::make_unique<sync::RightsBroker>(policy);
  return true;
}

bool Simulator::alive(std::size_t i) const {
  const ChainNode& n = nodes_[i];
  return n.ledger != nullptr && n.vfs->powered();
}

// The node's process ends: its links drop (their messages with them), its broker and the debits
// waiting on it go, and its Ledger is destroyed.
void Simulator::take_down(std::size_t i, const std::string& why) {
  ChainNode& n = nodes_[i];
  if (!n.ledger) return;
  note(why + " " + n.name);
  n.waiting.clear();
  n.broker.reset();
  n.ledger.reset();  // first: a dead process does nothing when its links go
  close_links_of(i, why);
}

// A node whose power went during its last action (crash_at_write) is down now.
void Simulator::reap_dead_nodes() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].ledger && !nodes_[i].vfs->powered()) {
      ++result_.stats.write_crashes;
      ++result_.stats.power_losses;
      take_down(i, "power lost at a write of");
    }
  }
}

void Simulator::crash(std::size_t i) {
  if (!alive(i)) return;
  ++result_.stats.crashes;
  take_down(i, "crash");
}

// Cuts the power now, or arms it at one of the node's next writes, whatever makes it.
void Simulator::power_loss(std::size_t i) {
  if (!alive(i)) return;
  if (below(2) == 0) {
    const std::uint64_t k = 1 + below(12);
    nodes_[i].vfs->crash_at_write(k);
    note("power to go at write " + std::to_string(k) + " of " + nodes_[i].name);
    return;
  }
  ++result_.stats.power_losses;
  nodes_[i].vfs->power_loss();
  take_down(i, "power loss");
}

void Simulator::restart_one() {
  std::vector<std::size_t> down;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].ledger) down.push_back(i);
  }
  if (down.empty()) return;
  const std::size_t i = down[below(down.size())];
  ++result_.stats.restarts;
  note("restart " + nodes_[i].name);
  open_node(i);
}

void Simulator::mix(std::uint64_t v) {  // FNV-1a, byte by byte
  for (int b = 0; b < 8; ++b) {
    result_.digest = (result_.digest ^ ((v >> (8 * b)) & 0xff)) * 0x100000001b3ULL;
  }
}

void Simulator::note(const std::string& action) {
  for (char c : action) {
    result_.digest = (result_.digest ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ULL;
  }
  mix(step_);
  std::string line =
      "step " + std::to_string(step_) + " t=" + std::to_string(env_.steady_ms()) + ": " + action;
  if (o_.trace) std::cerr << line << "\n";
  recent_.push_back(std::move(line));
  if (recent_.size() > 40) recent_.pop_front();
}

bool Simulator::fail(Invariant which, const std::string& what) {
  if (!result_.ok) return false;
  result_.ok = false;
  result_.invariant = which;
  result_.step = step_;
  std::ostringstream s;
  s << "reproduce with seed=" << o_.seed << " step=" << step_ << ": invariant ("
    << static_cast<int>(which) << ") " << what << "\n  replay: OUTPOST_SIM_SEED=" << o_.seed
    << " OUTPOST_SIM_STEPS=" << o_.steps << " " << o_.replay_hint
    << " (OUTPOST_SIM_TRACE=1 prints every action)\n  last actions:\n";
  for (const auto& line : recent_) s << "    " << line << "\n";
  result_.failure = s.str();
  return false;
}

void SimStats::add(const SimStats& o) {
  steps += o.steps, acked_ops += o.acked_ops, enrolls += o.enrolls, earns += o.earns;
  topups += o.topups, spends += o.spends, redeems += o.redeems, refusals += o.refusals;
  moves += o.moves, rebalances += o.rebalances, grants += o.grants;
  broker_requests += o.broker_requests, broker_granted += o.broker_granted;
  retried_debits += o.retried_debits, deliveries += o.deliveries, losses += o.losses;
  duplicates += o.duplicates, reorders += o.reorders, connects += o.connects;
  closes += o.closes, closes_by_session += o.closes_by_session;
  deadline_closes += o.deadline_closes, partitions += o.partitions, crashes += o.crashes;
  power_losses += o.power_losses, write_crashes += o.write_crashes, restarts += o.restarts;
  ops_received_new += o.ops_received_new, full_checks += o.full_checks;
  final_steps += o.final_steps;
}

std::string SimStats::summary() const {
  std::ostringstream s;
  s << "steps=" << steps << " acked_ops=" << acked_ops << " (enroll=" << enrolls
    << " earn=" << earns << " topup=" << topups << " spend=" << spends << " redeem=" << redeems
    << " move=" << moves << " rebalancer=" << rebalances << " grant=" << grants
    << ") refusals=" << refusals << " broker_requests=" << broker_requests
    << " broker_granted=" << broker_granted << " retried_debits=" << retried_debits
    << " deliveries=" << deliveries << " lost=" << losses << " duplicated=" << duplicates
    << " reordered=" << reorders << " connects=" << connects << " closes=" << closes
    << " (by_session=" << closes_by_session << " deadline=" << deadline_closes
    << ") partitions=" << partitions << " crashes=" << crashes << " power_losses=" << power_losses
    << " (at_write=" << write_crashes << ") restarts=" << restarts
    << " ops_received_new=" << ops_received_new << " full_checks=" << full_checks
    << " final_steps=" << final_steps;
  return s.str();
}

}  // namespace outpost::sim
