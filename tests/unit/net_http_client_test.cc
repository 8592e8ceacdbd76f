// net/ HttpClient (the one HTTP client of outpost-top, the tests and the benchmarks) against a
// loopback server that answers with exact bytes: the framings a server may use, garbage and
// cut-short answers, a silent server, a refused port, keep-alive reuse and reconnect, and the
// cancel flag. Waits are bounded hang guards, never timed assertions.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "outpost/net/http_client.h"

namespace outpost::net {
namespace {

constexpr int kHangGuardMs = 20'000;

// Waits (bounded) until `fd` is readable; false at the bound.
bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, kHangGuardMs) > 0;
}

// A loopback server taking one connection at a time: for each canned reply it reads one request
// (headers and Content-Length body), records it, then sends the reply's bytes (or nothing, for a
// silent reply, until the client hangs up) and closes the connection when the reply says so.
class CannedServer {
 public:
  struct Reply {
    std::string bytes;
    bool close_after = true;
    bool silent = false;
  };

  explicit CannedServer(std::vector<Reply> replies) : replies_(std::move(replies)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedServer() {
    thread_.join();
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  Endpoint endpoint() const { return {"127.0.0.1", port_}; }
  int connections() const { return connections_.load(); }
  // Waits (bounded) until the server has closed `n` connections; false at the bound.
  bool wait_closed(int n) const {
    for (int i = 0; i < kHangGuardMs && closed_.load() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return closed_.load() >= n;
  }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    int conn = -1;
    for (const Reply& reply : replies_) {
      if (conn < 0) {
        if (!wait_readable(listen_fd_)) return;
        conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) return;
        connections_++;
      }
      std::string request;
      if (!read_request(conn, &request)) {
        ::close(conn);
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(request);
      }
      if (reply.silent) {
        char c;
        while (wait_readable(conn) && ::recv(conn, &c, 1, 0) > 0) {
        }
      } else {
        ::send(conn, reply.bytes.data(), reply.bytes.size(), MSG_NOSIGNAL);
      }
      if (reply.close_after || reply.silent) {
        ::close(conn);
        conn = -1;
        closed_++;
      }
    }
    if (conn >= 0) ::close(conn);
  }

  static bool read_request(int conn, std::string* out) {
    char buf[4096];
    while (true) {
      std::size_t end = out->find("\r\n\r\n");
      if (end != std::string::npos) {
        std::size_t length = 0;
        std::size_t cl = out->find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(out->substr(cl + 16));
        if (out->size() >= end + 4 + length) return true;
      }
      if (!wait_readable(conn)) return false;
      ssize_t n = ::recv(conn, buf, sizeof buf, 0);
      if (n <= 0) return false;
      out->append(buf, static_cast<std::size_t>(n));
    }
  }

  std::vector<Reply> replies_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> closed_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

ClientOptions bounded(int response_timeout_ms = kHangGuardMs) {
  ClientOptions o;
  o.connect_timeout_ms = kHangGuardMs;
  o.response_timeout_ms = response_timeout_ms;
  return o;
}

HttpResponse answer_to_one_get(const std::string& bytes) {
  CannedServer server({{bytes}});
  return http_request(server.endpoint(), HttpRequest{}, bounded());
}

TEST(NetHttpClient, ReadsContentLengthChunkedAndUntilCloseBodies) {
  HttpResponse r =
      answer_to_one_get("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: A b\r\n\r\n{}");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "{}");
  EXPECT_EQ(r.headers["x-thing"], "A b") << "names lower-cased, values kept";

  r = answer_to_one_get(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "{\"a\":1}");

  r = answer_to_one_get("HTTP/1.1 401 Unauthorized\r\n\r\n{\"error\"");
  EXPECT_EQ(r.status, 401) << r.describe();
  EXPECT_EQ(r.body, "{\"error\"") << "a body without framing runs until the server closes";
}

TEST(NetHttpClient, BodyCutShortIsAnErrorNotAShortAnswer) {
  HttpResponse r = answer_to_one_get("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}");
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.malformed) << "a dropped connection is not a foreign protocol";
  EXPECT_NE(r.error.find("connection closed"), std::string::npos) << r.error;

  r = answer_to_one_get("");
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.malformed);
  EXPECT_NE(r.error.find("without a response"), std::string::npos) << r.error;
}

