// The JSON bodies of the POS and admin APIs (docs/api.md, docs/admin-api.md), written in one
// place: the HTTP API and the `outpost` CLI produce them only through these functions, and the
// ledger stores a request's first answer through done_json() (its stored form, replayed for a
// repeated request_id). Field names and their order are the wire format: change them here and
// in the docs together.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "outpost/base/status.h"
#include "outpost/node/outcome.h"

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

// The reverse, for stored answers and for clients; kCorruption naming the field for a body
// that is not of this schema.
Result<Done> done_from_json(const Json& j);
Result<Refusal> refusal_from_json(const Json& j);
Result<Outcome> outcome_from_json(const Json& j, bool refused);

}  // namespace outpost::node::schema
