// node/ POS API (node/src/api/api_pos.cc) in process, over a real LedgerWorker and data dir, with
// the HTTP layer left out: requests go straight to Api::handle_pos and answers are caught from the
// Responder. Covers what the HTTP tests cannot reach: member PIN checks run on the PIN thread and
// never stall the ledger worker (a verifier hook holds a check open while other requests are
// served), the races of a check with a PIN change and with a lockout, and the bearer-token
// cache. No test depends on timing: every wait is for an event.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/api.h"
#include "outpost/node/worker.h"
#include "test_util.h"

namespace outpost::node {
namespace {

constexpr std::uint64_t kNowMs = 1705320000000ULL;  // 2024-01-15T12:00:00Z

// One answer of the API, set from whichever thread answers; wait() blocks until it is. The
// responder shares the state, so a late answer after a failed test ended is harmless.
class Answer {
 public:
  Responder responder() {
    return [state = state_](HttpResponse r) {
      std::lock_guard<std::mutex> lock(state->mu);
      EXPECT_FALSE(state->done) << "a request was answered twice";
      state->response = std::move(r);
      state->done = true;
      state->cv.notify_all();
    };
  }
  const HttpResponse& wait() {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->cv.wait(lock, [this] { return state_->done; });
    return state_->response;
  }
  bool done() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->done;
  }
  Json json() { return Json::parse(wait().body, nullptr, false); }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    HttpResponse response;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// A PIN verifier that holds every check open until release() (the real Argon2id check follows).
// A check that arrives on a thread where holding it would deadlock the test (the ledger worker
// or the thread that made the request) is not held but recorded: that is the defect under test.
class HeldVerifier {
 public:
  bool check(const std::string& hash, const std::string& pin) {
    std::unique_lock<std::mutex> lock(mu_);
    ++calls_;
    cv_.notify_all();
    const auto self = std::this_thread::get_id();
    if (self == worker_thread_ || self == caller_thread_) {
      on_forbidden_thread_ = true;
    } else {
      cv_.wait(lock, [this] { return released_; });
    }
    lock.unlock();
    return crypto::verify_pin(hash, pin);
  }
  void set_threads(std::thread::id worker, std::thread::id caller) {
    std::lock_guard<std::mutex> lock(mu_);
    worker_thread_ = worker;
    caller_thread_ = caller;
  }
  // Blocks until `n` checks have started.
  void wait_for_calls(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return calls_ >= n; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  bool on_forbidden_thread() {
    std::lock_guard<std::mutex> lock(mu_);
    return on_forbidden_thread_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  bool released_ = false;
  bool on_forbidden_thread_ = false;
  std::thread::id worker_thread_;
  std::thread::id caller_thread_;
};

class ApiPinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    const std::string data = dir_.file("data");
    ASSERT_TRUE(Ledger::init(data, {"pin-store", "store"}).is_ok());
    auto ledger = Ledger::open(data, clock_);
    ASSERT_TRUE(ledger.is_ok()) << ledger.status().to_string();
    Ledger& l = **ledger;
    auto pos = l.add_terminal("till-1", "pos");
    auto admin = l.add_terminal("admin-1", "admin");
    ASSERT_TRUE(pos.is_ok() && admin.is_ok());
    pos_token_ = *pos;
    admin_token_ = *admin;
    alice_ = enroll(l, "50000001", "Alice Ames");
    bob_ = enroll(l, "50000002", "Bob Burns");
    auto alice_id = sync::parse_id(alice_);
    ASSERT_TRUE(alice_id.is_ok());
    alice_id_ = *alice_id;
    auto t = l.topup("setup-topup", alice_id_, 1000, "");
    ASSERT_TRUE(t.is_ok() && !t->refused);
    auto p = l.set_pin("setup-pin", alice_id_, "4711");
    ASSERT_TRUE(p.is_ok() && !p->refused);

    worker_ = std::make_unique<LedgerWorker>(std::move(ledger).value());
    worker_->start();
    api_ = std::make_unique<Api>(*worker_, clock_);
    api_->set_pin_verifier([this](const std::string& h, const std::string& pin) { return verifier_.check(h, pin); });
    verifier_.set_threads(worker_thread_id(), std::this_thread::get_id());
  }

