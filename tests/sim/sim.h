// Deterministic simulator of an Outpost chain (docs/simulator.md), in the style of TigerBeetle's
// VOPR and FoundationDB's simulation: HQ and N stores run in ONE thread from one seed. Each node
// is an in-memory sync::SyncStore (signed per-origin logs + a sync::Replica) driven by the real
// sync::SyncSession over in-memory links that lose, duplicate and reorder messages; partitions,
// crashes and a simulated clock come from the same std::mt19937_64. After every step the
// simulator checks the escrow and durability invariants, and on failure reports
// "reproduce with seed=N step=K". Test-only code; single-threaded; not used by node/.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/crdt.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/op.h"
#include "outpost/sync/rebalance.h"
#include "outpost/sync/protocol.h"
#include "outpost/sync/replica.h"
#include "outpost/sync/session.h"

namespace outpost::sim {

using sync::Account;
using sync::Bytes;
using sync::Hash32;
using sync::MemberId;
using sync::NodeId;
using sync::Op;
using sync::OpKind;
using sync::SignedOp;
using sync::VersionVector;

inline constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// Ed25519 verification is a pure function of (key, bytes, signature). Every simulated node
// verifies every op it receives, but the simulator computes each distinct answer once, keyed by
// the op hash recomputed from the bytes and signature (a tampered op has another hash), so that
// many seeds run in seconds. Behaviour is identical to verifying every time.
class VerifyCache {
 public:
  // Returns OK iff `op.hash` is SHA-256(bytes || sig) and the signature verifies under `key`.
  Status verify(const SignedOp& op, const crypto::PublicKey& key) {
    Hash32 h = sync::op_hash(op.signed_bytes, op.sig);
    if (h != op.hash) {
      return Status::corruption("hash mismatch on op " +
                                sync::op_ref_string(op.op.origin, op.op.seq));
    }
    auto [it, fresh] = cache_.try_emplace(std::make_pair(h, key), false);
    if (fresh) it->second = sync::verify_op(op, key).is_ok();
    if (!it->second) {
      return Status::corruption("bad signature on op " +
                                sync::op_ref_string(op.op.origin, op.op.seq));
    }
    return Status::ok();
  }

 private:
  std::map<std::pair<Hash32, crypto::PublicKey>, bool> cache_;
};

// The static roster every node holds: node ids, their public keys and printable names.
struct Roster {
  std::vector<NodeId> ids;
  std::vector<std::string> names;
  std::map<NodeId, crypto::PublicKey> keys;
  std::map<NodeId, std::size_t> index;
  std::string name(const NodeId& id) const {
    auto it = index.find(id);
    return it == index.end() ? sync::id_hex(id) : names[it->second];
  }
};

// The global ledger of acknowledged ops: every op a node created and answered "done" for, per
// origin in seq order, with its replay (a Replica fed exactly these ops). Invariant (1) is
// checked against this replay; invariants (2) and the final checks compare logs against it.
class AckLedger {
 public:
  // Records one acknowledged op. Invariant: seq is the next of its origin.
  void record(const SignedOp& op) {
    auto& log = ops_[op.op.origin];
    OUTPOST_CHECK(op.op.seq == log.size() + 1);
    log.push_back(op);
    auto applied = replay_.apply(op.op);
    OUTPOST_CHECK(applied.is_ok() && *applied == sync::ApplyResult::kApplied);
    touched_.insert(op.op.member);
    ++count_;
  }
  const std::map<NodeId, std::vector<SignedOp>>& ops() const { return ops_; }
  const std::vector<SignedOp>& ops_of(const NodeId& origin) const {
    static const std::vector<SignedOp> kEmpty;
    auto it = ops_.find(origin);
    return it == ops_.end() ? kEmpty : it->second;
  }
  const sync::Replica& replay() const { return replay_; }
  // Replays every acknowledged op into a fresh Replica (checks the incremental replay).
  sync::Replica fresh_replay() const {
    sync::Replica r;
    for (const auto& [origin, log] : ops_) {
      for (const auto& op : log) OUTPOST_CHECK(r.apply(op.op).is_ok());
    }
    return r;
  }
  // Returns and forgets the members whose state changed since the last call.
  std::set<MemberId> take_touched() { return std::exchange(touched_, {}); }
  std::size_t count() const { return count_; }

 private:
  std::map<NodeId, std::vector<SignedOp>> ops_;
  sync::Replica replay_;
  std::set<MemberId> touched_;
  std::size_t count_ = 0;
};

// One simulated node: durable per-origin logs (every op survives a crash in this model), the
// Replica they produce, an HLC, and the escrow rule for local debits and moves.
class SimNode final : public sync::SyncStore {
 public:
  SimNode(std::size_t index, NodeId id, crypto::SigningKey key, const Roster& roster,
          AckLedger& ledger, VerifyCache& cache, const std::uint64_t& sim_now_ms,
          std::int64_t skew_ms)
      : index_(index),
        id_(id),
        key_(std::move(key)),
        roster_(roster),
        ledger_(ledger),
        cache_(cache),
        sim_now_ms_(sim_now_ms),
        skew_ms_(skew_ms) {}

  // --- SyncStore ---
  NodeId self() const override { return id_; }
  Result<VersionVector> version_vector() override {
    VersionVector vv;
    for (const auto& [origin, log] : logs_) {
      if (!log.empty()) vv[origin] = log.size();
    }
    return vv;
  }
  Result<std::vector<SignedOp>> ops_from(const NodeId& origin, std::uint64_t from_seq,
                                         std::size_t max_ops) override {
    return ops_for_peer(kNone, origin, from_seq, max_ops);
  }
  // All-or-nothing: every op is checked against the logs plus the ops staged before it in this
  // batch (known origin, valid signature, seq = held + 1, prev = hash of the held op), then
  // applied to copies of the touched members, and committed only if all of it applies; any bad
  // op refuses the whole batch with kCorruption naming it. A held op is a duplicate. An op
  // signed by its origin that conflicts with a held one (same seq, other hash; or seq = held + 1
  // on top of another op) is equivocation: kept as evidence (even if the batch is then
  // refused), reported, never applied, and that origin's later ops in the batch are skipped.
  Result<sync::IngestReport> ingest(const std::vector<SignedOp>& ops) override;
  Result<std::uint64_t> grant_rights(const NodeId& to, const MemberId& member, Account account,
                                     std::uint64_t amount) override {
    std::int64_t here = rights_here(member, account);
    std::uint64_t give =
        std::min<std::uint64_t>(amount, here > 0 ? static_cast<std::uint64_t>(here) : 0);
    if (give == 0 || to == id_) return std::uint64_t{0};
    issue(move_op(member, account, give, to));
    return give;
  }

  // Returns up to `max_ops` ops of `origin` from `from_seq`, as served to peer `peer`. Honest
  // nodes serve everyone alike; an equivocating node serves odd-numbered peers its forked chain.
  Result<std::vector<SignedOp>> ops_for_peer(std::size_t peer, const NodeId& origin,
                                             std::uint64_t from_seq, std::size_t max_ops) {
    std::vector<SignedOp> out;
    auto it = logs_.find(origin);
    if (it == logs_.end() || from_seq == 0) return out;
    const bool forked = fork_at_ != 0 && origin == id_ && peer != kNone && peer % 2 == 1;
    for (std::uint64_t s = from_seq; s <= it->second.size() && out.size() < max_ops; ++s) {
      out.push_back(forked && s >= fork_at_ ? forked_op(s) : it->second[s - 1]);
    }
    return out;
  }

  // Creates, signs, stores and applies a local op, and acknowledges it (records it in the global
  // ledger). Fills origin, seq, prev and the HLC.
  const SignedOp& issue(Op op) {
    auto& log = logs_[id_];
    op.origin = id_;
    op.seq = log.size() + 1;
    op.prev = log.empty() ? Hash32{} : log.back().hash;
    op.hlc = hlc_.now(wall_ms());
    SignedOp signed_op = sync::sign_op(op, key_);
    auto applied = replica_.apply(signed_op.op);
    // Invariant: a node's own next op always applies (it is the next seq of its own origin).
    OUTPOST_CHECK(applied.is_ok() && *applied == sync::ApplyResult::kApplied);
    ++applied_[id_];
    changed_ = true;
    note_member(signed_op.op);
    log.push_back(std::move(signed_op));
    ledger_.record(log.back());
    return log.back();
  }

