// Api (outpost/node/api.h), what every request goes through: bearer tokens and their cache, the
// ledger worker and its refusals, request bodies, and the mapping of Status and Outcome to HTTP.
// The routes are in api_pos.cc and api_admin.cc (listed in api_internal.h).
#include "outpost/node/api.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <set>
#include <thread>
#include <vector>

#include "api_internal.h"
#include "outpost/base/limits.h"
#include "outpost/node/log.h"
#include "outpost/node/schema.h"

namespace outpost::node {

namespace {

// Serializes a response body. Stored strings (names, receipts entered through the CLI or received
// from peers) need not be UTF-8; they are replaced rather than letting dump() throw.
std::string dump_json(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Runs a handler continuation outside the HTTP layer's own guard (on the ledger worker, after the
// token was looked up): an exception becomes a 500 answer instead of ending the process.
void guarded(const Responder& respond, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    log(LogLevel::kError, "api handler failed", {{"error", e.what()}});
    respond(http_error(500, "internal",
                       "internal error while handling the request; see the node's log"));
  }
}

}  // namespace

namespace api_internal {

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

bool is_health(const std::vector<std::string>& parts, bool admin) {
  return admin
             ? parts.size() == 3 && parts[0] == "admin" && parts[1] == "v1" && parts[2] == "health"
             : parts.size() == 2 && parts[0] == "v1" && parts[1] == "health";
}

// 404 for an unknown path, 405 with an Allow header for a known one with another method; nullopt
// when `req.method` is allowed.
std::optional<HttpResponse> no_route(const HttpRequest& req,
                                     const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), req.method) != allowed.end()) return std::nullopt;
  if (allowed.empty())
    return http_error(404, "unknown_route", "no route " + req.method + " " + req.path);
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  HttpResponse r =
      http_error(405, "method_not_allowed",
                 req.method + " not allowed on " + req.path + " (allowed: " + list + ")");
  r.allow = list;
  return r;
}

HttpResponse ok_json(const Json& j) { return HttpResponse{200, dump_json(j)}; }

}  // namespace api_internal

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
  if (!body[key].is_string())
    return Status::invalid(std::string("field '") + key + "' must be a string");
  return body[key].get<std::string>();
}

std::optional<storage::Terminal> TokenCache::find(const crypto::Hash32& token_hash,
                                                  std::uint64_t now_ms) {
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
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const Entry& a, const Entry& b) { return a.confirmed_ms < b.confirmed_ms; });
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
    : worker_(worker),
      clock_(clock),
      pin_verifier_(crypto::verify_pin),
      report_thread_(std::make_unique<JobThread>(1)),
      pin_thread_(std::make_unique<JobThread>(limits::kPinChecksQueuedMax)) {}

Api::~Api() {
  pin_thread_->stop();
  report_thread_->stop();
}

HttpResponse status_response(const Status& st) {
  switch (st.code()) {
    case Code::kInvalidArgument:
    case Code::kUnsupported:
      return http_error(400, code_name(st.code()), st.message());
    case Code::kNotFound:
      return http_error(404, "not_found", st.message());
    case Code::kPermission:
      return http_error(401, "unauthorized", st.message());
    case Code::kRefused:
      return http_error(409, "refused", st.message());
    case Code::kUnavailable:
      return http_error(503, "unavailable", st.message());
    default:
      return http_error(500, code_name(st.code()), st.message());
  }
}

HttpResponse outcome_response(const Outcome& o) {
  int status = 200;
  if (o.refused) {
    switch (o.refusal.reason) {
      case RefusalReason::kPinLocked:
        status = 423;
        break;
      case RefusalReason::kPinWrong:
        status = 403;
        break;
      default:
        status = 409;
    }
  }
  return HttpResponse{status, dump_json(schema::outcome_json(o))};
}

void Api::authenticate(const HttpRequest& req, const Responder& respond, const char* role,
                       OnAuth on_ok) {
  const std::string prefix = "Bearer ";
  if (req.authorization.compare(0, prefix.size(), prefix) != 0 ||
      req.authorization.size() == prefix.size()) {
    return respond(
        http_error(401, "unauthorized", "missing bearer token (Authorization: Bearer TOKEN)"));
  }
  const std::size_t token_bytes = req.authorization.size() - prefix.size();
  if (token_bytes > 256) return respond(http_error(401, "unauthorized", "token not recognized"));
  const crypto::Hash32 hash = crypto::sha256(
      {reinterpret_cast<const std::uint8_t*>(req.authorization.data()) + prefix.size(),
       token_bytes});
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

void Api::submit(const Responder& respond, bool mutating, std::function<HttpResponse(Ledger&)> fn) {
  // Status 0 until the task runs: a task answered not durable without having run (the worker
  // latched a failed commit, or could not begin its batch) is told apart from one that ran.
  auto result = std::make_shared<HttpResponse>(0, "");
  LedgerWorker::Task task;
  task.mutating = mutating;
  task.run = [result, fn = std::move(fn)](Ledger& ledger) { *result = fn(ledger); };
  task.done = [this, result, respond](bool durable) {
    if (!durable && result->status == 0) return respond(worker_refusal(false));
    if (!durable && result->status == 200) return respond(not_durable());
    respond(std::move(*result));
  };
  if (!worker_.submit(std::move(task))) respond(worker_refusal(true));
}

void Api::submit_pass(const Responder& respond, Pass run, std::function<void()> next) {
  struct State {
    bool ran = false;
    std::optional<HttpResponse> answer;  // none: the request goes on with `next`
  };
  auto state = std::make_shared<State>();
  LedgerWorker::Task task;
  task.mutating = true;
  task.run = [state, run = std::move(run)](Ledger& ledger) {
    state->ran = true;
    state->answer = run(ledger);
  };
  task.done = [this, state, respond, next = std::move(next)](bool durable) {
    // A pass that did not run, or whose batch did not commit, goes no further.
    if (!durable && (!state->ran || !state->answer)) return respond(worker_refusal(false));
    if (!state->answer) return next();
    if (!durable && state->answer->status == 200) return respond(not_durable());
    respond(std::move(*state->answer));
  };
  if (!worker_.submit(std::move(task))) respond(worker_refusal(true));
}

HttpResponse Api::not_durable() {
  return http_error(503, "not_durable",
                    "the operation could not be made durable; nothing was recorded, retry with the "
                    "same request_id");
}

void Api::authorized(const HttpRequest& req, const Responder& respond, const char* role,
                     std::function<void()> on_ok) {
  authenticate(req, respond, role,
               [on_ok = std::move(on_ok)](const storage::Terminal&) { on_ok(); });
}

}  // namespace outpost::node
