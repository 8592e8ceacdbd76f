// The project's one HTTP/1.1 client, on Boost.Beast: outpost-top reads the admin API with it, the
// integration tests and the benchmarks drive outpostd's APIs with it. It knows nothing of the
// node (it links Boost and nothing else of the project), so the TUI stays free of node/.
// Every wait is bounded: a deadline on connect and one on the whole exchange (request written,
// response read); the response is bounded in size. It never throws and never resends a request:
// a failure comes back as status 0 with the reason in operator words, and the caller decides.
// One HttpClient belongs to one thread at a time; separate clients share nothing.
#pragma once

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace outpost::net {

// Upper bounds of one exchange. A node's answers are a few KiB (200 alerts, a page of history);
// 4 MiB leaves room for a large roster while keeping a misbehaving server from eating memory.
inline constexpr std::size_t kResponseBytesMax = 4 * 1024 * 1024;
inline constexpr std::size_t kHeaderBytesMax = 64 * 1024;
inline constexpr int kConnectTimeoutMsDefault = 1500;
inline constexpr int kResponseTimeoutMsDefault = 4000;

// Where a server listens: a host name or IP literal and a port.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  // "HOST:PORT", with an IPv6 literal in brackets.
  std::string to_string() const;
};

// Parses "HOST:PORT" or "[V6]:PORT". Returns nullopt (and a reason in `error`) when malformed.
std::optional<Endpoint> parse_endpoint(const std::string& text, std::string* error);

// Percent-encodes `s` for a path segment or query value (everything but A-Z a-z 0-9 - . _ ~).
std::string url_encode(const std::string& s);

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string bearer_token;  // sent as "Authorization: Bearer ..." when not empty
  // More header fields, sent as given (after the ones above; a name given twice is sent twice).
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent with Content-Type: application/json when not empty; a POST or PUT always carries a
  // Content-Length (0 for an empty body).
  std::string body;
};

struct HttpResponse {
  int status = 0;                              // 0: no complete response; see `error`
  std::string error;                           // transport or framing failure, when status == 0
  bool malformed = false;                      // status == 0 because the bytes were not HTTP
  std::map<std::string, std::string> headers;  // names lower-cased; the last of a repeated name
  std::string body;

  // "HTTP 200 {...}" or "no response: REASON", for test and log messages.
  std::string describe() const;
};

struct ClientOptions {
  int connect_timeout_ms = kConnectTimeoutMsDefault;
  // From sending the request to the last byte of the response.
  int response_timeout_ms = kResponseTimeoutMsDefault;
  std::string user_agent = "outpost";
  // Keep the connection open between requests (the server may still close it: the next request
  // then opens a new one). Off: "Connection: close" and one connection per request.
  bool keep_alive = true;
  // When set, a wait gives up (error "interrupted") soon after *cancel turns non-zero, e.g.
  // from a signal handler. Checked every kCancelPollMs.
  const volatile std::sig_atomic_t* cancel = nullptr;
};
inline constexpr int kCancelPollMs = 50;

class HttpClient {
 public:
  explicit HttpClient(Endpoint endpoint, ClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends `req` and waits (bounded) for the whole response. Opens a connection when there is
  // none or the server has closed the previous one meanwhile; after a failure, or an answer with
  // "Connection: close", the connection is closed. A returned status of 0 means no usable
  // answer: could not resolve or connect, timed out, connection closed early, response over
  // kResponseBytesMax, or not HTTP (then `malformed`); `error` says which.
  HttpResponse request(const HttpRequest& req);

  // True while a connection is open (kept alive from the last request).
  bool connected() const;
  const Endpoint& endpoint() const;
  // Closes the connection, if any; the next request opens a new one.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a connection of its own, closed after the answer (keep_alive is ignored).
HttpResponse http_request(const Endpoint& endpoint, const HttpRequest& req,
                          ClientOptions options = {});

}  // namespace outpost::net
