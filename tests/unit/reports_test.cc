// The member reports on a fixed data set, against figures computed by hand (docs/reports.md has
// the same data set as its worked example).
#include "outpost/node/reports.h"

#include <gtest/gtest.h>

#include "outpost/node/report_render.h"
#include "outpost/sync/hlc.h"

namespace outpost::node::reports {
namespace {

sync::NodeId node(std::uint8_t b) {
  sync::NodeId id{};
  id.fill(b);
  return id;
}

std::uint32_t month(const std::string& m) { return *parse_month(m); }

const sync::NodeId kA = node(0xA1);
const sync::NodeId kB = node(0xB2);

struct Builder {
  ReportInput in;
  MemberFacts& add(std::uint8_t id, const std::string& name, const std::string& enrolled) {
    MemberFacts m;
    m.id.fill(id);
    m.card = "card-" + name;
    m.name = name;
    m.enrolled_month = month(enrolled);
    in.members.push_back(std::move(m));
    return in.members.back();
  }
  static void visit(MemberFacts& m, const sync::NodeId& at, const std::string& when,
                    std::uint64_t visits, std::uint64_t spend) {
    ASSERT_TRUE(m.state.visits.add(at, month(when), visits).is_ok());
    if (spend > 0) {
      ASSERT_TRUE(m.state.spend.add(at, month(when), spend).is_ok());
    }
  }
};

// Ann, Bob, Cat, Dan shop in the period 2026-01..2026-06; Eve and Gus last shopped before it;
// Fay enrolled in 2026-05 and has not shopped.
ReportInput fixed_chain() {
  Builder b;
  b.in.node_names = {{kA, "store-a"}, {kB, "store-b"}};
  b.in.rules.window_months = 12;
  b.in.rules.tiers = {{"basic", 0, 1}, {"silver", 50'000, 2}, {"gold", 100'000, 3}};
  b.in.source.version_vector = {{kA, 40}, {kB, 12}};
  b.in.source.ops = 52;
  b.in.source.tree_head_version = 3;
  MemberFacts& ann = b.add(1, "Ann", "2025-01");
  Builder::visit(ann, kA, "2026-01", 2, 30'000);
  Builder::visit(ann, kA, "2026-03", 2, 0);
  Builder::visit(ann, kA, "2026-06", 2, 30'000);
  EXPECT_TRUE(ann.state.points.credit(kA, 600).is_ok());
  EXPECT_TRUE(ann.state.wallet.credit(kA, 10'000).is_ok());
  MemberFacts& bob = b.add(2, "Bob", "2025-06");
  Builder::visit(bob, kB, "2026-05", 1, 80'000);
  EXPECT_TRUE(bob.state.wallet.credit(kB, 5'000).is_ok());
  EXPECT_TRUE(bob.state.wallet.move(kB, kA, 2'000).is_ok());
  MemberFacts& cat = b.add(3, "Cat", "2025-01");
  Builder::visit(cat, kA, "2026-02", 3, 5'000);
  Builder::visit(cat, kA, "2026-04", 2, 0);
  EXPECT_TRUE(cat.state.points.credit(kA, 50).is_ok());
  EXPECT_TRUE(cat.state.points.debit(kA, 50).is_ok());
  MemberFacts& dan = b.add(4, "Dan", "2025-03");
  Builder::visit(dan, kB, "2026-01", 1, 2'000);
  EXPECT_TRUE(dan.state.spend_reversed.add(kB, month("2026-01"), 500).is_ok());
  EXPECT_TRUE(dan.state.points.credit(kB, 20).is_ok());
  MemberFacts& eve = b.add(5, "Eve", "2025-01");
  Builder::visit(eve, kA, "2025-06", 1, 0);
  b.add(6, "Fay", "2026-05");
  MemberFacts& gus = b.add(7, "Gus", "2025-01");
  Builder::visit(gus, kA, "2025-10", 1, 0);
  return b.in;
}

Scope period(const std::string& from, const std::string& to) {
  auto s = make_scope(from, to, 0);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return *s;
}

TEST(Reports, ScopeParsesMonthsDefaultsToAYearAndRefusesBadPeriods) {
  EXPECT_EQ(month("2026-01"), 2026u * 12);
  const Scope year = *make_scope("", "", month("2026-06"));
  EXPECT_EQ(year.from_month, month("2025-07"));
  EXPECT_EQ(year.to_month, month("2026-06"));
  for (const char* bad :
       {"2026-13", "2026-00", "26-01", "2026/01", "1969-12", "2026-1", "abcd-ef", ""}) {
    if (std::string(bad).empty()) continue;  // empty means "default", tested above
    EXPECT_EQ(parse_month(bad).status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(make_scope("2026-06", "2026-01", 0).status().code(), Code::kInvalidArgument);
}

TEST(Reports, QuadrantsSplitActiveMembersAboveTheMedians) {
  const ReportInput in = fixed_chain();
  const QuadrantReport q = quadrants(in, period("2026-01", "2026-06"), std::nullopt, 10);
  // Visits 1,1,5,6: lower median 1, so frequent is 2+. Spend 1500,5000,60000,80000: 5001+.
  EXPECT_TRUE(q.thresholds_are_medians);
  EXPECT_EQ(q.thresholds.visits, 2u);
  EXPECT_EQ(q.thresholds.spend_minor, 5'001u);
  EXPECT_EQ(q.active_members, 4u);
  EXPECT_EQ(q.inactive_members, 3u);  // Eve, Fay, Gus
  EXPECT_EQ(q.spend_minor, 146'500u);
  auto row = [&](Quadrant x) { return q.rows[static_cast<std::size_t>(x)]; };
  EXPECT_EQ(row(Quadrant::kTrueFriends).members, 1u);
  EXPECT_EQ(row(Quadrant::kTrueFriends).list.at(0).name, "Ann");
  EXPECT_EQ(row(Quadrant::kTrueFriends).sales_share_bp, 4'095u);  // 60000 / 146500
  EXPECT_EQ(row(Quadrant::kButterflies).list.at(0).name, "Bob");
  EXPECT_EQ(row(Quadrant::kButterflies).sales_share_bp, 5'460u);
  EXPECT_EQ(row(Quadrant::kBarnacles).list.at(0).name, "Cat");
  EXPECT_EQ(row(Quadrant::kBarnacles).visits, 5u);
  EXPECT_EQ(row(Quadrant::kStrangers).list.at(0).name, "Dan");
  EXPECT_EQ(row(Quadrant::kStrangers).spend_minor, 1'500u);  // 2000 less the 500 reversed
}

TEST(Reports, QuadrantsTakeGivenThresholdsAndAStoreFilter) {
  const ReportInput in = fixed_chain();
  Scope s = period("2026-01", "2026-06");
  s.store = kA;
  const QuadrantReport q = quadrants(in, s, Thresholds{6, 50'000}, 10);
  EXPECT_FALSE(q.thresholds_are_medians);
  EXPECT_EQ(q.active_members, 2u);  // Ann and Cat shopped at store-a
  EXPECT_EQ(q.rows[static_cast<std::size_t>(Quadrant::kTrueFriends)].list.at(0).name, "Ann");
  EXPECT_EQ(q.rows[static_cast<std::size_t>(Quadrant::kStrangers)].list.at(0).name,
            "Cat");  // 5 < 6
  EXPECT_EQ(q.spend_minor, 65'000u);
}

TEST(Reports, RfmScoresByMidRankFifths) {
  const ReportInput in = fixed_chain();
  const RfmReport r = rfm(in, period("2026-01", "2026-06"), 10);
  ASSERT_EQ(r.scored, 4u);
  ASSERT_EQ(r.list.size(), 4u);
  // Best first by r+f+m: Ann 5+5+4, Bob 4+2+5, Cat 2+4+2, Dan 1+2+1.
  const std::vector<std::tuple<std::string, int, int, int, std::uint32_t>> want = {
      {"Ann", 5, 5, 4, 0}, {"Bob", 4, 2, 5, 1}, {"Cat", 2, 4, 2, 2}, {"Dan", 1, 2, 1, 5}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto& [name, rr, ff, mm, months] = want[i];
    EXPECT_EQ(r.list[i].member.name, name);
    EXPECT_EQ(r.list[i].r, rr) << name;
    EXPECT_EQ(r.list[i].f, ff) << name;
    EXPECT_EQ(r.list[i].m, mm) << name;
    EXPECT_EQ(r.list[i].months_since_visit, months) << name;
  }
  EXPECT_EQ(r.f_counts[1], 2u);  // Bob and Dan tie on one visit: both score 2
}

TEST(Reports, LifecycleStagesAsOfTheEndOfThePeriod) {
  const ReportInput in = fixed_chain();
  const LifecycleReport l = lifecycle(in, period("2026-01", "2026-06"), LifecycleRules{}, 10);
  auto count = [&](Stage s) { return l.counts[static_cast<std::size_t>(s)]; };
  EXPECT_EQ(count(Stage::kNew), 1u);      // Fay
  EXPECT_EQ(count(Stage::kActive), 3u);   // Ann, Bob, Cat
  EXPECT_EQ(count(Stage::kAtRisk), 1u);   // Dan, 5 months
  EXPECT_EQ(count(Stage::kDormant), 1u);  // Gus, 8 months
  EXPECT_EQ(count(Stage::kChurned), 1u);  // Eve, 12 months
  // Two months earlier Fay is not enrolled yet, and Ann's last visit was in March.
  const LifecycleReport april = lifecycle(in, period("2026-01", "2026-04"), LifecycleRules{}, 10);
  EXPECT_EQ(april.not_yet_enrolled, 1u);
  EXPECT_EQ(april.counts[static_cast<std::size_t>(Stage::kNew)], 0u);
  EXPECT_EQ(stage_of(in.members[0], period("2026-01", "2026-04"), LifecycleRules{}),
            Stage::kActive);
  EXPECT_EQ(check_lifecycle_rules(LifecycleRules{3, 6, 6, 12}).code(), Code::kInvalidArgument);
}

TEST(Reports, LiabilityPerNodeAddsUpToTheChainTotals) {
  const ReportInput in = fixed_chain();
  const LiabilityReport l = liability(in, std::nullopt, *parse_point_value("1/10"));
  EXPECT_EQ(l.points, 620u);
  EXPECT_EQ(l.wallet_minor, 15'000u);
  EXPECT_EQ(l.members_with_balance, 3u);  // Ann, Bob, Dan; Cat spent hers
  ASSERT_EQ(l.by_node.size(), 2u);
  EXPECT_EQ(l.by_node[0].name, "store-a");
  EXPECT_EQ(l.by_node[0].points, 600u);
  EXPECT_EQ(l.by_node[0].wallet_minor, 12'000u);  // Ann's 10000 and the 2000 moved from store-b
  EXPECT_EQ(l.by_node[1].points, 20u);
  EXPECT_EQ(l.by_node[1].wallet_minor, 3'000u);
  EXPECT_EQ(l.points_value_minor, 62u);
  EXPECT_EQ(l.by_funder.at("chain"), std::make_pair(std::uint64_t{620}, std::uint64_t{15'000}));
  EXPECT_EQ(liability(in, kB, std::nullopt).by_node.size(), 1u);
  for (const char* bad : {"", "x", "1/0", "-1", "1/", "1/2/3", "10000000000"}) {
    EXPECT_EQ(parse_point_value(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(Reports, KpisCountRepeatBuyersSpendPerVisitAndTiers) {
  const ReportInput in = fixed_chain();
  const KpiReport k = kpis(in, period("2026-01", "2026-06"));
  EXPECT_EQ(k.members, 7u);
  EXPECT_EQ(k.active_members, 4u);
  EXPECT_EQ(k.repeat_members, 2u);
  EXPECT_EQ(k.repurchase_rate_bp, 5'000u);
  EXPECT_EQ(k.visits, 13u);
  EXPECT_EQ(k.spend_minor, 146'500u);
  EXPECT_EQ(k.spend_per_visit_minor, 11'269u);
  const std::vector<std::pair<std::string, std::uint64_t>> tiers = {
      {"basic", 5}, {"silver", 2}, {"gold", 0}};
  EXPECT_EQ(k.tiers, tiers);
}

TEST(Reports, RenderingSaysWhatDataWasUsedAndEscapesCsv) {
  const ReportInput in = fixed_chain();
  const Rendered r = render(in, quadrants(in, period("2026-01", "2026-06"), std::nullopt, 1));
  EXPECT_EQ(r.json["report"], "quadrants");
  EXPECT_EQ(r.json["data"]["ops"], 52);
  EXPECT_EQ(r.json["data"]["tree_head_version"], 3);
  EXPECT_EQ(r.json["data"]["version_vector"][sync::id_hex(kA)], 40);
  EXPECT_EQ(r.json["quadrants"][0]["quadrant"], "true_friends");
  EXPECT_EQ(r.json["quadrants"][0]["list"][0]["name"], "Ann");
  EXPECT_NE(to_text(r).find("600.00"), std::string::npos);  // Ann's spend, readable
  EXPECT_EQ(to_csv(Table{{"a", "b"}, {{"x,y", "say \"hi\""}}}),
            "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n");
  EXPECT_EQ(money(123'456'789), "1,234,567.89");
  EXPECT_EQ(money(5), "0.05");
}

TEST(Reports, RunByNameChecksEveryOptionBeforeComputing) {
  const ReportInput in = fixed_chain();
  const std::uint32_t june = month("2026-06");
  ReportRequest req;
  req.name = "quadrants";
  req.store = "store-a";
  auto ok = run_report(in, req, june);  // the year to 2026-06: Ann, Cat, and Gus in 2025-10
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->json["period"]["store"], "store-a");
  EXPECT_EQ(ok->json["period"]["from"], "2025-07");
  EXPECT_EQ(ok->json["active_members"], 3);
  auto req_of = [](const char* name, auto&& set) {
    ReportRequest r;
    r.name = name;
    set(r);
    return r;
  };
  auto none = [](ReportRequest&) {};
  const std::vector<std::pair<ReportRequest, std::string>> bad = {
      {req_of("churn", none), "unknown report 'churn' (reports: quadrants, rfm"},
      {req_of("kpis", [](ReportRequest& r) { r.from = "2026-13"; }), "a month is YYYY-MM"},
      {req_of("kpis", [](ReportRequest& r) { r.from = "2026-06", r.to = "2026-01"; }),
       "starts (2026-06) after it ends"},
      {req_of("kpis", [](ReportRequest& r) { r.store = "store-z"; }),
       "no node named 'store-z' in the roster (nodes: store-a"},
      {req_of("quadrants", [](ReportRequest& r) { r.min_visits = "3"; }), "give both thresholds"},
      {req_of("quadrants", [](ReportRequest& r) { r.min_visits = "3", r.min_spend = "-1"; }),
       "must be a whole number"},
      {req_of("liability", [](ReportRequest& r) { r.point_value = "1/0"; }),
       "a point value is N or N/D"},
      {req_of("rfm", [](ReportRequest& r) { r.list_limit = 10'001; }), "at most 10000"},
  };

  for (const auto& [r, want] : bad) {
    auto got = run_report(in, r, june);
    ASSERT_FALSE(got.is_ok()) << r.name;
    EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
    EXPECT_NE(got.status().message().find(want), std::string::npos) << got.status().message();
  }
}

TEST(Reports, QuadrantSvgPlotsEveryActiveMemberAndTheThresholds) {
  const ReportInput in = fixed_chain();
  const QuadrantReport q = quadrants(in, period("2026-01", "2026-06"), std::nullopt, 0);
  const std::string svg = quadrant_svg(in, q);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  std::size_t circles = 0;
  for (auto at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1))
    ++circles;
  EXPECT_EQ(circles, 4u);  // Ann, Bob, Cat, Dan
  EXPECT_NE(svg.find("知己 true friends: 1"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
}

}  // namespace
}  // namespace outpost::node::reports
