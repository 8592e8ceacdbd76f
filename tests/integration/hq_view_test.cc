// HQ's view of its stores with real outpostd processes on 127.0.0.1 (issue 11, items 8 and 9):
// a store's alerts raised while it is cut off reach HQ's admin API once its link returns; a
// peer's last contact advances on keepalives alone; a store whose link drops stays listed at HQ
// as down with its last contact and since when, and so does every roster node after HQ restarts.
// Waits are bounded polls; nothing asserts on durations.
#include <gtest/gtest.h>

#include <thread>

#include "chain_harness.h"

#ifndef OUTPOST_TOP
#error "OUTPOST_TOP (path of outpost-top) must be defined by the build"
#endif

namespace outpost::test {
namespace {

// The entry for `node_id` in HQ's GET /admin/v1/peers, or null.
Json peer_entry(Chain& chain, const std::string& node_id) {
  auto r = chain.admin(chain.hq()).get("/admin/v1/peers");
  if (r.status != 200) return Json();
  const Json body = r.json();
  for (const auto& p : body["peers"]) {
    if (p.value("node_id", "") == node_id) return p;
  }
  return Json();
}

// Polls (bounded) until `pred` holds for HQ's entry of `node_id`; returns the entry or null.
template <typename Pred>
Json wait_peer(Chain& chain, const std::string& node_id, Pred pred) {
  for (int i = 0; i < kConvergePolls; ++i) {
    Json p = peer_entry(chain, node_id);
    if (!p.is_null() && pred(p)) return p;
    std::this_thread::sleep_for(kPoll);
  }
  return Json();
}

std::string node_id_of(Chain& chain, ChainNode& n) {
  return chain.admin(n).get("/admin/v1/node").json().value("node_id", "");
}

std::uint64_t u64(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned() ? j[key].get<std::uint64_t>() : 0;
}

TEST(HqViewTest, RefusedSpendAtACutOffStoreReachesHqsAdminApiWhenTheLinkReturns) {
  Chain chain;
  ASSERT_TRUE(chain.start(1));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 1));
  const std::string s1 = node_id_of(chain, chain.store(1));
  ASSERT_EQ(s1.size(), 32u);
  // The member's money sits at HQ: store-1 holds no rights for it.
  auto hq_pos = chain.pos(chain.hq());
  ASSERT_EQ(
      hq_pos.post("/v1/members", {{"request_id", rid("e")}, {"card", "40005555"}, {"name", "Eve"}})
          .status,
      200);
  ASSERT_EQ(
      hq_pos.post("/v1/members/40005555/topup", {{"request_id", rid("t")}, {"amount_minor", 5000}})
          .status,
      200);
  ASSERT_FALSE(chain.wait_converged().is_null());

  ASSERT_EQ(chain.admin(chain.store(1)).post("/admin/v1/links", {{"state", "down"}}).status, 200);
  auto r =
      chain.pos(chain.store(1))
          .post("/v1/members/40005555/spend", {{"request_id", rid("s")}, {"amount_minor", 3000}});
  ASSERT_EQ(r.status, 409) << r.describe();
  // HQ cannot know yet: the store is cut off.
  Json at_hq = chain.admin(chain.hq()).get("/admin/v1/alerts?source=" + s1).json();
  EXPECT_EQ(at_hq["counts"].value("refused_spend", 0), 0) << at_hq.dump();

  ASSERT_EQ(chain.admin(chain.store(1)).post("/admin/v1/links", {{"state", "up"}}).status, 200);
  Json alerts;
  for (int i = 0; i < kConvergePolls; ++i) {
    alerts = chain.admin(chain.hq()).get("/admin/v1/alerts?source=" + s1).json();
    if (alerts["counts"].value("refused_spend", 0) >= 1) break;
    std::this_thread::sleep_for(kPoll);
  }
  ASSERT_EQ(alerts["counts"].value("refused_spend", 0), 1)
      << "HQ never got store-1's alert: " << alerts.dump();
  const Json& a = alerts["alerts"][0];
  EXPECT_EQ(a["source"], s1) << a.dump();
  EXPECT_EQ(a["source_name"], "store-1");
  EXPECT_EQ(a["kind"], "refused_spend");
  EXPECT_EQ(a["node"], s1) << a.dump();  // what it is about: store-1 itself
  // The unfiltered list and the per-node summary name the store too.
  Json all = chain.admin(chain.hq()).get("/admin/v1/alerts").json();
  bool listed = false;
  for (const auto& s : all["by_source"])
    listed = listed || (s["node_id"] == s1 && s["name"] == "store-1" && s["count"] == 1);
  EXPECT_TRUE(listed) << all.dump();
  EXPECT_GE(all["total"].get<int>(), 1);
  // A malformed source is refused after the token check, and an unknown token before it.
  EXPECT_EQ(chain.admin(chain.hq()).get("/admin/v1/alerts?source=zz").status, 400);
  EXPECT_EQ(
      HttpClient(chain.hq().node->admin_port(), "nope").get("/admin/v1/alerts?source=zz").status,
      401);
  // Sent once: a reconnect does not duplicate it.
  ASSERT_EQ(chain.admin(chain.store(1)).post("/admin/v1/links", {{"state", "down"}}).status, 200);
  ASSERT_EQ(chain.admin(chain.store(1)).post("/admin/v1/links", {{"state", "up"}}).status, 200);
  ASSERT_TRUE(chain.wait_links(chain.hq(), 1));
  ASSERT_FALSE(chain.wait_converged().is_null());
  alerts = chain.admin(chain.hq()).get("/admin/v1/alerts?source=" + s1).json();
  EXPECT_EQ(alerts["alerts"].size(), 1u) << alerts.dump();
}

