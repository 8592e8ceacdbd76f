// PeerManager, admin view (peers_impl.h): GET /admin/v1/peers, every peer this node links to,
// dials, has linked to before, or (at HQ) expects from the roster. io thread, under `mu`.
#include "peers_impl.h"

namespace outpost::node {

namespace {

// What is known of a peer's contact while it has no link (null: never heard from).
void contact_fields(Json& j, const PeerContacts::Peer* p) {
  j["last_contact_ms"] = p && p->last_contact_ms ? Json(p->last_contact_ms) : Json();
  j["down_since_ms"] = p && p->down_since_ms ? Json(p->down_since_ms) : Json();
  j["seen_since_start"] = p != nullptr && p->seen_since_start;
}

}  // namespace

// The link history of a peer, newest first. Requires mu.
Json PeerManager::Impl::history_of(const std::string& name) const {
  Json h = Json::array();
  auto it = history.find(name);
  if (it != history.end()) {
    for (auto e = it->second.rbegin(); e != it->second.rend(); ++e)
      h.push_back({{"at_ms", e->at_ms}, {"event", e->what}});
  }
  return h;
}

// A live link. Requires mu.
Json PeerManager::Impl::conn_json(const Conn& c,
                                  const std::map<sync::NodeId, PeerContacts::Peer>& known) const {
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
  j["clock_skew_ms"] = s.hello_local_ms ? static_cast<std::int64_t>(s.peer_wall_ms) -
                                              static_cast<std::int64_t>(s.hello_local_ms)
                                        : 0;
  j["stats"] = {{"ops_sent", s.stats.ops_sent},
                {"ops_received", s.stats.ops_received},
                {"bytes_sent", s.stats.bytes_sent},
                {"bytes_received", s.stats.bytes_received},
                {"wire_bytes_sent", c.link->wire_bytes_sent()},
                {"wire_bytes_received", c.link->wire_bytes_received()}};
  j["history"] = history_of(c.name);
  return j;
}

// A configured peer without a link: its dial state, and its contact once its node is known
// (reached this run, or named so in the roster). Requires mu.
Json PeerManager::Impl::slot_json(const Slot& s,
                                  const std::map<sync::NodeId, PeerContacts::Peer>& known,
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
Json PeerManager::Impl::down_json(const sync::NodeId& id, const PeerContacts::Peer* p) const {
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

Json PeerManager::Impl::peers_json() {
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

}  // namespace outpost::node
