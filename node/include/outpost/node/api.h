// The POS API (cashier terminals) and the admin API (HQ staff, outpost-top), as HTTP handlers
// over the LedgerWorker. Routes and bodies are documented in docs/api.md and docs/admin-api.md.
// Every call except /v1/health needs a bearer token of a terminal (`outpost terminal add`);
// admin routes need an admin token. Handlers run on the io_context thread; ledger work runs on
// the worker thread. Thread-safe as far as the worker is.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "outpost/node/http.h"
#include "outpost/node/ledger.h"
#include "outpost/node/worker.h"

namespace outpost::node {

// Extra admin routes supplied by other parts of the daemon (peer manager): returns true when it
// handled the request. Runs on the io_context thread.
using AdminExtension = std::function<bool(const HttpRequest&, const Responder&)>;

class Api {
 public:
  Api(LedgerWorker& worker, sync::Clock& clock) : worker_(worker), clock_(clock) {}

  void handle_pos(HttpRequest req, Responder respond);
  void handle_admin(HttpRequest req, Responder respond);
  // Checks the bearer token of `req` for `role` ("pos" or "admin") on the worker thread, then
  // calls on_ok (from the worker thread) or answers the auth error itself.
  void authorized(const HttpRequest& req, const Responder& respond, const char* role,
                  std::function<void()> on_ok);
  void set_admin_extension(AdminExtension ext) { admin_ext_ = std::move(ext); }
  // Adds fields to GET /admin/v1/node (peer state, etc.). Runs on the worker thread.
  void set_node_info(std::function<void(Json&)> fn) { node_info_ = std::move(fn); }
  // Rights broker, requester side: called (from the worker thread) when a spend or redeem lacks
  // local rights. It asks holders (HQ first) to move `amount` here and calls `done(tried,
  // granted)` from any thread exactly once, within a bounded time. When granted, the request
  // is retried once; otherwise the refusal is answered, saying whether a request was tried.
  using RightsBroker = std::function<void(const sync::MemberId& member, sync::Account account,
                                          std::uint64_t amount, const Json& rights_elsewhere,
                                          std::function<void(bool tried, bool granted)> done)>;
  void set_rights_broker(RightsBroker fn) { broker_ = std::move(fn); }

 private:
  // Queues `fn` on the worker after authenticating the bearer token for `role`.
  // `after`, when set, sees the response on the worker thread once durable and may take over
  // answering it (returns true).
  using After = std::function<bool(const HttpResponse&, const Responder&)>;
  void run(const HttpRequest& req, const Responder& respond, bool mutating, const char* role,
           std::function<HttpResponse(Ledger&)> fn, After after = nullptr);
  // Spend or redeem, with one rights-broker retry.
  void debit(const HttpRequest& req, const Responder& respond, const std::string& action,
             const std::string& ref, const std::string& request_id, std::uint64_t amount,
             const std::string& receipt, std::optional<std::string> pin, bool retried);

  LedgerWorker& worker_;
  sync::Clock& clock_;
  AdminExtension admin_ext_;
  std::function<void(Json&)> node_info_;
  RightsBroker broker_;
};

// Maps a Status to an HTTP error response (400 invalid, 404 not found, 401 permission, ...).
HttpResponse status_response(const Status& st);
// Maps a ledger Reply to 200 or, when refused, 409 (423 for a PIN lockout).
HttpResponse reply_response(const Reply& r);

}  // namespace outpost::node