TEST(HqViewTest, IdleStoresContactAdvancesOnKeepalivesAndAKilledStoreStaysListedAsDown) {
  Chain chain;
  chain.extra_config = "[link]\nkeepalive_ms = 200\n";
  ASSERT_TRUE(chain.start(1));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 1));
  const std::string s1 = node_id_of(chain, chain.store(1));
  Json first = wait_peer(chain, s1, [](const Json& p) { return p["state"] == "connected"; });
  ASSERT_FALSE(first.is_null()) << s1 << " " << chain.admin(chain.hq()).get("/admin/v1/peers").body;
  const std::uint64_t contact0 = u64(first, "last_contact_ms");
  ASSERT_GT(contact0, 0u);
  // No op moves; only keepalives cross the link.
  Json later = wait_peer(
      chain, s1, [&](const Json& p) { return u64(p, "last_contact_ms") >= contact0 + 1000; });
  ASSERT_FALSE(later.is_null()) << "an idle linked store's last contact never advanced: "
                                << peer_entry(chain, s1).dump();
  const std::uint64_t contact1 = u64(later, "last_contact_ms");

  chain.store(1).node->kill9();
  Json down = wait_peer(chain, s1, [](const Json& p) { return p["state"] == "down"; });
  ASSERT_FALSE(down.is_null()) << "HQ no longer lists the killed store: "
                               << chain.admin(chain.hq()).get("/admin/v1/peers").body;
  EXPECT_EQ(down["name"], "store-1");
  EXPECT_EQ(down["direction"], "inbound");
  EXPECT_GE(u64(down, "last_contact_ms"), contact1) << down.dump();
  EXPECT_GE(u64(down, "down_since_ms"), u64(down, "last_contact_ms")) << down.dump();
  EXPECT_EQ(down["seen_since_start"], true);

  // outpost-top at HQ shows it: down, with its last contact and since when.
  auto top = run_command(OUTPOST_TOP, {"--once", "--json", "--admin",
                                       "127.0.0.1:" + std::to_string(chain.hq().node->admin_port()),
                                       "--token", chain.hq().admin_token});
  ASSERT_TRUE(top.finished && top.exit.exited_with(0)) << top.describe();
  Json j = Json::parse(top.out, nullptr, false);
  bool shown = false;
  for (const auto& n : j["nodes"]) {
    if (n["node_id"] != s1) continue;
    shown = true;
    EXPECT_EQ(n["link"], "down") << n.dump();
    EXPECT_EQ(n["last_contact_ms"], down["last_contact_ms"]) << n.dump();
    EXPECT_EQ(n["down_since_ms"], down["down_since_ms"]) << n.dump();
  }
  EXPECT_TRUE(shown) << top.out;
}

TEST(HqViewTest, AfterARestartHqListsEveryRosterNodeWithItsPersistedLastContactOrNeverSeen) {
  Chain chain;
  ASSERT_TRUE(chain.start(1));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 1));
  ASSERT_TRUE(chain.enroll_store("store-2"));  // enrolled, never started
  const std::string s1 = node_id_of(chain, chain.store(1));
  Json connected = wait_peer(chain, s1, [](const Json& p) { return p["state"] == "connected"; });
  ASSERT_FALSE(connected.is_null())
      << s1 << " " << chain.admin(chain.hq()).get("/admin/v1/peers").body;

  chain.store(1).node->kill9();
  Json down = wait_peer(chain, s1, [](const Json& p) { return p["state"] == "down"; });
  ASSERT_FALSE(down.is_null());
  ASSERT_TRUE(chain.hq().node->stop());
  ASSERT_TRUE(chain.hq().node->start());

  Json after = wait_peer(chain, s1, [](const Json& p) { return p["state"] == "down"; });
  ASSERT_FALSE(after.is_null()) << "a restarted HQ does not list store-1: "
                                << chain.admin(chain.hq()).get("/admin/v1/peers").body;
  EXPECT_EQ(after["name"], "store-1");
  EXPECT_EQ(after["seen_since_start"], false);
  EXPECT_EQ(after["last_contact_ms"], down["last_contact_ms"]) << after.dump();
  EXPECT_EQ(after["down_since_ms"], down["down_since_ms"]) << after.dump();
  // store-2 is in the roster but never linked: listed, never heard from.
  auto peers = chain.admin(chain.hq()).get("/admin/v1/peers").json();
  bool never = false;
  for (const auto& p : peers["peers"]) {
    if (p.value("name", "") != "store-2") continue;
    never =
        p["state"] == "down" && p["last_contact_ms"].is_null() && p["seen_since_start"] == false;
  }
  EXPECT_TRUE(never) << peers.dump();
}

}  // namespace
}  // namespace outpost::test
