// Api's admin routes (docs/admin-api.md; the files of Api are listed in api_internal.h): the
// node's status, alerts, members, terminals, the roster and HQ checkpoints. The peer manager of an
// enrolled node adds /admin/v1/peers and /admin/v1/links through the admin extension.
#include <optional>
#include <string>
#include <vector>

#include "api_internal.h"
#include "outpost/base/version.h"
#include "outpost/node/api.h"
#include "outpost/node/hq_view.h"
#include "outpost/node/identity.h"
#include "outpost/node/report_render.h"
#include "outpost/node/schema.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/hlc.h"

namespace outpost::node {

using api_internal::is_health;
using api_internal::no_route;
using api_internal::ok_json;
using api_internal::split_path;

namespace {

// The same for admin routes (docs/admin-api.md). /admin/v1/peers and /admin/v1/links are served by
// the peer manager of an enrolled node.
std::vector<std::string> admin_route_methods(const std::vector<std::string>& parts) {
  if (parts.size() < 3 || parts[0] != "admin" || parts[1] != "v1") return {};
  if (parts.size() == 3) {
    for (const char* route :
         {"health", "node", "alerts", "members", "terminals", "roster", "checkpoints", "peers"}) {
      if (parts[2] == route) return {"GET"};
    }
    if (parts[2] == "links") return {"POST"};
  }
  if (parts.size() == 4 && (parts[2] == "members" || parts[2] == "reports")) return {"GET"};
  return {};
}

// GET /admin/v1/checkpoints: the newest HQ checkpoint of each origin held here (docs/admin-api.md).
Result<Json> checkpoints_json(storage::Store& store) {
  OUTPOST_ASSIGN_OR_RETURN(auto rows, store.latest_checkpoints());
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store.version_vector());
  Json arr = Json::array();
  for (const auto& row : rows) {
    auto cp = sync::decode_checkpoint(row.body);
    if (!cp.is_ok())
      return cp.status().with_context("stored checkpoint of " + sync::id_hex(row.origin));
    auto held = vv.find(cp->origin);
    const std::uint64_t held_seq = held == vv.end() ? 0 : held->second;
    arr.push_back({{"origin", sync::id_hex(cp->origin)},
                   {"tree_size", cp->tree_size},
                   {"root", crypto::to_hex(cp->root)},
                   {"head_hash", crypto::to_hex(cp->head_hash)},
                   {"issued_ms", cp->issued.wall_ms},
                   {"held_seq", held_seq},
                   {"ops_after", held_seq > cp->tree_size ? held_seq - cp->tree_size : 0}});
  }
  Json set = Json();
  auto newest = store.latest_tree_head_set();
  if (!newest.is_ok()) return newest.status();
  if (newest->has_value()) {
    const storage::StoredTreeHeadSet& heads = **newest;
    auto decoded = sync::decode_tree_head_set(heads.body);
    if (!decoded.is_ok())
      return decoded.status().with_context("stored tree head set v" +
                                           std::to_string(heads.version));
    Json lines = Json::object();
    for (const auto& h : decoded->heads) lines[sync::id_hex(h.origin)] = h.tree_size;
    set = {{"version", decoded->version},
           {"issued_ms", decoded->issued.wall_ms},
           {"roster_version", decoded->roster_version},
           {"ops", decoded->total_ops()},
           {"tree_size_by_origin", lines}};
  }
  return Json{{"checkpoints", arr}, {"tree_head_set", set}};
}

// GET /admin/v1/terminals: names and roles, never tokens.
Result<Json> terminals_json(storage::Store& store) {
  OUTPOST_ASSIGN_OR_RETURN(auto ts, store.list_terminals());
  Json arr = Json::array();
  for (const auto& t : ts)
    arr.push_back({{"name", t.name}, {"role", t.role}, {"created_ms", t.created_ms}});
  return Json{{"terminals", arr}};
}

}  // namespace

void Api::handle_admin(const HttpRequest& req, const Responder& respond) {
  auto parts = split_path(req.path);
  if (is_health(parts, true)) {
    if (auto no = no_route(req, {"GET"})) return respond(std::move(*no));
    return respond(health());
  }
  authenticate(req, respond, "admin", [this, req, respond, parts](const storage::Terminal&) {
    // Extension routes (the peer manager's) come first, so that a route it adds works before this
    // table lists it; it matches path and method, so a wrong method falls through to the table.
    if (admin_ext_ && admin_ext_(req, respond)) return;
    if (auto no = no_route(req, admin_route_methods(parts))) return respond(std::move(*no));
    route_admin(respond, parts, req);
  });
}

