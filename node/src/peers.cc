#include "outpost/node/peers.h"

#include <boost/asio.hpp>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "outpost/base/version.h"
#include "outpost/node/api.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/hq_view.h"
#include "outpost/node/job_thread.h"
#include "outpost/node/log.h"
#include "outpost/sync/session.h"

namespace outpost::node {

namespace asio = boost::asio;
using sync::SessionEvent;
using sync::SessionOutput;
using sync::SyncSession;
using sync::VersionVector;

namespace {

constexpr std::size_t kLinkHistoryMax = 20;
constexpr std::int64_t kClockSkewAlertMs = 5 * 60 * 1000;

std::uint64_t vv_get(const VersionVector& vv, const sync::NodeId& id) {
  auto it = vv.find(id);
  return it == vv.end() ? 0 : it->second;
}

// The node's data as a sync::SyncStore, for the session of one link: `peer` is the certificate
// that link authenticated, and every decision about who the peer is (fence, alerts) uses it.
// Used only on the worker thread.
class LedgerSyncStore final : public sync::SyncStore {
 public:
  LedgerSyncStore(Ledger& ledger, sync::Clock& clock, bool is_hq, std::function<void()> on_roster,
                  sync::Certificate peer)
      : l_(ledger),
        clock_(clock),
        is_hq_(is_hq),
        on_roster_(std::move(on_roster)),
        peer_(std::move(peer)) {}
  sync::NodeId self() const override { return l_.node_id(); }
  Result<VersionVector> version_vector() override { return l_.store().version_vector(); }
  Result<std::vector<sync::SignedOp>> ops_from(const sync::NodeId& origin, std::uint64_t from_seq,
                                               std::size_t max_ops) override {
    return l_.store().ops_of_origin(origin, from_seq, max_ops);
  }
  Result<sync::IngestReport> ingest(const std::vector<sync::SignedOp>& ops) override {
    return l_.ingest(ops, peer_.node_id);
  }
  std::string software_version() const override { return kSoftwareVersion; }
  std::uint32_t schema_version() const override { return static_cast<std::uint32_t>(storage::kSchemaVersion); }
  // Runs inside the worker task that handles the HELLO, so no op is signed between learning what
  // the peer holds of this node's log and fencing on it. The session already refused a HELLO
  // that names another node than the authenticated one; who the peer is comes from its
  // certificate, never from the HELLO.
  Status on_peer_hello(const sync::HelloMsg& hello) override {
    const bool is_hq = peer_.role == sync::NodeRole::kHq;
    return l_.observe_peer_hello(peer_.name, is_hq, vv_get(hello.vv, l_.node_id()));
  }
  std::uint64_t blob_version(sync::BlobKind kind) override {
    switch (kind) {
      case sync::BlobKind::kRoster: return l_.roster() ? l_.roster()->version : 0;
      case sync::BlobKind::kRules: return l_.signed_rules_version();
      case sync::BlobKind::kTreeHeads: return l_.tree_head_version();
    }
    return 0;
  }
  std::optional<sync::BlobMsg> blob(sync::BlobKind kind) override {
    sync::BlobMsg b;
    b.kind = kind;
    auto fill = [&b](const auto& doc) -> std::optional<sync::BlobMsg> {
      if (!doc.is_ok() || !*doc) return std::nullopt;
      b.version = (*doc)->version;
      b.body = (*doc)->body;
      b.sig.assign((*doc)->sig.begin(), (*doc)->sig.end());
      return b;
    };
    switch (kind) {
      case sync::BlobKind::kRoster: return fill(l_.store().latest_roster());
      case sync::BlobKind::kRules: return fill(l_.store().latest_rules());
      case sync::BlobKind::kTreeHeads: return fill(l_.store().latest_tree_head_set());
    }
    return std::nullopt;
  }
  Status offer_blob(const sync::BlobMsg& b) override {
    if (b.kind == sync::BlobKind::kRules || b.kind == sync::BlobKind::kTreeHeads) {
      Status st = b.kind == sync::BlobKind::kRules ? l_.accept_rules(b.body, b.sig) : l_.accept_tree_heads(b.body, b.sig);
      if (st.code() == Code::kRefused) return Status::ok();  // stale (or not yet usable) offer
      return st;
    }
    Status st = l_.accept_roster(b.body, b.sig);
    if (st.code() == Code::kRefused) return Status::ok();  // stale offer
    if (st.is_ok()) {
      log(LogLevel::kInfo, "accepted roster from peer", {{"version", std::to_string(b.version)}});
      if (on_roster_) on_roster_();
    }
    return st;
  }
  bool defer_rights_requests() const override { return true; }
  // Alerts flow to HQ only, each node sending its own (docs/sync-protocol.md "Alerts"): HQ asks
  // every peer for them, a store sends them only to a peer the roster lists as HQ.
  // The session names the peer of its HELLO, which it has already checked against the link;
  // the decisions here use the link's certificate all the same.
  Result<std::optional<std::uint64_t>> alerts_wanted_from(const sync::NodeId&) override {
    if (!is_hq_) return std::optional<std::uint64_t>{};
    OUTPOST_ASSIGN_OR_RETURN(std::int64_t held, l_.store().peer_alerts_cursor(peer_.node_id));
    return std::optional<std::uint64_t>{static_cast<std::uint64_t>(held)};
  }
  Result<std::uint64_t> accept_alerts(const sync::NodeId&, const std::vector<sync::AlertRecord>& alerts) override {
    if (!is_hq_) return Status::unsupported("only HQ collects alerts");
    return store_peer_alerts(l_.store(), peer_.node_id, alerts, clock_.now_ms());
  }
  Result<std::vector<sync::AlertRecord>> alerts_for(const sync::NodeId&, std::uint64_t after,
                                                    std::size_t max_alerts) override {
    auto roster = l_.roster();
    const sync::SignedCertificate* sc = roster ? roster->find(peer_.node_id) : nullptr;
    if (sc == nullptr || sc->cert.role != sync::NodeRole::kHq) return std::vector<sync::AlertRecord>{};
    return own_alerts_after(l_.store(), after, max_alerts);
  }

