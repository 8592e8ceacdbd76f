#include "outpost/tui/http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace outpost::tui {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  std::size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60'000));
}

// Closes the descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// Decodes a chunked body starting at `pos`. Returns 1 when complete (body in `out`), 0 when more
// bytes are needed, -1 on a framing error (reason in `error`).
int decode_chunked(const std::string& raw, std::size_t pos, std::string* out, std::string* error) {
  out->clear();
  while (true) {
    std::size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) {
      if (raw.size() - pos <= 1024) return 0;
      *error = "chunk size line too long";
      return -1;
    }
    std::string line = raw.substr(pos, eol - pos);
    line = trim(line.substr(0, line.find(';')));
    if (line.empty() || line.size() > 8 || !std::all_of(line.begin(), line.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) != 0;
        })) {
      *error = "bad chunk size '" + line.substr(0, 16) + "'";
      return -1;
    }
    std::size_t size = std::stoul(line, nullptr, 16);
    pos = eol + 2;
    if (size == 0) {
      // Optional trailer lines, then an empty line.
      while (true) {
        std::size_t end = raw.find("\r\n", pos);
        if (end == std::string::npos) return 0;
        if (end == pos) return 1;
        pos = end + 2;
      }
    }
    if (out->size() + size > kResponseBytesMax) {
      *error = "response body over " + std::to_string(kResponseBytesMax) + " bytes";
      return -1;
    }
    if (raw.size() < pos + size + 2) return 0;
    if (raw.compare(pos + size, 2, "\r\n") != 0) {
      *error = "chunk not followed by CRLF";
      return -1;
    }
    out->append(raw, pos, size);
    pos += size + 2;
  }
}

}  // namespace

std::string Endpoint::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(const std::string& text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Endpoint> {
    if (error) *error = "bad address '" + text + "': " + why + " (want HOST:PORT, e.g. 127.0.0.1:7002)";
    return std::nullopt;
  };
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return fail("no port");
  std::string host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return fail("write an IPv6 address in brackets");
  }
  if (host.empty()) return fail("empty host");
  if (host.size() > 253) return fail("host name too long");
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_' || c == '%')) {
      return fail("unexpected character in host");
    }
  }
  if (!all_digits(port) || port.size() > 5) return fail("port must be a number");
  unsigned long p = std::stoul(port);
  if (p == 0 || p > 65535) return fail("port out of range 1..65535");
  return Endpoint{host, static_cast<std::uint16_t>(p)};
}

std::string url_encode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool parse_http_response(const std::string& raw, bool eof, HttpResponse* out) {
  *out = HttpResponse{};
  auto fail = [&](const std::string& why) {
    out->status = 0;
    out->error = why;
    return true;
  };
  std::size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (raw.size() > kHeaderBytesMax) return fail("response headers over " + std::to_string(kHeaderBytesMax) + " bytes");
    if (eof) return fail(raw.empty() ? "connection closed without a response" : "connection closed inside the response headers");
    return false;
  }
  if (header_end > kHeaderBytesMax) return fail("response headers over " + std::to_string(kHeaderBytesMax) + " bytes");
  std::size_t line_end = raw.find("\r\n");
  std::string status_line = raw.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12 || status_line[8] != ' ' ||
      !all_digits(status_line.substr(9, 3))) {
    return fail("not an HTTP response (status line '" + status_line.substr(0, 40) + "')");
  }
  int status = std::stoi(status_line.substr(9, 3));
  if (status < 100 || status > 599) return fail("bad HTTP status " + std::to_string(status));
  std::size_t pos = line_end + 2;
  while (pos < header_end) {
    std::size_t end = raw.find("\r\n", pos);
    if (end == std::string::npos || end > header_end) end = header_end;
    std::string line = raw.substr(pos, end - pos);
    std::size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return fail("malformed header line");
    out->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    pos = end + 2;
  }
  std::size_t body_start = header_end + 4;
  auto te = out->headers.find("transfer-encoding");
  auto cl = out->headers.find("content-length");
  if (te != out->headers.end() && lower(te->second).find("chunked") != std::string::npos) {
    std::string body, error;
    int r = decode_chunked(raw, body_start, &body, &error);
    if (r < 0) return fail(error);
    if (r == 0) return eof ? fail("connection closed inside a chunked body") : false;
    out->body = std::move(body);
  } else if (cl != out->headers.end()) {
    if (!all_digits(cl->second) || cl->second.size() > 12) return fail("bad Content-Length '" + cl->second + "'");
    std::size_t length = std::stoull(cl->second);
    if (length > kResponseBytesMax) return fail("response body over " + std::to_string(kResponseBytesMax) + " bytes");
    if (raw.size() < body_start + length) return eof ? fail("connection closed inside the response body") : false;
    out->body = raw.substr(body_start, length);
  } else if (status == 204 || status == 304) {
    out->body.clear();
  } else {
    if (!eof) return false;  // body runs until the server closes
    out->body = raw.substr(body_start);
  }
  out->status = status;
  return true;
}

