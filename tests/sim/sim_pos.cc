// The simulator's POS traffic, rights broker and rebalancer (sim.h, docs/simulator.md): requests
// go to the real Ledger as the API sends them, a debit refused for want of rights here asks the
// node's real sync::RightsBroker for the shortfall and is retried once with what arrived (the
// API's rule, docs/api.md), and the broker's actions are carried out with the daemon's own
// functions (outpost/node/broker_driver.h). Also the negative controls' injected ops.
#include "outpost/crypto/crypto.h"
#include "outpost/node/broker_driver.h"
#include "sim.h"

namespace outpost::sim {

namespace {

// Rebalancer windows scaled to simulated time: rights idle for 1 s move toward the node where the
// member shopped in the last minute (docs/sync-protocol.md, "Rebalancer").
sync::RebalancePolicy sim_rebalance_policy() {
  sync::RebalancePolicy p;
  p.idle_ms = 1'000;
  p.recent_ms = 60'000;
  return p;
}

}  // namespace

void Simulator::pos_request(std::size_t i) {
  if (!alive(i)) return;
  if (members_.empty() || below(8) == 0) return enroll(i);
  const MemberId m = members_[below(members_.size())];
  node::Ledger& l = *nodes_[i].ledger;
  const std::string rid = "sim-" + std::to_string(step_) + "-" + std::to_string(below(1u << 30));
  const std::uint64_t r = below(10);
  if (r < 3) {
    note("topup at " + nodes_[i].name);
    if (acknowledge(i, l.topup(rid, m, 1 + below(100), ""), "topup")) ++result_.stats.topups;
  } else if (r < 5) {
    note("earn at " + nodes_[i].name);
    if (acknowledge(i, l.earn(rid, m, 100 + below(5000), ""), "earn")) ++result_.stats.earns;
  } else if (r < 9) {
    debit(i, WaitingDebit{r == 8, m, 1 + below(80), rid}, below(4) != 0);
  } else {
    // A request for rights the node does not need yet: the broker at work without a debit.
    ask_rights(i, WaitingDebit{below(2) == 0, m, 1 + below(50), ""});
  }
}

void Simulator::enroll(std::size_t i) {
  node::Ledger& l = *nodes_[i].ledger;
  const std::string card = std::to_string(40000000 + below(10'000'000));
  note("enroll at " + nodes_[i].name);
  const auto r =
      l.enroll(node::EnrollRequest{"sim-enroll-" + std::to_string(step_), card, "Member", "", ""});
  if (!acknowledge(i, r, "enroll")) return;
  ++result_.stats.enrolls;
  auto m = l.resolve_member(card);
  if (m.is_ok()) members_.push_back(*m);
}

// A POS request's answer: acknowledged (the op is durable, the POS is told so) unless refused,
// failed, or the node died making it. Records the op for failure rule 4.
bool Simulator::acknowledge(std::size_t i, const Result<node::Outcome>& r, const char* what) {
  ChainNode& n = nodes_[i];
  if (!n.vfs->powered()) return false;  // the power went: nobody was answered
  if (!r.is_ok()) {
    // A request for a member this node does not know yet is an error, not a fault.
    if (r.status().code() == Code::kNotFound || r.status().code() == Code::kInvalidArgument) {
      ++result_.stats.refusals;
      return false;
    }
    return fail(Invariant::kNodeFailed,
                std::string(what) + " at " + n.name + " failed: " + r.status().to_string());
  }
  if (r->refused) {
    ++result_.stats.refusals;
    return false;
  }
  if (r->replayed) return false;
  auto head = n.ledger->store().head(n.id);
  if (!head.is_ok()) return fail(Invariant::kNodeFailed, head.status().to_string());
  n.own_acked[head->seq] = head->hash;
  ++result_.stats.acked_ops;
  mix(head->seq);
  for (std::uint8_t b : head->hash) mix(b);
  pump_node(i);  // the daemon pushes new ops to its peers at once
  return true;
}

// A spend (wallet) or redeem (points). Refused for want of rights here, it asks the broker for
// the shortfall (when `may_ask`) and is retried when the broker is done.
void Simulator::debit(std::size_t i, const WaitingDebit& d, bool may_ask) {
  node::Ledger& l = *nodes_[i].ledger;
  note(std::string(d.points ? "redeem " : "spend ") + std::to_string(d.amount) + " at " +
       nodes_[i].name);
  const auto r = d.points ? l.redeem(d.request_id, d.member, d.amount, "")
                          : l.spend(d.request_id, d.member, d.amount, "");
  if (acknowledge(i, r, d.points ? "redeem" : "spend")) {
    ++(d.points ? result_.stats.redeems : result_.stats.spends);
    return;
  }
  if (!may_ask || !alive(i) || !r.is_ok() || !r->refused) return;
  const auto account = d.points ? sync::Account::kPoints : sync::Account::kWallet;
  const sync::RightsView view = node::rights_view(l, d.member, account);
  const auto here_it = view.find(nodes_[i].id);
  const std::int64_t here = here_it == view.end() ? 0 : std::max<std::int64_t>(0, here_it->second);
  if (static_cast<std::uint64_t>(here) >= d.amount) return;  // refused for another reason
  WaitingDebit retry = d;
  retry.request_id += "-retry";  // the refused request's id stays the refusal's
  ask_rights(i, retry);
}

// Asks the node's broker for rights, as the API does for a refused debit (view from the ledger).
void Simulator::ask_rights(std::size_t i, const WaitingDebit& d) {
  ChainNode& n = nodes_[i];
  const auto account = d.points ? sync::Account::kPoints : sync::Account::kWallet;
  const sync::RightsView view = node::rights_view(*n.ledger, d.member, account);
  const auto here_it = view.find(n.id);
  const std::int64_t here = here_it == view.end() ? 0 : std::max<std::int64_t>(0, here_it->second);
  const std::uint64_t want =
      d.request_id.empty() ? d.amount : d.amount - static_cast<std::uint64_t>(here);
  ++result_.stats.broker_requests;
  note("ask the broker of " + n.name + " for " + std::to_string(want));
  sync::BrokerOutput out;
  const std::uint64_t ticket = n.broker->request(d.member, account, want, view, now(), out);
  n.waiting[ticket] = d;  // before the output: it may end the request at once
  run_broker(i, out);
}

// Carries out the broker's actions as the daemon's driver does (peers_broker.cc), with the same
// functions: a message through the link's session, a grant on the ledger, a finished request.
void Simulator::run_broker(std::size_t i, const sync::BrokerOutput& out) {
  auto on_link = [this, i](sync::BrokerLinkId id, auto&& call) {
    for (auto& l : links_) {
      if (l->dead || l->id != id) continue;
      const int side = l->node[0] == i ? 0 : 1;
      if (l->node[side] == i) handle_output(*l, side, call(*l->session[side]));
      return;
    }
  };
  node::for_each_broker_action(
      out,
      [&](const sync::SendRightsRequest& s) {
        if (!alive(i)) return;
        on_link(s.link, [&s](sync::SyncSession& session) {
          return session.request_rights(s.msg.request_id, s.msg.member, s.msg.account,
                                        s.msg.amount);
        });
      },
      [&](const sync::SendRightsReply& s) {
        if (!alive(i)) return;
        on_link(s.link, [&s](sync::SyncSession& session) {
          return session.answer_rights(s.msg.request_id, s.msg.granted, s.msg.reason);
        });
      },
      [&](const sync::GrantRights& g) {
        if (!alive(i)) return;
        const node::GrantOutcome done = node::carry_out_grant(*nodes_[i].ledger, g);
        if (!alive(i)) return;  // the power went during the grant
        if (done.granted > 0) {
          ++result_.stats.grants;
          auto head = nodes_[i].ledger->store().head(nodes_[i].id);
          if (head.is_ok()) nodes_[i].own_acked[head->seq] = head->hash;
          note("grant " + std::to_string(done.granted) + " from " + nodes_[i].name);
          pump_node(i);
        }
        if (alive(i))
          run_broker(i, nodes_[i].broker->on_granted(g.grant_id, done.granted, done.view, now()));
      },
      [&](const sync::RightsDone& d) { on_rights_done(i, d); });
}

// A local request ended: a debit waiting on it is retried once with whatever arrived.
void Simulator::on_rights_done(std::size_t i, const sync::RightsDone& d) {
  ChainNode& n = nodes_[i];
  auto it = n.waiting.find(d.ticket);
  if (it == n.waiting.end()) return;
  const WaitingDebit w = it->second;
  n.waiting.erase(it);
  note("broker of " + n.name + " done: " + sync::rights_end_name(d.end) + " granted " +
       std::to_string(d.granted));
  if (d.granted > 0) ++result_.stats.broker_granted;
  if (d.granted == 0 || w.request_id.empty() || !alive(i)) return;
  ++result_.stats.retried_debits;
  debit(i, w, false);
}

// The broker's timer: every node whose earliest deadline has passed hears the time.
void Simulator::advance_brokers() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!alive(i)) continue;
    auto next = nodes_[i].broker->next_deadline_ms();
    if (next && *next <= now()) run_broker(i, nodes_[i].broker->advance(now()));
  }
}

