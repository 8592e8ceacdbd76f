// outpost-top's view-model (admin-tui/include/outpost/tui/view_model.h), from admin-API JSON
// alone: no terminal, no socket (its HTTP client is tested in net_http_client_test.cc). Each
// test is named after what an operator would see wrong on the screen if it failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "outpost/tui/view_model.h"

namespace outpost::tui {
namespace {

const std::string kHq = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kS1 = "11111111111111111111111111111111";
const std::string kS2 = "22222222222222222222222222222222";
const std::string kS3 = "33333333333333333333333333333333";
constexpr std::uint64_t kNow = 1'795'503'790'000;
constexpr std::uint64_t kDay = 24ULL * 3600 * 1000;

Json hq_node(Json vv) {
  return Json{{"node_id", kHq},           {"name", "hq"},
              {"role", "hq"},             {"version_vector", std::move(vv)},
              {"ops", 30},                {"schema_version", 3},
              {"software_version", "0.1.0"}, {"wall_clock_ms", kNow},
              {"links_up", 1},            {"partitioned", false},
              {"peer_listen", "127.0.0.1:7000"}};
}

Json roster3() {
  auto node = [](const std::string& id, const std::string& name, const std::string& role) {
    return Json{{"node_id", id}, {"name", name}, {"role", role}, {"status", "active"},
                {"valid_from_ms", kNow - kDay}, {"valid_until_ms", kNow + 700 * kDay}};
  };
  return Json{{"version", 3},
              {"nodes", Json::array({node(kHq, "hq", "hq"), node(kS1, "store-1", "store"),
                                     node(kS2, "store-2", "store")})}};
}

Json connected_peer(const std::string& id, const std::string& name, Json pvv) {
  return Json{{"name", name},
              {"node_id", id},
              {"role", "store"},
              {"address", "127.0.0.1:40000"},
              {"direction", "inbound"},
              {"state", "connected"},
              {"connected_since_ms", kNow - 60'000},
              {"last_contact_ms", kNow - 2'000},
              {"peer_version_vector", std::move(pvv)},
              {"ops_pending_to_peer", 0},
              {"ops_behind_peer", 0},
              {"clock_skew_ms", 3},
              {"stats", {{"ops_sent", 4}, {"ops_received", 5}}},
              {"history", Json::array({{{"at_ms", kNow - 60'000}, {"event", "connected (inbound, 127.0.0.1:40000)"}}})}};
}

Json no_alerts() { return Json{{"alerts", Json::array()}, {"counts", Json::object()}}; }

Overview must_build(const Snapshot& s, const LinkMemory& m = {}) {
  Parsed<Overview> o = build_overview(s, m);
  EXPECT_TRUE(o.ok()) << o.error;
  return o.ok() ? *o.value : Overview{};
}

const NodeRow* row_named(const Overview& o, const std::string& name) {
  for (const auto& r : o.rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// --- overview ---

TEST(TuiOverview, ListsViewedNodeFirstThenEveryRosterNodeWithItsLinkState) {
  Snapshot s;
  s.node = hq_node({{kHq, 5}, {kS1, 10}});
  s.peers = {{"partitioned", false}, {"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 5}, {kS1, 10}})})}};
  s.alerts = no_alerts();
  s.roster = roster3();
  Overview o = must_build(s);
  ASSERT_EQ(o.rows.size(), 3u);
  EXPECT_EQ(o.rows[0].name, "hq");
  EXPECT_TRUE(o.rows[0].is_self);
  EXPECT_EQ(o.rows[0].link, "self");
  EXPECT_FALSE(o.rows[0].problem());
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->link, "connected");
  EXPECT_EQ(s1->behind_total, 0u);
  EXPECT_EQ(s1->pending_total, 0u);
  EXPECT_FALSE(s1->problem());
  EXPECT_EQ(s1->cert_status, "active");
  const NodeRow* s2 = row_named(o, "store-2");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->link, "down");  // HQ expects every store to link to it
  EXPECT_TRUE(s2->problem());
  EXPECT_FALSE(s2->behind_total.has_value());  // never seen: unknown, not zero
  EXPECT_EQ(o.names.at(kS2), "store-2");
}

TEST(TuiOverview, LaggingConnectedStoreShowsOpsBehindPerOriginAndTotal) {
  Snapshot s;
  s.node = hq_node({{kHq, 5}, {kS1, 10}, {kS2, 7}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 5}, {kS1, 12}, {kS2, 3}})})}};
  s.roster = roster3();
  s.alerts = no_alerts();
  Overview o = must_build(s);
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->behind_total, 4u);
  ASSERT_EQ(s1->behind_by_origin.size(), 1u);
  EXPECT_EQ(s1->behind_by_origin.at(kS2), 4u);
  EXPECT_EQ(s1->pending_total, 2u);  // store-1 holds 2 of its own ops HQ has not got yet
  EXPECT_FALSE(s1->problem()) << "a small in-flight gap on a live link is not a problem";
  std::string line = overview_row_line(o, *s1, 80);
  EXPECT_NE(line.find("connected"), std::string::npos) << line;
  EXPECT_NE(line.find(" 4 "), std::string::npos) << line;

  auto detail = joined(node_detail_lines(o, *s1, nullptr, 100));
  EXPECT_NE(detail.find("store-2"), std::string::npos) << "origins are named in the version vector:\n" << detail;
  EXPECT_NE(detail.find("connected (inbound"), std::string::npos) << detail;
}

TEST(TuiOverview, BehindPerOriginIsAColumnOnWideScreensAndTheSelectedRowSummaryAtAnyWidth) {
  Snapshot s;
  s.node = hq_node({{kHq, 9}, {kS1, 10}, {kS2, 7}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 8}, {kS1, 10}, {kS2, 3}})})}};
  s.roster = roster3();
  s.alerts = no_alerts();
  Overview o = must_build(s);
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->behind_total, 5u);
  // Largest gap first, origins named.
  EXPECT_EQ(behind_by_origin_text(o, *s1), "store-2 4, hq 1");

