// Member status and PIN rules (docs/api.md, "Member status" and "PIN") through real outpostd
// processes and the real `outpost` CLI: a blocked or closed member moves no value by API or CLI,
// closing needs a zero wallet, a closed member is not reopened by accident; the CLI does not spend
// past a PIN and records an operator's override in the op; a PIN is changed only with the old one
// or by an admin; wrong PINs at two stores add up and lock the wallet at both; a block made at HQ
// reaches a cut-off store when its link returns; only an op's origin reverses it.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>

#include "chain_harness.h"

namespace outpost::test {
namespace {

Json ok(const HttpResult& r) {
  EXPECT_EQ(r.status, 200) << r.describe();
  Json j = r.json();
  return j.is_discarded() ? Json::object() : j;
}

testing::AssertionResult IsError(const HttpResult& r, int status, const std::string& code) {
  Json j = r.json();
  if (r.status != status || j.is_discarded() || j.value("error", "") != code ||
      j.value("message", "").empty()) {
    return testing::AssertionFailure()
           << "want " << status << " " << code << ", got " << r.describe();
  }
  return testing::AssertionSuccess();
}

class MemberRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(node_.init());
    ASSERT_TRUE(node_.start());
    member_ = ok(pos().post("/v1/members",
                            {{"request_id", "enroll"}, {"card", "42000001"}, {"name", "Ann"}}))
                  .value("member", "");
    ok(pos().post(path("topup"), {{"request_id", "t0"}, {"amount_minor", 1000}}));
    ok(pos().post(path("earn"), {{"request_id", "e0"}, {"purchase_minor", 5000}}));
  }
  HttpClient pos() { return node_.pos_client(); }
  std::string path(const std::string& action) { return "/v1/members/" + member_ + "/" + action; }
  Json member() { return ok(pos().get("/v1/members/" + member_)); }
  std::uint64_t ops() { return ok(pos().get("/v1/status")).value("ops", std::uint64_t{0}); }
  HttpResult set_status(const std::string& status, const std::string& rid, bool reopen = false) {
    Json body{{"request_id", rid}, {"status", status}};
    if (reopen) body["reopen"] = true;
    return pos().post(path("profile"), body);
  }
  // Every value-moving request, each refused with `code` and nothing written.
  void ExpectEveryValueMoveRefused(const std::string& code) {
    const Json before = member();
    const auto n = ops();
    EXPECT_TRUE(IsError(
        pos().post(path("earn"), {{"request_id", "x-earn"}, {"purchase_minor", 100}}), 409, code));
    EXPECT_TRUE(IsError(pos().post(path("redeem"), {{"request_id", "x-redeem"}, {"points", 1}}),
                        409, code));
    EXPECT_TRUE(IsError(pos().post(path("topup"), {{"request_id", "x-topup"}, {"amount_minor", 1}}),
                        409, code));
    EXPECT_TRUE(IsError(pos().post(path("spend"), {{"request_id", "x-spend"}, {"amount_minor", 1}}),
                        409, code));
    EXPECT_TRUE(IsError(pos().post("/v1/ops/" + topup_op_ + "/reverse", {{"request_id", "x-rev"}}),
                        409, code));
    for (const char* cmd : {"earn", "redeem", "topup", "spend"}) {
      const char* flag = std::string(cmd) == "earn"     ? "--purchase"
                         : std::string(cmd) == "redeem" ? "--points"
                                                        : "--amount";
      auto r = node_.cli({cmd, "42000001", flag, "1"});
      EXPECT_TRUE(r.exit.exited_with(1)) << cmd << ": " << r.describe();
      EXPECT_NE(r.err.find(code == "member_blocked" ? "is blocked" : "is closed"),
                std::string::npos)
          << r.describe();
    }
    EXPECT_EQ(ops(), n);
    EXPECT_EQ(member(), before);
  }

  OutpostNode node_;
  std::string member_;
  std::string topup_op_;
};

