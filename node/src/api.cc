#include "outpost/node/api.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <set>
#include <thread>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/base/version.h"
#include "outpost/node/hq_view.h"
#include "outpost/node/identity.h"
#include "outpost/node/log.h"
#include "outpost/sync/checkpoint.h"

namespace outpost::node {

namespace {

// Splits "/v1/members/X/topup" into its non-empty parts (the path is bounded by the header limit).
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < path.size();) {
    std::size_t end = path.find('/', i);
    if (end == std::string::npos) end = path.size();
    if (end > i) out.emplace_back(path, i, end - i);
    i = end + 1;
  }
  return out;
}

Result<std::uint64_t> get_amount(const Json& j, const char* key) {
  if (!j.contains(key)) return Status::invalid(std::string("missing field '") + key + "'");
  const Json& v = j[key];
  if (!v.is_number_integer()) {
    return Status::invalid(std::string("field '") + key + "' must be an integer (minor units), got " + v.dump());
  }
  if (v.is_number_unsigned()) {
    auto x = v.get<std::uint64_t>();
    if (x == 0) return Status::invalid(std::string("field '") + key + "' must be positive");
    if (x > limits::kAmountMax) return Status::invalid(std::string("field '") + key + "' is above the maximum");
    return x;
  }
  auto x = v.get<std::int64_t>();
  if (x <= 0) return Status::invalid(std::string("field '") + key + "' must be positive");
  if (static_cast<std::uint64_t>(x) > limits::kAmountMax) return Status::invalid(std::string("field '") + key + "' is above the maximum");
  return static_cast<std::uint64_t>(x);
}

// Serializes a response body. Stored strings (names, receipts entered through the CLI or received
// from peers) need not be UTF-8; they are replaced rather than letting dump() throw.
std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

HttpResponse ok_json(const Json& j) { return HttpResponse{200, dump_json(j)}; }

// Returns the methods a POS route takes, or nothing when `parts` names no route: a known path
// with a wrong method gets 405, an unknown one 404, before any body is looked at.
std::vector<std::string> pos_route_methods(const std::vector<std::string>& parts) {
  if (parts.size() < 2 || parts[0] != "v1") return {};
  if (parts.size() == 2 && (parts[1] == "health" || parts[1] == "status")) return {"GET"};
  if (parts.size() == 2 && parts[1] == "members") return {"GET", "POST"};
  if (parts.size() == 3 && parts[1] == "members") return {"GET"};
  if (parts.size() == 4 && parts[1] == "members") {
    if (parts[3] == "history") return {"GET"};
    for (const char* action : {"profile", "pin", "earn", "redeem", "topup", "spend"}) {
      if (parts[3] == action) return {"POST"};
    }
  }
  if (parts.size() == 4 && parts[1] == "ops" && parts[3] == "reverse") return {"POST"};
  return {};
}

// The same for admin routes (docs/admin-api.md). /admin/v1/peers and /admin/v1/links are served by
// the peer manager of an enrolled node.
std::vector<std::string> admin_route_methods(const std::vector<std::string>& parts) {
  if (parts.size() < 3 || parts[0] != "admin" || parts[1] != "v1") return {};
  if (parts.size() == 3) {
    for (const char* route : {"health", "node", "alerts", "members", "terminals", "roster", "checkpoints", "peers"}) {
      if (parts[2] == route) return {"GET"};
    }
    if (parts[2] == "links") return {"POST"};
  }
  if (parts.size() == 4 && parts[2] == "members") return {"GET"};
  return {};
}

bool is_health(const std::vector<std::string>& parts, bool admin) {
  return admin ? parts.size() == 3 && parts[0] == "admin" && parts[1] == "v1" && parts[2] == "health"
               : parts.size() == 2 && parts[0] == "v1" && parts[1] == "health";
}

// 404 for an unknown path, 405 with an Allow header for a known one with another method; nullopt
// when `req.method` is allowed.
std::optional<HttpResponse> no_route(const HttpRequest& req, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), req.method) != allowed.end()) return std::nullopt;
  if (allowed.empty()) return http_error(404, "unknown_route", "no route " + req.method + " " + req.path);
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  HttpResponse r = http_error(405, "method_not_allowed", req.method + " not allowed on " + req.path + " (allowed: " + list + ")");
  r.allow = list;
  return r;
}

