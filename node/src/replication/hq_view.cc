#include "outpost/node/hq_view.h"

#include <algorithm>

#include "outpost/base/limits.h"
#include "outpost/node/log.h"

namespace outpost::node {

namespace {

storage::PeerContact row_of(const sync::NodeId& id, const PeerContacts::Peer& p) {
  return storage::PeerContact{id, static_cast<std::int64_t>(p.last_contact_ms),
                              static_cast<std::int64_t>(p.down_since_ms)};
}

}  // namespace

// --- PeerContacts ---

void PeerContacts::load(const std::vector<storage::PeerContact>& rows) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : rows) {
    Peer& p = peers_[r.node];
    p.last_contact_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(r.last_contact_ms, 0));
    p.down_since_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(r.down_since_ms, 0));
  }
}

storage::PeerContact PeerContacts::link_up(const sync::NodeId& id, const Peer& shown,
                                           std::uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer& p = peers_[id];
  p.name = shown.name;
  p.role = shown.role;
  p.address = shown.address;
  p.direction = shown.direction;
  p.links++;
  p.seen_since_start = true;
  p.last_contact_ms = std::max(p.last_contact_ms, now_ms);  // the handshake's last frame
  p.down_since_ms = 0;
  p.persisted_ms = now_ms;
  return row_of(id, p);
}

storage::PeerContact PeerContacts::link_down(const sync::NodeId& id, std::uint64_t last_frame_ms,
                                             std::uint64_t now_ms, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer& p = peers_[id];
  if (p.links > 0) p.links--;
  p.last_contact_ms = std::max(p.last_contact_ms, last_frame_ms);
  p.last_error = why;
  if (p.links == 0) p.down_since_ms = now_ms;
  p.persisted_ms = now_ms;
  return row_of(id, p);
}

std::optional<storage::PeerContact> PeerContacts::touch(const sync::NodeId& id,
                                                        std::uint64_t last_frame_ms,
                                                        std::uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return std::nullopt;
  Peer& p = it->second;
  p.last_contact_ms = std::max(p.last_contact_ms, last_frame_ms);
  if (now_ms < p.persisted_ms + limits::kPeerContactPersistIntervalMs) return std::nullopt;
  p.persisted_ms = now_ms;
  return row_of(id, p);
}

std::map<sync::NodeId, PeerContacts::Peer> PeerContacts::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peers_;
}

// --- alerts over sync ---