 private:
  Ledger& l_;
  sync::Clock& clock_;
  const bool is_hq_;
  std::function<void()> on_roster_;
  sync::Certificate peer_;
};

struct ConnSnapshot {
  bool established = false;
  VersionVector peer_vv;
  VersionVector own_vv;
  sync::SessionStats stats;
  std::uint64_t peer_wall_ms = 0;
  std::uint64_t hello_local_ms = 0;
  std::string software_version;  // the peer's, from its HELLO
  std::uint32_t schema_version = 0;
};

struct LinkEvent {
  std::uint64_t at_ms;
  std::string what;
};

}  // namespace

struct Conn {
  std::uint64_t id = 0;
  std::shared_ptr<Link> link;
  int slot = -1;  // index of the configured peer that dialed it, -1 for inbound
  sync::NodeId peer{};
  std::string name;
  std::string role;
  std::string address;
  std::uint64_t connected_ms = 0;
  bool closed = false;
  std::unique_ptr<LedgerSyncStore> store;  // worker thread only; outlives the session
  std::unique_ptr<SyncSession> session;    // worker thread only
  ConnSnapshot snap;                     // guarded by Impl::mu
};

struct Slot {
  PeerConfig cfg;
  std::uint32_t failures = 0;
  std::uint64_t conn_id = 0;  // 0 when not connected
  std::optional<sync::NodeId> peer;  // the node its last link reached
  bool connecting = false;
  std::string last_error;
  std::uint64_t next_attempt_ms = 0;
  std::unique_ptr<asio::steady_timer> timer;
};

struct RightsAttempt {
  sync::MemberId member{};
  sync::Account account = sync::Account::kWallet;
  std::uint64_t remaining = 0;
  std::uint64_t granted = 0;
  std::vector<std::shared_ptr<Conn>> candidates;
  std::size_t next = 0;
  std::chrono::steady_clock::time_point deadline;
  std::function<void(bool, bool)> done;
  bool finished = false;
};

struct PendingRights {
  std::shared_ptr<RightsAttempt> attempt;
  std::uint64_t conn_id = 0;
  std::unique_ptr<asio::steady_timer> timer;
};

struct PeerManager::Impl : std::enable_shared_from_this<PeerManager::Impl> {
  Impl(asio::io_context& io, LedgerWorker& worker, const Config& config, sync::Clock& clock, LinkContext ctx)
      : io(io), worker(worker), config(config), clock(clock), ctx(std::move(ctx)), pump_timer(io),
        rebalance_timer(io), rng(std::random_device{}()),
        verified(std::make_shared<VerifiedSignatures>()),
        verifier(std::make_unique<JobThread>(kVerifierQueueMax)),
        verify_helper(std::make_unique<JobThread>(1)),
        checkpoint_timer(io),
        checkpointer(std::make_unique<JobThread>(1)) {}

  asio::io_context& io;
  LedgerWorker& worker;
  Config config;
  sync::Clock& clock;
  LinkContext ctx;
  std::unique_ptr<LinkListener> listener;
  std::function<void()> on_roster_accepted;  // worker thread only
  asio::steady_timer pump_timer;
  asio::steady_timer rebalance_timer;
  sync::MemberId rebalance_cursor{};  // worker thread only
  std::mt19937_64 rng;
  // Received messages are decoded, and the signatures of their ops checked, on the verifier
  // thread before they reach the worker, so ingest (one batch at a time on the worker) does not
  // also spend its core on Ed25519. Every message of every link goes through it in order.
  // Bounded: at most kSyncWindowBatches OPS messages per session are in flight anyway.
  static constexpr std::size_t kVerifierQueueMax = 1024;
  std::shared_ptr<VerifiedSignatures> verified;
  std::unique_ptr<JobThread> verifier;
  std::unique_ptr<JobThread> verify_helper;  // takes half of each batch (preverify)
  // HQ: signs checkpoints and tree head sets on its own thread and connection (hq_checkpoint),
  // so that neither the io thread nor the worker waits for the Merkle work.
  asio::steady_timer checkpoint_timer;
  std::unique_ptr<JobThread> checkpointer;
  bool checkpoint_running = false;  // io thread only

  // io thread only
  std::map<std::uint64_t, std::shared_ptr<Conn>> conns;
  std::vector<Slot> slots;
  std::map<std::uint64_t, PendingRights> pending;
  std::uint64_t next_conn_id = 1;
  std::uint64_t next_request_id = 1;
  bool partitioned = false;
  bool stopping = false;

