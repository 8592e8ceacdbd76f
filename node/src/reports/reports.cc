// The member reports as pure functions of a ReportInput (docs/reports.md has every rule).
#include "outpost/node/reports.h"

#include <algorithm>
#include <limits>

#include "outpost/sync/hlc.h"
#include "outpost/sync/roster.h"

namespace outpost::node::reports {

namespace {

constexpr std::uint32_t kMonthsMax = 12 * 100;  // a report looks at most a century back

std::uint64_t sub_floor(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

std::uint32_t share_bp(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return 0;
  return static_cast<std::uint32_t>(static_cast<unsigned __int128>(part) * 10000 / whole);
}

bool in_store(const sync::NodeId& node, const Scope& scope) {
  return !scope.store || *scope.store == node;
}

MemberRef ref_of(const MemberFacts& m, const Activity& a) {
  return MemberRef{m.id, m.card, m.name, a.visits, a.spend_minor};
}

// Highest spend first, then most visits, then ascending id: one order for every list.
bool before(const MemberRef& a, const MemberRef& b) {
  if (a.spend_minor != b.spend_minor) return a.spend_minor > b.spend_minor;
  if (a.visits != b.visits) return a.visits > b.visits;
  return a.id < b.id;
}

// The first `limit` of `list` in that order: a partial sort, so a long list costs O(n log limit).
void keep_top(std::vector<MemberRef>& list, std::size_t limit) {
  if (list.size() > limit) {
    std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(limit), list.end(),
                      before);
    list.resize(limit);
  } else {
    std::sort(list.begin(), list.end(), before);
  }
}

// The lower median of `v` (which it reorders); 0 for none. nth_element: linear on average.
std::uint64_t lower_median(std::vector<std::uint64_t>& v) {
  if (v.empty()) return 0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>((v.size() - 1) / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Scores 1..5 for `keys` (larger is better) by the fifth the member's mid-rank falls in:
// 1 + floor(5 * (2w + e) / 2n), w = members strictly worse, e = members equal (itself included).
// A lone member, or all equal, scores 3; ties score alike.
std::vector<std::uint8_t> fifths(const std::vector<std::uint64_t>& keys) {
  const std::size_t n = keys.size();
  std::vector<std::uint64_t> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto [lo, hi] = std::equal_range(sorted.begin(), sorted.end(), keys[i]);
    const auto worse = static_cast<std::size_t>(lo - sorted.begin());
    const auto equal = static_cast<std::size_t>(hi - lo);
    out[i] = static_cast<std::uint8_t>(1 + (5 * (2 * worse + equal)) / (2 * n));
  }
  return out;
}

}  // namespace

Result<std::uint32_t> parse_month(const std::string& text) {
  auto bad = [&] {
    return Status::invalid("a month is YYYY-MM (for example 2026-11), got '" + text + "'");
  };
  if (text.size() != 7 || text[4] != '-') return bad();
  for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u}) {
    if (text[i] < '0' || text[i] > '9') return bad();
  }
  const std::uint32_t year = static_cast<std::uint32_t>(std::stoul(text.substr(0, 4)));
  const std::uint32_t month = static_cast<std::uint32_t>(std::stoul(text.substr(5, 2)));
  if (year < 1970 || month < 1 || month > 12) return bad();
  return year * 12 + month - 1;
}

Result<Scope> make_scope(const std::string& from, const std::string& to, std::uint32_t now_month) {
  Scope s;
  s.to_month = now_month;
  if (!to.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(s.to_month, parse_month(to));
  }
  s.from_month = s.to_month >= 11 ? s.to_month - 11 : 0;
  if (!from.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(s.from_month, parse_month(from));
  }
  if (s.from_month > s.to_month) {
    return Status::invalid("the period starts (" + sync::month_string(s.from_month) +
                           ") after it ends (" + sync::month_string(s.to_month) + ")");
  }
  if (s.to_month - s.from_month >= kMonthsMax)
    return Status::invalid("a period is at most 100 years");
  return s;
}