// Runs a handler continuation outside the HTTP layer's own guard (on the ledger worker, after the
// token was looked up): an exception becomes a 500 answer instead of ending the process.
void guarded(const Responder& respond, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    log(LogLevel::kError, "api handler failed", {{"error", e.what()}});
    respond(http_error(500, "internal", "internal error while handling the request; see the node's log"));
  }
}

}  // namespace

Result<Json> parse_json_object(const std::string& body) {
  if (body.empty()) return Status::invalid("request body must be a JSON object");
  // A key given twice is refused: {"request_id":"a",...,"request_id":"b"} must not silently mean
  // whichever one the parser keeps.
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string duplicate;
  auto on_event = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == Json::parse_event_t::key && !keys.empty() && duplicate.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    Json j = Json::parse(body, on_event);
    if (!duplicate.empty()) return Status::invalid("field '" + duplicate + "' is given twice");
    if (!j.is_object()) return Status::invalid("request body must be a JSON object");
    return j;
  } catch (const std::exception& e) {
    return Status::invalid(std::string("malformed JSON: ") + e.what());
  }
}

Status check_fields(const Json& body, std::initializer_list<const char*> allowed) {
  for (auto it = body.begin(); it != body.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok |= it.key() == a;
    if (!ok) return Status::invalid("unknown field '" + it.key() + "'");
  }
  return Status::ok();
}

Result<std::string> string_field(const Json& body, const char* key, bool required) {
  if (!body.contains(key)) {
    if (required) return Status::invalid(std::string("missing field '") + key + "'");
    return std::string();
  }
  if (!body[key].is_string()) return Status::invalid(std::string("field '") + key + "' must be a string");
  return body[key].get<std::string>();
}

std::optional<storage::Terminal> TokenCache::find(const crypto::Hash32& token_hash, std::uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t found = entries_.size();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    // Every entry is compared, each in constant time: the time taken does not say which matched.
    const bool same = crypto::ct_equal(entries_[i].token_hash, token_hash);
    found = same ? i : found;
  }
  if (found == entries_.size()) return std::nullopt;
  const Entry& e = entries_[found];
  // Expired (or the clock went back): confirm with the database again.
  if (now_ms < e.confirmed_ms || now_ms - e.confirmed_ms >= limits::kTokenCacheTtlMs) {
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(found));
    return std::nullopt;
  }
  return e.terminal;
}

void TokenCache::remember(const crypto::Hash32& token_hash, const storage::Terminal& terminal,
                          std::uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry& e : entries_) {
    if (crypto::ct_equal(e.token_hash, token_hash)) {
      e.terminal = terminal;
      e.confirmed_ms = now_ms;
      return;
    }
  }
  if (entries_.size() >= limits::kTokenCacheEntriesMax) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return a.confirmed_ms < b.confirmed_ms;
    });
    entries_.erase(oldest);
  }
  entries_.push_back(Entry{token_hash, terminal, now_ms});
}

void TokenCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

std::size_t TokenCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

Api::Api(LedgerWorker& worker, sync::Clock& clock)
    : worker_(worker), clock_(clock), pin_verifier_(crypto::verify_pin), pin_thread_(std::make_unique<JobThread>(limits::kPinChecksQueuedMax)) {}

Api::~Api() { pin_thread_->stop(); }

HttpResponse status_response(const Status& st) {
  switch (st.code()) {
    case Code::kInvalidArgument:
    case Code::kUnsupported: return http_error(400, code_name(st.code()), st.message());
    case Code::kNotFound: return http_error(404, "not_found", st.message());
    case Code::kPermission: return http_error(401, "unauthorized", st.message());
    case Code::kRefused: return http_error(409, "refused", st.message());
    case Code::kUnavailable: return http_error(503, "unavailable", st.message());
    default: return http_error(500, code_name(st.code()), st.message());
  }
}

HttpResponse reply_response(const Reply& r) {
  if (!r.refused) return HttpResponse{200, r.text.empty() ? dump_json(r.body) : r.text};
  int status = r.body.value("error", "") == "pin_locked" ? 423 : 409;
  if (r.body.value("error", "") == "pin_wrong") status = 403;
  return HttpResponse{status, dump_json(r.body)};
}

