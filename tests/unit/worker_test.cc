// The node's background threads (node/include/outpost/node/job_thread.h, worker.h): the bounded
// queue and order of JobThread, its stop that hands queued jobs over cancelled, LedgerWorker's
// group commit (requests queued during a commit share the next one), and the latch of a failed
// group commit: the commit is made to fail with an SQLite commit hook on the worker's own
// connection, and every later request is refused, at the worker and at the API, until a new
// worker (a restarted outpostd) opens the data dir again. Waits are for events, never for time.
#include "outpost/node/worker.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/node/api.h"
#include "outpost/node/job_thread.h"
#include "outpost/node/schema.h"
#include "test_util.h"

namespace outpost::node {
namespace {

constexpr std::uint64_t kNowMs = 1705320000000ULL;  // 2024-01-15T12:00:00Z

// A gate a job waits at until the test opens it, and that tells the test when a job reached it.
class Gate {
 public:
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mu_);
    arrived_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  void wait_arrived() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return arrived_; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool arrived_ = false;
  bool open_ = false;
};

// Collects what jobs report, from any thread; wait_for(n) blocks until n reports arrived.
class Reports {
 public:
  void add(std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(std::move(what));
    cv_.notify_all();
  }
  std::vector<std::string> wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return items_.size() >= n; });
    return items_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> items_;
};

TEST(JobThreadTest, RunsJobsInSubmissionOrderAndRefusesPastItsQueueBound) {
  JobThread thread(2);
  Gate gate;
  Reports reports;
  ASSERT_TRUE(thread.submit([&](bool) {
    gate.arrive_and_wait();
    reports.add("first");
  }));
  gate.wait_arrived();  // the first job holds the thread; the queue is empty
  ASSERT_TRUE(thread.submit([&](bool) { reports.add("second"); }));
  ASSERT_TRUE(thread.submit([&](bool) { reports.add("third"); }));
  EXPECT_FALSE(thread.submit([&](bool) { reports.add("over the bound"); })) << "a third queued job";
  gate.open();
  EXPECT_EQ(reports.wait_for(3), (std::vector<std::string>{"first", "second", "third"}));
  thread.stop();
  EXPECT_FALSE(thread.submit([](bool) {})) << "a stopped thread takes no job";
}

TEST(JobThreadTest, StopHandsQueuedJobsOverCancelledInsteadOfDroppingThem) {
  constexpr int kProbesMax = 20'000;  // hang guard of the wait below, 1 ms a probe
  JobThread thread(kProbesMax + 2);   // never full: only stop() makes submit() refuse
  Gate gate;
  Reports reports;
  ASSERT_TRUE(thread.submit([&](bool cancelled) {
    gate.arrive_and_wait();
    reports.add(cancelled ? "first cancelled" : "first ran");
  }));
  gate.wait_arrived();
  ASSERT_TRUE(thread.submit(
      [&](bool cancelled) { reports.add(cancelled ? "queued cancelled" : "queued ran"); }));
  std::thread stopper([&] { thread.stop(); });
  // stop() has begun once submit() refuses; only then may the first job finish.
  bool refused = false;
  for (int i = 0; i < kProbesMax && !refused; ++i) {
    refused = !thread.submit([](bool) {});
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(refused);
  gate.open();
  stopper.join();
  EXPECT_EQ(reports.wait_for(2), (std::vector<std::string>{"first ran", "queued cancelled"}));
}

class LedgerWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    data_ = dir_.file("data");
    ASSERT_TRUE(Ledger::init(data_, {"worker-store", "store"}).is_ok());
    auto ledger = Ledger::open(data_, clock_);
    ASSERT_TRUE(ledger.is_ok()) << ledger.status().to_string();
    auto token = (*ledger)->add_terminal("till-1", "pos");
    ASSERT_TRUE(token.is_ok());
    token_ = *token;
    auto r = (*ledger)->enroll({"setup", "50000001", "Alice Ames", "", ""});
    ASSERT_TRUE(r.is_ok() && !r->refused);
    member_ = r->done.member;
    worker_ = std::make_unique<LedgerWorker>(std::move(ledger).value());
    worker_->start();
  }
  void TearDown() override {
    if (worker_) worker_->stop();
  }

  // A mutating top-up of 1 minor unit; reports "durable" or "not durable" (and "ran" first when
  // its run() was called).
  LedgerWorker::Task topup(Reports& reports, const std::string& request_id, Gate* hold = nullptr) {
    LedgerWorker::Task t;
    t.mutating = true;
    t.run = [this, &reports, request_id, hold](Ledger& l) {
      if (hold) hold->arrive_and_wait();
      reports.add("ran");
      (void)l.topup(request_id, member_, 1, "");
    };
    t.done = [&reports](bool durable) { reports.add(durable ? "durable" : "not durable"); };
    return t;
  }
  // Makes every later commit of the worker's connection fail (SQLite turns it into a rollback).
  void make_commits_fail() {
    Reports installed;
    LedgerWorker::Task t;
    t.run = [](Ledger& l) {
      sqlite3_commit_hook(
          l.store().db().handle(), [](void*) { return 1; }, nullptr);
    };
    t.done = [&installed](bool) { installed.add("hook"); };
    ASSERT_TRUE(worker_->submit(std::move(t)));
    installed.wait_for(1);
  }
  std::int64_t wallet_in_fresh_ledger() {
    auto l = Ledger::open(data_, clock_);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    if (!l.is_ok()) return -1;
    auto j = schema::json_of((*l)->member_view(member_), schema::member_json);
    return j.is_ok() ? (*j)["wallet"].value("balance", std::int64_t{-1}) : -1;
  }

  test::TempDir dir_{"outpost-worker"};
  sync::ManualEnv clock_{kNowMs};
  std::string data_;
  std::string token_;
  sync::MemberId member_{};
  std::unique_ptr<LedgerWorker> worker_;
};

