// The `outpost` CLI (node/cli/outpost_main.cc) as a user runs it: the real binary, a real data
// dir, stdout/stderr/exit code captured. Checks every subcommand with --json, the exit codes
// (0 ok, 1 refused, 2 bad input or usage), --help everywhere, and that each bad input of
// issue 2 gets a one-line error and leaves the database unchanged.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../unit/test_util.h"
#include "outpost/crypto/crypto.h"
#include "test_process.h"

namespace outpost {
namespace {

using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitBadInput = 2;

bool is_one_line(const std::string& s) {
  return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

class CliTest : public ::testing::Test {
 protected:
  // Runs `outpost ARGS...` with no OUTPOST_DATA from the environment.
  test::CommandResult run(const std::vector<std::string>& args) {
    test::ProcessOptions opts;
    opts.extra_env["OUTPOST_DATA"] = "";
    return test::run_command(OUTPOST_CLI, args, opts);
  }
  // Runs `outpost --data DATA [--json] ARGS...`.
  test::CommandResult cli(std::vector<std::string> args, bool as_json = true) {
    std::vector<std::string> full = {"--data", data_};
    if (as_json) full.push_back("--json");
    full.insert(full.end(), args.begin(), args.end());
    return run(full);
  }
  // Runs a command that must exit with `code` and returns its JSON stdout.
  json cli_json(const std::vector<std::string>& args, int code = kExitOk) {
    auto r = cli(args);
    EXPECT_TRUE(r.finished && r.exit.exited_with(code)) << join(args) << ": " << r.describe();
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << join(args) << ": stdout is not JSON (" << e.what() << "): " << r.out;
      return json::object();
    }
  }
  static std::string join(const std::vector<std::string>& args) {
    std::string s = "outpost";
    for (const auto& a : args) s += " '" + a + "'";
    return s;
  }

  void init() {
    json st = cli_json({"init", "--name", "store-1"});
    node_id_ = st.value("node_id", "");
    ASSERT_EQ(node_id_.size(), 32u) << st.dump();
  }
  // Enrolls a member and returns its id.
  std::string add_member(const std::string& card, const std::string& phone = "") {
    std::vector<std::string> args = {"member", "add", "--card", card, "--name", "Ann " + card};
    if (!phone.empty()) args.insert(args.end(), {"--phone", phone});
    json j = cli_json(args);
    return j.value("member", "");
  }
  std::uint64_t ops() { return cli_json({"status"}).value("ops", std::uint64_t{999999}); }
  std::string db_path() const { return data_ + "/outpost.db"; }
  std::string key_path() const { return data_ + "/node.key"; }
  std::string dump() { return test::dump_sqlite(db_path()); }

  // Asserts that `args` is bad input: exit 2, one line on stderr naming the problem (contains
  // `needle`), nothing on stdout, and no change to the database.
  void expect_bad_input(const std::vector<std::string>& args, const std::string& needle) {
    std::string before = dump();
    ASSERT_FALSE(before.empty());
    auto r = cli(args, /*as_json=*/false);
    ASSERT_TRUE(r.finished) << r.describe();
    EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << join(args) << ": " << r.describe();
    EXPECT_TRUE(is_one_line(r.err)) << join(args) << ": stderr is not one line: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << join(args) << ": " << r.err;
    EXPECT_EQ(r.out, "") << join(args);
    EXPECT_EQ(dump(), before) << join(args) << " changed the database";
  }

  test::TempDir tmp_{"outpost-cli"};
  std::string data_ = tmp_.file("data");
  std::string node_id_;
};

// --- the happy paths, with --json ---

TEST_F(CliTest, InitCreatesDataDirAndStatusShowsTheNode) {
  init();
  EXPECT_EQ(test::file_mode(data_), 0700);
  EXPECT_EQ(test::file_mode(key_path()), 0600);
  json st = cli_json({"status"});
  EXPECT_EQ(st["node_id"], node_id_);
  EXPECT_EQ(st["name"], "store-1");
  EXPECT_EQ(st["role"], "store");
  EXPECT_EQ(st["ops"], 0);
}

TEST_F(CliTest, InitOfAnInitializedDirExitsTwoAndKeepsTheKey) {
  init();
  std::string key = test::read_file(key_path());
  auto r = cli({"init", "--name", "again"}, false);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_EQ(test::read_file(key_path()), key);
}

TEST_F(CliTest, MemberAddShowAndFindByCardAndPhone) {
  init();
  std::string id = add_member("40001234", "+4915112345");
  ASSERT_EQ(id.size(), 32u);
  json shown = cli_json({"member", "show", "40001234"});
  EXPECT_EQ(shown["id"], id);
  EXPECT_EQ(shown["card"], "40001234");
  EXPECT_EQ(shown["name"], "Ann 40001234");
  EXPECT_EQ(shown["tier"], "member");
  EXPECT_EQ(cli_json({"member", "show", id})["card"], "40001234");

  json by_card = cli_json({"member", "find", "--card", "40001234"});
  ASSERT_TRUE(by_card.is_array());
  ASSERT_EQ(by_card.size(), 1u);
  EXPECT_EQ(by_card[0]["id"], id);
  json by_phone = cli_json({"member", "find", "--phone", "+4915112345"});
  ASSERT_EQ(by_phone.size(), 1u);
  EXPECT_EQ(by_phone[0]["id"], id);
  EXPECT_TRUE(cli_json({"member", "find", "--card", "40009999"}).empty());

  // Human output works too.
  auto human = cli({"member", "show", "40001234"}, false);
  EXPECT_TRUE(human.exit.exited_with(kExitOk)) << human.describe();
  EXPECT_NE(human.out.find("40001234"), std::string::npos);
}

TEST_F(CliTest, EarnRedeemTopupSpendReverseHistoryAndLogVerify) {
  init();
  std::string id = add_member("40001234");
  json earn = cli_json({"earn", "40001234", "--purchase", "12345", "--receipt", "R-1"});
  EXPECT_EQ(earn["kind"], "earn");
  EXPECT_EQ(earn["amount"], 123);
  EXPECT_EQ(earn["points"]["balance"], 123);
  json redeem = cli_json({"redeem", "40001234", "--points", "23"});
  EXPECT_EQ(redeem["points"]["balance"], 100);
  json topup = cli_json({"topup", id, "--amount", "5000"});
  EXPECT_EQ(topup["wallet"]["balance"], 5000);
  json spend = cli_json({"spend", "40001234", "--amount", "1200"});
  EXPECT_EQ(spend["wallet"]["balance"], 3800);
  EXPECT_EQ(spend["wallet"]["rights_here"], 3800);

  json rev = cli_json({"reverse", spend["op"].get<std::string>()});
  EXPECT_EQ(rev["kind"], "reverse");
  EXPECT_EQ(rev["wallet"]["balance"], 5000);

  json hist = cli_json({"history", "40001234"});
  ASSERT_TRUE(hist.is_array());
  ASSERT_EQ(hist.size(), 6u);
  EXPECT_EQ(hist[0]["kind"], "reverse") << "newest first";
  EXPECT_EQ(hist[0]["reverses"], spend["op"]);
  bool spend_marked = false;
  for (const auto& op : hist) {
    if (op["op"] == spend["op"]) spend_marked = op.value("reversed_by", "") == rev["op"];
  }
  EXPECT_TRUE(spend_marked) << hist.dump(2);
  EXPECT_EQ(cli_json({"history", "40001234", "--limit", "2"}).size(), 2u);

  json verify = cli_json({"log", "verify"});
  EXPECT_EQ(verify["ok"], true) << verify.dump();
  EXPECT_EQ(verify["ops_checked"], 6);
  EXPECT_TRUE(verify["findings"].empty());
  EXPECT_EQ(ops(), 6u);

  auto human = cli({"log", "verify"}, false);
  EXPECT_TRUE(human.exit.exited_with(kExitOk)) << human.describe();
  EXPECT_NE(human.out.find("OK"), std::string::npos) << human.out;
}

TEST_F(CliTest, RepeatedRequestIdReturnsTheFirstAnswer) {
  init();
  add_member("40001234");
  json first = cli_json({"topup", "40001234", "--amount", "500", "--request-id", "pos-1:77"});
  std::uint64_t n = ops();
  json again = cli_json({"topup", "40001234", "--amount", "500", "--request-id", "pos-1:77"});
  EXPECT_EQ(again["replayed"], true);
  EXPECT_EQ(again["op"], first["op"]);
  EXPECT_EQ(again["wallet"]["balance"], 500);
  EXPECT_EQ(ops(), n);
}

TEST_F(CliTest, RequestIdReusedWithAnotherAmountExitsTwoAndChangesNothing) {
  init();
  add_member("40001234");
  cli_json({"topup", "40001234", "--amount", "500", "--request-id", "pos-1:77"});
  std::uint64_t n = ops();
  auto r = cli({"topup", "40001234", "--amount", "900", "--request-id", "pos-1:77"}, false);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_NE(r.err.find("already used"), std::string::npos) << r.err;
  EXPECT_EQ(ops(), n);
}

// --- refusals: exit 1 ---

TEST_F(CliTest, OverspendExitsOneWithBalanceRightsAndShortfall) {
  init();
  add_member("40001234");
  cli_json({"topup", "40001234", "--amount", "700"});
  std::string before = dump();
  json r = cli_json({"spend", "40001234", "--amount", "1000"}, kExitRefused);
  EXPECT_EQ(r["error"], "insufficient_rights");
  EXPECT_EQ(r["balance"], 700);
  EXPECT_EQ(r["rights_here"], 700);
  EXPECT_EQ(r["shortfall"], 300);
  EXPECT_EQ(dump(), before);

  auto human = cli({"redeem", "40001234", "--points", "1"}, false);
  EXPECT_TRUE(human.exit.exited_with(kExitRefused)) << human.describe();
  EXPECT_TRUE(is_one_line(human.err)) << human.err;
  EXPECT_NE(human.err.find("shortfall 1"), std::string::npos) << human.err;
}

TEST_F(CliTest, DoubleReversalExitsOneAndChangesNothing) {
  init();
  add_member("40001234");
  json t = cli_json({"topup", "40001234", "--amount", "700"});
  cli_json({"reverse", t["op"].get<std::string>()});
  std::string before = dump();
  json r = cli_json({"reverse", t["op"].get<std::string>()}, kExitRefused);
  EXPECT_EQ(r["error"], "already_reversed");
  auto human = cli({"reverse", t["op"].get<std::string>()}, false);
  EXPECT_TRUE(human.exit.exited_with(kExitRefused)) << human.describe();
  EXPECT_TRUE(is_one_line(human.err)) << human.err;
  EXPECT_NE(human.err.find("already reversed"), std::string::npos) << human.err;
  EXPECT_EQ(dump(), before);
}

TEST_F(CliTest, ReversalOfSpentTopupExitsOne) {
  init();
  add_member("40001234");
  json t = cli_json({"topup", "40001234", "--amount", "700"});
  cli_json({"spend", "40001234", "--amount", "100"});
  std::uint64_t n = ops();
  cli_json({"reverse", t["op"].get<std::string>()}, kExitRefused);
  EXPECT_EQ(ops(), n);
}

// --- --help ---

TEST_F(CliTest, HelpWorksOnEverySubcommand) {
  const std::vector<std::vector<std::string>> cases = {
      {"--help"},
      {"init", "--help"},
      {"member", "--help"},
      {"member", "add", "--help"},
      {"member", "show", "--help"},
      {"member", "find", "--help"},
      {"member", "update", "--help"},
      {"earn", "--help"},
      {"redeem", "--help"},
      {"topup", "--help"},
      {"spend", "--help"},
      {"reverse", "--help"},
      {"history", "--help"},
      {"log", "--help"},
      {"log", "verify", "--help"},
      {"status", "--help"},
      {"backup", "--help"},
      {"restore", "--help"},
      {"fence", "show", "--help"},
      {"fence", "release", "--help"},
      {"rules", "show", "--help"},
      {"hq", "rules", "--help"},
      {"report", "--help"},
      {"-h"},
  };
  for (const auto& args : cases) {
    auto r = run(args);  // no data dir needed for help
    EXPECT_TRUE(r.finished && r.exit.exited_with(kExitOk)) << join(args) << ": " << r.describe();
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << join(args) << ": " << r.out;
  }
}

// --- usage errors: exit 2 ---

TEST_F(CliTest, UsageErrorsExitTwo) {
  init();
  const std::vector<std::vector<std::string>> cases = {
      {},                     // no subcommand
      {"frobnicate"},         // unknown subcommand
      {"member"},             // member needs a subcommand
      {"topup", "40001234"},  // missing --amount
      {"topup", "40001234", "--amount", "5", "--bogus"},
      {"history", "40001234", "--limit", "0"},            // out of the allowed range
      {"member", "find", "--card", "1", "--phone", "2"},  // mutually exclusive
      {"backup"},                                         // missing --out
      {"restore"},                                        // missing FILE
      {"fence", "release"},                               // missing --yes
      {"rules"},                                          // rules needs a subcommand
  };
  std::string before = dump();
  for (const auto& args : cases) {
    auto r = cli(args, false);
    EXPECT_TRUE(r.finished && r.exit.exited_with(kExitBadInput))
        << join(args) << ": " << r.describe();
    EXPECT_FALSE(r.err.empty()) << join(args);
  }
  EXPECT_EQ(dump(), before);
}

// --- bad input: exit 2, one line, database unchanged ---

TEST_F(CliTest, BadAmountsExitTwoWithOneLineAndChangeNothing) {
  init();
  add_member("40001234");
  cli_json({"topup", "40001234", "--amount", "100"});
  cli_json({"earn", "40001234", "--purchase", "1000"});
  std::uint64_t n = ops();
  const std::vector<std::pair<std::string, std::string>> commands = {
      {"earn", "--purchase"}, {"redeem", "--points"}, {"topup", "--amount"}, {"spend", "--amount"}};
  const std::vector<std::string> bad = {"0",
                                        "-5",
                                        "1.5",
                                        "+5",
                                        " 5",
                                        "5 ",
                                        "abc",
                                        "1e3",
                                        "0x10",
                                        "10000000000000",
                                        "99999999999999999999"};
  for (const auto& [cmd, flag] : commands) {
    for (const auto& amount : bad) {
      std::string what = flag.substr(2);  // the error names the field: purchase/points/amount
      expect_bad_input({cmd, "40001234", flag, amount}, what);
    }
  }
  EXPECT_EQ(ops(), n);
}

TEST_F(CliTest, BadAmountWithJsonPrintsErrorObjectAndOneLine) {
  init();
  add_member("40001234");
  std::string before = dump();
  auto r = cli({"topup", "40001234", "--amount", "1.5"});
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  json j = json::parse(r.out);
  EXPECT_EQ(j["error"], "invalid_argument");
  EXPECT_NE(j["message"].get<std::string>().find("1.5"), std::string::npos);
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_EQ(dump(), before);
}

TEST_F(CliTest, UnknownMemberAndUnknownOpExitTwoAndChangeNothing) {
  init();
  add_member("40001234");
  std::uint64_t n = ops();
  expect_bad_input({"topup", "49999999", "--amount", "5"}, "49999999");
  expect_bad_input({"earn", "ffffffffffffffffffffffffffffffff", "--purchase", "5"},
                   "unknown member");
  expect_bad_input({"member", "show", "49999999"}, "49999999");
  expect_bad_input({"history", "49999999"}, "49999999");
  expect_bad_input({"reverse", node_id_ + ":999"}, "unknown op");
  expect_bad_input({"reverse", std::string(32, 'a') + ":1"}, "unknown op");
  EXPECT_EQ(ops(), n);
}

TEST_F(CliTest, MalformedCardPhoneBirthdayNameAndOpRefExitTwoAndChangeNothing) {
  init();
  add_member("40001234");
  std::uint64_t n = ops();
  expect_bad_input({"member", "add", "--card", "1234", "--name", "Bo"}, "card");
  expect_bad_input({"member", "add", "--card", "1234567x", "--name", "Bo"}, "card");
  expect_bad_input({"member", "add", "--card", "12345678901234567890", "--name", "Bo"}, "card");
  expect_bad_input({"member", "add", "--card", "50001234", "--name", "Bo", "--phone", "12-34-56"},
                   "phone");
  expect_bad_input({"member", "add", "--card", "50001234", "--name", "Bo", "--phone", "123"},
                   "phone");
  expect_bad_input(
      {"member", "add", "--card", "50001234", "--name", "Bo", "--birthday", "1990-02-30"},
      "birthday");
  expect_bad_input({"member", "add", "--card", "50001234", "--name", ""}, "name");
  expect_bad_input({"member", "add", "--card", "50001234", "--name", std::string(101, 'n')},
                   "name");
  expect_bad_input({"member", "find", "--card", "12ab"}, "card");
  expect_bad_input({"member", "find", "--phone", "phone"}, "phone");
  expect_bad_input({"member", "find"}, "--card or --phone");
  expect_bad_input({"member", "show", "not-a-member"}, "not-a-member");
  expect_bad_input({"topup", "12ab", "--amount", "5"}, "12ab");
  expect_bad_input({"reverse", "garbage"}, "ORIGIN:SEQ");
  expect_bad_input({"reverse", node_id_ + ":x"}, "ORIGIN:SEQ");
  expect_bad_input({"topup", "40001234", "--amount", "5", "--request-id", "bad id"}, "request_id");
  EXPECT_EQ(ops(), n);
}

// --- data dirs that are not usable: exit 2, one line, nothing changed ---

TEST_F(CliTest, NoDataDirExitsTwo) {
  auto r = run({"status"});
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--data"), std::string::npos) << r.err;
}

TEST_F(CliTest, DataDirThatIsAFileExitsTwo) {
  test::write_file(data_, "just a file\n");
  auto r = cli({"status"}, false);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_EQ(test::read_file(data_), "just a file\n");
}

TEST_F(CliTest, DataDirWithoutDatabaseExitsTwoAndCreatesNothing) {
  ASSERT_EQ(::mkdir(data_.c_str(), 0700), 0);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status"},
        std::vector<std::string>{"topup", "40001234", "--amount", "5"}}) {
    auto r = cli(args, false);
    EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
    EXPECT_TRUE(is_one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find("not an Outpost data dir"), std::string::npos) << r.err;
  }
  EXPECT_EQ(test::file_mode(db_path()), -1) << "a command other than init must not create a db";
}

