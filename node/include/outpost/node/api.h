// The POS API (cashier terminals) and the admin API (HQ staff, outpost-top), as HTTP handlers
// over the LedgerWorker. Routes and bodies are documented in docs/api.md and docs/admin-api.md.
// Every call except /v1/health needs a bearer token of a terminal (`outpost terminal add`);
// admin routes need an admin token. Handlers run on the io_context thread; ledger work runs on
// the worker thread; member PIN hashing and verification (Argon2id) run on a PIN thread of
// their own, never on the worker. Thread-safe as far as the worker is.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "outpost/node/debit_flow.h"
#include "outpost/node/http.h"
#include "outpost/node/job_thread.h"
#include "outpost/node/ledger.h"
#include "outpost/node/worker.h"

namespace outpost::node {

// Terminals whose bearer token the database confirmed, keyed by the token's SHA-256 (the token
// itself is never kept, as in the database), each trusted for limits::kTokenCacheTtlMs after it
// was confirmed. Only confirmed tokens are kept: an unknown token always goes to the database,
// so a terminal added while the daemon runs works at once. Lookups compare every entry in
// constant time. Thread-safe.
class TokenCache {
 public:
  // Returns the terminal of `token_hash` if it was confirmed less than the TTL before `now_ms`.
  std::optional<storage::Terminal> find(const crypto::Hash32& token_hash, std::uint64_t now_ms);
  // Remembers that the database holds `token_hash` for `terminal` (confirmed at `now_ms`).
  void remember(const crypto::Hash32& token_hash, const storage::Terminal& terminal, std::uint64_t now_ms);
  // Forgets every token (a terminal was removed).
  void clear();
  std::size_t size() const;

