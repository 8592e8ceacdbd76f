// Api's POS routes (docs/api.md; the files of Api are listed in api_internal.h): members,
// history, profile and PIN changes, earn, redeem, top-up and spend, reversal. A spend of a member
// with a PIN has the PIN checked on the PIN thread, and a spend or redeem refused for lack of
// rights here goes through the rights broker once before the refusal is final.
#include <algorithm>
#include <string>
#include <vector>

#include "api_internal.h"
#include "outpost/base/limits.h"
#include "outpost/node/api.h"
#include "outpost/node/log.h"
#include "outpost/node/schema.h"

namespace outpost::node {

using api_internal::is_health;
using api_internal::no_route;
using api_internal::ok_json;
using api_internal::split_path;

namespace {

Result<std::uint64_t> get_amount(const Json& j, const char* key) {
  if (!j.contains(key)) return Status::invalid(std::string("missing field '") + key + "'");
  const Json& v = j[key];
  if (!v.is_number_integer()) {
    return Status::invalid(std::string("field '") + key +
                           "' must be an integer (minor units), got " + v.dump());
  }
  if (v.is_number_unsigned()) {
    auto x = v.get<std::uint64_t>();
    if (x == 0) return Status::invalid(std::string("field '") + key + "' must be positive");
    if (x > limits::kAmountMax)
      return Status::invalid(std::string("field '") + key + "' is above the maximum");
    return x;
  }
  auto x = v.get<std::int64_t>();
  if (x <= 0) return Status::invalid(std::string("field '") + key + "' must be positive");
  if (static_cast<std::uint64_t>(x) > limits::kAmountMax)
    return Status::invalid(std::string("field '") + key + "' is above the maximum");
  return static_cast<std::uint64_t>(x);
}

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

// Records a spend or redeem refused for lack of rights here (admin API alerts, outpost-top).
void raise_refusal_alert(Ledger& l, const Refusal& refusal) {
  if (refusal.reason != RefusalReason::kInsufficientRights) return;
  const bool tried = refusal.rights && refusal.rights->request_tried;
  l.raise_alert(
      "refused_spend", sync::id_hex(l.node_id()),
      refusal.message + (tried ? " (rights request tried)" : " (no rights request possible)"));
}

// The answer of a step that ends the request on the worker; nullopt when it goes on elsewhere.
std::optional<HttpResponse> answer_of(const DebitFlow::Step& step) {
  if (step.what != DebitFlow::Step::Do::kAnswer) return std::nullopt;
  return outcome_response(step.answer);
}

}  // namespace

// Every route: the token first (nothing of the request is looked at before it is confirmed),
// then the path and method (404, 405), then the body.
void Api::handle_pos(const HttpRequest& req, const Responder& respond) {
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
      auto st = l.node_status();
      return st.is_ok() ? ok_json(schema::status_json(*st)) : status_response(st.status());
    });
  }
  if (parts[1] == "ops") return reverse(req, respond, parts[2]);
  if (parts.size() == 2) return m == "GET" ? find_members(req, respond, false) : enroll(req, respond);
  const std::string& ref = parts[2];
  if (parts.size() == 3) {
    return submit(respond, false, [ref](Ledger& l) {
      auto id = l.resolve_member(ref);
      if (!id.is_ok()) return status_response(id.status());
      auto m = l.member_view(*id);
      return m.is_ok() ? ok_json(schema::member_json(*m)) : status_response(m.status());
    });
  }
  if (parts[3] == "history") return history(req, respond, ref);
  auto body = parse_json_object(req.body);
  if (!body.is_ok()) return respond(status_response(body.status()));
  if (parts[3] == "profile") return update_profile(respond, ref, *body);
  if (parts[3] == "pin") return set_pin(req, respond, terminal, ref, *body);
  member_action(respond, ref, parts[3], *body);
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
      } else if (auto m = l.member_view(id); m.is_ok()) {
        arr.push_back(schema::member_json(*m));
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
    return r.is_ok() ? outcome_response(*r) : status_response(r.status());
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
    auto h = l.history(*id, limit);
    if (!h.is_ok()) return status_response(h.status());
    return ok_json(Json{{"member", sync::id_hex(*id)}, {"ops", schema::history_json(*h)}});
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
    return r.is_ok() ? outcome_response(*r) : status_response(r.status());
  });
}

void Api::member_action(const Responder& respond, const std::string& ref, const std::string& action,
                        const Json& body) {
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
    auto d = std::make_shared<Debit>();
    d->ref = ref;
    d->request_id = *rid;
    d->amount = *amount;
    d->receipt = *receipt;
    if (body.contains("pin")) d->pin = *pin;
    d->flow = DebitFlow(action == "spend", static_cast<bool>(broker_));
    return drive_debit(d, respond, d->flow.start());
  }
  submit(respond, true, [=, request_id = *rid, amt = *amount, rc = *receipt](Ledger& l) {
    auto id = l.resolve_member(ref);
    if (!id.is_ok()) return status_response(id.status());
    auto r = action == "earn" ? l.earn(request_id, *id, amt, rc) : l.topup(request_id, *id, amt, rc);
    return r.is_ok() ? outcome_response(*r) : status_response(r.status());
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
    return r.is_ok() ? outcome_response(*r) : status_response(r.status());
  });
}