  // 80 columns: no room for the column, every line still exactly 80 wide.
  EXPECT_EQ(overview_title_line(80).find("BEHIND BY ORIGIN"), std::string::npos);
  EXPECT_EQ(overview_row_line(o, *s1, 80).size(), 80u);
  // 120 columns: the column is there and the row carries the breakdown under it.
  std::string title = overview_title_line(120);
  std::string line = overview_row_line(o, *s1, 120);
  ASSERT_EQ(line.size(), 120u);
  std::size_t col = title.find("BEHIND BY ORIGIN");
  ASSERT_NE(col, std::string::npos) << title;
  EXPECT_EQ(line.substr(col, 15), "store-2 4, hq 1") << title << "\n" << line;

  // The summary line says the same for the selected row in 80 columns.
  std::string summary = selected_row_summary(o, *s1, 80);
  EXPECT_EQ(summary.size(), 80u);
  EXPECT_EQ(summary.rfind("store-1: behind 5 = store-2 4, hq 1", 0), 0u) << summary;
  // A node never seen says so instead of a made-up zero.
  const NodeRow* s2 = row_named(o, "store-2");
  ASSERT_NE(s2, nullptr);
  EXPECT_NE(selected_row_summary(o, *s2, 80).find("behind unknown"), std::string::npos);
  EXPECT_EQ(behind_by_origin_text(o, *s2), "");
}

TEST(TuiDetail, CheckpointsOfTheNodesOwnLogAreShownAndAnOlderNodeGetsANote) {
  Snapshot s;
  s.node = hq_node({{kHq, 3}, {kS1, 12}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 3}, {kS1, 12}})})}};
  s.roster = roster3();
  s.alerts = no_alerts();
  s.checkpoints = Json{{"checkpoints", Json::array({Json{{"origin", kS1}, {"tree_size", 10}, {"root", "abcdef0123456789"},
                                                         {"head_hash", "00"}, {"issued_ms", kNow - 60'000},
                                                         {"held_seq", 12}, {"ops_after", 2}}})}};
  Overview o = must_build(s);
  ASSERT_EQ(o.checkpoints.count(kS1), 1u);
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  std::string text = joined(node_detail_lines(o, *s1, nullptr, 100));
  EXPECT_NE(text.find("up to seq 10"), std::string::npos) << text;
  EXPECT_NE(text.find("root abcdef01"), std::string::npos) << text;
  EXPECT_NE(text.find("2 ops held here after it"), std::string::npos) << text;
  // HQ's own row has none yet.
  std::string hq = joined(node_detail_lines(o, o.rows[0], nullptr, 100));
  EXPECT_NE(hq.find("none yet"), std::string::npos) << hq;
  // With HQ's tree head set held, every listed node's detail says how much of its log it covers.
  s.checkpoints["tree_head_set"] = Json{{"version", 4}, {"issued_ms", kNow - 1000}, {"roster_version", 3}, {"ops", 13},
                                        {"tree_size_by_origin", {{kS1, 10}, {kHq, 3}}}};
  Overview with_set = must_build(s);
  EXPECT_EQ(with_set.tree_heads_version, 4u);
  std::string d = joined(node_detail_lines(with_set, *row_named(with_set, "store-1"), nullptr, 100));
  EXPECT_NE(d.find("tree head set v4"), std::string::npos) << d;
  EXPECT_NE(d.find("vouches for 10 of its ops"), std::string::npos) << d;
  std::string d2 = joined(node_detail_lines(with_set, *row_named(with_set, "store-2"), nullptr, 100));
  EXPECT_NE(d2.find("does not list it"), std::string::npos) << d2;
  Json j = overview_json(o, kNow);
  bool found = false;
  for (const auto& n : j["nodes"]) {
    if (n["name"] == "store-1") {
      found = true;
      EXPECT_EQ(n["checkpoint"]["tree_size"], 10);
      EXPECT_EQ(n["checkpoint"]["ops_after"], 2);
    }
  }
  EXPECT_TRUE(found);

  // An older node (no route) and an odd answer are notes, never a failure.
  s.checkpoints = Json();
  Overview older = must_build(s);
  EXPECT_TRUE(older.checkpoints.empty());
  EXPECT_NE(overview_text(older, "t").find("note: no checkpoints route"), std::string::npos);
  s.checkpoints = Json{{"checkpoints", "garbage"}};
  Overview odd = must_build(s);
  EXPECT_NE(overview_text(odd, "t").find("note: checkpoints answer not understood"), std::string::npos);
}