// The daemon's rebalancer pass over a few members: sync::plan_rebalance and the ledger's move.
void Simulator::rebalance(std::size_t i) {
  if (!alive(i)) return;
  ChainNode& n = nodes_[i];
  note("rebalance at " + n.name);
  const auto before = n.ledger->store().head(n.id);
  auto moved = n.ledger->rebalance(&n.rebalance_cursor, 8, n.env->now_ms(), sim_rebalance_policy());
  if (!alive(i)) return;
  if (!moved.is_ok()) {
    return (void)fail(Invariant::kNodeFailed,
                      "rebalance at " + n.name + ": " + moved.status().to_string());
  }
  if (moved->empty() || !before.is_ok()) return;
  result_.stats.rebalances += moved->size();
  result_.stats.moves += moved->size();
  // Each move is durable when rebalance returns: acknowledged like a POS answer.
  auto ops = n.ledger->store().ops_of_origin(n.id, before->seq + 1, moved->size());
  if (!ops.is_ok()) return (void)fail(Invariant::kNodeFailed, ops.status().to_string());
  for (const auto& sop : *ops) n.own_acked[sop.op.seq] = sop.hash;
  pump_node(i);
}

// The negative controls' faults, made with a store's real key (docs/simulator.md, "The tests").
void Simulator::run_control() {
  if (control_done_ || step_ < o_.control_at_step || members_.empty()) return;
  const std::size_t s = 1 + below(nodes_.size() - 1);
  if (!alive(s) || !alive(0)) return;
  ChainNode& n = nodes_[s];
  auto key = crypto::read_signing_key(n.dir + "/" + node::kSigningKeyFile);
  auto head = n.ledger->store().head(n.id);
  if (!key.is_ok() || !head.is_ok()) return;
  if (o_.control == Control::kSpendWithoutRights) {
    const MemberId m = members_[below(members_.size())];
    auto state = n.ledger->store().load_member(m);
    if (!state.is_ok() || !*state) return;
    sync::Op op;
    op.kind = sync::OpKind::kSpend;
    op.origin = n.id;
    op.seq = head->seq + 1;
    op.prev = head->hash;
    op.hlc = sync::Hlc{n.env->now_ms() + 1000, 0};
    op.member = m;
    op.account = sync::Account::kWallet;
    op.amount =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, (*state)->wallet.rights(n.id))) + 1;
    op.request_id = "control-overspend";
    control_done_ = inject(s, sync::sign_op(op, *key));
  } else if (o_.control == Control::kSignTwoOpsWithOneSeq && head->seq > 0) {
    auto held = n.ledger->store().ops_of_origin(n.id, head->seq, 1);
    if (!held.is_ok() || held->empty()) return;
    sync::Op op = held->front().op;
    op.receipt = "the other history";
    control_done_ = inject(0, sync::sign_op(op, *key));
  }
}

// Gives `op` to node `at` as if a peer had sent it; true when it was applied or kept as evidence.
bool Simulator::inject(std::size_t at, const sync::SignedOp& op) {
  note("inject a forged op of " + sync::id_hex(op.op.origin) + " seq " + std::to_string(op.op.seq) +
       " into " + nodes_[at].name);
  auto r = nodes_[at].ledger->ingest({op});
  return r.is_ok() && (r->applied > 0 || !r->equivocations.empty());
}

}  // namespace outpost::sim
