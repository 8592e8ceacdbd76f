// The JSON bodies of the POS and admin APIs (docs/api.md, docs/admin-api.md), written in one
// place: the HTTP API and the `outpost` CLI produce them only through these functions, and the
// ledger stores a request's first answer through done_json() (its stored form, replayed for a
// repeated request_id). Field names and their order are the wire format: change them here and
// in the docs together.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/node/outcome.h"
#include "outpost/node/views.h"
#include "outpost/sync/rules.h"

namespace outpost::node::schema {

using Json = nlohmann::ordered_json;

// {"error": CODE, "message": TEXT, ...the reason's details}.
Json refusal_json(const Refusal& r);
// {"op", "kind", "member", "amount"?, "purchase_minor"?, "points"?, "wallet"?, "hash",
//  "recovered_from_peer"?}.
Json done_json(const Done& d);
// The body of an answer: done_json (with "replayed": true for a replay) or refusal_json.
Json outcome_json(const Outcome& o);
Json account_json(const AccountView& a);

// The read-only bodies: a member (GET /v1/members/{member}), one op as history and the audit
// export show it, a history's "ops" array, GET /v1/status, the seq fence, the program rules.
Json member_json(const MemberView& m);
Json op_json(const sync::SignedOp& op);
Json history_json(const std::vector<HistoryEntry>& entries);
Json status_json(const NodeStatus& s);
Json fence_json(const FenceState& f);
Json rules_json(const sync::ProgramRules& rules, const std::string& source);

// A query's answer as its body: `to_json` of the value, or the error.
template <typename T, typename F>
Result<Json> json_of(const Result<T>& r, F to_json) {
  if (!r.is_ok()) return r.status();
  return to_json(*r);
}

// The reverse, for stored answers and for clients; kCorruption naming the field for a body
// that is not of this schema.
Result<Done> done_from_json(const Json& j);
Result<Refusal> refusal_from_json(const Json& j);
Result<Outcome> outcome_from_json(const Json& j, bool refused);

}  // namespace outpost::node::schema