Activity activity_of(const sync::MemberState& m, const Scope& scope) {
  Activity a;
  for (const auto& [key, count] : m.visits.entries()) {
    const auto& [node, month] = key;
    if (!in_store(node, scope) || count == 0 || month > scope.to_month) continue;
    if (month >= scope.from_month) a.visits += count;
    if (!a.last_visit_month || month > *a.last_visit_month) a.last_visit_month = month;
  }
  std::uint64_t spend = 0, reversed = 0;
  for (const auto& [key, amount] : m.spend.entries()) {
    if (in_store(key.first, scope) && key.second >= scope.from_month &&
        key.second <= scope.to_month)
      spend += amount;
  }
  for (const auto& [key, amount] : m.spend_reversed.entries()) {
    if (in_store(key.first, scope) && key.second >= scope.from_month &&
        key.second <= scope.to_month) {
      reversed += amount;
    }
  }
  a.spend_minor = sub_floor(spend, reversed);
  return a;
}

const char* quadrant_name(Quadrant q) {
  switch (q) {
    case Quadrant::kTrueFriends:
      return "true_friends";
    case Quadrant::kButterflies:
      return "butterflies";
    case Quadrant::kBarnacles:
      return "barnacles";
    case Quadrant::kStrangers:
      return "strangers";
  }
  return "?";
}

const char* quadrant_label(Quadrant q) {
  switch (q) {
    case Quadrant::kTrueFriends:
      return "知己 true friends (frequent, high spend)";
    case Quadrant::kButterflies:
      return "蝴蝶 butterflies (infrequent, high spend)";
    case Quadrant::kBarnacles:
      return "藤壺 barnacles (frequent, low spend)";
    case Quadrant::kStrangers:
      return "過客 strangers (infrequent, low spend)";
  }
  return "?";
}

QuadrantReport quadrants(const ReportInput& in, const Scope& scope,
                         const std::optional<Thresholds>& given, std::size_t list_limit) {
  QuadrantReport r;
  r.scope = scope;
  std::vector<std::pair<const MemberFacts*, Activity>> active;
  for (const MemberFacts& m : in.members) {
    Activity a = activity_of(m.state, scope);
    if (a.visits == 0) {
      r.inactive_members++;
      continue;
    }
    active.emplace_back(&m, a);
  }
  if (given) {
    r.thresholds = *given;
  } else {
    // Above the median is high: the threshold is the lower median plus one.
    std::vector<std::uint64_t> visits, spend;
    for (const auto& [m, a] : active) {
      visits.push_back(a.visits);
      spend.push_back(a.spend_minor);
    }
    r.thresholds = Thresholds{lower_median(visits) + 1, lower_median(spend) + 1};
    r.thresholds_are_medians = true;
  }
  for (std::size_t q = 0; q < r.rows.size(); ++q) r.rows[q].quadrant = static_cast<Quadrant>(q);
  for (const auto& [m, a] : active) {
    const bool frequent = a.visits >= r.thresholds.visits;
    const bool high = a.spend_minor >= r.thresholds.spend_minor;
    const Quadrant q = frequent ? (high ? Quadrant::kTrueFriends : Quadrant::kBarnacles)
                                : (high ? Quadrant::kButterflies : Quadrant::kStrangers);
    QuadrantRow& row = r.rows[static_cast<std::size_t>(q)];
    row.members++;
    row.visits += a.visits;
    row.spend_minor += a.spend_minor;
    row.list.push_back(ref_of(*m, a));
    r.spend_minor += a.spend_minor;
  }
  r.active_members = active.size();
  for (QuadrantRow& row : r.rows) {
    row.sales_share_bp = share_bp(row.spend_minor, r.spend_minor);
    keep_top(row.list, list_limit);
  }
  return r;
}

