// Test harness for outpostd: a node in a temporary directory (data dir made and terminals added
// through the real `outpost` CLI, a config on ephemeral 127.0.0.1 ports), the daemon as a child
// process (test_process.h), and the project's HTTP client (net/) with the test's bounds. Raw
// bytes for abuse tests go through TcpConnection (raw_tcp.h). Used by the API, daemon and
// multi-node tests. Objects are owned by one thread each (an HttpClient per client thread).
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../unit/test_util.h"
#include "outpost/net/http_client.h"
#include "raw_tcp.h"
#include "test_process.h"

#ifndef OUTPOST_DAEMON
#error "OUTPOST_DAEMON (path of outpostd) must be defined by the build"
#endif
#ifndef OUTPOST_CLI
#error "OUTPOST_CLI (path of outpost) must be defined by the build"
#endif

namespace outpost::test {

using Json = nlohmann::json;

inline const std::string kOutpostdPath = OUTPOST_DAEMON;
inline const std::string kCliPath = OUTPOST_CLI;

// The result of one request, with the body as JSON for the assertions.
struct HttpResult : net::HttpResponse {
  HttpResult() = default;
  explicit HttpResult(net::HttpResponse r) : net::HttpResponse(std::move(r)) {}
  // The body as JSON, or a discarded value when it is not JSON.
  Json json() const { return Json::parse(body, nullptr, false); }
};

// The tests' HTTP client: net::HttpClient on one keep-alive connection to 127.0.0.1:port, with
// the test's bound on connect and on each exchange. It reconnects before the next request after
// the server closed the connection; it never resends a request.
class HttpClient {
 public:
  HttpClient(std::uint16_t port, std::string token = "",
             std::chrono::milliseconds bound = kWaitBoundDefault)
      : token_(std::move(token)), client_(net::Endpoint{"127.0.0.1", port}, options(bound)) {}

  HttpResult get(const std::string& target) { return request("GET", target, ""); }
  HttpResult post(const std::string& target, const Json& body) {
    return request("POST", target, body.dump());
  }
  HttpResult post_raw(const std::string& target, const std::string& body) {
    return request("POST", target, body);
  }
  void set_token(std::string token) { token_ = std::move(token); }
  bool connected() const { return client_.connected(); }

  // Sends one request; `extra_headers` are complete "Name: value" lines without CRLF.
  HttpResult request(const std::string& method, const std::string& target, const std::string& body,
                     const std::vector<std::string>& extra_headers = {}) {
    net::HttpRequest req{method, target, token_, {}, body};
    for (const std::string& line : extra_headers) {
      const std::size_t colon = line.find(':');
      const std::size_t value = line.find_first_not_of(' ', colon + 1);
      req.headers.emplace_back(line.substr(0, colon),
                               value == std::string::npos ? "" : line.substr(value));
    }
    return HttpResult(client_.request(req));
  }

 private:
  static net::ClientOptions options(std::chrono::milliseconds bound) {
    net::ClientOptions o;
    o.connect_timeout_ms = static_cast<int>(bound.count());
    o.response_timeout_ms = static_cast<int>(bound.count());
    o.user_agent = "outpost-test";
    return o;
  }

  std::string token_;
  net::HttpClient client_;
};

struct NodeOptions {
  std::string name = "store-1";
  std::string role = "store";  // store | hq
  std::string log_level = "info";
  // Appended verbatim to the generated config (e.g. [[peers]] tables).
  std::string extra_config;
  // Initialize with `outpost hq init` (an enrolled HQ node with a root key and a peer manager)
  // instead of `outpost init`.
  bool hq_init = false;
};

// One Outpost node for a test: a temp dir holding its data dir, config, and tokens of one POS
// terminal ("till-1") and one admin terminal ("admin-1"); the daemon runs as a child process.
// Everything (process, directory) is cleaned up by the destructor.
class OutpostNode {
 public:
  explicit OutpostNode(NodeOptions options = {})
      : options_(std::move(options)), dir_("outpost-node") {}