  // guarded by mu: what the admin API reads
  mutable std::mutex mu;
  std::map<std::string, std::deque<LinkEvent>> history;  // by peer name
  std::shared_ptr<const sync::Roster> roster;
  std::size_t links_up = 0;
  bool partitioned_view = false;
  std::string listen_address;
  sync::NodeId self_id{};
  PeerContacts contacts;  // thread-safe itself; read under mu by peers_json

  std::shared_ptr<const sync::Roster> current_roster() {
    std::lock_guard<std::mutex> lock(mu);
    return roster;
  }

  void set_roster(std::shared_ptr<const sync::Roster> r) {
    std::lock_guard<std::mutex> lock(mu);
    roster = std::move(r);
  }

  void record(const std::string& peer, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    auto& h = history[peer];
    h.push_back({clock.now_ms(), what});
    while (h.size() > kLinkHistoryMax) h.pop_front();
  }

  // --- worker tasks on a connection's session ---
  void conn_task(const std::shared_ptr<Conn>& c, std::function<SessionOutput(SyncSession&)> fn) {
    auto out = std::make_shared<SessionOutput>();
    auto self = shared_from_this();
    LedgerWorker::Task t;
    t.mutating = true;
    t.run = [self, c, fn, out](Ledger& ledger) {
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
    if (!worker.submit(std::move(t))) close_conn(c, "ledger worker queue is full");
  }

  // A message from a link (io thread): decoded and its ops' signatures checked on the verifier
  // thread, then handed to the session on the worker, in arrival order.
  void receive(const std::shared_ptr<Conn>& c, sync::Bytes msg) {
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
        self->conn_task(c, [decoded, size, now](SyncSession& s) { return s.on_decoded(std::move(*decoded), size, now); });
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
  void preverify(const sync::Message& m) {
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

  void close_conn(const std::shared_ptr<Conn>& c, const std::string& why) {
    if (c->closed || !c->link) return;
    c->link->close(Status::unavailable(why));
  }

  void apply_output(const std::shared_ptr<Conn>& c, SessionOutput out) {
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

  void handle_event(const std::shared_ptr<Conn>& c, SessionEvent& ev) {
    switch (ev.kind) {
      case SessionEvent::Kind::kHello: {
        std::int64_t skew = static_cast<std::int64_t>(ev.hello.wall_ms) - static_cast<std::int64_t>(clock.now_ms());
        log(LogLevel::kInfo, "sync session open", {{"peer", c->name}, {"clock_skew_ms", std::to_string(skew)},
                                                    {"peer_version", ev.hello.software_version}});
        {
          std::lock_guard<std::mutex> lock(mu);
          c->snap.software_version = ev.hello.software_version;
          c->snap.schema_version = ev.hello.schema_version;
        }
        if (std::llabs(skew) > kClockSkewAlertMs) {
          alert("clock_skew", sync::id_hex(c->peer), c->name + " clock differs by " + std::to_string(skew / 1000) + " s");
        }
        break;
      }
      case SessionEvent::Kind::kIngested:
      case SessionEvent::Kind::kEquivocation:
        if (ev.ingest.applied > 0) {
          log(LogLevel::kDebug, "applied ops from peer", {{"peer", c->name}, {"ops", std::to_string(ev.ingest.applied)}});
          pump_all(c->id);  // store-and-forward to everyone else
        }
        for (const auto& e : ev.ingest.equivocations) log(LogLevel::kWarn, "equivocation", {{"peer", c->name}, {"detail", e}});
        break;
      case SessionEvent::Kind::kAcked:
        break;
      case SessionEvent::Kind::kRightsReply:
        on_rights_reply(ev.reply);
        break;
      case SessionEvent::Kind::kRightsRequest:
        on_rights_request(c, ev.request);
        break;
      case SessionEvent::Kind::kPeerError:
        log(LogLevel::kWarn, "peer closed the sync session", {{"peer", c->name}, {"reason", ev.message}});
        break;
    }
  }

  // The wall-clock time of the last authenticated frame a link delivered.
  static std::uint64_t last_frame_ms(const Conn& c, std::uint64_t now) {
    const std::uint64_t age = c.link->ms_since_last_frame();
    return now > age ? now - age : 0;
  }

  // Writes peers' last contact on the worker (best effort: a full queue skips one write).
  void persist_contacts(std::vector<storage::PeerContact> rows) {
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
  void touch_contacts() {
    const std::uint64_t now = clock.now_ms();
    std::vector<storage::PeerContact> rows;
    for (auto& [id, c] : conns) {
      if (c->closed) continue;
      if (auto row = contacts.touch(c->peer, last_frame_ms(*c, now), now)) rows.push_back(*row);
    }
    persist_contacts(std::move(rows));
  }

  void alert(const std::string& kind, const std::string& node, const std::string& msg) {
    LedgerWorker::Task t;
    t.mutating = true;
    t.run = [kind, node, msg](Ledger& l) { l.raise_alert(kind, node, msg); };
    (void)worker.submit(std::move(t));
  }

  // --- links ---
  void attach(std::shared_ptr<Link> link, int slot) {
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
    PeerContacts::Peer shown;
    shown.name = c->name;
    shown.role = c->role;
    shown.address = c->address;
    shown.direction = slot >= 0 ? "outbound" : "inbound";
    persist_contacts({contacts.link_up(c->peer, shown, c->connected_ms)});
    record(c->name, std::string("connected (") + (slot >= 0 ? "outbound" : "inbound") + ", " + c->address + ")");
    log(LogLevel::kInfo, "link up", {{"peer", c->name}, {"address", c->address}, {"direction", slot >= 0 ? "outbound" : "inbound"}});
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
    // Create the session on the worker thread and send HELLO.
    std::uint64_t now = clock.now_ms();
    LedgerWorker::Task t;
    auto out = std::make_shared<SessionOutput>();
    t.mutating = false;
    t.run = [self, c, out, now](Ledger& ledger) {
      c->store = std::make_unique<LedgerSyncStore>(ledger, self->clock, self->config.role == "hq",
                                                   self->on_roster_accepted,
                                                   c->link->peer_certificate());
      // Bound to the link: a HELLO naming another node than it authenticated is refused.
      c->session = std::make_unique<SyncSession>(*c->store, c->link->peer_id());
      *out = c->session->start(now);
    };
    t.done = [self, c, out](bool) { asio::post(self->io, [self, c, out] { self->apply_output(c, std::move(*out)); }); };
    if (!worker.submit(std::move(t))) close_conn(c, "ledger worker queue is full");
  }

  void on_closed(const std::shared_ptr<Conn>& c, const Status& reason) {
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
    // Fail the rights requests that were waiting on this link.
    std::vector<std::uint64_t> ids;
    for (auto& [id, p] : pending) {
      if (p.conn_id == c->id) ids.push_back(id);
    }
    for (auto id : ids) rights_timeout(id);
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
      const bool stable = clock.now_ms() - c->connected_ms >= static_cast<std::uint64_t>(kLinkStableMs);
      s.failures = reason.is_ok() || stable ? 0 : s.failures + 1;  // backoff grows on refusals
      schedule_dial(c->slot);
    }
  }

  void schedule_dial(int idx) {
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

  void dial(int idx) {
    if (stopping || partitioned) return;
    Slot& s = slots[idx];
    if (s.conn_id != 0 || s.connecting) return;
    s.connecting = true;
    auto self = shared_from_this();
    async_connect(io, s.cfg.address, ctx, [self, idx](Result<std::shared_ptr<Link>> r) {
      asio::post(self->io, [self, idx, r = std::move(r)]() mutable {
        Slot& s = self->slots[idx];
        s.connecting = false;
        if (!r.is_ok()) {
          s.failures++;
          if (s.last_error != r.status().message()) {
            log(LogLevel::kInfo, "cannot reach peer", {{"peer", s.cfg.name}, {"address", s.cfg.address.to_string()}, {"reason", r.status().message()}});
          }
          s.last_error = r.status().message();
          if (r.status().code() == Code::kPermission) {
            self->alert("link_refused", "", s.cfg.name + ": " + r.status().message());
          }
          self->schedule_dial(idx);
          return;
        }
        if (self->stopping || self->partitioned) {
          (*r)->close(Status::unavailable("partitioned by operator"));
          return;
        }
        self->attach(*r, idx);
      });
    });
  }

  // --- pushing ---
  void pump_all(std::uint64_t except_id = 0) {
    for (auto& [id, c] : conns) {
      if (id == except_id || c->closed) continue;
      conn_task(c, [](SyncSession& s) { return s.pump(); });
    }
  }

  void schedule_pump_timer() {
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

  void schedule_checkpoint() {
    if (config.role != "hq" || config.checkpoint.interval_ms == 0 || stopping) return;
    checkpoint_timer.expires_after(std::chrono::milliseconds(config.checkpoint.interval_ms));
    auto self = shared_from_this();
    checkpoint_timer.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->stopping) return;
      self->checkpoint_once();
    });
  }

  void checkpoint_once() {
    if (checkpoint_running) return schedule_checkpoint();
    checkpoint_running = true;
    std::weak_ptr<Impl> weak_self = shared_from_this();
    const std::string dir = config.data_dir;
    auto job = [weak_self, dir](bool cancelled) {
      auto self = weak_self.lock();
      if (cancelled || !self) return;
      auto r = hq_checkpoint(dir, self->clock);
      asio::post(self->io, [self, r = std::move(r)] {
        self->checkpoint_running = false;
        if (!r.is_ok()) {
          const bool no_root = r.status().code() == Code::kNotFound || r.status().code() == Code::kPermission;
          log(no_root ? LogLevel::kInfo : LogLevel::kWarn,
              no_root ? "no root key here: HQ checkpoints are signed where it is kept (outpost hq checkpoint)"
                      : "cannot sign checkpoints",
              {{"reason", r.status().message()}});
          if (no_root) return;  // stop trying: the key will not appear while we run
          return self->schedule_checkpoint();
        }
        if ((*r)["tree_heads"].value("new", false)) {
          log(LogLevel::kInfo, "signed a new tree head set",
              {{"version", std::to_string((*r)["tree_heads"].value("version", 0))},
               {"checkpoints", std::to_string((*r).value("signed", 0))}});
          self->refresh_roster();  // also re-reads the tree head version on the worker
          self->pump_all();        // the worker runs the refresh first: sessions offer the new set
        }
        self->schedule_checkpoint();
      });
    };
    if (!checkpointer->submit(std::move(job))) checkpoint_running = false;
  }

  // The rebalancer: every rebalance.interval_ms, one bounded page of members on the worker; the
  // move ops it makes are pushed to the peers at once.
  void schedule_rebalance() {
    if (!config.rebalance.enabled) return;
    rebalance_timer.expires_after(std::chrono::milliseconds(config.rebalance.interval_ms));
    auto self = shared_from_this();
    rebalance_timer.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->stopping) return;
      self->rebalance_once();
      self->schedule_rebalance();
    });
  }