  // As outpostd stops: the worker drains first (its tasks may call back into the Api), then the
  // Api joins its PIN thread (a check still running is then answered 503 by the stopped worker).
  void TearDown() override {
    verifier_.release();
    worker_->stop();
    api_.reset();
  }

  std::string enroll(Ledger& l, const std::string& card, const std::string& name) {
    auto r = l.enroll({"setup-" + card, card, name, "", ""});
    EXPECT_TRUE(r.is_ok() && !r->refused);
    return r.is_ok() && !r->refused ? sync::id_hex(r->done.member) : "";
  }

  std::thread::id worker_thread_id() {
    std::thread::id id;
    Answer a;
    LedgerWorker::Task task;
    task.run = [&id](Ledger&) { id = std::this_thread::get_id(); };
    auto respond = a.responder();
    task.done = [respond](bool) { respond(HttpResponse{}); };
    EXPECT_TRUE(worker_->submit(std::move(task)));
    a.wait();
    return id;
  }

  // Runs `fn` on the worker (as the ledger's owner) and waits for it.
  void on_worker(std::function<void(Ledger&)> fn) {
    Answer a;
    LedgerWorker::Task task;
    task.mutating = true;
    task.run = std::move(fn);
    auto respond = a.responder();
    task.done = [respond](bool durable) { respond(HttpResponse{durable ? 200 : 500, ""}); };
    ASSERT_TRUE(worker_->submit(std::move(task)));
    ASSERT_EQ(a.wait().status, 200);
  }

  // Sends a POS request; the answer arrives in `answer`.
  void send(Answer& answer, const std::string& method, const std::string& path, const Json& body,
            const std::string& token) {
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.authorization = "Bearer " + token;
    req.body = body.is_null() ? "" : body.dump();
    api_->handle_pos(req, answer.responder());
  }
  HttpResponse call(const std::string& method, const std::string& path, const Json& body = nullptr) {
    Answer a;
    send(a, method, path, body, pos_token_);
    return a.wait();
  }
  void spend(Answer& a, const std::string& request_id, std::uint64_t amount, const std::string& pin) {
    send(a, "POST", "/v1/members/" + alice_ + "/spend",
         Json{{"request_id", request_id}, {"amount_minor", amount}, {"pin", pin}}, pos_token_);
  }
  std::int64_t wallet(const std::string& member) {
    HttpResponse r = call("GET", "/v1/members/" + member);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body)["wallet"].value("balance", std::int64_t{-1});
  }

