// The rules every route of the POS and admin APIs follows, walked route by route against a real
// outpostd (an enrolled HQ node, so that the peer manager's admin routes exist too): the token is
// checked before anything else (401 without the body being parsed, also for garbage), a known
// path with a wrong method is 405 with an Allow header, an unknown or mistyped field is 400, and
// none of it writes an error line to the log or changes anything. Also the request_id rule of
// reversals (docs/api.md, "request_id").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "outpostd_harness.h"

namespace outpost::test {
namespace {

struct Route {
  std::string method;
  std::string path;       // {m}: a member id, {op}: an op ref
  std::string allow;      // the Allow header of a 405 on this path
  std::string bad_field;  // a POST body with an unknown field (a well-formed request otherwise)
  std::string bad_type;   // a POST body with a field of the wrong JSON type
};

class ApiRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NodeOptions options;
    options.name = "hq";
    options.role = "hq";
    options.hq_init = true;
    node_ = std::make_unique<OutpostNode>(options);
    ASSERT_TRUE(node_->init());
    ASSERT_TRUE(node_->start());
    member_ = enroll("41000001");
    op_ = ok(pos().post("/v1/members/" + member_ + "/topup",
                        {{"request_id", "setup-topup"}, {"amount_minor", 500}}))
              .value("op", "");
  }

  HttpClient pos() { return node_->pos_client(); }
  HttpClient admin() { return node_->admin_client(); }

  static Json ok(const HttpResult& r) {
    EXPECT_EQ(r.status, 200) << r.describe();
    Json j = r.json();
    return j.is_discarded() ? Json::object() : j;
  }
  std::string enroll(const std::string& card) {
    return ok(pos().post("/v1/members",
                         {{"request_id", "enroll-" + card}, {"card", card}, {"name", "M " + card}}))
        .value("member", "");
  }
  std::string fill(std::string path) const {
    for (auto [key, value] : {std::pair<std::string, std::string>{"{m}", member_}, {"{op}", op_}}) {
      if (auto at = path.find(key); at != std::string::npos) path.replace(at, key.size(), value);
    }
    return path;
  }
  // What must not change: the log, the member, the links.
  std::string state() {
    Json s = ok(pos().get("/v1/status"));
    Json m = ok(pos().get("/v1/members/" + member_));
    Json n = ok(admin().get("/admin/v1/node"));
    return std::to_string(s.value("ops", 0)) + " " + m.dump() + " " +
           std::to_string(n.value("partitioned", true));
  }
  static testing::AssertionResult IsError(const HttpResult& r, int status,
                                          const std::string& code) {
    Json j = r.json();
    if (r.status != status || j.is_discarded() || j.value("error", "") != code) {
      return testing::AssertionFailure()
             << "want " << status << " " << code << ", got " << r.describe();
    }
    return testing::AssertionSuccess();
  }
  void ExpectNoErrorLogged() {
    const std::string log = node_->process()->stderr_text();
    EXPECT_EQ(log.find("level=error"), std::string::npos) << "error lines in the log:\n" << log;
    EXPECT_TRUE(node_->process()->running()) << node_->process()->describe();
  }

  std::unique_ptr<OutpostNode> node_;
  std::string member_, op_;
};

