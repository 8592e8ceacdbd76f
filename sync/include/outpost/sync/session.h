// SyncSession: the pure state machine of one sync link between two nodes (docs/sync-protocol.md).
// Bytes in, bytes out, time passed in: it owns no socket, thread or clock, so the daemon, the
// tests and the deterministic simulator (tests/sim) drive it identically. It reaches the node's
// data only through the SyncStore interface. Not thread-safe: one owner calls it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/sync/protocol.h"

namespace outpost::sync {

struct IngestReport {
  std::uint64_t applied = 0;
  std::uint64_t duplicates = 0;
  std::vector<std::string> equivocations;  // one line per conflicting (origin, seq) kept as evidence
};

// What a session needs from its node. The daemon implements it over SQLite, the simulator in
// memory.
class SyncStore {
 public:
  virtual ~SyncStore() = default;
  virtual NodeId self() const = 0;
  // Per origin, the highest contiguous seq held.
  virtual Result<VersionVector> version_vector() = 0;
  // Up to max_ops ops of `origin` with seq >= from_seq, ascending.
  virtual Result<std::vector<SignedOp>> ops_from(const NodeId& origin, std::uint64_t from_seq,
                                                 std::size_t max_ops) = 0;
  // Verifies (signature under the origin's roster key, revocation cut-off, seq and chain) and
  // durably applies `ops` in order. Any invalid op refuses the whole batch: nothing is applied
  // and the error names the op. Re-delivered ops are counted as duplicates; a different op with
  // a held (origin, seq) is equivocation: kept as evidence, reported, never applied.
  virtual Result<IngestReport> ingest(const std::vector<SignedOp>& ops) = 0;
  // Reported in this node's HELLO (outpost-top shows them); nothing depends on them.
  virtual std::string software_version() const { return ""; }
  virtual std::uint32_t schema_version() const { return 0; }
  // Sees the peer's HELLO before anything else of the session is handled (the daemon learns
  // from it how much of this node's own log the peer holds: failure rule 7 in
  // docs/architecture.md). In a session bound to an authenticated peer, hello.node is that peer.
  // An error closes the session.
  virtual Status on_peer_hello(const HelloMsg& /*hello*/) { return Status::ok(); }
  // HQ-signed documents (roster, rules, tree head set): the version held, the document, and an
  // offer of a newer one from the peer (verified by the store; older or equal versions are
  // ignored).
  virtual std::uint64_t blob_version(BlobKind) { return 0; }
  virtual std::optional<BlobMsg> blob(BlobKind) { return std::nullopt; }
  virtual Status offer_blob(const BlobMsg&) { return Status::ok(); }
  // Rights broker, holder side: moves up to `amount` of `member`'s rights held here to `to`
  // with a move op; returns the amount moved (0 when nothing could be).
  virtual Result<std::uint64_t> grant_rights(const NodeId& /*to*/, const MemberId& /*member*/,
                                             Account /*account*/, std::uint64_t /*amount*/) {
    return std::uint64_t{0};
  }
  // When true, a RIGHTS_REQUEST is not answered inside on_message: the session reports it as a
  // kRightsRequest event and the owner answers later with SyncSession::answer_rights (the
  // daemon does this to gather rights from other holders first, e.g. HQ relaying for stores).
  virtual bool defer_rights_requests() const { return false; }
  // Alerts (docs/sync-protocol.md "Alerts"). `peer` is always the session's peer, which the
  // daemon binds to the link's certificate: never a node id a message names.
  // Receiver: the highest id of `peer`'s alerts this node holds, when it collects them (HQ);
  // nullopt when it does not. The session asks for them with ALERTS_ACK after HELLO and accepts
  // ALERTS only then.
  virtual Result<std::optional<std::uint64_t>> alerts_wanted_from(const NodeId& /*peer*/) {
    return std::optional<std::uint64_t>{};
  }
  // Receiver: durably stores alerts `peer` raised (ids already held are ignored) and returns the
  // new highest id held. An error closes the session and nothing is stored.
  virtual Result<std::uint64_t> accept_alerts(const NodeId& /*peer*/, const std::vector<AlertRecord>& /*alerts*/) {
    return Status::unsupported("this node does not collect alerts");
  }
  // Sender: up to `max_alerts` of this node's own alerts with an id above `after`, ascending, to
  // send to `peer`; empty when there are none or `peer` is not to receive them (only HQ is).
  virtual Result<std::vector<AlertRecord>> alerts_for(const NodeId& /*peer*/, std::uint64_t /*after*/,
                                                      std::size_t /*max_alerts*/) {
    return std::vector<AlertRecord>{};
  }
};

struct SessionEvent {
  enum class Kind { kHello, kIngested, kAcked, kRightsReply, kPeerError, kEquivocation, kRightsRequest };
  Kind kind = Kind::kHello;
  HelloMsg hello;
  IngestReport ingest;
  RightsReplyMsg reply;
  RightsRequestMsg request;
  std::string message;
};

struct SessionOutput {
  std::vector<Bytes> send;  // messages to send, in order
  std::vector<SessionEvent> events;
  bool close = false;  // close the link after sending `send`
  std::string close_reason;
  void merge(SessionOutput&& other);
};

struct SessionStats {
  std::uint64_t ops_sent = 0;
  std::uint64_t ops_received = 0;
  std::uint64_t batches_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
};

class SyncSession {
 public:
  // `authenticated_peer`: the node the link authenticated (its certificate), when there is one.
  // The session is then bound to it: a HELLO naming any other node is refused (ERROR, close),
  // so nothing the session does can act on a node id the peer merely claims. The daemon always
  // binds; an unbound session (tests, the simulator) takes the HELLO's node id as it comes.
  explicit SyncSession(SyncStore& store, std::optional<NodeId> authenticated_peer = std::nullopt)
      : store_(store), authenticated_peer_(authenticated_peer) {}

