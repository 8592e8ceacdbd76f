// The POS and admin HTTP APIs of a real outpostd process, through real sockets on 127.0.0.1
// (docs/api.md, docs/admin-api.md). Each test runs its own daemon on a fresh data dir. Besides the
// happy path of every endpoint, every kind of bad input is sent and then two things are checked:
// the op count is unchanged (nothing was recorded) and the daemon still serves.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "outpostd_harness.h"

namespace outpost::test {
namespace {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(node_.init());
    ASSERT_TRUE(node_.start());
    pos_client_ = node_.pos_client();
    admin_client_ = node_.admin_client();
  }

  HttpClient& pos() { return pos_client_; }
  HttpClient& admin() { return admin_client_; }
  std::string rid() { return "req-" + std::to_string(++request_counter_); }

  // Returns the body of a 200 response; records a failure (with the response) otherwise.
  static Json ok(const HttpResult& r) {
    EXPECT_EQ(r.status, 200) << r.describe();
    Json j = r.json();
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.body;
    return j.is_discarded() ? Json::object() : j;
  }

  // Returns the node's op count (GET /v1/status "ops").
  std::uint64_t ops() {
    Json s = ok(HttpClient(node_.api_port(), node_.pos_token()).get("/v1/status"));
    return s.value("ops", std::uint64_t{0});
  }

  // Enrolls a member and returns its id.
  std::string enroll(const std::string& card, const std::string& name = "Ann Lee",
                     const std::string& phone = "") {
    Json body{{"request_id", rid()}, {"card", card}, {"name", name}};
    if (!phone.empty()) body["phone"] = phone;
    return ok(pos().post("/v1/members", body)).value("member", "");
  }

  Json topup(const std::string& member, std::uint64_t amount) {
    return ok(pos().post("/v1/members/" + member + "/topup",
                         {{"request_id", rid()}, {"amount_minor", amount}}));
  }

  // An error response: `status`, and a JSON body {"error": code, "message": non-empty}.
  static testing::AssertionResult IsError(const HttpResult& r, int status, const std::string& code) {
    Json j = r.json();
    if (r.status != status || j.is_discarded() || j.value("error", "") != code ||
        j.value("message", "").empty()) {
      return testing::AssertionFailure() << "want " << status << " " << code << ", got " << r.describe();
    }
    return testing::AssertionSuccess();
  }

  // Bad input changed nothing and the daemon still serves.
  void ExpectNothingChangedAndStillServing(std::uint64_t ops_before) {
    EXPECT_TRUE(node_.process()->running()) << node_.process()->describe();
    EXPECT_EQ(HttpClient(node_.api_port()).get("/v1/health").status, 200);
    EXPECT_EQ(ops(), ops_before) << "a refused request changed the log";
  }

  OutpostNode node_;
  HttpClient pos_client_{0};
  HttpClient admin_client_{0};
  int request_counter_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Happy path of every POS endpoint.

TEST_F(ApiTest, HealthAnswersWithoutAToken) {
  HttpClient anonymous(node_.api_port());
  auto r = anonymous.get("/v1/health");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json().value("ok", false), true);
  EXPECT_EQ(r.headers["content-type"], "application/json");
}

TEST_F(ApiTest, StatusShowsIdentityVersionVectorAndOpCount) {
  Json s = ok(pos().get("/v1/status"));
  EXPECT_EQ(s.value("name", ""), "store-1");
  EXPECT_EQ(s.value("role", ""), "store");
  EXPECT_EQ(s.value("node_id", "").size(), 32u);
  EXPECT_EQ(s.value("ops", 99), 0);
  EXPECT_TRUE(s["version_vector"].empty());
  enroll("40000001");
  s = ok(pos().get("/v1/status"));
  EXPECT_EQ(s.value("ops", 0), 1);
  EXPECT_EQ(s["version_vector"].value(s.value("node_id", ""), 0), 1);
}

TEST_F(ApiTest, EnrolledMemberIsFoundByIdCardAndPhone) {
  auto r = pos().post("/v1/members", {{"request_id", rid()}, {"card", "40000002"}, {"name", "Bo Chen"},
                                      {"phone", "+4915112345678"}, {"birthday", "1990-02-28"}});
  Json e = ok(r);
  EXPECT_EQ(e.value("kind", ""), "enroll");
  const std::string id = e.value("member", "");
  ASSERT_EQ(id.size(), 32u) << r.body;
  EXPECT_FALSE(e.value("op", "").empty());
  EXPECT_EQ(e.value("hash", "").size(), 64u);

  for (const std::string& ref : {id, std::string("40000002")}) {
    Json m = ok(pos().get("/v1/members/" + ref));
    EXPECT_EQ(m.value("id", ""), id);
    EXPECT_EQ(m.value("card", ""), "40000002");
    EXPECT_EQ(m.value("name", ""), "Bo Chen");
    EXPECT_EQ(m.value("phone", ""), "+4915112345678");
    EXPECT_EQ(m.value("birthday", ""), "1990-02-28");
    EXPECT_EQ(m.value("status", ""), "active");
    EXPECT_EQ(m.value("pin_set", true), false);
    EXPECT_EQ(m["points"].value("balance", -1), 0);
    EXPECT_EQ(m["wallet"].value("balance", -1), 0);
  }
  Json by_card = ok(pos().get("/v1/members?card=40000002"));
  ASSERT_EQ(by_card["members"].size(), 1u);
  EXPECT_EQ(by_card["members"][0].value("id", ""), id);
  Json by_phone = ok(pos().get("/v1/members?phone=%2B4915112345678"));
  ASSERT_EQ(by_phone["members"].size(), 1u);
  EXPECT_EQ(by_phone["members"][0].value("id", ""), id);
  EXPECT_TRUE(ok(pos().get("/v1/members?card=49999999"))["members"].empty());
}