TEST_F(CliTest, UnreadableDataDirExitsTwo) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a mode-000 directory anyway";
  init();
  ASSERT_EQ(::chmod(data_.c_str(), 0), 0);
  auto r = cli({"status"}, false);
  ::chmod(data_.c_str(), 0700);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("cannot read"), std::string::npos) << "the error must say why: " << r.err;
}

TEST_F(CliTest, ForeignDatabaseExitsTwoAndIsLeftUnchanged) {
  ASSERT_EQ(::mkdir(data_.c_str(), 0700), 0);
  raw_exec(db_path(),
           "CREATE TABLE invoices(id INTEGER PRIMARY KEY, total INTEGER);"
           "INSERT INTO invoices VALUES(1, 100);");
  std::string bytes = test::read_file(db_path());
  auto r = cli({"status"}, false);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("not an Outpost database"), std::string::npos) << r.err;
  EXPECT_TRUE(test::read_file(db_path()) == bytes) << "the foreign file's bytes changed";
  // init must refuse to take it over as well.
  auto i = cli({"init", "--name", "x"}, false);
  EXPECT_TRUE(i.exit.exited_with(kExitBadInput)) << i.describe();
  EXPECT_TRUE(test::read_file(db_path()) == bytes) << "init changed the foreign file";
}

