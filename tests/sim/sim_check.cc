// The simulator's invariants and its final phase (sim.h; the numbers are docs/simulator.md's).
// After every step each node that is up is read back: the ops new in its log are checked
// against every other node's (one op per origin and seq), replayed into its shadow replica and
// the union of all logs, and its stored member state compared with the replay; failure rule 4
// is checked against what it acknowledged; and the union must show no value or rights below
// zero.
#include "sim.h"

namespace outpost::sim {

namespace {

std::uint64_t vv_at(const sync::VersionVector& vv, const NodeId& origin) {
  auto it = vv.find(origin);
  return it == vv.end() ? 0 : it->second;
}

}  // namespace

SimResult Simulator::run() {
  for (step_ = 0; step_ < o_.steps && result_.ok; ++step_) {
    step_chaos();
    ++result_.stats.steps;
    if (!check_step()) break;
    if (o_.full_check_every_steps != 0 && (step_ + 1) % o_.full_check_every_steps == 0) {
      check_full();
    }
  }
  if (result_.ok) final_phase();
  result_.far_acked = nodes_.empty() ? 0 : nodes_.back().own_acked.size();
  return result_;
}

// Every check of one step, over every node that is up.
bool Simulator::check_step() {
  if (!result_.ok) return false;
  std::set<MemberId> touched;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (alive(i) && !scan_node(i, touched)) return false;
  }
  // (1) The union of every log is causally closed (each node's log is), so here no member's
  // value and no node's rights may be below zero: a node spent only rights it held.
  for (const MemberId& m : touched) {
    const sync::MemberState* s = global_.member(m);
    if (s == nullptr) continue;
    for (auto account : {sync::Account::kPoints, sync::Account::kWallet}) {
      const sync::EscrowCounter& c = s->counter(account);
      if (c.value() < 0) {
        return fail(Invariant::kNoOverspend, std::string(sync::account_name(account)) +
                                                 " of member " + sync::id_hex(m) + " is " +
                                                 std::to_string(c.value()));
      }
      for (const auto& [holder, rights] : c.rights_by_node()) {
        if (rights < 0) {
          return fail(Invariant::kNoOverspend,
                      "node " + sync::id_hex(holder) + " holds " + std::to_string(rights) + " " +
                          sync::account_name(account) + " rights of member " + sync::id_hex(m));
        }
      }
    }
  }
  return true;
}

// Reads node i's new ops into its shadow and the union; checks (2), (3) and (4) for it.
bool Simulator::scan_node(std::size_t i, std::set<MemberId>& touched) {
  ChainNode& n = nodes_[i];
  storage::Store& store = n.ledger->store();
  auto vv = store.version_vector();
  if (!vv.is_ok()) return fail(Invariant::kNodeFailed, n.name + ": " + vv.status().to_string());
  if (!check_durable(i, *vv)) return false;
  std::set<MemberId> mine;
  for (const auto& [origin, held] : *vv) {
    for (std::uint64_t from = n.shadow.applied_seq(origin) + 1; from <= held;) {
      auto ops = store.ops_of_origin(origin, from, 256);
      if (!ops.is_ok() || ops->empty()) {
        return fail(Invariant::kNodeFailed, n.name + " cannot read the ops it counts");
      }
      for (const sync::SignedOp& sop : *ops) {
        auto& known = global_ops_[origin];
        if (sop.op.seq <= known.size() && known[sop.op.seq - 1] != sop.hash) {
          return fail(Invariant::kNoEquivocation,
                      n.name + " holds another op " + std::to_string(sop.op.seq) + " of origin " +
                          sync::id_hex(origin) + " than a node before it");
        }
        if (sop.op.seq == known.size() + 1) {
          known.push_back(sop.hash);
          if (!global_.apply(sop.op).is_ok()) {
            return fail(Invariant::kNoOverspend, "the union of the logs does not replay");
          }
          for (std::uint8_t b : sop.hash) mix(b);
        }
        auto applied = n.shadow.apply(sop.op);
        if (!applied.is_ok() || *applied != sync::ApplyResult::kApplied) {
          return fail(Invariant::kAppliedOnce, n.name + "'s log holds op " +
                                                   std::to_string(sop.op.seq) + " of " +
                                                   sync::id_hex(origin) + " out of order");
        }
        mine.insert(sop.op.member);
        from = sop.op.seq + 1;
      }
    }
  }
  // (3) What the node stored for each member its new ops touched is their replay, each op once.
  for (const MemberId& m : mine) {
    auto stored = store.load_member(m);
    if (!stored.is_ok()) return fail(Invariant::kNodeFailed, stored.status().to_string());
    const sync::MemberState* replay = n.shadow.member(m);
    if (stored->has_value() != (replay != nullptr) || (replay && **stored != *replay)) {
      return fail(Invariant::kAppliedOnce, n.name + "'s state of member " + sync::id_hex(m) +
                                               " is not the replay of its log");
    }
    touched.insert(m);
  }
  // (4) An honest node holds no evidence of two histories of one origin.
  auto evidence = store.equivocation_count();
  if (!evidence.is_ok() || *evidence != 0) {
    return fail(Invariant::kNoEquivocation,
                n.name + " holds evidence of an origin's two histories");
  }
  n.durable_floor = *vv;  // committed, so synced: a later power loss must keep it
  return true;
}