const std::vector<Route> kPosRoutes = {
    {"GET", "/v1/status", "GET", "", ""},
    {"GET", "/v1/members?card=41000001", "GET, POST", "", ""},
    {"POST", "/v1/members", "GET, POST",
     R"({"request_id":"x1","card":"41000009","name":"N","nick":"n"})",
     R"({"request_id":"x1","card":41000009,"name":"N"})"},
    {"GET", "/v1/members/{m}", "GET", "", ""},
    {"GET", "/v1/members/{m}/history", "GET", "", ""},
    {"POST", "/v1/members/{m}/profile", "POST", R"({"request_id":"x2","name":"N","nmae":"N"})",
     R"({"request_id":"x2","status":"active","reopen":"yes"})"},
    {"POST", "/v1/members/{m}/pin", "POST", R"({"request_id":"x3","pin":"1234","pni":"1"})",
     R"({"request_id":"x3","pin":1234})"},
    {"POST", "/v1/members/{m}/earn", "POST", R"({"request_id":"x4","purchase_minor":5,"amount":5})",
     R"({"request_id":"x4","purchase_minor":"5"})"},
    {"POST", "/v1/members/{m}/redeem", "POST", R"({"request_id":"x5","points":1,"pin":"1234"})",
     R"({"request_id":"x5","points":[1]})"},
    {"POST", "/v1/members/{m}/topup", "POST",
     R"({"request_id":"x6","amount_minor":5,"currency":"EUR"})",
     R"({"request_id":"x6","amount_minor":5,"receipt":{}})"},
    {"POST", "/v1/members/{m}/spend", "POST",
     R"({"request_id":"x7","amount_minor":5,"pim":"1234"})",
     R"({"request_id":"x7","amount_minor":5,"pin":1234})"},
    {"POST", "/v1/ops/{op}/reverse", "POST", R"({"request_id":"x8","reason":"r"})",
     R"({"request_id":true})"},
};

const std::vector<Route> kAdminRoutes = {
    {"GET", "/admin/v1/node", "GET", "", ""},
    {"GET", "/admin/v1/alerts", "GET", "", ""},
    {"GET", "/admin/v1/members?card=41000001", "GET", "", ""},
    {"GET", "/admin/v1/members/{m}", "GET", "", ""},
    {"GET", "/admin/v1/terminals", "GET", "", ""},
    {"GET", "/admin/v1/roster", "GET", "", ""},
    {"GET", "/admin/v1/checkpoints", "GET", "", ""},
    {"GET", "/admin/v1/peers", "GET", "", ""},
    {"POST", "/admin/v1/links", "POST", R"({"state":"up","force":true})", R"({"state":0})"},
};

// Regression: POST /admin/v1/links parsed its body before the token was checked, and
// {"state":0} without a token answered 500 and wrote an error line (anyone could fill the log).
TEST_F(ApiRulesTest, EveryRouteChecksTheTokenBeforeItLooksAtTheBodyAndChangesNothing) {
  const std::string before = state();
  for (bool is_admin : {false, true}) {
    for (const Route& r : is_admin ? kAdminRoutes : kPosRoutes) {
      SCOPED_TRACE(r.method + " " + r.path);
      const std::uint16_t port = is_admin ? node_->admin_port() : node_->api_port();
      const std::string path = fill(r.path);
      for (const std::string& body :
           {std::string("\xff{not json"), std::string(R"({"state":0})"), r.bad_type}) {
        EXPECT_TRUE(IsError(HttpClient(port).request(r.method, path, body), 401, "unauthorized"));
        EXPECT_TRUE(
            IsError(HttpClient(port, "opt_" + std::string(64, '0')).request(r.method, path, body),
                    401, "unauthorized"));
      }
      // Also a wrong method: authentication comes first.
      EXPECT_TRUE(IsError(HttpClient(port).request("DELETE", path, ""), 401, "unauthorized"));
    }
  }
  EXPECT_TRUE(IsError(HttpClient(node_->admin_port(), node_->pos_token())
                          .post_raw("/admin/v1/links", R"({"state":0})"),
                      403, "forbidden"));
  EXPECT_EQ(state(), before);
  ExpectNoErrorLogged();
}

