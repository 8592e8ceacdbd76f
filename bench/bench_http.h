// A minimal blocking HTTP/1.1 client for the benchmarks that drive a real daemon over loopback
// (bench_api, bench_sync). One object per thread; every call is bounded by the server's answer.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace outpost::bench {

// A blocking HTTP/1.1 client on one keep-alive loopback connection. Returns the status, 0 on a
// transport error. The server always sends Content-Length.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int request(const std::string& method, const std::string& target, const std::string& token,
              const std::string& body, std::string* response_body = nullptr) {
    if (fd_ < 0) return 0;
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    for (std::size_t off = 0; off < req.size();) {
      ssize_t n = ::send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return 0;
      off += static_cast<std::size_t>(n);
    }
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return 0;
    }
    int status = std::atoi(buf_.c_str() + 9);
    std::size_t length = 0;
    std::size_t cl = buf_.find("Content-Length: ");
    if (cl != std::string::npos && cl < end) length = std::strtoul(buf_.c_str() + cl + 16, nullptr, 10);
    while (buf_.size() < end + 4 + length) {
      if (!fill()) return 0;
    }
    if (response_body) *response_body = buf_.substr(end + 4, length);
    buf_.erase(0, end + 4 + length);
    return status;
  }

 private:
  bool fill() {
    char tmp[8192];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string buf_;
};

}  // namespace outpost::bench