void Api::authenticate(const HttpRequest& req, const Responder& respond, const char* role, OnAuth on_ok) {
  const std::string prefix = "Bearer ";
  if (req.authorization.compare(0, prefix.size(), prefix) != 0 || req.authorization.size() == prefix.size()) {
    return respond(http_error(401, "unauthorized", "missing bearer token (Authorization: Bearer TOKEN)"));
  }
  const std::size_t token_bytes = req.authorization.size() - prefix.size();
  if (token_bytes > 256) return respond(http_error(401, "unauthorized", "token not recognized"));
  const crypto::Hash32 hash = crypto::sha256(
      {reinterpret_cast<const std::uint8_t*>(req.authorization.data()) + prefix.size(), token_bytes});
  const bool want_admin = std::strcmp(role, "admin") == 0;
  auto forbidden = [](const storage::Terminal& t) {
    return http_error(403, "forbidden", "terminal " + t.name + " is not an admin terminal");
  };
  // A token the database confirmed recently is checked here, on the calling thread; any other
  // goes to the worker, which asks the database and remembers a confirmed one.
  if (const std::optional<storage::Terminal> known = tokens_.find(hash, clock_.now_ms())) {
    if (want_admin && known->role != "admin") return respond(forbidden(*known));
    return guarded(respond, [&] { on_ok(*known); });
  }
  auto result = std::make_shared<HttpResponse>();
  auto terminal = std::make_shared<storage::Terminal>();
  LedgerWorker::Task task;
  task.run = [this, result, terminal, hash](Ledger& ledger) {
    auto t = ledger.store().find_terminal(hash);
    if (!t.is_ok()) {
      *result = status_response(t.status());
    } else if (!*t) {
      *result = http_error(401, "unauthorized", "token not recognized");
    } else {
      tokens_.remember(hash, **t, clock_.now_ms());
      *terminal = **t;
    }
  };
  task.done = [this, result, terminal, respond, want_admin, forbidden,
               on_ok = std::move(on_ok)](bool ran) {
    if (!ran) return respond(worker_refusal(false));
    if (result->status != 200) return respond(std::move(*result));
    if (want_admin && terminal->role != "admin") return respond(forbidden(*terminal));
    guarded(respond, [&] { on_ok(*terminal); });
  };
  if (!worker_.submit(std::move(task))) respond(worker_refusal(true));
}

HttpResponse Api::health() const {
  if (Status failed = worker_.failure(); !failed.is_ok()) {
    return http_error(503, "storage_failed", failed.message());
  }
  return HttpResponse{200, R"({"ok":true})"};
}

HttpResponse Api::worker_refusal(bool at_submit) const {
  if (Status failed = worker_.failure(); !failed.is_ok()) {
    return http_error(503, "storage_failed",
                      failed.message() + "; nothing of this request was done");
  }
  if (at_submit) {
    return http_error(503, "overloaded", "the node is shutting down or its queue is full; retry");
  }
  return http_error(503, "unavailable",
                    "the node's database was busy and nothing of this request was done; retry");
}

void Api::submit(const Responder& respond, bool mutating, std::function<HttpResponse(Ledger&)> fn, After after) {
  // Status 0 until the task runs: a task answered not durable without having run (the worker
  // latched a failed commit, or could not begin its batch) is told apart from one that ran.
  auto result = std::make_shared<HttpResponse>(0, "");
  LedgerWorker::Task task;
  task.mutating = mutating;
  task.run = [result, fn = std::move(fn)](Ledger& ledger) { *result = fn(ledger); };
  task.done = [this, result, respond, after](bool durable) {
    if (!durable && result->status == 0) return respond(worker_refusal(false));
    if (!durable && result->status == 200) {
      respond(http_error(503, "not_durable", "the operation could not be made durable; nothing was recorded, retry with the same request_id"));
      return;
    }
    if (after && after(*result, respond)) return;
    respond(std::move(*result));
  };
  if (!worker_.submit(std::move(task))) respond(worker_refusal(true));
}