// Regression: status was a label; a blocked member could still earn, redeem, top up and spend.
TEST_F(MemberRulesTest, BlockedMemberMovesNoValueByApiOrCliButGetsARefund) {
  topup_op_ =
      ok(pos().post(path("topup"), {{"request_id", "t1"}, {"amount_minor", 200}})).value("op", "");
  const std::string spend_op =
      ok(pos().post(path("spend"), {{"request_id", "s1"}, {"amount_minor", 50}})).value("op", "");
  ok(set_status("blocked", "block"));
  ExpectEveryValueMoveRefused("member_blocked");
  // Undoing a spend gives the member's money back: allowed while blocked.
  Json refund = ok(pos().post("/v1/ops/" + spend_op + "/reverse", {{"request_id", "refund"}}));
  EXPECT_EQ(refund["wallet"].value("balance", -1), 1200);
  ok(set_status("active", "unblock"));
  ok(pos().post(path("spend"), {{"request_id", "after"}, {"amount_minor", 1}}));
}

// Regression: a member with money in the wallet could be closed, and a closed one reopened by any
// profile update.
TEST_F(MemberRulesTest, ClosingNeedsAZeroWalletAndAClosedMemberIsReopenedOnlyOnPurpose) {
  topup_op_ =
      ok(pos().post(path("topup"), {{"request_id", "t1"}, {"amount_minor", 200}})).value("op", "");
  auto refused = set_status("closed", "close-1");
  ASSERT_TRUE(IsError(refused, 409, "wallet_not_empty"));
  EXPECT_EQ(refused.json().value("balance", -1), 1200);
  EXPECT_EQ(member().value("status", ""), "active");
  ok(pos().post(path("spend"), {{"request_id", "empty"}, {"amount_minor", 1200}}));
  ok(set_status("closed", "close-2"));
  ExpectEveryValueMoveRefused("member_closed");
  EXPECT_TRUE(IsError(set_status("active", "reopen-1"), 409, "member_closed"));
  EXPECT_TRUE(
      node_.cli({"member", "update", "42000001", "--status", "active"}).exit.exited_with(1));
  EXPECT_EQ(member().value("status", ""), "closed");
  auto cli = node_.cli({"member", "update", "42000001", "--status", "active", "--reopen"});
  EXPECT_TRUE(cli.exit.exited_with(0)) << cli.describe();
  EXPECT_EQ(member().value("status", ""), "active");
}

// Regression: `outpost spend` took money from a PIN-protected wallet without the PIN.
TEST_F(MemberRulesTest, CliSpendNeedsThePinOrARecordedOverride) {
  ok(pos().post(path("pin"), {{"request_id", "pin"}, {"pin", "4711"}}));
  const Json before = member();
  auto no_pin = node_.cli({"spend", "42000001", "--amount", "10"});
  EXPECT_TRUE(no_pin.exit.exited_with(1)) << no_pin.describe();
  EXPECT_NE(no_pin.err.find("needs a PIN"), std::string::npos) << no_pin.describe();
  auto wrong = node_.cli({"spend", "42000001", "--amount", "10", "--pin-stdin"}, "0000\n");
  EXPECT_TRUE(wrong.exit.exited_with(1)) << wrong.describe();
  EXPECT_NE(wrong.err.find("wrong PIN"), std::string::npos) << wrong.describe();
  EXPECT_EQ(member()["wallet"], before["wallet"]);
  EXPECT_EQ(member().value("pin_failures", 0), 1);

  auto right = node_.cli({"spend", "42000001", "--amount", "10", "--pin-stdin"}, "4711\n");
  EXPECT_TRUE(right.exit.exited_with(0)) << right.describe();
  EXPECT_EQ(member().value("pin_failures", 9), 0) << "a right PIN restarts the count";
  EXPECT_TRUE(
      node_.cli({"spend", "42000001", "--amount", "10", "--override-pin"}).exit.exited_with(2))
      << "an override needs a reason";
  auto over = node_.cli({"spend", "42000001", "--amount", "10", "--receipt", "R-9",
                         "--override-pin", "--reason", "card holder known"});
  EXPECT_TRUE(over.exit.exited_with(0)) << over.describe();
  EXPECT_EQ(member()["wallet"].value("balance", -1), 980);
  Json history = ok(pos().get(path("history") + "?limit=1"));
  EXPECT_EQ(history["ops"][0].value("receipt", ""),
            "R-9 | pin-override by operator: card holder known");
}

