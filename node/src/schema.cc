// The API bodies (outpost/node/schema.h): outcomes and refusals to JSON and back.
#include "outpost/node/schema.h"

#include <array>
#include <utility>

namespace outpost::node {

namespace {

constexpr std::array<std::pair<RefusalReason, const char*>, 9> kReasons = {{
    {RefusalReason::kCardInUse, "card_in_use"},
    {RefusalReason::kNotOrigin, "not_origin"},
    {RefusalReason::kAlreadyReversed, "already_reversed"},
    {RefusalReason::kInsufficientRights, "insufficient_rights"},
    {RefusalReason::kMemberBlocked, "member_blocked"},
    {RefusalReason::kMemberClosed, "member_closed"},
    {RefusalReason::kWalletNotEmpty, "wallet_not_empty"},
    {RefusalReason::kPinWrong, "pin_wrong"},
    {RefusalReason::kPinLocked, "pin_locked"},
}};

}  // namespace

const char* refusal_code(RefusalReason reason) {
  for (const auto& [r, code] : kReasons) {
    if (r == reason) return code;
  }
  return "refused";
}

std::optional<RefusalReason> refusal_reason(std::string_view code) {
  for (const auto& [r, name] : kReasons) {
    if (code == name) return r;
  }
  return std::nullopt;
}

namespace schema {

namespace {

Json rights_view_json(const sync::RightsView& view) {
  Json j = Json::object();
  for (const auto& [node, held] : view) j[sync::id_hex(node)] = held;
  return j;
}

Status bad(const char* field) {
  return Status::corruption(std::string("answer field '") + field + "' is missing or malformed");
}

Result<std::int64_t> get_int(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer()) return bad(key);
  return j[key].get<std::int64_t>();
}

Result<std::uint64_t> get_uint(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer() ||
      (!j[key].is_number_unsigned() && j[key].get<std::int64_t>() < 0)) {
    return bad(key);
  }
  return j[key].get<std::uint64_t>();
}

Result<std::string> get_string(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return bad(key);
  return j[key].get<std::string>();
}

Result<sync::NodeId> get_id(const Json& j, const char* key) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, get_string(j, key));
  auto id = sync::parse_id(text);
  if (!id.is_ok()) return bad(key);
  return *id;
}

Result<sync::RightsView> get_rights_view(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_object()) return bad(key);
  sync::RightsView view;
  for (const auto& [node, held] : j[key].items()) {
    auto id = sync::parse_id(node);
    if (!id.is_ok() || !held.is_number_integer()) return bad(key);
    view[*id] = held.get<std::int64_t>();
  }
  return view;
}

Result<AccountView> get_account(const Json& j, const char* key) {
  if (!j[key].is_object()) return bad(key);
  const Json& a = j[key];
  AccountView v;
  OUTPOST_ASSIGN_OR_RETURN(v.balance, get_int(a, "balance"));
  OUTPOST_ASSIGN_OR_RETURN(v.rights_here, get_int(a, "rights_here"));
  OUTPOST_ASSIGN_OR_RETURN(v.rights_by_node, get_rights_view(a, "rights_by_node"));
  return v;
}

}  // namespace

Json account_json(const AccountView& a) {
  Json j;
  j["balance"] = a.balance;
  j["rights_here"] = a.rights_here;
  j["rights_by_node"] = rights_view_json(a.rights_by_node);
  return j;
}

Json refusal_json(const Refusal& r) {
  Json j;
  j["error"] = refusal_code(r.reason);
  j["message"] = r.message;
  if (r.rights) {
    const RightsShortfall& s = *r.rights;
    j["member"] = sync::id_hex(s.member);
    j["account"] = sync::account_name(s.account);
    j["requested"] = s.requested;
    j["balance"] = s.balance;
    j["rights_here"] = s.rights_here;
    j["shortfall"] = s.shortfall;
    j["rights_elsewhere"] = rights_view_json(s.elsewhere);
    j["rights_request_tried"] = s.request_tried;
  }
  if (r.balance) j["balance"] = *r.balance;
  if (r.locked_until_ms) j["locked_until_ms"] = *r.locked_until_ms;
  return j;
}