  test::TempDir dir_{"outpost-api-pin"};
  sync::ManualEnv clock_{kNowMs};
  std::string pos_token_, admin_token_;
  std::string alice_, bob_;
  sync::MemberId alice_id_{};
  HeldVerifier verifier_;
  std::unique_ptr<LedgerWorker> worker_;
  std::unique_ptr<Api> api_;
};

// Regression: the Argon2id check of a PIN spend ran on the ledger worker and stalled every other
// request of the node for its duration (~0.2 s per PIN spend).
TEST_F(ApiPinTest, OtherRequestsAreServedWhileAPinCheckIsInProgress) {
  Answer pin_spend;
  spend(pin_spend, "spend-1", 250, "4711");
  verifier_.wait_for_calls(1);
  ASSERT_FALSE(verifier_.on_forbidden_thread()) << "the PIN was checked on the ledger worker or the io thread";

  // The check is held open; the worker keeps serving everyone else.
  for (int i = 0; i < 20; ++i) {
    HttpResponse r = call("POST", "/v1/members/" + bob_ + "/topup",
                          Json{{"request_id", "bob-" + std::to_string(i)}, {"amount_minor", 10}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(wallet(bob_), 200);
  EXPECT_EQ(wallet(alice_), 1000) << "the spend went through before its PIN check ended";
  EXPECT_FALSE(pin_spend.done());

  verifier_.release();
  EXPECT_EQ(pin_spend.wait().status, 200) << pin_spend.wait().body;
  EXPECT_EQ(wallet(alice_), 750);
  EXPECT_EQ(verifier_.calls(), 1);
}

TEST_F(ApiPinTest, SettingAPinDoesNotHashOnTheWorker) {
  Answer pin_spend;
  spend(pin_spend, "spend-1", 10, "4711");
  verifier_.wait_for_calls(1);  // the PIN thread is busy: a new PIN's hash waits behind it
  Answer set_pin;
  send(set_pin, "POST", "/v1/members/" + bob_ + "/pin", Json{{"request_id", "pin-bob"}, {"pin", "1234"}},
       pos_token_);
  HttpResponse r = call("POST", "/v1/members/" + bob_ + "/topup", Json{{"request_id", "bob-1"}, {"amount_minor", 5}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(set_pin.done());
  verifier_.release();
  EXPECT_EQ(set_pin.wait().status, 200) << set_pin.wait().body;
  EXPECT_EQ(pin_spend.wait().status, 200);
  EXPECT_TRUE(Json::parse(call("GET", "/v1/members/" + bob_).body).value("pin_set", false));
}

TEST_F(ApiPinTest, PinChangedDuringTheCheckIsCheckedAgainAgainstTheNewPin) {
  Answer pin_spend;
  spend(pin_spend, "spend-1", 250, "4711");
  verifier_.wait_for_calls(1);
  on_worker([this](Ledger& l) {
    const auto admin = Ledger::pin_override(alice_id_, "pin-reset by test");
    auto r = l.set_pin("pin-change", alice_id_, "9999", &admin);
    ASSERT_TRUE(r.is_ok() && !r->refused);
  });
  verifier_.release();
  const HttpResponse& r = pin_spend.wait();
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(Json::parse(r.body).value("error", ""), "pin_wrong");
  EXPECT_EQ(verifier_.calls(), 2) << "the old PIN's verdict must not decide for the new PIN";
  EXPECT_EQ(wallet(alice_), 1000);

  Answer right;
  spend(right, "spend-2", 250, "9999");
  EXPECT_EQ(right.wait().status, 200) << right.wait().body;
  EXPECT_EQ(wallet(alice_), 750);
}

TEST_F(ApiPinTest, LockoutThatBeganDuringTheCheckRefusesEvenTheRightPin) {
  Answer pin_spend;
  spend(pin_spend, "spend-1", 250, "4711");
  verifier_.wait_for_calls(1);
  on_worker([this](Ledger& l) {  // five wrong PINs, as if given at this or another store
    const std::string hash = (*l.store().load_member(alice_id_))->field(sync::Field::kPinHash);
    const Ledger::PinVerdict wrong{hash, false};
    for (int i = 0; i < Ledger::kPinFailuresMax; ++i) {
      ASSERT_TRUE(l.pin_gate(alice_id_, sync::OpKind::kSpend, true, &wrong, kNowMs).is_ok());
    }
  });
  verifier_.release();
  const HttpResponse& r = pin_spend.wait();
  EXPECT_EQ(r.status, 423) << r.body;
  EXPECT_EQ(wallet(alice_), 1000);
}

TEST_F(ApiPinTest, WrongPinsCheckedWhileOthersWaitAllCountTowardTheLockout) {
  std::vector<std::unique_ptr<Answer>> wrong;
  for (int i = 0; i < Ledger::kPinFailuresMax; ++i) {
    wrong.push_back(std::make_unique<Answer>());
    spend(*wrong.back(), "wrong-" + std::to_string(i), 10, "0000");
  }
  verifier_.wait_for_calls(1);
  verifier_.release();
  int wrong_pin = 0, locked = 0;
  for (auto& a : wrong) {
    const std::string error = a->json().value("error", "");
    wrong_pin += error == "pin_wrong";
    locked += error == "pin_locked";
  }
  EXPECT_EQ(wrong_pin, Ledger::kPinFailuresMax - 1);
  EXPECT_EQ(locked, 1);
  Answer right;
  spend(right, "right", 10, "4711");
  EXPECT_EQ(right.wait().status, 423) << right.wait().body;
  EXPECT_EQ(wallet(alice_), 1000);
}

TEST_F(ApiPinTest, RepeatedSpendRequestIsAnsweredWithoutAnotherPinCheck) {
  Answer first;
  spend(first, "spend-1", 100, "4711");
  verifier_.release();
  ASSERT_EQ(first.wait().status, 200);
  Answer again;
  spend(again, "spend-1", 100, "0000");  // the replay does not look at the PIN
  EXPECT_EQ(again.wait().status, 200) << again.wait().body;
  EXPECT_TRUE(again.json().value("replayed", false));
  EXPECT_EQ(verifier_.calls(), 1);
  EXPECT_EQ(wallet(alice_), 900);
}

TEST_F(ApiPinTest, SpendOfAMemberWithoutPinNeedsNoCheck) {
  ASSERT_EQ(call("POST", "/v1/members/" + bob_ + "/topup", Json{{"request_id", "t"}, {"amount_minor", 50}}).status, 200);
  HttpResponse r = call("POST", "/v1/members/" + bob_ + "/spend", Json{{"request_id", "s"}, {"amount_minor", 20}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(verifier_.calls(), 0);
}

// --- the rights broker (DebitFlow's kAskBroker), with a broker that grants by a top-up here ---

// Kinds of this node's alerts, newest first.
std::vector<std::string> alert_kinds(Ledger& l) {
  std::vector<std::string> kinds;
  auto alerts = l.store().recent_alerts(50);
  EXPECT_TRUE(alerts.is_ok());
  if (alerts.is_ok()) {
    for (const auto& a : *alerts) kinds.push_back(a.kind);
  }
  return kinds;
}

TEST_F(ApiPinTest, SpendShortOfRightsAsksTheBrokerOnceAndTheSecondDebitSucceeds) {
  int asked = 0;
  api_->set_rights_broker([this, &asked](const sync::MemberId& member, sync::Account account,
                                         std::uint64_t amount, const sync::RightsView&,
                                         const std::function<void(bool, bool)>& done) {
    ++asked;
    EXPECT_EQ(account, sync::Account::kWallet);
    // Rights arrive here (as a grant from a holder would): a top-up of the shortfall.
    LedgerWorker::Task grant;
    grant.mutating = true;
    grant.run = [member, amount](Ledger& l) {
      ASSERT_TRUE(l.topup("grant", member, amount, "").is_ok());
    };
    grant.done = [done](bool durable) { done(true, durable); };
    ASSERT_TRUE(worker_->submit(std::move(grant)));
  });
  ASSERT_EQ(call("POST", "/v1/members/" + bob_ + "/topup",
                 Json{{"request_id", "t"}, {"amount_minor", 100}})
                .status,
            200);
  HttpResponse r = call("POST", "/v1/members/" + bob_ + "/spend",
                        Json{{"request_id", "s"}, {"amount_minor", 150}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(wallet(bob_), 0);
}

TEST_F(ApiPinTest, BrokerNotGrantingAnswers409WithRightsRequestTriedAndAnAlert) {
  int asked = 0;
  api_->set_rights_broker([&asked](const sync::MemberId&, sync::Account, std::uint64_t amount,
                                   const sync::RightsView&,
                                   const std::function<void(bool, bool)>& done) {
    ++asked;
    EXPECT_EQ(amount, 50u);
    done(true, false);
  });
  ASSERT_EQ(call("POST", "/v1/members/" + bob_ + "/topup",
                 Json{{"request_id", "t"}, {"amount_minor", 100}})
                .status,
            200);
  HttpResponse r = call("POST", "/v1/members/" + bob_ + "/spend",
                        Json{{"request_id", "s"}, {"amount_minor", 150}});
  ASSERT_EQ(r.status, 409) << r.body;
  Json body = Json::parse(r.body);
  EXPECT_EQ(body["error"], "insufficient_rights");
  EXPECT_EQ(body["rights_request_tried"], true);
  EXPECT_EQ(asked, 1);
  std::vector<std::string> kinds;
  on_worker([&kinds](Ledger& l) { kinds = alert_kinds(l); });
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "refused_spend"), 1);
  EXPECT_EQ(wallet(bob_), 100);
}

// --- bearer tokens ---

TEST_F(ApiPinTest, ConfirmedTokenIsRememberedAndAWrongOneStillRefused) {
  EXPECT_EQ(api_->token_cache().size(), 0u);
  ASSERT_EQ(call("GET", "/v1/members/" + bob_).status, 200);
  EXPECT_EQ(api_->token_cache().size(), 1u);
  std::string wrong = pos_token_;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  Answer a;
  send(a, "GET", "/v1/members/" + bob_, nullptr, wrong);
  EXPECT_EQ(a.wait().status, 401);
  EXPECT_EQ(api_->token_cache().size(), 1u) << "an unknown token must not be remembered";
}

TEST_F(ApiPinTest, RememberedPosTokenIsStillForbiddenOnAdminRoutes) {
  ASSERT_EQ(call("GET", "/v1/members/" + bob_).status, 200);  // remembered now
  Answer a;
  HttpRequest req;
  req.method = "GET";
  req.path = "/admin/v1/alerts";
  req.authorization = "Bearer " + pos_token_;
  api_->handle_admin(req, a.responder());
  EXPECT_EQ(a.wait().status, 403) << a.wait().body;
  Answer b;
  req.authorization = "Bearer " + admin_token_;
  api_->handle_admin(req, b.responder());
  EXPECT_EQ(b.wait().status, 200) << b.wait().body;
}

TEST_F(ApiPinTest, ForgottenTokensAreConfirmedWithTheDatabaseAgain) {
  ASSERT_EQ(call("GET", "/v1/members/" + bob_).status, 200);
  api_->token_cache().clear();
  EXPECT_EQ(api_->token_cache().size(), 0u);
  ASSERT_EQ(call("GET", "/v1/members/" + bob_).status, 200);
  EXPECT_EQ(api_->token_cache().size(), 1u);
}

TEST(TokenCacheTest, EntryExpiresAfterItsTtlAndWhenTheClockGoesBack) {
  TokenCache cache;
  const crypto::Hash32 h = crypto::sha256(crypto::view(std::string("opt_token")));
  cache.remember(h, {"till-1", "pos", 0}, 1000);
  ASSERT_TRUE(cache.find(h, 1000).has_value());
  EXPECT_EQ(cache.find(h, 1000 + limits::kTokenCacheTtlMs - 1)->name, "till-1");
  EXPECT_FALSE(cache.find(h, 1000 + limits::kTokenCacheTtlMs).has_value());
  EXPECT_EQ(cache.size(), 0u) << "an expired entry is dropped";
  cache.remember(h, {"till-1", "pos", 0}, 5000);
  EXPECT_FALSE(cache.find(h, 4999).has_value()) << "a clock that went back must not extend trust";
}

TEST(TokenCacheTest, IsBoundedAndEvictsTheOldestEntry) {
  TokenCache cache;
  auto hash_of = [](std::size_t i) { return crypto::sha256(crypto::view("opt_" + std::to_string(i))); };
  for (std::size_t i = 0; i <= limits::kTokenCacheEntriesMax; ++i) {
    cache.remember(hash_of(i), {"t" + std::to_string(i), "pos", 0}, 100 + i);
  }
  EXPECT_EQ(cache.size(), limits::kTokenCacheEntriesMax);
  EXPECT_FALSE(cache.find(hash_of(0), 200).has_value());
  EXPECT_TRUE(cache.find(hash_of(limits::kTokenCacheEntriesMax), 200).has_value());
}

}  // namespace
}  // namespace outpost::node
