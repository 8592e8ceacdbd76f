// The simulator's network and its chaos step (sim.h, docs/simulator.md): links are pairs of real
// SyncSessions over the daemon's session adapter, whose messages are lost, duplicated or
// reordered on delivery; partitions cut pairs or isolate a node; session output is carried out
// as the daemon's peer manager does (peers_sessions.cc), the broker's events included.
#include "outpost/node/broker_driver.h"
#include "outpost/node/ledger_sync_store.h"
#include "sim.h"

namespace outpost::sim {

// One chaos step: one action picked with the weights of SimOptions.
void Simulator::step_chaos() {
  env_.advance(below(5));
  const unsigned weights[] = {o_.w_pos,   o_.w_deliver, o_.w_pump, o_.w_connect,
                              o_.w_cut,   o_.w_isolate, o_.w_heal, o_.w_crash,
                              o_.w_power, o_.w_restart, o_.w_tick, o_.w_rebalance};
  unsigned total = 0;
  for (unsigned w : weights) total += w;
  std::uint64_t r = below(total);
  std::size_t action = 0;
  while (r >= weights[action]) r -= weights[action++];
  const std::size_t any = below(nodes_.size());
  switch (action) {
    case 0:
      pos_request(1 + below(nodes_.size() - 1));
      break;
    case 1:
      deliver(true);
      break;
    case 2:
      pump_all();
      break;
    case 3: {
      const std::size_t b = below(2) == 0 ? 0 : below(nodes_.size());  // HQ is most linked
      if (any != b && can_connect(any, b) && !find_link(any, b)) connect(any, b);
      break;
    }
    case 4:
      partition();
      break;
    case 5:
      if (!nodes_[any].isolated) {
        nodes_[any].isolated = true;
        ++result_.stats.partitions;
        close_links_of(any, "isolate");
      }
      break;
    case 6:
      heal();
      break;
    case 7:
      crash(any);
      break;
    case 8:
      power_loss(any);
      break;
    case 9:
      restart_one();
      break;
    case 10:
      env_.advance(100 + below(1901));
      note("time passes");
      break;
    default:
      rebalance(any);
      break;
  }
  reap_dead_nodes();
  run_control();
  reap_dead_nodes();
  check_deadlines();
  advance_brokers();
  reap_dead_nodes();
  collect_dead_links();
}

void Simulator::partition() {
  const std::size_t a = below(nodes_.size()), b = below(nodes_.size());
  if (a == b) return;
  cut_.insert({std::min(a, b), std::max(a, b)});
  ++result_.stats.partitions;
  note("partition " + nodes_[a].name + " | " + nodes_[b].name);
  if (ChainLink* l = find_link(a, b)) close_link(*l, "partition");
}

void Simulator::heal() {
  const std::size_t i = below(nodes_.size());
  if (nodes_[i].isolated) {
    nodes_[i].isolated = false;
    note("heal " + nodes_[i].name);
  } else if (!cut_.empty()) {
    auto it = cut_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(below(cut_.size())));
    note("heal " + nodes_[it->first].name + " | " + nodes_[it->second].name);
    cut_.erase(it);
  }
}

