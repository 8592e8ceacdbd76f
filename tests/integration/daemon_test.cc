// outpostd as a process: many concurrent clients (every acknowledged op in the log exactly once,
// balances equal the replay of the log, group commit batches), shutdown by SIGTERM and crash by
// SIGKILL while clients are sending (nothing acknowledged is lost), and refusal to start on a bad
// config or a taken port. Clients are bounded (threads x ops); waits are bounded; nothing here
// asserts on how long anything took.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "outpost/node/ledger.h"
#include "outpost/storage/sqlite.h"
#include "outpostd_harness.h"

namespace outpost::test {
namespace {

// Waits (bounded) until `pred` holds; false if it never did.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds bound = kWaitBoundDefault) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

// One request a client sent, and (if a 200 came back) the op the node answered with.
struct Sent {
  std::string request_id;
  std::string kind;  // topup | spend | earn
  std::string member;
  std::uint64_t amount = 0;
  std::string acked_op;  // empty: no 200 answer
  std::int64_t acked_points = 0;  // for earn: points credited
};

std::string path_for(const Sent& s) { return "/v1/members/" + s.member + "/" + s.kind; }
Json body_for(const Sent& s) {
  const char* key = s.kind == "earn" ? "purchase_minor" : "amount_minor";
  return Json{{"request_id", s.request_id}, {key, s.amount}};
}

// Enrolls `n` members and tops each one up with `initial` (so spends are never refused).
std::vector<std::string> enroll_members(OutpostNode& node, int n, std::uint64_t initial) {
  std::vector<std::string> ids;
  HttpClient c = node.pos_client();
  for (int i = 0; i < n; ++i) {
    auto r = c.post("/v1/members", {{"request_id", "enroll-" + std::to_string(i)},
                                    {"card", std::to_string(50000000 + i)},
                                    {"name", "Member " + std::to_string(i)}});
    EXPECT_EQ(r.status, 200) << r.describe();
    ids.push_back(r.json().value("member", ""));
    auto t = c.post("/v1/members/" + ids.back() + "/topup",
                    {{"request_id", "initial-" + std::to_string(i)}, {"amount_minor", initial}});
    EXPECT_EQ(t.status, 200) << t.describe();
  }
  return ids;
}

// Every op of every member, read with `outpost --json history` (works with or without a running
// daemon). Fails the test on a CLI error.
std::vector<Json> log_of(const OutpostNode& node, const std::vector<std::string>& members) {
  std::vector<Json> ops;
  for (const auto& m : members) {
    auto r = node.cli({"--json", "history", m, "--limit", "1000"});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.describe();
    Json arr = Json::parse(r.out, nullptr, false);
    EXPECT_TRUE(arr.is_array()) << r.out;
    if (!arr.is_array()) continue;
    EXPECT_LT(arr.size(), 1000u) << "history limit reached: the check would miss ops";
    for (auto& op : arr) ops.push_back(op);
  }
  return ops;
}

// Checks: every acknowledged request is in the log exactly once, as the op it was answered with;
// every op in the log with a client request_id comes from a request that was sent; no two
// requests share an op. Returns the log's ops by request_id.
std::map<std::string, Json> ExpectAckedOpsExactlyOnce(const std::vector<Json>& log,
                                                      const std::vector<Sent>& sent) {
  std::map<std::string, std::vector<Json>> by_rid;
  std::set<std::string> refs;
  for (const auto& op : log) {
    by_rid[op.value("request_id", "")].push_back(op);
    EXPECT_TRUE(refs.insert(op.value("op", "")).second) << "op listed twice: " << op.dump();
  }
  std::set<std::string> sent_ids;
  std::size_t acked = 0;
  for (const auto& s : sent) {
    sent_ids.insert(s.request_id);
    if (s.acked_op.empty()) continue;
    ++acked;
    auto it = by_rid.find(s.request_id);
    if (it == by_rid.end()) {
      ADD_FAILURE() << "acknowledged request " << s.request_id << " (op " << s.acked_op << ") is not in the log";
      continue;
    }
    EXPECT_EQ(it->second.size(), 1u) << "request " << s.request_id << " is in the log "
                                     << it->second.size() << " times";
    EXPECT_EQ(it->second.front().value("op", ""), s.acked_op) << s.request_id;
    EXPECT_EQ(it->second.front().value("kind", ""), s.kind) << s.request_id;
  }
  EXPECT_GT(acked, 0u);
  std::map<std::string, Json> out;
  for (const auto& [rid, ops] : by_rid) {
    bool setup = rid.rfind("enroll-", 0) == 0 || rid.rfind("initial-", 0) == 0;
    EXPECT_TRUE(setup || sent_ids.count(rid)) << "op from a request nobody sent: " << rid;
    EXPECT_EQ(ops.size(), 1u) << "request_id " << rid << " executed " << ops.size() << " times";
    out[rid] = ops.front();
  }
  return out;
}

// `outpost log verify` exits 0: signatures, chains, and stored state == replay of the log.
void ExpectLogVerifies(const OutpostNode& node) {
  auto v = node.cli({"log", "verify"});
  EXPECT_TRUE(v.exit.exited_with(0)) << v.describe();
  EXPECT_NE(v.out.find("log verify: OK"), std::string::npos) << v.out;
}

// Member balances from the CLI (the stored CRDT state).
Json member_of(const OutpostNode& node, const std::string& id) {
  auto r = node.cli({"--json", "member", "show", id});
  EXPECT_TRUE(r.exit.exited_with(0)) << r.describe();
  Json j = Json::parse(r.out, nullptr, false);
  return j.is_discarded() ? Json::object() : j;
}

// ---------------------------------------------------------------------------------------------

// GET /admin/v1/reports/NAME (docs/reports.md): the same report as `outpost report`, read on
// the report thread from its own connection; bad input is refused before any work.
TEST(DaemonTest, AdminReportsAnswerFromTheReplicaAndRefuseBadInput) {
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  const auto members = enroll_members(node, 3, 2'500);
  ASSERT_FALSE(HasFailure());
  HttpClient pos = node.pos_client();
  for (int i = 0; i < 2; ++i) {
    auto r = pos.post("/v1/members/" + members[0] + "/earn",
                      {{"request_id", "buy-" + std::to_string(i)}, {"purchase_minor", 10'000}});
    ASSERT_EQ(r.status, 200) << r.describe();
  }
  HttpClient admin = node.admin_client();
  auto k = admin.get("/admin/v1/reports/kpis");
  ASSERT_EQ(k.status, 200) << k.describe();
  EXPECT_EQ(k.json()["members"], 3);
  EXPECT_EQ(k.json()["active_members"], 1);
  EXPECT_EQ(k.json()["spend_minor"], 20'000);
  EXPECT_EQ(k.json()["data"]["ops"], 8);
  auto l = admin.get("/admin/v1/reports/liability?point_value=1/1");
  ASSERT_EQ(l.status, 200) << l.describe();
  EXPECT_EQ(l.json()["wallet_minor"], 7'500);
  EXPECT_EQ(l.json()["points"], 200);
  EXPECT_EQ(l.json()["points_value_minor"], 200);
  // The CLI, reading the same data dir while the daemon runs, says the same.
  auto cli = node.cli({"--json", "report", "liability", "--point-value", "1/1"});
  ASSERT_TRUE(cli.exit.exited_with(0)) << cli.describe();
  EXPECT_EQ(Json::parse(cli.out)["by_node"], l.json()["by_node"]);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"/admin/v1/reports/churn", "unknown report"},
      {"/admin/v1/reports/kpis?from=2026-13", "YYYY-MM"},
      {"/admin/v1/reports/kpis?from=2026-06&to=2026-01", "after it ends"},
      {"/admin/v1/reports/kpis?store=nowhere", "no node named 'nowhere'"},
      {"/admin/v1/reports/quadrants?min_visits=2", "give both thresholds"},
      {"/admin/v1/reports/rfm?limit=lots", "limit must be a whole number"},
  };
  for (const auto& [target, needle] : bad) {
    auto r = admin.get(target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.describe();
    EXPECT_NE(r.json().value("message", "").find(needle), std::string::npos)
        << target << ": " << r.body;
  }
  EXPECT_EQ(HttpClient(node.admin_port(), node.pos_token()).get("/admin/v1/reports/kpis").status,
            403);
  EXPECT_EQ(HttpClient(node.admin_port()).get("/admin/v1/reports/kpis").status, 401);
  EXPECT_EQ(admin.post("/admin/v1/reports/kpis", Json::object()).status, 405);
}

// 16 client threads x 25 ops, released together, each on its own keep-alive connection; some
// requests are sent twice (from a second connection) to exercise idempotency under concurrency.
TEST(DaemonTest, ConcurrentClientsEveryAcknowledgedOpIsInTheLogExactlyOnce) {
  constexpr int kThreads = 16;
  constexpr int kOpsPerThread = 25;
  constexpr int kMembers = 8;
  constexpr std::uint64_t kInitial = 1'000'000;
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  const auto members = enroll_members(node, kMembers, kInitial);
  ASSERT_FALSE(HasFailure());

  std::vector<std::vector<Sent>> per_thread(kThreads);
  std::vector<std::string> failures(kThreads);
  std::latch go(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c(node.api_port(), node.pos_token());
      HttpClient twin(node.api_port(), node.pos_token());
      go.arrive_and_wait();
      for (int i = 0; i < kOpsPerThread; ++i) {
        Sent s;
        s.request_id = "c" + std::to_string(t) + "-" + std::to_string(i);
        s.kind = i % 3 == 0 ? "topup" : i % 3 == 1 ? "spend" : "earn";
        s.member = members[(t + i) % kMembers];
        s.amount = 1 + (t * kOpsPerThread + i) % 97;
        if (s.kind == "earn") s.amount *= 100;  // a purchase that earns points
        auto r = c.post(path_for(s), body_for(s));
        if (r.status != 200) {
          failures[t] += s.request_id + ": " + r.describe() + "\n";
          per_thread[t].push_back(s);
          continue;
        }
        s.acked_op = r.json().value("op", "");
        if (s.kind == "earn") s.acked_points = r.json().value("amount", std::int64_t{0});
        if (i % 5 == 4) {  // the same request again, from another connection
          auto again = twin.post(path_for(s), body_for(s));
          if (again.status != 200 || again.json().value("op", "") != s.acked_op ||
              !again.json().value("replayed", false)) {
            failures[t] += s.request_id + " repeated: " + again.describe() + "\n";
          }
        }
        per_thread[t].push_back(s);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<Sent> sent;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], "") << "client thread " << t;
    sent.insert(sent.end(), per_thread[t].begin(), per_thread[t].end());
  }
  ASSERT_EQ(sent.size(), static_cast<std::size_t>(kThreads * kOpsPerThread));

  // Group commit batched concurrent requests into one transaction.
  Json n = node.admin_client().get("/admin/v1/node").json();
  ASSERT_TRUE(n.contains("group_commit")) << n.dump();
  EXPECT_GT(n["group_commit"].value("largest_batch", 0), 1) << n["group_commit"].dump();
  EXPECT_EQ(n["group_commit"].value("failed_commits", -1), 0);
  EXPECT_EQ(n.value("ops", 0), kMembers * 2 + kThreads * kOpsPerThread);

  ExitStatus exit;
  ASSERT_TRUE(node.stop(SIGTERM, &exit));
  EXPECT_TRUE(exit.exited_with(0)) << node.process()->describe();

  // Exactly once, and balances equal what the acknowledged answers add up to.
  const auto log = log_of(node, members);
  EXPECT_EQ(log.size(), static_cast<std::size_t>(kMembers * 2 + kThreads * kOpsPerThread));
  ExpectAckedOpsExactlyOnce(log, sent);
  std::map<std::string, std::int64_t> wallet, points;
  for (const auto& m : members) wallet[m] = kInitial;
  for (const auto& s : sent) {
    if (s.kind == "topup") wallet[s.member] += static_cast<std::int64_t>(s.amount);
    if (s.kind == "spend") wallet[s.member] -= static_cast<std::int64_t>(s.amount);
    if (s.kind == "earn") points[s.member] += s.acked_points;
  }
  for (const auto& m : members) {
    Json j = member_of(node, m);
    EXPECT_EQ(j["wallet"].value("balance", std::int64_t{-1}), wallet[m]) << m;
    EXPECT_EQ(j["points"].value("balance", std::int64_t{-1}), points[m]) << m;
  }
  // And the stored balances equal the replay of the signed log.
  ExpectLogVerifies(node);
}

// Client threads that send top-ups (unique request_ids) until a request fails or a bound is
// reached. Records every request sent and whether it was acknowledged.
class TopupLoad {
 public:
  TopupLoad(const OutpostNode& node, std::vector<std::string> members, int threads, int ops_per_thread_max)
      : port_(node.api_port()), token_(node.pos_token()), members_(std::move(members)),
        per_thread_(threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t, ops_per_thread_max] { run(t, ops_per_thread_max); });
    }
  }
  ~TopupLoad() { join(); }

  std::size_t acked() const { return acked_.load(); }
  void join() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<Sent> sent() const {
    std::vector<Sent> all;
    for (const auto& v : per_thread_) all.insert(all.end(), v.begin(), v.end());
    return all;
  }

 private:
  void run(int t, int ops_max) {
    HttpClient c(port_, token_);
    for (int i = 0; i < ops_max && !stop_; ++i) {
      Sent s;
      s.request_id = "L" + std::to_string(t) + "-" + std::to_string(i);
      s.kind = "topup";
      s.member = members_[(t + i) % members_.size()];
      s.amount = 1 + i % 50;
      per_thread_[t].push_back(s);
      auto r = c.post(path_for(s), body_for(s));
      if (r.status != 200) return;  // the daemon is stopping or gone
      per_thread_[t].back().acked_op = r.json().value("op", "");
      acked_++;
    }
  }

  std::uint16_t port_;
  std::string token_;
  std::vector<std::string> members_;
  std::vector<std::vector<Sent>> per_thread_;
  std::atomic<std::size_t> acked_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

constexpr int kLoadThreads = 8;
constexpr int kLoadOpsPerThreadMax = 400;
constexpr std::size_t kAcksBeforeSignal = 150;
constexpr int kLoadMembers = 8;

TEST(DaemonTest, SigtermWhileClientsSendExitsZeroAndKeepsEveryAcknowledgedOp) {
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  const auto members = enroll_members(node, kLoadMembers, 1);
  ASSERT_FALSE(HasFailure());
  TopupLoad load(node, members, kLoadThreads, kLoadOpsPerThreadMax);
  ASSERT_TRUE(wait_until([&] { return load.acked() >= kAcksBeforeSignal; }))
      << "clients got only " << load.acked() << " answers; " << node.process()->describe();

  ExitStatus exit;
  ASSERT_TRUE(node.stop(SIGTERM, &exit));
  load.join();
  EXPECT_TRUE(exit.exited_with(0)) << node.process()->describe();
  const std::string err = node.process()->stderr_text();
  EXPECT_NE(err.find("reason=SIGTERM"), std::string::npos) << err;
  EXPECT_NE(err.find("msg=stopped"), std::string::npos) << err;
  // A clean stop checkpoints the WAL into the database.
  std::error_code ec;
  auto wal = node.data_dir() + "/outpost.db-wal";
  EXPECT_TRUE(!std::filesystem::exists(wal, ec) || std::filesystem::file_size(wal, ec) == 0);

  const auto sent = load.sent();
  const auto log = log_of(node, members);
  auto by_rid = ExpectAckedOpsExactlyOnce(log, sent);
  // Balances equal the log (acknowledged ops plus any that were durable but not yet answered).
  std::map<std::string, std::int64_t> wallet;
  for (const auto& m : members) wallet[m] = 1;
  for (const auto& s : sent) {
    if (by_rid.count(s.request_id)) wallet[s.member] += static_cast<std::int64_t>(s.amount);
  }
  for (const auto& m : members) EXPECT_EQ(member_of(node, m)["wallet"].value("balance", std::int64_t{-1}), wallet[m]);
  ExpectLogVerifies(node);
}

TEST(DaemonTest, SigkillWhileClientsSendLosesNoAcknowledgedOpAndRestarts) {
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  const auto members = enroll_members(node, kLoadMembers, 1);
  ASSERT_FALSE(HasFailure());
  std::vector<Sent> sent;
  {
    TopupLoad load(node, members, kLoadThreads, kLoadOpsPerThreadMax);
    ASSERT_TRUE(wait_until([&] { return load.acked() >= kAcksBeforeSignal; }))
        << "clients got only " << load.acked() << " answers; " << node.process()->describe();
    node.kill9();
    load.join();
    sent = load.sent();
  }
  EXPECT_TRUE(node.process()->exit_status()->signaled);

  // Restart on the same data dir: every acknowledged op is there, exactly once.
  ASSERT_TRUE(node.start());
  ExpectAckedOpsExactlyOnce(log_of(node, members), sent);

  // Every request again, with its request_id: acknowledged ones answer as the first time; the
  // rest either were durable (answered from the log) or run now. Either way exactly once.
  HttpClient c = node.pos_client();
  std::size_t replayed = 0;
  for (auto& s : sent) {
    auto r = c.post(path_for(s), body_for(s));
    ASSERT_EQ(r.status, 200) << s.request_id << ": " << r.describe();
    if (!s.acked_op.empty()) {
      EXPECT_EQ(r.json().value("op", ""), s.acked_op) << s.request_id;
      EXPECT_TRUE(r.json().value("replayed", false)) << s.request_id;
    }
    replayed += r.json().value("replayed", false);
    s.acked_op = r.json().value("op", "");
  }
  EXPECT_GE(replayed, kAcksBeforeSignal);
  Json status = c.get("/v1/status").json();
  EXPECT_EQ(status.value("ops", std::size_t{0}), kLoadMembers * 2 + sent.size());

  ExitStatus exit;
  ASSERT_TRUE(node.stop(SIGTERM, &exit));
  EXPECT_TRUE(exit.exited_with(0)) << node.process()->describe();
  auto by_rid = ExpectAckedOpsExactlyOnce(log_of(node, members), sent);
  EXPECT_EQ(by_rid.size(), kLoadMembers * 2 + sent.size());
  ExpectLogVerifies(node);
}

TEST(DaemonTest, SigintStopsCleanlyWithExitZero) {
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  HttpClient idle = node.pos_client();
  ASSERT_EQ(idle.get("/v1/health").status, 200);  // an idle keep-alive connection stays open
  ExitStatus exit;
  ASSERT_TRUE(node.stop(SIGINT, &exit));
  EXPECT_TRUE(exit.exited_with(0)) << node.process()->describe();
  EXPECT_NE(node.process()->stderr_text().find("reason=SIGINT"), std::string::npos);
}

// A writer outside the daemon (an `outpost` CLI command) holding the database past the busy
// timeout fails one batch's BEGIN: its requests are refused 503 unavailable with nothing written,
// and the node serves as soon as the lock is gone. Nothing was written, so a busy database is not
// latched like a failed commit (worker_test.cc covers that latch).
TEST(DaemonTest, BusyDatabaseRefusesOneBatchWithoutLatchingTheNode) {
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  const std::string member = enroll_members(node, 1, 100).at(0);
  HttpClient c = node.pos_client();
  const Json topup = {{"request_id", "busy-1"}, {"amount_minor", 5}};
  {
    auto db = storage::Database::open(node.data_dir() + "/" + outpost::node::kDbFile,
                                      storage::OpenMode::kExisting);
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    ASSERT_TRUE((*db)->exec("BEGIN IMMEDIATE").is_ok());
    HttpResult r = c.post("/v1/members/" + member + "/topup", topup);
    EXPECT_EQ(r.status, 503) << r.describe();
    EXPECT_EQ(r.json().value("error", ""), "unavailable") << r.describe();
    ASSERT_TRUE((*db)->exec("ROLLBACK").is_ok());
  }
  EXPECT_EQ(c.get("/v1/health").status, 200) << "not latched";
  HttpResult again = c.post("/v1/members/" + member + "/topup", topup);
  ASSERT_EQ(again.status, 200) << again.describe();
  EXPECT_FALSE(again.json().contains("replayed")) << "the refused request had written nothing";
  EXPECT_EQ(again.json()["wallet"].value("balance", std::int64_t{0}), 105);
}

TEST(DaemonTest, LogLinesAreStructuredKeyValues) {
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  ASSERT_TRUE(node.stop());
  const std::string err = node.process()->stderr_text();
  std::istringstream lines(err);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_EQ(line.rfind("ts=", 0), 0u) << line;
    EXPECT_NE(line.find(" level="), std::string::npos) << line;
    EXPECT_NE(line.find(" node=store-1 "), std::string::npos) << line;
    EXPECT_NE(line.find(" msg="), std::string::npos) << line;
  }
  EXPECT_GE(n, 2);
  EXPECT_NE(err.find("msg=listening api=127.0.0.1:" + std::to_string(node.api_port())), std::string::npos) << err;
}

TEST(DaemonTest, PortsFileNamesTheBoundPortsAndPid) {
  OutpostNode node;
  ASSERT_TRUE(node.init());
  ASSERT_TRUE(node.start());
  auto kv = parse_key_values(slurp(node.ports_path()));
  EXPECT_EQ(kv["pid"], std::to_string(node.process()->pid()));
  EXPECT_EQ(kv["api"], "127.0.0.1:" + std::to_string(node.api_port()));
  EXPECT_EQ(kv["admin"], "127.0.0.1:" + std::to_string(node.admin_port()));
  EXPECT_NE(node.api_port(), 0);
  EXPECT_NE(node.admin_port(), 0);
  EXPECT_NE(node.api_port(), node.admin_port());
  EXPECT_TRUE(kv.count("peer"));
}

// ---------------------------------------------------------------------------------------------
// Refusing to start.

class DaemonConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.init()); }
  // Runs outpostd on `config` (written next to the node's data dir) and returns how it ended.
  CommandResult run(const std::string& config, std::vector<std::string> extra = {}) {
    write_file(node_.config_path(), config);
    std::vector<std::string> args = {"--config", node_.config_path()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_command(kOutpostdPath, args);
  }
  // Refused: exit code `code`, stderr names `needle`, and no ports file (it never listened).
  testing::AssertionResult Refused(const CommandResult& r, int code, const std::string& needle) {
    std::error_code ec;
    if (!r.finished || !r.exit.exited_with(code) || r.err.find(needle) == std::string::npos ||
        std::filesystem::exists(node_.ports_path(), ec)) {
      return testing::AssertionFailure() << "want exit " << code << " naming " << needle << "; got "
                                         << r.describe();
    }
    return testing::AssertionSuccess();
  }
  OutpostNode node_;
};

TEST_F(DaemonConfigTest, UnknownKeyExitsTwoNamingTheKey) {
  EXPECT_TRUE(Refused(run("data_dir = \"data\"\nlisten = \"127.0.0.1:0\"\n"), 2, "'listen'"));
  EXPECT_TRUE(Refused(run("data_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\nbacklog = 5\n"), 2, "'api.backlog'"));
}

TEST_F(DaemonConfigTest, BadAddressExitsTwoNamingTheKey) {
  EXPECT_TRUE(Refused(run("data_dir = \"data\"\n[api]\nlisten = \"localhost:8080\"\n"), 2, "'api.listen'"));
  EXPECT_TRUE(Refused(run("data_dir = \"data\"\n[admin]\nlisten = \"127.0.0.1:70000\"\n"), 2, "'admin.listen'"));
  EXPECT_TRUE(Refused(run("data_dir = \"data\"\n[[peers]]\nname = \"hq\"\naddress = \"hq:7000\"\n"), 2,
                      "'peers[0].address'"));
}

TEST_F(DaemonConfigTest, WrongTypeAndMissingDataDirExitTwo) {
  EXPECT_TRUE(Refused(run("data_dir = 7\n"), 2, "'data_dir'"));
  EXPECT_TRUE(Refused(run("role = \"store\"\n"), 2, "'data_dir'"));
}

TEST_F(DaemonConfigTest, RoleThatDoesNotMatchTheDataDirExitsTwo) {
  EXPECT_TRUE(Refused(run("data_dir = \"data\"\nrole = \"hq\"\n"), 2, "'role'"));
}

TEST_F(DaemonConfigTest, UninitializedDataDirExitsTwoWithAHint) {
  EXPECT_TRUE(Refused(run("data_dir = \"elsewhere\"\n"), 2, "elsewhere"));
}

TEST_F(DaemonConfigTest, MissingConfigFileAndBadArgumentsExitTwo) {
  auto r = run_command(kOutpostdPath, {"--config", node_.dir() + "/missing.toml"});
  EXPECT_TRUE(Refused(r, 2, "missing.toml"));
  EXPECT_TRUE(Refused(run_command(kOutpostdPath, {}), 2, "--config"));
  EXPECT_TRUE(Refused(run_command(kOutpostdPath, {"--frobnicate"}), 2, "--frobnicate"));
}

TEST_F(DaemonConfigTest, TakenPortExitsNonZeroNamingTheAddress) {
  // Hold a listening socket on an ephemeral port, then ask outpostd to listen there.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto r = run("data_dir = \"data\"\n[api]\nlisten = \"" + taken + "\"\n");
  ::close(fd);
  ASSERT_TRUE(r.finished) << r.describe();
  EXPECT_TRUE(r.exit.exited && r.exit.code != 0) << r.describe();
  EXPECT_NE(r.err.find("cannot listen on " + taken), std::string::npos) << r.err;
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::exists(node_.ports_path(), ec)) << "wrote a ports file without listening";
}

