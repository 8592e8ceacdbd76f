// Test helper: a real clickhouse-server (Debian's package, installed by scripts/setup.sh) on
// 127.0.0.1, from a generated config in a temp dir that also holds its data: one HTTP port picked
// free by the kernel, no native or interserver port, one passwordless user limited to loopback.
// start() waits (bounded) for GET /ping; stop() sends SIGTERM and waits (bounded), then SIGKILL;
// kill() is the outage: SIGKILL, data dir kept, and start() again brings it back on the same port
// and data. A missing binary is a test failure that says how to install it, never a skip.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "outpost/net/http_client.h"
#include "test_process.h"

namespace outpost::test {

// Where the server binary is: $OUTPOST_CLICKHOUSE_SERVER, else Debian's path.
inline std::string clickhouse_server_path() {
  if (const char* p = std::getenv("OUTPOST_CLICKHOUSE_SERVER"); p && *p) {
    return ::access(p, X_OK) == 0 ? std::string(p) : std::string();
  }
  for (const char* p : {"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// A loopback TCP port that was free a moment ago (bound to port 0, then closed).
inline std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// GET /ping: "Ok." once the server serves.
inline net::HttpRequest ping_request() {
  net::HttpRequest r;
  r.target = "/ping";
  return r;
}

class ClickHouseServer {
 public:
  ClickHouseServer() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/outpost-ch-XXXXXX";
    std::vector<char> dir(tmpl.begin(), tmpl.end());
    dir.push_back('\0');
    if (::mkdtemp(dir.data()) != nullptr) dir_ = dir.data();
  }
  ~ClickHouseServer() {
    stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  ClickHouseServer(const ClickHouseServer&) = delete;
  ClickHouseServer& operator=(const ClickHouseServer&) = delete;

  net::Endpoint endpoint() const { return net::Endpoint{"127.0.0.1", port_}; }

  // Starts the server (writing its config the first time) and waits until /ping answers.
  testing::AssertionResult start(std::chrono::milliseconds bound = std::chrono::seconds(60)) {
    const std::string bin = clickhouse_server_path();
    if (bin.empty()) {
      return testing::AssertionFailure()
             << "clickhouse-server is not installed (Debian package clickhouse-server, installed "
                "by scripts/setup.sh; or set OUTPOST_CLICKHOUSE_SERVER to its path)";
    }
    if (dir_.empty()) return testing::AssertionFailure() << "could not make a temp dir";
    if (port_ == 0) {
      port_ = free_loopback_port();
      if (port_ == 0) return testing::AssertionFailure() << "no free loopback port";
      write_config();
    }
    proc_ = std::make_unique<Process>(
        bin, std::vector<std::string>{"--config-file=" + dir_ + "/config.xml"}, cwd_options());
    if (!proc_->started()) return proc_->started();
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (true) {
      auto r = net::http_request(
          endpoint(), ping_request(),
          net::ClientOptions{.connect_timeout_ms = 500, .response_timeout_ms = 2000});
      if (r.status == 200 && r.body == "Ok.\n") return testing::AssertionSuccess();
      if (!proc_->running()) {
        return testing::AssertionFailure()
               << "clickhouse-server ended before answering /ping: " << proc_->describe();
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return testing::AssertionFailure()
               << "clickhouse-server did not answer /ping on " << endpoint().to_string()
               << " within " << bound.count() << " ms; last: " << r.describe() << "; "
               << proc_->describe();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // The outage: SIGKILL, data kept.
  void kill() {
    if (proc_) proc_->kill9();
  }

  // SIGTERM, a bounded wait, then SIGKILL.
  void stop() {
    if (!proc_) return;
    if (proc_->running() && proc_->signal(SIGTERM)) {
      if (!proc_->wait_exit(nullptr, std::chrono::seconds(15))) proc_->kill9();
    }
    proc_->kill9();
    proc_.reset();
  }

  // Runs `sql` (TabSeparated answer); on a refusal the answer is "ERROR: ...".
  std::string query(const std::string& sql) {
    net::HttpRequest req;
    req.method = "POST";
    req.body = sql;
    auto r = net::http_request(endpoint(), req, net::ClientOptions{.response_timeout_ms = 20'000});
    if (r.status != 200) return "ERROR: " + r.describe();
    return r.body;
  }

 private:
  ProcessOptions cwd_options() const {
    ProcessOptions o;
    o.cwd = dir_;
    return o;
  }

  void write_config() {
    const std::string data = dir_ + "/data/";
    std::ofstream c(dir_ + "/config.xml");
    c << "<?xml version=\"1.0\"?>\n<yandex>\n"
      << "  <logger><level>warning</level><console>1</console></logger>\n"
      << "  <listen_host>127.0.0.1</listen_host>\n"
      << "  <http_port>" << port_ << "</http_port>\n"
      << "  <path>" << data << "</path>\n"
      << "  <tmp_path>" << data << "tmp/</tmp_path>\n"
      << "  <user_files_path>" << data << "user_files/</user_files_path>\n"
      << "  <format_schema_path>" << data << "format_schemas/</format_schema_path>\n"
      << "  <mark_cache_size>5368709</mark_cache_size>\n"
      << "  <max_concurrent_queries>20</max_concurrent_queries>\n"
      << "  <default_profile>default</default_profile>\n"
      << "  <default_database>default</default_database>\n"
      << "  <users_config>" << dir_ << "/users.xml</users_config>\n"
      << "</yandex>\n";
    std::ofstream u(dir_ + "/users.xml");
    u << "<?xml version=\"1.0\"?>\n<yandex>\n"
      << "  "
         "<profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>\n"
      << "  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>"
         "<profile>default</profile><quota>default</quota></default></users>\n"
      << "  <quotas><default></default></quotas>\n"
      << "</yandex>\n";
  }

  std::string dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Process> proc_;
};

}  // namespace outpost::test