  Op move_op(const MemberId& member, Account account, std::uint64_t amount,
             const NodeId& to) const {
    Op op;
    op.kind = OpKind::kMove;
    op.member = member;
    op.account = account;
    op.amount = amount;
    op.target = to;
    return op;
  }

  // Rights of `member`'s `account` held at this node, in this node's view.
  std::int64_t rights_here(const MemberId& member, Account account) const {
    const sync::MemberState* m = replica_.member(member);
    if (m == nullptr) return 0;
    return (account == Account::kPoints ? m->points : m->wallet).rights(id_);
  }

  // Byzantine negative control: from the seq of `honest` on, keeps a second chain of validly
  // signed ops (the first with another amount, the rest re-chained onto it) for odd-numbered
  // peers, while even-numbered peers get the acknowledged chain.
  void equivocate(const SignedOp& honest) { fork_at_ = honest.op.seq; }

  // Models a crash and restart: in-memory state other than the durable logs is rebuilt (the HLC
  // resumes from the highest timestamp in the logs, as the daemon does from its database).
  void restart() {
    sync::Hlc last{};
    for (const auto& [origin, log] : logs_) {
      for (const auto& op : log) last = std::max(last, op.op.hlc);
    }
    hlc_ = sync::HlcClock(last);
  }

  std::uint64_t wall_ms() const {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(sim_now_ms_) + skew_ms_);
  }
  std::size_t index() const { return index_; }
  const sync::Replica& replica() const { return replica_; }
  const std::map<NodeId, std::vector<SignedOp>>& logs() const { return logs_; }
  const std::vector<SignedOp>& log_of(const NodeId& origin) const {
    static const std::vector<SignedOp> kEmpty;
    auto it = logs_.find(origin);
    return it == logs_.end() ? kEmpty : it->second;
  }
  std::size_t total_ops() const {
    std::size_t n = 0;
    for (const auto& [origin, log] : logs_) n += log.size();
    return n;
  }
  // How many times the replica reported kApplied per origin: more than the log size would mean
  // an op was applied twice.
  const std::map<NodeId, std::uint64_t>& applied_counts() const { return applied_; }
  const std::vector<MemberId>& members() const { return members_; }
  const std::vector<std::string>& evidence() const { return evidence_; }
  // Whether logs, replica or evidence changed since the last call: the per-node invariants can
  // only change when this is true.
  bool take_changed() { return std::exchange(changed_, false); }
  bool up = true;
  bool isolated = false;
  bool overspends = false;     // negative control: ignores the escrow check on debits
  bool relays_rights = false;  // defers RIGHTS_REQUESTs to gather rights from others (HQ)
  bool defer_rights_requests() const override { return relays_rights; }

 private:
  const SignedOp* held(const NodeId& origin, std::uint64_t seq,
                       const std::map<NodeId, std::vector<const SignedOp*>>& staged) const {
    const auto& log = log_of(origin);
    if (seq >= 1 && seq <= log.size()) return &log[seq - 1];
    auto it = staged.find(origin);
    std::uint64_t k = seq - log.size() - 1;
    return it != staged.end() && k < it->second.size() ? it->second[k] : nullptr;
  }
  std::uint64_t held_count(const NodeId& origin,
                           const std::map<NodeId, std::vector<const SignedOp*>>& staged) const {
    auto it = staged.find(origin);
    return log_of(origin).size() + (it == staged.end() ? 0 : it->second.size());
  }
  const SignedOp& forked_op(std::uint64_t seq) {
    while (fork_.size() <= seq - fork_at_) {
      Op op = log_of(id_)[fork_at_ + fork_.size() - 1].op;
      if (fork_.empty()) {
        op.amount += 1;
      } else {
        op.prev = fork_.back().hash;
      }
      fork_.push_back(sync::sign_op(op, key_));
    }
    return fork_[seq - fork_at_];
  }
  void note_member(const Op& op) {
    if (op.kind == OpKind::kEnroll && known_.insert(op.member).second)
      members_.push_back(op.member);
  }
  void keep_evidence(const SignedOp& mine, const SignedOp& theirs,
                     std::vector<std::string>& report);

  std::size_t index_;
  NodeId id_;
  crypto::SigningKey key_;
  const Roster& roster_;
  AckLedger& ledger_;
  VerifyCache& cache_;
  const std::uint64_t& sim_now_ms_;
  std::int64_t skew_ms_;
  sync::HlcClock hlc_;
  std::map<NodeId, std::vector<SignedOp>> logs_;
  sync::Replica replica_;
  std::map<NodeId, std::uint64_t> applied_;
  std::vector<MemberId> members_;  // enrolled members this node knows, in the order it learnt them
  std::set<MemberId> known_;
  std::vector<std::string> evidence_;
  std::set<std::pair<NodeId, Hash32>> evidence_seen_;
  bool changed_ = true;
  std::uint64_t fork_at_ = 0;   // first forked seq; 0 = honest
  std::vector<SignedOp> fork_;  // the second chain, from fork_at_ on
};

inline void SimNode::keep_evidence(const SignedOp& mine, const SignedOp& theirs,
                                   std::vector<std::string>& report) {
  if (!evidence_seen_.insert({theirs.op.origin, theirs.hash}).second) return;
  const bool same_seq = mine.op.seq == theirs.op.seq;
  std::string line = roster_.names[index_] + " holds two histories signed by " +
                     roster_.name(theirs.op.origin) + ": held op " +
                     sync::op_ref_string(mine.op.origin, mine.op.seq) + " " +
                     crypto::to_hex(mine.hash).substr(0, 16) + ", received " +
                     (same_seq ? "another op with that seq " : "a successor of another op ") +
                     crypto::to_hex(theirs.hash).substr(0, 16);
  evidence_.push_back(line);
  report.push_back(line);
  changed_ = true;
}

inline Result<sync::IngestReport> SimNode::ingest(const std::vector<SignedOp>& ops) {
  sync::IngestReport report;
  std::map<NodeId, std::vector<const SignedOp*>> staged;
  std::vector<const SignedOp*> accepted;  // in batch order
  std::set<NodeId> forked;                // origins proven to equivocate in this batch
  for (const SignedOp& op : ops) {
    const NodeId& origin = op.op.origin;
    const std::string ref = sync::op_ref_string(origin, op.op.seq);
    auto key = roster_.keys.find(origin);
    if (key == roster_.keys.end())
      return Status::corruption("op " + ref + " from an unknown origin");
    if (forked.count(origin)) continue;  // the rest of a conflicting history: never applied
    const std::uint64_t have = held_count(origin, staged);
    if (op.op.seq == 0) return Status::corruption("op " + ref + " has seq 0");
    if (op.op.seq <= have) {
      const SignedOp* mine = held(origin, op.op.seq, staged);
      OUTPOST_RETURN_IF_ERROR(cache_.verify(op, key->second));
      if (mine->hash == op.hash) {
        ++report.duplicates;
      } else {
        keep_evidence(*mine, op, report.equivocations);
        forked.insert(origin);
      }
      continue;
    }
    if (op.op.seq != have + 1) {
      return Status::corruption("gap: op " + ref + " after seq " + std::to_string(have));
    }
    OUTPOST_RETURN_IF_ERROR(cache_.verify(op, key->second));
    const SignedOp* before = have == 0 ? nullptr : held(origin, have, staged);
    if (op.op.prev != (before == nullptr ? Hash32{} : before->hash)) {
      // Validly signed by the origin on top of another op than the one held at seq-1: the
      // origin signed two histories. This is equivocation (evidence), not a bad peer: skipping
      // the origin instead of refusing the batch keeps the other origins' ops flowing between
      // honest nodes that hold different forks.
      if (before == nullptr) return Status::corruption("genesis op " + ref + " has a prev");
      keep_evidence(*before, op, report.equivocations);
      forked.insert(origin);
      continue;
    }
    staged[origin].push_back(&op);
    accepted.push_back(&op);
  }
  if (accepted.empty()) return report;
  // Apply to copies of the touched members first; commit only if every op applies.
  std::map<MemberId, sync::MemberState> scratch;
  std::set<std::pair<NodeId, std::uint64_t>> reversed;
  for (const SignedOp* op : accepted) {
    const Op& o = op->op;
    if (o.kind == OpKind::kReverse && (replica_.is_reversed(o.ref_origin, o.ref_seq) ||
                                       !reversed.insert({o.ref_origin, o.ref_seq}).second)) {
      return Status::corruption("batch refused: op " +
                                sync::op_ref_string(o.ref_origin, o.ref_seq) +
                                " is reversed twice");
    }
    auto [it, fresh] = scratch.try_emplace(o.member);
    if (fresh && replica_.member(o.member) != nullptr) it->second = *replica_.member(o.member);
    OUTPOST_RETURN_IF_ERROR(sync::apply_effects(it->second, o).with_context("batch refused"));
  }
  changed_ = true;
  for (const SignedOp* op : accepted) {
    auto applied = replica_.apply(op->op);
    // Invariant: the dry run above applied exactly these effects.
    OUTPOST_CHECK(applied.is_ok() && *applied == sync::ApplyResult::kApplied);
    logs_[op->op.origin].push_back(*op);
    ++applied_[op->op.origin];
    hlc_.observe(op->op.hlc, wall_ms());
    note_member(op->op);
  }
  report.applied = accepted.size();
  return report;
}