// Regression: any POS terminal could replace a member's PIN without knowing the old one.
TEST_F(MemberRulesTest, PinChangesNeedTheOldPinOrAnAdminAndAreRecorded) {
  ok(pos().post(path("pin"), {{"request_id", "pin-1"}, {"pin", "4711"}}));
  EXPECT_TRUE(IsError(pos().post(path("pin"), {{"request_id", "pin-2"}, {"pin", "1234"}}), 403,
                      "pin_wrong"));
  EXPECT_TRUE(IsError(
      pos().post(path("pin"), {{"request_id", "pin-3"}, {"pin", "1234"}, {"old_pin", "0000"}}), 403,
      "pin_wrong"));
  EXPECT_TRUE(IsError(
      pos().post(path("spend"), {{"request_id", "s-1"}, {"amount_minor", 1}, {"pin", "1234"}}), 403,
      "pin_wrong"))
      << "the PIN must not have changed";
  ok(pos().post(path("pin"), {{"request_id", "pin-4"}, {"pin", "1234"}, {"old_pin", "4711"}}));
  ok(pos().post(path("spend"), {{"request_id", "s-2"}, {"amount_minor", 1}, {"pin", "1234"}}));

  HttpClient admin_terminal(node_.api_port(), node_.admin_token());
  ok(admin_terminal.post(path("pin"), {{"request_id", "pin-5"}, {"pin", "5555"}}));
  Json history = ok(pos().get(path("history") + "?limit=1"));
  EXPECT_EQ(history["ops"][0].value("receipt", ""), "pin-reset by admin terminal admin-1");

  auto cli = node_.cli({"member", "pin", "42000001", "--pin-stdin"}, "9999\n");
  EXPECT_TRUE(cli.exit.exited_with(1)) << cli.describe();
  cli = node_.cli({"member", "pin", "42000001", "--old-pin-stdin", "--pin-stdin"}, "5555\n9999\n");
  EXPECT_TRUE(cli.exit.exited_with(0)) << cli.describe();
  cli = node_.cli({"member", "pin", "42000001", "--admin", "--reason", "forgotten", "--pin-stdin"},
                  "2468\n");
  EXPECT_TRUE(cli.exit.exited_with(0)) << cli.describe();
  history = ok(pos().get(path("history") + "?limit=1"));
  EXPECT_EQ(history["ops"][0].value("receipt", ""), "pin-reset by operator: forgotten");
  ok(pos().post(path("spend"), {{"request_id", "s-3"}, {"amount_minor", 1}, {"pin", "2468"}}));
}

// --- several nodes ---

class ChainRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(chain_.start(2));
    ASSERT_TRUE(chain_.wait_links(chain_.hq(), 2));
    member_ = ok(chain_.pos(chain_.store(1))
                     .post("/v1/members",
                           {{"request_id", "enroll"}, {"card", "43000001"}, {"name", "Bo"}}))
                  .value("member", "");
    ok(chain_.pos(chain_.store(1))
           .post(path("topup"), {{"request_id", "t0"}, {"amount_minor", 500}}));
  }
  std::string path(const std::string& action) { return "/v1/members/" + member_ + "/" + action; }
  void set_links(ChainNode& n, const char* state) {
    ok(chain_.admin(n).post("/admin/v1/links", {{"state", state}}));
  }
  // Polls (bounded) until `pred` holds for the member as `n` sees it.
  testing::AssertionResult wait_member(ChainNode& n, const std::function<bool(const Json&)>& pred) {
    Json last;
    for (int i = 0; i < kConvergePolls; ++i) {
      auto r = chain_.pos(n).get("/v1/members/43000001");
      last = r.json();
      if (r.status == 200 && pred(last)) return testing::AssertionSuccess();
      std::this_thread::sleep_for(kPoll);
    }
    return testing::AssertionFailure() << n.name << " never saw it; last: " << last.dump();
  }

  Chain chain_;
  std::string member_;
};

