// A tiny blocking HTTP/1.1 client for outpost-top: one request per TCP connection
// ("Connection: close"), POSIX sockets, a deadline on connect and on the whole response, and a
// bounded response size. Understands Content-Length, chunked and read-until-close bodies. It
// never throws and never retries; the caller decides. Not thread-safe (no shared state, so
// separate calls on separate threads are fine).
#pragma once

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace outpost::tui {

// Upper bounds of one exchange. A node's admin answers are a few KiB (200 alerts, 20 ops); 4 MiB
// leaves room for a large roster while keeping a misbehaving server from eating memory.
inline constexpr std::size_t kResponseBytesMax = 4 * 1024 * 1024;
inline constexpr std::size_t kHeaderBytesMax = 64 * 1024;
inline constexpr int kConnectTimeoutMsDefault = 1500;
inline constexpr int kResponseTimeoutMsDefault = 4000;

// Where the admin API listens: a host name or IP literal and a port.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
};

// Parses "HOST:PORT" or "[V6]:PORT". Returns nullopt (and a reason in `error`) when malformed.
std::optional<Endpoint> parse_endpoint(const std::string& text, std::string* error);

struct HttpResponse {
  int status = 0;                              // 0: no complete response; see `error`
  std::string error;                           // transport or framing failure, when status == 0
  bool malformed = false;                      // status == 0 because the bytes were not HTTP
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// Parses a complete raw response (status line, headers, body). `eof` says the peer closed the
// connection after `raw`; without it a body without framing is incomplete. Returns false when
// more bytes are needed; true when `out` holds either a response (status != 0) or a framing
// error (status == 0, `error` set). Pure, for the client and for tests.
bool parse_http_response(const std::string& raw, bool eof, HttpResponse* out);

// Percent-encodes `s` for a path segment or query value (everything but A-Z a-z 0-9 - . _ ~).
std::string url_encode(const std::string& s);

struct HttpRequestOptions {
  std::string method = "GET";
  std::string target = "/";
  std::string bearer_token;  // sent as "Authorization: Bearer ..." when not empty
  std::string body;          // sent with Content-Type: application/json when not empty
  int connect_timeout_ms = kConnectTimeoutMsDefault;
  int response_timeout_ms = kResponseTimeoutMsDefault;
  // When set and non-zero after a signal interrupted a wait, the request gives up at once.
  const volatile std::sig_atomic_t* cancel = nullptr;
};

// Sends one request to `ep` and waits (bounded) for the whole response. A returned status of 0
// means no usable answer: could not resolve or connect, timed out, connection closed early,
// response over kResponseBytesMax, or not HTTP; `error` says which in operator words.
HttpResponse http_request(const Endpoint& ep, const HttpRequestOptions& req);

}  // namespace outpost::tui
