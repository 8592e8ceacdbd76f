// outpost-top end to end: a real chain (HQ + two stores as outpostd processes on 127.0.0.1,
// enrolled through the `outpost` CLI as scripts/demo.sh does), outpost-top running under tmux
// against HQ's admin API, keys sent with `tmux send-keys` and the screen read back with
// `tmux capture-pane`. Checks that the overview lists every node, that a store whose link went
// down while the others kept writing shows as a lagging problem row, and that the member view
// shows a member's rights per named node; then the bad-input paths: wrong token (on screen and
// on exit, terminal restored after Ctrl-C), wrong address, and a port that is not an admin API.
// Skips when tmux is not installed. Every wait is a bounded poll; nothing asserts on time.
#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "outpostd_harness.h"

#ifndef OUTPOST_TOP
#error "OUTPOST_TOP (path of outpost-top) must be defined by the build"
#endif

namespace outpost::test {
namespace {

const std::string kTopPath = OUTPOST_TOP;
constexpr auto kScreenPoll = std::chrono::milliseconds(100);

// Returns the full path of `name` found on PATH, or nullopt.
std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// Waits (bounded) until `pred` holds; false if it never did.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds bound = kWaitBoundDefault,
                std::chrono::milliseconds poll = kScreenPoll) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

// The line of `screen` that contains `needle`, or "".
std::string line_with(const std::string& screen, const std::string& needle) {
  std::stringstream ss(screen);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.find(needle) != std::string::npos) return line;
  }
  return "";
}

// The overview row of node `name`: the line whose text after the 2-column marker starts with it.
std::string row_of(const std::string& screen, const std::string& name) {
  std::stringstream ss(screen);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.size() > 2 + name.size() && line.compare(2, name.size() + 1, name + " ") == 0) return line;
  }
  return "";
}

// A tmux server of its own (-L socket, no user config) holding one session; killed on
// destruction together with whatever runs in it.
class Tmux {
 public:
  Tmux(std::string tmux, std::string socket) : tmux_(std::move(tmux)), socket_(std::move(socket)) {}
  ~Tmux() { run({"kill-server"}); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  // Starts `shell_command` in a detached 100x30 session (TERM as tmux sets it).
  testing::AssertionResult start(const std::string& shell_command) {
    auto r = run({"new-session", "-d", "-s", "top", "-x", "100", "-y", "30", shell_command});
    if (!r.finished || !r.exit.exited_with(0)) return testing::AssertionFailure() << "tmux new-session: " << r.describe();
    return testing::AssertionSuccess();
  }
  std::string capture() {
    auto r = run({"capture-pane", "-p", "-t", "top"});
    return r.finished && r.exit.exited_with(0) ? r.out : "";
  }
  void keys(const std::vector<std::string>& keys) {
    std::vector<std::string> args = {"send-keys", "-t", "top"};
    args.insert(args.end(), keys.begin(), keys.end());
    run(args);
  }
  // Sends literal text (no key-name lookup).
  void type(const std::string& text) { run({"send-keys", "-t", "top", "-l", text}); }

  // Waits until the screen satisfies `pred`; returns the last screen seen in `out`.
  template <typename Pred>
  bool wait_screen(Pred pred, std::string* out) {
    return wait_until([&] {
      *out = capture();
      return pred(*out);
    });
  }

 private:
  CommandResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"-L", socket_, "-f", "/dev/null"});
    return run_command(tmux_, args);
  }
  std::string tmux_;
  std::string socket_;
};

// One node of the test chain: its data dir, tokens and daemon.
struct ChainNode {
  std::string name;
  std::string role;
  std::string data;
  std::string admin_token_file;
  std::string admin_token;
  std::string pos_token;
  std::unique_ptr<Process> daemon;
  std::uint16_t api_port = 0, admin_port = 0, peer_port = 0;

  std::string admin_address() const { return "127.0.0.1:" + std::to_string(admin_port); }
  HttpClient pos() const { return HttpClient(api_port, pos_token); }
  HttpClient admin() const { return HttpClient(admin_port, admin_token); }
};

// HQ and two stores enrolled by the CLI (hq init, init, enroll-request, hq enroll, init
// --enroll, terminal add), each store linking to HQ.
class TuiChainTest : public testing::Test {
 protected:
  void SetUp() override {
    auto tmux = find_on_path("tmux");
    if (!tmux) GTEST_SKIP() << "tmux is not installed (apt-get install tmux): the outpost-top end-to-end test needs it";
    tmux_path_ = *tmux;
  }

