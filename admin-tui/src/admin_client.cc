#include "outpost/tui/admin_client.h"

#include <utility>

namespace outpost::tui {

AdminClient::AdminClient(Endpoint endpoint, std::string token, int connect_timeout_ms, int response_timeout_ms)
    : endpoint_(std::move(endpoint)),
      token_(std::move(token)),
      connect_timeout_ms_(connect_timeout_ms),
      response_timeout_ms_(response_timeout_ms) {}

std::string describe(FetchError error) {
  switch (error) {
    case FetchError::kNone: return "ok";
    case FetchError::kUnreachable: return "node unreachable";
    case FetchError::kUnauthorized: return "admin token refused";
    case FetchError::kForbidden: return "token is not an admin token";
    case FetchError::kBadResponse: return "unexpected answer";
    case FetchError::kNotFound: return "not found";
  }
  return "error";
}

AdminClient::Got AdminClient::get(const std::string& target, bool allow_404) const {
  Got g;
  net::HttpRequest req;
  req.target = target;
  req.bearer_token = token_;
  net::ClientOptions options;
  options.connect_timeout_ms = connect_timeout_ms_;
  options.response_timeout_ms = response_timeout_ms_;
  options.user_agent = "outpost-top";
  options.cancel = cancel_;
  net::HttpResponse res = net::http_request(endpoint_, req, options);
  g.status = res.status;
  if (res.status == 0) {
    g.error = res.malformed ? FetchError::kBadResponse : FetchError::kUnreachable;
    g.message = res.malformed ? res.error + " (is this the admin port of an outpostd?)" : res.error;
    return g;
  }
  Json body = Json::parse(res.body, nullptr, false);
  bool json = !body.is_discarded();
  std::string server_says;
  if (json && body.is_object() && body.contains("message") && body["message"].is_string()) {
    server_says = ": " + body["message"].get<std::string>();
  }
  const std::string where = endpoint_.to_string() + " GET " + target;
  if (json && body.is_object()) g.body = body;  // kept for callers that tolerate an error answer
  if (res.status == 401) {
    g.error = FetchError::kUnauthorized;
    g.message = "the node at " + endpoint_.to_string() + " refused the admin token (401" + server_says +
                "); give an admin terminal's token with --token, --token-file or OUTPOST_ADMIN_TOKEN "
                "(made by: outpost terminal add NAME --role admin)";
    return g;
  }
  if (res.status == 403) {
    g.error = FetchError::kForbidden;
    g.message = "the node at " + endpoint_.to_string() + " refused the token (403" + server_says +
                "); it belongs to a POS terminal, outpost-top needs an admin terminal's token";
    return g;
  }
  if (res.status == 404 && allow_404) {
    g.body = json ? std::move(body) : Json();
    return g;
  }
  if (res.status == 404 && json && body.is_object() && body.value("error", "") == "not_found") {
    g.error = FetchError::kNotFound;
    g.message = server_says.empty() ? "not found" : server_says.substr(2);
    return g;
  }
  if (res.status == 400 && json && body.is_object() && body.contains("error")) {
    g.error = FetchError::kNotFound;
    g.message = server_says.empty() ? "refused as invalid" : server_says.substr(2);
    return g;
  }
  if (res.status < 200 || res.status > 299) {
    g.error = FetchError::kBadResponse;
    g.message = where + " answered HTTP " + std::to_string(res.status) + server_says +
                (res.status == 404 ? " (is this the admin port of an outpostd? see [admin] listen)" : "");
    return g;
  }
  if (!json) {
    g.error = FetchError::kBadResponse;
    g.message = where + " answered something that is not JSON (is this the admin port of an outpostd?)";
    return g;
  }
  g.body = std::move(body);
  return g;
}

FetchResult AdminClient::fetch_snapshot(bool with_roster) const {
  FetchResult r;
  auto take = [&](const Got& g) {
    r.error = g.error;
    r.message = g.message;
  };
  Got node = get("/admin/v1/node", false);
  if (node.error != FetchError::kNone) {
    take(node);
    return r;
  }
  r.snapshot.node = std::move(node.body);
  struct Part {
    const char* target;
    Json* into;
  };
  std::vector<Part> parts = {Part{"/admin/v1/peers", &r.snapshot.peers}, Part{"/admin/v1/alerts", &r.snapshot.alerts},
                             Part{"/admin/v1/checkpoints", &r.snapshot.checkpoints}};
  if (with_roster) parts.push_back(Part{"/admin/v1/roster", &r.snapshot.roster});
  for (Part p : parts) {
    Got g = get(p.target, true);
    // An optional part the node could not produce (its JSON error answer, e.g. 503 while busy)
    // becomes a note on the screen, not a failed refresh; a refused token still fails it.
    bool tolerated = g.error == FetchError::kBadResponse && g.status >= 400 && g.body.is_object() &&
                     g.body.contains("error");
    if (g.error != FetchError::kNone && !tolerated) {
      take(g);
      return r;
    }
    if (tolerated) {
      *p.into = std::move(g.body);
    } else if (g.status != 404) {
      *p.into = std::move(g.body);
    } else if (g.body.is_object() && g.body.value("error", "") == "not_found") {
      *p.into = std::move(g.body);  // the route exists; the thing does not (e.g. no roster yet)
    } else {
      *p.into = Json();  // no such route: an older node
    }
  }
  return r;
}

MemberResult AdminClient::find_member(const std::string& query) const {
  MemberResult r;
  MemberQueryKind kind = classify_member_query(query);
  if (kind == MemberQueryKind::kInvalid) {
    r.error = FetchError::kNotFound;
    r.message = "'" + query + "' is not a member id (32 hex), a card number (8-19 digits) or a phone (+ and 6-15 digits)";
    return r;
  }
  std::string id;
  if (kind == MemberQueryKind::kId) {
    id = query;
  } else {
    std::vector<std::string> tries;
    if (kind == MemberQueryKind::kCard) tries.push_back("card");
    if (kind == MemberQueryKind::kPhone || query[0] != '+') tries.push_back("phone");
    for (const auto& param : tries) {
      if (param == "phone" && (query.size() - (query[0] == '+' ? 1 : 0)) > 15) continue;
      Got g = get("/admin/v1/members?" + param + "=" + url_encode(query), false);
      if (g.error != FetchError::kNone && g.error != FetchError::kNotFound) {
        r.error = g.error;
        r.message = g.message;
        return r;
      }
      if (g.error == FetchError::kNotFound) continue;
      const Json* ids = g.body.is_object() && g.body.contains("members") ? &g.body["members"] : nullptr;
      if (!ids || !ids->is_array()) {
        r.error = FetchError::kBadResponse;
        r.message = "GET /admin/v1/members did not answer {\"members\": [...]}";
        return r;
      }
      for (const auto& v : *ids) {
        if (v.is_string() && r.matches.size() < 100) r.matches.push_back(v.get<std::string>());
      }
      if (!r.matches.empty()) break;
    }
    if (r.matches.empty()) {
      r.error = FetchError::kNotFound;
      r.message = "no member with card or phone " + query;
      return r;
    }
    id = r.matches.front();
  }
  Got g = get("/admin/v1/members/" + url_encode(id), false);
  if (g.error != FetchError::kNone) {
    r.error = g.error;
    r.message = g.message;
    return r;
  }
  r.member = std::move(g.body);
  return r;
}

}  // namespace outpost::tui
