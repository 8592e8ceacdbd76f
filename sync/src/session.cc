#include "outpost/sync/session.h"

#include "outpost/base/limits.h"

namespace outpost::sync {

namespace {
std::uint64_t get(const VersionVector& vv, const NodeId& id) {
  auto it = vv.find(id);
  return it == vv.end() ? 0 : it->second;
}
}  // namespace

void SessionOutput::merge(SessionOutput&& other) {
  for (auto& b : other.send) send.push_back(std::move(b));
  for (auto& e : other.events) events.push_back(std::move(e));
  if (other.close && !close) {
    close = true;
    close_reason = std::move(other.close_reason);
  }
}

void SyncSession::send(SessionOutput& out, const Message& m) {
  Bytes b = encode_message(m);
  stats_.bytes_sent += b.size();
  out.send.push_back(std::move(b));
}

SessionOutput SyncSession::fail(std::uint16_t code, const std::string& why) {
  SessionOutput out;
  if (!closed_) send(out, ErrorMsg{code, why});
  closed_ = true;
  out.close = true;
  out.close_reason = why;
  return out;
}

SessionOutput SyncSession::start(std::uint64_t now_ms) {
  SessionOutput out;
  auto vv = store_.version_vector();
  if (!vv.is_ok()) return fail(1, "cannot read version vector: " + vv.status().message());
  HelloMsg h;
  h.node = store_.self();
  h.roster_version = store_.blob_version(BlobKind::kRoster);
  h.rules_version = store_.blob_version(BlobKind::kRules);
  h.tree_heads_version = store_.blob_version(BlobKind::kTreeHeads);
  h.wall_ms = now_ms;
  h.vv = std::move(vv).value();
  h.software_version = store_.software_version();
  h.schema_version = store_.schema_version();
  h.features = kFeaturesOfThisBuild;
  send(out, h);
  return out;
}

SessionOutput SyncSession::pump() { return pump_impl(false); }

std::uint64_t& SyncSession::peer_version(BlobKind kind) {
  switch (kind) {
    case BlobKind::kRoster: return peer_roster_version_;
    case BlobKind::kRules: return peer_rules_version_;
    case BlobKind::kTreeHeads: break;
  }
  return peer_tree_heads_version_;
}

void SyncSession::offer_documents(SessionOutput& out) {
  // The roster first: a peer accepts a tree head set only once it holds the roster it names.
  for (BlobKind kind : {BlobKind::kRoster, BlobKind::kRules, BlobKind::kTreeHeads}) {
    std::uint64_t& theirs = peer_version(kind);
    if (store_.blob_version(kind) <= theirs) continue;
    auto b = store_.blob(kind);
    if (!b) continue;
    theirs = b->version;  // sent once; a peer that refuses it closes the session
    send(out, *b);
  }
}

SessionOutput SyncSession::pump_impl(bool ignore_window) {
  SessionOutput out;
  if (!peer_ || closed_) return out;
  offer_documents(out);
  offer_alerts(out);
  auto vv_r = store_.version_vector();
  if (!vv_r.is_ok()) return fail(1, "cannot read version vector: " + vv_r.status().message());
  const VersionVector& vv = *vv_r;
  // Bounded: at most window batches per call (or until caught up when ignoring the window).
  for (std::size_t round = 0; round < limits::kSyncWindowBatches * 64; ++round) {
    if (!ignore_window && inflight_ >= limits::kSyncWindowBatches) break;
    OpsMsg batch;
    std::size_t bytes = 0;
    for (const auto& [origin, have] : vv) {
      std::uint64_t sent = std::max(get(sent_, origin), get(peer_vv_, origin));
      if (have <= sent) continue;
      std::size_t room = limits::kSyncBatchOpsMax - batch.ops.size();
      if (room == 0) break;
      auto ops = store_.ops_from(origin, sent + 1, room);
      if (!ops.is_ok()) return fail(1, "cannot read ops: " + ops.status().message());
      for (auto& op : *ops) {
        std::size_t sz = op.signed_bytes.size() + 68;
        if (!batch.ops.empty() && bytes + sz > limits::kSyncBatchBytesMax) break;
        bytes += sz;
        sent_[origin] = op.op.seq;
        batch.ops.push_back(std::move(op));
      }
      if (bytes >= limits::kSyncBatchBytesMax) break;
    }
    if (batch.ops.empty()) break;
    stats_.ops_sent += batch.ops.size();
    stats_.batches_sent++;
    inflight_++;
    send(out, batch);
    if (ignore_window && inflight_ > limits::kSyncWindowBatches * 64) break;
  }
  return out;
}

void SyncSession::offer_alerts(SessionOutput& out) {
  if (!alerts_cursor_ || alerts_in_flight_) return;
  auto alerts = store_.alerts_for(*peer_, *alerts_cursor_, limits::kSyncAlertsPerMessageMax);
  // Alerts are best effort: one that cannot be read now goes with a later pump.
  if (!alerts.is_ok() || alerts->empty()) return;
  alerts_in_flight_ = true;
  send(out, AlertsMsg{std::move(alerts).value()});
}

SessionOutput SyncSession::on_alerts(const AlertsMsg& m) {
  if (!alerts_asked_) return fail(3, "ALERTS that were not asked for");
  auto held = store_.accept_alerts(*peer_, m.alerts);
  if (!held.is_ok()) return fail(6, "alerts refused: " + held.status().message());
  SessionOutput out;
  send(out, AlertsAckMsg{*held});
  return out;
}

SessionOutput SyncSession::on_alerts_ack(const AlertsAckMsg& m) {
  // Within a session the cursor only grows, so a peer cannot make us resend without end.
  alerts_cursor_ = std::max(alerts_cursor_.value_or(0), m.upto);
  alerts_in_flight_ = false;
  SessionOutput out;
  offer_alerts(out);
  return out;
}

SessionOutput SyncSession::request_rights(std::uint64_t request_id, const MemberId& member,
                                          Account account, std::uint64_t amount) {
  SessionOutput out;
  if (!peer_ || closed_) return out;
  send(out, RightsRequestMsg{request_id, member, account, amount});
  return out;
}

SessionOutput SyncSession::answer_rights(std::uint64_t request_id, std::uint64_t granted,
                                         const std::string& reason) {
  SessionOutput out;
  if (!peer_ || closed_) return out;
  out.merge(pump_impl(true));
  send(out, RightsReplyMsg{request_id, granted, reason});
  return out;
}

SessionOutput SyncSession::on_message(ByteView bytes, std::uint64_t now_ms) {
  if (closed_) return {};
  return on_decoded(decode_message(bytes), bytes.size(), now_ms);
}

SessionOutput SyncSession::on_decoded(Result<Message> decoded, std::size_t wire_bytes, std::uint64_t now_ms) {
  if (closed_) return {};
  stats_.bytes_received += wire_bytes;
  if (!decoded.is_ok()) return fail(2, "bad message: " + decoded.status().message());
  Message& msg = *decoded;
  if (!peer_ && !std::holds_alternative<HelloMsg>(msg)) {
    return fail(3, std::string(message_name(msg)) + " before HELLO");
  }
  if (auto* h = std::get_if<HelloMsg>(&msg)) return on_hello(*h, now_ms);
  if (auto* alerts = std::get_if<AlertsMsg>(&msg)) return on_alerts(*alerts);
  if (auto* ack = std::get_if<AlertsAckMsg>(&msg)) return on_alerts_ack(*ack);
  if (auto* ops = std::get_if<OpsMsg>(&msg)) return on_ops(*ops);
  if (auto* ack = std::get_if<AckMsg>(&msg)) return on_ack(*ack);
  if (auto* blob = std::get_if<BlobMsg>(&msg)) return on_blob(*blob);
  if (auto* rq = std::get_if<RightsRequestMsg>(&msg)) return on_rights_request(*rq);
  if (auto* rr = std::get_if<RightsReplyMsg>(&msg)) {
    SessionOutput out;
    SessionEvent ev;
    ev.kind = SessionEvent::Kind::kRightsReply;
    ev.reply = *rr;
    out.events.push_back(std::move(ev));
    return out;
  }
  if (auto* err = std::get_if<ErrorMsg>(&msg)) return on_peer_error(*err);
  return fail(3, "unexpected message");
}

SessionOutput SyncSession::on_hello(const HelloMsg& h, std::uint64_t now_ms) {
  if (peer_) return fail(3, "second HELLO");
  if (h.node == store_.self()) return fail(3, "peer claims our own node id");
  if (authenticated_peer_ && h.node != *authenticated_peer_) {
    return fail(3, "HELLO claims node " + id_hex(h.node) + " but the link authenticated node " +
                       id_hex(*authenticated_peer_));
  }
  if (Status st = store_.on_peer_hello(h); !st.is_ok())
    return fail(1, "cannot handle HELLO: " + st.message());
  SessionOutput out;
  peer_ = h.node;
  peer_vv_ = h.vv;
  sent_ = h.vv;
  peer_wall_ms_ = h.wall_ms;
  hello_local_ms_ = now_ms;
  SessionEvent ev;
  ev.kind = SessionEvent::Kind::kHello;
  ev.hello = h;
  out.events.push_back(std::move(ev));
  peer_roster_version_ = h.roster_version;
  peer_rules_version_ = h.rules_version;
  peer_tree_heads_version_ = h.tree_heads_version;
  if ((h.features & kFeatureAlerts) != 0) {
    auto wanted = store_.alerts_wanted_from(*peer_);
    if (!wanted.is_ok()) return fail(1, "cannot read held alerts: " + wanted.status().message());
    if (*wanted) {
      alerts_asked_ = true;
      send(out, AlertsAckMsg{**wanted});
    }
  }
  out.merge(pump());
  return out;
}

SessionOutput SyncSession::on_ops(const OpsMsg& ops) {
  stats_.ops_received += ops.ops.size();
  auto report = store_.ingest(ops.ops);
  if (!report.is_ok()) return fail(4, "batch refused: " + report.status().message());
  AckMsg ack;
  auto vv = store_.version_vector();
  if (!vv.is_ok()) return fail(1, "cannot read version vector");
  for (const auto& op : ops.ops) ack.vv[op.op.origin] = get(*vv, op.op.origin);
  SessionOutput out;
  send(out, ack);
  SessionEvent ev;
  ev.kind = report->equivocations.empty() ? SessionEvent::Kind::kIngested
                                          : SessionEvent::Kind::kEquivocation;
  ev.ingest = std::move(report).value();
  out.events.push_back(std::move(ev));
  return out;
}

SessionOutput SyncSession::on_ack(const AckMsg& ack) {
  for (const auto& [origin, seq] : ack.vv) {
    auto& slot = peer_vv_[origin];
    slot = std::max(slot, seq);
  }
  if (inflight_ > 0) inflight_--;
  SessionOutput out;
  SessionEvent ev;
  ev.kind = SessionEvent::Kind::kAcked;
  out.events.push_back(std::move(ev));
  out.merge(pump());
  return out;
}

SessionOutput SyncSession::on_blob(const BlobMsg& blob) {
  Status st = store_.offer_blob(blob);
  if (!st.is_ok()) return fail(5, "document refused: " + st.message());
  // The peer holds what it sent.
  std::uint64_t& theirs = peer_version(blob.kind);
  theirs = std::max(theirs, blob.version);
  return {};
}

SessionOutput SyncSession::on_rights_request(const RightsRequestMsg& rq) {
  SessionOutput out;
  if (store_.defer_rights_requests()) {
    SessionEvent ev;
    ev.kind = SessionEvent::Kind::kRightsRequest;
    ev.request = rq;
    out.events.push_back(std::move(ev));
    return out;
  }
  auto granted = store_.grant_rights(*peer_, rq.member, rq.account, rq.amount);
  RightsReplyMsg reply;
  reply.request_id = rq.request_id;
  if (granted.is_ok()) {
    reply.granted = *granted;
    if (*granted == 0) reply.reason = "no rights to give here";
  } else {
    reply.reason = granted.status().message();
  }
  // The move op must reach the peer before the reply: send it now, ignoring the window.
  out.merge(pump_impl(true));
  send(out, reply);
  return out;
}

SessionOutput SyncSession::on_peer_error(const ErrorMsg& err) {
  closed_ = true;
  SessionOutput out;
  out.close = true;
  out.close_reason = "peer error: " + err.message;
  SessionEvent ev;
  ev.kind = SessionEvent::Kind::kPeerError;
  ev.message = err.message;
  out.events.push_back(std::move(ev));
  return out;
}

}  // namespace outpost::sync