TEST(TuiOverview, PeerVersionFromItsHelloIsShownAndKeptWhileItsLinkIsDown) {
  Snapshot s;
  s.node = hq_node({{kHq, 1}});
  Json peer = connected_peer(kS1, "store-1", {{kHq, 1}});
  peer["software_version"] = "0.1.0";
  peer["schema_version"] = 4;
  s.peers = {{"peers", Json::array({peer})}};
  s.roster = roster3();
  s.alerts = no_alerts();
  LinkMemory memory;
  Overview o = must_build(s, memory);
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  EXPECT_NE(overview_row_line(o, *s1, 80).find("0.1.0/s4"), std::string::npos) << overview_row_line(o, *s1, 80);
  remember_links(o, &memory);
  // The link drops: the row still says which version the store last ran.
  s.peers = {{"peers", Json::array()}};
  Overview later = must_build(s, memory);
  const NodeRow* down = row_named(later, "store-1");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->link, "down");
  EXPECT_NE(overview_row_line(later, *down, 80).find("0.1.0/s4"), std::string::npos);
  // A peer of an older build that reports nothing shows "-".
  s.peers = {{"peers", Json::array({connected_peer(kS2, "store-2", {{kHq, 1}})})}};
  Overview old = must_build(s);
  const NodeRow* s2 = row_named(old, "store-2");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->software_version, "");
}

TEST(TuiOverview, HugeGapOnLiveLinkIsAProblem) {
  Snapshot s;
  s.node = hq_node({{kS2, kBehindWarnOps + 10}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", Json::object())})}};
  Overview o = must_build(s);
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->behind_total, kBehindWarnOps + 10);
  EXPECT_TRUE(s1->problem());
}

TEST(TuiOverview, DisconnectedStoreKeepsLastKnownVersionVectorAndIsFlaggedBehind) {
  LinkMemory memory;
  Snapshot first;
  first.node = hq_node({{kHq, 5}, {kS1, 10}});
  first.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 5}, {kS1, 10}}),
                                        connected_peer(kS2, "store-2", {{kHq, 5}, {kS1, 10}})})}};
  first.roster = roster3();
  first.alerts = no_alerts();
  remember_links(must_build(first, memory), &memory);

  // store-2's link drops; store-1 writes three more ops that reach HQ.
  Snapshot second = first;
  second.node = hq_node({{kHq, 5}, {kS1, 13}});
  second.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 5}, {kS1, 13}})})}};
  Overview o = must_build(second, memory);
  const NodeRow* s2 = row_named(o, "store-2");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->link, "down");
  EXPECT_TRUE(s2->vv_stale);
  EXPECT_EQ(s2->behind_total, 3u);
  EXPECT_EQ(s2->behind_by_origin.at(kS1), 3u);
  EXPECT_FALSE(s2->pending_total.has_value()) << "what a cut-off store wrote is unknown";
  EXPECT_EQ(s2->last_contact_ms, kNow - 2'000);
  EXPECT_FALSE(s2->history.empty());
  EXPECT_TRUE(s2->problem());
  // The next refresh also says when outpost-top first saw the link gone.
  remember_links(o, &memory);
  Overview later = must_build(second, memory);
  const NodeRow* again = row_named(later, "store-2");
  ASSERT_NE(again, nullptr);
  ASSERT_GE(again->history.size(), 2u);
  EXPECT_EQ(again->history[0].event, "link seen down by outpost-top");
  EXPECT_EQ(again->history[0].at_ms, kNow);
  std::string line = overview_row_line(o, *s2, 80);
  EXPECT_EQ(line[0], '!') << line;
  EXPECT_NE(line.find("~3"), std::string::npos) << line;
  EXPECT_NE(line.find("down"), std::string::npos) << line;

  std::string text = overview_text(o, "12:00:00");
  EXPECT_NE(text.find("store-2: no link to this node"), std::string::npos) << text;
  EXPECT_NE(text.find("behind by 3 ops"), std::string::npos) << text;
  EXPECT_NE(text.find("links 1/2 up"), std::string::npos) << text;

  // Memory is bounded by what is listed: a node gone from roster and peers is forgotten.
  Snapshot third = second;
  third.roster = Json{{"nodes", Json::array()}};
  remember_links(must_build(third, memory), &memory);
  EXPECT_EQ(memory.by_node_id.count(kS2), 0u);
}

TEST(TuiOverview, StoreViewMatchesOutboundPeerToRosterByNameAndDoesNotFlagUnlinkedStores) {
  Snapshot s;
  s.node = hq_node({{kS1, 2}});
  s.node["node_id"] = kS1;
  s.node["name"] = "store-1";
  s.node["role"] = "store";
  s.peers = {{"partitioned", false},
             {"peers", Json::array({Json{{"name", "hq"},
                                         {"address", "127.0.0.1:7000"},
                                         {"direction", "outbound"},
                                         {"state", "backoff"},
                                         {"failures", 3},
                                         {"last_error", "connection refused"},
                                         {"history", Json::array()}}})}};
  s.roster = roster3();
  Overview o = must_build(s);
  ASSERT_EQ(o.rows.size(), 3u);
  EXPECT_EQ(o.rows[0].name, "store-1");
  EXPECT_EQ(o.rows[1].name, "hq") << "HQ is listed right after the viewed node";
  EXPECT_EQ(o.rows[1].node_id, kHq);
  EXPECT_EQ(o.rows[1].link, "backoff");
  EXPECT_TRUE(o.rows[1].problem());
  EXPECT_NE(o.rows[1].problems[0].find("connection refused"), std::string::npos);
  const NodeRow* s2 = row_named(o, "store-2");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->link, "no-link");
  EXPECT_FALSE(s2->problem());
}

