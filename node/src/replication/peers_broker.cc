// PeerManager, rights broker driver (peers_impl.h): feeds sync::RightsBroker its events (a local
// request from the API, a peer's request or reply from a session, a link established or closed,
// its deadline timer) and carries out its actions (a message through the link's session, a grant
// on the ledger worker, the API's callback). The policy lives in the broker (sync/broker.h,
// docs/sync-protocol.md "Rights broker"); nothing here decides who is asked or when to give up.
// io thread, except the worker task of a grant.
#include "outpost/node/broker_driver.h"
#include "outpost/node/log.h"
#include "peers_impl.h"

namespace outpost::node {

// The only clock read of the broker: every event passes the time it happened into the machine.
std::uint64_t PeerManager::Impl::broker_now_ms() { return clock.steady_ms(); }

void PeerManager::Impl::request_rights(const sync::MemberId& member, sync::Account account,
                                       std::uint64_t amount, const sync::RightsView& view,
                                       std::function<void(bool, bool)> done) {
  sync::BrokerOutput out;
  const std::uint64_t ticket = broker.request(member, account, amount, view, broker_now_ms(), out);
  rights_waiters[ticket] = std::move(done);  // before the output: it may end the request at once
  run_broker(out);
}

void PeerManager::Impl::broker_link_up(const std::shared_ptr<Conn>& c) {
  if (c->closed || c->broker_up) return;
  c->broker_up = true;
  broker.link_up(c->id, c->peer, c->link->peer_certificate().role == sync::NodeRole::kHq);
}

void PeerManager::Impl::broker_link_down(const Conn& c) {
  if (!c.broker_up) return;
  run_broker(broker.link_down(c.id, broker_now_ms()));
}

void PeerManager::Impl::run_broker(const sync::BrokerOutput& out) {
  for_each_broker_action(
      out, [this](const sync::SendRightsRequest& s) { send_rights_request(s); },
      [this](const sync::SendRightsReply& r) { send_rights_reply(r); },
      [this](const sync::GrantRights& g) { grant_rights(g); },
      [this](const sync::RightsDone& d) { rights_done(d); });
  arm_broker_timer();
}

// The broker names only links it was told are up and not yet down, and on_closed tells it at
// once; a link missing here is one that closed in between (the request then ends by deadline).
void PeerManager::Impl::send_rights_request(const sync::SendRightsRequest& s) {
  auto it = conns.find(s.link);
  if (it == conns.end() || it->second->closed) return;
  const auto& c = it->second;
  log(LogLevel::kInfo, "asking peer for rights",
      {{"peer", c->name},
       {"member", sync::id_hex(s.msg.member)},
       {"amount", std::to_string(s.msg.amount)}});
  const sync::RightsRequestMsg msg = s.msg;
  conn_task(c, [msg](sync::SyncSession& session) {
    return session.request_rights(msg.request_id, msg.member, msg.account, msg.amount);
  });
}

void PeerManager::Impl::send_rights_reply(const sync::SendRightsReply& s) {
  auto it = conns.find(s.link);
  if (it == conns.end() || it->second->closed) return;
  const sync::RightsReplyMsg msg = s.msg;
  // The session sends the ops the peer lacks first (the grant's move op among them).
  conn_task(it->second, [msg](sync::SyncSession& session) {
    return session.answer_rights(msg.request_id, msg.granted, msg.reason);
  });
}

// Moves the rights on the worker; the broker hears the amount once the move op is durable (a
// batch that failed to commit moved nothing).
void PeerManager::Impl::grant_rights(const sync::GrantRights& g) {
  auto result = std::make_shared<GrantOutcome>();
  auto self = shared_from_this();
  LedgerWorker::Task t;
  t.mutating = true;
  t.run = [g, result](Ledger& l) { *result = carry_out_grant(l, g); };
  const std::uint64_t grant_id = g.grant_id;
  t.done = [self, result, grant_id](bool durable) {
    asio::post(self->io, [self, result, grant_id, durable] {
      self->run_broker(self->broker.on_granted(grant_id, durable ? result->granted : 0,
                                               result->view, self->broker_now_ms()));
    });
  };
  if (!worker.submit(std::move(t))) {
    asio::post(io, [self, grant_id] {
      self->run_broker(self->broker.on_granted(grant_id, 0, {}, self->broker_now_ms()));
    });
  }
}

void PeerManager::Impl::rights_done(const sync::RightsDone& d) {
  auto it = rights_waiters.find(d.ticket);
  if (it == rights_waiters.end()) return;
  auto done = std::move(it->second);
  rights_waiters.erase(it);
  log(LogLevel::kInfo, "rights request ended",
      {{"end", sync::rights_end_name(d.end)}, {"granted", std::to_string(d.granted)}});
  done(d.tried(), d.granted > 0);
}

// One timer for the broker's earliest deadline, re-armed after every batch of its actions.
void PeerManager::Impl::arm_broker_timer() {
  auto next = broker.next_deadline_ms();
  if (stopping) next.reset();
  if (next == broker_timer_at) return;  // already set for it (or idle)
  broker_timer_at = next;
  if (!next) {
    broker_timer.cancel();
    return;
  }
  const std::uint64_t now = broker_now_ms();
  broker_timer.expires_after(std::chrono::milliseconds(*next > now ? *next - now : 0));
  auto self = shared_from_this();
  broker_timer.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->stopping) return;
    self->broker_timer_at.reset();
    self->run_broker(self->broker.advance(self->broker_now_ms()));
  });
}

}  // namespace outpost::node
