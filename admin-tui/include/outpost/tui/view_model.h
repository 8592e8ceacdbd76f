// The view-model of outpost-top: pure functions from admin-API JSON (docs/admin-api.md) to what
// each screen shows: the chain overview rows and header, a node's detail, a member, the alerts,
// and the plain-text/JSON forms of `--once`. Nothing here touches a terminal, a socket or a
// clock (times come in as arguments), so every screen is unit-tested from JSON alone
// (tests/unit/tui_viewmodel_test.cc). Garbage or older-schema JSON yields an error string,
// never an exception. Not thread-safe; values only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace outpost::tui {

using Json = nlohmann::json;

// When a row counts as a problem (highlighted). The skew bound matches the node's own
// clock_skew alert (node/src/replication/peers_sessions.cc); a connected node may trail by a few
// in-flight ops, so only a large gap is flagged while it is connected (any gap counts once its
// link is down).
inline constexpr std::int64_t kClockSkewWarnMs = 5 * 60 * 1000;
inline constexpr std::uint64_t kCertWarnMs = 30ULL * 24 * 3600 * 1000;
inline constexpr std::uint64_t kBehindWarnOps = 1000;
// Bounds on what one screen keeps from an answer (the node already bounds its lists).
inline constexpr std::size_t kHistoryShownMax = 50;
inline constexpr std::size_t kAlertsShownMax = 500;
inline constexpr std::size_t kCheckpointsShownMax = 4096;  // one per origin; limits::kOriginsMax

// What one refresh fetched. `node` is required; the others are null when the route is missing
// (an older node: 404), and then the screens say what is not available.
struct Snapshot {
  Json node;    // GET /admin/v1/node
  Json peers;   // GET /admin/v1/peers
  Json alerts;  // GET /admin/v1/alerts
  Json roster;  // GET /admin/v1/roster
  Json checkpoints;  // GET /admin/v1/checkpoints
};

// The newest HQ checkpoint of one origin's log, as the viewed node holds it.
struct CheckpointInfo {
  std::uint64_t tree_size = 0;  // seq of the last op it covers
  std::uint64_t issued_ms = 0;  // HQ's clock when it signed
  std::uint64_t ops_after = 0;  // ops of that origin the viewed node holds beyond it
  std::string root;             // hex
};

struct LinkEvent {
  std::uint64_t at_ms = 0;
  std::string event;
};

// One node of the chain as seen from the node outpost-top talks to (the "viewed" node, HQ by
// default). "Behind" = ops the viewed node holds that this node lacks; "pending" = ops this
// node holds that the viewed node lacks (not yet delivered to it).
struct NodeRow {
  std::string node_id;  // 32 hex; empty for an outbound peer never reached and not in the roster
  std::string name;
  std::string role;
  // self | connected | handshaking | connecting | backoff | partitioned | down | no-link | revoked
  std::string link;
  bool is_self = false;
  std::string address;
  std::string direction;
  std::optional<std::uint64_t> last_contact_ms;     // viewed node's clock
  std::optional<std::uint64_t> connected_since_ms;  // viewed node's clock
  std::optional<std::uint64_t> down_since_ms;       // its link went down then (viewed node's clock)
  // False when the viewed node has not heard from it since it started (its last contact, if
  // any, is from before); unknown for an older node that does not say.
  std::optional<bool> seen_since_start;
  std::optional<std::uint64_t> alerts;  // alerts it raised, as the viewed node holds them
  bool vv_known = false;
  bool vv_stale = false;  // remembered from an earlier refresh (the link is down now)
  std::map<std::string, std::uint64_t> version_vector;
  std::map<std::string, std::uint64_t> behind_by_origin;  // only origins with a gap
  std::optional<std::uint64_t> behind_total;
  std::optional<std::uint64_t> pending_total;
  std::optional<std::int64_t> clock_skew_ms;
  std::optional<std::uint64_t> cert_valid_until_ms;
  std::string cert_status;  // active | expired | revoked | "" (no roster)
  std::string software_version;
  std::optional<std::int64_t> schema_version;
  std::uint64_t failures = 0;
  std::string last_error;
  std::vector<LinkEvent> history;  // newest first
  Json stats;                      // as given by the node, or null
  std::vector<std::string> problems;

  bool problem() const { return !problems.empty(); }
  // The key a screen keeps its selection by across refreshes.
  std::string key() const { return node_id.empty() ? "name:" + name : node_id; }
};

struct Overview {
  std::string node_id, name, role, software_version, peer_listen;
  std::optional<std::int64_t> schema_version;
  std::uint64_t wall_clock_ms = 0;
  std::uint64_t ops = 0;
  bool partitioned = false;
  std::optional<std::uint64_t> links_up;
  std::map<std::string, std::uint64_t> version_vector;
  std::vector<NodeRow> rows;                  // the viewed node first, then HQ nodes, then by name
  std::map<std::string, std::string> names;   // node id -> name, from roster, peers and self
  std::vector<std::string> notes;             // what is unavailable (older node), for the header
  std::optional<std::uint64_t> alerts_total;  // alerts held by the node: its own and its peers'
  std::map<std::string, std::uint64_t> alerts_by_node;  // node id -> alerts it raised, held here
  bool alerts_by_node_known = false;                    // false: an older node without the summary
  std::map<std::string, CheckpointInfo> checkpoints;  // by origin node id
  // HQ's newest chain-wide tree head set as the viewed node holds it (0: none).
  std::uint64_t tree_heads_version = 0;
  std::uint64_t tree_heads_issued_ms = 0;
  std::map<std::string, std::uint64_t> tree_heads;  // origin node id -> log length it vouches for
};