Json done_json(const Done& d) {
  Json j;
  j["op"] = sync::op_ref_string(d.origin, d.seq);
  j["kind"] = sync::kind_name(d.kind);
  j["member"] = sync::id_hex(d.member);
  if (d.amount) j["amount"] = *d.amount;
  if (d.purchase_minor) j["purchase_minor"] = *d.purchase_minor;
  if (d.points) j["points"] = account_json(*d.points);
  if (d.wallet) j["wallet"] = account_json(*d.wallet);
  j["hash"] = crypto::to_hex(d.hash);
  if (d.recovered_from_peer) j["recovered_from_peer"] = true;
  return j;
}

Json outcome_json(const Outcome& o) {
  if (o.refused) return refusal_json(o.refusal);
  Json j = done_json(o.done);
  if (o.replayed) j["replayed"] = true;
  return j;
}

Json member_json(const MemberView& m) {
  Json j;
  j["id"] = sync::id_hex(m.id);
  j["card"] = m.card;
  j["name"] = m.name;
  j["phone"] = m.phone;
  j["birthday"] = m.birthday;
  j["home_store"] = m.home_store;
  j["status"] = m.status;
  j["pin_set"] = m.pin_set;
  j["pin_failures"] = m.pin_failures;
  j["pin_locked_until_ms"] = m.pin_locked_until_ms;
  j["tier"] = m.tier;
  j["rolling_spend_minor"] = m.rolling_spend_minor;
  j["visits"] = m.visits;
  j["points"] = account_json(m.points);
  j["wallet"] = account_json(m.wallet);
  return j;
}

Json op_json(const sync::SignedOp& sop) {
  using sync::OpKind;
  const sync::Op& op = sop.op;
  Json j;
  j["op"] = sync::op_ref_string(op.origin, op.seq);
  j["origin"] = sync::id_hex(op.origin);
  j["seq"] = op.seq;
  j["kind"] = sync::kind_name(op.kind);
  j["hlc"] = op.hlc.to_string();
  j["member"] = sync::id_hex(op.member);
  if (op.account != sync::Account::kNone) {
    j["account"] = sync::account_name(op.account);
    j["amount"] = op.amount;
  }
  if (op.kind == OpKind::kEarn || (op.kind == OpKind::kReverse && op.ref_kind == OpKind::kEarn)) {
    j["purchase_minor"] = op.spend_minor;
  }
  if (op.kind == OpKind::kMove) j["target"] = sync::id_hex(op.target);
  if (op.kind == OpKind::kReverse) {
    j["reverses"] = sync::op_ref_string(op.ref_origin, op.ref_seq);
    j["reversed_kind"] = sync::kind_name(op.ref_kind);
  }
  if (!op.fields.empty()) {
    Json f = Json::object();
    for (const auto& fv : op.fields)  // a PIN hash is never shown
      f[sync::field_name(fv.field)] = fv.field == sync::Field::kPinHash ? "(set)" : fv.value;
    j["fields"] = f;
  }
  if (!op.request_id.empty()) j["request_id"] = op.request_id;
  if (!op.receipt.empty()) j["receipt"] = op.receipt;
  j["hash"] = crypto::to_hex(sop.hash);
  return j;
}

Json history_json(const std::vector<HistoryEntry>& entries) {
  Json arr = Json::array();
  for (const HistoryEntry& e : entries) {
    Json j = op_json(e.op);
    if (e.reversed_by) j["reversed_by"] = sync::op_ref_string(e.op.op.origin, *e.reversed_by);
    arr.push_back(std::move(j));
  }
  return arr;
}

Json fence_json(const FenceState& f) {
  return Json{{"fenced", f.fenced},
              {"awaiting_peer", f.awaiting_peer},
              {"own_seq", f.own_seq},
              {"own_seq_floor", f.own_seq_floor},
              {"reason", f.reason}};
}

Json status_json(const NodeStatus& s) {
  Json j;
  j["node_id"] = sync::id_hex(s.node_id);
  j["name"] = s.name;
  j["role"] = s.role;
  j["signing_public_key"] = crypto::to_hex(s.signing_public_key);
  Json v = Json::object();
  for (const auto& [origin, seq] : s.version_vector) v[sync::id_hex(origin)] = seq;
  j["version_vector"] = v;
  j["ops"] = s.ops;
  j["schema_version"] = s.schema_version;
  j["rules_version"] = s.rules_version;
  j["rules_source"] = s.rules_source;
  j["seq_fence"] = fence_json(s.seq_fence);
  return j;
}

Json rules_json(const sync::ProgramRules& rules, const std::string& source) {
  Json tiers = Json::array();
  for (const auto& t : rules.tiers) {
    tiers.push_back({{"name", t.name},
                     {"threshold_minor", t.threshold_minor},
                     {"points_per_unit", t.points_per_unit}});
  }
  return Json{{"version", rules.version},
              {"source", source},
              {"unit_minor", rules.unit_minor},
              {"window_months", rules.window_months},
              {"tiers", tiers}};
}