  void rebalance_once() {
    auto self = shared_from_this();
    auto moved = std::make_shared<std::size_t>(0);
    sync::RebalancePolicy policy;
    policy.idle_ms = config.rebalance.idle_ms;
    policy.recent_ms = config.rebalance.recent_ms;
    policy.keep_percent = config.rebalance.keep_percent;
    const std::size_t page = config.rebalance.members_per_tick;
    LedgerWorker::Task t;
    t.mutating = true;
    t.run = [self, moved, policy, page](Ledger& l) {
      auto r = l.rebalance(&self->rebalance_cursor, page, self->clock.now_ms(), policy);
      if (!r.is_ok()) {
        log(LogLevel::kWarn, "rebalancer failed", {{"reason", r.status().message()}});
        return;
      }
      for (const auto& m : *r) log(LogLevel::kInfo, "rebalancer moved idle rights", {{"move", m}});
      *moved = r->size();
    };
    t.done = [self, moved](bool durable) {
      if (durable && *moved > 0) asio::post(self->io, [self] { self->pump_all(); });
    };
    (void)worker.submit(std::move(t));  // a full queue skips one tick
  }

  // Picks up a roster or program rules another process wrote into the database (`outpost hq
  // enroll`, `hq revoke`, `hq rules` on a running HQ): the links see a roster at once (a revoked
  // peer's link closes) and the sessions offer both to their peers on the next pump.
  void refresh_roster() {
    auto self = shared_from_this();
    LedgerWorker::Task t;
    t.run = [self](Ledger& ledger) {
      auto changed = ledger.refresh_roster();
      if (!changed.is_ok()) {
        log(LogLevel::kWarn, "cannot re-read the roster", {{"reason", changed.status().message()}});
      }
      auto rules = ledger.refresh_rules();
      if (!rules.is_ok()) {
        log(LogLevel::kWarn, "cannot re-read the program rules", {{"reason", rules.status().message()}});
      }
      auto heads = ledger.refresh_tree_heads();
      if (!heads.is_ok()) {
        log(LogLevel::kWarn, "cannot re-read HQ's tree head set", {{"reason", heads.status().message()}});
      }
      if (ledger.roster() != self->current_roster()) self->set_roster(ledger.roster());
    };
    (void)worker.submit(std::move(t));
  }