TEST_F(DaemonConfigTest, SecondDaemonOnTheSameDataDirRefusesToStartAndTheFirstKeepsServing) {
  ASSERT_TRUE(node_.start());
  auto r = run_command(kOutpostdPath, {"--config", node_.config_path()});
  ASSERT_TRUE(r.finished) << r.describe();
  EXPECT_TRUE(r.exit.exited && r.exit.code != 0) << r.describe();
  EXPECT_NE(r.err.find("another outpostd"), std::string::npos) << r.err;
  // --check still works beside the running daemon.
  EXPECT_TRUE(run_command(kOutpostdPath, {"--config", node_.config_path(), "--check"}).exit.exited_with(0));
  EXPECT_EQ(node_.pos_client().get("/v1/health").status, 200);
  ASSERT_TRUE(node_.stop());
  // kill -9 never leaves a stale lock: the kernel drops it with the process.
  ASSERT_TRUE(node_.start());
  node_.kill9();
  ASSERT_TRUE(node_.start());
}

TEST_F(DaemonConfigTest, CheckFlagValidatesWithoutListening) {
  auto r = run("data_dir = \"data\"\n", {"--check"});
  EXPECT_TRUE(r.exit.exited_with(0)) << r.describe();
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::exists(node_.ports_path(), ec));
}

}  // namespace
}  // namespace outpost::test