Result<Done> done_from_json(const Json& j) {
  if (!j.is_object()) return Status::corruption("answer is not a JSON object");
  Done d;
  OUTPOST_ASSIGN_OR_RETURN(std::string ref, get_string(j, "op"));
  if (!sync::parse_op_ref(ref, d.origin, d.seq)) return bad("op");
  OUTPOST_ASSIGN_OR_RETURN(std::string kind, get_string(j, "kind"));
  if (!sync::parse_kind(kind, d.kind)) return bad("kind");
  OUTPOST_ASSIGN_OR_RETURN(d.member, get_id(j, "member"));
  if (j.contains("amount")) {
    OUTPOST_ASSIGN_OR_RETURN(d.amount, get_uint(j, "amount"));
  }
  if (j.contains("purchase_minor")) {
    OUTPOST_ASSIGN_OR_RETURN(d.purchase_minor, get_uint(j, "purchase_minor"));
  }
  if (j.contains("points")) {
    OUTPOST_ASSIGN_OR_RETURN(d.points, get_account(j, "points"));
  }
  if (j.contains("wallet")) {
    OUTPOST_ASSIGN_OR_RETURN(d.wallet, get_account(j, "wallet"));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string hash, get_string(j, "hash"));
  auto bytes = crypto::from_hex(hash);
  if (!bytes.is_ok() || bytes->size() != d.hash.size()) return bad("hash");
  std::copy(bytes->begin(), bytes->end(), d.hash.begin());
  if (j.contains("recovered_from_peer")) {
    if (!j["recovered_from_peer"].is_boolean()) return bad("recovered_from_peer");
    d.recovered_from_peer = j["recovered_from_peer"].get<bool>();
  }
  return d;
}

Result<Refusal> refusal_from_json(const Json& j) {
  if (!j.is_object()) return Status::corruption("answer is not a JSON object");
  Refusal r;
  OUTPOST_ASSIGN_OR_RETURN(std::string code, get_string(j, "error"));
  auto reason = refusal_reason(code);
  if (!reason) return bad("error");
  r.reason = *reason;
  OUTPOST_ASSIGN_OR_RETURN(r.message, get_string(j, "message"));
  if (j.contains("shortfall")) {
    RightsShortfall s;
    OUTPOST_ASSIGN_OR_RETURN(s.member, get_id(j, "member"));
    OUTPOST_ASSIGN_OR_RETURN(std::string account, get_string(j, "account"));
    if (account != "points" && account != "wallet") return bad("account");
    s.account = account == "points" ? sync::Account::kPoints : sync::Account::kWallet;
    OUTPOST_ASSIGN_OR_RETURN(s.requested, get_uint(j, "requested"));
    OUTPOST_ASSIGN_OR_RETURN(s.balance, get_int(j, "balance"));
    OUTPOST_ASSIGN_OR_RETURN(s.rights_here, get_uint(j, "rights_here"));
    OUTPOST_ASSIGN_OR_RETURN(s.shortfall, get_uint(j, "shortfall"));
    OUTPOST_ASSIGN_OR_RETURN(s.elsewhere, get_rights_view(j, "rights_elsewhere"));
    if (!j.contains("rights_request_tried") || !j["rights_request_tried"].is_boolean())
      return bad("rights_request_tried");
    s.request_tried = j["rights_request_tried"].get<bool>();
    r.rights = std::move(s);
  } else if (j.contains("balance")) {
    OUTPOST_ASSIGN_OR_RETURN(r.balance, get_int(j, "balance"));
  }
  if (j.contains("locked_until_ms")) {
    OUTPOST_ASSIGN_OR_RETURN(r.locked_until_ms, get_uint(j, "locked_until_ms"));
  }
  return r;
}

Result<Outcome> outcome_from_json(const Json& j, bool refused) {
  if (refused) {
    OUTPOST_ASSIGN_OR_RETURN(Refusal r, refusal_from_json(j));
    return Outcome::refuse(std::move(r));
  }
  OUTPOST_ASSIGN_OR_RETURN(Done d, done_from_json(j));
  Outcome o = Outcome::made(std::move(d));
  o.replayed = j.value("replayed", false);
  return o;
}

}  // namespace schema
}  // namespace outpost::node