  // --- rights broker ---
  void start_attempt(std::shared_ptr<RightsAttempt> a, const Json& elsewhere, std::uint64_t exclude_conn) {
    std::vector<std::shared_ptr<Conn>> hq, holders;
    for (auto& [id, c] : conns) {
      if (id == exclude_conn || c->closed) continue;
      if (c->role == "hq") {
        hq.push_back(c);
      } else if (elsewhere.is_object() && elsewhere.contains(sync::id_hex(c->peer)) &&
                 elsewhere[sync::id_hex(c->peer)].is_number_integer() && elsewhere[sync::id_hex(c->peer)].get<std::int64_t>() > 0) {
        holders.push_back(c);
      }
    }
    a->candidates = hq;
    a->candidates.insert(a->candidates.end(), holders.begin(), holders.end());
    if (a->candidates.empty()) {
      a->finished = true;
      a->done(false, false);
      return;
    }
    try_next(a);
  }

  void try_next(const std::shared_ptr<RightsAttempt>& a) {
    if (a->finished) return;
    auto now = std::chrono::steady_clock::now();
    if (a->remaining == 0 || a->next >= a->candidates.size() || now >= a->deadline) {
      a->finished = true;
      a->done(true, a->granted > 0);
      return;
    }
    auto c = a->candidates[a->next++];
    if (c->closed) return try_next(a);
    std::uint64_t id = next_request_id++;
    PendingRights p;
    p.attempt = a;
    p.conn_id = c->id;
    p.timer = std::make_unique<asio::steady_timer>(io);
    p.timer->expires_at(a->deadline);
    auto self = shared_from_this();
    p.timer->async_wait([self, id](const boost::system::error_code& ec) {
      if (!ec) self->rights_timeout(id);
    });
    pending[id] = std::move(p);
    auto member = a->member;
    auto account = a->account;
    auto amount = a->remaining;
    log(LogLevel::kInfo, "asking peer for rights", {{"peer", c->name}, {"member", sync::id_hex(member)}, {"amount", std::to_string(amount)}});
    conn_task(c, [id, member, account, amount](SyncSession& s) { return s.request_rights(id, member, account, amount); });
  }

  void rights_timeout(std::uint64_t id) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    auto a = it->second.attempt;
    pending.erase(it);
    try_next(a);
  }

  void on_rights_reply(const sync::RightsReplyMsg& r) {
    auto it = pending.find(r.request_id);
    if (it == pending.end()) return;  // timed out already
    auto a = it->second.attempt;
    it->second.timer->cancel();
    pending.erase(it);
    std::uint64_t got = std::min(r.granted, a->remaining);
    a->granted += got;
    a->remaining -= got;
    log(LogLevel::kInfo, "rights reply", {{"granted", std::to_string(r.granted)}, {"reason", r.reason}});
    try_next(a);
  }

