// Test harness for outpostd: a node in a temporary directory (data dir made and terminals added
// through the real `outpost` CLI, a config on ephemeral 127.0.0.1 ports), the daemon as a child
// process (test_process.h), and a small blocking HTTP/1.1 client whose every read is bounded.
// Used by the API, daemon and multi-node tests. Objects are owned by one thread each (an
// HttpClient per client thread).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../unit/test_util.h"
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

// A TCP connection to 127.0.0.1 with bounded receives. Move-only; closes on destruction.
class TcpConnection {
 public:
  enum class Read { kData, kClosed, kTimeout, kError };

  TcpConnection() = default;
  ~TcpConnection() { close(); }
  TcpConnection(TcpConnection&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  TcpConnection& operator=(TcpConnection&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }

  // Connects to 127.0.0.1:port. On failure returns false and sets `error`.
  bool connect(std::uint16_t port, std::string* error) {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail(error, "socket");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      bool r = fail(error, "connect to 127.0.0.1:" + std::to_string(port));
      close();
      return r;
    }
    return true;
  }
  bool is_open() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Sends all of `data`. Returns false (and sets `error`) if the peer closed or reset.
  bool send_all(std::string_view data, std::string* error) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail(error, "send");
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Appends what arrives to `out`, waiting at most until `deadline` for the first byte.
  Read read_some(std::string& out, std::chrono::steady_clock::time_point deadline) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Read::kTimeout;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Read::kError;
      if (r == 0) continue;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno == ECONNRESET ? Read::kClosed : Read::kError;
      if (n == 0) return Read::kClosed;
      out.append(buf, static_cast<std::size_t>(n));
      return Read::kData;
    }
  }

  // Returns true if the peer has not closed (or reset) the connection; consumes nothing.
  bool still_open() {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;  // nothing to read: open
    char c;
    ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0;  // data pending still means open; 0 = EOF, <0 = reset
  }

  // Reads until the peer closes the connection (or resets it). Returns false if it is still open
  // at the bound. Everything received is appended to `received`.
  bool wait_closed_by_peer(std::string* received = nullptr,
                           std::chrono::milliseconds bound = kWaitBoundDefault) {
    auto deadline = std::chrono::steady_clock::now() + bound;
    std::string sink;
    while (true) {
      switch (read_some(received ? *received : sink, deadline)) {
        case Read::kData: continue;
        case Read::kClosed:
        case Read::kError: return true;
        case Read::kTimeout: return false;
      }
    }
  }

 private:
  static bool fail(std::string* error, const std::string& what) {
    if (error) *error = what + ": " + strerror(errno);
    return false;
  }
  int fd_ = -1;
};

struct HttpResult {
  int status = 0;     // 0: no (complete) response; `error` says why
  std::string error;  // transport failure, when status == 0
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  // The body as JSON, or a discarded value when it is not JSON.
  Json json() const { return Json::parse(body, nullptr, false); }
  std::string describe() const {
    return status ? "HTTP " + std::to_string(status) + " " + body : "no response: " + error;
  }
};

// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1:port. It reconnects
// before the next request after the server closed the connection; it never resends a request.
class HttpClient {
 public:
  HttpClient(std::uint16_t port, std::string token = "",
             std::chrono::milliseconds bound = kWaitBoundDefault)
      : port_(port), token_(std::move(token)), bound_(bound) {}

  HttpResult get(const std::string& target) { return request("GET", target, ""); }
  HttpResult post(const std::string& target, const Json& body) {
    return request("POST", target, body.dump());
  }
  HttpResult post_raw(const std::string& target, const std::string& body) {
    return request("POST", target, body);
  }
  void set_token(std::string token) { token_ = std::move(token); }
  bool connected() const { return conn_.is_open(); }

  // Sends one request; `extra_headers` are complete "Name: value" lines without CRLF.
  HttpResult request(const std::string& method, const std::string& target, const std::string& body,
                     const std::vector<std::string>& extra_headers = {}) {
    HttpResult r;
    // A keep-alive connection the server has closed meanwhile (idle deadline) is replaced
    // before sending; nothing is ever sent twice.
    if (conn_.is_open() && !conn_.still_open()) conn_.close();
    if (!conn_.is_open()) {
      pending_.clear();
      if (!conn_.connect(port_, &r.error)) return r;
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token_.empty()) req += "Authorization: Bearer " + token_ + "\r\n";
    for (const auto& h : extra_headers) req += h + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT") {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    if (!conn_.send_all(req, &r.error)) {
      conn_.close();
      return r;
    }
    read_response(r);
    std::string connection = r.headers["connection"];
    std::transform(connection.begin(), connection.end(), connection.begin(), ::tolower);
    if (r.status == 0 || connection == "close") conn_.close();
    return r;
  }

 private:
  void read_response(HttpResult& r) {
    auto deadline = std::chrono::steady_clock::now() + bound_;
    std::string& buf = pending_;
    std::size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more(buf, deadline, r, "response headers")) return;
    }
    std::string head = buf.substr(0, header_end);
    std::size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
      r.error = "bad status line '" + status_line + "'";
      return;
    }
    int status = std::atoi(status_line.substr(9, 3).c_str());
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        r.headers[name] = value;
      }
      pos = end + 2;
    }
    std::size_t length = r.headers.count("content-length")
                             ? static_cast<std::size_t>(std::stoull(r.headers["content-length"]))
                             : 0;
    std::size_t body_start = header_end + 4;
    while (buf.size() < body_start + length) {
      if (!read_more(buf, deadline, r, "response body")) return;
    }
    r.body = buf.substr(body_start, length);
    buf.erase(0, body_start + length);
    r.status = status;
  }

  bool read_more(std::string& buf, std::chrono::steady_clock::time_point deadline, HttpResult& r,
                 const char* what) {
    switch (conn_.read_some(buf, deadline)) {
      case TcpConnection::Read::kData: return true;
      case TcpConnection::Read::kClosed: r.error = std::string("connection closed while reading ") + what; break;
      case TcpConnection::Read::kTimeout:
        r.error = std::string("no ") + what + " within " + std::to_string(bound_.count()) + " ms";
        break;
      case TcpConnection::Read::kError: r.error = std::string("read error: ") + strerror(errno); break;
    }
    buf.clear();
    return false;
  }

  std::uint16_t port_;
  std::string token_;
  std::chrono::milliseconds bound_;
  TcpConnection conn_;
  std::string pending_;
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