Result<std::vector<sync::AlertRecord>> own_alerts_after(storage::Store& store, std::uint64_t after,
                                                        std::size_t max_alerts) {
  const auto after_id = static_cast<std::int64_t>(std::min(after, limits::kAlertIdMax));
  OUTPOST_ASSIGN_OR_RETURN(auto rows, store.alerts_after(after_id, max_alerts));
  if (rows.empty()) {
    OUTPOST_RETURN_IF_ERROR(store.reserve_alert_ids(after_id));
  }
  std::vector<sync::AlertRecord> out;
  for (const auto& a : rows) {
    sync::AlertRecord r;
    r.id = static_cast<std::uint64_t>(a.id);
    r.at_ms = std::min(static_cast<std::uint64_t>(std::max<std::int64_t>(a.at_ms, 0)),
                       limits::kAlertIdMax);
    r.kind = sync::is_alert_kind(a.kind) ? a.kind : "other";
    if (auto about = sync::parse_id(a.node); about.is_ok()) r.about = *about;
    r.message = sync::clean_alert_text(a.message, limits::kAlertMessageBytesMax);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::uint64_t> store_peer_alerts(storage::Store& store, const sync::NodeId& source,
                                        const std::vector<sync::AlertRecord>& alerts,
                                        std::uint64_t now_ms) {
  std::vector<storage::PeerAlert> rows;
  for (const auto& a : alerts) {
    storage::PeerAlert p;
    p.source = source;
    p.source_id = static_cast<std::int64_t>(a.id);
    p.at_ms = static_cast<std::int64_t>(a.at_ms);
    p.received_ms = static_cast<std::int64_t>(now_ms);
    p.kind = a.kind;
    p.node = a.about ? sync::id_hex(*a.about) : "";
    p.message = a.message;
    rows.push_back(std::move(p));
  }
  OUTPOST_RETURN_IF_ERROR(store.add_peer_alerts(source, rows));
  OUTPOST_ASSIGN_OR_RETURN(std::int64_t held, store.peer_alerts_cursor(source));
  return static_cast<std::uint64_t>(held);
}

// --- GET /admin/v1/alerts ---

namespace {

struct SourceSummary {
  std::string name, role;
  std::int64_t count = 0;
  std::int64_t latest_at_ms = 0;
  std::map<std::string, std::int64_t> counts;
};

// Names a node from the roster (this node by its own name, an unlisted one by its short id).
void name_node(const Ledger& l, const sync::NodeId& id, std::string& name, std::string& role) {
  if (auto roster = l.roster()) {
    if (const sync::SignedCertificate* sc = roster->find(id)) {
      name = sc->cert.name;
      role = sync::role_name(sc->cert.role);
      return;
    }
  }
  name = id == l.node_id() ? l.node_name() : sync::id_hex(id).substr(0, 8);
}

Result<std::map<sync::NodeId, SourceSummary>> summarize(Ledger& l) {
  std::map<sync::NodeId, SourceSummary> out;
  OUTPOST_ASSIGN_OR_RETURN(auto own, l.store().alert_counts());
  OUTPOST_ASSIGN_OR_RETURN(auto peers, l.store().peer_alert_counts());
  for (auto& c : own) c.source = l.node_id();
  own.insert(own.end(), peers.begin(), peers.end());
  for (const auto& c : own) {
    SourceSummary& s = out[c.source];
    s.count += c.count;
    s.counts[c.kind] += c.count;
    s.latest_at_ms = std::max(s.latest_at_ms, c.latest_at_ms);
  }
  for (auto& [id, s] : out) name_node(l, id, s.name, s.role);
  return out;
}

}  // namespace

Result<Json> alerts_json(Ledger& l, const std::optional<sync::NodeId>& source, std::size_t limit) {
  const sync::NodeId self = l.node_id();
  std::vector<storage::PeerAlert> listed;
  if (!source || *source == self) {
    OUTPOST_ASSIGN_OR_RETURN(auto own, l.store().recent_alerts(limit));
    for (const auto& a : own) listed.push_back({self, a.id, a.at_ms, 0, a.kind, a.node, a.message});
  }
  if (!source || *source != self) {
    OUTPOST_ASSIGN_OR_RETURN(auto relayed, l.store().recent_peer_alerts(source, limit));
    listed.insert(listed.end(), relayed.begin(), relayed.end());
  }
  std::stable_sort(listed.begin(), listed.end(),
                   [](const auto& a, const auto& b) { return a.at_ms > b.at_ms; });
  if (listed.size() > limit) listed.resize(limit);
  OUTPOST_ASSIGN_OR_RETURN(auto summary, summarize(l));
  Json arr = Json::array();
  std::map<std::string, int> counts;
  for (const auto& a : listed) {
    counts[a.kind]++;
    Json j = {{"id", a.source_id}, {"at_ms", a.at_ms},     {"kind", a.kind},
              {"node", a.node},    {"message", a.message}, {"source", sync::id_hex(a.source)}};
    auto s = summary.find(a.source);
    j["source_name"] = s != summary.end() ? s->second.name : sync::id_hex(a.source).substr(0, 8);
    if (a.source != self) j["received_ms"] = a.received_ms;
    arr.push_back(std::move(j));
  }
  Json by_source = Json::array();
  std::int64_t total = 0;
  for (const auto& [id, s] : summary) {
    total += s.count;
    Json j = {{"node_id", sync::id_hex(id)}, {"name", s.name},
              {"self", id == self},          {"count", s.count},
              {"counts", s.counts},          {"latest_at_ms", s.latest_at_ms}};
    if (!s.role.empty()) j["role"] = s.role;
    by_source.push_back(std::move(j));
  }
  Json out;
  out["alerts"] = arr;
  out["counts"] = counts;
  out["total"] = total;
  out["by_source"] = by_source;
  return out;
}

}  // namespace outpost::node