// A session's window onto its node: what one SyncSession of `node` sees when talking to
// `peer`. Only an equivocating node serves different peers differently.
class PeerView final : public sync::SyncStore {
 public:
  PeerView(SimNode& node, std::size_t peer) : node_(node), peer_(peer) {}
  NodeId self() const override { return node_.self(); }
  Result<VersionVector> version_vector() override { return node_.version_vector(); }
  Result<std::vector<SignedOp>> ops_from(const NodeId& origin, std::uint64_t from_seq,
                                         std::size_t max_ops) override {
    return node_.ops_for_peer(peer_, origin, from_seq, max_ops);
  }
  Result<sync::IngestReport> ingest(const std::vector<SignedOp>& ops) override {
    return node_.ingest(ops);
  }
  Result<std::uint64_t> grant_rights(const NodeId& to, const MemberId& member, Account account,
                                     std::uint64_t amount) override {
    return node_.grant_rights(to, member, account, amount);
  }
  bool defer_rights_requests() const override { return node_.defer_rights_requests(); }

 private:
  SimNode& node_;
  std::size_t peer_;
};

// What the simulator may do, with relative weights, and the faults of its links.
struct SimOptions {
  std::uint64_t seed = 1;
  std::size_t stores = 6;
  std::size_t steps = 3000;
  std::size_t final_steps_max = 200'000;  // bound of the final (heal and converge) phase
  unsigned w_local_op = 30;
  unsigned w_deliver = 50;
  unsigned w_pump = 3;
  unsigned w_connect = 10;
  unsigned w_cut = 1;
  unsigned w_isolate = 1;
  unsigned w_heal = 4;
  unsigned w_crash = 1;
  unsigned w_restart = 3;
  unsigned w_tick = 2;
  // Per-mille chance that a delivery instead loses, duplicates or reorders a message.
  unsigned loss_pm = 4;
  unsigned dup_pm = 4;
  unsigned reorder_pm = 4;
  // The link driver's deadlines (as the daemon's peer manager keeps them): a link whose HELLO or
  // whose ACK for an in-flight batch has not arrived within this long is closed and redialled.
  std::uint64_t deadline_ms = 15'000;
  std::uint64_t rights_request_timeout_ms = 20'000;
  // HQ answers rights requests the way the daemon does: what it holds at once, and the rest after
  // asking the store that holds it (SyncStore::defer_rights_requests + answer_rights).
  bool hq_relays_rights = true;
  std::size_t full_check_every_steps = 1000;
  // Which pairs of nodes can ever link (a store that only reaches a neighbour). Empty: all.
  std::function<bool(std::size_t, std::size_t)> can_link;
  // Negative controls: a node that debits without rights; a node that equivocates once.
  std::optional<std::size_t> overspending_node;
  std::optional<std::size_t> equivocating_node;
  std::size_t equivocate_at_step = 300;
  bool trace = false;  // print every action to stderr
  // How to rerun this run, printed with a failure.
  std::string replay_hint = "outpost_integration_tests --gtest_filter='Sim.RandomSeeds*'";

  // The options CTest and the soak use for `seed`: the seed also varies the chain size and the
  // link fault rates, so that a run of seeds covers clean, lossy and very lossy links.
  static SimOptions for_seed(std::uint64_t seed, std::size_t steps) {
    SimOptions o;
    o.seed = seed;
    o.steps = steps;
    o.stores = 5 + seed % 4;
    const unsigned faults[] = {0, 4, 10, 25};
    o.loss_pm = o.dup_pm = o.reorder_pm = faults[(seed / 4) % 4];
    o.hq_relays_rights = (seed / 16) % 2 == 0;
    return o;
  }
};

struct SimStats {
  std::uint64_t acked_ops = 0, enrolls = 0, earns = 0, topups = 0, spends = 0, redeems = 0;
  std::uint64_t moves = 0, rebalances = 0, grants = 0, refusals = 0, broker_requests = 0, broker_completed = 0;
  std::uint64_t broker_timeouts = 0, deliveries = 0, losses = 0, duplicates = 0, reorders = 0;
  std::uint64_t connects = 0, closes = 0, closes_by_session = 0, deadline_closes = 0;
  std::uint64_t partitions = 0, crashes = 0, final_steps = 0;
  std::uint64_t ops_received = 0,
                ops_received_new = 0;  // ops in OPS messages, and how many were new
  void add(const SimStats& o) {
    acked_ops += o.acked_ops, enrolls += o.enrolls, earns += o.earns, topups += o.topups;
    spends += o.spends, redeems += o.redeems, moves += o.moves, rebalances += o.rebalances, grants += o.grants;
    refusals += o.refusals, broker_requests += o.broker_requests;
    broker_completed += o.broker_completed, broker_timeouts += o.broker_timeouts;
    deliveries += o.deliveries, losses += o.losses, duplicates += o.duplicates;
    reorders += o.reorders, connects += o.connects, closes += o.closes;
    closes_by_session += o.closes_by_session, deadline_closes += o.deadline_closes;
    partitions += o.partitions, crashes += o.crashes, final_steps += o.final_steps;
    ops_received += o.ops_received, ops_received_new += o.ops_received_new;
  }
  std::string summary() const {
    std::ostringstream s;
    s << "acked_ops=" << acked_ops << " (enroll=" << enrolls << " earn=" << earns
      << " topup=" << topups << " spend=" << spends << " redeem=" << redeems << " move=" << moves
      << " (rebalancer=" << rebalances << ")"
      << " grant=" << grants << ") refusals=" << refusals << " broker_requests=" << broker_requests
      << " broker_completed=" << broker_completed << " broker_timeouts=" << broker_timeouts
      << " deliveries=" << deliveries << " lost=" << losses << " duplicated=" << duplicates
      << " reordered=" << reorders << " connects=" << connects << " closes=" << closes
      << " (by_session=" << closes_by_session << " deadline=" << deadline_closes
      << ") partitions=" << partitions << " crashes=" << crashes << " final_steps=" << final_steps
      << " ops_received=" << ops_received << " (new=" << ops_received_new << ")";
    return s.str();
  }
};

// Which check failed. The numbers are those of docs/simulator.md.
enum class Invariant {
  kNone = 0,
  kNonNegative = 1,     // (1) global value and rights >= 0
  kNoAckedOpLost = 2,   // (2) every origin holds its acknowledged ops
  kAppliedOnce = 3,     // (3) replica = replay of own logs, each op applied once
  kNoEquivocation = 4,  // (4) no node holds two ops with one (origin, seq)
  kQuiescence = 5,      // final phase did not settle within its bound
  kConvergence = 6,     // after settling, nodes differ or HQ lacks an acknowledged op
};

