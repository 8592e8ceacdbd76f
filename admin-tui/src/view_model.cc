#include "outpost/tui/view_model.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <limits>
#include <set>

namespace outpost::tui {

namespace {

// --- tolerant JSON access: a wrong type reads as absent, never throws ---

const Json* field(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::optional<std::uint64_t> get_u64(const Json& j, const char* key) {
  const Json* v = field(j, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<std::uint64_t>();
  if (v->is_number_integer() && v->get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v->get<std::int64_t>());
  return std::nullopt;
}

std::optional<std::int64_t> get_i64(const Json& j, const char* key) {
  const Json* v = field(j, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    std::uint64_t u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v->is_number_integer()) return v->get<std::int64_t>();
  return std::nullopt;
}

std::string get_str(const Json& j, const char* key, const std::string& fallback = "") {
  const Json* v = field(j, key);
  return v && v->is_string() ? v->get<std::string>() : fallback;
}

bool get_bool(const Json& j, const char* key, bool fallback = false) {
  const Json* v = field(j, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

// A version vector: {origin_hex: seq}. nullopt if it is not an object of unsigned numbers.
std::optional<std::map<std::string, std::uint64_t>> parse_vv(const Json* v) {
  if (!v || !v->is_object()) return std::nullopt;
  std::map<std::string, std::uint64_t> out;
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (it->is_number_unsigned()) {
      out[it.key()] = it->get<std::uint64_t>();
    } else if (it->is_number_integer() && it->get<std::int64_t>() >= 0) {
      out[it.key()] = static_cast<std::uint64_t>(it->get<std::int64_t>());
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::uint64_t vv_get(const std::map<std::string, std::uint64_t>& vv, const std::string& origin) {
  auto it = vv.find(origin);
  return it == vv.end() ? 0 : it->second;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool contains_ci(const std::string& hay, const std::string& needle) {
  return lower(hay).find(lower(needle)) != std::string::npos;
}

std::vector<LinkEvent> parse_history(const Json* h) {
  std::vector<LinkEvent> out;
  if (!h || !h->is_array()) return out;
  for (const auto& e : *h) {
    if (out.size() >= kHistoryShownMax) break;
    auto at = get_u64(e, "at_ms");
    std::string what = get_str(e, "event");
    if (!at && what.empty()) continue;
    out.push_back({at.value_or(0), what});
  }
  return out;
}

struct RosterNode {
  std::string node_id, name, role, status;
  std::optional<std::uint64_t> valid_until_ms;
};

int link_rank(const std::string& link) {
  if (link == "connected") return 0;
  if (link == "handshaking") return 1;
  if (link == "connecting") return 2;
  return 3;
}

std::string plural(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string days_left(std::uint64_t until_ms, std::uint64_t now_ms) {
  if (until_ms <= now_ms) return "expired";
  std::uint64_t left = until_ms - now_ms;
  if (left < 24ULL * 3600 * 1000) return std::to_string(left / (3600 * 1000)) + "h";
  return std::to_string(left / (24ULL * 3600 * 1000)) + "d";
}

void add_problems(const Overview& o, NodeRow& r) {
  if (r.is_self) {
    if (o.partitioned) r.problems.push_back("links taken down by operator (partitioned)");
  } else if (r.link == "down") {
    std::string since;
    if (r.down_since_ms) {
      since = " since " + format_clock(*r.down_since_ms);
    } else if (r.seen_since_start && !*r.seen_since_start) {
      since = std::string(" since ") + o.name + " started";
    }
    r.problems.push_back("no link to this node" + since);
  } else if (r.link == "backoff") {
    r.problems.push_back("link in backoff after " + plural(r.failures, "failure") +
                         (r.last_error.empty() ? "" : ": " + r.last_error));
  } else if (r.link == "partitioned") {
    r.problems.push_back("link taken down by operator");
  } else if (r.link == "revoked") {
    r.problems.push_back("certificate revoked");
  } else if (r.link == "connecting" && r.failures > 0) {
    r.problems.push_back("connecting after " + plural(r.failures, "failure") +
                         (r.last_error.empty() ? "" : ": " + r.last_error));
  }
  if (r.behind_total && *r.behind_total > 0 && (r.vv_stale || *r.behind_total > kBehindWarnOps)) {
    r.problems.push_back("behind by " + plural(*r.behind_total, "op") + (r.vv_stale ? " (from its last known version vector)" : ""));
  }
  if (r.clock_skew_ms && (*r.clock_skew_ms > kClockSkewWarnMs || *r.clock_skew_ms < -kClockSkewWarnMs)) {
    r.problems.push_back("clock skew " + format_skew(*r.clock_skew_ms));
  }
  if (r.cert_status == "expired") {
    r.problems.push_back("certificate expired");
  } else if (r.cert_status != "revoked" && r.cert_valid_until_ms && o.wall_clock_ms &&
             *r.cert_valid_until_ms < o.wall_clock_ms + kCertWarnMs) {
    r.problems.push_back("certificate expires in " + days_left(*r.cert_valid_until_ms, o.wall_clock_ms));
  }
}

void compute_gaps(const Overview& o, NodeRow& r) {
  if (r.is_self) {
    r.behind_total = 0;
    return;
  }
  if (!r.vv_known) return;
  std::uint64_t behind = 0, pending = 0;
  for (const auto& [origin, ours] : o.version_vector) {
    std::uint64_t theirs = vv_get(r.version_vector, origin);
    if (ours > theirs) {
      r.behind_by_origin[origin] = ours - theirs;
      behind += ours - theirs;
    }
  }
  for (const auto& [origin, theirs] : r.version_vector) {
    std::uint64_t ours = vv_get(o.version_vector, origin);
    if (theirs > ours) pending += theirs - ours;
  }
  r.behind_total = behind;
  // A node whose link is down may have written since we last saw it: pending is unknown.
  if (!r.vv_stale) r.pending_total = pending;
}

Parsed<Overview> fail(std::string why) {
  Parsed<Overview> p;
  p.error = std::move(why);
  return p;
}

// Replaces control bytes and invalid UTF-8 by '?', so a name can never move the cursor.
std::string sanitize(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    // C1 controls (U+0080..U+009F) are control characters too.
    if (ok && len == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) ok = false;
    if (!ok) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(s, i, len);
    i += len;
  }
  return out;
}

std::string pad_line(const std::string& s, std::size_t width) { return fit(s, width); }

// "originhex:seq" -> "store-1:7".
std::string op_ref_named(const std::map<std::string, std::string>& names, const std::string& ref) {
  std::size_t colon = ref.find(':');
  if (colon == std::string::npos) return ref;
  return name_of(names, ref.substr(0, colon)) + ":" + ref.substr(colon + 1);
}

std::string format_date_time(std::uint64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d-%02d %02d:%02d:%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string format_date(std::uint64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

}  // namespace

// --- formatting helpers ---

std::string format_age(std::uint64_t ms) {
  std::uint64_t s = ms / 1000;
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%llum%02llu", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lluh%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llud%02llu", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600));
  }
  return buf;
}

std::string format_skew(std::int64_t ms) {
  const char* sign = ms < 0 ? "-" : "+";
  std::uint64_t a = ms < 0 ? static_cast<std::uint64_t>(-(ms + 1)) + 1 : static_cast<std::uint64_t>(ms);
  char buf[40];
  if (a < 1000) {
    std::snprintf(buf, sizeof buf, "%s%llums", sign, static_cast<unsigned long long>(a));
  } else if (a < 60'000) {
    std::snprintf(buf, sizeof buf, "%s%llu.%llus", sign, static_cast<unsigned long long>(a / 1000),
                  static_cast<unsigned long long>(a % 1000 / 100));
  } else if (a < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%s%llum", sign, static_cast<unsigned long long>(a / 60'000));
  } else {
    std::snprintf(buf, sizeof buf, "%s%lluh", sign, static_cast<unsigned long long>(a / 3'600'000));
  }
  return buf;
}

std::string format_minor(std::int64_t minor) {
  bool neg = minor < 0;
  std::uint64_t a = neg ? static_cast<std::uint64_t>(-(minor + 1)) + 1 : static_cast<std::uint64_t>(minor);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%llu.%02llu", neg ? "-" : "", static_cast<unsigned long long>(a / 100),
                static_cast<unsigned long long>(a % 100));
  return buf;
}

std::string format_clock(std::uint64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string short_id(const std::string& hex) { return hex.size() > 8 ? hex.substr(0, 8) : hex; }

std::string name_of(const std::map<std::string, std::string>& names, const std::string& node_id) {
  if (node_id.empty()) return "-";
  auto it = names.find(node_id);
  if (it != names.end() && !it->second.empty()) return it->second;
  return short_id(node_id);
}

std::string fit(const std::string& raw, std::size_t width, bool right_align) {
  std::string s = sanitize(raw);
  // Columns = UTF-8 code points (names are short; wide CJK glyphs may overhang by design).
  std::size_t cols = 0, cut = s.size();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) continue;
    if (cols == width) {
      cut = i;
      break;
    }
    ++cols;
  }
  if (cut < s.size()) {
    s.resize(cut);
    if (width >= 2) {
      // Mark the cut with '~' in the last column.
      std::size_t last = s.size();
      while (last > 0 && (static_cast<unsigned char>(s[last - 1]) & 0xc0) == 0x80) --last;
      if (last > 0) s.erase(last - 1);
      s.push_back('~');
    }
    return s;
  }
  std::string padding(width - cols, ' ');
  return right_align ? padding + s : s + padding;
}

// --- overview ---

namespace {

// The note for an optional part that is missing (null: older node) or an error answer; empty
// when the part is there.
std::string missing_part_note(const Json& part, const std::string& what, const std::string& if_no_route) {
  if (part.is_null()) return if_no_route;
  if (const Json* e = field(part, "error"); e && e->is_string()) {
    return what + " unavailable: " + get_str(part, "message", e->get<std::string>());
  }
  return "";
}

// Reads GET /admin/v1/node into `o` and adds the viewed node's own row. Error text if the
// fields every screen needs are missing.
std::string read_node(const Json& n, Overview& o) {
  if (!n.is_object()) return "GET /admin/v1/node did not answer a JSON object: not an Outpost admin API?";
  for (const char* key : {"node_id", "name"}) {
    const Json* v = field(n, key);
    if (!v || !v->is_string()) {
      return std::string("GET /admin/v1/node lacks '") + key +
             "': an older or unknown admin API schema (outpost-top needs outpostd 0.1 or later)";
    }
  }
  auto vv = parse_vv(field(n, "version_vector"));
  if (!vv) return "GET /admin/v1/node has no valid 'version_vector': an older or unknown admin API schema";
  o.node_id = get_str(n, "node_id");
  o.name = get_str(n, "name");
  o.role = get_str(n, "role", "store");
  o.software_version = get_str(n, "software_version");
  o.schema_version = get_i64(n, "schema_version");
  o.wall_clock_ms = get_u64(n, "wall_clock_ms").value_or(0);
  o.ops = get_u64(n, "ops").value_or(0);
  o.partitioned = get_bool(n, "partitioned");
  o.links_up = get_u64(n, "links_up");
  o.peer_listen = get_str(n, "peer_listen");
  o.version_vector = std::move(*vv);
  o.names[o.node_id] = o.name;
  if (!o.wall_clock_ms) o.notes.push_back("node sent no wall_clock_ms: ages unknown");

  NodeRow self;
  self.is_self = true;
  self.node_id = o.node_id;
  self.name = o.name;
  self.role = o.role;
  self.link = o.partitioned ? "partitioned" : "self";
  self.address = o.peer_listen;
  self.vv_known = true;
  self.version_vector = o.version_vector;
  self.software_version = o.software_version;
  self.schema_version = o.schema_version;
  o.rows.push_back(std::move(self));
  return "";
}

// Reads GET /admin/v1/roster (optional: older nodes answer 404) and names its nodes.
std::vector<RosterNode> read_roster(const Json& roster, Overview& o) {
  std::vector<RosterNode> out;
  if (std::string note = missing_part_note(roster, "roster", "no roster route: certificates and unlinked nodes not shown");
      !note.empty()) {
    o.notes.push_back(note);
    return out;
  }
  const Json* nodes = field(roster, "nodes");
  if (!nodes || !nodes->is_array()) {
    o.notes.push_back("roster answer not understood");
    return out;
  }
  for (const auto& e : *nodes) {
    RosterNode r{get_str(e, "node_id"), get_str(e, "name"), get_str(e, "role"), get_str(e, "status"),
                 get_u64(e, "valid_until_ms")};
    if (r.node_id.empty()) continue;
    if (!r.name.empty()) o.names[r.node_id] = r.name;
    out.push_back(std::move(r));
  }
  return out;
}

const RosterNode* roster_find(const std::vector<RosterNode>& roster, const std::string& id, const std::string& name) {
  for (const auto& r : roster) {
    if (!id.empty() ? r.node_id == id : (!name.empty() && r.name == name)) return &r;
  }
  return nullptr;
}

// One entry of GET /admin/v1/peers as a row (an outbound peer not yet reached has no node id:
// it is matched to the roster by its configured name).
NodeRow peer_row(const Json& p, const std::vector<RosterNode>& roster) {
  NodeRow r;
  r.node_id = get_str(p, "node_id");
  r.name = get_str(p, "name");
  if (r.node_id.empty()) {
    if (const RosterNode* rn = roster_find(roster, "", r.name)) r.node_id = rn->node_id;
  }
  r.role = get_str(p, "role");
  r.address = get_str(p, "address");
  r.direction = get_str(p, "direction");
  r.link = get_str(p, "state");
  if (r.link.empty()) r.link = "unknown";
  if (auto v = get_u64(p, "connected_since_ms"); v && *v) r.connected_since_ms = v;
  if (auto v = get_u64(p, "last_contact_ms"); v && *v) r.last_contact_ms = v;
  if (auto v = get_u64(p, "down_since_ms"); v && *v) r.down_since_ms = v;
  if (const Json* seen = field(p, "seen_since_start"); seen && seen->is_boolean()) r.seen_since_start = seen->get<bool>();
  if (r.link == "connected") {
    if (auto pvv = parse_vv(field(p, "peer_version_vector"))) {
      r.vv_known = true;
      r.version_vector = std::move(*pvv);
    }
    r.clock_skew_ms = get_i64(p, "clock_skew_ms");
    r.software_version = get_str(p, "software_version");  // from the peer's HELLO (absent: older peer)
    r.schema_version = get_i64(p, "schema_version");
  }
  r.failures = get_u64(p, "failures").value_or(0);
  r.last_error = get_str(p, "last_error");
  r.history = parse_history(field(p, "history"));
  if (const Json* st = field(p, "stats"); st && st->is_object()) r.stats = *st;
  return r;
}

// Adds a row per peer of GET /admin/v1/peers. Error text if the answer has no peer list.
std::string read_peers(const Json& peers_answer, const std::vector<RosterNode>& roster, Overview& o) {
  if (std::string note = missing_part_note(peers_answer, "peers", "no peers route: link states not shown");
      !note.empty()) {
    o.notes.push_back(note);
    return "";
  }
  const Json* peers = field(peers_answer, "peers");
  if (!peers || !peers->is_array()) {
    return "GET /admin/v1/peers did not answer {\"peers\": [...]}: an older or unknown admin API schema";
  }
  for (const auto& p : *peers) {
    if (!p.is_object()) continue;
    NodeRow r = peer_row(p, roster);
    if (!r.node_id.empty() && r.node_id == o.node_id) continue;
    if (!r.node_id.empty() && !r.name.empty() && !o.names.count(r.node_id)) o.names[r.node_id] = r.name;
    // One row per node: keep the best link when a node shows twice (a dial and an accept).
    auto same = std::find_if(o.rows.begin(), o.rows.end(), [&](const NodeRow& x) { return x.key() == r.key(); });
    if (same == o.rows.end()) {
      o.rows.push_back(std::move(r));
    } else if (link_rank(r.link) < link_rank(same->link)) {
      *same = std::move(r);
    }
  }
  return "";
}

// Adds a row for each roster node without a link row.
void add_unlinked_roster_rows(const std::vector<RosterNode>& roster, Overview& o) {
  for (const auto& rn : roster) {
    auto it = std::find_if(o.rows.begin(), o.rows.end(), [&](const NodeRow& x) { return x.node_id == rn.node_id; });
    if (it != o.rows.end()) continue;
    NodeRow r;
    r.node_id = rn.node_id;
    r.name = rn.name;
    r.role = rn.role;
    // HQ expects a link from every store; a store links only to the peers it is configured with.
    r.link = rn.status == "revoked" ? "revoked" : o.role == "hq" ? "down" : "no-link";
    o.rows.push_back(std::move(r));
  }
}

// For a node whose link is down: what the last refreshes saw of it.
void fill_from_memory(const LinkMemory& memory, NodeRow& r) {
  if (r.is_self || r.link == "connected" || r.node_id.empty()) return;
  auto seen = memory.by_node_id.find(r.node_id);
  if (seen == memory.by_node_id.end()) return;
  r.vv_known = true;
  r.vv_stale = true;
  r.version_vector = seen->second.version_vector;
  if (!r.last_contact_ms) r.last_contact_ms = seen->second.last_contact_ms;
  if (r.history.empty()) r.history = seen->second.history;
  if (r.software_version.empty()) r.software_version = seen->second.software_version;
  if (!r.schema_version) r.schema_version = seen->second.schema_version;
  if (seen->second.lost_ms) {
    r.history.insert(r.history.begin(), LinkEvent{*seen->second.lost_ms, "link seen down by outpost-top"});
  }
}

// Reads GET /admin/v1/checkpoints into `o.checkpoints`; an older node or an odd answer only
// adds a note (the detail screen then shows no checkpoints).
void read_checkpoints(const Json& cps, Overview& o) {
  if (std::string note = missing_part_note(cps, "checkpoints", "no checkpoints route: checkpoints not shown");
      !note.empty()) {
    o.notes.push_back(note);
    return;
  }
  const Json* list = field(cps, "checkpoints");
  if (!list || !list->is_array()) {
    o.notes.push_back("checkpoints answer not understood");
    return;
  }
  if (const Json* set = field(cps, "tree_head_set"); set && set->is_object()) {
    o.tree_heads_version = get_u64(*set, "version").value_or(0);
    o.tree_heads_issued_ms = get_u64(*set, "issued_ms").value_or(0);
    if (const Json* by = field(*set, "tree_size_by_origin"); by && by->is_object()) {
      for (auto it = by->begin(); it != by->end() && o.tree_heads.size() < kCheckpointsShownMax; ++it) {
        if (it->is_number_integer() && it->get<std::int64_t>() >= 0) o.tree_heads[it.key()] = it->get<std::uint64_t>();
      }
    }
  }
  for (const auto& c : *list) {
    std::string origin = get_str(c, "origin");
    auto size = get_u64(c, "tree_size");
    if (origin.empty() || !size) continue;
    if (o.checkpoints.size() >= kCheckpointsShownMax) break;
    CheckpointInfo info;
    info.tree_size = *size;
    info.issued_ms = get_u64(c, "issued_ms").value_or(0);
    info.ops_after = get_u64(c, "ops_after").value_or(0);
    info.root = get_str(c, "root");
    o.checkpoints[origin] = std::move(info);
  }
}

// Reads the per-node summary of GET /admin/v1/alerts ("by_source"; absent from an older node).
void read_alerts_by_node(const Json& alerts, Overview& o) {
  const Json* by = field(alerts, "by_source");
  if (!by || !by->is_array()) return;
  o.alerts_by_node_known = true;
  for (const auto& e : *by) {
    std::string id = get_str(e, "node_id");
    auto count = get_u64(e, "count");
    if (id.empty() || !count || o.alerts_by_node.size() >= kCheckpointsShownMax) continue;
    o.alerts_by_node[id] = *count;
  }
  for (auto& r : o.rows) {
    if (auto it = o.alerts_by_node.find(r.node_id); !r.node_id.empty() && it != o.alerts_by_node.end()) {
      r.alerts = it->second;
    }
  }
}

}  // namespace

Parsed<Overview> build_overview(const Snapshot& snap, const LinkMemory& memory) {
  Overview o;
  if (std::string err = read_node(snap.node, o); !err.empty()) return fail(err);
  std::vector<RosterNode> roster = read_roster(snap.roster, o);
  if (std::string err = read_peers(snap.peers, roster, o); !err.empty()) return fail(err);
  add_unlinked_roster_rows(roster, o);
  for (auto& r : o.rows) {
    if (const RosterNode* rn = roster_find(roster, r.node_id, "")) {
      r.cert_status = rn->status;
      r.cert_valid_until_ms = rn->valid_until_ms;
      if (r.role.empty()) r.role = rn->role;
      if (r.name.empty()) r.name = rn->name;
    }
    if (r.name.empty()) r.name = r.node_id.empty() ? "?" : short_id(r.node_id);
    fill_from_memory(memory, r);
    compute_gaps(o, r);
    add_problems(o, r);
  }
  std::stable_sort(o.rows.begin() + 1, o.rows.end(), [](const NodeRow& a, const NodeRow& b) {
    bool ahq = a.role == "hq", bhq = b.role == "hq";
    if (ahq != bhq) return ahq;
    return a.name < b.name;
  });
  // Alerts count for the header (the alerts screen parses the list itself).
  if (std::string note = missing_part_note(snap.alerts, "alerts", "no alerts route"); !note.empty()) {
    o.notes.push_back(note);
  } else if (const Json* a = field(snap.alerts, "alerts"); a && a->is_array()) {
    o.alerts_total = get_u64(snap.alerts, "total").value_or(a->size());
    read_alerts_by_node(snap.alerts, o);
  } else {
    o.notes.push_back("alerts answer not understood");
  }
  read_checkpoints(snap.checkpoints, o);
  Parsed<Overview> out;
  out.value = std::move(o);
  return out;
}

void remember_links(const Overview& o, LinkMemory* memory) {
  for (const auto& r : o.rows) {
    if (r.is_self || r.node_id.empty()) continue;
    if (r.link != "connected" || !r.vv_known || r.vv_stale) {
      auto it = memory->by_node_id.find(r.node_id);
      if (r.link != "connected" && it != memory->by_node_id.end() && !it->second.lost_ms) {
        it->second.lost_ms = o.wall_clock_ms;
      }
      continue;
    }
    auto& seen = memory->by_node_id[r.node_id];
    seen.version_vector = r.version_vector;
    seen.last_contact_ms = r.last_contact_ms;
    seen.clock_skew_ms = r.clock_skew_ms;
    seen.software_version = r.software_version;
    seen.schema_version = r.schema_version;
    seen.history = r.history;
    seen.lost_ms.reset();
  }
  // Bounded: forget nodes no longer listed at all (removed from the roster, or never enrolled).
  for (auto it = memory->by_node_id.begin(); it != memory->by_node_id.end();) {
    bool listed = std::any_of(o.rows.begin(), o.rows.end(), [&](const NodeRow& r) { return r.node_id == it->first; });
    it = listed ? std::next(it) : memory->by_node_id.erase(it);
  }
}

std::vector<const NodeRow*> filter_rows(const Overview& o, const std::string& filter) {
  std::vector<const NodeRow*> out;
  for (const auto& r : o.rows) {
    if (filter.empty() || contains_ci(r.name, filter) || contains_ci(r.node_id, filter) ||
        contains_ci(r.role, filter) || contains_ci(r.link, filter) || (filter == "!" && r.problem())) {
      out.push_back(&r);
    }
  }
  return out;
}

namespace {

// Column widths of the overview table. A wide screen first widens the name column (to 16), then
// gives the rest to the BEHIND BY ORIGIN column (shown from 12 columns on), then more name.
struct Layout {
  std::size_t name = 12, role = 5, link = 11, contact = 7, behind = 7, pending = 6, skew = 7, cert = 7, version = 8;
  std::size_t by_origin = 0;  // 0: not shown
  std::size_t alerts = 0;     // 0: not shown
};

constexpr std::size_t kByOriginMin = 12;
constexpr std::size_t kByOriginMax = 40;
constexpr std::size_t kAlertsColumn = 6;

Layout layout_for(std::size_t width) {
  Layout l;
  std::size_t fixed = 2 + l.role + 1 + l.link + 1 + l.contact + 1 + l.behind + 1 + l.pending + 1 + l.skew + 1 +
                      l.cert + 1 + l.version;
  if (width <= fixed + 1 + l.name) return l;
  std::size_t room = width - fixed - 1;  // for the name and, when it fits, " " + by-origin
  l.name = std::min<std::size_t>(room, 16);
  if (room >= l.name + 1 + kByOriginMin) {
    std::size_t rest = room - l.name - 1;  // for by-origin and, when both fit, the alerts column
    if (rest >= kByOriginMin + 1 + kAlertsColumn) {
      l.alerts = kAlertsColumn;
      rest -= kAlertsColumn + 1;
    }
    l.by_origin = std::min(rest, kByOriginMax);
    l.name = std::min<std::size_t>(room - 1 - l.by_origin - (l.alerts ? l.alerts + 1 : 0), 24);
  }
  return l;
}

}  // namespace

std::vector<std::string> overview_header(const Overview& o, const std::string& refreshed_text) {
  std::size_t nodes = o.rows.size(), peers = 0, up = 0, problems = 0;
  std::uint64_t behind = 0, pending = 0;
  for (const auto& r : o.rows) {
    if (r.problem()) ++problems;
    if (r.is_self) continue;
    if (r.link == "no-link") continue;  // not expected to link (a store's view of other stores)
    ++peers;
    if (r.link == "connected") ++up;
    behind += r.behind_total.value_or(0);
    pending += r.pending_total.value_or(0);
  }
  std::string line1 = "outpost-top  " + o.name + " (" + o.role + " " + short_id(o.node_id) + ")  refreshed " +
                      refreshed_text;
  // PARTITIONED leads the line so that a narrow terminal never cuts it off.
  std::string line2 = std::string(o.partitioned ? "PARTITIONED  " : "") + plural(nodes, "node") + "  links " + std::to_string(up) + "/" + std::to_string(peers) +
                      " up  behind " + std::to_string(behind) + "  pending " + std::to_string(pending) +
                      "  problems " + std::to_string(problems) + "  alerts " +
                      (o.alerts_total ? std::to_string(*o.alerts_total) : std::string("?")) + "  ops " +
                      std::to_string(o.ops);
  return {line1, line2};
}

std::string overview_title_line(std::size_t width) {
  Layout l = layout_for(width);
  std::string s = "  " + fit("NAME", l.name) + " " + fit("ROLE", l.role) + " " + fit("LINK", l.link) + " " +
                  fit("CONTACT", l.contact, true) + " " + fit("BEHIND", l.behind, true) + " " +
                  fit("PEND", l.pending, true) + " " + fit("SKEW", l.skew, true) + " " + fit("CERT", l.cert, true) +
                  " " + fit("VERSION", l.version);
  if (l.alerts) s += " " + fit("ALERTS", l.alerts, true);
  if (l.by_origin) s += " " + fit("BEHIND BY ORIGIN", l.by_origin);
  return pad_line(s, width);
}

namespace {

// The alerts a row's node raised, as the viewed node holds them ("-": unknown).
std::string alerts_text(const Overview& o, const NodeRow& r) {
  if (r.alerts) return std::to_string(*r.alerts);
  return o.alerts_by_node_known && !r.node_id.empty() ? "0" : "-";
}

}  // namespace

std::string overview_row_line(const Overview& o, const NodeRow& r, std::size_t width) {
  Layout l = layout_for(width);
  std::string contact = "-";
  if (!r.is_self && r.last_contact_ms && o.wall_clock_ms) {
    contact = format_age(o.wall_clock_ms > *r.last_contact_ms ? o.wall_clock_ms - *r.last_contact_ms : 0);
  } else if (!r.is_self && r.seen_since_start && !*r.seen_since_start) {
    contact = "never";
  }
  std::string behind = "?";
  if (r.is_self) {
    behind = "-";
  } else if (r.behind_total) {
    behind = (r.vv_stale ? "~" : "") + std::to_string(*r.behind_total);
  }
  std::string pending = r.is_self ? "-" : r.pending_total ? std::to_string(*r.pending_total) : "?";
  std::string skew = r.clock_skew_ms ? format_skew(*r.clock_skew_ms) : "-";
  std::string cert = "-";
  if (r.cert_status == "revoked") {
    cert = "revoked";
  } else if (r.cert_valid_until_ms && o.wall_clock_ms) {
    cert = days_left(*r.cert_valid_until_ms, o.wall_clock_ms);
  } else if (r.cert_status == "expired") {
    cert = "expired";
  }
  std::string version = "-";
  if (!r.software_version.empty() || r.schema_version) {
    version = (r.software_version.empty() ? "?" : r.software_version) +
              (r.schema_version ? "/s" + std::to_string(*r.schema_version) : "");
  }
  std::string s = std::string(r.problem() ? "!" : " ") + " " + fit(r.name, l.name) + " " + fit(r.role, l.role) +
                  " " + fit(r.link, l.link) + " " + fit(contact, l.contact, true) + " " +
                  fit(behind, l.behind, true) + " " + fit(pending, l.pending, true) + " " +
                  fit(skew, l.skew, true) + " " + fit(cert, l.cert, true) + " " + fit(version, l.version);
  if (l.alerts) s += " " + fit(alerts_text(o, r), l.alerts, true);
  if (l.by_origin) s += " " + fit(r.is_self ? "-" : behind_by_origin_text(o, r), l.by_origin);
  return pad_line(s, width);
}

std::string behind_by_origin_text(const Overview& o, const NodeRow& r) {
  if (r.is_self || !r.behind_total) return "";
  std::vector<std::pair<std::uint64_t, std::string>> gaps;
  for (const auto& [origin, gap] : r.behind_by_origin) {
    if (gap > 0) gaps.emplace_back(gap, name_of(o.names, origin));
  }
  std::stable_sort(gaps.begin(), gaps.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out;
  for (const auto& [gap, name] : gaps) out += (out.empty() ? "" : ", ") + name + " " + std::to_string(gap);
  return out;
}

std::string selected_row_summary(const Overview& o, const NodeRow& r, std::size_t width) {
  std::string s = r.name + ": ";
  if (r.is_self) {
    s += "the node outpost-top talks to";
  } else if (!r.behind_total) {
    s += "behind unknown (no session with it since outpost-top started)";
  } else if (*r.behind_total == 0) {
    s += "behind 0";
  } else {
    s += std::string("behind ") + (r.vv_stale ? "~" : "") + std::to_string(*r.behind_total) + " = " +
         behind_by_origin_text(o, r);
  }
  if (r.alerts && *r.alerts > 0) s += "; " + plural(*r.alerts, "alert") + " raised there";
  return pad_line(s, width);
}

std::string overview_text(const Overview& o, const std::string& refreshed_text, std::size_t width) {
  std::string out;
  auto line = [&](const std::string& s) {
    std::string t = s;
    while (!t.empty() && t.back() == ' ') t.pop_back();
    out += t + "\n";
  };
  for (const auto& h : overview_header(o, refreshed_text)) line(h);
  line("");
  line(overview_title_line(width));
  for (const auto& r : o.rows) line(overview_row_line(o, r, width));
  bool any = false;
  for (const auto& r : o.rows) {
    for (const auto& p : r.problems) {
      if (!any) {
        line("");
        line("problems:");
        any = true;
      }
      line("  " + r.name + ": " + p);
    }
  }
  bool any_alerts = false;
  for (const auto& r : o.rows) {
    if (!r.alerts || *r.alerts == 0) continue;
    if (!any_alerts) {
      line("");
      line("alerts by node (held at " + o.name + "):");
      any_alerts = true;
    }
    line("  " + r.name + ": " + std::to_string(*r.alerts));
  }
  if (!o.notes.empty()) {
    line("");
    for (const auto& note : o.notes) line("note: " + note);
  }
  return out;
}

Json overview_json(const Overview& o, std::uint64_t refreshed_ms) {
  Json nodes = Json::array();
  for (const auto& r : o.rows) {
    Json j;
    j["name"] = r.name;
    j["node_id"] = r.node_id;
    j["role"] = r.role;
    j["link"] = r.link;
    j["self"] = r.is_self;
    j["problem"] = r.problem();
    j["problems"] = r.problems;
    j["last_contact_ms"] = r.last_contact_ms ? Json(*r.last_contact_ms) : Json();
    j["down_since_ms"] = r.down_since_ms ? Json(*r.down_since_ms) : Json();
    j["seen_since_start"] = r.seen_since_start ? Json(*r.seen_since_start) : Json();
    j["alerts"] = r.alerts ? Json(*r.alerts) : o.alerts_by_node_known && !r.node_id.empty() ? Json(0) : Json();
    j["behind_total"] = r.behind_total ? Json(*r.behind_total) : Json();
    j["behind_last_known"] = r.vv_stale;
    Json by = Json::object();
    for (const auto& [origin, gap] : r.behind_by_origin) by[origin] = gap;
    j["behind_by_origin"] = by;
    if (auto cp = o.checkpoints.find(r.node_id); !r.node_id.empty() && cp != o.checkpoints.end()) {
      j["checkpoint"] = {{"tree_size", cp->second.tree_size}, {"issued_ms", cp->second.issued_ms},
                         {"ops_after", cp->second.ops_after}};
    } else {
      j["checkpoint"] = Json();
    }
    j["pending_total"] = r.pending_total ? Json(*r.pending_total) : Json();
    j["clock_skew_ms"] = r.clock_skew_ms ? Json(*r.clock_skew_ms) : Json();
    j["cert_status"] = r.cert_status;
    j["cert_valid_until_ms"] = r.cert_valid_until_ms ? Json(*r.cert_valid_until_ms) : Json();
    j["software_version"] = r.software_version.empty() ? Json() : Json(r.software_version);
    j["schema_version"] = r.schema_version ? Json(*r.schema_version) : Json();
    nodes.push_back(std::move(j));
  }
  Json out;
  out["node"] = {{"node_id", o.node_id}, {"name", o.name}, {"role", o.role}, {"ops", o.ops},
                 {"partitioned", o.partitioned}, {"wall_clock_ms", o.wall_clock_ms}};
  out["refreshed_ms"] = refreshed_ms;
  out["nodes"] = nodes;
  out["alerts_total"] = o.alerts_total ? Json(*o.alerts_total) : Json();
  out["notes"] = o.notes;
  return out;
}

// --- alerts ---

Parsed<AlertsView> parse_alerts(const Json& j) {
  Parsed<AlertsView> out;
  const Json* list = field(j, "alerts");
  if (!list || !list->is_array()) {
    out.error = "GET /admin/v1/alerts did not answer {\"alerts\": [...]}: an older or unknown admin API schema";
    return out;
  }
  AlertsView v;
  for (const auto& a : *list) {
    if (!a.is_object()) continue;
    if (v.alerts.size() >= kAlertsShownMax) break;
    v.alerts.push_back({get_u64(a, "id").value_or(0), get_u64(a, "at_ms").value_or(0), get_str(a, "kind", "?"),
                        get_str(a, "node"), get_str(a, "message"), get_str(a, "source"), get_str(a, "source_name")});
  }
  if (const Json* by = field(j, "by_source"); by && by->is_array()) {
    for (const auto& e : *by) {
      auto n = get_u64(e, "count");
      if (!n || v.by_source.size() >= kAlertsShownMax) continue;
      std::string name = get_str(e, "name");
      v.by_source.emplace_back(name.empty() ? short_id(get_str(e, "node_id")) : name, *n);
    }
    std::stable_sort(v.by_source.begin(), v.by_source.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
  }
  std::stable_sort(v.alerts.begin(), v.alerts.end(), [](const Alert& a, const Alert& b) {
    if (a.at_ms != b.at_ms) return a.at_ms > b.at_ms;
    return a.id > b.id;
  });
  std::map<std::string, std::uint64_t> counts;
  if (const Json* c = field(j, "counts"); c && c->is_object()) {
    for (auto it = c->begin(); it != c->end(); ++it) {
      if (auto n = get_u64(*c, it.key().c_str())) counts[it.key()] = *n;
    }
  } else {
    for (const auto& a : v.alerts) counts[a.kind]++;
  }
  v.counts.assign(counts.begin(), counts.end());
  std::stable_sort(v.counts.begin(), v.counts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  out.value = std::move(v);
  return out;
}

std::vector<std::string> alerts_lines(const AlertsView& v, const std::map<std::string, std::string>& names,
                                      const std::string& filter, std::size_t width) {
  std::vector<std::string> out;
  std::uint64_t total = 0;
  std::string counts;
  for (const auto& [kind, n] : v.counts) {
    total += n;
    counts += "  " + kind + " " + std::to_string(n);
  }
  std::string sources;
  for (const auto& [name, n] : v.by_source) sources += (sources.empty() ? "" : ", ") + name + " " + std::to_string(n);
  out.push_back(pad_line("alerts " + std::to_string(total) + " (newest first)" + (counts.empty() ? "" : ":" + counts) +
                             (sources.empty() ? "" : "   from " + sources) +
                             (filter.empty() ? "" : "   filter: " + filter),
                         width));
  out.push_back(pad_line(fit("TIME", 14) + " " + fit("FROM", 12) + " " + fit("KIND", 15) + " " + fit("ABOUT", 12) +
                             " MESSAGE",
                         width));
  std::size_t shown = 0;
  for (const auto& a : v.alerts) {
    std::string node = name_of(names, a.node);
    std::string from = !a.source_name.empty() ? a.source_name : name_of(names, a.source);
    if (!filter.empty() && !contains_ci(a.kind, filter) && !contains_ci(node, filter) &&
        !contains_ci(a.message, filter) && !contains_ci(a.node, filter) && !contains_ci(from, filter)) {
      continue;
    }
    ++shown;
    out.push_back(pad_line(fit(a.at_ms ? format_date_time(a.at_ms) : "-", 14) + " " + fit(from, 12) + " " +
                               fit(a.kind, 15) + " " + fit(node, 12) + " " + sanitize(a.message),
                           width));
  }
  if (shown == 0) out.push_back(pad_line(v.alerts.empty() ? "  no alerts" : "  no alert matches the filter", width));
  return out;
}

// --- node detail ---

std::vector<std::string> node_detail_lines(const Overview& o, const NodeRow& r, const AlertsView* alerts,
                                           std::size_t width) {
  std::vector<std::string> out;
  auto line = [&](const std::string& s) { out.push_back(pad_line(s, width)); };
  line(r.name + "  (" + (r.role.empty() ? "?" : r.role) + ", " + (r.node_id.empty() ? "id unknown" : r.node_id) +
       ")  link " + r.link + (r.is_self ? "  [the node outpost-top talks to]" : ""));
  std::string where;
  if (!r.address.empty()) where += "address " + r.address + "  ";
  if (!r.direction.empty()) where += r.direction + "  ";
  if (r.connected_since_ms) where += "connected since " + format_clock(*r.connected_since_ms) + "  ";
  if (r.last_contact_ms && o.wall_clock_ms) {
    where += "last contact " +
             format_age(o.wall_clock_ms > *r.last_contact_ms ? o.wall_clock_ms - *r.last_contact_ms : 0) + " ago";
    if (r.seen_since_start && !*r.seen_since_start) where += " (before " + o.name + " started)";
  } else if (!r.is_self && r.seen_since_start && !*r.seen_since_start) {
    where += "never heard from since " + o.name + " started";
  }
  if (!where.empty()) line(where);
  if (r.down_since_ms) {
    line("link down since " + format_date_time(*r.down_since_ms) +
         (o.wall_clock_ms > *r.down_since_ms ? " (" + format_age(o.wall_clock_ms - *r.down_since_ms) + ")" : ""));
  }
  std::string facts;
  if (r.clock_skew_ms) facts += "clock skew " + format_skew(*r.clock_skew_ms) + "  ";
  if (!r.cert_status.empty()) {
    facts += "certificate " + r.cert_status;
    if (r.cert_valid_until_ms) {
      facts += ", valid until " + format_date(*r.cert_valid_until_ms);
      if (o.wall_clock_ms) facts += " (" + days_left(*r.cert_valid_until_ms, o.wall_clock_ms) + ")";
    }
    facts += "  ";
  }
  if (r.is_self || !r.software_version.empty() || r.schema_version) {
    facts += "outpostd " + (r.software_version.empty() ? std::string("?") : r.software_version) + ", schema " +
             (r.schema_version ? std::to_string(*r.schema_version) : std::string("?"));
    if (r.is_self) facts += ", " + std::to_string(o.ops) + " ops";
  }
  if (!facts.empty()) line(facts);
  if (r.stats.is_object()) {
    std::string s = "link stats:";
    for (auto it = r.stats.begin(); it != r.stats.end(); ++it) {
      s += " " + it.key() + " " + (it->is_number() ? it->dump() : std::string("?"));
    }
    line(s);
  }
  line("");
  if (r.problems.empty()) {
    line("Problems: none");
  } else {
    line("Problems:");
    for (const auto& p : r.problems) line("  ! " + p);
  }

  line("");
  std::string head = "Version vector";
  if (r.vv_stale) head += " (last known: the link is down)";
  if (!r.is_self) head += "; behind = ops " + o.name + " holds that " + r.name + " lacks";
  line(head);
  if (!r.vv_known) {
    line("  unknown (no session with this node since outpost-top started)");
  } else {
    std::set<std::string> origins;
    for (const auto& [origin, seq] : o.version_vector) origins.insert(origin);
    for (const auto& [origin, seq] : r.version_vector) origins.insert(origin);
    if (r.is_self) {
      line("  " + fit("ORIGIN", 16) + " " + fit("SEQ", 10, true));
      for (const auto& origin : origins) {
        line("  " + fit(name_of(o.names, origin), 16) + " " + fit(std::to_string(vv_get(o.version_vector, origin)), 10, true));
      }
    } else {
      line("  " + fit("ORIGIN", 16) + " " + fit(o.name, 10, true) + " " + fit(r.name, 10, true) + " " +
           fit("BEHIND", 8, true) + " " + fit("PENDING", 8, true));
      for (const auto& origin : origins) {
        std::uint64_t ours = vv_get(o.version_vector, origin), theirs = vv_get(r.version_vector, origin);
        line("  " + fit(name_of(o.names, origin), 16) + " " + fit(std::to_string(ours), 10, true) + " " +
             fit(std::to_string(theirs), 10, true) + " " +
             fit(ours > theirs ? std::to_string(ours - theirs) : "0", 8, true) + " " +
             fit(theirs > ours ? std::to_string(theirs - ours) : "0", 8, true));
      }
    }
    if (origins.empty()) line("  (no ops yet)");
  }

  line("");
  line("Checkpoints (HQ's signed tree head of " + r.name + "'s own log, as " + o.name + " holds it)");
  if (r.node_id.empty()) {
    line("  unknown (node id not known)");
  } else if (auto cp = o.checkpoints.find(r.node_id); cp == o.checkpoints.end()) {
    line(o.tree_heads_version ? "  no per-origin checkpoint here (HQ keeps those)"
                              : "  none yet (HQ signs them every minute, or: outpost hq checkpoint)");
  } else {
    const CheckpointInfo& c = cp->second;
    line("  up to seq " + std::to_string(c.tree_size) + ", signed " +
         (c.issued_ms ? format_date_time(c.issued_ms) : std::string("?")) + ", root " + short_id(c.root) + "; " +
         std::to_string(c.ops_after) + " op" + (c.ops_after == 1 ? "" : "s") + " held here after it");
  }
  if (!r.node_id.empty() && o.tree_heads_version) {
    auto in_set = o.tree_heads.find(r.node_id);
    line("  HQ's tree head set v" + std::to_string(o.tree_heads_version) + " (signed " +
         (o.tree_heads_issued_ms ? format_date_time(o.tree_heads_issued_ms) : std::string("?")) + "): " +
         (in_set == o.tree_heads.end() ? std::string("does not list it (enrolled later?)")
                                       : "vouches for " + std::to_string(in_set->second) + " of its ops"));
  }

  if (!r.is_self) {
    line("");
    line("Link history (newest first)");
    if (r.history.empty()) line("  none");
    for (const auto& e : r.history) line("  " + (e.at_ms ? format_date_time(e.at_ms) : std::string("-")) + "  " + e.event);
  }

  line("");
  line("Recent errors");
  std::size_t errors = 0;
  if (!r.last_error.empty()) {
    line("  last link error: " + r.last_error + (r.failures ? " (" + plural(r.failures, "failure") + ")" : ""));
    ++errors;
  }
  if (r.alerts && *r.alerts > 0) {
    line("  " + plural(*r.alerts, "alert") + " raised at " + r.name + ", held at " + o.name + " (a: alerts view)");
    ++errors;
  }
  if (alerts) {
    for (const auto& a : alerts->alerts) {
      // The alerts it raised (reported over sync) and the alerts about it.
      if (r.node_id.empty() || (a.node != r.node_id && a.source != r.node_id)) continue;
      if (errors >= 20) break;
      std::string from = a.source.empty() || a.source == r.node_id ? "" : "  (from " + name_of(o.names, a.source) + ")";
      line("  " + (a.at_ms ? format_date_time(a.at_ms) : std::string("-")) + "  " + a.kind + "  " + a.message + from);
      ++errors;
    }
  }
  if (errors == 0) line("  none");
  return out;
}

// --- member ---

Parsed<MemberView> parse_member(const Json& j, const std::map<std::string, std::string>& names) {
  Parsed<MemberView> out;
  if (!j.is_object()) {
    out.error = "the member answer is not a JSON object";
    return out;
  }
  MemberView m;
  m.id = get_str(j, "id");
  const Json* points = field(j, "points");
  const Json* wallet = field(j, "wallet");
  if (m.id.empty() || !points || !points->is_object() || !wallet || !wallet->is_object()) {
    out.error = "the member answer lacks id, points or wallet: an older or unknown admin API schema";
    return out;
  }
  m.card = get_str(j, "card");
  m.name = get_str(j, "name");
  m.phone = get_str(j, "phone");
  m.tier = get_str(j, "tier", "?");
  m.status = get_str(j, "status");
  m.home_store = get_str(j, "home_store");
  if (!m.home_store.empty()) m.home_store = name_of(names, m.home_store);
  m.points_balance = get_i64(*points, "balance").value_or(0);
  m.wallet_balance = get_i64(*wallet, "balance").value_or(0);
  m.points_here = get_i64(*points, "rights_here");
  m.wallet_here = get_i64(*wallet, "rights_here");
  std::map<std::string, RightsShare> shares;
  auto collect = [&](const Json* acct, bool is_points) {
    const Json* by = field(*acct, "rights_by_node");
    if (!by || !by->is_object()) return;
    for (auto it = by->begin(); it != by->end(); ++it) {
      auto v = get_i64(*by, it.key().c_str());
      if (!v) continue;
      RightsShare& s = shares[it.key()];
      s.node_id = it.key();
      s.node_name = name_of(names, it.key());
      (is_points ? s.points : s.wallet) = *v;
    }
  };
  collect(points, true);
  collect(wallet, false);
  for (auto& [id, s] : shares) m.rights.push_back(s);
  std::stable_sort(m.rights.begin(), m.rights.end(),
                   [](const RightsShare& a, const RightsShare& b) { return a.node_name < b.node_name; });
  if (const Json* ops = field(j, "recent_ops"); ops && ops->is_array()) {
    for (const auto& op : *ops) {
      if (!op.is_object()) continue;
      MemberOp mo;
      mo.origin_id = get_str(op, "origin");
      mo.origin_name = name_of(names, mo.origin_id);
      mo.seq = get_u64(op, "seq").value_or(0);
      mo.kind = get_str(op, "kind", "?");
      mo.account = get_str(op, "account");
      mo.amount = get_i64(op, "amount");
      mo.hlc = get_str(op, "hlc");
      if (auto p = get_i64(op, "purchase_minor")) mo.detail = "purchase " + format_minor(*p);
      if (std::string t = get_str(op, "target"); !t.empty()) mo.detail = "to " + name_of(names, t);
      if (std::string rv = get_str(op, "reverses"); !rv.empty()) mo.detail = "reverses " + op_ref_named(names, rv);
      if (std::string rb = get_str(op, "reversed_by"); !rb.empty()) {
        mo.detail += (mo.detail.empty() ? "" : ", ") + std::string("reversed by ") + op_ref_named(names, rb);
      }
      m.recent_ops.push_back(std::move(mo));
    }
  }
  out.value = std::move(m);
  return out;
}

std::vector<std::string> member_lines(const MemberView& m, std::size_t width) {
  std::vector<std::string> out;
  auto line = [&](const std::string& s) { out.push_back(pad_line(s, width)); };
  auto amount = [](const std::string& account, std::int64_t v) {
    return account == "wallet" ? format_minor(v) : std::to_string(v);
  };
  line((m.name.empty() ? std::string("(no name)") : m.name) + "  card " + (m.card.empty() ? "-" : m.card) +
       "  phone " + (m.phone.empty() ? "-" : m.phone) + "  id " + m.id);
  line("tier " + m.tier + "  status " + (m.status.empty() ? "-" : m.status) +
       (m.home_store.empty() ? "" : "  home store " + m.home_store));
  line("points " + std::to_string(m.points_balance) +
       (m.points_here ? " (rights here " + std::to_string(*m.points_here) + ")" : "") + "   wallet " +
       format_minor(m.wallet_balance) + (m.wallet_here ? " (rights here " + format_minor(*m.wallet_here) + ")" : ""));
  line("");
  line("Escrow rights per node (what each node may spend without asking)");
  line("  " + fit("NODE", 16) + " " + fit("POINTS", 10, true) + " " + fit("WALLET", 12, true));
  if (m.rights.empty()) line("  none");
  for (const auto& s : m.rights) {
    line("  " + fit(s.node_name, 16) + " " + fit(std::to_string(s.points), 10, true) + " " +
         fit(format_minor(s.wallet), 12, true));
  }
  line("");
  line("Recent ops (newest first)");
  line("  " + fit("ORIGIN:SEQ", 20) + " " + fit("KIND", 9) + " " + fit("ACCOUNT", 7) + " " + fit("AMOUNT", 10, true) +
       "  DETAIL");
  if (m.recent_ops.empty()) line("  none");
  for (const auto& op : m.recent_ops) {
    line("  " + fit(op.origin_name + ":" + std::to_string(op.seq), 20) + " " + fit(op.kind, 9) + " " +
         fit(op.account.empty() ? "-" : op.account, 7) + " " +
         fit(op.amount ? amount(op.account, *op.amount) : "-", 10, true) + "  " + op.detail);
  }
  return out;
}

MemberQueryKind classify_member_query(const std::string& q) {
  auto digits = [](const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (q.size() == 32 && std::all_of(q.begin(), q.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; })) {
    return MemberQueryKind::kId;
  }
  if (!q.empty() && q[0] == '+') {
    std::string rest = q.substr(1);
    return digits(rest) && rest.size() >= 6 && rest.size() <= 15 ? MemberQueryKind::kPhone : MemberQueryKind::kInvalid;
  }
  if (digits(q) && q.size() >= 8 && q.size() <= 19) return MemberQueryKind::kCard;
  if (digits(q) && q.size() >= 6 && q.size() <= 15) return MemberQueryKind::kPhone;
  return MemberQueryKind::kInvalid;
}

}  // namespace outpost::tui