void Api::authorized(const HttpRequest& req, const Responder& respond, const char* role,
                     std::function<void()> on_ok) {
  authenticate(req, respond, role, [on_ok = std::move(on_ok)](const storage::Terminal&) { on_ok(); });
}

// Every route: the token first (nothing of the request is looked at before it is confirmed),
// then the path and method (404, 405), then the body.
void Api::handle_pos(HttpRequest req, Responder respond) {
  auto parts = split_path(req.path);
  if (is_health(parts, false)) {
    if (auto no = no_route(req, {"GET"})) return respond(std::move(*no));
    return respond(health());
  }
  authenticate(req, respond, "pos", [this, req, respond, parts](const storage::Terminal& terminal) {
    if (auto no = no_route(req, pos_route_methods(parts))) return respond(std::move(*no));
    route_pos(req, respond, parts, terminal);
  });
}

void Api::route_pos(const HttpRequest& req, const Responder& respond, const std::vector<std::string>& parts,
                    const storage::Terminal& terminal) {
  const std::string& m = req.method;
  if (parts[1] == "status") {
    return submit(respond, false, [](Ledger& l) {
      auto j = l.status_json();
      return j.is_ok() ? ok_json(*j) : status_response(j.status());
    });
  }
  if (parts[1] == "ops") return reverse(req, respond, parts[2]);
  if (parts.size() == 2) return m == "GET" ? find_members(req, respond, false) : enroll(req, respond);
  const std::string ref = parts[2];
  if (parts.size() == 3) {
    return submit(respond, false, [ref](Ledger& l) {
      auto id = l.resolve_member(ref);
      if (!id.is_ok()) return status_response(id.status());
      auto j = l.member_json(*id);
      return j.is_ok() ? ok_json(*j) : status_response(j.status());
    });
  }
  if (parts[3] == "history") return history(req, respond, ref);
  auto body = parse_json_object(req.body);
  if (!body.is_ok()) return respond(status_response(body.status()));
  if (parts[3] == "profile") return update_profile(respond, ref, *body);
  if (parts[3] == "pin") return set_pin(req, respond, terminal, ref, *body);
  member_action(req, respond, ref, parts[3], *body);
}

void Api::find_members(const HttpRequest& req, const Responder& respond, bool ids_only) {
  std::string card = req.query.count("card") ? req.query.at("card") : "";
  std::string phone = req.query.count("phone") ? req.query.at("phone") : "";
  if (card.empty() == phone.empty()) return respond(http_error(400, "invalid_argument", "give exactly one of ?card= or ?phone="));
  submit(respond, false, [card, phone, ids_only](Ledger& l) {
    auto ids = card.empty() ? l.find_by_phone(phone) : l.find_by_card(card);
    if (!ids.is_ok()) return status_response(ids.status());
    Json arr = Json::array();
    for (const auto& id : *ids) {
      if (ids_only) {
        arr.push_back(sync::id_hex(id));
      } else if (auto j = l.member_json(id); j.is_ok()) {
        arr.push_back(*j);
      }
    }
    return ok_json(Json{{"members", arr}});
  });
}

void Api::enroll(const HttpRequest& req, const Responder& respond) {
  auto body = parse_json_object(req.body);
  if (!body.is_ok()) return respond(status_response(body.status()));
  Status st = check_fields(*body, {"request_id", "card", "name", "phone", "birthday"});
  if (!st.is_ok()) return respond(status_response(st));
  auto rid = string_field(*body, "request_id", true);
  auto card = string_field(*body, "card", true);
  auto name = string_field(*body, "name", true);
  auto phone = string_field(*body, "phone", false);
  auto bday = string_field(*body, "birthday", false);
  for (const auto* r : {&rid, &card, &name, &phone, &bday}) {
    if (!r->is_ok()) return respond(status_response(r->status()));
  }
  EnrollRequest er{*rid, *card, *name, *phone, *bday};
  submit(respond, true, [er](Ledger& l) {
    auto r = l.enroll(er);
    return r.is_ok() ? reply_response(*r) : status_response(r.status());
  });
}