TEST_F(LedgerWorkerTest, RequestsQueuedDuringABatchShareTheNextCommit) {
  Gate gate;
  Reports first, rest;
  ASSERT_TRUE(worker_->submit(topup(first, "t-0", &gate)));
  gate.wait_arrived();
  constexpr int kQueued = 20;
  for (int i = 1; i <= kQueued; ++i)
    ASSERT_TRUE(worker_->submit(topup(rest, "t-" + std::to_string(i))));
  gate.open();
  first.wait_for(2);
  auto got = rest.wait_for(2 * kQueued);
  EXPECT_EQ(std::count(got.begin(), got.end(), "durable"), kQueued);
  worker_->stop();  // the counters are updated after the answers: read them once it is done
  const LedgerWorker::Stats s = worker_->stats();
  EXPECT_EQ(s.batches, 2u) << "one commit for the held request, one for all that queued behind it";
  EXPECT_EQ(s.largest_batch, static_cast<std::uint64_t>(kQueued));
  EXPECT_EQ(s.failed_commits, 0u);
  worker_.reset();
  EXPECT_EQ(wallet_in_fresh_ledger(), kQueued + 1);
}

// Regression (issue 12): a failed group commit was logged and the next batch went ahead, on a
// ledger whose memory could be ahead of its database.
TEST_F(LedgerWorkerTest, FailedCommitLatchesAndEveryLaterRequestIsRefusedUntilRestart) {
  make_commits_fail();
  Gate gate;
  Reports failing, queued;
  ASSERT_TRUE(worker_->submit(topup(failing, "fails", &gate)));
  gate.wait_arrived();
  // Queued before the failure, run after it: refused without running.
  LedgerWorker::Task read;
  read.run = [&queued](Ledger&) { queued.add("read ran"); };
  read.done = [&queued](bool ran) { queued.add(ran ? "read answered" : "read refused"); };
  ASSERT_TRUE(worker_->submit(std::move(read)));
  gate.open();
  EXPECT_EQ(failing.wait_for(2), (std::vector<std::string>{"ran", "not durable"}));
  EXPECT_EQ(queued.wait_for(1), (std::vector<std::string>{"read refused"}));

  const Status failure = worker_->failure();
  EXPECT_EQ(failure.code(), Code::kUnavailable);
  EXPECT_NE(failure.message().find("group commit"), std::string::npos) << failure.to_string();
  EXPECT_NE(failure.message().find("restarted"), std::string::npos) << failure.to_string();
  EXPECT_EQ(worker_->stats().failed_commits, 1u);
  Reports later;
  EXPECT_FALSE(worker_->submit(topup(later, "later"))) << "a mutating request after the failure";
  LedgerWorker::Task later_read;
  later_read.run = [](Ledger&) {};
  EXPECT_FALSE(worker_->submit(std::move(later_read))) << "a read after the failure";

  // The API says so, on the POS routes and on the health check a load balancer polls.
  {
    Api api(*worker_, clock_);
    auto ask = [&](const std::string& path, const std::string& token) {
      std::mutex mu;
      std::condition_variable cv;
      std::optional<HttpResponse> got;
      HttpRequest req;
      req.method = "GET";
      req.path = path;
      req.authorization = token.empty() ? "" : "Bearer " + token;
      api.handle_pos(req, [&](HttpResponse r) {
        std::lock_guard<std::mutex> lock(mu);
        got = std::move(r);
        cv.notify_all();
      });
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return got.has_value(); });
      return *got;
    };
    for (const HttpResponse& r : {ask("/v1/status", token_), ask("/v1/health", "")}) {
      EXPECT_EQ(r.status, 503) << r.body;
      Json body = Json::parse(r.body, nullptr, false);
      EXPECT_EQ(body.value("error", ""), "storage_failed") << r.body;
      EXPECT_NE(body.value("message", "").find("restarted"), std::string::npos) << r.body;
    }
  }

  // A restart (a new worker over the data dir) serves again; the failed top-up left nothing.
  worker_->stop();
  worker_.reset();
  EXPECT_EQ(wallet_in_fresh_ledger(), 0);
  auto reopened = Ledger::open(data_, clock_);
  ASSERT_TRUE(reopened.is_ok());
  worker_ = std::make_unique<LedgerWorker>(std::move(reopened).value());
  worker_->start();
  EXPECT_TRUE(worker_->failure().is_ok());
  Reports after;
  ASSERT_TRUE(worker_->submit(topup(after, "after-restart")));
  EXPECT_EQ(after.wait_for(2), (std::vector<std::string>{"ran", "durable"}));
}

}  // namespace
}  // namespace outpost::node
