// Replication with real processes: HQ and three stores as separate outpostd processes on
// 127.0.0.1 (ephemeral ports), enrolled through the CLI. Covers the failure rules of
// docs/architecture.md 2 (every acknowledged op reaches HQ and nodes converge), 3 (no balance
// below zero while a store is cut off), 4 (kill -9 during sync loses nothing). Convergence is
// read through the CLI's --json output; waits are bounded polls, never timed assertions.
#include <gtest/gtest.h>

#include <thread>

#include "chain_harness.h"

namespace outpost::test {
namespace {

TEST(ReplicationTest, PartitionedStoreRefusesOverspendThenConvergesAfterHeal) {
  Chain chain;
  ASSERT_TRUE(chain.start(3));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 3));

  auto s1 = chain.pos(chain.store(1));
  auto r = s1.post("/v1/members", {{"request_id", rid("e")}, {"card", "40001234"}, {"name", "Ann"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  r = s1.post("/v1/members/40001234/topup", {{"request_id", rid("t")}, {"amount_minor", 10000}});
  ASSERT_EQ(r.status, 200) << r.describe();
  ASSERT_FALSE(chain.wait_converged().is_null()) << "the chain did not converge before the partition";

  // Cut store-3 off, through its own admin control.
  r = chain.admin(chain.store(3)).post("/admin/v1/links", {{"state", "down"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  auto s3 = chain.pos(chain.store(3));
  r = s3.post("/v1/members/40001234/spend", {{"request_id", rid("s")}, {"amount_minor", 3000}});
  ASSERT_EQ(r.status, 409) << "an offline store spent rights it does not hold: " << r.describe();
  EXPECT_EQ(r.json()["error"], "insufficient_rights");
  EXPECT_EQ(r.json()["rights_here"], 0);
  EXPECT_EQ(r.json()["balance"], 10000);
  EXPECT_EQ(r.json()["rights_request_tried"], false);
  // The refusal is an alert on the store that refused it (outpost-top's alert screen).
  Json alerts = chain.admin(chain.store(3)).get("/admin/v1/alerts").json();
  EXPECT_EQ(alerts["counts"].value("refused_spend", 0), 1) << alerts.dump();
  r = s3.post("/v1/members/40001234/earn", {{"request_id", rid("p")}, {"purchase_minor", 1200}});
  ASSERT_EQ(r.status, 200) << "offline earn must be served locally: " << r.describe();

  // On the connected side the rights broker moves rights from store-1 (through HQ) to store-2.
  auto s2 = chain.pos(chain.store(2));
  r = s2.post("/v1/members/40001234/spend", {{"request_id", rid("s")}, {"amount_minor", 3000}});
  ASSERT_EQ(r.status, 200) << "online spend should have been funded by the broker: " << r.describe();
  // An overspend of the whole chain's balance is refused even online.
  r = s2.post("/v1/members/40001234/spend", {{"request_id", rid("s")}, {"amount_minor", 8000}});
  ASSERT_EQ(r.status, 409) << r.describe();
  EXPECT_EQ(r.json()["rights_request_tried"], true);

  r = chain.admin(chain.store(3)).post("/admin/v1/links", {{"state", "up"}});
  ASSERT_EQ(r.status, 200);
  Json vv = chain.wait_converged();
  ASSERT_FALSE(vv.is_null()) << "the chain did not converge after healing";
  for (ChainNode* n : chain.all()) {
    Json m = member_at(*n, "40001234");
    ASSERT_FALSE(m.is_null()) << n->name;
    EXPECT_EQ(m["wallet"]["balance"], 7000) << n->name;
    EXPECT_EQ(m["points"]["balance"], 12) << n->name;
    for (auto& [node, rights] : m["wallet"]["rights_by_node"].items()) {
      EXPECT_GE(rights.get<std::int64_t>(), 0) << n->name << " sees negative rights at " << node;
    }
    auto v = n->node->cli({"log", "verify"});
    EXPECT_TRUE(v.exit.exited_with(0)) << n->name << ": " << v.describe();
  }
}

TEST(ReplicationTest, StoreKilledDuringSyncLosesNoAcknowledgedOp) {
  Chain chain;
  ASSERT_TRUE(chain.start(1));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 1));
  auto s1 = chain.pos(chain.store(1));
  auto r = s1.post("/v1/members", {{"request_id", rid("e")}, {"card", "40009999"}, {"name", "Cy"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  std::vector<std::string> acked;
  constexpr int kOps = 150;
  for (int i = 0; i < kOps; ++i) {
    std::string id = rid("k");
    r = s1.post("/v1/members/40009999/topup", {{"request_id", id}, {"amount_minor", 100}});
    ASSERT_EQ(r.status, 200) << r.describe();
    acked.push_back(id);
    if (i == kOps / 2) chain.store(1).node->kill9();  // mid-stream: HQ is still ingesting
    if (i == kOps / 2) {
      ASSERT_TRUE(chain.start_node(chain.store(1), "127.0.0.1:" + std::to_string(chain.hq().node->peer_port())));
      s1 = chain.pos(chain.store(1));
    }
  }
  Json vv = chain.wait_converged();
  ASSERT_FALSE(vv.is_null()) << "HQ and the restarted store did not converge";
  for (ChainNode* n : chain.all()) {
    Json m = member_at(*n, "40009999");
    EXPECT_EQ(m["wallet"]["balance"], 100 * kOps) << n->name << " lost acknowledged top-ups";
    auto v = n->node->cli({"log", "verify"});
    EXPECT_TRUE(v.exit.exited_with(0)) << n->name << ": " << v.describe();
  }
  // Repeating an acknowledged request after the crash returns the first answer.
  r = s1.post("/v1/members/40009999/topup", {{"request_id", acked.front()}, {"amount_minor", 100}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["replayed"], true);
}

// Regression: a running HQ kept the roster it loaded at start, so a store enrolled afterwards had
// every batch refused ("unknown origin") and a revocation did not take effect until a restart.
TEST(ReplicationTest, StoreEnrolledAndRevokedWhileHqRunsTakesEffectWithoutRestart) {
  Chain chain;
  ASSERT_TRUE(chain.start(1));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 1));
  ASSERT_TRUE(chain.enroll_store("store-2"));
  ASSERT_TRUE(chain.start_node(chain.store(2), chain.hq_peer()));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 2));

  auto s2 = chain.pos(chain.store(2));
  auto r = s2.post("/v1/members", {{"request_id", rid("e")}, {"card", "40007777"}, {"name", "Di"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  r = s2.post("/v1/members/40007777/topup", {{"request_id", rid("t")}, {"amount_minor", 500}});
  ASSERT_EQ(r.status, 200) << r.describe();
  Json vv = chain.wait_converged();
  ASSERT_FALSE(vv.is_null()) << "the store enrolled while HQ ran never converged with it";
  const std::string s2_origin = r.json()["op"].get<std::string>().substr(0, 32);
  ASSERT_EQ(vv.value(s2_origin, 0), 2) << vv.dump();
  Json m = member_at(chain.store(1), "40007777");
  EXPECT_EQ(m["wallet"]["balance"], 500) << "store-1 never got the new store's ops (relayed roster)";

  // Revoke store-2 after its seq 2 on the running HQ: its link ends and later ops stay out.
  auto rv = chain.hq().node->cli({"hq", "revoke", "store-2", "--after-seq", "2"});
  ASSERT_TRUE(rv.exit.exited_with(0)) << rv.describe();
  bool dropped = false;
  for (int i = 0; i < kConvergePolls && !dropped; ++i) {
    auto peers = chain.admin(chain.hq()).get("/admin/v1/node");
    dropped = peers.status == 200 && peers.json().value("links_up", 9) == 1;
    if (!dropped) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(dropped) << "HQ kept the revoked store's link open";
  (void)s2.post("/v1/members/40007777/topup", {{"request_id", rid("t")}, {"amount_minor", 100}});
  // A later op of store-1 reaching HQ shows HQ is syncing; store-2's seq 3 must not be there.
  auto s1 = chain.pos(chain.store(1));
  r = s1.post("/v1/members/40007777/topup", {{"request_id", rid("t")}, {"amount_minor", 50}});
  ASSERT_EQ(r.status, 200) << r.describe();
  const std::string s1_origin = r.json()["op"].get<std::string>().substr(0, 32);
  const std::uint64_t s1_seq = std::stoull(r.json()["op"].get<std::string>().substr(33));
  Json hq_vv;
  for (int i = 0; i < kConvergePolls; ++i) {
    hq_vv = chain.version_vector(chain.hq());
    if (hq_vv.value(s1_origin, std::uint64_t{0}) >= s1_seq) break;
    std::this_thread::sleep_for(kPoll);
  }
  ASSERT_GE(hq_vv.value(s1_origin, std::uint64_t{0}), s1_seq) << hq_vv.dump();
  EXPECT_EQ(hq_vv.value(s2_origin, 0), 2) << "HQ took an op of a revoked store past its cut-off";
  auto v = chain.hq().node->cli({"log", "verify"});
  EXPECT_TRUE(v.exit.exited_with(0)) << v.describe();
}

// Program rules are HQ-signed documents that travel with sync (docs/program-rules.md): HQ signs
// them while it runs, connected stores put them in force within a sync tick, a store that was
// cut off keeps its old rules (and keeps serving) until its link is back.
TEST(ReplicationTest, RulesSignedAtARunningHqReachEveryStoreAndDecideTheEarnRate) {
  Chain chain;
  ASSERT_TRUE(chain.start(2));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 2));
  auto r = chain.admin(chain.store(2)).post("/admin/v1/links", {{"state", "down"}});
  ASSERT_EQ(r.status, 200) << r.describe();

  const std::string file = chain.hq().node->dir() + "/rules.toml";
  write_file(file, "version = 5\nunit_minor = 100\nwindow_months = 6\n\n[[tier]]\nname = \"member\"\n"
                   "threshold_minor = 0\npoints_per_unit = 10\n");
  auto signed_rules = chain.hq().node->cli({"--json", "hq", "rules", file});
  ASSERT_TRUE(signed_rules.exit.exited_with(0)) << signed_rules.describe();
  // The same version again, and a broken file, are refused with exit 2 and change nothing.
  EXPECT_TRUE(chain.hq().node->cli({"hq", "rules", file}).exit.exited_with(2));
  const std::string bad = chain.hq().node->dir() + "/bad.toml";
  write_file(bad, "version = 6\nunit_minor = 100\nwindow_months = 6\n");
  auto refused = chain.hq().node->cli({"hq", "rules", bad});
  EXPECT_TRUE(refused.exit.exited_with(2)) << refused.describe();
  EXPECT_NE(refused.err.find("tier"), std::string::npos) << refused.err;

  auto rules_at = [&](ChainNode& n) {
    auto res = chain.admin(n).get("/admin/v1/node");
    return res.status == 200 ? res.json().value("rules_version", 0) : -1;
  };
  bool store1_has_them = false;
  for (int i = 0; i < kConvergePolls && !store1_has_them; ++i) {
    store1_has_them = rules_at(chain.hq()) == 5 && rules_at(chain.store(1)) == 5;
    if (!store1_has_them) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(store1_has_them) << "HQ " << rules_at(chain.hq()) << ", store-1 " << rules_at(chain.store(1));
  EXPECT_EQ(rules_at(chain.store(2)), 1) << "an offline store cannot have received them";

  // A purchase of 12.34 earns 10 points per unit at store-1 (signed rules), 1 per unit at store-2.
  auto s1 = chain.pos(chain.store(1));
  r = s1.post("/v1/members", {{"request_id", rid("e")}, {"card", "40005555"}, {"name", "Di"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  r = s1.post("/v1/members/40005555/earn", {{"request_id", rid("p")}, {"purchase_minor", 1234}});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["amount"], 120) << r.describe();
  auto s2 = chain.pos(chain.store(2));
  r = s2.post("/v1/members", {{"request_id", rid("e")}, {"card", "40006666"}, {"name", "Ed"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  r = s2.post("/v1/members/40006666/earn", {{"request_id", rid("p")}, {"purchase_minor", 1234}});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["amount"], 12) << r.describe();

  // Healed, store-2 gets the rules, keeps the points it awarded (they are in the signed op) and
  // shows the rules' source.
  r = chain.admin(chain.store(2)).post("/admin/v1/links", {{"state", "up"}});
  ASSERT_EQ(r.status, 200);
  ASSERT_FALSE(chain.wait_converged().is_null());
  bool store2_has_them = false;
  for (int i = 0; i < kConvergePolls && !store2_has_them; ++i) {
    store2_has_them = rules_at(chain.store(2)) == 5;
    if (!store2_has_them) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(store2_has_them);
  auto shown = chain.store(2).node->cli({"--json", "rules", "show"});
  ASSERT_TRUE(shown.exit.exited_with(0)) << shown.describe();
  Json j = Json::parse(shown.out, nullptr, false);
  EXPECT_EQ(j["source"], "hq") << shown.out;
  EXPECT_EQ(j["tiers"][0]["points_per_unit"], 10) << shown.out;
  for (ChainNode* n : chain.all()) {
    EXPECT_EQ(member_at(*n, "40006666")["points"]["balance"], 12) << n->name;
    EXPECT_EQ(member_at(*n, "40005555")["points"]["balance"], 120) << n->name;
  }
}

// Failure rule 7 (docs/architecture.md) with real processes: a store restored from an old backup
// while HQ is unreachable refuses to sign (it could reuse a seq HQ holds); once HQ is back it gets
// its own newer ops back, then continues after them: no equivocation anywhere, balances intact.
TEST(ReplicationTest, StoreRestoredFromAnOldBackupSignsNothingUntilItHasItsOwnOpsBack) {
  Chain chain;
  ASSERT_TRUE(chain.start(1));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 1));
  auto s1 = chain.pos(chain.store(1));
  auto r = s1.post("/v1/members", {{"request_id", rid("e")}, {"card", "40008888"}, {"name", "Fay"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  r = s1.post("/v1/members/40008888/topup", {{"request_id", rid("t")}, {"amount_minor", 1000}});
  ASSERT_EQ(r.status, 200) << r.describe();
  const std::string backup = chain.store(1).node->dir() + "/store-1.backup";
  auto b = chain.store(1).node->cli({"--json", "backup", "--out", backup});  // while outpostd runs
  ASSERT_TRUE(b.exit.exited_with(0)) << b.describe();
  EXPECT_EQ(Json::parse(b.out)["own_seq"], 2) << b.out;
  const std::string late = rid("t");
  r = s1.post("/v1/members/40008888/topup", {{"request_id", late}, {"amount_minor", 500}});
  ASSERT_EQ(r.status, 200) << r.describe();
  ASSERT_FALSE(chain.wait_converged().is_null());

  // Restore is refused while outpostd runs on the dir, and changes nothing.
  auto busy = chain.store(1).node->cli({"restore", backup});
  EXPECT_TRUE(busy.exit.exited_with(3)) << busy.describe();
  EXPECT_NE(busy.err.find("outpostd"), std::string::npos) << busy.err;

  // HQ goes down; the store is stopped, restored to seq 2 and started again.
  ASSERT_TRUE(chain.hq().node->stop());
  ASSERT_TRUE(chain.store(1).node->stop());
  auto restored = chain.store(1).node->cli({"--json", "restore", backup});
  ASSERT_TRUE(restored.exit.exited_with(0)) << restored.describe();
  ASSERT_TRUE(chain.start_node(chain.store(1), chain.hq_peer()));
  s1 = chain.pos(chain.store(1));
  r = s1.post("/v1/members/40008888/topup", {{"request_id", rid("t")}, {"amount_minor", 200}});
  ASSERT_EQ(r.status, 503) << "a restored store signed before hearing from HQ: " << r.describe();
  EXPECT_NE(r.json().value("message", "").find("restored from a backup"), std::string::npos) << r.describe();
  auto fence = chain.store(1).node->cli({"--json", "fence", "show"});
  ASSERT_TRUE(fence.exit.exited_with(0)) << fence.describe();
  EXPECT_TRUE(Json::parse(fence.out)["fenced"].get<bool>()) << fence.out;

  // HQ is back: the store learns it held seq 3 of its own, gets it back and continues at 4.
  ASSERT_TRUE(chain.start_node(chain.hq(), ""));
  bool served = false;
  for (int i = 0; i < kConvergePolls && !served; ++i) {
    r = s1.post("/v1/members/40008888/topup", {{"request_id", "after-restore"}, {"amount_minor", 200}});
    served = r.status == 200;
    if (!served) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(served) << "the restored store never resumed: " << r.describe();
  EXPECT_EQ(r.json()["op"].get<std::string>().substr(33), "4") << r.describe();
  // The request acknowledged after the backup is a replay, not a second top-up.
  r = s1.post("/v1/members/40008888/topup", {{"request_id", late}, {"amount_minor", 500}});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json()["replayed"], true) << r.describe();
  ASSERT_FALSE(chain.wait_converged().is_null());
  for (ChainNode* n : chain.all()) {
    EXPECT_EQ(member_at(*n, "40008888")["wallet"]["balance"], 1700) << n->name;
    auto v = n->node->cli({"log", "verify"});
    EXPECT_TRUE(v.exit.exited_with(0)) << n->name << ": " << v.describe();
    Json alerts = chain.admin(*n).get("/admin/v1/alerts").json();
    EXPECT_EQ(alerts["counts"].value("equivocation", 0), 0) << n->name << ": " << alerts.dump();
  }
  Json alerts = chain.admin(chain.store(1)).get("/admin/v1/alerts").json();
  EXPECT_EQ(alerts["counts"].value("own_seq_behind", 0), 1) << alerts.dump();
}

// The rebalancer with real processes: a member tops up at store-1, then shops at store-2; with
// idle rights moving at once (idle_ms = 0), store-1 hands her wallet rights to store-2, which can
// then serve her spend while it is cut off from everyone.
TEST(ReplicationTest, RebalancerMovesIdleRightsToWhereTheMemberShopsSoAnOfflineSpendThereSucceeds) {
  Chain chain;
  chain.extra_config = "[rebalance]\ninterval_ms = 200\nidle_ms = 0\n";
  ASSERT_TRUE(chain.start(2));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 2));
  auto s1 = chain.pos(chain.store(1));
  auto r = s1.post("/v1/members", {{"request_id", rid("e")}, {"card", "40003333"}, {"name", "Hal"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  r = s1.post("/v1/members/40003333/topup", {{"request_id", rid("t")}, {"amount_minor", 5000}});
  ASSERT_EQ(r.status, 200) << r.describe();
  ASSERT_FALSE(chain.wait_converged().is_null());
  auto s2 = chain.pos(chain.store(2));
  r = s2.post("/v1/members/40003333/earn", {{"request_id", rid("p")}, {"purchase_minor", 1500}});
  ASSERT_EQ(r.status, 200) << r.describe();

  bool moved = false;
  Json m;
  for (int i = 0; i < kConvergePolls && !moved; ++i) {
    auto res = chain.admin(chain.store(2)).get("/admin/v1/members/40003333");
    if (res.status == 200) m = res.json();
    moved = res.status == 200 && m["wallet"].value("rights_here", 0) == 5000;
    if (!moved) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(moved) << "store-2 never received store-1's idle rights: " << m.dump();

  r = chain.admin(chain.store(2)).post("/admin/v1/links", {{"state", "down"}});
  ASSERT_EQ(r.status, 200);
  r = s2.post("/v1/members/40003333/spend", {{"request_id", rid("s")}, {"amount_minor", 4000}});
  ASSERT_EQ(r.status, 200) << "an offline store could not spend rights the rebalancer gave it: " << r.describe();
  r = chain.admin(chain.store(2)).post("/admin/v1/links", {{"state", "up"}});
  ASSERT_EQ(r.status, 200);
  ASSERT_FALSE(chain.wait_converged().is_null());
  for (ChainNode* n : chain.all()) {
    Json mm = member_at(*n, "40003333");
    EXPECT_EQ(mm["wallet"]["balance"], 1000) << n->name;
    for (auto& [node, rights] : mm["wallet"]["rights_by_node"].items()) {
      EXPECT_GE(rights.get<std::int64_t>(), 0) << n->name << " sees negative rights at " << node;
    }
    auto v = n->node->cli({"log", "verify"});
    EXPECT_TRUE(v.exit.exited_with(0)) << n->name << ": " << v.describe();
  }
}

// HQ's daemon signs tree head sets on its own ([checkpoint] interval_ms) and sync carries them to
// the stores, so that a store's own audit bundle proves what HQ holds of every log.
TEST(ReplicationTest, HqSignsTreeHeadSetsWhileRunningAndStoresCarryThemIntoTheirAuditBundles) {
  Chain chain;
  chain.extra_config = "[checkpoint]\ninterval_ms = 200\n";
  ASSERT_TRUE(chain.start(2));
  ASSERT_TRUE(chain.wait_links(chain.hq(), 2));
  auto s1 = chain.pos(chain.store(1));
  auto r = s1.post("/v1/members", {{"request_id", rid("e")}, {"card", "40004444"}, {"name", "Ida"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  r = s1.post("/v1/members/40004444/topup", {{"request_id", rid("t")}, {"amount_minor", 900}});
  ASSERT_EQ(r.status, 200) << r.describe();
  const std::string s1_origin = r.json()["op"].get<std::string>().substr(0, 32);
  ASSERT_FALSE(chain.wait_converged().is_null());

  // store-2 holds a set (from HQ, over sync) that covers both of store-1's ops.
  Json cps;
  bool carried = false;
  for (int i = 0; i < kConvergePolls && !carried; ++i) {
    auto res = chain.admin(chain.store(2)).get("/admin/v1/checkpoints");
    if (res.status == 200) cps = res.json();
    carried = res.status == 200 && cps["tree_head_set"].is_object() &&
              cps["tree_head_set"]["tree_size_by_origin"].value(s1_origin, 0) == 2;
    if (!carried) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(carried) << "store-2 never got HQ's tree head set covering store-1's ops: " << cps.dump();
  EXPECT_TRUE(cps["checkpoints"].empty()) << "stores receive the set, not per-origin checkpoints";

  // store-2's own audit bundle verifies clean from the root key alone, completeness proven.
  const std::string bundle = chain.store(2).node->dir() + "/bundle";
  auto ex = chain.store(2).node->cli({"export-audit", "--out", bundle});
  ASSERT_TRUE(ex.exit.exited_with(0)) << ex.describe();
  auto roster = chain.hq().node->cli({"--json", "roster", "show"});
  ASSERT_TRUE(roster.exit.exited_with(0)) << roster.describe();
  const std::string root_hex = Json::parse(roster.out)["root_public_key"].get<std::string>();
  auto v = run_command(OUTPOST_AUDIT_CLI, {"verify", bundle, "--root", root_hex, "--json"});
  ASSERT_TRUE(v.exit.exited_with(0)) << v.describe();
  Json report = Json::parse(v.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << v.out;
  ASSERT_TRUE(report["tree_head"].is_object()) << "completeness not proven: " << v.out;
  EXPECT_GE(report["tree_head"]["ops"].get<std::uint64_t>(), 2u) << v.out;
}

}  // namespace
}  // namespace outpost::test
