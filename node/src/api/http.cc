#include "outpost/node/http.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "outpost/base/limits.h"
#include "outpost/node/log.h"

namespace outpost::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse http_error(int status, const std::string& code, const std::string& message) {
  nlohmann::ordered_json j;
  j["error"] = code;
  j["message"] = message;
  // Messages may quote client bytes (a path, a field) that are not UTF-8: replace them rather
  // than let dump() throw on the io thread (which would end the process).
  return HttpResponse{status, j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)};
}

namespace {

constexpr std::size_t kHeaderBytesMax = 16 * 1024;
constexpr std::size_t kConnectionsMax = 512;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return true;
}

bool parse_target(std::string_view target, HttpRequest& req) {
  auto q = target.find('?');
  if (!percent_decode(target.substr(0, q), req.path)) return false;
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    std::string k, v;
    if (!percent_decode(pair.substr(0, eq), k)) return false;
    if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), v)) return false;
    if (req.query.size() >= 32) return false;
    req.query[k] = v;
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return true;
}

class Session;

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, std::string n, HttpHandler h)
      : io(io), acceptor(io), name(std::move(n)), handler(std::move(h)) {}
  asio::io_context& io;
  tcp::acceptor acceptor;
  std::string name;
  HttpHandler handler;
  std::atomic<std::size_t> connections{0};
  bool closed = false;
  // Sessions waiting for a request. close() cancels their reads so that idle keep-alive
  // connections close at once instead of holding up a shutdown until their deadline. Guarded by
  // reading_mu: a session may end on another thread than the io thread (its last reference can
  // be a Responder copy in a ledger worker task whose client went away meanwhile).
  std::mutex reading_mu;
  std::unordered_set<Session*> reading;
  void set_reading(Session* s, bool on) {
    std::lock_guard<std::mutex> lock(reading_mu);
    if (on) {
      reading.insert(s);
    } else {
      reading.erase(s);
    }
  }

  void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    server_->connections++;
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() {
    server_->set_reading(this, false);
    server_->connections--;
  }

  void start() { read(); }
  // Cancels a pending read (the server is closing); the session then closes.
  void cancel_read() { stream_.cancel(); }

 private:
  void read() {
    if (server_->closed) return close();
    server_->set_reading(this, true);
    parser_.emplace();
    parser_->body_limit(limits::kHttpBodyBytesMax);
    parser_->header_limit(kHeaderBytesMax);
    stream_.expires_after(std::chrono::milliseconds(limits::kHttpReadTimeoutMs));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    server_->set_reading(this, false);
    if (ec == http::error::end_of_stream) return close();
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return write(http_error(413, "body_too_large",
                              "request body is larger than " + std::to_string(limits::kHttpBodyBytesMax) + " bytes"));
    }
    if (ec == http::error::header_limit) {
      keep_alive_ = false;
      return write(http_error(431, "headers_too_large", "request headers are too large"));
    }
    if (ec == beast::error::timeout) {
      log(LogLevel::kDebug, "http client timed out", {{"api", server_->name}, {"peer", peer_}});
      return close();
    }
    if (ec) {
      if (ec != asio::error::operation_aborted && ec != asio::error::connection_reset) {
        // Garbage that is not HTTP: answer 400 once, then close.
        keep_alive_ = false;
        return write(http_error(400, "bad_request", "malformed HTTP request: " + ec.message()));
      }
      return close();
    }
    stream_.expires_never();
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive() && !server_->closed;
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.authorization = std::string(msg[http::field::authorization]);
    req.content_type = std::string(msg[http::field::content_type]);
    req.body = std::move(msg.body());
    req.peer = peer_;
    if (!parse_target(std::string_view(msg.target().data(), msg.target().size()), req)) {
      return write(http_error(400, "bad_request", "malformed request target"));
    }
    auto self = shared_from_this();
    auto& io = server_->io;
    auto answered = std::make_shared<std::atomic<bool>>(false);  // one answer per request
    Responder respond = [self, &io, answered](HttpResponse resp) {
      if (answered->exchange(true)) return;
      asio::post(io, [self, resp = std::move(resp)]() mutable { self->write(std::move(resp)); });
    };
    // This is the boundary that reads the client's bytes: an exception a handler lets escape
    // (e.g. nlohmann::json on an unexpected type) becomes a 500 here instead of ending the process.
    try {
      server_->handler(std::move(req), respond);
    } catch (const std::exception& e) {
      log(LogLevel::kError, "http handler failed", {{"api", server_->name}, {"peer", peer_}, {"error", e.what()}});
      keep_alive_ = false;
      respond(http_error(500, "internal", "internal error while handling the request; see the node's log"));
    }
  }

  void write(HttpResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "outpostd");
    res->set(http::field::content_type, "application/json");
    if (!r.allow.empty()) res->set(http::field::allow, r.allow);
    if (server_->closed) keep_alive_ = false;
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    if (!res->body().empty() && res->body().back() != '\n') res->body().push_back('\n');
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(limits::kHttpReadTimeoutMs));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpServer::Impl> server_;
  std::string peer_;
  bool keep_alive_ = true;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->closed) return;
    if (!ec) {
      if (self->connections.load() >= kConnectionsMax) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), self)->start();
      }
    }
    self->accept();
  });
}

Result<std::unique_ptr<HttpServer>> HttpServer::listen(asio::io_context& io, const Endpoint& endpoint,
                                                       std::string name, HttpHandler handler) {
  auto impl = std::make_shared<Impl>(io, std::move(name), std::move(handler));
  beast::error_code ec;
  auto addr = asio::ip::make_address(endpoint.host, ec);
  if (ec) return Status::invalid("bad listen address " + endpoint.to_string());
  tcp::endpoint ep(addr, endpoint.port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::unavailable("cannot listen on " + endpoint.to_string() + " for " + impl->name + ": " + ec.message());
  impl->accept();
  return std::unique_ptr<HttpServer>(new HttpServer(impl));
}

HttpServer::~HttpServer() { close(); }

Endpoint HttpServer::local_endpoint() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return Endpoint{ep.address().to_string(), ep.port()};
}

void HttpServer::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  beast::error_code ec;
  impl_->acceptor.close(ec);
  // Every session in `reading` has a read pending, which holds a reference to it: alive here.
  std::vector<Session*> idle;
  {
    std::lock_guard<std::mutex> lock(impl_->reading_mu);
    idle.assign(impl_->reading.begin(), impl_->reading.end());
  }
  for (Session* s : idle) s->cancel_read();
}

std::size_t HttpServer::open_connections() const { return impl_->connections.load(); }

}  // namespace outpost::node
