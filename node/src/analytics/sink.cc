// The ClickHouse sink: batches of ops and member snapshots as JSONEachRow (docs/analytics.md has
// the schema and why every table is a ReplacingMergeTree).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "outpost/node/analytics.h"
#include "outpost/node/config.h"
#include "outpost/storage/sqlite.h"
#include "outpost/storage/store.h"
#include "outpost/sync/hlc.h"

namespace outpost::node::analytics {

namespace {

using Json = nlohmann::json;

// ClickHouse 18.16 SQL only (docs/analytics.md, "Version"): no Nullable keys, no newer functions.
constexpr const char* kTables[] = {
    "CREATE TABLE IF NOT EXISTS {db}.outpost_ops (origin String, seq UInt64, kind String, "
    "member String, hlc_wall UInt64, hlc_logical UInt32, month UInt32, account String, "
    "amount UInt64, spend_minor UInt64, target String, ref_origin String, ref_seq UInt64, "
    "ref_kind String, request_id String, receipt String, hash String) "
    "ENGINE = ReplacingMergeTree() ORDER BY (origin, seq)",
    "CREATE TABLE IF NOT EXISTS {db}.outpost_members (member String, card String, name String, "
    "points Int64, wallet Int64, ver UInt64) ENGINE = ReplacingMergeTree(ver) ORDER BY member",
    "CREATE TABLE IF NOT EXISTS {db}.outpost_rights (member String, account String, node String, "
    "rights Int64, ver UInt64) ENGINE = ReplacingMergeTree(ver) ORDER BY (member, account, node)",
    "CREATE TABLE IF NOT EXISTS {db}.outpost_activity (member String, node String, month UInt32, "
    "visits UInt64, spend_minor UInt64, spend_reversed_minor UInt64, ver UInt64) "
    "ENGINE = ReplacingMergeTree(ver) ORDER BY (member, node, month)",
};

std::string with_db(std::string sql, const std::string& db) {
  const std::string key = "{db}";
  for (auto pos = sql.find(key); pos != std::string::npos; pos = sql.find(key, pos)) {
    sql.replace(pos, key.size(), db);
  }
  return sql;
}

bool is_identifier(const std::string& s) {
  if (s.empty() || s.size() > 64 || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string op_row(const sync::SignedOp& s) {
  const sync::Op& op = s.op;
  Json j = {{"origin", sync::id_hex(op.origin)},
            {"seq", op.seq},
            {"kind", sync::kind_name(op.kind)},
            {"member", sync::id_hex(op.member)},
            {"hlc_wall", op.hlc.wall_ms},
            {"hlc_logical", op.hlc.logical},
            {"month", sync::month_index(op.hlc.wall_ms)},
            {"account", sync::account_name(op.account)},
            {"amount", op.amount},
            {"spend_minor", op.spend_minor},
            {"target", op.kind == sync::OpKind::kMove ? sync::id_hex(op.target) : ""},
            {"ref_origin", op.kind == sync::OpKind::kReverse ? sync::id_hex(op.ref_origin) : ""},
            {"ref_seq", op.ref_seq},
            {"ref_kind", op.kind == sync::OpKind::kReverse ? sync::kind_name(op.ref_kind) : ""},
            {"request_id", op.request_id},
            {"receipt", op.receipt},
            {"hash", crypto::to_hex(s.hash)}};
  // Request ids and receipts are POS input: dump() replaces invalid UTF-8 instead of throwing.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Every node an escrow counter has an entry for: its rights rows never disappear from a later
// snapshot, so a node whose rights fell to 0 gets a 0 row that replaces the older one.
std::set<sync::NodeId> counter_nodes(const sync::EscrowCounter& c) {
  std::set<sync::NodeId> out;
  for (const auto& [n, v] : c.credits()) out.insert(n);
  for (const auto& [n, v] : c.debits()) out.insert(n);
  for (const auto& [k, v] : c.moves()) {
    out.insert(k.first);
    out.insert(k.second);
  }
  return out;
}

struct MemberRows {
  std::string members, rights, activity;
};

void member_rows(const sync::MemberId& id, const sync::MemberState& m, std::uint64_t ver,
                 MemberRows& out) {
  const std::string mid = sync::id_hex(id);
  auto dump = [](const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  };
  out.members += dump({{"member", mid},
                       {"card", m.field(sync::Field::kCard)},
                       {"name", m.field(sync::Field::kName)},
                       {"points", m.points.value()},
                       {"wallet", m.wallet.value()},
                       {"ver", ver}});
  for (sync::Account a : {sync::Account::kPoints, sync::Account::kWallet}) {
    const sync::EscrowCounter& c = m.counter(a);
    for (const sync::NodeId& n : counter_nodes(c)) {
      out.rights += dump({{"member", mid},
                          {"account", sync::account_name(a)},
                          {"node", sync::id_hex(n)},
                          {"rights", c.rights(n)},
                          {"ver", ver}});
    }
  }
  std::map<std::pair<sync::NodeId, std::uint32_t>, std::array<std::uint64_t, 3>> buckets;
  for (const auto& [k, v] : m.visits.entries()) buckets[k][0] = v;
  for (const auto& [k, v] : m.spend.entries()) buckets[k][1] = v;
  for (const auto& [k, v] : m.spend_reversed.entries()) buckets[k][2] = v;
  for (const auto& [k, v] : buckets) {
    out.activity += dump({{"member", mid},
                          {"node", sync::id_hex(k.first)},
                          {"month", k.second},
                          {"visits", v[0]},
                          {"spend_minor", v[1]},
                          {"spend_reversed_minor", v[2]},
                          {"ver", ver}});
  }
}

}  // namespace

Result<net::Endpoint> parse_clickhouse_url(const std::string& url) {
  const std::string scheme = "http://";
  auto bad = [&](const std::string& why) {
    return Status::invalid("clickhouse url '" + url + "' " + why +
                           " (expected http://HOST:PORT, for example http://127.0.0.1:8123)");
  };
  if (url.rfind(scheme, 0) != 0) return bad("does not start with http://");
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) return bad("has a path");
  // The config's address rules: a numeric host (a daemon must not depend on DNS to start).
  auto ep = parse_endpoint(rest);
  if (!ep.is_ok()) return bad("is malformed: " + ep.status().message());
  if (ep->port == 0) return bad("needs a non-zero port");
  return net::Endpoint{ep->host, ep->port};
}

std::string encode_cursor(const Cursor& c) {
  std::string out;
  for (const auto& [origin, seq] : c) {
    if (!out.empty()) out += ',';
    out += sync::op_ref_string(origin, seq);
  }
  return out;
}

Result<Cursor> decode_cursor(const std::string& text) {
  Cursor c;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    sync::NodeId origin{};
    std::uint64_t seq = 0;
    if (!sync::parse_op_ref(text.substr(start, end - start), origin, seq) || c.count(origin)) {
      return Status::corruption("analytics cursor '" + text + "' is malformed");
    }
    c[origin] = seq;
    start = end + 1;
  }
  return c;
}

Sink::Sink(storage::Store& store, SinkOptions options)
    : store_(store),
      options_(std::move(options)),
      client_(options_.endpoint,
              net::ClientOptions{.response_timeout_ms = options_.request_timeout_ms,
                                 .user_agent = "outpostd-analytics"}) {}

Sink::~Sink() = default;

Result<std::string> Sink::post(const std::string& query_param, const std::string& body) {
  net::HttpRequest req;
  req.method = "POST";
  req.target = "/?query=" + net::url_encode(query_param);
  req.body = body;
  net::HttpResponse res = client_.request(req);
  if (res.status == 0) {
    return Status::io_error("clickhouse at " + options_.endpoint.to_string() + ": " + res.error);
  }
  if (res.status != 200) {
    std::string msg = res.body.substr(0, 500);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::io_error("clickhouse at " + options_.endpoint.to_string() + " refused (HTTP " +
                            std::to_string(res.status) + "): " + msg);
  }
  return std::move(res.body);
}

Result<std::string> Sink::query(const std::string& sql) {
  if (!is_identifier(options_.database)) {
    return Status::invalid("clickhouse database '" + options_.database + "' is not a plain name");
  }
  net::HttpRequest req;
  req.method = "POST";
  req.target = "/?database=" + net::url_encode(options_.database);
  req.body = sql;
  net::HttpResponse res = client_.request(req);
  if (res.status == 0) {
    return Status::io_error("clickhouse at " + options_.endpoint.to_string() + ": " + res.error);
  }
  if (res.status != 200) {
    return Status::io_error("clickhouse refused (HTTP " + std::to_string(res.status) +
                            "): " + res.body.substr(0, 500));
  }
  return std::move(res.body);
}

Status Sink::create_tables() {
  if (!is_identifier(options_.database)) {
    return Status::invalid("clickhouse database '" + options_.database + "' is not a plain name");
  }
  OUTPOST_RETURN_IF_ERROR(post("CREATE DATABASE IF NOT EXISTS " + options_.database, "").status());
  for (const char* t : kTables) {
    OUTPOST_RETURN_IF_ERROR(post(with_db(t, options_.database), "").status());
  }
  return Status::ok();
}

Result<Cursor> Sink::cursor() {
  OUTPOST_ASSIGN_OR_RETURN(auto text, store_.get_meta(kCursorMetaKey));
  if (!text) return Cursor{};
  return decode_cursor(*text);
}

Result<StepResult> Sink::step() {
  if (options_.batch_ops == 0 || options_.batch_ops > kBatchOpsMax) {
    return Status::invalid("analytics batch size must be 1.." + std::to_string(kBatchOpsMax));
  }
  OUTPOST_ASSIGN_OR_RETURN(Cursor cur, cursor());
  StepResult r;
  std::vector<sync::SignedOp> ops;
  std::string op_body;
  MemberRows rows;
  {
    // One snapshot: member rows and their version agree with each other.
    OUTPOST_ASSIGN_OR_RETURN(storage::ReadSnapshot snap, storage::ReadSnapshot::begin(store_.db()));
    OUTPOST_ASSIGN_OR_RETURN(auto vv, store_.version_vector());
    for (const auto& [origin, head] : vv) {
      const std::uint64_t done = cur.count(origin) ? cur[origin] : 0;
      if (head > done) r.behind += head - done;
      if (ops.size() >= options_.batch_ops || head <= done) continue;
      OUTPOST_ASSIGN_OR_RETURN(
          auto more, store_.ops_of_origin(origin, done + 1, options_.batch_ops - ops.size()));
      for (auto& op : more) ops.push_back(std::move(op));
    }
    if (ops.empty()) return r;
    OUTPOST_ASSIGN_OR_RETURN(std::uint64_t ver, store_.op_count());
    std::set<sync::MemberId> touched;
    for (const auto& op : ops) {
      op_body += op_row(op);
      if (op.op.member != sync::MemberId{}) touched.insert(op.op.member);
    }
    for (const sync::MemberId& id : touched) {
      OUTPOST_ASSIGN_OR_RETURN(auto state, store_.load_member(id));
      if (!state) continue;
      member_rows(id, *state, ver, rows);
      r.members++;
    }
  }
  const std::string& db = options_.database;
  OUTPOST_RETURN_IF_ERROR(
      post("INSERT INTO " + db + ".outpost_ops FORMAT JSONEachRow", op_body).status());
  const std::pair<const char*, const std::string*> member_tables[] = {
      {"outpost_members", &rows.members},
      {"outpost_rights", &rows.rights},
      {"outpost_activity", &rows.activity}};
  for (const auto& [table, body] : member_tables) {
    if (body->empty()) continue;
    OUTPOST_RETURN_IF_ERROR(
        post("INSERT INTO " + db + "." + table + " FORMAT JSONEachRow", *body).status());
  }
  // Acknowledged: only now may the cursor move (a crash before this line resends the batch).
  for (const auto& op : ops) cur[op.op.origin] = std::max(cur[op.op.origin], op.op.seq);
  OUTPOST_RETURN_IF_ERROR(store_.set_meta(kCursorMetaKey, encode_cursor(cur)));
  r.ops = ops.size();
  r.behind -= std::min<std::uint64_t>(r.behind, ops.size());
  return r;
}

}  // namespace outpost::node::analytics