// What the previous refreshes saw of each node while its link was up, so a node whose link
// dropped still shows its last version vector (and thus how far behind it is at least).
struct LinkMemory {
  struct Seen {
    std::map<std::string, std::uint64_t> version_vector;
    std::optional<std::uint64_t> last_contact_ms;
    std::optional<std::int64_t> clock_skew_ms;
    std::string software_version;  // as its last HELLO said
    std::optional<std::int64_t> schema_version;
    std::vector<LinkEvent> history;
    std::optional<std::uint64_t> lost_ms;  // node clock at the first refresh without its link
  };
  std::map<std::string, Seen> by_node_id;
};

template <typename T>
struct Parsed {
  std::optional<T> value;
  std::string error;  // set when !value
  bool ok() const { return value.has_value(); }
};

// Builds the overview from one snapshot. An error (no value) when /admin/v1/node or
// /admin/v1/peers is not what the admin API returns (garbage, or a schema without the fields
// the screen needs); a missing or odd roster or alerts answer only adds a note.
Parsed<Overview> build_overview(const Snapshot& snapshot, const LinkMemory& memory);
// Records the rows whose link is up into `memory`, and when a remembered link was first seen
// down (bounded by the roster and peers sizes).
void remember_links(const Overview& overview, LinkMemory* memory);

// Returns the rows whose name, id, role or link contains `filter` (case-insensitive).
std::vector<const NodeRow*> filter_rows(const Overview& overview, const std::string& filter);

// --- formatting helpers (pure) ---
std::string format_age(std::uint64_t ms);          // 0s 59s 1m05 2h03 3d04
std::string format_skew(std::int64_t ms);          // +2ms -1.5s +5m
std::string format_minor(std::int64_t minor);      // 12345 -> 123.45
std::string format_clock(std::uint64_t unix_ms);   // HH:MM:SS, local time
std::string short_id(const std::string& hex);      // first 8 hex digits
std::string name_of(const std::map<std::string, std::string>& names, const std::string& node_id);
// Pads or cuts `s` to exactly `width` columns (bytes; the node's names are ASCII-validated).
std::string fit(const std::string& s, std::size_t width, bool right_align = false);

// --- overview screen ---
// The two header lines: who is viewed and when it was refreshed; totals.
std::vector<std::string> overview_header(const Overview& o, const std::string& refreshed_text);
// The column titles and one line per row, `width` columns wide (at least 80 is laid out fully;
// the name column grows with wider screens). A problem row starts with "!".
std::string overview_title_line(std::size_t width);
std::string overview_row_line(const Overview& o, const NodeRow& row, std::size_t width);
// "store-1 3, hq 1": the row's ops behind per origin, largest gap first ("" when none or
// unknown). The overview shows it in a BEHIND BY ORIGIN column when the screen is wide enough,
// and for the selected row in a line above the status line at any width.
std::string behind_by_origin_text(const Overview& o, const NodeRow& row);
// The line above the status line: the selected row's name, its behind total and the breakdown.
std::string selected_row_summary(const Overview& o, const NodeRow& row, std::size_t width);
// `--once`: header + table as plain text, `--once --json`: the same as JSON.
std::string overview_text(const Overview& o, const std::string& refreshed_text, std::size_t width = 100);
Json overview_json(const Overview& o, std::uint64_t refreshed_ms);

// --- alerts ---
struct Alert {
  std::uint64_t id = 0;
  std::uint64_t at_ms = 0;
  std::string kind, node, message;
  std::string source, source_name;  // the node that raised it ("" from an older node: the viewed one)
};
struct AlertsView {
  std::vector<Alert> alerts;                                  // newest first
  std::vector<std::pair<std::string, std::uint64_t>> counts;  // most frequent kind first
  // Alerts held per node that raised them, most first: (name, count).
  std::vector<std::pair<std::string, std::uint64_t>> by_source;
};
Parsed<AlertsView> parse_alerts(const Json& alerts);
// Header lines with counts per kind and per node that raised them, then one line per alert
// matching `filter` ("" = all), naming the node it came from.
std::vector<std::string> alerts_lines(const AlertsView& view, const std::map<std::string, std::string>& names,
                                      const std::string& filter, std::size_t width);

// --- node detail ---
// Identity and link, problems, version vector per origin (the viewed node's seq, this node's,
// the gap), link history newest first, and recent errors (its last error and the alerts that
// name it).
std::vector<std::string> node_detail_lines(const Overview& o, const NodeRow& row, const AlertsView* alerts,
                                           std::size_t width);

// --- member ---
struct RightsShare {
  std::string node_id, node_name;
  std::int64_t points = 0, wallet = 0;
};
struct MemberOp {
  std::string origin_id, origin_name, kind, account, hlc, detail;
  std::uint64_t seq = 0;
  std::optional<std::int64_t> amount;
};
struct MemberView {
  std::string id, card, name, phone, tier, status;
  std::string home_store;  // named when the node is known
  std::int64_t points_balance = 0, wallet_balance = 0;
  std::optional<std::int64_t> points_here, wallet_here;
  std::vector<RightsShare> rights;  // per node, named; nodes with rights in either account
  std::vector<MemberOp> recent_ops;  // newest first, as the node sends them
};
// Parses GET /admin/v1/members/{member}. Error when the JSON lacks id or balances.
Parsed<MemberView> parse_member(const Json& member, const std::map<std::string, std::string>& names);
std::vector<std::string> member_lines(const MemberView& m, std::size_t width);

// How a search text is looked up: a 32-hex id, a phone (starts with '+'), or a card number.
enum class MemberQueryKind { kId, kPhone, kCard, kInvalid };
MemberQueryKind classify_member_query(const std::string& query);

}  // namespace outpost::tui