void Api::drive_debit(const std::shared_ptr<Debit>& d, const Responder& respond,
                      const DebitFlow::Step& step) {
  using Do = DebitFlow::Step::Do;
  switch (step.what) {
    case Do::kRunOnWorker:
      return debit_on_worker(d, respond);
    case Do::kCheckPin: {
      auto job = [this, d, respond, hash = step.pin_hash](bool cancelled) {
        if (cancelled)
          return respond(http_error(503, "overloaded", "the node is shutting down; retry"));
        drive_debit(d, respond, d->flow.on_pin_checked(pin_verifier_(hash, *d->pin)));
      };
      if (!pin_thread_->submit(std::move(job))) {
        respond(http_error(503, "overloaded", "too many PIN checks are waiting; retry"));
      }
      return;
    }
    case Do::kAskBroker: {
      const RightsShortfall& s = step.shortfall;
      broker_(s.member, s.account, s.shortfall, s.elsewhere,
              [this, d, respond](bool tried, bool granted) {
                DebitFlow::Step next = d->flow.on_broker(tried, granted);
                if (next.alert) {
                  LedgerWorker::Task alert;
                  alert.mutating = true;
                  alert.run = [refusal = next.answer.refusal](Ledger& l) {
                    raise_refusal_alert(l, refusal);
                  };
                  (void)worker_.submit(std::move(alert));  // best effort, like every alert
                }
                drive_debit(d, respond, next);
              });
      return;
    }
    case Do::kAnswer:
      return respond(outcome_response(step.answer));
    case Do::kPinKeptChanging:
      return respond(http_error(503, "pin_changed",
                                "the member's PIN changed while it was being checked; retry"));
  }
}

void Api::debit_on_worker(const std::shared_ptr<Debit>& d, const Responder& respond) {
  auto next = std::make_shared<DebitFlow::Step>();  // decided on the worker, taken after the commit
  Pass run = [d, next, clock = &clock_](Ledger& l) -> std::optional<HttpResponse> {
    auto id = l.resolve_member(d->ref);
    if (!id.is_ok()) return status_response(id.status());
    std::optional<Ledger::PinClearance> clearance;
    if (d->flow.spend()) {
      auto prior = l.has_request(d->request_id);
      if (!prior.is_ok()) return status_response(prior.status());
      if (!*prior) {  // a repeated request is answered from its first execution, without a PIN
        const auto& verdict = d->flow.verdict();
        auto gate = l.pin_gate(*id, sync::OpKind::kSpend, d->pin.has_value(),
                               verdict ? &*verdict : nullptr, clock->now_ms());
        if (!gate.is_ok()) return status_response(gate.status());
        if (auto stop = d->flow.on_gate(*gate)) *next = std::move(*stop);
        if (d->flow.state() != DebitFlow::State::kWorker) return answer_of(*next);
        clearance = gate->clearance;
      }
    }
    auto r = d->flow.spend() ? l.spend(d->request_id, *id, d->amount, d->receipt,
                                       clearance ? &*clearance : nullptr)
                             : l.redeem(d->request_id, *id, d->amount, d->receipt);
    if (!r.is_ok()) return status_response(r.status());
    *next = d->flow.on_debit(std::move(*r));
    // A final refusal for lack of rights here is recorded in the same batch as the pass.
    if (next->alert) raise_refusal_alert(l, next->answer.refusal);
    return answer_of(*next);
  };
  submit_pass(respond, std::move(run),
              [this, d, next, respond] { drive_debit(d, respond, *next); });
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
  Pass run = [c, clock, verify_hash](Ledger& l) -> std::optional<HttpResponse> {
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
      if (gate->kind == Ledger::PinGate::Kind::kRefuse)
        return outcome_response(Outcome::refuse(gate->refusal));
      if (gate->kind == Ledger::PinGate::Kind::kVerify) *verify_hash = gate->hash;
      if (gate->kind == Ledger::PinGate::Kind::kPass) authority = gate->clearance;
    }
    if (c.new_hash.empty() || !verify_hash->empty())
      return std::nullopt;  // to the PIN thread first
    auto r = l.set_pin_hash(c.request_id, *id, c.new_hash, authority ? &*authority : nullptr);
    return r.is_ok() ? outcome_response(*r) : status_response(r.status());
  };
  // On the PIN thread: the new PIN hashed (once), the old one checked against the hash of the
  // moment; then the worker decides again.
  auto to_pin_thread = [this, req, respond, c, verify_hash]() {
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
  };
  submit_pass(respond, std::move(run), std::move(to_pin_thread));
}

}  // namespace outpost::node
