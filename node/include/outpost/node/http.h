// A small HTTP/1.1 server on Boost.Beast for the POS and admin APIs. One Asio io_context thread
// runs every connection (implicitly one strand); each read has a deadline, request bodies are
// bounded (limits::kHttpBodyBytesMax), and a handler answers asynchronously through a Responder
// that may be called from any thread (it posts back to the io_context).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "outpost/base/status.h"
#include "outpost/node/config.h"

namespace boost::asio {
class io_context;
}

namespace outpost::node {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // target without the query string, percent-decoded
  std::map<std::string, std::string> query;
  std::string authorization;  // the Authorization header, verbatim
  std::string content_type;
  std::string body;
  std::string peer;  // remote address, for logs
};

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status_code, std::string json_body, std::string allow_methods = "")
      : status(status_code), body(std::move(json_body)), allow(std::move(allow_methods)) {}
  int status = 200;
  std::string body;   // JSON
  std::string allow;  // the Allow header of a 405 answer ("GET, POST"); empty: none
};

using Responder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(HttpRequest, Responder)>;

class HttpServer {
 public:
  // Binds `endpoint` (port 0 = ephemeral) on `io`. Fails with a clear message if it cannot.
  static Result<std::unique_ptr<HttpServer>> listen(boost::asio::io_context& io, const Endpoint& endpoint,
                                                     std::string name, HttpHandler handler);
  ~HttpServer();
  // The bound address (with the real port when 0 was asked for).
  Endpoint local_endpoint() const;
  // Stops accepting; open connections finish their current request and close.
  void close();
  // Connections currently open.
  std::size_t open_connections() const;

  struct Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Builds an error body {"error": code, "message": message}.
HttpResponse http_error(int status, const std::string& code, const std::string& message);

}  // namespace outpost::node