  const std::string& dir() const { return dir_.path(); }
  std::string data_dir() const { return dir_.file("data"); }
  std::string config_path() const { return dir_.file("outpostd.toml"); }
  std::string ports_path() const { return data_dir() + "/outpostd.ports"; }
  const std::string& pos_token() const { return pos_token_; }
  const std::string& admin_token() const { return admin_token_; }
  std::uint16_t api_port() const { return api_port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  std::uint16_t peer_port() const { return peer_port_; }
  Process* process() { return process_.get(); }

  // Runs the `outpost` CLI with `--data DIR args...` (bounded); `input`, when given, is its stdin.
  CommandResult cli(std::vector<std::string> args, const std::optional<std::string>& input = std::nullopt) const {
    args.insert(args.begin(), {"--data", data_dir()});
    std::string stdin_file;
    if (input) {
      stdin_file = dir_.file("cli-stdin");
      write_file(stdin_file, *input);
    }
    return run_command(kCliPath, args, {}, kWaitBoundDefault, stdin_file);
  }

  // Creates the data dir, a POS and an admin terminal, and a config on ephemeral ports.
  testing::AssertionResult init() {
    auto r = options_.hq_init ? cli({"hq", "init", "--name", options_.name})
                              : cli({"init", "--name", options_.name, "--role", options_.role});
    if (!r.finished || !r.exit.exited_with(0)) return testing::AssertionFailure() << "outpost init: " << r.describe();
    auto pos = add_terminal("till-1", "pos");
    if (!pos) return testing::AssertionFailure() << "outpost terminal add till-1 failed";
    pos_token_ = *pos;
    auto admin = add_terminal("admin-1", "admin");
    if (!admin) return testing::AssertionFailure() << "outpost terminal add admin-1 failed";
    admin_token_ = *admin;
    write_file(config_path(), "data_dir = \"data\"\nrole = \"" + options_.role + "\"\nlog_level = \"" +
                                  options_.log_level +
                                  "\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = "
                                  "\"127.0.0.1:0\"\n\n[peer]\nlisten = \"127.0.0.1:0\"\n\n" +
                                  options_.extra_config);
    return testing::AssertionSuccess();
  }

  // Adds a terminal through the CLI and returns its token.
  std::optional<std::string> add_terminal(const std::string& name, const std::string& role) const {
    auto r = cli({"terminal", "add", name, "--role", role});
    if (!r.finished || !r.exit.exited_with(0)) return std::nullopt;
    std::string token = r.out;
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.empty()) return std::nullopt;
    return token;
  }

  // Starts outpostd and waits (bounded) until it listens, then reads its ports file.
  testing::AssertionResult start() {
    if (process_ && process_->running()) return testing::AssertionFailure() << "already running";
    std::error_code ec;
    std::filesystem::remove(ports_path(), ec);  // a file left by a killed run is stale
    process_ = std::make_unique<Process>(kOutpostdPath, std::vector<std::string>{"--config", config_path()});
    if (auto s = process_->started(); !s) return s;
    const pid_t pid = process_->pid();
    auto ready = [pid](const std::string& content) {
      return !content.empty() && content.back() == '\n' &&
             parse_key_values(content)["pid"] == std::to_string(pid);
    };
    if (auto w = wait_for_file(ports_path(), process_.get(), kWaitBoundDefault, ready); !w) return w;
    auto kv = parse_key_values(slurp(ports_path()));
    auto api = parse_host_port(kv["api"]), admin = parse_host_port(kv["admin"]), peer = parse_host_port(kv["peer"]);
    if (!api || !admin || !peer) return testing::AssertionFailure() << "bad ports file: " << slurp(ports_path());
    api_port_ = api->port;
    admin_port_ = admin->port;
    peer_port_ = peer->port;
    return testing::AssertionSuccess();
  }

  // Sends `sig` and waits (bounded) for the daemon to exit; `out` gets how it ended.
  testing::AssertionResult stop(int sig = SIGTERM, ExitStatus* out = nullptr) {
    if (!process_) return testing::AssertionFailure() << "not started";
    if (auto s = process_->signal(sig); !s) return s;
    return process_->wait_exit(out);
  }
  // SIGKILL and reap: the crash case.
  void kill9() {
    if (process_) process_->kill9();
  }

  HttpClient pos_client() const { return HttpClient(api_port_, pos_token_); }
  HttpClient admin_client() const { return HttpClient(admin_port_, admin_token_); }

 private:
  NodeOptions options_;
  TempDir dir_;
  std::string pos_token_;
  std::string admin_token_;
  std::uint16_t api_port_ = 0;
  std::uint16_t admin_port_ = 0;
  std::uint16_t peer_port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace outpost::test