 private:
  struct Entry {
    crypto::Hash32 token_hash{};
    storage::Terminal terminal;
    std::uint64_t confirmed_ms = 0;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;  // at most limits::kTokenCacheEntriesMax
};


// Extra admin routes supplied by other parts of the daemon (peer manager): returns true when it
// handled the request. Called once the admin token is confirmed (on the io_context thread or the
// ledger worker thread).
using AdminExtension = std::function<bool(const HttpRequest&, const Responder&)>;

class Api {
 public:
  Api(LedgerWorker& worker, sync::Clock& clock);
  // Waits for a PIN check in progress; PIN spends still queued are answered 503.
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Every request except the health check is authenticated first (the bearer token, before the
  // path, method or body is looked at: 401/403), then routed (404 unknown path, 405 with an Allow
  // header for a known path with another method), then its body is checked (400).
  void handle_pos(const HttpRequest& req, const Responder& respond);
  void handle_admin(const HttpRequest& req, const Responder& respond);
  // Checks the bearer token of `req` for `role` ("pos" or "admin") (a remembered token on the
  // calling thread, any other on the worker thread against the database), then calls on_ok (on
  // the calling thread or the worker thread) or answers the auth error itself.
  void authorized(const HttpRequest& req, const Responder& respond, const char* role,
                  std::function<void()> on_ok);
  void set_admin_extension(AdminExtension ext) { admin_ext_ = std::move(ext); }
  // Adds fields to GET /admin/v1/node (peer state, etc.). Runs on the worker thread.
  void set_node_info(std::function<void(Json&)> fn) { node_info_ = std::move(fn); }
  // Rights broker, requester side: called (from the worker thread) when a spend or redeem lacks
  // local rights. It asks holders (HQ first, then those in `rights_elsewhere`) to move `amount`
  // here and calls `done(tried, granted)` from any thread exactly once, within a bounded time.
  // When granted, the request is retried once; otherwise the refusal is answered, saying whether
  // a request was tried (DebitFlow).
  using RightsBroker =
      std::function<void(const sync::MemberId& member, sync::Account account, std::uint64_t amount,
                         const sync::RightsView& rights_elsewhere,
                         std::function<void(bool tried, bool granted)> done)>;
  void set_rights_broker(RightsBroker fn) { broker_ = std::move(fn); }
  // Opens a second connection to the node database (it only reads) for GET /admin/v1/reports/NAME
  // (docs/reports.md): reports read in their own snapshot on their own thread, never on the
  // worker. Without it the route answers 404.
  using ReportReader = std::function<Result<std::unique_ptr<storage::Store>>()>;
  void set_report_reader(ReportReader fn) { report_reader_ = std::move(fn); }
  // Replaces the PIN verification (crypto::verify_pin) for tests; set before serving. It runs on
  // the PIN thread.
  using PinVerifier = std::function<bool(const std::string& pin_hash, const std::string& pin)>;
  void set_pin_verifier(PinVerifier fn) { pin_verifier_ = std::move(fn); }
  TokenCache& token_cache() { return tokens_; }

 private:
  // A spend or redeem as it goes through the API: its fields and its state machine.
  struct Debit {
    std::string ref;  // member id or card
    std::string request_id;
    std::uint64_t amount = 0;
    std::string receipt;
    std::optional<std::string> pin;
    DebitFlow flow{true, false};
  };
  // A PIN change as it goes through the API (change_pin()).
  struct PinChange {
    std::string ref;  // member id or card
    std::string request_id;
    std::string pin;                       // the new PIN
    std::optional<std::string> old_pin;    // given by the member
    std::string admin;                     // an admin terminal resets without the old PIN
    std::string new_hash;                  // once hashed on the PIN thread
    std::optional<Ledger::PinVerdict> verdict;  // of the old PIN, once checked
    int pin_checks = 0;
  };

  using OnAuth = std::function<void(const storage::Terminal&)>;
  // authorized() with the terminal the token belongs to.
  void authenticate(const HttpRequest& req, const Responder& respond, const char* role, OnAuth on_ok);
  // Queues `fn` on the worker (the request is authenticated already) and answers what it
  // returns once its batch is durable (503 not_durable for a success that did not commit).
  void submit(const Responder& respond, bool mutating, std::function<HttpResponse(Ledger&)> fn);
  // One mutating pass of a request that may go on elsewhere (the PIN thread, the rights broker):
  // `run` returns the answer, or nullopt to go on with `next` once the pass is durable.
  using Pass = std::function<std::optional<HttpResponse>(Ledger&)>;
  void submit_pass(const Responder& respond, Pass run, std::function<void()> next);
  // The 503 for a request the worker did not run: storage_failed once a group commit failed
  // (worker_.failure(), until restart), else overloaded (refused `at_submit`: queue full or
  // stopping) or unavailable (its batch could not begin).
  HttpResponse worker_refusal(bool at_submit) const;
  // The 503 for a request whose op was made but whose batch did not commit.
  static HttpResponse not_durable();
  // GET /v1/health and /admin/v1/health: 200 {"ok":true}, or 503 storage_failed once latched.
  HttpResponse health() const;
  // Authenticated POS and admin requests whose path and method are known.
  void route_pos(const HttpRequest& req, const Responder& respond, const std::vector<std::string>& parts,
                 const storage::Terminal& terminal);
  void route_admin(const Responder& respond, const std::vector<std::string>& parts, const HttpRequest& req);
  void find_members(const HttpRequest& req, const Responder& respond, bool ids_only);
  // GET /admin/v1/reports/NAME: the roster and rules from the worker, the rest on report_thread_.
  void report(const HttpRequest& req, const Responder& respond, const std::string& name);
  void enroll(const HttpRequest& req, const Responder& respond);
  void history(const HttpRequest& req, const Responder& respond, const std::string& ref);
  void update_profile(const Responder& respond, const std::string& ref, const Json& body);
  // POST /v1/members/{member}/{earn,redeem,topup,spend}.
  void member_action(const Responder& respond, const std::string& ref, const std::string& action,
                     const Json& body);
  void reverse(const HttpRequest& req, const Responder& respond, const std::string& op_ref);
  // Spend or redeem: drives the request's DebitFlow (outpost/node/debit_flow.h) over the worker,
  // the PIN thread and the rights broker, one step at a time, until it answers.
  void drive_debit(const std::shared_ptr<Debit>& d, const Responder& respond,
                   const DebitFlow::Step& step);
  // One pass of a debit on the worker: the PIN gate (a spend of a new request_id), then the
  // debit; the next step, or the answer, is decided there.
  void debit_on_worker(const std::shared_ptr<Debit>& d, const Responder& respond);
  // POST /v1/members/{member}/pin: the old PIN is needed once a PIN is set, unless the token is
  // an admin terminal's (recorded in the op's receipt).
  void set_pin(const HttpRequest& req, const Responder& respond, const storage::Terminal& terminal,
               const std::string& ref, const Json& body);
  void change_pin(const HttpRequest& req, const Responder& respond, PinChange c);

  LedgerWorker& worker_;
  sync::Clock& clock_;
  AdminExtension admin_ext_;
  std::function<void(Json&)> node_info_;
  RightsBroker broker_;
  TokenCache tokens_;
  PinVerifier pin_verifier_;
  // PIN hashing and verification (Argon2id: ~0.1-0.2 s of one core and 64 MiB each), one at a
  // time, off the ledger worker; bounded queue (limits::kPinChecksQueuedMax).
  ReportReader report_reader_;
  // Reports, one at a time (a second waits in the queue of one; a third is told to retry).
  std::unique_ptr<JobThread> report_thread_;
  std::unique_ptr<JobThread> pin_thread_;  // last: joined first on destruction
};

// JSON request bodies of both APIs. Parses `body` as one JSON object in which no key is given
// twice; kInvalidArgument (400) otherwise.
Result<Json> parse_json_object(const std::string& body);
// kInvalidArgument naming the first key of `body` that is not in `allowed`.
Status check_fields(const Json& body, std::initializer_list<const char*> allowed);
// The string field `key` ("" when absent and not `required`); kInvalidArgument when missing and
// required or when of another JSON type.
Result<std::string> string_field(const Json& body, const char* key, bool required);

// Maps a Status to an HTTP error response (400 invalid, 404 not found, 401 permission, ...).
HttpResponse status_response(const Status& st);
// Maps a ledger Outcome to 200 or, when refused, 409 (403 for a wrong PIN, 423 for a PIN
// lockout), with its body from outpost/node/schema.h.
HttpResponse outcome_response(const Outcome& o);

}  // namespace outpost::node
