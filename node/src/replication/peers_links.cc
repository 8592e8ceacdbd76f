// PeerManager, link lifecycle (peers_impl.h): admitting a link, its session's start, its close,
// dialing configured peers with jittered exponential backoff, the operator's partition switch,
// and each peer's last contact. io thread, except where a worker task says otherwise.
#include "outpost/node/log.h"
#include "peers_impl.h"

namespace outpost::node {

namespace {
constexpr std::size_t kLinkHistoryMax = 20;
}  // namespace

PeerManager::Impl::Impl(asio::io_context& io, LedgerWorker& worker, const Config& config,
                        sync::Clock& clock, LinkContext ctx)
    : io(io),
      worker(worker),
      config(config),
      clock(clock),
      ctx(std::move(ctx)),
      pump_timer(io),
      rebalance_timer(io),
      rng(clock.random_u64()),
      verified(std::make_shared<VerifiedSignatures>()),
      verifier(std::make_unique<JobThread>(kVerifierQueueMax)),
      verify_helper(std::make_unique<JobThread>(1)),
      checkpoint_timer(io),
      checkpointer(std::make_unique<JobThread>(1)),
      broker([&config] {
        sync::BrokerPolicy p;
        p.relay = config.role == "hq";  // HQ gathers rights from the stores for a requester
        return p;
      }()),
      broker_timer(io) {}

std::shared_ptr<const sync::Roster> PeerManager::Impl::current_roster() {
  std::lock_guard<std::mutex> lock(mu);
  return roster;
}

void PeerManager::Impl::set_roster(std::shared_ptr<const sync::Roster> r) {
  std::lock_guard<std::mutex> lock(mu);
  roster = std::move(r);
}

void PeerManager::Impl::record(const std::string& peer, const std::string& what) {
  std::lock_guard<std::mutex> lock(mu);
  auto& h = history[peer];
  h.push_back({clock.now_ms(), what});
  while (h.size() > kLinkHistoryMax) h.pop_front();
}

void PeerManager::Impl::alert(const std::string& kind, const std::string& node,
                              const std::string& msg) {
  LedgerWorker::Task t;
  t.mutating = true;
  t.run = [kind, node, msg](Ledger& l) { l.raise_alert(kind, node, msg); };
  (void)worker.submit(std::move(t));
}

// The wall-clock time of the last authenticated frame a link delivered.
std::uint64_t PeerManager::Impl::last_frame_ms(const Conn& c, std::uint64_t now) {
  const std::uint64_t age = c.link->ms_since_last_frame();
  return now > age ? now - age : 0;
}

// Writes peers' last contact on the worker (best effort: a full queue skips one write).
void PeerManager::Impl::persist_contacts(std::vector<storage::PeerContact> rows) {
  if (rows.empty()) return;
  LedgerWorker::Task t;
  t.mutating = true;
  t.run = [rows = std::move(rows)](Ledger& l) {
    for (const auto& r : rows) {
      if (Status st = l.store().put_peer_contact(r); !st.is_ok()) {
        log(LogLevel::kWarn, "cannot record a peer's last contact", {{"reason", st.message()}});
        return;
      }
    }
  };
  (void)worker.submit(std::move(t));
}

// Notes every live link's last frame; writes those not written for a while.
void PeerManager::Impl::touch_contacts() {
  const std::uint64_t now = clock.now_ms();
  std::vector<storage::PeerContact> rows;
  for (auto& [id, c] : conns) {
    if (c->closed) continue;
    if (auto row = contacts.touch(c->peer, last_frame_ms(*c, now), now)) rows.push_back(*row);
  }
  persist_contacts(std::move(rows));
}

void PeerManager::Impl::attach(const std::shared_ptr<Link>& link, int slot) {
  auto c = std::make_shared<Conn>();
  c->id = next_conn_id++;
  c->link = link;
  c->slot = slot;
  c->peer = link->peer_id();
  c->name = link->peer_certificate().name;
  c->role = sync::role_name(link->peer_certificate().role);
  c->address = link->peer_address();
  c->connected_ms = clock.now_ms();
  conns[c->id] = c;
  {
    std::lock_guard<std::mutex> lock(mu);
    links_up = conns.size();
  }
  if (slot >= 0) {
    slots[slot].conn_id = c->id;
    slots[slot].peer = c->peer;
    slots[slot].last_error.clear();
  }
  const char* direction = slot >= 0 ? "outbound" : "inbound";
  PeerContacts::Peer shown;
  shown.name = c->name;
  shown.role = c->role;
  shown.address = c->address;
  shown.direction = direction;
  persist_contacts({contacts.link_up(c->peer, shown, c->connected_ms)});
  record(c->name, std::string("connected (") + direction + ", " + c->address + ")");
  log(LogLevel::kInfo, "link up",
      {{"peer", c->name}, {"address", c->address}, {"direction", direction}});
  auto self = shared_from_this();
  std::weak_ptr<Conn> weak = c;
  link->set_handlers(
      [self, weak](sync::Bytes msg) {
        auto c = weak.lock();
        if (!c || c->closed) return;
        self->receive(c, std::move(msg));
      },
      [self, weak](const Status& reason) {
        auto c = weak.lock();
        if (c) self->on_closed(c, reason);
      });
  start_session(c);
}

// Creates the link's session on the worker thread and sends its HELLO.
void PeerManager::Impl::start_session(const std::shared_ptr<Conn>& c) {
  auto self = shared_from_this();
  const std::uint64_t now = clock.now_ms();
  LedgerWorker::Task t;
  auto out = std::make_shared<sync::SessionOutput>();
  t.mutating = false;
  t.run = [self, c, out, now](Ledger& ledger) {
    c->store = make_ledger_sync_store(ledger, self->clock, self->config.role == "hq",
                                      self->on_roster_accepted, c->link->peer_certificate());
    // Bound to the link: a HELLO naming another node than it authenticated is refused.
    c->session = std::make_unique<sync::SyncSession>(*c->store, c->link->peer_id());
    *out = c->session->start(now);
  };
  t.done = [self, c, out](bool ran) {
    asio::post(self->io, [self, c, out, ran] {
      // Not run (the worker latched a failed commit, or is stopping): no session to speak for.
      if (!ran) {
        self->close_conn(c, self->worker_refusal());
        return;
      }
      self->apply_output(c, std::move(*out));
    });
  };
  if (!worker.submit(std::move(t))) close_conn(c, worker_refusal());
}

std::string PeerManager::Impl::worker_refusal() const {
  const Status failure = worker.failure();
  if (!failure.is_ok())
    return "the ledger worker stopped after a failed commit: " + failure.message();
  return "ledger worker queue is full";
}

void PeerManager::Impl::close_conn(const std::shared_ptr<Conn>& c, const std::string& why) {
  if (c->closed || !c->link) return;
  c->link->close(Status::unavailable(why));
}

void PeerManager::Impl::on_closed(const std::shared_ptr<Conn>& c, const Status& reason) {
  if (c->closed) return;
  c->closed = true;
  conns.erase(c->id);
  {
    std::lock_guard<std::mutex> lock(mu);
    links_up = conns.size();
  }
  std::string why = reason.is_ok() ? "closed" : reason.message();
  const std::uint64_t now = clock.now_ms();
  persist_contacts({contacts.link_down(c->peer, last_frame_ms(*c, now), now, why)});
  record(c->name, "disconnected: " + why);
  log(LogLevel::kInfo, "link down", {{"peer", c->name}, {"reason", why}});
  broker_link_down(*c);  // rights requests waiting on this link move on
  LedgerWorker::Task t;
  t.run = [c](Ledger&) {
    c->session.reset();
    c->store.reset();
  };
  (void)worker.submit(std::move(t));
  if (c->slot >= 0) {
    Slot& s = slots[c->slot];
    s.conn_id = 0;
    s.last_error = why;
    const bool stable = now - c->connected_ms >= static_cast<std::uint64_t>(kLinkStableMs);
    s.failures = reason.is_ok() || stable ? 0 : s.failures + 1;  // backoff grows on refusals
    schedule_dial(c->slot);
  }
}

void PeerManager::Impl::schedule_dial(int idx) {
  if (stopping || partitioned) return;
  Slot& s = slots[idx];
  int base = std::min(kBackoffMaxMs, kBackoffMinMs << std::min<std::uint32_t>(s.failures, 8));
  std::uniform_int_distribution<int> jitter(base / 2, base + base / 2);
  int delay = jitter(rng);
  s.next_attempt_ms = clock.now_ms() + static_cast<std::uint64_t>(delay);
  if (!s.timer) s.timer = std::make_unique<asio::steady_timer>(io);
  s.timer->expires_after(std::chrono::milliseconds(delay));
  auto self = shared_from_this();
  s.timer->async_wait([self, idx](const boost::system::error_code& ec) {
    if (!ec) self->dial(idx);
  });
}

void PeerManager::Impl::dial(int idx) {
  if (stopping || partitioned) return;
  Slot& s = slots[idx];
  if (s.conn_id != 0 || s.connecting) return;
  s.connecting = true;
  auto self = shared_from_this();
  async_connect(io, s.cfg.address, ctx, [self, idx](Result<std::shared_ptr<Link>> r) {
    asio::post(self->io,
               [self, idx, r = std::move(r)]() mutable { self->on_dialed(idx, std::move(r)); });
  });
}

void PeerManager::Impl::on_dialed(int idx, Result<std::shared_ptr<Link>> r) {
  Slot& s = slots[idx];
  s.connecting = false;
  if (!r.is_ok()) {
    s.failures++;
    if (s.last_error != r.status().message()) {
      log(LogLevel::kInfo, "cannot reach peer",
          {{"peer", s.cfg.name},
           {"address", s.cfg.address.to_string()},
           {"reason", r.status().message()}});
    }
    s.last_error = r.status().message();
    if (r.status().code() == Code::kPermission) {
      alert("link_refused", "", s.cfg.name + ": " + r.status().message());
    }
    schedule_dial(idx);
    return;
  }
  if (stopping || partitioned) {
    (*r)->close(Status::unavailable("partitioned by operator"));
    return;
  }
  attach(*r, idx);
}

void PeerManager::Impl::set_partitioned(bool down) {
  if (partitioned == down) return;
  partitioned = down;
  {
    std::lock_guard<std::mutex> lock(mu);
    partitioned_view = down;
  }
  log(LogLevel::kWarn, down ? "links taken down by operator" : "links brought up by operator");
  if (down) {
    std::vector<std::shared_ptr<Conn>> all;
    for (auto& [id, c] : conns) all.push_back(c);
    for (auto& c : all) close_conn(c, "partitioned by operator");
    for (auto& s : slots) {
      if (s.timer) s.timer->cancel();
    }
  } else {
    for (std::size_t i = 0; i < slots.size(); ++i) dial(static_cast<int>(i));
  }
}

}  // namespace outpost::node