TEST(TuiOverview, ClockSkewExpiringAndRevokedCertificatesAreFlagged) {
  Snapshot s;
  s.node = hq_node({{kHq, 1}});
  Json p = connected_peer(kS1, "store-1", {{kHq, 1}});
  p["clock_skew_ms"] = -(kClockSkewWarnMs + 1000);
  s.peers = {{"peers", Json::array({p})}};
  s.roster = roster3();
  s.roster["nodes"][1]["valid_until_ms"] = kNow + 3 * kDay;
  s.roster["nodes"][2]["status"] = "revoked";
  Overview o = must_build(s);
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  std::string problems = joined(s1->problems);
  EXPECT_NE(problems.find("clock skew -5m"), std::string::npos) << problems;
  EXPECT_NE(problems.find("certificate expires in 3d"), std::string::npos) << problems;
  std::string line = overview_row_line(o, *s1, 80);
  EXPECT_NE(line.find("3d"), std::string::npos) << line;
  const NodeRow* s2 = row_named(o, "store-2");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->link, "revoked");
  EXPECT_TRUE(s2->problem());
}

TEST(TuiOverview, PartitionedViewedNodeIsAProblemRowAndHeaderSaysSo) {
  Snapshot s;
  s.node = hq_node({{kHq, 1}});
  s.node["partitioned"] = true;
  s.peers = {{"partitioned", true}, {"peers", Json::array()}};
  Overview o = must_build(s);
  EXPECT_EQ(o.rows[0].link, "partitioned");
  EXPECT_TRUE(o.rows[0].problem());
  EXPECT_NE(overview_header(o, "t")[1].find("PARTITIONED"), std::string::npos);
}

TEST(TuiOverview, DuplicateLinkToOneNodeShowsOneRowWithTheBestState) {
  Snapshot s;
  s.node = hq_node({{kHq, 1}});
  Json handshaking = connected_peer(kS1, "store-1", Json::object());
  handshaking["state"] = "handshaking";
  s.peers = {{"peers", Json::array({handshaking, connected_peer(kS1, "store-1", {{kHq, 1}})})}};
  Overview o = must_build(s);
  ASSERT_EQ(o.rows.size(), 2u);
  EXPECT_EQ(o.rows[1].link, "connected");
}

TEST(TuiOverview, OlderNodeWithoutPeersRosterOrAlertsStillShowsItselfWithNotes) {
  Snapshot s;
  s.node = Json{{"node_id", kHq}, {"name", "hq"}, {"version_vector", {{kHq, 3}}}};
  Overview o = must_build(s);
  ASSERT_EQ(o.rows.size(), 1u);
  EXPECT_EQ(o.rows[0].name, "hq");
  EXPECT_GE(o.notes.size(), 3u);
  std::string text = overview_text(o, "t");
  EXPECT_NE(text.find("note: no peers route"), std::string::npos) << text;

  // A part the node could not produce this time (its JSON error answer) is a note, not a failure.
  s.peers = Json{{"error", "overloaded"}, {"message", "queue is full"}};
  s.roster = Json{{"error", "not_found"}, {"message", "this node has no roster (not enrolled)"}};
  Overview busy = must_build(s);
  text = overview_text(busy, "t");
  EXPECT_NE(text.find("note: peers unavailable: queue is full"), std::string::npos) << text;
  EXPECT_NE(text.find("note: roster unavailable: this node has no roster"), std::string::npos) << text;
}