void Api::history(const HttpRequest& req, const Responder& respond, const std::string& ref) {
  std::size_t limit = 50;
  if (req.query.count("limit")) {
    auto n = parse_amount(req.query.at("limit"), "limit");
    if (!n.is_ok() || *n > limits::kHistoryRowsMax) return respond(http_error(400, "invalid_argument", "limit must be 1..1000"));
    limit = *n;
  }
  submit(respond, false, [ref, limit](Ledger& l) {
    auto id = l.resolve_member(ref);
    if (!id.is_ok()) return status_response(id.status());
    auto h = l.history_json(*id, limit);
    if (!h.is_ok()) return status_response(h.status());
    return ok_json(Json{{"member", sync::id_hex(*id)}, {"ops", *h}});
  });
}

void Api::update_profile(const Responder& respond, const std::string& ref, const Json& body) {
  Status st = check_fields(body, {"request_id", "name", "phone", "birthday", "status", "reopen"});
  if (!st.is_ok()) return respond(status_response(st));
  auto rid = string_field(body, "request_id", true);
  if (!rid.is_ok()) return respond(status_response(rid.status()));
  std::vector<sync::FieldValue> fields;
  for (auto [key, field] : {std::pair{"name", sync::Field::kName}, {"phone", sync::Field::kPhone},
                            {"birthday", sync::Field::kBirthday}, {"status", sync::Field::kStatus}}) {
    auto v = string_field(body, key, false);
    if (!v.is_ok()) return respond(status_response(v.status()));
    if (body.contains(key)) fields.push_back({field, *v});
  }
  bool reopen = false;
  if (body.contains("reopen")) {
    if (!body["reopen"].is_boolean()) return respond(http_error(400, "invalid_argument", "field 'reopen' must be true or false"));
    if (!body.contains("status")) return respond(http_error(400, "invalid_argument", "field 'reopen' goes with 'status'"));
    reopen = body["reopen"].get<bool>();
  }
  submit(respond, true, [ref, request_id = *rid, fields, reopen](Ledger& l) {
    auto id = l.resolve_member(ref);
    if (!id.is_ok()) return status_response(id.status());
    auto r = l.update_profile(request_id, *id, fields, reopen);
    return r.is_ok() ? reply_response(*r) : status_response(r.status());
  });
}

void Api::member_action(const HttpRequest& req, const Responder& respond, const std::string& ref,
                        const std::string& action, const Json& body) {
  const char* amount_key = action == "earn" ? "purchase_minor" : action == "redeem" ? "points" : "amount_minor";
  Status st = action == "spend" ? check_fields(body, {"request_id", amount_key, "receipt", "pin"})
                                : check_fields(body, {"request_id", amount_key, "receipt"});
  if (!st.is_ok()) return respond(status_response(st));
  auto rid = string_field(body, "request_id", true);
  if (!rid.is_ok()) return respond(status_response(rid.status()));
  auto amount = get_amount(body, amount_key);
  if (!amount.is_ok()) return respond(status_response(amount.status()));
  auto receipt = string_field(body, "receipt", false);
  if (!receipt.is_ok()) return respond(status_response(receipt.status()));
  if (receipt->size() > limits::kReceiptBytesMax) return respond(http_error(400, "invalid_argument", "receipt too long"));
  auto pin = string_field(body, "pin", false);
  if (!pin.is_ok()) return respond(status_response(pin.status()));
  if (action == "spend" || action == "redeem") {
    Debit d;
    d.action = action;
    d.ref = ref;
    d.request_id = *rid;
    d.amount = *amount;
    d.receipt = *receipt;
    if (body.contains("pin")) d.pin = *pin;
    return debit(req, respond, std::move(d));
  }
  submit(respond, true, [=, request_id = *rid, amt = *amount, rc = *receipt](Ledger& l) {
    auto id = l.resolve_member(ref);
    if (!id.is_ok()) return status_response(id.status());
    auto r = action == "earn" ? l.earn(request_id, *id, amt, rc) : l.topup(request_id, *id, amt, rc);
    return r.is_ok() ? reply_response(*r) : status_response(r.status());
  });
}