  testing::AssertionResult cli(const std::vector<std::string>& args, std::string* out = nullptr) {
    auto r = run_command(kCliPath, args);
    if (!r.finished || !r.exit.exited_with(0)) {
      std::string all;
      for (const auto& a : args) all += a + " ";
      return testing::AssertionFailure() << "outpost " << all << ": " << r.describe();
    }
    if (out) {
      *out = r.out;
      while (!out->empty() && std::isspace(static_cast<unsigned char>(out->back()))) out->pop_back();
    }
    return testing::AssertionSuccess();
  }

  testing::AssertionResult make_chain() {
    nodes_.resize(3);
    const char* names[] = {"hq", "store-1", "store-2"};
    for (int i = 0; i < 3; ++i) {
      nodes_[i].name = names[i];
      nodes_[i].role = i == 0 ? "hq" : "store";
      nodes_[i].data = dir_.file(names[i]);
    }
    if (auto r = cli({"--data", hq().data, "hq", "init", "--name", "hq"}); !r) return r;
    for (int i = 1; i < 3; ++i) {
      ChainNode& s = nodes_[i];
      std::string request = dir_.file(s.name + ".request.json"), enrollment = dir_.file(s.name + ".enroll.json");
      if (auto r = cli({"--data", s.data, "init", "--name", s.name}); !r) return r;
      if (auto r = cli({"--data", s.data, "enroll-request", "--out", request}); !r) return r;
      if (auto r = cli({"--data", hq().data, "hq", "enroll", s.name, "--role", "store", "--request", request, "--out",
                        enrollment});
          !r) {
        return r;
      }
      if (auto r = cli({"--data", s.data, "init", "--enroll", enrollment}); !r) return r;
    }
    for (auto& n : nodes_) {
      if (auto r = cli({"--data", n.data, "terminal", "add", "till-1"}, &n.pos_token); !r) return r;
      if (auto r = cli({"--data", n.data, "terminal", "add", "ops", "--role", "admin"}, &n.admin_token); !r) return r;
      n.admin_token_file = n.data + "/admin.token";
      write_file(n.admin_token_file, n.admin_token + "\n");
    }
    return testing::AssertionSuccess();
  }

  testing::AssertionResult start(ChainNode& n, const std::string& hq_peer_address) {
    std::string config = dir_.file(n.name + ".toml");
    std::string text = "data_dir = \"" + n.data + "\"\nrole = \"" + n.role +
                       "\"\nsync_interval_ms = 200\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = "
                       "\"127.0.0.1:0\"\n\n[peer]\nlisten = \"127.0.0.1:0\"\n";
    if (!hq_peer_address.empty()) text += "\n[[peers]]\nname = \"hq\"\naddress = \"" + hq_peer_address + "\"\n";
    write_file(config, text);
    std::string ports = n.data + "/outpostd.ports";
    std::error_code ec;
    std::filesystem::remove(ports, ec);
    n.daemon = std::make_unique<Process>(kOutpostdPath, std::vector<std::string>{"--config", config});
    if (auto s = n.daemon->started(); !s) return s;
    const pid_t pid = n.daemon->pid();
    auto ready = [pid](const std::string& c) {
      return !c.empty() && c.back() == '\n' && parse_key_values(c)["pid"] == std::to_string(pid);
    };
    if (auto w = wait_for_file(ports, n.daemon.get(), kWaitBoundDefault, ready); !w) return w;
    auto kv = parse_key_values(slurp(ports));
    auto api = parse_host_port(kv["api"]), admin = parse_host_port(kv["admin"]), peer = parse_host_port(kv["peer"]);
    if (!api || !admin || !peer) return testing::AssertionFailure() << "bad ports file: " << slurp(ports);
    n.api_port = api->port;
    n.admin_port = admin->port;
    n.peer_port = peer->port;
    return testing::AssertionSuccess();
  }

  testing::AssertionResult start_chain() {
    if (auto r = make_chain(); !r) return r;
    if (auto r = start(hq(), ""); !r) return r;
    std::string hq_peer = "127.0.0.1:" + std::to_string(hq().peer_port);
    for (int i = 1; i < 3; ++i) {
      if (auto r = start(nodes_[i], hq_peer); !r) return r;
    }
    HttpClient admin = hq().admin();
    bool up = wait_until([&] {
      auto r = admin.get("/admin/v1/node");
      return r.status == 200 && r.json().value("links_up", 0) >= 2;
    });
    if (!up) return testing::AssertionFailure() << "HQ never had 2 store links: " << admin.get("/admin/v1/peers").describe();
    return testing::AssertionSuccess();
  }