HttpResponse http_request(const Endpoint& ep, const HttpRequestOptions& req) {
  HttpResponse res;
  auto fail = [&](const std::string& why) {
    res = HttpResponse{};
    res.error = why;
    return res;
  };
  const auto connect_deadline = Clock::now() + std::chrono::milliseconds(req.connect_timeout_ms);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  std::string port = std::to_string(ep.port);
  int gai = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &list);
  if (gai != 0) return fail("cannot resolve " + ep.host + ": " + ::gai_strerror(gai));

  int fd = -1;
  std::string connect_error = "no address";
  for (addrinfo* a = list; a != nullptr && fd < 0; a = a->ai_next) {
    Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (s.get() < 0) {
      connect_error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(s.get(), a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
      connect_error = std::strerror(errno);
      continue;
    }
    if (rc != 0) {
      pollfd p{s.get(), POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, ms_left(connect_deadline));
      } while (n < 0 && errno == EINTR && ms_left(connect_deadline) > 0 && !(req.cancel && *req.cancel));
      if (n <= 0) {
        connect_error = "connect timed out after " + std::to_string(req.connect_timeout_ms) + " ms";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        connect_error = std::strerror(err);
        continue;
      }
    }
    fd = s.release();
  }
  ::freeaddrinfo(list);
  if (fd < 0) return fail("cannot connect to " + ep.to_string() + ": " + connect_error);
  Fd sock(fd);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  const auto deadline = Clock::now() + std::chrono::milliseconds(req.response_timeout_ms);
  std::string msg = req.method + " " + req.target + " HTTP/1.1\r\nHost: " + ep.to_string() +
                    "\r\nUser-Agent: outpost-top\r\nAccept: application/json\r\nConnection: close\r\n";
  if (!req.bearer_token.empty()) msg += "Authorization: Bearer " + req.bearer_token + "\r\n";
  if (!req.body.empty() || req.method == "POST") {
    msg += "Content-Type: application/json\r\nContent-Length: " + std::to_string(req.body.size()) + "\r\n";
  }
  msg += "\r\n" + req.body;
  std::size_t sent = 0;
  while (sent < msg.size()) {
    ssize_t n = ::send(fd, msg.data() + sent, msg.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0 && ms_left(deadline) == 0) {
        return fail("sending the request to " + ep.to_string() + " timed out");
      }
      continue;
    }
    return fail("sending the request to " + ep.to_string() + " failed: " + std::strerror(errno));
  }

  std::string raw;
  char buf[16384];
  bool eof = false;
  while (true) {
    if (parse_http_response(raw, eof, &res)) {
      if (res.status == 0) {
        res.error = ep.to_string() + ": " + res.error;
        // Bytes that are not HTTP (some other protocol) differ from a dropped connection.
        res.malformed = !raw.empty() && res.error.find("connection closed") == std::string::npos;
      }
      return res;
    }
    if (raw.size() > kResponseBytesMax + kHeaderBytesMax) {
      return fail(ep.to_string() + ": response over " + std::to_string(kResponseBytesMax) + " bytes");
    }
    int left = ms_left(deadline);
    if (left == 0) {
      return fail(ep.to_string() + " did not answer within " + std::to_string(req.response_timeout_ms) + " ms");
    }
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, left);
    if (n < 0 && errno == EINTR) {
      if (req.cancel && *req.cancel) return fail("interrupted");
      continue;
    }
    if (n < 0) return fail(std::string("poll failed: ") + std::strerror(errno));
    if (n == 0) continue;
    ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (got < 0 && errno != ECONNRESET) return fail(ep.to_string() + ": read failed: " + std::strerror(errno));
    if (got <= 0) {
      eof = true;
    } else {
      raw.append(buf, static_cast<std::size_t>(got));
    }
  }
}

}  // namespace outpost::tui