  // Holder side: grant what we hold; HQ relays for the rest from the stores that hold it.
  void on_rights_request(const std::shared_ptr<Conn>& c, const sync::RightsRequestMsg& rq) {
    auto self = shared_from_this();
    auto result = std::make_shared<std::pair<std::uint64_t, Json>>(0, Json::object());
    sync::NodeId to = c->peer;
    LedgerWorker::Task t;
    t.mutating = true;
    t.run = [rq, to, result](Ledger& l) {
      auto g = l.grant_rights(to, rq.member, rq.account, rq.amount);
      result->first = g.is_ok() ? *g : 0;
      auto m = l.member_json(rq.member);
      if (m.is_ok()) {
        const char* acct = rq.account == sync::Account::kPoints ? "points" : "wallet";
        result->second = (*m)[acct]["rights_by_node"];
      }
    };
    t.done = [self, c, rq, result, to](bool durable) {
      asio::post(self->io, [self, c, rq, result, to, durable] {
        std::uint64_t granted = durable ? result->first : 0;
        bool relay = self->config.role == "hq" && granted < rq.amount;
        if (!relay) return self->answer_rights(c, rq.request_id, granted);
        auto a = std::make_shared<RightsAttempt>();
        a->member = rq.member;
        a->account = rq.account;
        a->remaining = rq.amount - granted;
        a->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRightsRelayTimeoutMs);
        a->done = [self, c, rq, granted, to](bool, bool got) {
          if (!got) return self->answer_rights(c, rq.request_id, granted);
          // Rights arrived here from other holders: pass them on to the requester.
          auto more = std::make_shared<std::uint64_t>(0);
          LedgerWorker::Task t2;
          t2.mutating = true;
          std::uint64_t want = rq.amount - granted;
          t2.run = [rq, to, more, want](Ledger& l) {
            auto g = l.grant_rights(to, rq.member, rq.account, want);
            *more = g.is_ok() ? *g : 0;
          };
          t2.done = [self, c, rq, granted, more](bool durable2) {
            std::uint64_t total = granted + (durable2 ? *more : 0);
            asio::post(self->io, [self, c, rq, total] { self->answer_rights(c, rq.request_id, total); });
          };
          if (!self->worker.submit(std::move(t2))) self->answer_rights(c, rq.request_id, granted);
        };
        self->start_attempt(a, result->second, c->id);
      });
    };
    if (!worker.submit(std::move(t))) answer_rights(c, rq.request_id, 0);
  }

  void answer_rights(const std::shared_ptr<Conn>& c, std::uint64_t id, std::uint64_t granted) {
    if (c->closed) return;
    std::string reason = granted ? "" : "no rights available at this node";
    conn_task(c, [id, granted, reason](SyncSession& s) { return s.answer_rights(id, granted, reason); });
  }

  // --- admin ---
  // The link history of a peer, newest first. Requires mu.
  Json history_of(const std::string& name) const {
    Json h = Json::array();
    auto it = history.find(name);
    if (it != history.end()) {
      for (auto e = it->second.rbegin(); e != it->second.rend(); ++e) h.push_back({{"at_ms", e->at_ms}, {"event", e->what}});
    }
    return h;
  }

  // What is known of a peer's contact while it has no link (null: never heard from).
  static void contact_fields(Json& j, const PeerContacts::Peer* p) {
    j["last_contact_ms"] = p && p->last_contact_ms ? Json(p->last_contact_ms) : Json();
    j["down_since_ms"] = p && p->down_since_ms ? Json(p->down_since_ms) : Json();
    j["seen_since_start"] = p != nullptr && p->seen_since_start;
  }

  // A live link. Requires mu.
  Json conn_json(const Conn& c, const std::map<sync::NodeId, PeerContacts::Peer>& known) const {
    const ConnSnapshot& s = c.snap;
    Json j;
    j["name"] = c.name;
    j["node_id"] = sync::id_hex(c.peer);
    j["role"] = c.role;
    j["address"] = c.address;
    j["direction"] = c.slot >= 0 ? "outbound" : "inbound";
    j["state"] = s.established ? "connected" : "handshaking";
    j["connected_since_ms"] = c.connected_ms;
    // Any authenticated frame counts, keepalives too (touch_contacts() just noted the latest).
    auto p = known.find(c.peer);
    j["last_contact_ms"] = p == known.end() ? 0 : p->second.last_contact_ms;
    j["seen_since_start"] = true;
    std::uint64_t pending_to = 0, behind = 0;
    Json pvv = Json::object();
    for (const auto& [origin, seq] : s.own_vv) {
      std::uint64_t theirs = vv_get(s.peer_vv, origin);
      if (seq > theirs) pending_to += seq - theirs;
    }
    for (const auto& [origin, seq] : s.peer_vv) {
      pvv[sync::id_hex(origin)] = seq;
      std::uint64_t ours = vv_get(s.own_vv, origin);
      if (seq > ours) behind += seq - ours;
    }
    j["peer_version_vector"] = pvv;
    j["ops_pending_to_peer"] = pending_to;
    j["ops_behind_peer"] = behind;
    if (!s.software_version.empty()) j["software_version"] = s.software_version;
    if (s.schema_version != 0) j["schema_version"] = s.schema_version;
    j["clock_skew_ms"] = s.hello_local_ms ? static_cast<std::int64_t>(s.peer_wall_ms) - static_cast<std::int64_t>(s.hello_local_ms) : 0;
    j["stats"] = {{"ops_sent", s.stats.ops_sent}, {"ops_received", s.stats.ops_received},
                  {"bytes_sent", s.stats.bytes_sent}, {"bytes_received", s.stats.bytes_received},
                  {"wire_bytes_sent", c.link->wire_bytes_sent()},
                  {"wire_bytes_received", c.link->wire_bytes_received()}};
    j["history"] = history_of(c.name);
    return j;
  }

  // A configured peer without a link: its dial state, and its contact once its node is known
  // (reached this run, or named so in the roster). Requires mu.
  Json slot_json(const Slot& s, const std::map<sync::NodeId, PeerContacts::Peer>& known,
                 std::set<sync::NodeId>& covered) const {
    Json j;
    j["name"] = s.cfg.name.empty() ? s.cfg.address.to_string() : s.cfg.name;
    std::optional<sync::NodeId> id = s.peer;
    if (!id && roster) {
      if (const sync::SignedCertificate* sc = roster->find_by_name(s.cfg.name)) id = sc->cert.node_id;
    }
    if (id) {
      covered.insert(*id);
      j["node_id"] = sync::id_hex(*id);
      auto p = known.find(*id);
      contact_fields(j, p == known.end() ? nullptr : &p->second);
      if (p != known.end() && !p->second.role.empty()) j["role"] = p->second.role;
    }
    j["address"] = s.cfg.address.to_string();
    j["direction"] = "outbound";
    j["state"] = partitioned ? "partitioned" : s.connecting ? "connecting" : "backoff";
    j["failures"] = s.failures;
    j["last_error"] = s.last_error;
    j["next_attempt_ms"] = s.next_attempt_ms;
    j["history"] = history_of(j["name"].get<std::string>());
    return j;
  }

  // A known peer without a link or a configured dial: one that linked before (this run or an
  // earlier one) or, at HQ, any node of the roster. Requires mu.
  Json down_json(const sync::NodeId& id, const PeerContacts::Peer* p) const {
    const sync::SignedCertificate* sc = roster ? roster->find(id) : nullptr;
    Json j;
    j["name"] = p && !p->name.empty() ? p->name : sc ? sc->cert.name : sync::id_hex(id).substr(0, 8);
    j["node_id"] = sync::id_hex(id);
    j["role"] = p && !p->role.empty() ? p->role : sc ? sync::role_name(sc->cert.role) : "";
    j["address"] = p ? p->address : "";
    j["direction"] = p ? p->direction : "";
    j["state"] = roster && roster->is_revoked(id) ? "revoked" : partitioned ? "partitioned" : "down";
    contact_fields(j, p);
    j["last_error"] = p ? p->last_error : "";
    j["history"] = history_of(j["name"].get<std::string>());
    return j;
  }

  Json peers_json() {
    touch_contacts();
    const auto known = contacts.snapshot();
    Json arr = Json::array();
    std::lock_guard<std::mutex> lock(mu);
    std::set<sync::NodeId> covered;
    for (auto& [id, c] : conns) {
      covered.insert(c->peer);
      arr.push_back(conn_json(*c, known));
    }
    for (const auto& s : slots) {
      if (s.conn_id == 0) arr.push_back(slot_json(s, known, covered));
    }
    for (const auto& [id, p] : known) {
      if (covered.insert(id).second) arr.push_back(down_json(id, &p));
    }
    // HQ expects a link from every node of the roster: those never heard from are listed too.
    if (config.role == "hq" && roster) {
      for (const auto& sc : roster->certificates) {
        const sync::NodeId& id = sc.cert.node_id;
        if (id != self_id && covered.insert(id).second) arr.push_back(down_json(id, nullptr));
      }
    }
    Json out;
    out["partitioned"] = partitioned;
    out["peers"] = arr;
    return out;
  }

  void set_partitioned(bool down) {
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
};