  // The shell command tmux runs: outpost-top, then its exit code into a file, then a pause so
  // that the pane (and what the terminal shows after outpost-top ended) can still be captured.
  std::string top_command(const std::string& args) {
    return "cd " + dir_.path() + " && " + kTopPath + " " + args + " 2>top.stderr; echo \"exit=$?\" >top.exit; sleep 600";
  }
  std::string top_exit() { return slurp(dir_.file("top.exit")); }

  ChainNode& hq() { return nodes_[0]; }
  ChainNode& store(int i) { return nodes_[static_cast<std::size_t>(i)]; }

  TempDir dir_{"outpost-tui-e2e"};
  std::vector<ChainNode> nodes_;
  std::string tmux_path_;
};

TEST_F(TuiChainTest, OverviewShowsNodesLaggingStoreAndMemberRightsPerNode) {
  ASSERT_TRUE(start_chain());
  Tmux tmux(tmux_path_, "outpost-tui-e2e-" + std::to_string(::getpid()));
  ASSERT_TRUE(tmux.start(top_command("--admin " + hq().admin_address() + " --token-file " + hq().admin_token_file +
                                     " --interval-ms 200")));

  // 1. Every node is listed; both stores are connected.
  std::string screen;
  bool all_up = tmux.wait_screen(
      [](const std::string& s) {
        return row_of(s, "hq").find("self") != std::string::npos &&
               row_of(s, "store-1").find("connected") != std::string::npos &&
               row_of(s, "store-2").find("connected") != std::string::npos;
      },
      &screen);
  ASSERT_TRUE(all_up) << "screen:\n" << screen << "\nstderr: " << slurp(dir_.file("top.stderr"));
  EXPECT_NE(screen.find("links 2/2 up"), std::string::npos) << screen;

  // 2. store-2 loses its link; store-1 and HQ keep writing. HQ gets store-1's ops.
  HttpClient s2admin = store(2).admin();
  auto down = s2admin.post("/admin/v1/links", Json{{"state", "down"}});
  ASSERT_EQ(down.status, 200) << down.describe();
  HttpClient s1 = store(1).pos();
  auto enroll = s1.post("/v1/members", {{"request_id", "e1"}, {"card", "40001234"}, {"name", "Ann Lee"},
                                        {"phone", "+4915100001"}});
  ASSERT_EQ(enroll.status, 200) << enroll.describe();
  ASSERT_EQ(s1.post("/v1/members/40001234/topup", {{"request_id", "t1"}, {"amount_minor", 10000}}).status, 200);
  ASSERT_EQ(s1.post("/v1/members/40001234/earn", {{"request_id", "p1"}, {"purchase_minor", 8450}}).status, 200);
  HttpClient hq_admin = hq().admin();
  ASSERT_TRUE(wait_until([&] { return hq_admin.get("/admin/v1/members/40001234").status == 200; }))
      << "the member never reached HQ";
  HttpClient hq_pos = hq().pos();
  auto topup = hq_pos.post("/v1/members/40001234/topup", {{"request_id", "t2"}, {"amount_minor", 2000}});
  ASSERT_EQ(topup.status, 200) << topup.describe();

  // 3. The lagging store: a problem row ("!"), link down, behind at least what it last had ("~N").
  bool lagging = tmux.wait_screen(
      [](const std::string& s) {
        std::string row = row_of(s, "store-2");
        // Wait for a lag of at least one op: "~0" shows before HQ has counted the new ops.
        const std::size_t t = row.find(" ~");
        return row.rfind("!", 0) == 0 && row.find("down") != std::string::npos && t != std::string::npos &&
               std::atoi(row.c_str() + t + 2) >= 1;
      },
      &screen);
  ASSERT_TRUE(lagging) << "screen:\n" << screen;
  std::string row = row_of(screen, "store-2");
  std::size_t tilde = row.find(" ~");
  ASSERT_NE(tilde, std::string::npos);
  EXPECT_GE(std::atoi(row.c_str() + tilde + 2), 1) << row;
  EXPECT_EQ(row_of(screen, "store-1").rfind("  ", 0), 0u) << "store-1 is healthy:\n" << screen;
  EXPECT_NE(row_of(screen, "store-1").find("0.1.0/s"), std::string::npos) << "the store's version:\n" << screen;

  // The selected row's lag per origin is on screen at 80 columns (the line above the status line).
  tmux.keys({"Down", "Down"});
  bool summary = tmux.wait_screen(
      [](const std::string& s) {
        std::string l = line_with(s, "store-2: behind ~");
        return l.find("= store-1 ") != std::string::npos;
      },
      &screen);
  ASSERT_TRUE(summary) << "no per-origin lag for the selected store-2:\n" << screen;

  // HQ signs a checkpoint while it runs: store-1's detail shows HQ's checkpoint of its log.
  ASSERT_TRUE(cli({"--data", hq().data, "hq", "checkpoint"}));
  tmux.keys({"Up"});
  tmux.keys({"Enter"});
  bool checkpointed = tmux.wait_screen(
      [](const std::string& s) {
        return s.find("store-1  (store") != std::string::npos && s.find("up to seq ") != std::string::npos;
      },
      &screen);
  ASSERT_TRUE(checkpointed) << "store-1's detail shows no checkpoint:\n" << screen;
  tmux.keys({"Escape"});
  ASSERT_TRUE(tmux.wait_screen([](const std::string& s) { return s.find("CONTACT") != std::string::npos; }, &screen))
      << screen;

  // Enter on the lagging row: its detail names the origin it lacks ops from and its link history.
  tmux.keys({"Down"});
  tmux.keys({"Enter"});
  bool detail = tmux.wait_screen(
      [](const std::string& s) { return s.find("Version vector (last known") != std::string::npos; }, &screen);
  ASSERT_TRUE(detail) << "screen:\n" << screen;
  EXPECT_NE(screen.find("store-2  (store"), std::string::npos) << screen;
  EXPECT_NE(screen.find("Link history"), std::string::npos) << screen;
  EXPECT_NE(screen.find("no link to this node"), std::string::npos) << screen;
  tmux.keys({"Escape"});
  // Wait for the overview before the next key: Esc followed at once by a letter reads as Alt-letter.
  ASSERT_TRUE(tmux.wait_screen([](const std::string& s) { return s.find("CONTACT") != std::string::npos; }, &screen))
      << screen;

  // 4. Member view: rights per named node (wallet 100.00 at store-1, 20.00 at hq; points at store-1).
  tmux.keys({"m"});
  ASSERT_TRUE(tmux.wait_screen([](const std::string& s) { return s.find("member (card") != std::string::npos; }, &screen))
      << screen;
  tmux.type("40001234");
  tmux.keys({"Enter"});
  bool member = tmux.wait_screen(
      [](const std::string& s) {
        // The whole view, down to the ops list: a capture can catch a screen half drawn.
        return s.find("Escrow rights per node") != std::string::npos &&
               line_with(s, "  store-1   ").find("100.00") != std::string::npos &&
               line_with(s, "  hq   ").find("20.00") != std::string::npos && s.find("Recent ops") != std::string::npos &&
               (s.find("store-1:3") != std::string::npos || s.find("  none") != std::string::npos);
      },
      &screen);
  ASSERT_TRUE(member) << "screen:\n" << screen;
  EXPECT_NE(screen.find("Ann Lee"), std::string::npos) << screen;
  EXPECT_NE(line_with(screen, "  store-1   ").find("84"), std::string::npos) << "points rights at store-1:\n" << screen;
  EXPECT_NE(screen.find("store-1:3"), std::string::npos) << "ops show origin and seq:\n" << screen;

  // 5. Alerts view opens; q quits with exit code 0 and the terminal is back to the shell screen.
  tmux.keys({"a"});
  ASSERT_TRUE(tmux.wait_screen([](const std::string& s) { return s.find("(newest first)") != std::string::npos; }, &screen))
      << screen;
  tmux.keys({"q"});
  ASSERT_TRUE(wait_until([&] { return !top_exit().empty(); })) << tmux.capture();
  EXPECT_EQ(top_exit(), "exit=0\n") << slurp(dir_.file("top.stderr"));
  screen = tmux.capture();
  EXPECT_EQ(screen.find("CONTACT"), std::string::npos) << "the screen was not restored:\n" << screen;

  // --once prints the same chain as text and JSON for scripts.
  auto once = run_command(kTopPath, {"--once", "--admin", hq().admin_address(), "--token-file", hq().admin_token_file});
  ASSERT_TRUE(once.finished && once.exit.exited_with(0)) << once.describe();
  EXPECT_NE(row_of(once.out, "store-2").find("down"), std::string::npos) << once.out;
  EXPECT_NE(once.out.find("store-2: no link to this node"), std::string::npos) << once.out;
  auto json = run_command(kTopPath, {"--once", "--json", "--admin", hq().admin_address()}, {
      .cwd = "", .extra_env = {{"OUTPOST_ADMIN_TOKEN", hq().admin_token}}, .kill_with_parent = true});
  ASSERT_TRUE(json.finished && json.exit.exited_with(0)) << json.describe();
  Json j = Json::parse(json.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << json.out;
  ASSERT_EQ(j["nodes"].size(), 3u) << json.out;
  for (const auto& n : j["nodes"]) {
    if (n["name"] == "store-2") {
      EXPECT_EQ(n["link"], "down");
      EXPECT_TRUE(n["problem"].get<bool>());
    }
  }
}

TEST_F(TuiChainTest, WrongTokenIsShownOnScreenAndOnExitAndCtrlCRestoresTheTerminal) {
  ASSERT_TRUE(make_chain());
  ASSERT_TRUE(start(hq(), ""));
  Tmux tmux(tmux_path_, "outpost-tui-e2e-token-" + std::to_string(::getpid()));
  ASSERT_TRUE(tmux.start(top_command("--admin " + hq().admin_address() + " --token not-a-token --interval-ms 200")));
  std::string screen;
  ASSERT_TRUE(tmux.wait_screen([](const std::string& s) { return s.find("admin token refused since") != std::string::npos; },
                               &screen))
      << "screen:\n" << screen;
  EXPECT_NE(screen.find("retrying"), std::string::npos) << screen;
  tmux.keys({"C-c"});
  ASSERT_TRUE(wait_until([&] { return !top_exit().empty(); })) << tmux.capture();
  EXPECT_EQ(top_exit(), "exit=130\n");
  std::string err = slurp(dir_.file("top.stderr"));
  EXPECT_NE(err.find("refused the admin token (401"), std::string::npos) << err;
  screen = tmux.capture();
  EXPECT_EQ(screen.find("admin token refused since"), std::string::npos) << "the screen was not restored:\n" << screen;

  // The same in --once: exit code 4 and the reason.
  auto once = run_command(kTopPath, {"--once", "--admin", hq().admin_address(), "--token", "not-a-token"});
  ASSERT_TRUE(once.finished) << once.describe();
  EXPECT_TRUE(once.exit.exited_with(4)) << once.describe();
  EXPECT_NE(once.err.find("refused the admin token"), std::string::npos) << once.err;
  // A POS terminal's token is not an admin token (403).
  auto pos = run_command(kTopPath, {"--once", "--admin", hq().admin_address(), "--token", hq().pos_token});
  EXPECT_TRUE(pos.exit.exited_with(4)) << pos.describe();
  EXPECT_NE(pos.err.find("403"), std::string::npos) << pos.err;
}

TEST_F(TuiChainTest, WrongAddressAndNonAdminPortGiveClearMessagesAndExitCodes) {
  ASSERT_TRUE(make_chain());
  ASSERT_TRUE(start(hq(), ""));
  // Nothing listens on a port we bound and closed again.
  std::uint16_t closed_port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    closed_port = ntohs(a.sin_port);
    ::close(fd);
  }
  auto r = run_command(kTopPath, {"--once", "--admin", "127.0.0.1:" + std::to_string(closed_port), "--token", "x"});
  ASSERT_TRUE(r.finished) << r.describe();
  EXPECT_TRUE(r.exit.exited_with(3)) << r.describe();
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;

  // The POS port is HTTP but not the admin API.
  r = run_command(kTopPath, {"--once", "--admin", "127.0.0.1:" + std::to_string(hq().api_port), "--token",
                             hq().admin_token});
  EXPECT_TRUE(r.exit.exited_with(5)) << r.describe();
  EXPECT_NE(r.err.find("admin port"), std::string::npos) << r.err;

  // The peer port speaks Noise, not HTTP: a clear error, never a hang or a crash.
  r = run_command(kTopPath, {"--once", "--admin", "127.0.0.1:" + std::to_string(hq().peer_port), "--token", "x"});
  ASSERT_TRUE(r.finished) << r.describe();
  EXPECT_TRUE(r.exit.exited_with(3) || r.exit.exited_with(5)) << r.describe();
  EXPECT_FALSE(r.err.empty());

  // Usage errors.
  r = run_command(kTopPath, {"--admin", "nonsense"});
  EXPECT_TRUE(r.exit.exited_with(2)) << r.describe();
  EXPECT_NE(r.err.find("HOST:PORT"), std::string::npos) << r.err;
  r = run_command(kTopPath, {"--interval-ms", "5"});
  EXPECT_TRUE(r.exit.exited_with(2)) << r.describe();
  r = run_command(kTopPath, {"--help"});
  EXPECT_TRUE(r.exit.exited_with(0)) << r.describe();
  EXPECT_NE(r.out.find("--token-file"), std::string::npos);
  // Without a terminal the interactive view refuses politely instead of breaking the pipe's reader.
  r = run_command(kTopPath, {"--admin", hq().admin_address(), "--token", hq().admin_token});
  EXPECT_TRUE(r.exit.exited_with(2)) << r.describe();
  EXPECT_NE(r.err.find("--once"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace outpost::test