TEST(TuiOverview, GarbageOrOlderSchemaJsonIsAClearErrorNeverACrash) {
  std::vector<Json> bad_nodes = {
      Json(),
      Json("garbage"),
      Json::array({1, 2, 3}),
      Json{{"name", "hq"}, {"version_vector", Json::object()}},  // no node_id
      Json{{"node_id", kHq}, {"name", "hq"}},                    // no version_vector (older schema)
      Json{{"node_id", kHq}, {"name", "hq"}, {"version_vector", {{kHq, "seven"}}}},
      Json{{"node_id", kHq}, {"name", "hq"}, {"version_vector", {{kHq, -1}}}},
      Json{{"node_id", 5}, {"name", "hq"}, {"version_vector", Json::object()}},
  };
  for (const auto& n : bad_nodes) {
    Snapshot s;
    s.node = n;
    Parsed<Overview> o = build_overview(s, {});
    EXPECT_FALSE(o.ok()) << n.dump();
    EXPECT_NE(o.error.find("/admin/v1/node"), std::string::npos) << o.error;
  }
  Snapshot s;
  s.node = hq_node({{kHq, 1}});
  s.peers = Json{{"peers", 5}};
  Parsed<Overview> o = build_overview(s, {});
  EXPECT_FALSE(o.ok());
  EXPECT_NE(o.error.find("/admin/v1/peers"), std::string::npos) << o.error;

  // Wrong types inside otherwise valid answers degrade to "unknown", never throw.
  s.peers = Json{{"peers", Json::array({5, "x", Json{{"name", 7}, {"state", 3}, {"node_id", Json::array()},
                                                      {"peer_version_vector", "v"}, {"history", 9},
                                                      {"clock_skew_ms", "big"}, {"failures", -4}}})}};
  s.roster = Json{{"nodes", Json::array({1, Json{{"node_id", 3}}, Json{{"node_id", kS1}, {"valid_until_ms", "x"}}})}};
  s.alerts = Json{{"alerts", "none"}};
  Overview ok = must_build(s);
  EXPECT_GE(ok.rows.size(), 2u);
  for (const auto& r : ok.rows) EXPECT_EQ(overview_row_line(ok, r, 80).size(), 80u);
  EXPECT_NO_THROW(overview_json(ok, kNow).dump());
  EXPECT_NO_THROW(node_detail_lines(ok, ok.rows.back(), nullptr, 80));
}

TEST(TuiOverview, EveryLineIsExactlyTheScreenWidthAndProblemRowsStartWithBang) {
  Snapshot s;
  s.node = hq_node({{kHq, 5}, {kS1, 10}});
  const std::string long_name = "a-very-long-store-name-that-will-not-fit";
  s.peers = {{"peers", Json::array({connected_peer(kS3, long_name, {{kHq, 5}})})}};
  s.roster = roster3();
  Overview o = must_build(s);
  for (std::size_t width : {80u, 100u, 200u}) {
    EXPECT_EQ(overview_title_line(width).size(), width);
    for (const auto& r : o.rows) {
      std::string line = overview_row_line(o, r, width);
      EXPECT_EQ(line.size(), width) << line;
      EXPECT_EQ(line[0] == '!', r.problem()) << line;
    }
  }
  // The title's columns line up with the values: LINK starts where "connected" does.
  std::string title = overview_title_line(80);
  const NodeRow* live = row_named(o, long_name);
  ASSERT_NE(live, nullptr);
  EXPECT_EQ(title.find("LINK"), overview_row_line(o, *live, 80).find("connected"));
  EXPECT_NE(overview_row_line(o, *live, 80).find("a-very-long~"), std::string::npos) << "long names are cut, marked";
}

TEST(TuiOverview, FilterMatchesNameLinkAndProblems) {
  Snapshot s;
  s.node = hq_node({{kHq, 5}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 5}})})}};
  s.roster = roster3();
  Overview o = must_build(s);
  EXPECT_EQ(filter_rows(o, "").size(), 3u);
  EXPECT_EQ(filter_rows(o, "STORE").size(), 2u);
  EXPECT_EQ(filter_rows(o, "down").size(), 1u);
  ASSERT_EQ(filter_rows(o, "!").size(), 1u);
  EXPECT_EQ(filter_rows(o, "!")[0]->name, "store-2");
}

TEST(TuiOverview, OnceJsonCarriesRowsWithPerOriginGaps) {
  Snapshot s;
  s.node = hq_node({{kHq, 5}, {kS2, 9}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 5}, {kS2, 4}})})}};
  s.alerts = no_alerts();
  Overview o = must_build(s);
  Json j = overview_json(o, kNow);
  EXPECT_EQ(j["node"]["name"], "hq");
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][1]["name"], "store-1");
  EXPECT_EQ(j["nodes"][1]["behind_total"], 5);
  EXPECT_EQ(j["nodes"][1]["behind_by_origin"][kS2], 5);
  EXPECT_EQ(j["alerts_total"], 0);
  // Round-trips as text (what a script parses).
  EXPECT_FALSE(Json::parse(j.dump(), nullptr, false).is_discarded());
}

// --- member ---

Json member_json() {
  return Json{{"id", "8da1c398866a1b3abf0cebc7c7df5fd6"},
              {"card", "40001234"},
              {"name", "Ann Lee"},
              {"phone", "+4915100001"},
              {"home_store", kS1},
              {"status", "active"},
              {"tier", "silver"},
              {"points", {{"balance", 84}, {"rights_here", 0}, {"rights_by_node", {{kS1, 80}, {kS2, 4}}}}},
              {"wallet", {{"balance", 7000}, {"rights_here", 0}, {"rights_by_node", {{kS1, 4000}, {kHq, 3000}}}}},
              {"recent_ops", Json::array({Json{{"op", kS2 + ":7"}, {"origin", kS2}, {"seq", 7}, {"kind", "spend"},
                                                {"account", "wallet"}, {"amount", 3000}, {"hlc", "1.0"}},
                                           Json{{"op", kS1 + ":3"}, {"origin", kS1}, {"seq", 3}, {"kind", "move"},
                                                {"account", "wallet"}, {"amount", 3000}, {"target", kHq}}})}};
}