TEST(NetHttpClient, GarbageIsAFramingErrorNotACrash) {
  for (const std::string& bad :
       {std::string("SSH-2.0-OpenSSH_9.2\r\n\r\n"), std::string("HTTP/1.1 abc\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n"),
        std::string("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"), std::string("HTTP/1.1 999 Odd\r\n\r\n"),
        "HTTP/1.1 200 OK\r\n" + std::string(kHeaderBytesMax + 10, 'x') + "\r\n\r\n"}) {
    HttpResponse r = answer_to_one_get(bad);
    EXPECT_EQ(r.status, 0) << bad.substr(0, 60);
    EXPECT_FALSE(r.error.empty()) << bad.substr(0, 60);
  }
  // Another protocol on the port is told apart from a dropped connection (outpost-top then asks
  // whether this is the admin port).
  HttpResponse ssh = answer_to_one_get("SSH-2.0-OpenSSH_9.2\r\n\r\n");
  EXPECT_TRUE(ssh.malformed) << ssh.error;
  EXPECT_NE(ssh.error.find("not an HTTP response"), std::string::npos) << ssh.error;
}

TEST(NetHttpClient, RefusedPortSaysCannotConnect) {
  std::uint16_t closed_port;
  {
    CannedServer server({});  // listens, then closes at destruction
    closed_port = server.port();
  }
  HttpResponse r = http_request({"127.0.0.1", closed_port}, HttpRequest{}, bounded());
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("cannot connect to 127.0.0.1:" + std::to_string(closed_port)),
            std::string::npos)
      << r.error;
}

TEST(NetHttpClient, SilentServerEndsAtTheResponseDeadline) {
  CannedServer server({{"", true, true}});
  HttpResponse r = http_request(server.endpoint(), HttpRequest{}, bounded(200));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.malformed);
  EXPECT_NE(r.error.find("did not answer within 200 ms"), std::string::npos) << r.error;
}

TEST(NetHttpClient, CancelFlagEndsAWaitWithoutTheDeadline) {
  CannedServer server({{"", true, true}});
  volatile std::sig_atomic_t cancel = 1;
  ClientOptions o = bounded();
  o.cancel = &cancel;
  HttpResponse r = http_request(server.endpoint(), HttpRequest{}, o);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("interrupted"), std::string::npos) << r.error;
}

TEST(NetHttpClient, KeepAliveReusesTheConnectionAndReconnectsAfterTheServerClosedIt) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string ok_close =
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
  CannedServer server({{ok, false}, {ok, true}, {ok_close, true}});
  HttpClient client(server.endpoint(), bounded());
  HttpRequest post{"POST", "/v1/x", "tok", {{"X-Extra", "1"}, {"Authorization", "bearer"}}, ""};
  EXPECT_EQ(client.request(post).status, 200);
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.request(HttpRequest{}).status, 200);
  EXPECT_EQ(server.connections(), 1) << "the second request rode the kept connection";
  // The server closed that connection after its answer (as an idle deadline would): the third
  // request opens a new one instead of failing on the dead one, and sends once.
  ASSERT_TRUE(server.wait_closed(1));
  HttpResponse third = client.request(HttpRequest{});
  EXPECT_EQ(third.status, 200) << third.describe();
  EXPECT_EQ(server.connections(), 2);
  EXPECT_FALSE(client.connected()) << "an answer with Connection: close closes the connection";
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].rfind("POST /v1/x HTTP/1.1\r\n", 0), 0u) << requests[0];
  EXPECT_NE(requests[0].find("Authorization: Bearer tok\r\n"), std::string::npos) << requests[0];
  EXPECT_NE(requests[0].find("Authorization: bearer\r\n"), std::string::npos)
      << "extra headers as given";
  EXPECT_NE(requests[0].find("X-Extra: 1\r\n"), std::string::npos);
  EXPECT_NE(requests[0].find("Content-Length: 0\r\n"), std::string::npos)
      << "a POST always has a length";
  EXPECT_EQ(requests[1].find("Content-Length"), std::string::npos) << "a GET without body has none";
}

TEST(NetHttpClient, OneShotRequestAsksTheServerToClose) {
  CannedServer server({{"HTTP/1.1 204 No Content\r\n\r\n"}});
  EXPECT_EQ(http_request(server.endpoint(), HttpRequest{}, bounded()).status, 204);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].find("Connection: close\r\n"), std::string::npos) << requests[0];
}

TEST(NetHttpClient, EndpointAndUrlEncoding) {
  std::string err;
  auto ep = parse_endpoint("127.0.0.1:7002", &err);
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->port, 7002);
  auto v6 = parse_endpoint("[::1]:80", &err);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:80");
  for (const char* bad :
       {"", "127.0.0.1", "host:", ":80", "h:0", "h:70000", "h:8x", "::1:80", "a b:80"}) {
    EXPECT_FALSE(parse_endpoint(bad, &err)) << bad;
    EXPECT_FALSE(err.empty());
  }
  EXPECT_EQ(url_encode("+4915 1/2"), "%2B4915%201%2F2");
}

}  // namespace
}  // namespace outpost::net