PeerManager::PeerManager(asio::io_context& io, LedgerWorker& worker, const Config& config, sync::Clock& clock,
                         LinkContext context)
    : impl_(std::make_shared<Impl>(io, worker, config, clock, std::move(context))) {
  std::weak_ptr<Impl> weak = impl_;
  Ledger& ledger = worker.ledger_unsafe();
  impl_->on_roster_accepted = [weak] {
    // Runs on the worker thread right after a newer roster was accepted.
    if (auto self = weak.lock()) self->set_roster(self->worker.ledger_unsafe().roster());
  };
  impl_->set_roster(ledger.roster());
  ledger.set_verified_signatures(impl_->verified);
  impl_->self_id = ledger.node_id();
  impl_->ctx.options.keepalive_ms = static_cast<int>(config.link.keepalive_ms);
  // The worker has not started yet: reading the store here races with nothing.
  if (auto contacts = ledger.store().peer_contacts(); contacts.is_ok()) {
    impl_->contacts.load(*contacts);
  } else {
    log(LogLevel::kWarn, "cannot read peers' last contact", {{"reason", contacts.status().message()}});
  }
  std::weak_ptr<Impl> w2 = impl_;
  impl_->ctx.roster = [w2]() -> std::shared_ptr<const sync::Roster> {
    auto self = w2.lock();
    return self ? self->current_roster() : nullptr;
  };
  for (const auto& p : config.peers) {
    Slot s;
    s.cfg = p;
    if (s.cfg.name.empty()) s.cfg.name = p.address.to_string();
    impl_->slots.push_back(std::move(s));
  }
}