TEST(TuiMember, RightsPerNodeAreNamedAndSumToBalances) {
  std::map<std::string, std::string> names = {{kHq, "hq"}, {kS1, "store-1"}, {kS2, "store-2"}};
  Parsed<MemberView> m = parse_member(member_json(), names);
  ASSERT_TRUE(m.ok()) << m.error;
  ASSERT_EQ(m.value->rights.size(), 3u);
  std::int64_t points = 0, wallet = 0;
  for (const auto& r : m.value->rights) {
    points += r.points;
    wallet += r.wallet;
  }
  EXPECT_EQ(points, m.value->points_balance);
  EXPECT_EQ(wallet, m.value->wallet_balance);
  EXPECT_EQ(m.value->rights[0].node_name, "hq");
  EXPECT_EQ(m.value->rights[0].wallet, 3000);
  EXPECT_EQ(m.value->rights[1].node_name, "store-1");
  EXPECT_EQ(m.value->rights[1].points, 80);
  EXPECT_EQ(m.value->home_store, "store-1");

  std::string text = joined(member_lines(*m.value, 80));
  EXPECT_NE(text.find("Ann Lee"), std::string::npos) << text;
  EXPECT_NE(text.find("tier silver"), std::string::npos) << text;
  EXPECT_NE(text.find("wallet 70.00"), std::string::npos) << text;
  std::string store1_line = "  " + fit("store-1", 16) + " " + fit("80", 10, true) + " " + fit("40.00", 12, true);
  EXPECT_NE(text.find(store1_line), std::string::npos) << text;
  EXPECT_NE(text.find("store-2:7"), std::string::npos) << "ops show origin name and seq:\n" << text;
  EXPECT_NE(text.find("to hq"), std::string::npos) << text;
  for (const auto& l : member_lines(*m.value, 80)) EXPECT_EQ(l.size(), 80u) << l;
}

TEST(TuiMember, UnknownNodeIdsShowAShortIdAndGarbageIsAnError) {
  Parsed<MemberView> m = parse_member(member_json(), {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value->rights[0].node_name, "11111111");
  for (const Json& bad : {Json(), Json("x"), Json{{"id", "x"}}, Json{{"id", "x"}, {"points", 1}, {"wallet", {}}}}) {
    Parsed<MemberView> b = parse_member(bad, {});
    EXPECT_FALSE(b.ok()) << bad.dump();
    EXPECT_FALSE(b.error.empty());
  }
}

TEST(TuiMember, QueryIsClassifiedAsIdCardOrPhone) {
  EXPECT_EQ(classify_member_query("8da1c398866a1b3abf0cebc7c7df5fd6"), MemberQueryKind::kId);
  EXPECT_EQ(classify_member_query("40001234"), MemberQueryKind::kCard);
  EXPECT_EQ(classify_member_query("+4915100001"), MemberQueryKind::kPhone);
  EXPECT_EQ(classify_member_query("555123"), MemberQueryKind::kPhone);
  EXPECT_EQ(classify_member_query("Ann"), MemberQueryKind::kInvalid);
  EXPECT_EQ(classify_member_query("../../etc"), MemberQueryKind::kInvalid);
  EXPECT_EQ(classify_member_query(""), MemberQueryKind::kInvalid);
}

// --- alerts ---

TEST(TuiAlerts, NewestFirstWithCountsMostFrequentFirst) {
  Json a = {{"alerts", Json::array({Json{{"id", 1}, {"at_ms", kNow - 3000}, {"kind", "refused_spend"}, {"node", kS1}, {"message", "old"}},
                                    Json{{"id", 3}, {"at_ms", kNow}, {"kind", "bad_signature"}, {"node", kS2}, {"message", "newest"}},
                                    Json{{"id", 2}, {"at_ms", kNow - 1000}, {"kind", "refused_spend"}, {"node", kS1}, {"message", "middle"}}})},
            {"counts", {{"bad_signature", 1}, {"refused_spend", 2}}}};
  Parsed<AlertsView> v = parse_alerts(a);
  ASSERT_TRUE(v.ok()) << v.error;
  ASSERT_EQ(v.value->alerts.size(), 3u);
  EXPECT_EQ(v.value->alerts[0].message, "newest");
  EXPECT_EQ(v.value->alerts[1].message, "middle");
  EXPECT_EQ(v.value->alerts[2].message, "old");
  ASSERT_EQ(v.value->counts.size(), 2u);
  EXPECT_EQ(v.value->counts[0].first, "refused_spend");
  EXPECT_EQ(v.value->counts[0].second, 2u);

  std::map<std::string, std::string> names = {{kS1, "store-1"}, {kS2, "store-2"}};
  auto lines = alerts_lines(*v.value, names, "", 80);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_NE(lines[0].find("alerts 3"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("refused_spend 2"), std::string::npos) << lines[0];
  EXPECT_NE(lines[2].find("newest"), std::string::npos);
  EXPECT_NE(lines[2].find("store-2"), std::string::npos);
  auto filtered = alerts_lines(*v.value, names, "STORE-1", 80);
  EXPECT_EQ(filtered.size(), 4u);
  EXPECT_NE(alerts_lines(*v.value, names, "zzz", 80)[2].find("no alert matches"), std::string::npos);
}

TEST(TuiAlerts, CountsAreDerivedWhenMissingAndGarbageIsAnError) {
  Json a = {{"alerts", Json::array({Json{{"kind", "clock_skew"}}, 7, Json{{"kind", "clock_skew"}, {"at_ms", "x"}}})}};
  Parsed<AlertsView> v = parse_alerts(a);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value->alerts.size(), 2u);
  ASSERT_EQ(v.value->counts.size(), 1u);
  EXPECT_EQ(v.value->counts[0].second, 2u);
  for (const Json& bad : {Json(), Json("x"), Json{{"alerts", 5}}}) EXPECT_FALSE(parse_alerts(bad).ok()) << bad.dump();
}

TEST(TuiDetail, RecentErrorsListTheAlertsAboutThatNodeAndItsLastLinkError) {
  Snapshot s;
  s.node = hq_node({{kHq, 1}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 1}})})}};
  Overview o = must_build(s);
  AlertsView alerts = *parse_alerts(Json{{"alerts", Json::array({Json{{"id", 1}, {"at_ms", kNow}, {"kind", "bad_signature"},
                                                                      {"node", kS1}, {"message", "op fails its signature"}},
                                                                 Json{{"id", 2}, {"at_ms", kNow}, {"kind", "clock_skew"},
                                                                      {"node", kS2}, {"message", "not this one"}}})}})
                           .value;
  std::string text = joined(node_detail_lines(o, o.rows[1], &alerts, 100));
  EXPECT_NE(text.find("op fails its signature"), std::string::npos) << text;
  EXPECT_EQ(text.find("not this one"), std::string::npos) << text;
  EXPECT_NE(text.find("Link history"), std::string::npos) << text;
}