RfmReport rfm(const ReportInput& in, const Scope& scope, std::size_t list_limit) {
  RfmReport r;
  r.scope = scope;
  std::vector<RfmMember> scored;
  std::vector<std::uint64_t> rk, fk, mk;
  for (const MemberFacts& m : in.members) {
    const Activity a = activity_of(m.state, scope);
    if (a.visits == 0) continue;
    RfmMember s;
    s.member = ref_of(m, a);
    s.months_since_visit = scope.to_month - *a.last_visit_month;
    rk.push_back(std::numeric_limits<std::uint32_t>::max() -
                 s.months_since_visit);  // recent is better
    fk.push_back(a.visits);
    mk.push_back(a.spend_minor);
    scored.push_back(std::move(s));
  }
  const auto rs = fifths(rk), fs = fifths(fk), ms = fifths(mk);
  for (std::size_t i = 0; i < scored.size(); ++i) {
    scored[i].r = rs[i];
    scored[i].f = fs[i];
    scored[i].m = ms[i];
    r.r_counts[rs[i] - 1u]++;
    r.f_counts[fs[i] - 1u]++;
    r.m_counts[ms[i] - 1u]++;
  }
  r.scored = scored.size();
  std::sort(scored.begin(), scored.end(), [](const RfmMember& a, const RfmMember& b) {
    const int sa = a.r + a.f + a.m, sb = b.r + b.f + b.m;
    if (sa != sb) return sa > sb;
    return before(a.member, b.member);
  });
  if (scored.size() > list_limit) scored.resize(list_limit);
  r.list = std::move(scored);
  return r;
}

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::kNew:
      return "new";
    case Stage::kActive:
      return "active";
    case Stage::kAtRisk:
      return "at_risk";
    case Stage::kDormant:
      return "dormant";
    case Stage::kChurned:
      return "churned";
  }
  return "?";
}

Status check_lifecycle_rules(const LifecycleRules& r) {
  if (r.active_months == 0 || r.active_months >= r.at_risk_months ||
      r.at_risk_months >= r.dormant_months || r.dormant_months > kMonthsMax ||
      r.new_months > kMonthsMax) {
    return Status::invalid(
        "lifecycle months must satisfy 0 < active < at-risk < dormant <= 1200 (got " +
        std::to_string(r.active_months) + ", " + std::to_string(r.at_risk_months) + ", " +
        std::to_string(r.dormant_months) + ")");
  }
  return Status::ok();
}

namespace {

// The stage of a member enrolled in `enrolled` whose newest visit (up to scope.to) was `last`.
Stage stage_from(const std::optional<std::uint32_t>& enrolled,
                 const std::optional<std::uint32_t>& last, const Scope& scope,
                 const LifecycleRules& rules) {
  if (enrolled && scope.to_month - *enrolled < rules.new_months) return Stage::kNew;
  if (!last) return Stage::kChurned;
  const std::uint32_t gap = scope.to_month - *last;
  if (gap < rules.active_months) return Stage::kActive;
  if (gap < rules.at_risk_months) return Stage::kAtRisk;
  if (gap < rules.dormant_months) return Stage::kDormant;
  return Stage::kChurned;
}

}  // namespace

Stage stage_of(const MemberFacts& m, const Scope& scope, const LifecycleRules& rules) {
  // last_visit_month does not depend on the period's start: any scope up to scope.to gives it.
  return stage_from(m.enrolled_month, activity_of(m.state, scope).last_visit_month, scope, rules);
}

LifecycleReport lifecycle(const ReportInput& in, const Scope& scope, const LifecycleRules& rules,
                          std::size_t list_limit) {
  LifecycleReport r;
  r.scope = scope;
  r.rules = rules;
  const std::string store_name = scope.store && in.node_names.count(*scope.store)
                                     ? in.node_names.at(*scope.store)
                                     : std::string();
  for (const MemberFacts& m : in.members) {
    if (m.enrolled_month && *m.enrolled_month > scope.to_month) {
      r.not_yet_enrolled++;
      continue;
    }
    // One pass gives the period's visits and spend and the last visit of any period.
    const Activity a = activity_of(m.state, scope);
    // At one store: its members are those who shopped there or call it home.
    if (scope.store && !a.last_visit_month &&
        (store_name.empty() || m.state.field(sync::Field::kHomeStore) != store_name)) {
      continue;
    }
    const Stage s = stage_from(m.enrolled_month, a.last_visit_month, scope, rules);
    r.counts[static_cast<std::size_t>(s)]++;
    r.lists[static_cast<std::size_t>(s)].push_back(ref_of(m, a));
  }
  for (auto& list : r.lists) keep_top(list, list_limit);
  return r;
}