TEST_F(ApiTest, SecondEnrollWithTheSameCardIsRefusedWith409) {
  enroll("40000003");
  const auto before = ops();
  auto r = pos().post("/v1/members", {{"request_id", rid()}, {"card", "40000003"}, {"name", "Other"}});
  EXPECT_TRUE(IsError(r, 409, "card_in_use"));
  EXPECT_EQ(ops(), before);
}

TEST_F(ApiTest, EarnCreditsPointsAndRedeemDebitsThem) {
  const std::string id = enroll("40000004");
  Json e = ok(pos().post("/v1/members/" + id + "/earn",
                         {{"request_id", rid()}, {"purchase_minor", 12345}, {"receipt", "R-1"}}));
  EXPECT_EQ(e.value("kind", ""), "earn");
  EXPECT_EQ(e.value("purchase_minor", 0), 12345);
  const std::int64_t points = e.value("amount", std::int64_t{0});
  ASSERT_GT(points, 0) << e.dump();
  EXPECT_EQ(e["points"].value("balance", std::int64_t{-1}), points);
  EXPECT_EQ(e["points"].value("rights_here", std::int64_t{-1}), points);

  Json d = ok(pos().post("/v1/members/40000004/redeem", {{"request_id", rid()}, {"points", points - 1}}));
  EXPECT_EQ(d.value("kind", ""), "redeem");
  EXPECT_EQ(d["points"].value("balance", std::int64_t{-1}), 1);
  Json m = ok(pos().get("/v1/members/" + id));
  EXPECT_EQ(m["points"].value("balance", std::int64_t{-1}), 1);
  EXPECT_EQ(m.value("rolling_spend_minor", 0), 12345);
  EXPECT_EQ(m.value("visits", 0), 1);
}

TEST_F(ApiTest, TopupThenSpendMovesTheWallet) {
  const std::string id = enroll("40000005");
  Json t = topup(id, 5000);
  EXPECT_EQ(t.value("kind", ""), "topup");
  EXPECT_EQ(t["wallet"].value("balance", -1), 5000);
  EXPECT_EQ(t["wallet"].value("rights_here", -1), 5000);
  Json s = ok(pos().post("/v1/members/" + id + "/spend",
                         {{"request_id", rid()}, {"amount_minor", 1250}, {"receipt", "R-2"}}));
  EXPECT_EQ(s.value("kind", ""), "spend");
  EXPECT_EQ(s.value("amount", 0), 1250);
  EXPECT_EQ(s["wallet"].value("balance", -1), 3750);
  EXPECT_EQ(ok(pos().get("/v1/members/" + id))["wallet"].value("balance", -1), 3750);
}

TEST_F(ApiTest, ProfileUpdateChangesOnlyTheGivenFields) {
  const std::string id = enroll("40000006", "Cy Doe", "+15550001");
  Json p = ok(pos().post("/v1/members/" + id + "/profile",
                         {{"request_id", rid()}, {"name", "Cy Doe-Ray"}, {"status", "blocked"}}));
  EXPECT_EQ(p.value("kind", ""), "profile");
  Json m = ok(pos().get("/v1/members/" + id));
  EXPECT_EQ(m.value("name", ""), "Cy Doe-Ray");
  EXPECT_EQ(m.value("status", ""), "blocked");
  EXPECT_EQ(m.value("phone", ""), "+15550001");
}

TEST_F(ApiTest, HistoryListsOpsNewestFirstAndHonoursLimit) {
  const std::string id = enroll("40000007");
  topup(id, 100);
  topup(id, 200);
  Json h = ok(pos().get("/v1/members/" + id + "/history"));
  EXPECT_EQ(h.value("member", ""), id);
  ASSERT_EQ(h["ops"].size(), 3u) << h.dump();
  EXPECT_EQ(h["ops"][0].value("kind", ""), "topup");
  EXPECT_EQ(h["ops"][0].value("amount", 0), 200);
  EXPECT_EQ(h["ops"][2].value("kind", ""), "enroll");
  EXPECT_GT(h["ops"][0].value("seq", 0), h["ops"][1].value("seq", 0));
  Json limited = ok(pos().get("/v1/members/40000007/history?limit=1"));
  ASSERT_EQ(limited["ops"].size(), 1u);
  EXPECT_EQ(limited["ops"][0].value("amount", 0), 200);
}

TEST_F(ApiTest, ReverseUndoesAnOpOnceAndASecondReversalIsRefused) {
  const std::string id = enroll("40000008");
  Json t = topup(id, 700);
  const std::string op = t.value("op", "");
  Json r = ok(pos().post("/v1/ops/" + op + "/reverse", {{"request_id", rid()}}));
  EXPECT_EQ(r.value("kind", ""), "reverse");
  EXPECT_EQ(r["wallet"].value("balance", -1), 0);
  Json h = ok(pos().get("/v1/members/" + id + "/history"));
  EXPECT_EQ(h["ops"][0].value("reverses", ""), op);
  EXPECT_EQ(h["ops"][1].value("reversed_by", ""), r.value("op", ""));

  const auto before = ops();
  EXPECT_TRUE(IsError(pos().post("/v1/ops/" + op + "/reverse", {{"request_id", rid()}}), 409, "already_reversed"));
  EXPECT_EQ(ops(), before);
}

TEST_F(ApiTest, ReversalOfAnAlreadySpentTopupIsRefused) {
  const std::string id = enroll("40000009");
  const std::string op = topup(id, 500).value("op", "");
  ok(pos().post("/v1/members/" + id + "/spend", {{"request_id", rid()}, {"amount_minor", 400}}));
  const auto before = ops();
  EXPECT_TRUE(IsError(pos().post("/v1/ops/" + op + "/reverse", {{"request_id", rid()}}), 409, "insufficient_rights"));
  EXPECT_EQ(ops(), before);
}

