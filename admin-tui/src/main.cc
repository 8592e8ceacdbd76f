// outpost-top: the HQ terminal UI over one node's admin API (docs/outpost-top.md). Parses the
// command line, reads the token, installs signal handlers that only set a flag, and runs either
// the interactive screen (ui.h) or one plain-text/JSON overview (--once). The terminal is
// restored on every exit path: normal return, signals (flag -> loop ends -> endwin) and exit()
// (atexit). Exit codes: 0 ok, 2 usage/terminal, 3 unreachable, 4 token refused, 5 unexpected
// answer, 128+N ended by signal N.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "outpost/tui/admin_client.h"
#include "outpost/tui/view_model.h"
#include "ui.h"

namespace {

using namespace outpost::tui;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitToken = 4;
constexpr int kExitBadAnswer = 5;
constexpr int kIntervalMsMin = 100;
constexpr int kIntervalMsMax = 600'000;
constexpr std::size_t kTokenFileBytesMax = 4096;

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_signal(int sig) { g_stop = sig; }

// Said under the generated option list of --help.
const char kHelpFooter[] =
    "Environment: OUTPOST_ADMIN_TOKEN is the token when neither --token nor --token-file is "
    "given.\n"
    "Keys: ? help, q quit, Enter detail, Esc back, / filter or search, m member, a alerts, Tab "
    "views.\n"
    "Exit codes: 0 ok, 2 bad usage or no terminal, 3 node unreachable, 4 token refused,\n"
    "            5 unexpected answer from the node, 128+N ended by signal N.";

struct Options {
  std::string admin = "127.0.0.1:7002";
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  int interval_ms = 1000;
  bool no_color = false;
  bool once = false;
  bool json = false;
};

int usage_error(const std::string& message) {
  std::cerr << "outpost-top: " << message << "\n(see outpost-top --help)\n";
  return kExitUsage;
}

// Parses argv with CLI11. Returns an exit code when the program should end here: 0 after
// --help, kExitUsage (message printed) for a bad command line.
std::optional<int> parse_args(int argc, char** argv, Options* o) {
  CLI::App app{"outpost-top: live terminal view of an Outpost chain through one node's admin API"};
  app.footer(kHelpFooter);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "outpost-top: " + std::string(e.what()) + "\n(see outpost-top --help)\n";
  });
  std::string token, token_file;
  app.add_option("--admin", o->admin, "admin API to read, HOST:PORT; HQ sees the whole chain")
      ->capture_default_str();
  auto* token_opt = app.add_option(
      "--token", token, "an admin terminal's token (visible to ps: prefer the two below)");
  app.add_option("--token-file", token_file, "read the token from FILE")->excludes(token_opt);
  app.add_option("--interval-ms", o->interval_ms, "refresh every N ms")
      ->check(CLI::Range(kIntervalMsMin, kIntervalMsMax))
      ->capture_default_str();
  app.add_flag("--no-color,--no-colour", o->no_color, "no colours (also when NO_COLOR is set)");
  auto* once = app.add_flag("--once", o->once, "print the overview as plain text and exit");
  app.add_flag("--json", o->json, "with --once: print it as JSON")->needs(once);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (app.count("--token")) o->token = token;
  if (app.count("--token-file")) o->token_file = token_file;
  return std::nullopt;
}

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Resolves the token: --token, else --token-file, else OUTPOST_ADMIN_TOKEN, else "".
std::optional<int> resolve_token(const Options& o, std::string* token) {
  if (o.token) {
    *token = trim(*o.token);
  } else if (o.token_file) {
    std::ifstream in(*o.token_file, std::ios::binary);
    if (!in) return usage_error("cannot read the token file " + *o.token_file);
    std::string content(kTokenFileBytesMax + 1, '\0');
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<std::size_t>(in.gcount()));
    if (content.size() > kTokenFileBytesMax) return usage_error("token file " + *o.token_file + " is too large");
    *token = trim(content.substr(0, content.find('\n')));
    if (token->empty()) return usage_error("token file " + *o.token_file + " is empty");
  } else if (const char* env = std::getenv("OUTPOST_ADMIN_TOKEN"); env && *env) {
    *token = trim(env);
  }
  for (char c : *token) {
    if (c <= 0x20 || c >= 0x7f) return usage_error("the token contains a space or control character");
  }
  return std::nullopt;
}

int exit_code_for(FetchError e) {
  switch (e) {
    case FetchError::kNone: return kExitOk;
    case FetchError::kUnreachable: return kExitUnreachable;
    case FetchError::kUnauthorized:
    case FetchError::kForbidden: return kExitToken;
    case FetchError::kBadResponse:
    case FetchError::kNotFound: return kExitBadAnswer;
  }
  return kExitBadAnswer;
}

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

int run_once(const AdminClient& client, bool json) {
  FetchResult r = client.fetch_snapshot();
  if (!r.ok()) {
    std::cerr << "outpost-top: " << r.message << "\n";
    return exit_code_for(r.error);
  }
  Parsed<Overview> o = build_overview(r.snapshot, LinkMemory{});
  if (!o.ok()) {
    std::cerr << "outpost-top: " << client.endpoint().to_string() << ": " << o.error << "\n";
    return kExitBadAnswer;
  }
  std::uint64_t now = now_ms();
  if (json) {
    std::cout << overview_json(*o.value, now).dump(2) << "\n";
  } else {
    std::cout << overview_text(*o.value, format_clock(now));
  }
  std::cout.flush();
  return std::cout ? kExitOk : kExitUnreachable;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking poll()/getch() returns and the loop sees the flag
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaction(sig, &sa, nullptr);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGPIPE, &ign, nullptr);
}

int run(int argc, char** argv) {
  Options o;
  if (auto e = parse_args(argc, argv, &o)) return *e;
  std::string parse_error;
  auto endpoint = parse_endpoint(o.admin, &parse_error);
  if (!endpoint) return usage_error(parse_error);
  std::string token;
  if (auto e = resolve_token(o, &token)) return *e;
  install_signal_handlers();
  if (o.once) {
    AdminClient client(*endpoint, token);
    client.set_cancel(&g_stop);
    int code = run_once(client, o.json);
    return g_stop ? 128 + g_stop : code;
  }
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
    return usage_error("the interactive view needs a terminal; use --once (and --json) in scripts");
  }
  std::setlocale(LC_ALL, "");
  const char* no_color_env = std::getenv("NO_COLOR");
  UiOptions ui;
  ui.interval_ms = o.interval_ms;
  ui.color = !o.no_color && !(no_color_env && *no_color_env);
  // Short timeouts on the screen: a dead node must not freeze the keys for long.
  AdminClient client(*endpoint, token, 1000, 3000);
  client.set_cancel(&g_stop);
  std::atexit(restore_terminal);
  UiOutcome out = run_ui(client, ui, &g_stop);
  if (!out.terminal_error.empty()) {
    std::cerr << "outpost-top: " << out.terminal_error << "\n";
    return kExitUsage;
  }
  if (out.last_error != FetchError::kNone) std::cerr << "outpost-top: " << out.last_message << "\n";
  if (out.signal) return 128 + out.signal;
  return exit_code_for(out.last_error);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    restore_terminal();
    std::cerr << "outpost-top: internal error: " << e.what() << "\n";
    return 70;
  } catch (...) {
    restore_terminal();
    std::cerr << "outpost-top: internal error\n";
    return 70;
  }
}