TEST_F(CliTest, NonSqliteDatabaseFileExitsTwo) {
  ASSERT_EQ(::mkdir(data_.c_str(), 0700), 0);
  test::write_file(db_path(), std::string(4096, 'Z'));
  auto r = cli({"status"}, false);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
}

TEST_F(CliTest, DatabaseFromANewerVersionExitsTwoAndIsLeftUnchanged) {
  init();
  add_member("40001234");
  auto st = cli_json({"status"});
  int newer = st["schema_version"].get<int>() + 1;
  raw_exec(db_path(), "PRAGMA user_version=" + std::to_string(newer));
  std::string before = dump();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status"},
        std::vector<std::string>{"topup", "40001234", "--amount", "5"}}) {
    auto r = cli(args, false);
    EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
    EXPECT_TRUE(is_one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find("newer"), std::string::npos) << r.err;
  }
  EXPECT_EQ(dump(), before);
}

TEST_F(CliTest, CorruptedKeyFileExitsTwoAndChangesNothing) {
  init();
  add_member("40001234");
  std::string key = test::read_file(key_path());
  std::size_t pos = std::string("outpost-key v1 ed25519-seed ").size() + 5;
  key[pos] = key[pos] == '0' ? '1' : '0';
  test::write_file(key_path(), key);
  ::chmod(key_path().c_str(), 0600);
  std::string before = dump();
  auto r = cli({"topup", "40001234", "--amount", "5"}, false);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("node.key"), std::string::npos) << r.err;
  EXPECT_EQ(dump(), before);
}

