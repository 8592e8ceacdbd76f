// The Store's SQL for what a node keeps about its peers beyond their ops: its own alerts as it
// reports them to HQ, the alerts other nodes reported to it (HQ), and when each peer was last
// heard from (docs/sync-protocol.md "Alerts", docs/admin-api.md). Schema: migration 6.
#include <algorithm>

#include "outpost/base/limits.h"
#include "outpost/storage/store.h"
#include "store_internal.h"

namespace outpost::storage {

namespace {

using detail::bv;
using detail::to_array;

Result<std::vector<AlertCount>> read_counts(Statement& s, bool with_source) {
  std::vector<AlertCount> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    AlertCount c;
    int col = 0;
    if (with_source && !to_array(s.blob(col++), c.source))
      return Status::corruption("peer_alerts: bad source id");
    c.kind = s.text(col++);
    c.count = s.int64(col++);
    c.latest_at_ms = s.int64(col);
    out.push_back(std::move(c));
  }
  return out;
}

// The rows of a statement selecting (id, at_ms, kind, node, message) from alerts.
Result<std::vector<Alert>> read_alerts(Statement& s) {
  std::vector<Alert> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    out.push_back(Alert{s.int64(0), s.int64(1), s.text(2), s.text(3), s.text(4)});
  }
  return out;
}

}  // namespace

Result<std::vector<Alert>> Store::recent_alerts(std::size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("SELECT id, at_ms, kind, node, message FROM "
                                                     "alerts ORDER BY id DESC LIMIT ?1"));
  s.bind(1, static_cast<std::int64_t>(limit));
  return read_alerts(s);
}

Result<std::vector<Alert>> Store::alerts_after(std::int64_t after_id, std::size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT id, at_ms, kind, node, message FROM alerts "
                                        "WHERE id > ?1 ORDER BY id LIMIT ?2"));
  s.bind(1, after_id).bind(2, static_cast<std::int64_t>(limit));
  return read_alerts(s);
}

Result<std::vector<AlertCount>> Store::alert_counts() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT kind, count(*), max(at_ms) FROM alerts GROUP BY kind"));
  return read_counts(s, false);
}

Status Store::reserve_alert_ids(std::int64_t id) {
  // sqlite_sequence holds AUTOINCREMENT's high-water mark; it has no row for `alerts` before the
  // first alert.
  OUTPOST_ASSIGN_OR_RETURN(Statement up, db_->prepare("UPDATE sqlite_sequence SET seq = ?1 "
                                                      "WHERE name = 'alerts' AND seq < ?1"));
  up.bind(1, id);
  OUTPOST_RETURN_IF_ERROR(up.run());
  OUTPOST_ASSIGN_OR_RETURN(
      Statement add, db_->prepare("INSERT INTO sqlite_sequence(name, seq) SELECT 'alerts', ?1 "
                                  "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence "
                                  "WHERE name = 'alerts')"));
  add.bind(1, id);
  return add.run();
}

Status Store::add_peer_alerts(const sync::NodeId& source, const std::vector<PeerAlert>& alerts) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("INSERT OR IGNORE INTO peer_alerts(source, source_id, at_ms, "
                                "received_ms, kind, node, message) "
                                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  for (const auto& a : alerts) {
    s.bind_blob(1, bv(source)).bind(2, a.source_id).bind(3, a.at_ms).bind(4, a.received_ms);
    s.bind(5, a.kind).bind(6, a.node).bind(7, a.message);
    OUTPOST_RETURN_IF_ERROR(s.run());
  }
  // Bounded per source: a node that floods alerts pushes out only its own oldest ones.
  OUTPOST_ASSIGN_OR_RETURN(Statement prune,
                           db_->prepare("DELETE FROM peer_alerts WHERE source = ?1 AND source_id < "
                                        "(SELECT source_id FROM peer_alerts WHERE source = ?1 "
                                        "ORDER BY source_id DESC LIMIT 1 OFFSET ?2)"));
  prune.bind_blob(1, bv(source))
      .bind(2, static_cast<std::int64_t>(limits::kPeerAlertsPerSourceMax - 1));
  return prune.run();
}

Result<std::int64_t> Store::peer_alerts_cursor(const sync::NodeId& source) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT coalesce(max(source_id), 0) FROM peer_alerts "
                                        "WHERE source = ?1"));
  s.bind_blob(1, bv(source));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  return row ? s.int64(0) : 0;
}

Result<std::vector<PeerAlert>> Store::recent_peer_alerts(const std::optional<sync::NodeId>& source,
                                                         std::size_t limit) {
  const char* sql =
      source ? "SELECT source, source_id, at_ms, received_ms, kind, node, message FROM peer_alerts "
               "WHERE source = ?2 ORDER BY at_ms DESC, source_id DESC LIMIT ?1"
             : "SELECT source, source_id, at_ms, received_ms, kind, node, message FROM peer_alerts "
               "ORDER BY at_ms DESC, source_id DESC LIMIT ?1";
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(sql));
  s.bind(1, static_cast<std::int64_t>(limit));
  if (source) s.bind_blob(2, bv(*source));
  std::vector<PeerAlert> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    PeerAlert a;
    if (!to_array(s.blob(0), a.source)) return Status::corruption("peer_alerts: bad source id");
    a.source_id = s.int64(1);
    a.at_ms = s.int64(2);
    a.received_ms = s.int64(3);
    a.kind = s.text(4);
    a.node = s.text(5);
    a.message = s.text(6);
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<AlertCount>> Store::peer_alert_counts() {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT source, kind, count(*), max(at_ms) FROM peer_alerts "
                                "GROUP BY source, kind"));
  return read_counts(s, true);
}

Status Store::put_peer_contact(const PeerContact& c) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("INSERT OR REPLACE INTO peer_contacts(node, last_contact_ms, "
                                "down_since_ms) VALUES(?1, ?2, ?3)"));
  s.bind_blob(1, bv(c.node)).bind(2, c.last_contact_ms).bind(3, c.down_since_ms);
  return s.run();
}

Result<std::vector<PeerContact>> Store::peer_contacts() {
  // Bounded: one row per node that ever linked, and a chain has at most kRosterNodesMax nodes.
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT node, last_contact_ms, down_since_ms FROM peer_contacts "
                                "LIMIT ?1"));
  s.bind(1, static_cast<std::int64_t>(limits::kRosterNodesMax));
  std::vector<PeerContact> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    PeerContact c;
    if (!to_array(s.blob(0), c.node)) return Status::corruption("peer_contacts: bad node id");
    c.last_contact_ms = s.int64(1);
    c.down_since_ms = s.int64(2);
    out.push_back(c);
  }
  return out;
}

}  // namespace outpost::storage
