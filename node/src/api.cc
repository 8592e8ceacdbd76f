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

Result<Json> parse_body(const HttpRequest& req) {
  if (req.body.empty()) return Status::invalid("request body must be a JSON object");
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
    Json j = Json::parse(req.body, on_event);
    if (!duplicate.empty()) return Status::invalid("field '" + duplicate + "' is given twice");
    if (!j.is_object()) return Status::invalid("request body must be a JSON object");
    return j;
  } catch (const std::exception& e) {
    return Status::invalid(std::string("malformed JSON: ") + e.what());
  }
}

Result<std::string> get_string(const Json& j, const char* key, bool required) {
  if (!j.contains(key)) {
    if (required) return Status::invalid(std::string("missing field '") + key + "'");
    return std::string();
  }
  if (!j[key].is_string()) return Status::invalid(std::string("field '") + key + "' must be a string");
  return j[key].get<std::string>();
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

Status check_keys(const Json& j, std::initializer_list<const char*> allowed) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok |= it.key() == a;
    if (!ok) return Status::invalid("unknown field '" + it.key() + "'");
  }
  return Status::ok();
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

HttpResponse no_route(const HttpRequest& req, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return http_error(404, "unknown_route", "no route " + req.method + " " + req.path);
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  return http_error(405, "method_not_allowed", req.method + " not allowed on " + req.path + " (allowed: " + list + ")");
}

}  // namespace

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

void Api::run(const HttpRequest& req, const Responder& respond, bool mutating, const char* role,
              std::function<HttpResponse(Ledger&)> fn, After after) {
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
  // A token the database confirmed recently is checked here, on the io thread; any other goes to
  // the worker, which asks the database and remembers a confirmed one.
  const std::optional<storage::Terminal> known = tokens_.find(hash, clock_.now_ms());
  if (known && want_admin && known->role != "admin") return respond(forbidden(*known));
  auto result = std::make_shared<HttpResponse>();
  LedgerWorker::Task task;
  task.mutating = mutating;
  task.run = [this, result, hash, want_admin, forbidden, confirmed = known.has_value(),
              fn = std::move(fn)](Ledger& ledger) {
    if (!confirmed) {
      auto t = ledger.store().find_terminal(hash);
      if (!t.is_ok()) {
        *result = status_response(t.status());
        return;
      }
      if (!*t) {
        *result = http_error(401, "unauthorized", "token not recognized");
        return;
      }
      tokens_.remember(hash, **t, clock_.now_ms());
      if (want_admin && (*t)->role != "admin") {
        *result = forbidden(**t);
        return;
      }
    }
    *result = fn(ledger);
  };
  task.done = [result, respond, mutating, after](bool durable) {
    if (mutating && !durable && result->status == 200) {
      respond(http_error(503, "not_durable", "the operation could not be made durable; nothing was recorded, retry with the same request_id"));
      return;
    }
    if (after && after(*result, respond)) return;
    respond(std::move(*result));
  };
  if (!worker_.submit(std::move(task))) {
    respond(http_error(503, "overloaded", "the node is shutting down or its queue is full; retry"));
  }
}

void Api::authorized(const HttpRequest& req, const Responder& respond, const char* role,
                     std::function<void()> on_ok) {
  run(req, respond, false, role, [](Ledger&) { return HttpResponse{200, "{}"}; },
      [on_ok](const HttpResponse& r, const Responder&) {
        if (r.status != 200) return false;
        on_ok();
        return true;
      });
}