void Api::route_admin(const Responder& respond, const std::vector<std::string>& parts,
                      const HttpRequest& req) {
  const std::string& route = parts[2];
  if (parts.size() == 4 && route == "reports") return report(req, respond, parts[3]);
  if (parts.size() == 4) {
    return submit(respond, false, [ref = parts[3]](Ledger& l) {
      auto id = l.resolve_member(ref);
      if (!id.is_ok()) return status_response(id.status());
      auto m = l.member_view(*id);
      if (!m.is_ok()) return status_response(m.status());
      Json j = schema::member_json(*m);
      auto h = l.history(*id, 20);
      if (h.is_ok()) j["recent_ops"] = schema::history_json(*h);
      return ok_json(j);
    });
  }
  if (route == "members") return find_members(req, respond, true);
  if (route == "peers" || route == "links") {
    return respond(
        http_error(404, "not_found", "this node is not enrolled in a chain: it has no peer links"));
  }
  sync::Clock* clock = &clock_;
  if (route == "node") {
    return submit(respond, false, [w = &worker_, info = node_info_, clock](Ledger& l) {
      auto st = l.node_status();
      if (!st.is_ok()) return status_response(st.status());
      Json j = schema::status_json(*st);
      auto s = w->stats();
      j["wall_clock_ms"] = clock->now_ms();
      j["software_version"] = kSoftwareVersion;
      j["group_commit"] = {{"batches", s.batches},
                           {"mutating_ops", s.mutating_tasks},
                           {"largest_batch", s.largest_batch},
                           {"failed_commits", s.failed_commits}};
      if (info) info(j);
      return ok_json(j);
    });
  }
  if (route == "alerts") {
    // ?source=NODE_ID: one node's alerts only (own and those HQ collected from its stores).
    std::optional<std::string> source;
    if (req.query.count("source")) source = req.query.at("source");
    return submit(respond, false, [source](Ledger& l) -> HttpResponse {
      std::optional<sync::NodeId> id;
      if (source) {
        auto parsed = sync::parse_id(*source);
        if (!parsed.is_ok())
          return http_error(400, "invalid_argument", "source must be a 32-hex node id");
        id = *parsed;
      }
      auto j = alerts_json(l, id, 200);
      return j.is_ok() ? ok_json(*j) : status_response(j.status());
    });
  }
  submit(respond, false, [route, clock](Ledger& l) -> HttpResponse {
    Result<Json> j = Status::not_found("no route");
    if (route == "roster") j = roster_json(l.store(), clock->now_ms());
    if (route == "checkpoints") j = checkpoints_json(l.store());
    if (route == "terminals") j = terminals_json(l.store());
    return j.is_ok() ? ok_json(*j) : status_response(j.status());
  });
}

void Api::report(const HttpRequest& req, const Responder& respond, const std::string& name) {
  if (!report_reader_) return respond(http_error(404, "not_found", "this node serves no reports"));
  auto query = [&](const char* key) {
    auto it = req.query.find(key);
    return it == req.query.end() ? std::string() : it->second;
  };
  reports::ReportRequest rq;
  rq.name = name;
  rq.from = query("from");
  rq.to = query("to");
  rq.store = query("store");
  rq.min_visits = query("min_visits");
  rq.min_spend = query("min_spend");
  rq.point_value = query("point_value");
  if (const std::string limit = query("limit"); !limit.empty()) {
    if (limit.size() > 5 || limit.find_first_not_of("0123456789") != std::string::npos) {
      return respond(
          http_error(400, "invalid_argument", "limit must be a whole number up to 10000"));
    }
    rq.list_limit = std::stoul(limit);
  }
  const std::uint32_t now_month = sync::month_index(clock_.now_ms());
  // Everything but the store name is checked before any work (the names come with the roster).
  if (Status st = reports::check_report_request(rq, now_month); !st.is_ok())
    return respond(status_response(st));
  LedgerWorker::Task task;
  task.run = [this, rq, respond, now_month](Ledger& l) {
    auto roster = l.roster();
    auto job = [this, rq, respond, now_month, roster, rules = l.rules(), self = l.node_id(),
                self_name = l.node_name()](bool cancelled) {
      if (cancelled)
        return respond(http_error(503, "overloaded", "the node is shutting down; retry"));
      auto store = report_reader_();
      if (!store.is_ok()) return respond(status_response(store.status()));
      auto in = reports::load_report_input(**store, roster.get(), rules);
      if (!in.is_ok()) return respond(status_response(in.status()));
      in->node_names.emplace(self, self_name);
      auto r = reports::run_report(*in, rq, now_month);
      respond(r.is_ok() ? ok_json(r->json) : status_response(r.status()));
    };
    if (!report_thread_->submit(std::move(job))) {
      respond(http_error(503, "busy", "another report is being computed; retry when it is done"));
    }
  };
  if (!worker_.submit(std::move(task))) respond(worker_refusal(true));
}

}  // namespace outpost::node