PeerManager::~PeerManager() {
  // Joined here, while impl_ is still held: a verifier job never drops the last reference.
  impl_->verifier->stop();
  impl_->verify_helper->stop();
  impl_->checkpointer->stop();
}

Status PeerManager::start() {
  auto self = impl_;
  auto l = LinkListener::listen(
      impl_->io, impl_->config.peer, impl_->ctx,
      [self](std::shared_ptr<Link> link) {
        if (self->partitioned || self->stopping) {
          link->close(Status::unavailable("partitioned by operator"));
          return;
        }
        self->attach(std::move(link), -1);
      },
      [self](const Status& reason, const std::string& address) {
        if (reason.code() == Code::kPermission) {
          self->alert(reason.message().find("revoked") != std::string::npos ? "revoked_peer" : "link_refused", "",
                      address + ": " + reason.message());
        }
      });
  if (!l.is_ok()) return l.status();
  impl_->listener = std::move(l).value();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->listen_address = impl_->listener->local_endpoint().to_string();
  }
  for (std::size_t i = 0; i < impl_->slots.size(); ++i) impl_->dial(static_cast<int>(i));
  impl_->schedule_pump_timer();
  impl_->schedule_rebalance();
  impl_->schedule_checkpoint();
  return Status::ok();
}

void PeerManager::stop() {
  impl_->stopping = true;
  impl_->verifier->stop();  // before the helper: a running preverify waits for the helper
  impl_->verify_helper->stop();
  impl_->pump_timer.cancel();
  impl_->rebalance_timer.cancel();
  impl_->checkpoint_timer.cancel();
  impl_->checkpointer->stop();
  if (impl_->listener) impl_->listener->close();
  for (auto& s : impl_->slots) {
    if (s.timer) s.timer->cancel();
  }
  std::vector<std::shared_ptr<Conn>> all;
  std::vector<storage::PeerContact> rows;
  const std::uint64_t now = impl_->clock.now_ms();
  for (auto& [id, c] : impl_->conns) {
    all.push_back(c);
    rows.push_back({c->peer, static_cast<std::int64_t>(Impl::last_frame_ms(*c, now)), static_cast<std::int64_t>(now)});
  }
  impl_->persist_contacts(std::move(rows));  // the worker drains its queue before the daemon exits
  for (auto& c : all) c->link->close(Status::ok());
  for (auto& [id, p] : impl_->pending) p.timer->cancel();
}

Endpoint PeerManager::local_endpoint() const {
  return impl_->listener ? impl_->listener->local_endpoint() : impl_->config.peer;
}

void PeerManager::notify_local_write() {
  auto self = impl_;
  asio::post(impl_->io, [self] { self->pump_all(); });
}

void PeerManager::request_rights(const sync::MemberId& member, sync::Account account, std::uint64_t amount,
                                 const Json& rights_elsewhere, std::function<void(bool, bool)> done) {
  auto self = impl_;
  asio::post(impl_->io, [self, member, account, amount, rights_elsewhere, done = std::move(done)]() mutable {
    auto a = std::make_shared<RightsAttempt>();
    a->member = member;
    a->account = account;
    a->remaining = amount;
    a->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRightsTimeoutMs);
    a->done = std::move(done);
    self->start_attempt(a, rights_elsewhere, 0);
  });
}

bool PeerManager::handle_admin(const HttpRequest& req, const Responder& respond, const Authorize& authorize) {
  auto self = impl_;
  if (req.path == "/admin/v1/peers" && req.method == "GET") {
    authorize(req, respond, [self, respond] {
      asio::post(self->io, [self, respond] { respond(HttpResponse{200, self->peers_json().dump()}); });
    });
    return true;
  }
  if (req.path == "/admin/v1/links" && req.method == "POST") {
    // The admin token is confirmed before this is called (Api::handle_admin); the body is
    // checked strictly, as every API body is: one object, only "state", a string.
    auto body = parse_json_object(req.body);
    Status st = body.is_ok() ? check_fields(*body, {"state"}) : body.status();
    auto state_field = st.is_ok() ? string_field(*body, "state", true) : Result<std::string>(st);
    const std::string state = state_field.is_ok() ? *state_field : "";
    if (state != "up" && state != "down") {
      std::string why = state_field.is_ok() ? "" : state_field.status().message() + ": ";
      respond(http_error(400, "invalid_argument", why + "body must be {\"state\": \"up\"} or {\"state\": \"down\"}"));
      return true;
    }
    authorize(req, respond, [self, respond, state] {
      asio::post(self->io, [self, respond, state] {
        self->set_partitioned(state == "down");
        respond(HttpResponse{200, Json{{"partitioned", self->partitioned}}.dump()});
      });
    });
    return true;
  }
  return false;
}

void PeerManager::node_info(Json& out) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  out["peer_listen"] = impl_->listen_address;
  out["links_up"] = impl_->links_up;
  out["partitioned"] = impl_->partitioned_view;
}

}  // namespace outpost::node
