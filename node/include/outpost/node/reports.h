// HQ's member reports (docs/reports.md): quadrants, RFM scores, lifecycle stages, liability and
// KPIs, computed from a replica's member state. The functions here are pure: they read a
// ReportInput (loaded in one read snapshot by load_report_input) and return typed results; the
// CLI and the admin API render them (report_text.cc, JSON at the edges).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/sync/member_state.h"
#include "outpost/sync/rules.h"

namespace outpost::storage {
class Store;
}
namespace outpost::sync {
struct Roster;
}

namespace outpost::node::reports {

// One member as the reports see it.
struct MemberFacts {
  sync::MemberId id{};
  std::string card;
  std::string name;
  std::optional<std::uint32_t>
      enrolled_month;  // month index of its enroll op, if this replica holds it
  sync::MemberState state;
};

// What the data of a report was: anyone can tell whether two runs saw the same data.
struct DataSource {
  std::map<sync::NodeId, std::uint64_t> version_vector;  // ops held per origin
  std::uint64_t ops = 0;
  std::optional<std::uint64_t> tree_head_version;  // newest HQ-signed tree head set held
};

struct ReportInput {
  std::vector<MemberFacts> members;  // ascending id
  sync::ProgramRules rules;
  std::map<sync::NodeId, std::string> node_names;  // from the roster
  DataSource source;
};

// Loads everything a report needs from `store` in one read snapshot. `roster` names the nodes
// (may be null: nodes are then shown by id).
Result<ReportInput> load_report_input(storage::Store& store, const sync::Roster* roster,
                                      const sync::ProgramRules& rules);

// The months and the store a report looks at. Months are month indexes (sync::month_index);
// `to` is also the "as of" month of recency and lifecycle.
struct Scope {
  std::uint32_t from_month = 0;
  std::uint32_t to_month = 0;
  std::optional<sync::NodeId> store;  // count only visits and spend at this node
};

// Parses "YYYY-MM" into a month index, or kInvalidArgument.
Result<std::uint32_t> parse_month(const std::string& text);
// The scope from optional "YYYY-MM" bounds: `to` defaults to `now_month`, `from` to 11 months
// before `to` (a year). kInvalidArgument for a bad month or from > to.
Result<Scope> make_scope(const std::string& from, const std::string& to, std::uint32_t now_month);

// A member's activity in a scope: purchases (visits) and purchase amount net of reversals.
struct Activity {
  std::uint64_t visits = 0;
  std::uint64_t spend_minor = 0;
  std::optional<std::uint32_t> last_visit_month;  // newest month <= to with a visit (any period)
};
Activity activity_of(const sync::MemberState& m, const Scope& scope);

// A member named in a report's list.
struct MemberRef {
  sync::MemberId id{};
  std::string card;
  std::string name;
  std::uint64_t visits = 0;
  std::uint64_t spend_minor = 0;
};

// --- quadrants: visit frequency x spend ---------------------------------------------------------

enum class Quadrant : std::uint8_t {
  kTrueFriends = 0,  // 知己: frequent, high spend
  kButterflies = 1,  // 蝴蝶: infrequent, high spend
  kBarnacles = 2,    // 藤壺: frequent, low spend
  kStrangers = 3,    // 過客: infrequent, low spend
};
const char* quadrant_name(Quadrant q);   // "true_friends", ...
const char* quadrant_label(Quadrant q);  // "知己 true friends", ...

struct Thresholds {
  std::uint64_t visits = 0;       // frequent: visits >= this
  std::uint64_t spend_minor = 0;  // high spend: spend >= this
};

struct QuadrantRow {
  Quadrant quadrant = Quadrant::kStrangers;
  std::uint64_t members = 0;
  std::uint64_t visits = 0;
  std::uint64_t spend_minor = 0;
  std::uint32_t sales_share_bp = 0;  // share of the active members' spend, in basis points
  std::vector<MemberRef> list;       // highest spend first, at most the list limit
};

struct QuadrantReport {
  Scope scope;
  Thresholds thresholds;
  bool thresholds_are_medians = false;
  std::uint64_t active_members = 0;    // at least one visit in the scope
  std::uint64_t inactive_members = 0;  // none: in no quadrant
  std::uint64_t spend_minor = 0;
  std::array<QuadrantRow, 4> rows;  // indexed by Quadrant
};

// Members with a visit in the scope, split by `given` thresholds, or by the medians of the active
// members' visits and spend (the lower median) when none are given.
QuadrantReport quadrants(const ReportInput& in, const Scope& scope,
                         const std::optional<Thresholds>& given, std::size_t list_limit);

// --- RFM ----------------------------------------------------------------------------------------

struct RfmMember {
  MemberRef member;
  std::uint32_t months_since_visit = 0;
  std::uint8_t r = 0, f = 0, m = 0;  // 1 (worst fifth) .. 5 (best fifth)
};

struct RfmReport {
  Scope scope;
  std::uint64_t scored = 0;  // members with a visit in the scope
  std::array<std::uint64_t, 5> r_counts{}, f_counts{}, m_counts{};  // members per score 1..5
  std::vector<RfmMember> list;  // best first (r+f+m, then spend), at most the limit
};

RfmReport rfm(const ReportInput& in, const Scope& scope, std::size_t list_limit);

// --- lifecycle ----------------------------------------------------------------------------------

enum class Stage : std::uint8_t { kNew = 0, kActive = 1, kAtRisk = 2, kDormant = 3, kChurned = 4 };
const char* stage_name(Stage s);

// Months since the last visit (as of scope.to) that end each stage; a member enrolled fewer than
// `new_months` months before is new. Defaults: docs/reports.md.
struct LifecycleRules {
  std::uint32_t new_months = 3;
  std::uint32_t active_months = 3;    // last visit this month or the 2 before: active
  std::uint32_t at_risk_months = 6;   // 3..5 months ago: at risk
  std::uint32_t dormant_months = 12;  // 6..11: dormant; 12 or more, or never: churned
};
Status check_lifecycle_rules(const LifecycleRules& r);

struct LifecycleReport {
  Scope scope;
  LifecycleRules rules;
  std::array<std::uint64_t, 5> counts{};  // indexed by Stage
  std::uint64_t not_yet_enrolled = 0;     // enrolled after scope.to
  std::array<std::vector<MemberRef>, 5> lists;
};

Stage stage_of(const MemberFacts& m, const Scope& scope, const LifecycleRules& rules);
LifecycleReport lifecycle(const ReportInput& in, const Scope& scope, const LifecycleRules& rules,
                          std::size_t list_limit);

// --- liability ----------------------------------------------------------------------------------

// What a point is worth when redeemed, as a fraction of minor units (num/den), when known.
struct PointValue {
  std::uint64_t num = 0;
  std::uint64_t den = 1;
};
Result<PointValue> parse_point_value(const std::string& text);  // "N" or "N/D"

struct LiabilityRow {
  sync::NodeId node{};
  std::string name;
  std::uint64_t points = 0;        // points rights held at the node
  std::uint64_t wallet_minor = 0;  // stored value rights held at the node
};

struct LiabilityReport {
  std::uint64_t members_with_balance = 0;
  std::uint64_t points = 0;
  std::uint64_t wallet_minor = 0;
  std::optional<PointValue> point_value;
  std::optional<std::uint64_t> points_value_minor;  // points * num / den, rounded down
  std::vector<LiabilityRow> by_node;  // ascending name; sums equal the totals (whole chain)
  // Funders: until partner documents exist the chain funds everything (docs/reports.md).
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_funder;  // points, wallet
};

// Outstanding balances now (liability has no period). With a store in `only`, only its row.
LiabilityReport liability(const ReportInput& in, const std::optional<sync::NodeId>& only,
                          const std::optional<PointValue>& point_value);

// --- KPIs ---------------------------------------------------------------------------------------

struct KpiReport {
  Scope scope;
  std::uint64_t members = 0;             // enrolled by scope.to (or of unknown enrollment)
  std::uint64_t active_members = 0;      // a visit in the scope
  std::uint64_t repeat_members = 0;      // two or more visits in the scope
  std::uint32_t repurchase_rate_bp = 0;  // repeat / active, basis points
  std::uint64_t visits = 0;
  std::uint64_t spend_minor = 0;
  std::uint64_t spend_per_visit_minor = 0;  // rounded down
  std::vector<std::pair<std::string, std::uint64_t>>
      tiers;  // members per tier (rules order), as of scope.to
};

KpiReport kpis(const ReportInput& in, const Scope& scope);

// Names of the reports, for `--help` and the unknown-report error.
inline constexpr std::array<const char*, 5> kReportNames = {"quadrants", "rfm", "lifecycle",
                                                            "liability", "kpis"};

}  // namespace outpost::node::reports
