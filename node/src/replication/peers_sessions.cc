// PeerManager, sessions (peers_impl.h): each link's sync::SyncSession runs on the ledger worker,
// so ingest is part of group commit and what a session sends leaves only after its batch is
// durable. Received messages are decoded and their signatures checked on the verifier thread
// first; session output is carried out on the io thread.
#include <future>

#include "outpost/node/broker_driver.h"
#include "outpost/node/log.h"
#include "peers_impl.h"

namespace outpost::node {

using sync::SessionEvent;
using sync::SessionOutput;
using sync::SyncSession;

namespace {
constexpr std::int64_t kClockSkewAlertMs = 5 * 60 * 1000;
}  // namespace

// Runs `fn` on the link's session in a worker task, then carries out its output on the io thread
// once the task's batch is durable.
void PeerManager::Impl::conn_task(const std::shared_ptr<Conn>& c,
                                  std::function<SessionOutput(SyncSession&)> fn) {
  auto out = std::make_shared<SessionOutput>();
  auto self = shared_from_this();
  LedgerWorker::Task t;
  t.mutating = true;
  t.run = [self, c, fn = std::move(fn), out](Ledger& ledger) {
    if (!c->session) return;
    *out = fn(*c->session);
    ConnSnapshot s;
    s.established = c->session->established();
    s.peer_vv = c->session->peer_vv();
    auto vv = ledger.store().version_vector();
    if (vv.is_ok()) s.own_vv = *vv;
    s.stats = c->session->stats();
    s.peer_wall_ms = c->session->peer_wall_ms();
    s.hello_local_ms = c->session->hello_local_ms();
    std::lock_guard<std::mutex> lock(self->mu);
    s.software_version = std::move(c->snap.software_version);
    s.schema_version = c->snap.schema_version;
    c->snap = std::move(s);
  };
  t.done = [self, c, out](bool durable) {
    asio::post(self->io, [self, c, out, durable]() {
      if (!durable) {
        self->close_conn(c, "a batch holding this session's work failed to commit");
        return;
      }
      self->apply_output(c, std::move(*out));
    });
  };
  if (!worker.submit(std::move(t))) close_conn(c, worker_refusal());
}

// A message from a link (io thread): decoded and its ops' signatures checked on the verifier
// thread, then handed to the session on the worker, in arrival order.
void PeerManager::Impl::receive(const std::shared_ptr<Conn>& c, sync::Bytes msg) {
  const std::uint64_t now = clock.now_ms();
  std::weak_ptr<Impl> weak_self = shared_from_this();
  auto job = [weak_self, c, msg = std::move(msg), now](bool cancelled) {
    auto self = weak_self.lock();
    if (cancelled || !self) return;
    auto decoded = std::make_shared<Result<sync::Message>>(sync::decode_message(msg));
    if (decoded->is_ok()) self->preverify(**decoded);
    const std::size_t size = msg.size();
    asio::post(self->io, [self, c, decoded, size, now] {
      if (c->closed) return;
      self->conn_task(c, [decoded, size, now](SyncSession& s) {
        return s.on_decoded(std::move(*decoded), size, now);
      });
    });
  };
  if (stopping) return;
  if (!verifier->submit(std::move(job))) close_conn(c, "signature verifier queue is full");
}

// Verifier thread: checks each op of an OPS message under its origin's key in the current
// roster and records the ones that verify. Ops it cannot check (unknown origin, this node's
// own ops) or that fail are left to ingest, which checks and refuses them itself.
// The batch is split in two: the second half goes to the helper thread while this thread
// checks the first, so a catching-up node verifies on two cores while the worker stores the
// previous batch.
void PeerManager::Impl::preverify(const sync::Message& m) {
  const auto* ops = std::get_if<sync::OpsMsg>(&m);
  if (ops == nullptr || ops->ops.empty()) return;
  auto roster = current_roster();
  if (!roster) return;
  auto check = [this, roster](const sync::SignedOp* from, const sync::SignedOp* to) {
    for (const sync::SignedOp* op = from; op != to; ++op) {
      auto key = roster->signing_key(op->op.origin);
      if (key && sync::verify_op(*op, *key).is_ok()) verified->add(op->hash, *key);
    }
  };
  const sync::SignedOp* begin = ops->ops.data();
  const sync::SignedOp* end = begin + ops->ops.size();
  const sync::SignedOp* mid = begin + ops->ops.size() / 2;
  std::promise<void> helped;
  auto done = helped.get_future();
  if (mid == begin || !verify_helper->submit([&check, mid, end, &helped](bool cancelled) {
        if (!cancelled) check(mid, end);
        helped.set_value();
      })) {
    check(begin, end);  // one op, or the helper is stopping: all here
    return;
  }
  check(begin, mid);
  done.wait();  // the helper runs every job it accepted (cancelled ones return at once)
}

void PeerManager::Impl::apply_output(const std::shared_ptr<Conn>& c, SessionOutput out) {
  if (c->closed) return;
  for (auto& bytes : out.send) {
    Status st = c->link->send(std::move(bytes));
    if (!st.is_ok()) {
      close_conn(c, "send failed: " + st.message());
      return;
    }
  }
  for (auto& ev : out.events) handle_event(c, ev);
  if (out.close) {
    log(LogLevel::kWarn, "sync session closed", {{"peer", c->name}, {"reason", out.close_reason}});
    close_conn(c, out.close_reason);
  }
}

void PeerManager::Impl::handle_event(const std::shared_ptr<Conn>& c, SessionEvent& ev) {
  const std::uint64_t now = broker_now_ms();
  switch (ev.kind) {
    case SessionEvent::Kind::kHello:
      on_hello(c, ev.hello);
      break;
    case SessionEvent::Kind::kIngested:
    case SessionEvent::Kind::kEquivocation:
      if (ev.ingest.applied > 0) {
        log(LogLevel::kDebug, "applied ops from peer",
            {{"peer", c->name}, {"ops", std::to_string(ev.ingest.applied)}});
        pump_all(c->id);  // store-and-forward to everyone else
      }
      for (const auto& e : ev.ingest.equivocations)
        log(LogLevel::kWarn, "equivocation", {{"peer", c->name}, {"detail", e}});
      break;
    case SessionEvent::Kind::kAcked:
      break;
    case SessionEvent::Kind::kRightsReply:
      log(LogLevel::kInfo, "rights reply",
          {{"peer", c->name},
           {"granted", std::to_string(ev.reply.granted)},
           {"reason", ev.reply.reason}});
      [[fallthrough]];
    case SessionEvent::Kind::kRightsRequest:
      run_broker(*broker_on_session_event(broker, c->id, ev, now));
      break;
    case SessionEvent::Kind::kPeerError:
      log(LogLevel::kWarn, "peer closed the sync session",
          {{"peer", c->name}, {"reason", ev.message}});
      break;
  }
}

// The peer's HELLO: the session is established, so the broker may ask this peer and hear it.
void PeerManager::Impl::on_hello(const std::shared_ptr<Conn>& c, const sync::HelloMsg& hello) {
  std::int64_t skew =
      static_cast<std::int64_t>(hello.wall_ms) - static_cast<std::int64_t>(clock.now_ms());
  log(LogLevel::kInfo, "sync session open",
      {{"peer", c->name},
       {"clock_skew_ms", std::to_string(skew)},
       {"peer_version", hello.software_version}});
  {
    std::lock_guard<std::mutex> lock(mu);
    c->snap.software_version = hello.software_version;
    c->snap.schema_version = hello.schema_version;
  }
  if (std::llabs(skew) > kClockSkewAlertMs) {
    alert("clock_skew", sync::id_hex(c->peer),
          c->name + " clock differs by " + std::to_string(skew / 1000) + " s");
  }
  broker_link_up(c);
}

void PeerManager::Impl::pump_all(std::uint64_t except_id) {
  for (auto& [id, c] : conns) {
    if (id == except_id || c->closed) continue;
    conn_task(c, [](SyncSession& s) { return s.pump(); });
  }
}

void PeerManager::Impl::schedule_pump_timer() {
  pump_timer.expires_after(std::chrono::milliseconds(config.sync_interval_ms));
  auto self = shared_from_this();
  pump_timer.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->stopping) return;
    self->refresh_roster();
    self->touch_contacts();
    self->pump_all();
    self->schedule_pump_timer();
  });
}

}  // namespace outpost::node
