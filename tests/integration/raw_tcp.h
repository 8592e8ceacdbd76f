// TcpConnection: a raw TCP connection to 127.0.0.1 for the tests that must send what no HTTP
// client would (malformed requests, half requests, slow or silent clients) and read the raw bytes
// back. Every receive is bounded. Ordinary requests go through net::HttpClient
// (outpostd_harness.h). One thread per connection.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "test_process.h"

namespace outpost::test {

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
        case Read::kData:
          continue;
        case Read::kClosed:
        case Read::kError:
          return true;
        case Read::kTimeout:
          return false;
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

}  // namespace outpost::test