// POST /v1/ops/{origin}:{seq}/reverse
void Api::reverse(const HttpRequest& req, const Responder& respond, const std::string& op_ref) {
  sync::NodeId origin{};
  std::uint64_t seq = 0;
  if (!sync::parse_op_ref(op_ref, origin, seq)) return respond(http_error(400, "invalid_argument", "op must be ORIGIN:SEQ"));
  auto body = parse_json_object(req.body);
  if (!body.is_ok()) return respond(status_response(body.status()));
  Status st = check_fields(*body, {"request_id"});
  if (!st.is_ok()) return respond(status_response(st));
  auto rid = string_field(*body, "request_id", true);
  if (!rid.is_ok()) return respond(status_response(rid.status()));
  submit(respond, true, [request_id = *rid, origin, seq](Ledger& l) {
    auto r = l.reverse(request_id, origin, seq);
    return r.is_ok() ? reply_response(*r) : status_response(r.status());
  });
}

namespace {
// Records a spend or redeem refused for lack of rights here (admin API alerts, outpost-top).
void raise_refusal_alert(Ledger& l, const Json& refusal) {
  if (refusal.value("error", "") != "insufficient_rights") return;
  std::string message = refusal.value("message", "refused");
  message += refusal.value("rights_request_tried", false) ? " (rights request tried)"
                                                          : " (no rights request possible)";
  l.raise_alert("refused_spend", sync::id_hex(l.node_id()), message);
}
}  // namespace

void Api::debit(const HttpRequest& req, const Responder& respond, Debit d) {
  sync::Clock* clock = &clock_;
  const bool has_broker = static_cast<bool>(broker_);
  // Set on the worker when the member has a PIN that must be checked (against this hash) first.
  auto verify_hash = std::make_shared<std::string>();
  auto fn = [d, clock, has_broker, verify_hash](Ledger& l) {
    auto id = l.resolve_member(d.ref);
    if (!id.is_ok()) return status_response(id.status());
    std::optional<Ledger::PinClearance> clearance;
    if (d.action == "spend") {
      auto prior = l.has_request(d.request_id);
      if (!prior.is_ok()) return status_response(prior.status());
      if (!*prior) {  // a repeated request is answered from its first execution, without a PIN
        auto gate = l.pin_gate(*id, sync::OpKind::kSpend, d.pin.has_value(), d.verdict ? &*d.verdict : nullptr,
                               clock->now_ms());
        if (!gate.is_ok()) return status_response(gate.status());
        if (gate->kind == Ledger::PinGate::Kind::kRefuse) return reply_response(gate->refusal);
        if (gate->kind == Ledger::PinGate::Kind::kVerify) {
          *verify_hash = gate->hash;
          return HttpResponse{0, ""};  // no answer yet: `after` has the PIN checked first
        }
        clearance = gate->clearance;
      }
    }
    auto r = d.action == "redeem" ? l.redeem(d.request_id, *id, d.amount, d.receipt)
                                  : l.spend(d.request_id, *id, d.amount, d.receipt, clearance ? &*clearance : nullptr);
    if (!r.is_ok()) return status_response(r.status());
    if (r->refused && d.retried) r->body["rights_request_tried"] = true;
    // The final answer is a refusal for lack of rights here (no broker, or after its attempt).
    if (r->refused && (d.retried || !has_broker)) raise_refusal_alert(l, r->body);
    return reply_response(*r);
  };
  After after = [this, req, d, verify_hash](const HttpResponse& resp, const Responder& respond) {
    if (!verify_hash->empty()) {
      check_pin_then_debit(req, respond, d, *verify_hash);
      return true;
    }
    if (!broker_ || d.retried || resp.status != 409) return false;
    Json body;
    try {
      body = Json::parse(resp.body);
    } catch (const std::exception&) {
      return false;
    }
    if (body.value("error", "") != "insufficient_rights") return false;
    auto member = sync::parse_id(body.value("member", ""));
    if (!member.is_ok()) return false;
    sync::Account acct = d.action == "redeem" ? sync::Account::kPoints : sync::Account::kWallet;
    broker_(*member, acct, body.value("shortfall", std::uint64_t{0}), body.value("rights_elsewhere", Json::object()),
            [=, this](bool tried, bool granted) {
              if (granted) {
                Debit again = d;
                again.retried = true;
                debit(req, respond, std::move(again));
                return;
              }
              Json b = body;
              b["rights_request_tried"] = tried;
              LedgerWorker::Task alert;
              alert.mutating = true;
              alert.run = [b](Ledger& l) { raise_refusal_alert(l, b); };
              (void)worker_.submit(std::move(alert));  // best effort, like every alert
              respond(HttpResponse{409, b.dump()});
            });
    return true;
  };
  submit(respond, true, fn, after);
}

