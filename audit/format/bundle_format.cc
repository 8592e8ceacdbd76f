#include "outpost/audit/bundle_format.h"

#include <map>

#include "outpost/sync/hlc.h"

namespace outpost::audit::bundle {
namespace {

using Json = nlohmann::ordered_json;
using sync::EscrowCounter;
using sync::Field;
using sync::GCounter;
using sync::id_hex;
using sync::MemberId;
using sync::MemberState;
using sync::month_string;

Json account_json(const EscrowCounter& c) {
  Json rights = Json::object();
  for (const auto& [node, r] : c.rights_by_node()) rights[id_hex(node)] = r;
  return Json{{"value", c.value()}, {"rights", rights}};
}

Json by_month(const GCounter& g) {
  std::map<std::uint32_t, std::uint64_t> sums;
  for (const auto& [key, v] : g.entries()) sums[key.second] += v;
  Json j = Json::object();
  for (const auto& [month, v] : sums) {
    if (v != 0) j[month_string(month)] = v;
  }
  return j;
}

}  // namespace

Json balance_json(const MemberId& id, const MemberState& m) {
  return Json{{"member", id_hex(id)},
              {"card", m.field(Field::kCard)},
              {"points", account_json(m.points)},
              {"wallet", account_json(m.wallet)},
              {"spend_by_month", by_month(m.spend)},
              {"spend_reversed_by_month", by_month(m.spend_reversed)},
              {"visits_by_month", by_month(m.visits)}};
}

}  // namespace outpost::audit::bundle