// ---------------------------------------------------------------------------------------------
// Idempotency.

TEST_F(ApiTest, SameRequestIdTwiceReturnsTheFirstAnswerAndAddsNoOp) {
  const std::string id = enroll("40000010");
  struct Call {
    std::string path;
    Json body;
  };
  std::vector<Call> calls = {
      {"/v1/members/" + id + "/topup", {{"request_id", "idem-topup"}, {"amount_minor", 900}}},
      {"/v1/members/" + id + "/spend", {{"request_id", "idem-spend"}, {"amount_minor", 100}}},
      {"/v1/members/" + id + "/earn", {{"request_id", "idem-earn"}, {"purchase_minor", 5000}}},
      {"/v1/members/" + id + "/profile", {{"request_id", "idem-profile"}, {"name", "New Name"}}},
      {"/v1/members", {{"request_id", "idem-enroll"}, {"card", "40000011"}, {"name", "Dee"}}},
  };
  for (const auto& c : calls) {
    SCOPED_TRACE(c.path);
    Json first = ok(pos().post(c.path, c.body));
    const auto after_first = ops();
    Json second = ok(pos().post(c.path, c.body));
    EXPECT_EQ(ops(), after_first) << "a repeated request_id added an op";
    EXPECT_EQ(second.value("replayed", false), true);
    second.erase("replayed");
    EXPECT_EQ(second, first);
  }
  // A request_id reused with another amount is refused: the caller must not take the first
  // execution's answer for its own.
  const auto before_reuse = ops();
  auto reused = pos().post("/v1/members/" + id + "/topup", {{"request_id", "idem-topup"}, {"amount_minor", 1}});
  EXPECT_EQ(reused.status, 400) << reused.describe();
  EXPECT_EQ(reused.json().value("error", ""), "invalid_argument") << reused.describe();
  EXPECT_EQ(ops(), before_reuse);
  EXPECT_EQ(ok(pos().get("/v1/members/" + id))["wallet"].value("balance", -1), 800);
}

TEST_F(ApiTest, RepeatedReversalRequestReturnsTheFirstAnswer) {
  const std::string id = enroll("40000012");
  const std::string op = topup(id, 300).value("op", "");
  Json first = ok(pos().post("/v1/ops/" + op + "/reverse", {{"request_id", "idem-rev"}}));
  const auto after = ops();
  Json second = ok(pos().post("/v1/ops/" + op + "/reverse", {{"request_id", "idem-rev"}}));
  EXPECT_EQ(ops(), after);
  EXPECT_EQ(second.value("op", ""), first.value("op", ""));
}

TEST_F(ApiTest, RefusedRequestIsNotRememberedSoItsRequestIdMaySucceedLater) {
  const std::string id = enroll("40000013");
  EXPECT_EQ(pos().post("/v1/members/" + id + "/spend", {{"request_id", "later"}, {"amount_minor", 50}}).status, 409);
  topup(id, 50);
  Json s = ok(pos().post("/v1/members/" + id + "/spend", {{"request_id", "later"}, {"amount_minor", 50}}));
  EXPECT_FALSE(s.contains("replayed"));
  EXPECT_EQ(s["wallet"].value("balance", -1), 0);
}

// ---------------------------------------------------------------------------------------------
// Refused overspend.

TEST_F(ApiTest, OverspendIsRefusedWith409SayingBalanceRightsAndShortfall) {
  const std::string id = enroll("40000014");
  topup(id, 1000);
  const auto before = ops();
  auto r = pos().post("/v1/members/" + id + "/spend", {{"request_id", rid()}, {"amount_minor", 2500}});
  ASSERT_TRUE(IsError(r, 409, "insufficient_rights"));
  Json j = r.json();
  EXPECT_EQ(j.value("balance", -1), 1000);
  EXPECT_EQ(j.value("rights_here", -1), 1000);
  EXPECT_EQ(j.value("shortfall", -1), 1500);
  EXPECT_EQ(j.value("requested", -1), 2500);
  EXPECT_EQ(j.value("account", ""), "wallet");
  ASSERT_TRUE(j.contains("rights_request_tried"));
  EXPECT_EQ(j["rights_request_tried"], false);  // a lone store has nobody to ask
  EXPECT_EQ(ops(), before);
  EXPECT_EQ(ok(pos().get("/v1/members/" + id))["wallet"].value("balance", -1), 1000);
}

TEST_F(ApiTest, OverRedeemOfPointsIsRefusedWith409) {
  const std::string id = enroll("40000015");
  const auto before = ops();
  auto r = pos().post("/v1/members/" + id + "/redeem", {{"request_id", rid()}, {"points", 1}});
  ASSERT_TRUE(IsError(r, 409, "insufficient_rights"));
  EXPECT_EQ(r.json().value("account", ""), "points");
  EXPECT_EQ(r.json().value("shortfall", -1), 1);
  EXPECT_EQ(ops(), before);
}

// ---------------------------------------------------------------------------------------------
// Member PIN.

class PinTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    if (HasFatalFailure()) return;
    id_ = enroll("40000020");
    topup(id_, 10'000);
    Json p = ok(pos().post("/v1/members/" + id_ + "/pin", {{"request_id", rid()}, {"pin", "4711"}}));
    ASSERT_EQ(p.value("kind", ""), "profile");
    // The PIN itself never comes back; only that one is set.
    ASSERT_EQ(ok(pos().get("/v1/members/" + id_)).value("pin_set", false), true);
  }
  HttpResult spend(std::uint64_t amount, const char* pin) {
    Json b{{"request_id", rid()}, {"amount_minor", amount}};
    if (pin) b["pin"] = pin;
    return pos().post("/v1/members/" + id_ + "/spend", b);
  }
  std::string id_;
};