Result<PointValue> parse_point_value(const std::string& text) {
  auto bad = [&] {
    return Status::invalid(
        "a point value is N or N/D minor units per point (for example 1/100), got '" + text + "'");
  };
  auto number = [](const std::string& s, std::uint64_t& out) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      return false;
    out = std::stoull(s);
    return true;
  };
  PointValue v;
  const auto slash = text.find('/');
  if (!number(text.substr(0, slash), v.num)) return bad();
  if (slash != std::string::npos && (!number(text.substr(slash + 1), v.den) || v.den == 0))
    return bad();
  return v;
}

LiabilityReport liability(const ReportInput& in, const std::optional<sync::NodeId>& only,
                          const std::optional<PointValue>& point_value) {
  LiabilityReport r;
  std::map<sync::NodeId, LiabilityRow> rows;
  for (const MemberFacts& m : in.members) {
    const std::int64_t points = m.state.points.value(), wallet = m.state.wallet.value();
    if (points > 0 || wallet > 0) r.members_with_balance++;
    r.points += static_cast<std::uint64_t>(std::max<std::int64_t>(points, 0));
    r.wallet_minor += static_cast<std::uint64_t>(std::max<std::int64_t>(wallet, 0));
    for (const auto& [node, rights] : m.state.points.rights_by_node()) {
      if (rights > 0) rows[node].points += static_cast<std::uint64_t>(rights);
    }
    for (const auto& [node, rights] : m.state.wallet.rights_by_node()) {
      if (rights > 0) rows[node].wallet_minor += static_cast<std::uint64_t>(rights);
    }
  }
  for (auto& [node, row] : rows) {
    if (only && node != *only) continue;
    row.node = node;
    auto it = in.node_names.find(node);
    row.name = it != in.node_names.end() ? it->second : sync::id_hex(node).substr(0, 8);
    r.by_node.push_back(row);
  }
  std::sort(r.by_node.begin(), r.by_node.end(),
            [](const LiabilityRow& a, const LiabilityRow& b) { return a.name < b.name; });
  r.by_funder["chain"] = {r.points, r.wallet_minor};
  if (point_value) {
    r.point_value = point_value;
    r.points_value_minor = static_cast<std::uint64_t>(static_cast<unsigned __int128>(r.points) *
                                                      point_value->num / point_value->den);
  }
  return r;
}

KpiReport kpis(const ReportInput& in, const Scope& scope) {
  KpiReport r;
  r.scope = scope;
  std::map<std::string, std::uint64_t> tiers;
  for (const MemberFacts& m : in.members) {
    if (m.enrolled_month && *m.enrolled_month > scope.to_month) continue;
    r.members++;
    const Activity a = activity_of(m.state, scope);
    if (a.visits > 0) r.active_members++;
    if (a.visits > 1) r.repeat_members++;
    r.visits += a.visits;
    r.spend_minor += a.spend_minor;
    if (!in.rules.tiers.empty()) {
      tiers[in.rules.tier_for(m.state.rolling_spend(scope.to_month, in.rules.window_months))
                .name]++;
    }
  }
  r.repurchase_rate_bp = share_bp(r.repeat_members, r.active_members);
  r.spend_per_visit_minor = r.visits == 0 ? 0 : r.spend_minor / r.visits;
  for (const sync::Tier& t : in.rules.tiers) r.tiers.emplace_back(t.name, tiers[t.name]);
  return r;
}

}  // namespace outpost::node::reports