struct SimResult {
  bool ok = true;
  Invariant invariant = Invariant::kNone;
  std::uint64_t seed = 0;
  std::size_t step = 0;
  std::string failure;  // "reproduce with seed=N step=K: ..." plus the last actions
  SimStats stats;
  std::uint64_t digest = 0;  // hash of every action taken: equal for equal seeds
};

class Simulator {
 public:
  explicit Simulator(SimOptions options);
  // Runs the chaos phase then the final phase, checking invariants after every step. Stops at
  // the first failure.
  SimResult run();
  SimNode& node(std::size_t i) { return *nodes_[i]; }
  std::size_t node_count() const { return nodes_.size(); }
  const AckLedger& ledger() const { return ledger_; }

 private:
  struct Link {
    std::size_t node[2];
    std::unique_ptr<PeerView> view[2];
    std::unique_ptr<sync::SyncSession> session[2];
    std::deque<Bytes> inbox[2];  // inbox[s]: messages in flight towards side s
    std::uint64_t opened_ms = 0;
    std::optional<std::uint64_t> waiting_since_ms[2];  // side has batches in flight since
    std::uint64_t id = 0;
    bool dead = false;
  };
  // A rights request HQ deferred: answered on link `link_id` once the holder HQ asked replies.
  struct Relay {
    std::uint64_t link_id = 0;
    int side = 0;
    std::uint64_t request_id = 0;
    std::size_t requester = 0;
    std::uint64_t granted = 0;  // what HQ moved at once
  };
  struct RightsRequest {
    std::size_t node = 0;
    MemberId member{};
    Account account = Account::kWallet;
    std::uint64_t amount = 0;
    OpKind retry = OpKind::kNone;  // the debit to retry when the rights arrive
    std::uint64_t retry_amount = 0;
    std::uint64_t deadline_ms = 0;
    std::optional<Relay> relay;
  };

  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  void note(const std::string& action);
  bool fail(Invariant which, const std::string& what);

  // Actions.
  void step_chaos();
  void local_op(std::size_t i);
  void enroll(std::size_t i);
  void debit(std::size_t i, OpKind kind, const MemberId& m, std::uint64_t amount, bool may_ask);
  void rebalance(std::size_t i, const MemberId& m);
  void policy_rebalance(std::size_t i, const MemberId& m);
  bool ask_rights(std::size_t i, const MemberId& m, Account account, std::uint64_t amount,
                  OpKind retry, std::uint64_t retry_amount, std::optional<Relay> relay = {});
  void on_rights_request(Link& link, int side, const sync::RightsRequestMsg& rq);
  void answer_relay(const Relay& relay, std::uint64_t granted, const std::string& reason);
  void deliver(bool faults);
  void deliver_to(Link& link, int side, Bytes bytes);
  void handle_output(Link& link, int side, sync::SessionOutput out);
  void on_rights_reply(std::size_t i, const sync::RightsReplyMsg& reply);
  void pump_node(std::size_t i);
  bool pump_all();
  bool connect(std::size_t a, std::size_t b);
  void close_link(Link& link, const std::string& reason);
  void crash(std::size_t i);
  void check_deadlines();
  bool can_connect(std::size_t a, std::size_t b) const;
  Link* find_link(std::size_t a, std::size_t b);
  void collect_dead_links();

  // Checks.
  bool check_invariants(bool full);
  bool check_non_negative(const MemberId& m, const sync::MemberState& s);
  bool check_node_logs(std::size_t i, bool full);
  bool final_phase();
  bool idle() const;
  bool converged() const;
  bool check_convergence();

  SimOptions o_;
  std::optional<std::size_t> byzantine_;  // the equivocating node of the negative control
  std::mt19937_64 rng_;
  std::uint64_t now_ms_ = 1'700'000'000'000;  // simulated wall time (2023-11-14)
  std::size_t step_ = 0;
  Roster roster_;
  AckLedger ledger_;
  VerifyCache verify_cache_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<std::unique_ptr<Link>> links_;
  std::set<std::pair<std::size_t, std::size_t>> cut_;  // partitioned pairs
  std::map<std::uint64_t, RightsRequest> requests_;
  std::uint64_t next_request_id_ = 1;
  std::uint64_t next_link_id_ = 1;
  std::deque<std::string> recent_;  // the last actions, printed with a failure
  SimResult result_;
};

// ---------------------------------------------------------------------------------------------

inline Simulator::Simulator(SimOptions options)
    : o_(std::move(options)), byzantine_(o_.equivocating_node), rng_(o_.seed) {
  OUTPOST_CHECK(crypto::init().is_ok());
  const std::size_t n = o_.stores + 1;
  for (std::size_t i = 0; i < n; ++i) {
    NodeId id{};
    for (auto& b : id) b = static_cast<std::uint8_t>(rng_());
    id[0] = static_cast<std::uint8_t>(i + 1);  // never zero, never equal
    std::array<std::uint8_t, 32> seed{};
    for (auto& b : seed) b = static_cast<std::uint8_t>(rng_());
    auto key = crypto::SigningKey::from_seed(seed);
    OUTPOST_CHECK(key.is_ok());
    roster_.ids.push_back(id);
    roster_.names.push_back(i == 0 ? "hq" : "store" + std::to_string(i));
    roster_.keys[id] = key->public_key();
    roster_.index[id] = i;
    auto skew_ms = static_cast<std::int64_t>(below(4001)) - 2000;
    nodes_.push_back(std::make_unique<SimNode>(i, id, std::move(key).value(), roster_, ledger_,
                                               verify_cache_, now_ms_, skew_ms));
  }
  if (o_.overspending_node) nodes_[*o_.overspending_node]->overspends = true;
  nodes_[0]->relays_rights = o_.hq_relays_rights;
  result_.seed = o_.seed;
}

inline void Simulator::note(const std::string& action) {
  for (char c : action)
    result_.digest = (result_.digest ^ static_cast<std::uint8_t>(c)) * 1099511628211ULL;
  result_.digest = (result_.digest ^ step_) * 1099511628211ULL;
  std::string line =
      "step " + std::to_string(step_) + " t=" + std::to_string(now_ms_) + ": " + action;
  if (o_.trace) std::cerr << line << "\n";
  recent_.push_back(std::move(line));
  if (recent_.size() > 40) recent_.pop_front();
}

inline bool Simulator::fail(Invariant which, const std::string& what) {
  if (!result_.ok) return false;
  result_.ok = false;
  result_.invariant = which;
  result_.step = step_;
  std::ostringstream s;
  s << "reproduce with seed=" << o_.seed << " step=" << step_ << ": invariant ("
    << static_cast<int>(which) << ") " << what << "\n  replay: OUTPOST_SIM_SEED=" << o_.seed
    << " OUTPOST_SIM_STEPS=" << o_.steps << " " << o_.replay_hint
    << " (OUTPOST_SIM_TRACE=1 prints every action)"
    << "\n  last actions:\n";
  for (const auto& line : recent_) s << "    " << line << "\n";
  result_.failure = s.str();
  return false;
}

inline SimResult Simulator::run() {
  for (step_ = 0; step_ < o_.steps && result_.ok; ++step_) {
    step_chaos();
    collect_dead_links();
    const bool last = step_ + 1 == o_.steps;
    check_invariants(
        last || (o_.full_check_every_steps != 0 && (step_ + 1) % o_.full_check_every_steps == 0));
  }
  if (result_.ok) final_phase();
  result_.stats.acked_ops = ledger_.count();
  return result_;
}

// --- chaos phase -------------------------------------------------------------------------------

