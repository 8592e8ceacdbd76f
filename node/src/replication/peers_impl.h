// PeerManager's inside, shared by the files that implement it (private to node/src):
//   peers.cc           the public PeerManager calls
//   peers_links.cc     link lifecycle: accept, dial with backoff, close, partition, contacts
//   peers_sessions.cc  one SyncSession per link on the ledger worker: receive, verify, pump
//   peers_broker.cc    the driver of sync::RightsBroker (events in, actions carried out)
//   peers_jobs.cc      timers for the rebalancer and HQ checkpoints, roster refresh
//   peers_admin.cc     GET /admin/v1/peers
//   peers_store.cc     the node's data as a sync::SyncStore for one link's session
// Threads: "io" members are touched only on the io thread; the sessions and their stores only
// on the ledger worker; what the admin API reads is guarded by `mu`.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "outpost/node/hq_view.h"
#include "outpost/node/job_thread.h"
#include "outpost/node/ledger_sync_store.h"
#include "outpost/node/peers.h"
#include "outpost/sync/broker.h"
#include "outpost/sync/session.h"

namespace outpost::node {

namespace asio = boost::asio;

std::uint64_t vv_get(const sync::VersionVector& vv, const sync::NodeId& id);

// What the admin API shows of a session, copied on the worker after each of its tasks.
struct ConnSnapshot {
  bool established = false;
  sync::VersionVector peer_vv;
  sync::VersionVector own_vv;
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

// One admitted link. Its id is also its id in the rights broker.
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
  bool broker_up = false;                  // io thread: told to the broker (session established)
  std::unique_ptr<sync::SyncStore> store;  // worker thread only; outlives the session
  std::unique_ptr<sync::SyncSession> session;  // worker thread only
  ConnSnapshot snap;                           // guarded by Impl::mu
};

// A configured peer this node dials.
struct Slot {
  PeerConfig cfg;
  std::uint32_t failures = 0;
  std::uint64_t conn_id = 0;         // 0 when not connected
  std::optional<sync::NodeId> peer;  // the node its last link reached
  bool connecting = false;
  std::string last_error;
  std::uint64_t next_attempt_ms = 0;
  std::unique_ptr<asio::steady_timer> timer;
};

struct PeerManager::Impl : std::enable_shared_from_this<PeerManager::Impl> {
  Impl(asio::io_context& io, LedgerWorker& worker, const Config& config, sync::Clock& clock,
       LinkContext ctx);

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
  std::uint64_t next_conn_id = 1;
  bool partitioned = false;
  bool stopping = false;
  // The rights broker and what its driver keeps: the API's callback per local request, and one
  // timer for the broker's earliest deadline.
  sync::RightsBroker broker;
  std::map<std::uint64_t, std::function<void(bool, bool)>> rights_waiters;  // by ticket
  asio::steady_timer broker_timer;
  std::optional<std::uint64_t> broker_timer_at;  // the deadline broker_timer is set for

  // guarded by mu: what the admin API reads
  mutable std::mutex mu;
  std::map<std::string, std::deque<LinkEvent>> history;  // by peer name
  std::shared_ptr<const sync::Roster> roster;
  std::size_t links_up = 0;
  bool partitioned_view = false;
  std::string listen_address;
  sync::NodeId self_id{};
  PeerContacts contacts;  // thread-safe itself; read under mu by peers_json

  std::shared_ptr<const sync::Roster> current_roster();
  void set_roster(std::shared_ptr<const sync::Roster> r);
  void record(const std::string& peer, const std::string& what);
  void alert(const std::string& kind, const std::string& node, const std::string& msg);

  // --- links (peers_links.cc) ---
  void attach(const std::shared_ptr<Link>& link, int slot);
  void start_session(const std::shared_ptr<Conn>& c);
  void on_closed(const std::shared_ptr<Conn>& c, const Status& reason);
  void close_conn(const std::shared_ptr<Conn>& c, const std::string& why);
  // Why the worker did not take or run a task: its latched failure, or a full queue.
  std::string worker_refusal() const;
  void schedule_dial(int idx);
  void dial(int idx);
  void on_dialed(int idx, Result<std::shared_ptr<Link>> r);
  void set_partitioned(bool down);
  static std::uint64_t last_frame_ms(const Conn& c, std::uint64_t now);
  void persist_contacts(std::vector<storage::PeerContact> rows);
  void touch_contacts();

  // --- sessions (peers_sessions.cc) ---
  void conn_task(const std::shared_ptr<Conn>& c,
                 std::function<sync::SessionOutput(sync::SyncSession&)> fn);
  void receive(const std::shared_ptr<Conn>& c, sync::Bytes msg);
  void preverify(const sync::Message& m);
  void apply_output(const std::shared_ptr<Conn>& c, sync::SessionOutput out);
  void handle_event(const std::shared_ptr<Conn>& c, sync::SessionEvent& ev);
  void on_hello(const std::shared_ptr<Conn>& c, const sync::HelloMsg& hello);
  void pump_all(std::uint64_t except_id = 0);
  void schedule_pump_timer();

  // --- background work (peers_jobs.cc) ---
  void schedule_checkpoint();
  void checkpoint_once();
  void schedule_rebalance();
  void rebalance_once();
  void refresh_roster();

  // --- rights broker driver (peers_broker.cc) ---
  // The broker's clock: the Env's monotonic milliseconds (deadlines only; never stored).
  std::uint64_t broker_now_ms();
  void request_rights(const sync::MemberId& member, sync::Account account, std::uint64_t amount,
                      const sync::RightsView& view, std::function<void(bool, bool)> done);
  void broker_link_up(const std::shared_ptr<Conn>& c);
  void broker_link_down(const Conn& c);
  void run_broker(const sync::BrokerOutput& out);
  void send_rights_request(const sync::SendRightsRequest& s);
  void send_rights_reply(const sync::SendRightsReply& s);
  void grant_rights(const sync::GrantRights& g);
  void rights_done(const sync::RightsDone& d);
  void arm_broker_timer();

  // --- admin (peers_admin.cc) ---
  Json peers_json();
  Json history_of(const std::string& name) const;
  Json conn_json(const Conn& c, const std::map<sync::NodeId, PeerContacts::Peer>& known) const;
  Json slot_json(const Slot& s, const std::map<sync::NodeId, PeerContacts::Peer>& known,
                 std::set<sync::NodeId>& covered) const;
  Json down_json(const sync::NodeId& id, const PeerContacts::Peer* p) const;
};

}  // namespace outpost::node