void Api::handle_pos(HttpRequest req, Responder respond) {
  auto parts = split_path(req.path);
  const std::string& m = req.method;
  if (parts.empty() || parts[0] != "v1") return respond(http_error(404, "unknown_route", "no route " + req.method + " " + req.path));
  const auto allowed = pos_route_methods(parts);
  if (std::find(allowed.begin(), allowed.end(), m) == allowed.end()) return respond(no_route(req, allowed));
  if (parts.size() == 2 && parts[1] == "health" && m == "GET") return respond(HttpResponse{200, R"({"ok":true})"});

  if (parts.size() == 2 && parts[1] == "status" && m == "GET") {
    return run(req, respond, false, "pos", [](Ledger& l) {
      auto j = l.status_json();
      return j.is_ok() ? ok_json(*j) : status_response(j.status());
    });
  }

  // GET /v1/members?card=...|phone=...   POST /v1/members (enroll)
  if (parts.size() == 2 && parts[1] == "members") {
    if (m == "GET") {
      std::string card = req.query.count("card") ? req.query.at("card") : "";
      std::string phone = req.query.count("phone") ? req.query.at("phone") : "";
      if (card.empty() == phone.empty()) return respond(http_error(400, "invalid_argument", "give exactly one of ?card= or ?phone="));
      return run(req, respond, false, "pos", [card, phone](Ledger& l) {
        auto ids = card.empty() ? l.find_by_phone(phone) : l.find_by_card(card);
        if (!ids.is_ok()) return status_response(ids.status());
        Json arr = Json::array();
        for (const auto& id : *ids) {
          auto j = l.member_json(id);
          if (j.is_ok()) arr.push_back(*j);
        }
        Json out;
        out["members"] = arr;
        return ok_json(out);
      });
    }
    if (m == "POST") {
      auto body = parse_body(req);
      if (!body.is_ok()) return respond(status_response(body.status()));
      Status st = check_keys(*body, {"request_id", "card", "name", "phone", "birthday"});
      if (!st.is_ok()) return respond(status_response(st));
      EnrollRequest er;
      auto rid = get_string(*body, "request_id", true);
      auto card = get_string(*body, "card", true);
      auto name = get_string(*body, "name", true);
      auto phone = get_string(*body, "phone", false);
      auto bday = get_string(*body, "birthday", false);
      for (const auto* r : {&rid, &card, &name, &phone, &bday}) {
        if (!r->is_ok()) return respond(status_response(r->status()));
      }
      er.request_id = *rid;
      er.card = *card;
      er.name = *name;
      er.phone = *phone;
      er.birthday = *bday;
      return run(req, respond, true, "pos", [er](Ledger& l) {
        auto r = l.enroll(er);
        return r.is_ok() ? reply_response(*r) : status_response(r.status());
      });
    }
    return respond(http_error(405, "method_not_allowed", m + " not allowed on " + req.path));
  }

  // /v1/members/{member}[/action]
  if (parts.size() >= 3 && parts[1] == "members") {
    const std::string ref = parts[2];
    if (parts.size() == 3 && m == "GET") {
      return run(req, respond, false, "pos", [ref](Ledger& l) {
        auto id = l.resolve_member(ref);
        if (!id.is_ok()) return status_response(id.status());
        auto j = l.member_json(*id);
        return j.is_ok() ? ok_json(*j) : status_response(j.status());
      });
    }
    if (parts.size() == 4 && parts[3] == "history" && m == "GET") {
      std::size_t limit = 50;
      if (req.query.count("limit")) {
        auto n = parse_amount(req.query.at("limit"), "limit");
        if (!n.is_ok() || *n > limits::kHistoryRowsMax) return respond(http_error(400, "invalid_argument", "limit must be 1..1000"));
        limit = *n;
      }
      return run(req, respond, false, "pos", [ref, limit](Ledger& l) {
        auto id = l.resolve_member(ref);
        if (!id.is_ok()) return status_response(id.status());
        auto h = l.history_json(*id, limit);
        if (!h.is_ok()) return status_response(h.status());
        Json out;
        out["member"] = sync::id_hex(*id);
        out["ops"] = *h;
        return ok_json(out);
      });
    }
    if (parts.size() == 4 && m == "POST") {
      const std::string action = parts[3];
      auto body = parse_body(req);
      if (!body.is_ok()) return respond(status_response(body.status()));
      auto rid = get_string(*body, "request_id", true);
      if (!rid.is_ok()) return respond(status_response(rid.status()));
      std::string request_id = *rid;
      if (action == "profile") {
        Status st = check_keys(*body, {"request_id", "name", "phone", "birthday", "status"});
        if (!st.is_ok()) return respond(status_response(st));
        std::vector<sync::FieldValue> fields;
        for (auto [key, field] : {std::pair{"name", sync::Field::kName}, {"phone", sync::Field::kPhone},
                                  {"birthday", sync::Field::kBirthday}, {"status", sync::Field::kStatus}}) {
          auto v = get_string(*body, key, false);
          if (!v.is_ok()) return respond(status_response(v.status()));
          if (body->contains(key)) fields.push_back({field, *v});
        }
        return run(req, respond, true, "pos", [ref, request_id, fields](Ledger& l) {
          auto id = l.resolve_member(ref);
          if (!id.is_ok()) return status_response(id.status());
          auto r = l.update_profile(request_id, *id, fields);
          return r.is_ok() ? reply_response(*r) : status_response(r.status());
        });
      }
      if (action == "pin") {
        Status st = check_keys(*body, {"request_id", "pin"});
        if (!st.is_ok()) return respond(status_response(st));
        auto pin = get_string(*body, "pin", true);
        if (!pin.is_ok()) return respond(status_response(pin.status()));
        if (Status valid = validate_pin(*pin); !valid.is_ok()) return respond(status_response(valid));
        if (Status valid = validate_request_id(request_id); !valid.is_ok()) return respond(status_response(valid));
        return set_pin(req, respond, ref, request_id, *pin);
      }
      const char* amount_key = action == "earn" ? "purchase_minor" : action == "redeem" ? "points" : "amount_minor";
      if (action != "earn" && action != "redeem" && action != "topup" && action != "spend") {
        return respond(http_error(404, "unknown_route", "no route POST " + req.path));
      }
      Status st = action == "spend" ? check_keys(*body, {"request_id", amount_key, "receipt", "pin"})
                                    : check_keys(*body, {"request_id", amount_key, "receipt"});
      if (!st.is_ok()) return respond(status_response(st));
      auto amount = get_amount(*body, amount_key);
      if (!amount.is_ok()) return respond(status_response(amount.status()));
      auto receipt = get_string(*body, "receipt", false);
      if (!receipt.is_ok()) return respond(status_response(receipt.status()));
      if (receipt->size() > limits::kReceiptBytesMax) return respond(http_error(400, "invalid_argument", "receipt too long"));
      auto pin = get_string(*body, "pin", false);
      if (!pin.is_ok()) return respond(status_response(pin.status()));
      std::optional<std::string> pin_opt;
      if (body->contains("pin")) pin_opt = *pin;
      if (action == "spend" || action == "redeem") {
        Debit d;
        d.action = action;
        d.ref = ref;
        d.request_id = request_id;
        d.amount = *amount;
        d.receipt = *receipt;
        d.pin = pin_opt;
        return debit(req, respond, std::move(d));
      }
      std::uint64_t amt = *amount;
      std::string rc = *receipt;
      return run(req, respond, true, "pos", [=](Ledger& l) {
        auto id = l.resolve_member(ref);
        if (!id.is_ok()) return status_response(id.status());
        auto r = action == "earn" ? l.earn(request_id, *id, amt, rc) : l.topup(request_id, *id, amt, rc);
        return r.is_ok() ? reply_response(*r) : status_response(r.status());
      });
    }
    return respond(http_error(404, "unknown_route", "no route " + m + " " + req.path));
  }

  // POST /v1/ops/{origin}:{seq}/reverse
  if (parts.size() == 4 && parts[1] == "ops" && parts[3] == "reverse" && m == "POST") {
    sync::NodeId origin{};
    std::uint64_t seq = 0;
    if (!sync::parse_op_ref(parts[2], origin, seq)) return respond(http_error(400, "invalid_argument", "op must be ORIGIN:SEQ"));
    auto body = parse_body(req);
    if (!body.is_ok()) return respond(status_response(body.status()));
    Status st = check_keys(*body, {"request_id"});
    if (!st.is_ok()) return respond(status_response(st));
    auto rid = get_string(*body, "request_id", true);
    if (!rid.is_ok()) return respond(status_response(rid.status()));
    std::string request_id = *rid;
    return run(req, respond, true, "pos", [=](Ledger& l) {
      auto r = l.reverse(request_id, origin, seq);
      return r.is_ok() ? reply_response(*r) : status_response(r.status());
    });
  }
  respond(http_error(404, "unknown_route", "no route " + req.method + " " + req.path));
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
    if (d.action == "spend") {
      auto prior = l.has_request(d.request_id);
      if (!prior.is_ok()) return status_response(prior.status());
      if (!*prior) {
        auto gate = l.pin_gate(*id, d.pin.has_value(), d.verdict ? &*d.verdict : nullptr, clock->now_ms());
        if (!gate.is_ok()) return status_response(gate.status());
        if (gate->kind == Ledger::PinGate::Kind::kRefuse) return reply_response(gate->refusal);
        if (gate->kind == Ledger::PinGate::Kind::kVerify) {
          *verify_hash = gate->hash;
          return HttpResponse{0, ""};  // no answer yet: `after` has the PIN checked first
        }
      }
    }
    auto r = d.action == "redeem" ? l.redeem(d.request_id, *id, d.amount, d.receipt)
                                  : l.spend(d.request_id, *id, d.amount, d.receipt);
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
  run(req, respond, true, "pos", fn, after);
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

void Api::set_pin(const HttpRequest& req, const Responder& respond, const std::string& ref,
                  const std::string& request_id, const std::string& pin) {
  // The token and the member are checked first, so that no unauthenticated or pointless request
  // costs an Argon2id hash; the hash is made on the PIN thread and stored by the worker.
  auto member = std::make_shared<sync::MemberId>();
  auto find = [ref, member](Ledger& l) {
    auto id = l.resolve_member(ref);
    if (!id.is_ok()) return status_response(id.status());
    *member = *id;
    return HttpResponse{200, ""};
  };
  auto hash_then_store = [this, req, request_id, pin, member](const HttpResponse& found, const Responder& respond) {
    if (found.status != 200) return false;
    auto job = [this, req, respond, request_id, pin, member](bool cancelled) {
      if (cancelled) return respond(http_error(503, "overloaded", "the node is shutting down; retry"));
      auto hash = crypto::hash_pin(pin);
      if (!hash.is_ok()) return respond(status_response(hash.status()));
      run(req, respond, true, "pos", [request_id, id = *member, h = *hash](Ledger& l) {
        auto r = l.set_pin_hash(request_id, id, h);
        return r.is_ok() ? reply_response(*r) : status_response(r.status());
      });
    };
    if (!pin_thread_->submit(std::move(job))) {
      respond(http_error(503, "overloaded", "too many PIN checks are waiting; retry"));
    }
    return true;
  };
  run(req, respond, false, "pos", find, hash_then_store);
}

void Api::handle_admin(HttpRequest req, Responder respond) {
  auto parts = split_path(req.path);
  if (parts.size() < 2 || parts[0] != "admin" || parts[1] != "v1") {
    return respond(http_error(404, "unknown_route", "no route " + req.method + " " + req.path));
  }
  if (parts.size() == 3 && parts[2] == "health" && req.method == "GET") return respond(HttpResponse{200, R"({"ok":true})"});
  if (admin_ext_ && admin_ext_(req, respond)) return;
  if (req.method != "GET") {
    bool known = (parts.size() == 3 && (parts[2] == "node" || parts[2] == "alerts" || parts[2] == "members" ||
                                        parts[2] == "terminals" || parts[2] == "health" || parts[2] == "roster" ||
                                        parts[2] == "checkpoints")) ||
                 (parts.size() == 4 && parts[2] == "members");
    return respond(no_route(req, known ? std::vector<std::string>{"GET"} : std::vector<std::string>{}));
  }

  if (parts.size() == 3 && parts[2] == "node") {
    LedgerWorker* w = &worker_;
    auto info = node_info_;
    sync::Clock* clock = &clock_;
    return run(req, respond, false, "admin", [w, info, clock](Ledger& l) {
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
  if (parts.size() == 3 && parts[2] == "alerts") {
    return run(req, respond, false, "admin", [](Ledger& l) {
      auto alerts = l.store().recent_alerts(200);
      if (!alerts.is_ok()) return status_response(alerts.status());
      Json arr = Json::array();
      std::map<std::string, int> counts;
      for (const auto& a : *alerts) {
        counts[a.kind]++;
        arr.push_back({{"id", a.id}, {"at_ms", a.at_ms}, {"kind", a.kind}, {"node", a.node}, {"message", a.message}});
      }
      Json out;
      out["alerts"] = arr;
      out["counts"] = counts;
      return ok_json(out);
    });
  }
  if (parts.size() == 4 && parts[2] == "members") {
    std::string ref = parts[3];
    return run(req, respond, false, "admin", [ref](Ledger& l) {
      auto id = l.resolve_member(ref);
      if (!id.is_ok()) return status_response(id.status());
      auto j = l.member_json(*id);
      if (!j.is_ok()) return status_response(j.status());
      auto h = l.history_json(*id, 20);
      if (h.is_ok()) (*j)["recent_ops"] = *h;
      return ok_json(*j);
    });
  }
  if (parts.size() == 3 && parts[2] == "members") {
    std::string card = req.query.count("card") ? req.query.at("card") : "";
    std::string phone = req.query.count("phone") ? req.query.at("phone") : "";
    if (card.empty() == phone.empty()) return respond(http_error(400, "invalid_argument", "give exactly one of ?card= or ?phone="));
    return run(req, respond, false, "admin", [card, phone](Ledger& l) {
      auto ids = card.empty() ? l.find_by_phone(phone) : l.find_by_card(card);
      if (!ids.is_ok()) return status_response(ids.status());
      Json arr = Json::array();
      for (const auto& id : *ids) arr.push_back(sync::id_hex(id));
      return ok_json(Json{{"members", arr}});
    });
  }
  if (parts.size() == 3 && parts[2] == "roster") {
    sync::Clock* clock = &clock_;
    return run(req, respond, false, "admin", [clock](Ledger& l) {
      auto j = roster_json(l.store(), clock->now_ms());
      if (!j.is_ok()) return status_response(j.status());
      return ok_json(*j);
    });
  }
  if (parts.size() == 3 && parts[2] == "checkpoints") {
    return run(req, respond, false, "admin", [](Ledger& l) {
      auto j = checkpoints_json(l.store());
      if (!j.is_ok()) return status_response(j.status());
      return ok_json(*j);
    });
  }
  if (parts.size() == 3 && parts[2] == "terminals") {
    return run(req, respond, false, "admin", [](Ledger& l) {
      auto ts = l.store().list_terminals();
      if (!ts.is_ok()) return status_response(ts.status());
      Json arr = Json::array();
      for (const auto& t : *ts) arr.push_back({{"name", t.name}, {"role", t.role}, {"created_ms", t.created_ms}});
      return ok_json(Json{{"terminals", arr}});
    });
  }
  respond(http_error(404, "unknown_route", "no route " + req.method + " " + req.path));
}

}  // namespace outpost::node