// Delivers the head (or, as a reorder, another) message of a random non-empty queue, unless the
// link loses or duplicates it.
void Simulator::deliver(bool faults) {
  std::vector<std::pair<ChainLink*, int>> ready;
  for (auto& l : links_) {
    for (int s = 0; s < 2; ++s) {
      if (!l->dead && !l->inbox[s].empty()) ready.emplace_back(l.get(), s);
    }
  }
  if (ready.empty()) return;
  auto [link, side] = ready[below(ready.size())];
  auto& inbox = link->inbox[side];
  const std::string to = nodes_[link->node[side]].name;
  const std::uint64_t r = faults ? below(1000) : 1000;
  if (r < o_.loss_pm) {
    inbox.pop_front();
    ++result_.stats.losses;
    return note("lose a message to " + to);
  }
  if (r < o_.loss_pm + o_.dup_pm) {
    ++result_.stats.duplicates;
    note("duplicate a message to " + to);
    const Bytes copy = inbox.front();  // delivered now and again later
    return deliver_to(*link, side, copy);
  }
  if (r < o_.loss_pm + o_.dup_pm + o_.reorder_pm && inbox.size() >= 2) {
    auto pos = inbox.begin() + static_cast<std::ptrdiff_t>(1 + below(inbox.size() - 1));
    const Bytes bytes = std::move(*pos);
    inbox.erase(pos);
    ++result_.stats.reorders;
    note("reorder a message to " + to);
    return deliver_to(*link, side, bytes);
  }
  const Bytes bytes = std::move(inbox.front());
  inbox.pop_front();
  deliver_to(*link, side, bytes);
}

void Simulator::deliver_to(ChainLink& link, int side, const Bytes& bytes) {
  ++result_.stats.deliveries;
  const std::size_t i = link.node[side];
  // The type byte names the message (protocol.h: type u8 first); the session decodes the rest.
  static const char* const kNames[] = {"?",    "HELLO",          "OPS",          "ACK",
                                       "BLOB", "RIGHTS_REQUEST", "RIGHTS_REPLY", "ERROR"};
  const std::size_t type = bytes.empty() || bytes[0] > 7 ? 0 : bytes[0];
  note(std::string("deliver ") + kNames[type] + " " + nodes_[link.node[1 - side]].name + " -> " +
       nodes_[i].name);
  handle_output(link, side, link.session[side]->on_message(bytes, now()));
}

// Carries out a session's output as the daemon's peer manager does: messages go on the link,
// a HELLO tells the broker the link is up, a rights request or reply goes to the broker, new ops
// are pushed to the node's other peers at once, a close drops the link.
void Simulator::handle_output(ChainLink& link, int side, sync::SessionOutput out) {
  const std::size_t i = link.node[side];
  if (link.dead || !alive(i)) return;  // a dead process sends nothing
  for (auto& b : out.send) link.inbox[1 - side].push_back(std::move(b));
  for (const auto& ev : out.events) {
    if (link.dead || !alive(i)) return;  // an earlier event closed it or killed the node
    switch (ev.kind) {
      case sync::SessionEvent::Kind::kHello: {
        const std::size_t peer = link.node[1 - side];
        nodes_[i].broker->link_up(link.id, nodes_[peer].id, nodes_[peer].is_hq);
        link.broker_up[side] = true;
        break;
      }
      case sync::SessionEvent::Kind::kAcked:
        link.waiting_since_ms[side].reset();
        break;
      case sync::SessionEvent::Kind::kIngested:
      case sync::SessionEvent::Kind::kEquivocation:
        result_.stats.ops_received_new += ev.ingest.applied;
        if (ev.ingest.applied > 0) pump_node(i);
        break;
      default:
        if (auto b = node::broker_on_session_event(*nodes_[i].broker, link.id, ev, now())) {
          run_broker(i, *b);
        }
        break;
    }
  }
  if (out.close && !link.dead && alive(i)) {
    ++result_.stats.closes_by_session;
    close_link(link, nodes_[i].name + " closed: " + out.close_reason);
  }
}

void Simulator::pump_node(std::size_t i) {
  for (std::size_t k = 0; k < links_.size(); ++k) {
    ChainLink& l = *links_[k];
    for (int s = 0; s < 2; ++s) {
      if (!l.dead && l.node[s] == i && alive(i)) handle_output(l, s, l.session[s]->pump());
    }
  }
}

// Pumps every session (the sync timer); returns whether any produced a message.
bool Simulator::pump_all() {
  bool sent = false;
  for (std::size_t k = 0; k < links_.size(); ++k) {
    ChainLink& l = *links_[k];
    for (int s = 0; s < 2; ++s) {
      if (l.dead || !alive(l.node[s])) continue;
      auto out = l.session[s]->pump();
      sent = sent || !out.send.empty();
      handle_output(l, s, std::move(out));
    }
  }
  return sent;
}