// --- HQ's view of its stores: their alerts, their contact while down ---

// GET /admin/v1/alerts at HQ: its own alert and two that store-1 reported over sync.
Json hq_alerts_with_store_alerts() {
  auto alert = [](std::uint64_t id, std::uint64_t at, const std::string& kind, const std::string& source,
                  const std::string& source_name, const std::string& message) {
    return Json{{"id", id},         {"at_ms", at},         {"kind", kind},         {"node", source},
                {"message", message}, {"source", source}, {"source_name", source_name}};
  };
  return Json{{"alerts", Json::array({alert(2, kNow - 1000, "refused_spend", kS1, "store-1", "spend of 30.00 refused"),
                                      alert(1, kNow - 2000, "refused_spend", kS1, "store-1", "spend of 5.00 refused"),
                                      alert(1, kNow - 3000, "clock_skew", kHq, "hq", "store-2 clock differs")})},
              {"counts", {{"refused_spend", 2}, {"clock_skew", 1}}},
              {"total", 3},
              {"by_source", Json::array({Json{{"node_id", kHq}, {"name", "hq"}, {"count", 1}},
                                         Json{{"node_id", kS1}, {"name", "store-1"}, {"count", 2}}})}};
}

TEST(TuiHqView, StoreAlertsAreCountedPerStoreInTheOverviewAndTheAlertsViewNamesTheStore) {
  Snapshot s;
  s.node = hq_node({{kHq, 5}});
  s.peers = {{"peers", Json::array({connected_peer(kS1, "store-1", {{kHq, 5}})})}};
  s.roster = roster3();
  s.alerts = hq_alerts_with_store_alerts();
  Overview o = must_build(s);
  EXPECT_EQ(o.alerts_total, 3u);
  EXPECT_NE(overview_header(o, "now")[1].find("alerts 3"), std::string::npos) << overview_header(o, "now")[1];
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->alerts, 2u);
  EXPECT_EQ(o.rows[0].alerts, 1u);  // hq's own
  // A wide screen has an ALERTS column; the selected row's summary says it at any width.
  std::string title = overview_title_line(120);
  std::size_t col = title.find("ALERTS");
  ASSERT_NE(col, std::string::npos) << title;
  EXPECT_EQ(overview_row_line(o, *s1, 120).substr(col, 6), "     2") << title << "\n" << overview_row_line(o, *s1, 120);
  EXPECT_EQ(overview_row_line(o, *row_named(o, "store-2"), 120).substr(col, 6), "     0");
  EXPECT_NE(selected_row_summary(o, *s1, 80).find("2 alerts raised there"), std::string::npos)
      << selected_row_summary(o, *s1, 80);
  EXPECT_EQ(overview_title_line(100).find("ALERTS"), std::string::npos) << "100 columns keep BEHIND BY ORIGIN";
  // --once: per node in text and JSON.
  std::string text = overview_text(o, "now");
  EXPECT_NE(text.find("alerts by node (held at hq):\n  hq: 1\n  store-1: 2\n"), std::string::npos) << text;
  Json j = overview_json(o, kNow);
  EXPECT_EQ(j["alerts_total"], 3);
  EXPECT_EQ(j["nodes"][1]["name"], "store-1");
  EXPECT_EQ(j["nodes"][1]["alerts"], 2);

  // The alerts view names the store each alert came from, and counts per store.
  Parsed<AlertsView> v = parse_alerts(s.alerts);
  ASSERT_TRUE(v.ok()) << v.error;
  auto lines = alerts_lines(*v.value, o.names, "", 100);
  EXPECT_NE(lines[0].find("from store-1 2, hq 1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("FROM"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2].find("store-1"), 15u) << lines[2];
  EXPECT_NE(lines[2].find("spend of 30.00 refused"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[4].find("hq"), 15u) << lines[4];
  // Filtering by the store shows only its alerts.
  auto only_s1 = alerts_lines(*v.value, o.names, "store-1", 100);
  EXPECT_EQ(only_s1.size(), 4u);
  // The store's detail lists the alerts it raised.
  std::string detail = joined(node_detail_lines(o, *s1, &*v.value, 100));
  EXPECT_NE(detail.find("2 alerts raised at store-1"), std::string::npos) << detail;
  EXPECT_NE(detail.find("spend of 5.00 refused"), std::string::npos) << detail;
}

TEST(TuiHqView, AStoreWhoseLinkIsDownShowsItsLastContactAndSinceWhenAndANeverSeenOneSaysSo) {
  Snapshot s;
  s.node = hq_node({{kHq, 5}});
  Json down = {{"name", "store-1"},   {"node_id", kS1},       {"role", "store"}, {"address", "127.0.0.1:40000"},
               {"direction", "inbound"}, {"state", "down"},   {"last_contact_ms", kNow - 95'000},
               {"down_since_ms", kNow - 90'000}, {"seen_since_start", true}, {"last_error", "peer hung up"},
               {"history", Json::array()}};
  Json never = {{"name", "store-2"}, {"node_id", kS2}, {"role", "store"}, {"state", "down"},
                {"last_contact_ms", nullptr}, {"down_since_ms", nullptr}, {"seen_since_start", false}};
  s.peers = {{"peers", Json::array({down, never})}};
  s.roster = roster3();
  s.alerts = no_alerts();
  Overview o = must_build(s);
  const NodeRow* s1 = row_named(o, "store-1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->link, "down");
  EXPECT_EQ(s1->last_contact_ms, kNow - 95'000);
  EXPECT_EQ(s1->down_since_ms, kNow - 90'000);
  std::string line = overview_row_line(o, *s1, 80);
  EXPECT_NE(line.find(" down "), std::string::npos) << line;
  EXPECT_NE(line.find("1m35"), std::string::npos) << "contact age:\n" << line;
  ASSERT_FALSE(s1->problems.empty());
  EXPECT_EQ(s1->problems[0], "no link to this node since " + format_clock(kNow - 90'000));
  std::string detail = joined(node_detail_lines(o, *s1, nullptr, 100));
  EXPECT_NE(detail.find("last contact 1m35 ago"), std::string::npos) << detail;
  EXPECT_NE(detail.find("link down since"), std::string::npos) << detail;
  EXPECT_NE(detail.find("(1m30)"), std::string::npos) << detail;

  const NodeRow* s2 = row_named(o, "store-2");
  ASSERT_NE(s2, nullptr);
  EXPECT_NE(overview_row_line(o, *s2, 80).find("never"), std::string::npos) << overview_row_line(o, *s2, 80);
  EXPECT_EQ(s2->problems[0], "no link to this node since hq started");
  EXPECT_NE(joined(node_detail_lines(o, *s2, nullptr, 100)).find("never heard from since hq started"), std::string::npos);
  Json j = overview_json(o, kNow);
  EXPECT_EQ(j["nodes"][1]["down_since_ms"], kNow - 90'000);
  EXPECT_EQ(j["nodes"][2]["seen_since_start"], false);
}

// --- formatting ---

TEST(TuiFormat, AgesSkewsAndMoney) {
  EXPECT_EQ(format_age(0), "0s");
  EXPECT_EQ(format_age(59'999), "59s");
  EXPECT_EQ(format_age(65'000), "1m05");
  EXPECT_EQ(format_age(2 * 3600'000 + 3 * 60'000), "2h03");
  EXPECT_EQ(format_age(3 * kDay + 4 * 3600'000), "3d04");
  EXPECT_EQ(format_skew(2), "+2ms");
  EXPECT_EQ(format_skew(-1500), "-1.5s");
  EXPECT_EQ(format_skew(5 * 60'000), "+5m");
  EXPECT_EQ(format_skew(std::numeric_limits<std::int64_t>::min()).substr(0, 1), "-");
  EXPECT_EQ(format_minor(12345), "123.45");
  EXPECT_EQ(format_minor(-5), "-0.05");
  EXPECT_EQ(format_minor(std::numeric_limits<std::int64_t>::min()), "-92233720368547758.08");
}

TEST(TuiFormat, FitCutsOnCharactersAndNeutralisesControlBytes) {
  EXPECT_EQ(fit("abc", 5), "abc  ");
  EXPECT_EQ(fit("abc", 5, true), "  abc");
  EXPECT_EQ(fit("abcdef", 4), "abc~");
  EXPECT_EQ(fit("a\x1b[2Jb", 6), "a?[2Jb");
  EXPECT_EQ(fit("Müller", 6), "Müller");     // 6 columns, 7 bytes
  EXPECT_EQ(fit("Müllerin", 5), "Müll~");
  EXPECT_EQ(fit("\xff\xfe", 2), "??");
}

}  // namespace
}  // namespace outpost::tui