TEST_F(PinTest, SpendWithoutPinIsRefused) {
  const auto before = ops();
  auto r = spend(10, nullptr);
  EXPECT_EQ(r.status, 403) << r.describe();
  EXPECT_EQ(r.json().value("error", "").rfind("pin_", 0), 0u) << r.body;
  EXPECT_EQ(ops(), before);
}

TEST_F(PinTest, SpendWithWrongPinIsRefusedAndSaysTriesLeft) {
  const auto before = ops();
  auto r = spend(10, "0000");
  EXPECT_TRUE(IsError(r, 403, "pin_wrong"));
  EXPECT_NE(r.json().value("message", "").find("4 tries left"), std::string::npos) << r.body;
  // The wrong PIN is recorded (a pin_failure op, replicated so that every store counts it); the
  // wallet is untouched.
  EXPECT_EQ(ops(), before + 1);
  Json h = ok(pos().get("/v1/members/" + id_ + "/history?limit=1"));
  EXPECT_EQ(h["ops"][0].value("kind", ""), "pin_failure") << h.dump();
  EXPECT_EQ(ok(pos().get("/v1/members/" + id_))["wallet"].value("balance", -1), 10000);
}

TEST_F(PinTest, CorrectPinAfterFourWrongOnesStillWorks) {
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(IsError(spend(10, "0000"), 403, "pin_wrong"));
  Json s = ok(spend(10, "4711"));
  EXPECT_EQ(s["wallet"].value("balance", -1), 9990);
  // Success resets the count: four more wrong ones still do not lock.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(IsError(spend(10, "0000"), 403, "pin_wrong"));
  EXPECT_EQ(ok(spend(10, "4711"))["wallet"].value("balance", -1), 9980);
}

TEST_F(PinTest, FiveWrongPinsLockWalletSpendsWith423EvenForTheRightPin) {
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(IsError(spend(10, "1111"), 403, "pin_wrong"));
  EXPECT_TRUE(IsError(spend(10, "1111"), 423, "pin_locked"));
  const auto before = ops();
  EXPECT_TRUE(IsError(spend(10, "4711"), 423, "pin_locked"));
  EXPECT_EQ(ops(), before);
  // Top-ups and points are not locked.
  topup(id_, 1);
}

TEST_F(PinTest, BadPinFormatsAreRefusedAs400) {
  const auto before = ops();
  for (const char* pin : {"123", "123456789", "12a4", ""}) {
    EXPECT_TRUE(IsError(pos().post("/v1/members/" + id_ + "/pin", {{"request_id", rid()}, {"pin", pin}}), 400,
                        "invalid_argument"))
        << pin;
  }
  EXPECT_TRUE(IsError(pos().post("/v1/members/" + id_ + "/pin", {{"request_id", rid()}, {"pin", 4711}}), 400,
                      "invalid_argument"));
  EXPECT_TRUE(IsError(pos().post("/v1/members/" + id_ + "/spend",
                                 {{"request_id", rid()}, {"amount_minor", 5}, {"pin", 4711}}),
                      400, "invalid_argument"));
  EXPECT_EQ(ops(), before);
}

// ---------------------------------------------------------------------------------------------
// Bad input: each is refused with a clear JSON error, changes nothing, and the daemon serves on.

struct BadRequest {
  const char* what;
  std::string method;
  std::string path;  // "{m}" is replaced by the test member's id
  std::string body;
  int status;
  const char* error;
};

