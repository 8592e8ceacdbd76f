// The admin-API client of outpost-top: one refresh = GET node, peers, alerts and roster of one
// node (docs/admin-api.md), turned into a Snapshot or one clear error an operator can act on.
// Member look-ups by id, card or phone. Blocking and bounded (outpost/net/http_client.h); no
// retries here: the screen loop retries on its interval. Not thread-safe; one client per thread.
#pragma once

#include <csignal>
#include <string>
#include <vector>

#include "outpost/net/http_client.h"
#include "outpost/tui/view_model.h"

namespace outpost::tui {

using net::Endpoint;
using net::kConnectTimeoutMsDefault;
using net::kResponseTimeoutMsDefault;
using net::parse_endpoint;
using net::url_encode;

// Why a request gave no usable answer. The exit code of outpost-top follows it (main.cc).
enum class FetchError {
  kNone,
  kUnreachable,   // could not connect, timed out, connection dropped
  kUnauthorized,  // 401: no or unknown token
  kForbidden,     // 403: the token is not an admin terminal's
  kBadResponse,   // not JSON, unexpected status, or a schema outpost-top does not know
  kNotFound,      // 404 for a member look-up
};

struct FetchResult {
  FetchError error = FetchError::kNone;
  std::string message;  // operator words, set when error != kNone
  Snapshot snapshot;
  bool ok() const { return error == FetchError::kNone; }
};

struct MemberResult {
  FetchError error = FetchError::kNone;
  std::string message;
  Json member;                       // GET /admin/v1/members/{id}
  std::vector<std::string> matches;  // all ids found for a card or phone search
};

class AdminClient {
 public:
  AdminClient(Endpoint endpoint, std::string token, int connect_timeout_ms = kConnectTimeoutMsDefault,
              int response_timeout_ms = kResponseTimeoutMsDefault);

  // Fetches node, peers, alerts and (when `with_roster`) roster. /node is required; a 404 from
  // the other three marks that part as unavailable (older node: null) rather than failing the
  // refresh. A node without a roster (not enrolled) gives roster = its {"error": ...} answer.
  FetchResult fetch_snapshot(bool with_roster = true) const;

  // Looks a member up by 32-hex id, card number or phone (classify_member_query). A card that
  // matches no member is tried as a phone. kNotFound with a message when nothing matches.
  MemberResult find_member(const std::string& query) const;

  const Endpoint& endpoint() const { return endpoint_; }
  // Makes every later request give up as soon as *cancel is non-zero (a signal arrived).
  void set_cancel(const volatile std::sig_atomic_t* cancel) { cancel_ = cancel; }

 private:
  struct Got {
    FetchError error = FetchError::kNone;
    std::string message;
    int status = 0;
    Json body;
  };
  // GETs `target`; a 2xx JSON body is returned, other answers become errors. 404 is returned as
  // status 404 without error when `allow_404`.
  Got get(const std::string& target, bool allow_404) const;

  Endpoint endpoint_;
  std::string token_;
  int connect_timeout_ms_;
  int response_timeout_ms_;
  const volatile std::sig_atomic_t* cancel_ = nullptr;
};

// One line for an error, e.g. for the screen's status line and the exit message.
std::string describe(FetchError error);

}  // namespace outpost::tui