bool Simulator::can_connect(std::size_t a, std::size_t b) const {
  if (!alive(a) || !alive(b) || nodes_[a].isolated || nodes_[b].isolated) return false;
  if (cut_.count({std::min(a, b), std::max(a, b)})) return false;
  return !o_.can_link || o_.can_link(a, b);
}

ChainLink* Simulator::find_link(std::size_t a, std::size_t b) {
  for (auto& l : links_) {
    if (!l->dead &&
        ((l->node[0] == a && l->node[1] == b) || (l->node[0] == b && l->node[1] == a))) {
      return l.get();
    }
  }
  return nullptr;
}

// Both sides' sessions, each over the daemon's adapter bound to the peer's certificate.
void Simulator::connect(std::size_t a, std::size_t b) {
  auto link = std::make_unique<ChainLink>();
  link->node[0] = a;
  link->node[1] = b;
  link->opened_ms = now();
  link->id = next_link_id_++;
  for (int s = 0; s < 2; ++s) {
    ChainNode& self = nodes_[link->node[s]];
    const ChainNode& peer = nodes_[link->node[1 - s]];
    const sync::SignedCertificate* cert = roster_->find(peer.id);
    if (cert == nullptr)
      return (void)fail(Invariant::kNodeFailed, "no certificate of " + peer.name);
    link->store[s] =
        node::make_ledger_sync_store(*self.ledger, *self.env, self.is_hq, nullptr, cert->cert);
    link->session[s] = std::make_unique<sync::SyncSession>(*link->store[s], peer.id);
  }
  ++result_.stats.connects;
  note("connect " + nodes_[a].name + " - " + nodes_[b].name);
  links_.push_back(std::move(link));
  ChainLink& l = *links_.back();
  for (int s = 0; s < 2; ++s) handle_output(l, s, l.session[s]->start(now()));
}

// The link goes down on both sides: its messages are dropped and each broker that knew it up
// hears it went down (peers_broker.cc, broker_link_down).
void Simulator::close_link(ChainLink& link, const std::string& reason) {
  if (link.dead) return;
  link.dead = true;
  ++result_.stats.closes;
  note("close " + nodes_[link.node[0]].name + " - " + nodes_[link.node[1]].name + ": " + reason);
  for (int s = 0; s < 2; ++s) {
    const std::size_t i = link.node[s];
    if (link.broker_up[s] && alive(i)) run_broker(i, nodes_[i].broker->link_down(link.id, now()));
  }
}

void Simulator::close_links_of(std::size_t i, const std::string& reason) {
  for (auto& l : links_) {
    if (!l->dead && (l->node[0] == i || l->node[1] == i)) close_link(*l, reason);
  }
}

// The peer manager's deadlines: a HELLO or an ACK that does not come in time closes the link.
void Simulator::check_deadlines() {
  for (std::size_t k = 0; k < links_.size(); ++k) {
    ChainLink& l = *links_[k];
    for (int s = 0; s < 2 && !l.dead; ++s) {
      const auto& session = *l.session[s];
      if (!session.established() && now() > l.opened_ms + o_.deadline_ms) {
        ++result_.stats.deadline_closes;
        close_link(l, nodes_[l.node[s]].name + " got no HELLO in time");
      } else if (session.inflight_batches() == 0) {
        l.waiting_since_ms[s].reset();
      } else if (!l.waiting_since_ms[s]) {
        l.waiting_since_ms[s] = now();
      } else if (now() > *l.waiting_since_ms[s] + o_.deadline_ms) {
        ++result_.stats.deadline_closes;
        close_link(l, nodes_[l.node[s]].name + " got no ACK in time");
      }
    }
  }
}

void Simulator::collect_dead_links() {
  std::erase_if(links_, [](const auto& l) { return l->dead; });
}

}  // namespace outpost::sim