TEST_F(ApiTest, BadRequestsAreRefusedAndChangeNothing) {
  const std::string id = enroll("40000030");
  topup(id, 100);
  const std::string too_long_rid(65, 'r');
  const std::string receipt_too_long(200, 'x');
  const std::string deep_nesting = std::string(20'000, '[') + std::string(20'000, ']');
  const std::vector<BadRequest> cases = {
      {"malformed JSON", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":)", 400, "invalid_argument"},
      {"trailing garbage", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":5} x)", 400, "invalid_argument"},
      {"JSON array body", "POST", "/v1/members/{m}/topup", "[1,2]", 400, "invalid_argument"},
      {"JSON string body", "POST", "/v1/members/{m}/topup", R"("topup")", 400, "invalid_argument"},
      {"empty body", "POST", "/v1/members/{m}/topup", "", 400, "invalid_argument"},
      {"deeply nested JSON", "POST", "/v1/members/{m}/topup", deep_nesting, 400, "invalid_argument"},
      {"string amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":"100"})", 400, "invalid_argument"},
      {"float amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":1.5})", 400, "invalid_argument"},
      {"integral float amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":100.0})", 400, "invalid_argument"},
      {"exponent amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":1e3})", 400, "invalid_argument"},
      {"negative amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":-5})", 400, "invalid_argument"},
      {"zero amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":0})", 400, "invalid_argument"},
      {"amount above the maximum", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":1000000000001})", 400, "invalid_argument"},
      {"amount 2^64-1", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":18446744073709551615})", 400, "invalid_argument"},
      {"amount beyond 64 bits", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":99999999999999999999999})", 400, "invalid_argument"},
      {"null amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":null})", 400, "invalid_argument"},
      {"boolean amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":true})", 400, "invalid_argument"},
      {"missing amount", "POST", "/v1/members/{m}/topup", R"({"request_id":"a"})", 400, "invalid_argument"},
      {"missing request_id", "POST", "/v1/members/{m}/topup", R"({"amount_minor":5})", 400, "invalid_argument"},
      {"request_id not a string", "POST", "/v1/members/{m}/topup", R"({"request_id":5,"amount_minor":5})", 400, "invalid_argument"},
      {"empty request_id", "POST", "/v1/members/{m}/topup", R"({"request_id":"","amount_minor":5})", 400, "invalid_argument"},
      {"request_id too long", "POST", "/v1/members/{m}/topup", R"({"request_id":")" + too_long_rid + R"(","amount_minor":5})", 400, "invalid_argument"},
      {"request_id with a space", "POST", "/v1/members/{m}/topup", R"({"request_id":"a b","amount_minor":5})", 400, "invalid_argument"},
      {"unknown field", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":5,"currency":"EUR"})", 400, "invalid_argument"},
      {"duplicate key", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":5,"request_id":"b"})", 400, "invalid_argument"},
      {"receipt not a string", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":5,"receipt":7})", 400, "invalid_argument"},
      {"receipt too long", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":5,"receipt":")" + receipt_too_long + R"("})", 400, "invalid_argument"},
      {"pin on a topup", "POST", "/v1/members/{m}/topup", R"({"request_id":"a","amount_minor":5,"pin":"1234"})", 400, "invalid_argument"},
      {"invalid UTF-8 in body", "POST", "/v1/members/{m}/topup", "{\"request_id\":\"\xff\xfe\",\"amount_minor\":5}", 400, "invalid_argument"},
      {"earn with amount_minor", "POST", "/v1/members/{m}/earn", R"({"request_id":"a","amount_minor":5})", 400, "invalid_argument"},
      {"redeem float points", "POST", "/v1/members/{m}/redeem", R"({"request_id":"a","points":0.5})", 400, "invalid_argument"},
      {"enroll without card", "POST", "/v1/members", R"({"request_id":"a","name":"X"})", 400, "invalid_argument"},
      {"enroll bad card", "POST", "/v1/members", R"({"request_id":"a","card":"12ab5678","name":"X"})", 400, "invalid_argument"},
      {"enroll card too short", "POST", "/v1/members", R"({"request_id":"a","card":"1234567","name":"X"})", 400, "invalid_argument"},
      {"enroll name too long", "POST", "/v1/members", R"({"request_id":"a","card":"41111111","name":")" + std::string(101, 'n') + R"("})", 400, "invalid_argument"},
      {"enroll control char in name", "POST", "/v1/members", R"({"request_id":"a","card":"41111111","name":"A\u0007B"})", 400, "invalid_argument"},
      {"enroll bad phone", "POST", "/v1/members", R"({"request_id":"a","card":"41111111","name":"X","phone":"call me"})", 400, "invalid_argument"},
      {"enroll bad birthday", "POST", "/v1/members", R"({"request_id":"a","card":"41111111","name":"X","birthday":"1990-02-30"})", 400, "invalid_argument"},
      {"enroll numeric card", "POST", "/v1/members", R"({"request_id":"a","card":41111111,"name":"X"})", 400, "invalid_argument"},
      {"profile bad status", "POST", "/v1/members/{m}/profile", R"({"request_id":"a","status":"deleted"})", 400, "invalid_argument"},
      {"profile no fields", "POST", "/v1/members/{m}/profile", R"({"request_id":"a"})", 400, "invalid_argument"},
      {"profile card change", "POST", "/v1/members/{m}/profile", R"({"request_id":"a","card":"42222222"})", 400, "invalid_argument"},
      {"reverse bad op ref", "POST", "/v1/ops/xyz/reverse", R"({"request_id":"a"})", 400, "invalid_argument"},
      {"reverse unknown op", "POST", "/v1/ops/00000000000000000000000000000000:1/reverse", R"({"request_id":"a"})", 404, "not_found"},
      {"reverse an enroll", "POST", "/v1/ops/{origin}:1/reverse", R"({"request_id":"a"})", 400, "invalid_argument"},
      {"topup unknown member", "POST", "/v1/members/00000000000000000000000000000000/topup", R"({"request_id":"a","amount_minor":5})", 404, "not_found"},
      {"topup unknown card", "POST", "/v1/members/49999999/topup", R"({"request_id":"a","amount_minor":5})", 404, "not_found"},
      {"member ref garbage", "GET", "/v1/members/xyz", "", 400, "invalid_argument"},
      {"member ref not UTF-8", "GET", "/v1/members/%FF%FE", "", 400, "invalid_argument"},
      {"unknown member", "GET", "/v1/members/00000000000000000000000000000000", "", 404, "not_found"},
      {"history limit 0", "GET", "/v1/members/{m}/history?limit=0", "", 400, "invalid_argument"},
      {"history limit too big", "GET", "/v1/members/{m}/history?limit=5000", "", 400, "invalid_argument"},
      {"history limit not a number", "GET", "/v1/members/{m}/history?limit=ten", "", 400, "invalid_argument"},
      {"find with card and phone", "GET", "/v1/members?card=40000030&phone=%2B155500", "", 400, "invalid_argument"},
      {"find with nothing", "GET", "/v1/members", "", 400, "invalid_argument"},
      {"find bad card", "GET", "/v1/members?card=abc", "", 400, "invalid_argument"},
      {"bad percent escape", "GET", "/v1/members/%zz", "", 400, "bad_request"},
      {"unknown route", "GET", "/v1/nope", "", 404, "unknown_route"},
      {"unknown version", "GET", "/v2/status", "", 404, "unknown_route"},
      {"root", "GET", "/", "", 404, "unknown_route"},
      {"unknown action", "POST", "/v1/members/{m}/gift", R"({"request_id":"a"})", 404, "unknown_route"},
      {"unknown route not UTF-8", "GET", "/v1/%C3%28", "", 404, "unknown_route"},
      {"admin route on the POS port", "GET", "/admin/v1/node", "", 404, "unknown_route"},
      {"GET on a POST route", "GET", "/v1/members/{m}/topup", "", 405, "method_not_allowed"},
      {"POST on a GET route", "POST", "/v1/status", "{}", 405, "method_not_allowed"},
      {"DELETE a member", "DELETE", "/v1/members/{m}", "", 405, "method_not_allowed"},
      {"PUT members", "PUT", "/v1/members", "{}", 405, "method_not_allowed"},
      {"POST health", "POST", "/v1/health", "{}", 405, "method_not_allowed"},
      {"GET reverse", "GET", "/v1/ops/{origin}:2/reverse", "", 405, "method_not_allowed"},
  };
  const std::string origin = ok(pos().get("/v1/status")).value("node_id", "");
  const auto before = ops();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string path = c.path;
    for (auto [key, value] : {std::pair<std::string, std::string>{"{m}", id}, {"{origin}", origin}}) {
      if (auto at = path.find(key); at != std::string::npos) path.replace(at, key.size(), value);
    }
    HttpClient client(node_.api_port(), node_.pos_token());
    auto r = client.request(c.method, path, c.body);
    EXPECT_TRUE(IsError(r, c.status, c.error));
    ASSERT_TRUE(node_.process()->running()) << "the daemon died on: " << c.what << "\n"
                                            << node_.process()->describe();
  }
  ExpectNothingChangedAndStillServing(before);
  EXPECT_EQ(ok(pos().get("/v1/members/" + id))["wallet"].value("balance", -1), 100);
}