TEST_F(ApiRulesTest, EveryKnownPathWithAnotherMethodIs405WithAnAllowHeader) {
  const std::string before = state();
  for (bool is_admin : {false, true}) {
    for (const Route& r : is_admin ? kAdminRoutes : kPosRoutes) {
      SCOPED_TRACE(r.method + " " + r.path);
      HttpClient client = is_admin ? admin() : pos();
      const std::string path = fill(r.path);
      std::vector<std::string> wrong = {"DELETE", "PUT", "PATCH"};
      if (r.allow.find("GET") == std::string::npos) wrong.push_back("GET");
      if (r.allow.find("POST") == std::string::npos) wrong.push_back("POST");
      for (const std::string& method : wrong) {
        auto res = client.request(method, path, method == "GET" ? "" : "\xff{garbage");
        EXPECT_TRUE(IsError(res, 405, "method_not_allowed")) << method;
        EXPECT_EQ(res.headers["allow"], r.allow) << method;
      }
    }
  }
  for (auto [port, path] :
       {std::pair{node_->api_port(), "/v1/health"}, {node_->admin_port(), "/admin/v1/health"}}) {
    auto res = HttpClient(port).request("POST", path, "{}");
    EXPECT_TRUE(IsError(res, 405, "method_not_allowed")) << path;
    EXPECT_EQ(res.headers["allow"], "GET") << path;
  }
  EXPECT_EQ(state(), before);
  ExpectNoErrorLogged();
}

TEST_F(ApiRulesTest, EveryBodyWithAnUnknownOrMistypedFieldIs400AndChangesNothing) {
  const std::string before = state();
  for (bool is_admin : {false, true}) {
    for (const Route& r : is_admin ? kAdminRoutes : kPosRoutes) {
      if (r.method != "POST") continue;
      SCOPED_TRACE(r.path);
      HttpClient client = is_admin ? admin() : pos();
      const std::string path = fill(r.path);
      EXPECT_TRUE(IsError(client.post_raw(path, r.bad_field), 400, "invalid_argument"))
          << r.bad_field;
      EXPECT_TRUE(IsError(client.post_raw(path, r.bad_type), 400, "invalid_argument"))
          << r.bad_type;
      for (const char* body :
           {"", "[]", "\"up\"", "{\"state\":\"up\"", "{\"a\":1,\"a\":1}", "null"}) {
        EXPECT_TRUE(IsError(client.post_raw(path, body), 400, "invalid_argument")) << body;
      }
    }
  }
  EXPECT_EQ(state(), before);
  ExpectNoErrorLogged();
}

// Regression: a reversal with a request_id that another operation had used answered 200 with
// that operation's stored answer, so a till was told a reversal happened when none did.
TEST_F(ApiRulesTest, ReversalWithARequestIdUsedByAnotherOperationIs400AndWritesNothing) {
  const std::string other = enroll("41000002");
  ok(pos().post("/v1/members/" + other + "/topup",
                {{"request_id", "other-topup"}, {"amount_minor", 300}}));
  ok(pos().post("/v1/members/" + other + "/spend",
                {{"request_id", "other-spend"}, {"amount_minor", 100}}));
  const std::string second = ok(pos().post("/v1/members/" + member_ + "/topup",
                                           {{"request_id", "second-topup"}, {"amount_minor", 50}}))
                                 .value("op", "");
  ok(pos().post("/v1/ops/" + second + "/reverse", {{"request_id", "rev-second"}}));
  const std::string before = state();
  for (const char* used : {"setup-topup", "other-topup", "other-spend", "rev-second"}) {
    SCOPED_TRACE(used);
    auto r = pos().post("/v1/ops/" + op_ + "/reverse", {{"request_id", used}});
    EXPECT_TRUE(IsError(r, 400, "invalid_argument"));
    EXPECT_NE(r.json().value("message", "").find("already used"), std::string::npos)
        << r.describe();
  }
  EXPECT_EQ(state(), before);
  // The same reversal asked again is still a replay of its first answer.
  Json again = ok(pos().post("/v1/ops/" + second + "/reverse", {{"request_id", "rev-second"}}));
  EXPECT_TRUE(again.value("replayed", false));
  EXPECT_EQ(state(), before);
}

}  // namespace
}  // namespace outpost::test