namespace {
// GET /admin/v1/checkpoints: the newest HQ checkpoint of each origin held here (docs/admin-api.md).
Result<Json> checkpoints_json(storage::Store& store) {
  OUTPOST_ASSIGN_OR_RETURN(auto rows, store.latest_checkpoints());
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store.version_vector());
  Json arr = Json::array();
  for (const auto& row : rows) {
    auto cp = sync::decode_checkpoint(row.body);
    if (!cp.is_ok()) return cp.status().with_context("stored checkpoint of " + sync::id_hex(row.origin));
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
    if (!decoded.is_ok()) return decoded.status().with_context("stored tree head set v" + std::to_string(heads.version));
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
  for (const auto& t : ts) arr.push_back({{"name", t.name}, {"role", t.role}, {"created_ms", t.created_ms}});
  return Json{{"terminals", arr}};
}
}  // namespace

void Api::check_pin_then_debit(const HttpRequest& req, const Responder& respond, Debit d,
                               const std::string& pin_hash) {
  // Each check is against the member's PIN hash of the moment; a PIN that keeps changing while
  // it is checked ends the attempt instead of looping.
  if (d.pin_checks >= limits::kPinCheckAttemptsMax) {
    return respond(http_error(503, "pin_changed", "the member's PIN changed while it was being checked; retry"));
  }
  auto job = [this, req, respond, d, pin_hash](bool cancelled) mutable {
    if (cancelled) return respond(http_error(503, "overloaded", "the node is shutting down; retry"));
    d.verdict = Ledger::PinVerdict{pin_hash, pin_verifier_(pin_hash, *d.pin)};
    d.pin_checks++;
    debit(req, respond, std::move(d));
  };
  if (!pin_thread_->submit(std::move(job))) {
    respond(http_error(503, "overloaded", "too many PIN checks are waiting; retry"));
  }
}

void Api::set_pin(const HttpRequest& req, const Responder& respond, const storage::Terminal& terminal,
                  const std::string& ref, const Json& body) {
  Status st = check_fields(body, {"request_id", "pin", "old_pin"});
  if (!st.is_ok()) return respond(status_response(st));
  auto rid = string_field(body, "request_id", true);
  auto pin = string_field(body, "pin", true);
  auto old_pin = string_field(body, "old_pin", false);
  for (const auto* r : {&rid, &pin, &old_pin}) {
    if (!r->is_ok()) return respond(status_response(r->status()));
  }
  if (Status valid = validate_request_id(*rid); !valid.is_ok()) return respond(status_response(valid));
  if (Status valid = validate_pin(*pin); !valid.is_ok()) return respond(status_response(valid));
  PinChange c;
  c.ref = ref;
  c.request_id = *rid;
  c.pin = *pin;
  if (body.contains("old_pin")) {
    if (Status valid = validate_pin(*old_pin); !valid.is_ok()) return respond(status_response(valid.with_context("old_pin")));
    c.old_pin = *old_pin;
  } else if (terminal.role == "admin") {
    c.admin = terminal.name;  // an admin terminal may reset a PIN without the old one (recorded)
  }
  change_pin(req, respond, std::move(c));
}