TEST_F(ApiTest, BodyOver64KiBIsRefusedWith413) {
  const std::string id = enroll("40000031");
  const auto before = ops();
  std::string huge = R"({"request_id":"big","amount_minor":5,"receipt":")" + std::string(70'000, 'x') + "\"}";
  HttpClient client(node_.api_port(), node_.pos_token());
  EXPECT_TRUE(IsError(client.post_raw("/v1/members/" + id + "/topup", huge), 413, "body_too_large"));
  ExpectNothingChangedAndStillServing(before);
}

TEST_F(ApiTest, DeclaredHugeContentLengthIsRefusedWith413BeforeTheBodyIsSent) {
  const auto before = ops();
  TcpConnection c;
  std::string err;
  ASSERT_TRUE(c.connect(node_.api_port(), &err)) << err;
  ASSERT_TRUE(c.send_all("POST /v1/members HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                             node_.pos_token() + "\r\nContent-Length: 1000000000\r\n\r\n{",
                         &err));
  std::string got;
  EXPECT_TRUE(c.wait_closed_by_peer(&got)) << "the server kept reading a 1 GB body";
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
  ExpectNothingChangedAndStillServing(before);
}

TEST_F(ApiTest, OversizedChunkedBodyIsRefusedWith413) {
  const auto before = ops();
  TcpConnection c;
  std::string err;
  ASSERT_TRUE(c.connect(node_.api_port(), &err)) << err;
  std::string req = "POST /v1/members HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) req += "1000\r\n" + std::string(0x1000, 'x') + "\r\n";  // 80 KiB
  req += "0\r\n\r\n";
  c.send_all(req, &err);  // the server may close before all of it is sent
  std::string got;
  EXPECT_TRUE(c.wait_closed_by_peer(&got));
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
  ExpectNothingChangedAndStillServing(before);
}

TEST_F(ApiTest, OversizedHeadersAreRefusedWith431) {
  const auto before = ops();
  HttpClient client(node_.api_port(), node_.pos_token());
  auto r = client.request("GET", "/v1/status", "", {"X-Padding: " + std::string(20'000, 'p')});
  EXPECT_TRUE(IsError(r, 431, "headers_too_large"));
  ExpectNothingChangedAndStillServing(before);
}

TEST_F(ApiTest, MissingOrWrongTokenIsRefusedWith401) {
  const std::string id = enroll("40000032");
  const auto before = ops();
  const std::string path = "/v1/members/" + id + "/topup";
  const std::string body = R"({"request_id":"t1","amount_minor":5})";
  HttpClient none(node_.api_port());
  EXPECT_TRUE(IsError(none.post_raw(path, body), 401, "unauthorized"));
  EXPECT_TRUE(IsError(none.get("/v1/status"), 401, "unauthorized"));
  EXPECT_TRUE(IsError(none.get("/v1/members/" + id), 401, "unauthorized"));
  HttpClient wrong(node_.api_port(), "opt_" + std::string(64, '0'));
  EXPECT_TRUE(IsError(wrong.post_raw(path, body), 401, "unauthorized"));
  HttpClient truncated(node_.api_port(), node_.pos_token().substr(0, node_.pos_token().size() - 1));
  EXPECT_TRUE(IsError(truncated.post_raw(path, body), 401, "unauthorized"));
  HttpClient giant(node_.api_port(), std::string(1000, 'a'));
  EXPECT_TRUE(IsError(giant.post_raw(path, body), 401, "unauthorized"));
  HttpClient raw(node_.api_port());
  EXPECT_TRUE(IsError(raw.request("POST", path, body, {"Authorization: Basic " + node_.pos_token()}), 401,
                      "unauthorized"));
  EXPECT_TRUE(IsError(raw.request("POST", path, body, {"Authorization: bearer"}), 401, "unauthorized"));
  ExpectNothingChangedAndStillServing(before);
}

TEST_F(ApiTest, TokenAddedWhileRunningWorksAtOnce) {
  auto token = node_.add_terminal("till-2", "pos");
  ASSERT_TRUE(token);
  EXPECT_EQ(HttpClient(node_.api_port(), *token).get("/v1/status").status, 200);
}

TEST_F(ApiTest, GarbageBytesThatAreNotHttpGet400AndTheConnectionCloses) {
  const auto before = ops();
  const std::vector<std::string> garbage = {
      std::string("GARBAGE\x00\x01\x02 not http\r\n\r\n", 23),
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  // a TLS ClientHello
      "GET /v1/health FTP/1.1\r\n\r\n",
      "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
      "GET /v1/health HTTP/1.1\r\nBad Header Line\r\n\r\n",
  };
  for (const auto& bytes : garbage) {
    SCOPED_TRACE(testing::PrintToString(bytes));
    TcpConnection c;
    std::string err;
    ASSERT_TRUE(c.connect(node_.api_port(), &err)) << err;
    ASSERT_TRUE(c.send_all(bytes, &err)) << err;
    std::string got;
    EXPECT_TRUE(c.wait_closed_by_peer(&got)) << "connection left open";
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
    ASSERT_TRUE(node_.process()->running()) << node_.process()->describe();
  }
  ExpectNothingChangedAndStillServing(before);
}

TEST_F(ApiTest, ClientThatConnectsAndHangsUpChangesNothing) {
  const auto before = ops();
  for (int i = 0; i < 20; ++i) {
    TcpConnection c;
    std::string err;
    ASSERT_TRUE(c.connect(node_.api_port(), &err)) << err;
    if (i % 2) c.send_all("POST /v1/members HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"re", &err);
  }
  ExpectNothingChangedAndStillServing(before);
}

// A slow client (slowloris) holds a connection with half a request. The server must keep serving
// others meanwhile, and close the slow connection once its read deadline passes, without
// executing anything.
TEST_F(ApiTest, SlowClientIsCutOffAtItsDeadlineWhileOthersAreServed) {
  const std::string id = enroll("40000033");
  const auto before = ops();
  const std::string auth = "Authorization: Bearer " + node_.pos_token() + "\r\n";
  TcpConnection silent, half_headers, half_body;
  std::string err;
  ASSERT_TRUE(silent.connect(node_.api_port(), &err)) << err;
  ASSERT_TRUE(half_headers.connect(node_.api_port(), &err)) << err;
  ASSERT_TRUE(half_body.connect(node_.api_port(), &err)) << err;
  ASSERT_TRUE(half_headers.send_all("POST /v1/members/" + id + "/topup HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth, &err));
  ASSERT_TRUE(half_body.send_all("POST /v1/members/" + id + "/topup HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
                                     "Content-Type: application/json\r\nContent-Length: 60\r\n\r\n"
                                     "{\"request_id\":\"slow-1\",",
                                 &err));

  // Served while the three stall: a fresh client for each request, and one keep-alive client.
  HttpClient keep_alive(node_.api_port(), node_.pos_token());
  int served = 0;
  for (int i = 0; i < 5; ++i) {
    HttpClient fresh(node_.api_port(), node_.pos_token());
    EXPECT_EQ(fresh.get("/v1/status").status, 200);
    auto r = keep_alive.post("/v1/members/" + id + "/topup", {{"request_id", "fast-" + std::to_string(i)}, {"amount_minor", 1}});
    EXPECT_EQ(r.status, 200) << r.describe();
    served += r.status == 200;
  }
  // The three were still connected while the others were served (unless this machine is so slow
  // that their deadline passed already; then nothing was shown, and the test says so).
  const bool stalled_while_served = half_body.still_open() && half_headers.still_open();
  if (!stalled_while_served) GTEST_SKIP() << "the read deadline passed before the other clients were served";

  // Each stalled connection is closed by the server (bounded wait, well above the deadline), with
  // no answer for the half request: nothing ran.
  for (TcpConnection* c : {&silent, &half_headers, &half_body}) {
    std::string got;
    EXPECT_TRUE(c->wait_closed_by_peer(&got, std::chrono::seconds(60))) << "a stalled client was never cut off";
    EXPECT_EQ(got, "");
  }
  ExpectNothingChangedAndStillServing(before + served);
  // The half-sent request never executed: its request_id is new to the node.
  Json r = ok(pos().post("/v1/members/" + id + "/topup", {{"request_id", "slow-1"}, {"amount_minor", 7}}));
  EXPECT_FALSE(r.contains("replayed"));
}

TEST_F(ApiTest, KeepAliveConnectionServesManyRequestsAndHonoursConnectionClose) {
  const std::string id = enroll("40000034");
  HttpClient c(node_.api_port(), node_.pos_token());
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.get("/v1/members/" + id).status, 200);
    EXPECT_TRUE(c.connected()) << "keep-alive connection closed after request " << i;
  }
  auto r = c.request("GET", "/v1/status", "", {"Connection: close"});
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(c.connected());
}

TEST_F(ApiTest, PipelinedRequestsAreAnsweredInOrder) {
  TcpConnection c;
  std::string err;
  ASSERT_TRUE(c.connect(node_.api_port(), &err)) << err;
  ASSERT_TRUE(c.send_all("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /v1/nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                             node_.pos_token() + "\r\nConnection: close\r\n\r\n",
                         &err));
  std::string got;
  EXPECT_TRUE(c.wait_closed_by_peer(&got));
  auto second = got.find("HTTP/1.1 404");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_NE(second, std::string::npos) << got;
}

// Stored strings need not be UTF-8 (the CLI takes raw bytes): answering them must not throw.
TEST_F(ApiTest, StoredNonUtf8TextIsAnsweredNotFatal) {
  auto add = node_.cli({"member", "add", "--card", "40000035", "--name", "Bad \xff\xfe Name"});
  ASSERT_TRUE(add.exit.exited_with(0)) << add.describe();
  auto t = node_.cli({"topup", "40000035", "--amount", "5", "--receipt", "R\xc3"});
  ASSERT_TRUE(t.exit.exited_with(0)) << t.describe();
  auto m = pos().get("/v1/members/40000035");
  EXPECT_EQ(m.status, 200) << m.describe();
  EXPECT_FALSE(m.json().is_discarded());
  auto h = pos().get("/v1/members/40000035/history");
  EXPECT_EQ(h.status, 200) << h.describe();
  ASSERT_TRUE(node_.process()->running()) << node_.process()->describe();
  EXPECT_EQ(ok(pos().get("/v1/status")).value("ops", 0), 2);
}

// ---------------------------------------------------------------------------------------------
// Admin API.

TEST_F(ApiTest, AdminNodeShowsIdentityVersionVectorAndGroupCommitStats) {
  const std::string id = enroll("40000040");
  topup(id, 10);
  Json n = ok(admin().get("/admin/v1/node"));
  EXPECT_EQ(n.value("name", ""), "store-1");
  EXPECT_EQ(n.value("role", ""), "store");
  EXPECT_EQ(n.value("node_id", "").size(), 32u);
  EXPECT_EQ(n.value("signing_public_key", "").size(), 64u);
  EXPECT_EQ(n.value("ops", 0), 2);
  EXPECT_EQ(n["version_vector"].value(n.value("node_id", ""), 0), 2);
  EXPECT_GT(n.value("wall_clock_ms", std::int64_t{0}), 0);
  EXPECT_FALSE(n.value("software_version", "").empty());
  ASSERT_TRUE(n.contains("group_commit")) << n.dump();
  EXPECT_GE(n["group_commit"].value("mutating_ops", 0), 2);
  EXPECT_GE(n["group_commit"].value("batches", 0), 1);
  EXPECT_GE(n["group_commit"].value("largest_batch", 0), 1);
  EXPECT_EQ(n["group_commit"].value("failed_commits", -1), 0);
}

TEST_F(ApiTest, AdminAlertsListIsEmptyOnAQuietNode) {
  Json a = ok(admin().get("/admin/v1/alerts"));
  ASSERT_TRUE(a.contains("alerts")) << a.dump();
  EXPECT_TRUE(a["alerts"].is_array());
  EXPECT_TRUE(a["counts"].is_object());
}

TEST_F(ApiTest, AdminMemberShowsBalancesRightsAndRecentOps) {
  const std::string id = enroll("40000041");
  topup(id, 250);
  for (const std::string& ref : {id, std::string("40000041")}) {
    Json m = ok(admin().get("/admin/v1/members/" + ref));
    EXPECT_EQ(m.value("id", ""), id);
    EXPECT_EQ(m["wallet"].value("balance", -1), 250);
    EXPECT_EQ(m["wallet"]["rights_by_node"].size(), 1u);
    ASSERT_EQ(m["recent_ops"].size(), 2u) << m.dump();
    EXPECT_EQ(m["recent_ops"][0].value("kind", ""), "topup");
  }
  Json found = ok(admin().get("/admin/v1/members?card=40000041"));
  ASSERT_EQ(found["members"].size(), 1u);
  EXPECT_EQ(found["members"][0], id);
  EXPECT_TRUE(IsError(admin().get("/admin/v1/members/00000000000000000000000000000000"), 404, "not_found"));
}

TEST_F(ApiTest, AdminTerminalsListsNamesAndRolesButNoTokens) {
  auto r = admin().get("/admin/v1/terminals");
  Json t = ok(r);
  ASSERT_EQ(t["terminals"].size(), 2u) << t.dump();
  std::set<std::string> names;
  for (const auto& x : t["terminals"]) names.insert(x.value("name", "") + "/" + x.value("role", ""));
  EXPECT_EQ(names, (std::set<std::string>{"till-1/pos", "admin-1/admin"}));
  EXPECT_EQ(r.body.find(node_.pos_token()), std::string::npos);
  EXPECT_EQ(r.body.find(node_.admin_token()), std::string::npos);
}

TEST_F(ApiTest, PosTokenOnTheAdminApiIsForbidden403) {
  HttpClient c(node_.admin_port(), node_.pos_token());
  for (const char* path : {"/admin/v1/node", "/admin/v1/alerts", "/admin/v1/terminals", "/admin/v1/checkpoints"}) {
    EXPECT_TRUE(IsError(c.get(path), 403, "forbidden")) << path;
  }
}

TEST_F(ApiTest, AdminApiRefusesMissingTokenUnknownRoutesAndWrongMethods) {
  EXPECT_EQ(HttpClient(node_.admin_port()).get("/admin/v1/health").status, 200);
  EXPECT_TRUE(IsError(HttpClient(node_.admin_port()).get("/admin/v1/node"), 401, "unauthorized"));
  EXPECT_TRUE(IsError(admin().get("/admin/v1/nope"), 404, "unknown_route"));
  EXPECT_TRUE(IsError(admin().get("/v1/status"), 404, "unknown_route"));
  EXPECT_TRUE(IsError(admin().request("POST", "/admin/v1/node", "{}"), 405, "method_not_allowed"));
  EXPECT_TRUE(IsError(admin().request("DELETE", "/admin/v1/terminals", ""), 405, "method_not_allowed"));
  EXPECT_TRUE(IsError(admin().request("POST", "/admin/v1/checkpoints", "{}"), 405, "method_not_allowed"));
}

TEST_F(ApiTest, AdminCheckpointsIsAnEmptyListBeforeHqSignsAny) {
  Json j = ok(admin().get("/admin/v1/checkpoints"));
  ASSERT_TRUE(j["checkpoints"].is_array()) << j.dump();
  EXPECT_TRUE(j["checkpoints"].empty()) << j.dump();
}

TEST_F(ApiTest, AdminTokenAlsoWorksOnThePosApi) {
  EXPECT_EQ(HttpClient(node_.api_port(), node_.admin_token()).get("/v1/status").status, 200);
}

}  // namespace
}  // namespace outpost::test