inline void Simulator::step_chaos() {
  now_ms_ += below(5);
  if (o_.equivocating_node && step_ >= o_.equivocate_at_step) {
    // The Byzantine store forks its chain while linked to a peer that gets the fork, so that the
    // second chain really spreads.
    SimNode& byz = *nodes_[*o_.equivocating_node];
    bool odd_peer = false;
    for (const auto& l : links_) {
      for (int s = 0; s < 2; ++s) {
        odd_peer = odd_peer || (!l->dead && l->node[s] == byz.index() &&
                                l->session[s]->established() && l->node[1 - s] % 2 == 1);
      }
    }
    if (byz.up && !byz.members().empty() && odd_peer) {
      const MemberId m = byz.members()[below(byz.members().size())];
      Op op;
      op.kind = OpKind::kTopup;
      op.member = m;
      op.account = Account::kWallet;
      op.amount = between(100, 500);
      byz.equivocate(byz.issue(op));
      note(roster_.names[byz.index()] + " equivocates on its seq " +
           std::to_string(byz.log_of(byz.self()).size()));
      o_.equivocating_node.reset();
      pump_node(byz.index());
      return;
    }
  }
  const unsigned w[] = {o_.w_local_op, o_.w_deliver, o_.w_pump,  o_.w_connect, o_.w_cut,
                        o_.w_isolate,  o_.w_heal,    o_.w_crash, o_.w_restart, o_.w_tick};
  unsigned total = 0;
  for (unsigned x : w) total += x;
  std::uint64_t r = below(total);
  int action = 0;
  while (r >= w[action]) r -= w[action++];
  const std::size_t n = nodes_.size();
  switch (action) {
    case 0: {  // a POS request at a random up node
      std::size_t i = below(n);
      if (nodes_[i]->up) local_op(i);
      break;
    }
    case 1:
      deliver(true);
      break;
    case 2: {  // the peer manager's sync timer on one link
      if (links_.empty()) break;
      Link& l = *links_[below(links_.size())];
      int side = static_cast<int>(below(2));
      if (!l.dead) handle_output(l, side, l.session[side]->pump());
      break;
    }
    case 3: {
      std::size_t a = below(n), b = below(n);
      if (a != b && can_connect(a, b) && find_link(a, b) == nullptr) connect(a, b);
      break;
    }
    case 4: {  // partition one pair
      std::size_t a = below(n), b = below(n);
      if (a == b) break;
      cut_.insert({std::min(a, b), std::max(a, b)});
      ++result_.stats.partitions;
      note("partition " + roster_.names[a] + " | " + roster_.names[b]);
      if (Link* l = find_link(a, b)) close_link(*l, "partitioned");
      break;
    }
    case 5: {  // isolate one node from everyone
      std::size_t i = below(n);
      if (nodes_[i]->isolated) break;
      nodes_[i]->isolated = true;
      ++result_.stats.partitions;
      note("isolate " + roster_.names[i]);
      for (auto& l : links_) {
        if (!l->dead && (l->node[0] == i || l->node[1] == i)) close_link(*l, "isolated");
      }
      break;
    }
    case 6: {  // heal one cut pair or one isolated node
      std::vector<std::size_t> isolated;
      for (std::size_t i = 0; i < n; ++i) {
        if (nodes_[i]->isolated) isolated.push_back(i);
      }
      std::uint64_t k = below(cut_.size() + isolated.size() + 1);
      if (k < cut_.size()) {
        auto it = std::next(cut_.begin(), static_cast<std::ptrdiff_t>(k));
        note("heal " + roster_.names[it->first] + " | " + roster_.names[it->second]);
        cut_.erase(it);
      } else if (k - cut_.size() < isolated.size()) {
        std::size_t i = isolated[k - cut_.size()];
        nodes_[i]->isolated = false;
        note("heal " + roster_.names[i]);
      }
      break;
    }
    case 7: {
      std::size_t i = below(n);
      if (nodes_[i]->up) crash(i);
      break;
    }
    case 8: {
      std::size_t i = below(n);
      if (!nodes_[i]->up) {
        nodes_[i]->up = true;
        nodes_[i]->restart();
        note("restart " + roster_.names[i]);
      }
      break;
    }
    default:
      now_ms_ += between(100, 2'000);
      break;
  }
  check_deadlines();
}

inline void Simulator::local_op(std::size_t i) {
  SimNode& node = *nodes_[i];
  std::uint64_t r = below(100);
  if (node.members().empty() || r < 8) return enroll(i);
  const MemberId m = node.members()[below(node.members().size())];
  Op op;
  op.member = m;
  op.request_id = "pos-" + std::to_string(step_);
  if (r < 33) {
    op.kind = OpKind::kEarn;
    op.account = Account::kPoints;
    op.amount = between(1, 200);
    op.spend_minor = between(100, 20'000);
    node.issue(op);
    ++result_.stats.earns;
    note(roster_.names[i] + " earn " + std::to_string(op.amount));
  } else if (r < 53) {
    op.kind = OpKind::kTopup;
    op.account = Account::kWallet;
    op.amount = between(100, 5'000);
    node.issue(op);
    ++result_.stats.topups;
    note(roster_.names[i] + " topup " + std::to_string(op.amount));
  } else if (r < 70) {
    debit(i, OpKind::kSpend, m, between(50, 4'000), true);
    return;
  } else if (r < 80) {
    debit(i, OpKind::kRedeem, m, between(10, 400), true);
    return;
  } else if (r < 90) {
    Account account = below(2) == 0 ? Account::kPoints : Account::kWallet;
    ask_rights(i, m, account, between(10, 2'000), OpKind::kNone, 0);
    return;
  } else {
    rebalance(i, m);
    return;
  }
  pump_node(i);
}

inline void Simulator::enroll(std::size_t i) {
  Op op;
  op.kind = OpKind::kEnroll;
  for (auto& b : op.member) b = static_cast<std::uint8_t>(rng_());
  op.member[0] |= 1;  // never the zero id
  std::string card;
  for (int d = 0; d < 16; ++d) card.push_back(static_cast<char>('0' + below(10)));
  op.fields = {{sync::Field::kCard, card}, {sync::Field::kName, "member " + card.substr(12)}};
  op.fields.push_back({sync::Field::kHomeStore, roster_.names[i]});
  nodes_[i]->issue(op);
  ++result_.stats.enrolls;
  note(roster_.names[i] + " enroll " + card);
  pump_node(i);
}

// A spend or redeem: issued only when this node's own view shows enough rights here (the escrow
// rule); otherwise refused, and, if online, the shortfall is asked from a rights holder.
inline void Simulator::debit(std::size_t i, OpKind kind, const MemberId& m, std::uint64_t amount,
                             bool may_ask) {
  SimNode& node = *nodes_[i];
  const Account account = kind == OpKind::kSpend ? Account::kWallet : Account::kPoints;
  const std::int64_t here = node.rights_here(m, account);
  bool allowed = false;
  if (node.overspends) {
    amount = static_cast<std::uint64_t>(std::max<std::int64_t>(here, 0)) + between(1, 3'000);
    allowed = true;
  } else if (const sync::MemberState* s = node.replica().member(m)) {
    sync::EscrowCounter view = account == Account::kPoints ? s->points : s->wallet;
    allowed = view.debit(node.self(), amount).is_ok();
  }
  const std::string what = roster_.names[i] + " " + sync::kind_name(kind) + " " +
                           std::to_string(amount) + " (rights here " + std::to_string(here) + ")";
  if (!allowed) {
    ++result_.stats.refusals;
    note(what + " refused");
    if (may_ask && below(2) == 0) {
      ask_rights(i, m, account,
                 amount - static_cast<std::uint64_t>(std::max<std::int64_t>(here, 0)), kind,
                 amount);
    }
    return;
  }
  Op op;
  op.kind = kind;
  op.member = m;
  op.account = account;
  op.amount = amount;
  node.issue(op);
  ++(kind == OpKind::kSpend ? result_.stats.spends : result_.stats.redeems);
  note(what);
  pump_node(i);
}

// The rebalancer: half the time the daemon's policy (sync::plan_rebalance, with idle and recent
// windows scaled to simulated time), half the time an arbitrary move of part of the rights held
// here, so the invariants are checked against any move a holder may make, not only the policy's.
inline void Simulator::rebalance(std::size_t i, const MemberId& m) {
  if (below(2) == 0) return policy_rebalance(i, m);
  SimNode& node = *nodes_[i];
  const Account account = below(2) == 0 ? Account::kPoints : Account::kWallet;
  const std::int64_t here = node.rights_here(m, account);
  if (here <= 0) return;
  std::size_t to = below(nodes_.size() - 1);
  if (to >= i) ++to;
  const std::uint64_t amount = between(1, static_cast<std::uint64_t>(here));
  const sync::MemberState* s = node.replica().member(m);
  sync::EscrowCounter view = account == Account::kPoints ? s->points : s->wallet;
  if (!view.move(node.self(), roster_.ids[to], amount).is_ok()) return;
  node.issue(node.move_op(m, account, amount, roster_.ids[to]));
  ++result_.stats.moves;
  note(roster_.names[i] + " moves " + std::to_string(amount) + " " + sync::account_name(account) +
       " rights to " + roster_.names[to]);
  pump_node(i);
}

inline void Simulator::policy_rebalance(std::size_t i, const MemberId& m) {
  SimNode& node = *nodes_[i];
  const sync::MemberState* s = node.replica().member(m);
  if (s == nullptr) return;
  std::map<NodeId, std::uint64_t> seen;  // where the member was last seen, as the daemon reads it
  for (const auto& [origin, log] : node.logs()) {
    for (const auto& op : log) {
      if (op.op.member != m || op.op.kind == OpKind::kMove) continue;
      auto& t = seen[origin];
      t = std::max(t, op.op.hlc.wall_ms);
    }
  }
  sync::RebalancePolicy policy;
  policy.idle_ms = 5'000;       // simulated time moves ~1 s per action
  policy.recent_ms = 600'000;
  policy.keep_percent = static_cast<std::uint32_t>(below(3) * 25);
  for (Account account : {Account::kPoints, Account::kWallet}) {
    const sync::EscrowCounter& view = account == Account::kPoints ? s->points : s->wallet;
    auto plan = sync::plan_rebalance(view, node.self(), seen, node.wall_ms(), policy);
    if (!plan) continue;
    node.issue(node.move_op(m, account, plan->amount, plan->to));
    ++result_.stats.moves;
    ++result_.stats.rebalances;
    note(roster_.names[i] + " rebalances " + std::to_string(plan->amount) + " " + sync::account_name(account) +
         " rights to " + roster_.name(plan->to));
    s = node.replica().member(m);  // the move changed the view
  }
  pump_node(i);
}

// The rights broker, requester side. A store asks HQ first if HQ holds rights in its view, else
// the linked peer holding the most, else HQ, else any linked peer. HQ relaying a request asks only
// a linked holder other than the requester. Returns whether a request was sent.
inline bool Simulator::ask_rights(std::size_t i, const MemberId& m, Account account,
                                  std::uint64_t amount, OpKind retry, std::uint64_t retry_amount,
                                  std::optional<Relay> relay) {
  std::vector<std::pair<Link*, int>> peers;
  std::optional<std::pair<Link*, int>> hq, richest;
  std::int64_t most = 0, hq_holds = 0;
  const sync::MemberState* view = nodes_[i]->replica().member(m);
  for (auto& l : links_) {
    for (int s = 0; s < 2; ++s) {
      if (l->dead || l->node[s] != i || !l->session[s]->established()) continue;
      const std::size_t peer = l->node[1 - s];
      if (relay && peer == relay->requester) continue;
      peers.push_back({l.get(), s});
      const std::int64_t held = view == nullptr
                                    ? 0
                                    : (account == Account::kPoints ? view->points : view->wallet)
                                          .rights(roster_.ids[peer]);
      if (peer == 0) {
        hq = peers.back();
        hq_holds = held;
      }
      if (held > most) {
        most = held;
        richest = peers.back();
      }
    }
  }
  if (peers.empty() || amount == 0 || (relay && !richest)) return false;
  auto [link, side] = hq && hq_holds > 0 ? *hq
                      : richest          ? *richest
                      : hq               ? *hq
                                         : peers[below(peers.size())];
  const std::uint64_t id = next_request_id_++;
  // A relay must answer before the requester gives up.
  const std::uint64_t timeout_ms = o_.rights_request_timeout_ms / (relay ? 2 : 1);
  requests_[id] = {i, m, account, amount, retry, retry_amount, now_ms_ + timeout_ms, relay};
  ++result_.stats.broker_requests;
  note(roster_.names[i] + " asks " + roster_.names[link->node[1 - side]] + " for " +
       std::to_string(amount) + " " + sync::account_name(account) + " rights (request " +
       std::to_string(id) + (relay ? ", relaying" : "") + ")");
  handle_output(*link, side, link->session[side]->request_rights(id, m, account, amount));
  return true;
}

// The rights broker, holder side, for a node that defers requests (HQ): it moves what it holds
// at once and, if short, asks a holder for the rest before answering.
inline void Simulator::on_rights_request(Link& link, int side, const sync::RightsRequestMsg& rq) {
  const std::size_t h = link.node[side];
  const std::size_t requester = link.node[1 - side];
  auto granted = nodes_[h]->grant_rights(roster_.ids[requester], rq.member, rq.account, rq.amount);
  const std::uint64_t given = granted.is_ok() ? *granted : 0;
  note(roster_.names[h] + " defers request " + std::to_string(rq.request_id) + " of " +
       roster_.names[requester] + ", moving " + std::to_string(given) + " at once");
  Relay relay{link.id, side, rq.request_id, requester, given};
  if (given < rq.amount &&
      ask_rights(h, rq.member, rq.account, rq.amount - given, OpKind::kNone, 0, relay)) {
    if (given > 0) pump_node(h);
    return;
  }
  answer_relay(relay, given, given > 0 ? "" : "no rights to give here");
}

inline void Simulator::answer_relay(const Relay& relay, std::uint64_t granted,
                                    const std::string& reason) {
  for (auto& l : links_) {
    if (l->id == relay.link_id && !l->dead) {
      note(roster_.names[l->node[relay.side]] + " answers request " +
           std::to_string(relay.request_id) + ": granted " + std::to_string(granted));
      handle_output(*l, relay.side,
                    l->session[relay.side]->answer_rights(relay.request_id, granted, reason));
      pump_node(l->node[relay.side]);
      return;
    }
  }
}

inline void Simulator::on_rights_reply(std::size_t i, const sync::RightsReplyMsg& reply) {
  auto it = requests_.find(reply.request_id);
  if (it == requests_.end() || it->second.node != i) return;  // duplicate or expired
  RightsRequest rq = it->second;
  requests_.erase(it);
  note(roster_.names[i] + " reply to request " + std::to_string(reply.request_id) + ": granted " +
       std::to_string(reply.granted));
  if (reply.granted > 0) ++result_.stats.grants;
  if (rq.relay) {  // HQ passes on what the holder moved to it
    std::uint64_t more = 0;
    if (reply.granted > 0) {
      auto g = nodes_[i]->grant_rights(roster_.ids[rq.relay->requester], rq.member, rq.account,
                                       rq.amount);
      more = g.is_ok() ? *g : 0;
    }
    answer_relay(*rq.relay, rq.relay->granted + more, "");
    return;
  }
  if (rq.retry != OpKind::kNone && reply.granted > 0) {
    const std::uint64_t before = result_.stats.refusals;
    debit(i, rq.retry, rq.member, rq.retry_amount, false);
    if (result_.stats.refusals == before) ++result_.stats.broker_completed;
  }
}

inline void Simulator::deliver(bool faults) {
  std::vector<std::pair<Link*, int>> ready;
  for (auto& l : links_) {
    for (int s = 0; s < 2; ++s) {
      if (!l->dead && !l->inbox[s].empty()) ready.push_back({l.get(), s});
    }
  }
  if (ready.empty()) return;
  auto [link, side] = ready[below(ready.size())];
  auto& inbox = link->inbox[side];
  const std::string to = roster_.names[link->node[side]];
  const std::uint64_t r = faults ? below(1000) : 1000;
  if (r < o_.loss_pm) {
    inbox.pop_front();
    ++result_.stats.losses;
    note("lose a message to " + to);
    return;
  }
  if (r < o_.loss_pm + o_.dup_pm) {
    ++result_.stats.duplicates;
    note("duplicate a message to " + to);
    deliver_to(*link, side, inbox.front());  // delivered now and again later
    return;
  }
  if (r < o_.loss_pm + o_.dup_pm + o_.reorder_pm && inbox.size() >= 2) {
    auto pos = inbox.begin() + static_cast<std::ptrdiff_t>(between(1, inbox.size() - 1));
    Bytes bytes = std::move(*pos);
    inbox.erase(pos);
    ++result_.stats.reorders;
    note("reorder a message to " + to);
    deliver_to(*link, side, std::move(bytes));
    return;
  }
  Bytes bytes = std::move(inbox.front());
  inbox.pop_front();
  deliver_to(*link, side, std::move(bytes));
}

inline void Simulator::deliver_to(Link& link, int side, Bytes bytes) {
  ++result_.stats.deliveries;
  const std::size_t i = link.node[side];
  const std::size_t before = nodes_[i]->total_ops();
  // The type byte names the message (protocol.h: type u8 first); the session decodes the rest.
  static const char* const kNames[] = {"?",    "HELLO",          "OPS",          "ACK",
                                       "BLOB", "RIGHTS_REQUEST", "RIGHTS_REPLY", "ERROR"};
  const std::size_t type = bytes.empty() || bytes[0] > 7 ? 0 : bytes[0];
  note(std::string("deliver ") + kNames[type] + " " + roster_.names[link.node[1 - side]] + " -> " +
       roster_.names[i]);
  handle_output(link, side, link.session[side]->on_message(bytes, nodes_[i]->wall_ms()));
  // The daemon pushes new ops (ingested or granted) to its other peers at once.
  if (nodes_[i]->total_ops() != before) pump_node(i);
}

inline void Simulator::handle_output(Link& link, int side, sync::SessionOutput out) {
  if (link.dead) return;
  for (auto& b : out.send) link.inbox[1 - side].push_back(std::move(b));
  for (const auto& ev : out.events) {
    if (link.dead) break;  // an earlier event closed it
    if (ev.kind == sync::SessionEvent::Kind::kRightsReply)
      on_rights_reply(link.node[side], ev.reply);
    if (ev.kind == sync::SessionEvent::Kind::kRightsRequest)
      on_rights_request(link, side, ev.request);
    if (ev.kind == sync::SessionEvent::Kind::kAcked) link.waiting_since_ms[side].reset();
    if (ev.kind == sync::SessionEvent::Kind::kIngested ||
        ev.kind == sync::SessionEvent::Kind::kEquivocation) {
      result_.stats.ops_received += ev.ingest.applied + ev.ingest.duplicates;
      result_.stats.ops_received_new += ev.ingest.applied;
    }
    if (ev.kind == sync::SessionEvent::Kind::kEquivocation) {
      for (const auto& line : ev.ingest.equivocations) note("equivocation reported: " + line);
    }
  }
  if (out.close && !link.dead) {
    ++result_.stats.closes_by_session;
    close_link(link, roster_.names[link.node[side]] + " closed: " + out.close_reason);
  }
}

inline void Simulator::pump_node(std::size_t i) {
  for (std::size_t k = 0; k < links_.size(); ++k) {
    Link& l = *links_[k];
    for (int s = 0; s < 2; ++s) {
      if (!l.dead && l.node[s] == i) handle_output(l, s, l.session[s]->pump());
    }
  }
}

// Pumps every session; returns whether any produced a message.
inline bool Simulator::pump_all() {
  bool sent = false;
  for (std::size_t k = 0; k < links_.size(); ++k) {
    Link& l = *links_[k];
    for (int s = 0; s < 2; ++s) {
      if (l.dead) continue;
      auto out = l.session[s]->pump();
      sent = sent || !out.send.empty();
      handle_output(l, s, std::move(out));
    }
  }
  return sent;
}

inline bool Simulator::can_connect(std::size_t a, std::size_t b) const {
  if (!nodes_[a]->up || !nodes_[b]->up || nodes_[a]->isolated || nodes_[b]->isolated) return false;
  if (cut_.count({std::min(a, b), std::max(a, b)})) return false;
  return !o_.can_link || o_.can_link(a, b);
}

inline Simulator::Link* Simulator::find_link(std::size_t a, std::size_t b) {
  for (auto& l : links_) {
    if (!l->dead &&
        ((l->node[0] == a && l->node[1] == b) || (l->node[0] == b && l->node[1] == a))) {
      return l.get();
    }
  }
  return nullptr;
}

inline bool Simulator::connect(std::size_t a, std::size_t b) {
  auto link = std::make_unique<Link>();
  link->node[0] = a;
  link->node[1] = b;
  link->opened_ms = now_ms_;
  link->id = next_link_id_++;
  for (int s = 0; s < 2; ++s) {
    link->view[s] = std::make_unique<PeerView>(*nodes_[link->node[s]], link->node[1 - s]);
    link->session[s] = std::make_unique<sync::SyncSession>(*link->view[s]);
  }
  ++result_.stats.connects;
  note("connect " + roster_.names[a] + " - " + roster_.names[b]);
  links_.push_back(std::move(link));
  Link& l = *links_.back();
  for (int s = 0; s < 2; ++s)
    handle_output(l, s, l.session[s]->start(nodes_[l.node[s]]->wall_ms()));
  return !l.dead;
}

inline void Simulator::close_link(Link& link, const std::string& reason) {
  if (link.dead) return;
  link.dead = true;
  ++result_.stats.closes;
  note("close " + roster_.names[link.node[0]] + " - " + roster_.names[link.node[1]] + ": " +
       reason);
}

inline void Simulator::collect_dead_links() {
  links_.erase(std::remove_if(links_.begin(), links_.end(), [](const auto& l) { return l->dead; }),
               links_.end());
}

inline void Simulator::crash(std::size_t i) {
  nodes_[i]->up = false;
  ++result_.stats.crashes;
  note("crash " + roster_.names[i]);
  for (auto& l : links_) {
    if (!l->dead && (l->node[0] == i || l->node[1] == i)) close_link(*l, "crash");
  }
  for (auto it = requests_.begin(); it != requests_.end();) {
    it = it->second.node == i ? requests_.erase(it) : std::next(it);
  }
}

// The peer manager's deadlines: a HELLO or an ACK that does not come in time closes the link.
inline void Simulator::check_deadlines() {
  for (auto& lp : links_) {
    Link& l = *lp;
    if (l.dead) continue;
    for (int s = 0; s < 2 && !l.dead; ++s) {
      const auto& session = *l.session[s];
      if (!session.established() && now_ms_ > l.opened_ms + o_.deadline_ms) {
        ++result_.stats.deadline_closes;
        close_link(l, roster_.names[l.node[s]] + " got no HELLO in time");
      } else if (session.inflight_batches() == 0) {
        l.waiting_since_ms[s].reset();
      } else if (!l.waiting_since_ms[s]) {
        l.waiting_since_ms[s] = now_ms_;
      } else if (now_ms_ > *l.waiting_since_ms[s] + o_.deadline_ms) {
        ++result_.stats.deadline_closes;
        close_link(l, roster_.names[l.node[s]] + " got no ACK in time");
      }
    }
  }
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (now_ms_ > it->second.deadline_ms) {
      ++result_.stats.broker_timeouts;
      std::optional<Relay> relay = it->second.relay;
      it = requests_.erase(it);
      if (relay) answer_relay(*relay, relay->granted, "the holder did not answer in time");
    } else {
      ++it;
    }
  }
}

// --- invariants --------------------------------------------------------------------------------

inline bool Simulator::check_non_negative(const MemberId& m, const sync::MemberState& s) {
  for (Account account : {Account::kPoints, Account::kWallet}) {
    const sync::EscrowCounter& c = account == Account::kPoints ? s.points : s.wallet;
    const std::string who =
        "member " + crypto::to_hex(m).substr(0, 8) + " " + sync::account_name(account);
    if (c.value() < 0) {
      return fail(Invariant::kNonNegative,
                  who + " value " + std::to_string(c.value()) + " < 0 in the global replay");
    }
    for (const auto& [node, rights] : c.rights_by_node()) {
      if (rights < 0) {
        return fail(Invariant::kNonNegative, who + " rights at " + roster_.name(node) + " = " +
                                                 std::to_string(rights) +
                                                 " < 0 in the global replay");
      }
    }
  }
  return true;
}

inline bool Simulator::check_node_logs(std::size_t i, bool full) {
  SimNode& node = *nodes_[i];
  const std::string& name = roster_.names[i];
  // (2) The origin still holds every op it acknowledged, unchanged.
  const auto& acked = ledger_.ops_of(node.self());
  const auto& own = node.log_of(node.self());
  if (own.size() != acked.size() || (!own.empty() && own.back().hash != acked.back().hash)) {
    return fail(Invariant::kNoAckedOpLost, name + " holds " + std::to_string(own.size()) +
                                               " own ops but acknowledged " +
                                               std::to_string(acked.size()));
  }
  for (std::size_t k = 0; full && k < own.size(); ++k) {
    if (own[k].hash != acked[k].hash) {
      return fail(Invariant::kNoAckedOpLost,
                  name + " changed its acknowledged op " + sync::op_ref_string(node.self(), k + 1));
    }
  }
  // (3) Each op applied at most once: replica version vector = log sizes = apply counts.
  const VersionVector logs_vv = *node.version_vector();
  const auto& vv = node.replica().version_vector();
  const auto& counts = node.applied_counts();
  if (vv != logs_vv || counts != logs_vv) {
    std::ostringstream s;
    s << name << " replica or apply counts differ from its logs (origin: log size/replica seq/"
      << "times applied):";
    for (const auto& [origin, size] : logs_vv) {
      auto v = vv.find(origin);
      auto c = counts.find(origin);
      s << " " << roster_.name(origin) << ": " << size << "/" << (v == vv.end() ? 0 : v->second)
        << "/" << (c == counts.end() ? 0 : c->second);
    }
    return fail(Invariant::kAppliedOnce, s.str());
  }
  if (full) {
    sync::Replica replay;
    for (const auto& [origin, log] : node.logs()) {
      for (const auto& op : log) OUTPOST_CHECK(replay.apply(op.op).is_ok());
    }
    if (!(replay == node.replica())) {
      return fail(Invariant::kAppliedOnce, name + " replica differs from the replay of its logs");
    }
  }
  // (4) No honest node ever holds evidence of equivocation. (The Byzantine node of the negative
  // control sees its own fork come back; only honest receivers count.)
  if (!node.evidence().empty() && byzantine_ != i) {
    return fail(Invariant::kNoEquivocation, "equivocation: " + node.evidence().front());
  }
  return true;
}

inline bool Simulator::check_invariants(bool full) {
  // (1) Global state: the replay of every acknowledged op. It only changes when an op is
  // acknowledged, so checking the members touched since the last step checks all of them.
  if (full) {
    if (!(ledger_.fresh_replay() == ledger_.replay())) {
      return fail(Invariant::kNonNegative, "incremental global replay differs from a fresh one");
    }
    for (const auto& [m, s] : ledger_.replay().members()) {
      if (!check_non_negative(m, s)) return false;
    }
    ledger_.take_touched();
  } else {
    for (const MemberId& m : ledger_.take_touched()) {
      if (!check_non_negative(m, *ledger_.replay().member(m))) return false;
    }
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    // A node's own invariants can only change when its logs, replica or evidence did.
    if ((nodes_[i]->take_changed() || full) && !check_node_logs(i, full)) return false;
  }
  return true;
}

// --- final phase -------------------------------------------------------------------------------

inline bool Simulator::converged() const {
  VersionVector want;
  for (const auto& [origin, log] : ledger_.ops()) want[origin] = log.size();
  for (const auto& n : nodes_) {
    if (n->replica().version_vector() != want) return false;
  }
  return true;
}

// True when no deadline can fire: every session established with no batch awaiting an ACK.
// With nothing in flight and nothing to pump, such a chain never changes again.
inline bool Simulator::idle() const {
  for (const auto& l : links_) {
    for (int s = 0; s < 2; ++s) {
      if (l->dead) continue;
      if (!l->session[s]->established() || l->session[s]->inflight_batches() != 0) return false;
    }
  }
  return true;
}

inline bool Simulator::final_phase() {
  note("final phase: heal all, restart all, link every node to hq");
  cut_.clear();
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i]->isolated = false;
    if (!nodes_[i]->up) {
      nodes_[i]->up = true;
      nodes_[i]->restart();
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> wanted;
  for (std::size_t i = 1; i < nodes_.size(); ++i) {
    if (can_connect(0, i)) wanted.push_back({0, i});
  }
  for (std::size_t a = 1; a < nodes_.size(); ++a) {  // stores that cannot reach hq: all they can
    if (can_connect(0, a)) continue;
    for (std::size_t b = 0; b < nodes_.size(); ++b) {
      if (a != b && can_connect(a, b)) wanted.push_back({a, b});
    }
  }
  for (int k = 0; k < 2; ++k) {  // and a few store-store links
    std::size_t a = 1 + below(nodes_.size() - 1), b = 1 + below(nodes_.size() - 1);
    if (a != b && can_connect(a, b)) wanted.push_back({a, b});
  }
  const std::size_t end = o_.steps + o_.final_steps_max;
  for (; step_ < end && result_.ok; ++step_) {
    ++result_.stats.final_steps;
    for (auto [a, b] : wanted) {
      if (find_link(a, b) == nullptr) connect(a, b);
    }
    bool pending = false;
    for (const auto& l : links_) pending = pending || !l->inbox[0].empty() || !l->inbox[1].empty();
    if (pending) {
      if (below(10) != 0) {
        deliver(false);
      } else {
        pump_all();
      }
    } else if (pump_all()) {
      // The sync timer found more to send.
    } else if (idle()) {
      collect_dead_links();
      if (converged()) break;
      return fail(Invariant::kQuiescence,
                  "every link is idle (nothing in flight, nothing to send) but nodes differ: "
                  "sync stalled");
    } else {
      now_ms_ += o_.deadline_ms / 2;  // only a deadline can move things on now
      note("wait " + std::to_string(o_.deadline_ms / 2) + " ms");
    }
    now_ms_ += below(5);
    check_deadlines();
    collect_dead_links();
    check_invariants(false);
  }
  if (!result_.ok) return false;
  if (step_ >= end) {
    return fail(Invariant::kQuiescence,
                "did not settle within " + std::to_string(o_.final_steps_max) + " final steps");
  }
  check_invariants(true);
  return check_convergence();
}

inline bool Simulator::check_convergence() {
  if (!result_.ok) return false;
  const sync::Replica& global = ledger_.replay();
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!(nodes_[i]->replica() == nodes_[0]->replica())) {
      return fail(Invariant::kConvergence, roster_.names[i] + " state differs from hq's");
    }
    if (!(nodes_[i]->replica() == global)) {
      return fail(Invariant::kConvergence,
                  roster_.names[i] + " state differs from the replay of acknowledged ops");
    }
  }
  const SimNode& hq = *nodes_[0];
  for (const auto& [origin, log] : ledger_.ops()) {
    const auto& held = hq.log_of(origin);
    for (std::size_t k = 0; k < log.size(); ++k) {
      if (k >= held.size() || held[k].hash != log[k].hash) {
        return fail(Invariant::kConvergence, "hq lacks acknowledged op " +
                                                 sync::op_ref_string(origin, k + 1) + " of " +
                                                 roster_.name(origin));
      }
    }
  }
  note("converged: " + std::to_string(ledger_.count()) + " acknowledged ops on " +
       std::to_string(nodes_.size()) + " nodes");
  return true;
}

}  // namespace outpost::sim