// POST /v1/members/{member}/pin, in steps: the worker resolves the member and sees what the change
// needs; the PIN thread hashes the new PIN (and checks the old one); the worker then decides
// against the state of that moment and stores the new hash. No Argon2id work runs on the worker,
// and none for a request refused at the first step.
void Api::change_pin(const HttpRequest& req, const Responder& respond, PinChange c) {
  if (c.pin_checks >= limits::kPinCheckAttemptsMax) {
    return respond(http_error(503, "pin_changed", "the member's PIN changed while it was being checked; retry"));
  }
  sync::Clock* clock = &clock_;
  auto verify_hash = std::make_shared<std::string>();  // set on the worker: check the old PIN against it
  auto fn = [c, clock, verify_hash](Ledger& l) {
    auto id = l.resolve_member(c.ref);
    if (!id.is_ok()) return status_response(id.status());
    auto prior = l.has_request(c.request_id);
    if (!prior.is_ok()) return status_response(prior.status());
    std::optional<Ledger::PinClearance> authority;
    if (!c.admin.empty()) {
      authority = Ledger::pin_override(*id, "pin-reset by admin terminal " + c.admin);
    } else if (!*prior) {  // a repeated request is answered from its first execution
      auto gate = l.pin_gate(*id, sync::OpKind::kProfile, c.old_pin.has_value(), c.verdict ? &*c.verdict : nullptr,
                             clock->now_ms());
      if (!gate.is_ok()) return status_response(gate.status());
      if (gate->kind == Ledger::PinGate::Kind::kRefuse) return reply_response(gate->refusal);
      if (gate->kind == Ledger::PinGate::Kind::kVerify) *verify_hash = gate->hash;
      if (gate->kind == Ledger::PinGate::Kind::kPass) authority = gate->clearance;
    }
    if (c.new_hash.empty() || !verify_hash->empty()) return HttpResponse{0, ""};  // to the PIN thread first
    auto r = l.set_pin_hash(c.request_id, *id, c.new_hash, authority ? &*authority : nullptr);
    return r.is_ok() ? reply_response(*r) : status_response(r.status());
  };
  After after = [this, req, c, verify_hash](const HttpResponse& resp, const Responder& respond) {
    if (resp.status != 0) return false;
    auto job = [this, req, respond, c, verify_hash](bool cancelled) mutable {
      if (cancelled) return respond(http_error(503, "overloaded", "the node is shutting down; retry"));
      if (c.new_hash.empty()) {
        auto hash = crypto::hash_pin(c.pin);
        if (!hash.is_ok()) return respond(status_response(hash.status()));
        c.new_hash = *hash;
      }
      if (!verify_hash->empty()) {
        c.verdict = Ledger::PinVerdict{*verify_hash, pin_verifier_(*verify_hash, *c.old_pin)};
        c.pin_checks++;
      }
      change_pin(req, respond, std::move(c));
    };
    if (!pin_thread_->submit(std::move(job))) {
      respond(http_error(503, "overloaded", "too many PIN checks are waiting; retry"));
    }
    return true;
  };
  submit(respond, true, fn, after);
}

void Api::handle_admin(HttpRequest req, Responder respond) {
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

void Api::route_admin(const Responder& respond, const std::vector<std::string>& parts, const HttpRequest& req) {
  const std::string& route = parts[2];
  if (parts.size() == 4) {
    return submit(respond, false, [ref = parts[3]](Ledger& l) {
      auto id = l.resolve_member(ref);
      if (!id.is_ok()) return status_response(id.status());
      auto j = l.member_json(*id);
      if (!j.is_ok()) return status_response(j.status());
      auto h = l.history_json(*id, 20);
      if (h.is_ok()) (*j)["recent_ops"] = *h;
      return ok_json(*j);
    });
  }
  if (route == "members") return find_members(req, respond, true);
  if (route == "peers" || route == "links") {
    return respond(http_error(404, "not_found", "this node is not enrolled in a chain: it has no peer links"));
  }
  sync::Clock* clock = &clock_;
  if (route == "node") {
    return submit(respond, false, [w = &worker_, info = node_info_, clock](Ledger& l) {
      auto j = l.status_json();
      if (!j.is_ok()) return status_response(j.status());
      auto s = w->stats();
      (*j)["wall_clock_ms"] = clock->now_ms();
      (*j)["software_version"] = kSoftwareVersion;
      (*j)["group_commit"] = {{"batches", s.batches}, {"mutating_ops", s.mutating_tasks}, {"largest_batch", s.largest_batch},
                              {"failed_commits", s.failed_commits}};
      if (info) info(*j);
      return ok_json(*j);
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
        if (!parsed.is_ok()) return http_error(400, "invalid_argument", "source must be a 32-hex node id");
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

}  // namespace outpost::node