// Regression: wrong PINs were counted per store, so each store allowed its own five guesses.
TEST_F(ChainRulesTest, WrongPinsAtTwoStoresAddUpAndLockTheWalletAtBoth) {
  ok(chain_.pos(chain_.store(1)).post(path("pin"), {{"request_id", "pin"}, {"pin", "4711"}}));
  ASSERT_TRUE(
      wait_member(chain_.store(2), [](const Json& m) { return m.value("pin_set", false); }));
  set_links(chain_.store(1), "down");
  set_links(chain_.store(2), "down");
  int n = 0;
  for (int store : {1, 1, 1, 2, 2}) {
    auto r = chain_.pos(chain_.store(store))
                 .post(path("spend"), {{"request_id", "wrong-" + std::to_string(++n)},
                                       {"amount_minor", 1},
                                       {"pin", "0000"}});
    EXPECT_TRUE(IsError(r, 403, "pin_wrong")) << "store-" << store;
  }
  set_links(chain_.store(1), "up");
  set_links(chain_.store(2), "up");
  for (int store : {1, 2}) {
    ChainNode& s = chain_.store(store);
    ASSERT_TRUE(
        wait_member(s, [](const Json& m) { return m.value("pin_locked_until_ms", 0ULL) > 0; }));
    auto r = chain_.pos(s).post(
        path("spend"),
        {{"request_id", "right-" + std::to_string(store)}, {"amount_minor", 1}, {"pin", "4711"}});
    EXPECT_TRUE(IsError(r, 423, "pin_locked")) << s.name;
  }
  // The pin_failure ops are ordinary signed ops: HQ's log verifies, and so does an audit of it.
  ChainNode& hq = chain_.hq();
  ASSERT_TRUE(wait_member(hq, [](const Json& m) { return m.value("pin_failures", 0) == 5; }));
  EXPECT_TRUE(hq.node->cli({"log", "verify"}).exit.exited_with(0));
  auto roster = hq.node->cli({"--json", "roster", "show"});
  ASSERT_TRUE(roster.exit.exited_with(0)) << roster.describe();
  const std::string root = Json::parse(roster.out).value("root_public_key", "");
  ASSERT_TRUE(hq.node->cli({"hq", "checkpoint"}).exit.exited_with(0));
  const std::string bundle = hq.node->dir() + "/bundle";
  ASSERT_TRUE(hq.node->cli({"export-audit", "--out", bundle}).exit.exited_with(0));
  auto audit = run_command(OUTPOST_AUDIT_CLI, {"verify", "--root", root, "--no-progress", bundle});
  EXPECT_TRUE(audit.exit.exited_with(0)) << audit.describe();
}

// The documented window: a store cut off from HQ does not know of a block made there until its
// link returns; from then on it refuses.
TEST_F(ChainRulesTest, BlockMadeAtHqIsEnforcedAtACutOffStoreOnceItsLinkReturns) {
  ASSERT_TRUE(wait_member(chain_.hq(),
                          [](const Json& m) { return m["wallet"].value("balance", 0) == 500; }));
  set_links(chain_.store(1), "down");
  ok(chain_.pos(chain_.hq())
         .post(path("profile"), {{"request_id", "block"}, {"status", "blocked"}}));
  EXPECT_TRUE(IsError(
      chain_.pos(chain_.hq()).post(path("topup"), {{"request_id", "hq-t"}, {"amount_minor", 5}}),
      409, "member_blocked"));
  ok(chain_.pos(chain_.store(1))
         .post(path("spend"), {{"request_id", "in-window"}, {"amount_minor", 5}}));
  set_links(chain_.store(1), "up");
  ASSERT_TRUE(wait_member(chain_.store(1),
                          [](const Json& m) { return m.value("status", "") == "blocked"; }));
  EXPECT_TRUE(IsError(chain_.pos(chain_.store(1))
                          .post(path("spend"), {{"request_id", "late"}, {"amount_minor", 5}}),
                      409, "member_blocked"));
}

TEST_F(ChainRulesTest, ReversingAnotherStoresOpIsRefusedWith409NotOriginAndChangesNothing) {
  const std::string op =
      ok(chain_.pos(chain_.store(1))
             .post(path("earn"), {{"request_id", "e1"}, {"purchase_minor", 2000}}))
          .value("op", "");
  ASSERT_TRUE(wait_member(chain_.store(2),
                          [](const Json& m) { return m["points"].value("balance", 0) > 0; }));
  const Json before = ok(chain_.pos(chain_.store(2)).get("/v1/members/43000001"));
  const auto ops_before = ok(chain_.pos(chain_.store(2)).get("/v1/status")).value("ops", 0);
  auto r = chain_.pos(chain_.store(2)).post("/v1/ops/" + op + "/reverse", {{"request_id", "rev"}});
  EXPECT_TRUE(IsError(r, 409, "not_origin"));
  EXPECT_EQ(ok(chain_.pos(chain_.store(2)).get("/v1/status")).value("ops", 0), ops_before);
  EXPECT_EQ(ok(chain_.pos(chain_.store(2)).get("/v1/members/43000001")), before);
}

}  // namespace
}  // namespace outpost::test
