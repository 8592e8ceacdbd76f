// Helpers shared by the files that implement Api (outpost/node/api.h); private to node/src/api/.
// Api is one class split over three files (and the DebitFlow it drives):
//   api.cc        what every request goes through: bearer tokens (TokenCache), the worker and
//                 its refusals, request bodies, and the mapping of Status and Outcome to HTTP
//   api_pos.cc    the POS routes (docs/api.md), PIN checks on the PIN thread, and the driver
//                 of a spend's or redeem's DebitFlow (debit_flow.cc: its state machine)
//   api_admin.cc  the admin routes (docs/admin-api.md)
// Thread-safe as far as Api is.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "outpost/node/api.h"

namespace outpost::node::api_internal {

// Splits "/v1/members/X/topup" into its non-empty parts (the path is bounded by the header limit).
std::vector<std::string> split_path(const std::string& path);
// True when `parts` is the health route of the admin API (`admin`) or of the POS API.
bool is_health(const std::vector<std::string>& parts, bool admin);
// 404 for an unknown path, 405 with an Allow header for a known one with another method; nullopt
// when `req.method` is allowed.
std::optional<HttpResponse> no_route(const HttpRequest& req,
                                     const std::vector<std::string>& allowed);
// 200 with `j` as its body (strings that are not UTF-8 are replaced, never thrown on).
HttpResponse ok_json(const Json& j);

}  // namespace outpost::node::api_internal