// (2) Failure rule 4: the node holds every op it held when last up (each was committed, hence
// synced) and its last acknowledged op, unchanged (the hash chain vouches for the ones before).
bool Simulator::check_durable(std::size_t i, const sync::VersionVector& vv) {
  ChainNode& n = nodes_[i];
  for (const auto& [origin, seq] : n.durable_floor) {
    if (vv_at(vv, origin) < seq) {
      return fail(Invariant::kNoAckedOpLost, n.name + " lost ops of " + sync::id_hex(origin) +
                                                 ": it held " + std::to_string(seq) + ", now " +
                                                 std::to_string(vv_at(vv, origin)));
    }
  }
  if (n.own_acked.empty()) return true;
  const auto& [seq, hash] = *n.own_acked.rbegin();
  auto ops = n.ledger->store().ops_of_origin(n.id, seq, 1);
  if (!ops.is_ok() || ops->empty() || ops->front().hash != hash) {
    return fail(Invariant::kNoAckedOpLost,
                n.name + " lost its acknowledged op " + std::to_string(seq));
  }
  return true;
}

// Every node's whole log verified afresh (signatures, chain, replay against its stored state).
bool Simulator::check_full() {
  ++result_.stats.full_checks;
  for (std::size_t i = 0; i < nodes_.size() && result_.ok; ++i) {
    if (!alive(i)) continue;
    auto report = nodes_[i].ledger->verify_log();
    if (!report.is_ok()) return fail(Invariant::kNodeFailed, report.status().to_string());
    if (!report->ok()) {
      return fail(Invariant::kAppliedOnce,
                  nodes_[i].name + " fails verify_log: " + report->findings.front());
    }
  }
  return result_.ok;
}

// True when nothing can happen without a new action: no message in flight, every session
// established with no batch awaiting an ACK, and no broker waiting on anything.
bool Simulator::idle() const {
  for (const auto& l : links_) {
    if (l->dead) continue;
    for (int s = 0; s < 2; ++s) {
      if (!l->inbox[s].empty() || !l->session[s]->established() ||
          l->session[s]->inflight_batches() != 0) {
        return false;
      }
    }
  }
  for (const auto& n : nodes_) {
    if (n.broker && (n.broker->requests_waiting() != 0 || n.broker->requests_in_service() != 0)) {
      return false;
    }
  }
  return true;
}

// True when every node holds every op of the union.
bool Simulator::all_hold_everything() {
  for (const auto& n : nodes_) {
    for (const auto& [origin, ops] : global_ops_) {
      if (n.shadow.applied_seq(origin) != ops.size()) return false;
    }
  }
  return true;
}

// After the chaos: everything heals and restarts, every store links to HQ (or, when it may not,
// to every peer it may), and fault-free delivery runs until the chain is idle and every node
// holds every op (5); then the nodes must agree (6).
bool Simulator::final_phase() {
  note("final phase");
  cut_.clear();
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i].isolated = false;
    nodes_[i].vfs->crash_at_write(0);
    if (!nodes_[i].ledger && !open_node(i)) return false;
  }
  const std::size_t end = step_ + o_.final_steps_max;
  for (; step_ < end && result_.ok; ++step_) {
    ++result_.stats.final_steps;
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      for (std::size_t j = 0; j < nodes_.size(); ++j) {
        const bool wanted = can_connect(0, i) ? j == 0 : j != i;
        if (wanted && can_connect(i, j) && !find_link(i, j)) connect(i, j);
      }
    }
    bool in_flight = false;
    for (const auto& l : links_)
      in_flight = in_flight || !l->inbox[0].empty() || !l->inbox[1].empty();
    if (in_flight) {
      deliver(false);
    } else if (!pump_all()) {
      if (idle() && all_hold_everything()) break;
      env_.advance(500);  // only a deadline can move things on
      note("time passes");
    }
    check_deadlines();
    advance_brokers();
    collect_dead_links();
    if (!check_step()) return false;
  }
  if (step_ >= end) {
    return fail(Invariant::kQuiescence,
                "the chain did not settle within " + std::to_string(o_.final_steps_max) + " steps");
  }
  return check_convergence();
}

// (6) Every node holds the union of the logs, its stored state is the union's replay, every
// acknowledged op is at HQ unchanged, and every node's log verifies afresh.
bool Simulator::check_convergence() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    ChainNode& n = nodes_[i];
    auto vv = n.ledger->store().version_vector();
    if (!vv.is_ok() || *vv != global_.version_vector()) {
      return fail(Invariant::kConvergence, n.name + " does not hold every op of the chain");
    }
    auto members = n.ledger->store().load_all_members();
    if (!members.is_ok() || *members != global_.members()) {
      return fail(Invariant::kConvergence,
                  n.name + "'s member state is not the replay of every op of the chain");
    }
    for (const auto& [seq, hash] : n.own_acked) {
      auto at_hq = nodes_[0].ledger->store().ops_of_origin(n.id, seq, 1);
      if (!at_hq.is_ok() || at_hq->empty() || at_hq->front().hash != hash) {
        return fail(Invariant::kConvergence,
                    "HQ lacks acknowledged op " + std::to_string(seq) + " of " + n.name);
      }
    }
  }
  return check_full();
}

}  // namespace outpost::sim