TEST_F(CliTest, GroupReadableKeyFileExitsTwoWithChmodHint) {
  init();
  ASSERT_EQ(::chmod(key_path().c_str(), 0640), 0);
  auto r = cli({"status"}, false);
  EXPECT_TRUE(r.exit.exited_with(kExitBadInput)) << r.describe();
  EXPECT_TRUE(is_one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
}

// --- reports (docs/reports.md) ---

TEST_F(CliTest, ReportsReadTheReplicaAndSayWhatDataTheyUsed) {
  init();
  add_member("40001234");
  add_member("40005678");
  cli_json({"earn", "40001234", "--purchase", "12345"});
  cli_json({"earn", "40001234", "--purchase", "655"});
  cli_json({"topup", "40005678", "--amount", "5000"});
  json k = cli_json({"report", "kpis"});
  EXPECT_EQ(k["report"], "kpis");
  EXPECT_EQ(k["members"], 2);
  EXPECT_EQ(k["active_members"], 1);
  EXPECT_EQ(k["repeat_members"], 1);
  EXPECT_EQ(k["repurchase_rate_bp"], 10000);
  EXPECT_EQ(k["visits"], 2);
  EXPECT_EQ(k["spend_minor"], 13000);
  EXPECT_EQ(k["spend_per_visit_minor"], 6500);
  EXPECT_EQ(k["data"]["ops"], 5);
  EXPECT_EQ(k["data"]["version_vector"][node_id_], 5);
  json l = cli_json({"report", "liability", "--point-value", "1/2"});
  EXPECT_EQ(l["points"], 129);  // 123 + 6 points at the default earn rate
  EXPECT_EQ(l["wallet_minor"], 5000);
  EXPECT_EQ(l["points_value_minor"], 64);
  ASSERT_EQ(l["by_node"].size(), 1u);
  EXPECT_EQ(l["by_node"][0]["node"], "store-1");
  json q = cli_json({"report", "quadrants", "--store", "store-1"});
  EXPECT_EQ(q["period"]["store"], "store-1");
  EXPECT_EQ(q["active_members"], 1);
  EXPECT_EQ(q["inactive_members"], 1);

  const std::string svg = tmp_.file("q.svg");
  auto drawn = cli({"report", "quadrants", "--svg", svg}, false);
  ASSERT_TRUE(drawn.exit.exited_with(kExitOk)) << drawn.describe();
  EXPECT_NE(drawn.out.find("知己 true friends"), std::string::npos) << drawn.out;
  EXPECT_NE(test::slurp(svg).find("<circle"), std::string::npos);
  auto csv = cli({"report", "liability", "--csv"}, false);
  ASSERT_TRUE(csv.exit.exited_with(kExitOk)) << csv.describe();
  EXPECT_EQ(csv.out.rfind("node,points,stored value\r\nstore-1,129,50.00\r\n", 0), 0u) << csv.out;
}

TEST_F(CliTest, ReportBadInputExitsTwoWithOneLineAndChangesNothing) {
  init();
  add_member("40001234");
  expect_bad_input({"report", "churn"}, "unknown report 'churn'");
  expect_bad_input({"report", "kpis", "--from", "2026-13"}, "YYYY-MM");
  expect_bad_input({"report", "kpis", "--from", "2026-06", "--to", "2026-01"}, "after it ends");
  expect_bad_input({"report", "rfm", "--store", "store-9"}, "no node named 'store-9'");
  expect_bad_input({"report", "quadrants", "--min-visits", "2"}, "give both thresholds");
  expect_bad_input({"report", "liability", "--point-value", "x"}, "a point value is");
  expect_bad_input({"report", "kpis", "--svg", tmp_.file("k.svg")},
                   "--svg draws the quadrants report only");
  // With --json the error is also a JSON object on stdout, as for every verb.
  json both = cli_json({"report", "kpis", "--csv"}, kExitBadInput);
  EXPECT_EQ(both["error"], "invalid_argument");
  EXPECT_NE(both.value("message", "").find("not both"), std::string::npos) << both.dump();
}

}  // namespace
}  // namespace outpost
