// outpostd at HQ with [analytics] (docs/analytics.md, "Running it"): the daemon starts and serves
// while ClickHouse is down, and once ClickHouse is up every op HQ holds reaches it, once, with an
// alert for the backlog it found. Polls are bounded; nothing asserts on durations.
#include <gtest/gtest.h>

#include <thread>

#include "clickhouse_harness.h"
#include "outpostd_harness.h"

namespace outpost::test {
namespace {

TEST(ClickHouseDaemon, HqStreamsItsOpsOnceClickHouseIsUp) {
  ClickHouseServer ch;
  // Learn the server's port first, then take it down: outpostd starts against a dead endpoint.
  ASSERT_TRUE(ch.start());
  ch.kill();
  NodeOptions options;
  options.name = "hq";
  options.role = "hq";
  options.hq_init = true;
  options.extra_config =
      "[analytics]\nclickhouse_url = \"http://" + ch.endpoint().to_string() +
      "\"\ndatabase = \"outpost_daemon\"\nbatch_ops = 2\nbehind_alert_ops = 1\nidle_ms = 20\n";
  OutpostNode hq(options);
  ASSERT_TRUE(hq.init());
  ASSERT_TRUE(hq.start());
  HttpClient pos = hq.pos_client();
  auto e = pos.post("/v1/members", {{"request_id", "r1"}, {"card", "42000001"}, {"name", "Ann"}});
  ASSERT_EQ(e.status, 200) << e.describe();
  const std::string member = e.json().value("member", "");
  for (int i = 0; i < 3; ++i) {
    auto r = pos.post("/v1/members/" + member + "/earn",
                      {{"request_id", "e" + std::to_string(i)}, {"purchase_minor", 1000 + i}});
    ASSERT_EQ(r.status, 200) << r.describe();
  }
  auto status = pos.get("/v1/status");
  ASSERT_EQ(status.status, 200);
  const std::uint64_t ops = status.json().value("ops", std::uint64_t{0});
  ASSERT_GE(ops, 4u);

  ASSERT_TRUE(ch.start());
  const std::string want = std::to_string(ops) + "\t" + std::to_string(ops) + "\n";
  const std::string sql =
      "SELECT count(), uniqExact(origin, seq) FROM outpost_daemon.outpost_ops FINAL";
  std::string got;
  // Bounded: the sink's retry backoff tops out at 30 s; 90 s of polls covers a few retries.
  for (int i = 0; i < 900 && got != want; ++i) {
    got = ch.query(sql);
    if (got != want) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(got, want) << "outpostd stderr:\n" << hq.process()->stderr_text();
  EXPECT_EQ(ch.query("SELECT sum(spend_minor) FROM outpost_daemon.outpost_activity FINAL"),
            "3003\n");
  // Every op was there before ClickHouse came up, so the first batch of 2 left a backlog above 1.
  EXPECT_NE(hq.process()->stderr_text().find("analytics: falling behind"), std::string::npos);
  auto alerts = hq.admin_client().get("/admin/v1/alerts");
  ASSERT_EQ(alerts.status, 200) << alerts.describe();
  EXPECT_EQ(alerts.json()["counts"].value("analytics_behind", 0), 1) << alerts.body;
  ASSERT_TRUE(hq.stop());
}

}  // namespace
}  // namespace outpost::test