  // Returns the HELLO to send first.
  SessionOutput start(std::uint64_t now_ms);
  // Handles one received message.
  SessionOutput on_message(ByteView bytes, std::uint64_t now_ms);
  // The same for a message the caller already decoded (decode_message's result for `wire_bytes`
  // bytes): the daemon decodes, and checks signatures, on another thread than the session's.
  SessionOutput on_decoded(Result<Message> decoded, std::size_t wire_bytes, std::uint64_t now_ms);
  // Sends local ops the peer lacks, within the flow-control window. Call after local writes,
  // after ingesting from another peer, and on a timer.
  SessionOutput pump();
  // Asks the peer (rights holder) to move rights to us.
  SessionOutput request_rights(std::uint64_t request_id, const MemberId& member, Account account,
                               std::uint64_t amount);

  // Answers a deferred RIGHTS_REQUEST: first the ops the peer lacks (including the move op that
  // granted the rights, ignoring the window), then the reply.
  SessionOutput answer_rights(std::uint64_t request_id, std::uint64_t granted, const std::string& reason);

  bool established() const { return peer_.has_value(); }
  const std::optional<NodeId>& peer() const { return peer_; }
  // What the peer durably holds, as far as we know (from HELLO and ACKs).
  const VersionVector& peer_vv() const { return peer_vv_; }
  std::uint64_t peer_wall_ms() const { return peer_wall_ms_; }
  std::uint64_t hello_local_ms() const { return hello_local_ms_; }
  const SessionStats& stats() const { return stats_; }
  std::size_t inflight_batches() const { return inflight_; }

 private:
  SessionOutput fail(std::uint16_t code, const std::string& why);
  SessionOutput pump_impl(bool ignore_window);
  // Sends each document (roster, rules, tree head set) this node holds in a newer version than the peer is
  // known to hold, so a roster accepted mid-session (an enrollment, a revocation) travels at once.
  void offer_documents(SessionOutput& out);
  // Sends the next ALERTS once the peer asked for this node's alerts and acknowledged the last.
  void offer_alerts(SessionOutput& out);
  // One handler per message kind, after on_decoded's checks (decoded, HELLO first).
  SessionOutput on_hello(const HelloMsg& h, std::uint64_t now_ms);
  SessionOutput on_ops(const OpsMsg& ops);
  SessionOutput on_ack(const AckMsg& ack);
  SessionOutput on_blob(const BlobMsg& blob);
  SessionOutput on_rights_request(const RightsRequestMsg& rq);
  SessionOutput on_peer_error(const ErrorMsg& err);
  SessionOutput on_alerts(const AlertsMsg& m);
  SessionOutput on_alerts_ack(const AlertsAckMsg& m);
  void send(SessionOutput& out, const Message& m);

  SyncStore& store_;
  std::optional<NodeId> authenticated_peer_;
  std::optional<NodeId> peer_;
  VersionVector peer_vv_;
  VersionVector sent_;  // highest seq sent per origin; >= peer_vv_
  std::size_t inflight_ = 0;
  std::uint64_t peer_roster_version_ = 0;  // highest roster version the peer is known to hold
  std::uint64_t peer_rules_version_ = 0;
  std::uint64_t peer_tree_heads_version_ = 0;
  // The version of `kind` the peer is known to hold.
  std::uint64_t& peer_version(BlobKind kind);
  std::uint64_t peer_wall_ms_ = 0;
  std::uint64_t hello_local_ms_ = 0;
  bool alerts_asked_ = false;                   // we sent ALERTS_ACK: the peer may send ALERTS
  std::optional<std::uint64_t> alerts_cursor_;  // the peer holds our alerts up to this id
  bool alerts_in_flight_ = false;               // an ALERTS of ours awaits its ALERTS_ACK
  bool closed_ = false;
  SessionStats stats_;
};

}  // namespace outpost::sync
