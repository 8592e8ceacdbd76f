#include "outpost/net/http_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <chrono>

namespace outpost::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

HttpResponse failure(std::string why, bool malformed = false) {
  HttpResponse r;
  r.error = std::move(why);
  r.malformed = malformed;
  return r;
}

// Why reading the response failed, in operator words; `malformed` when the bytes were not HTTP
// (some other protocol on that port) rather than missing.
HttpResponse read_failure(const beast::error_code& ec, int response_timeout_ms) {
  if (ec == beast::error::timeout) {
    return failure("did not answer within " + std::to_string(response_timeout_ms) + " ms");
  }
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset) {
    return failure("connection closed without a response");
  }
  if (ec == http::error::partial_message) return failure("connection closed inside the response");
  if (ec == http::error::body_limit) {
    return failure("response body over " + std::to_string(kResponseBytesMax) + " bytes", true);
  }
  if (ec == http::error::header_limit) {
    return failure("response headers over " + std::to_string(kHeaderBytesMax) + " bytes", true);
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return failure("not an HTTP response (" + ec.message() + ")", true);
  }
  return failure("read failed: " + ec.message());
}

}  // namespace

std::string Endpoint::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(const std::string& text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Endpoint> {
    if (error)
      *error = "bad address '" + text + "': " + why + " (want HOST:PORT, e.g. 127.0.0.1:7002)";
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
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_' || c == '%')) {
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

std::string HttpResponse::describe() const {
  return status ? "HTTP " + std::to_string(status) + " " + body : "no response: " + error;
}

// One io_context per client: its operations run only inside request(), on the caller's thread.
// Each asynchronous step is given a deadline through the stream (beast::tcp_stream closes the
// socket when it passes) and the context is run until the step's handler has run.
struct HttpClient::Impl {
  Impl(Endpoint e, ClientOptions o) : endpoint(std::move(e)), options(std::move(o)) {}

  Endpoint endpoint;
  ClientOptions options;
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool open = false;

  bool cancelled() const { return options.cancel != nullptr && *options.cancel != 0; }

  // Runs the context until `done`; a cancel request closes the socket, which completes the
  // pending operation with operation_aborted. Bounded by the stream's deadline.
  void drive(const bool& done) {
    io.restart();
    if (options.cancel == nullptr) {
      io.run();
      return;
    }
    while (!done) {
      if (io.stopped()) io.restart();
      io.run_for(std::chrono::milliseconds(kCancelPollMs));
      if (!done && cancelled()) stream.socket().close();
    }
    io.run();  // the timer's cancellation, so nothing is left for the next step
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
    open = false;
  }

  // True when the kept connection can carry another request: still open and the server has
  // neither closed it (idle deadline) nor sent anything unasked.
  bool reusable() {
    if (!open || !stream.socket().is_open()) return false;
    beast::error_code ec;
    stream.socket().non_blocking(true, ec);
    char c;
    std::size_t n = stream.socket().receive(asio::buffer(&c, 1), tcp::socket::message_peek, ec);
    return ec == asio::error::would_block && n == 0;
  }

  // Resolves and connects within connect_timeout_ms. Returns an empty string or the error.
  std::string connect() {
    beast::error_code ec;
    std::vector<tcp::endpoint> targets;
    asio::ip::address literal = asio::ip::make_address(endpoint.host, ec);
    if (!ec) {
      targets.emplace_back(literal, endpoint.port);
    } else {
      // A host name: the system resolver, as bounded as the system makes it.
      tcp::resolver resolver(io);
      auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
      if (ec) return "cannot resolve " + endpoint.host + ": " + ec.message();
      for (const auto& r : results) targets.push_back(r.endpoint());
    }
    bool done = false;
    stream.expires_after(std::chrono::milliseconds(options.connect_timeout_ms));
    stream.async_connect(targets, [&](const beast::error_code& e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    drive(done);
    if (cancelled()) return "interrupted";
    if (ec == beast::error::timeout) {
      return "cannot connect to " + endpoint.to_string() + ": connect timed out after " +
             std::to_string(options.connect_timeout_ms) + " ms";
    }
    if (ec) return "cannot connect to " + endpoint.to_string() + ": " + ec.message();
    stream.socket().set_option(tcp::no_delay(true), ec);
    open = true;
    return "";
  }

  http::request<http::string_body> build(const HttpRequest& req) const {
    http::request<http::string_body> msg;
    msg.version(11);
    http::verb verb = http::string_to_verb(req.method);
    if (verb == http::verb::unknown) {
      msg.method_string(req.method);
    } else {
      msg.method(verb);
    }
    msg.target(req.target);
    msg.set(http::field::host, endpoint.to_string());
    msg.set(http::field::user_agent, options.user_agent);
    msg.set(http::field::accept, "application/json");
    if (!options.keep_alive) msg.set(http::field::connection, "close");
    if (!req.bearer_token.empty())
      msg.set(http::field::authorization, "Bearer " + req.bearer_token);
    for (const auto& [name, value] : req.headers) msg.insert(name, value);
    if (!req.body.empty() || verb == http::verb::post || verb == http::verb::put) {
      msg.set(http::field::content_type, "application/json");
      msg.content_length(req.body.size());
    }
    msg.body() = req.body;
    return msg;
  }

  HttpResponse exchange(const HttpRequest& req) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(options.response_timeout_ms);
    auto msg = build(req);
    beast::error_code ec;
    bool done = false;
    stream.expires_at(deadline);
    http::async_write(stream, msg, [&](const beast::error_code& e, std::size_t) {
      ec = e;
      done = true;
    });
    drive(done);
    if (cancelled()) return failure("interrupted");
    if (ec == beast::error::timeout) return failure("sending the request timed out");
    if (ec) return failure("sending the request failed: " + ec.message());

    http::response_parser<http::string_body> parser;
    parser.header_limit(kHeaderBytesMax);
    parser.body_limit(kResponseBytesMax);
    parser.skip(msg.method() == http::verb::head);
    done = false;
    stream.expires_at(deadline);
    http::async_read(stream, buffer, parser, [&](const beast::error_code& e, std::size_t) {
      ec = e;
      done = true;
    });
    drive(done);
    if (cancelled()) return failure("interrupted");
    if (ec) return read_failure(ec, options.response_timeout_ms);
    const auto& res = parser.get();
    const int status = res.result_int();
    if (status < 100 || status > 599)
      return failure("bad HTTP status " + std::to_string(status), true);
    HttpResponse out;
    out.status = status;
    for (const auto& field : res)
      out.headers[lower(std::string(field.name_string()))] = std::string(field.value());
    const bool keep = res.keep_alive() && options.keep_alive;
    out.body = std::move(parser.release().body());
    if (!keep) close();
    return out;
  }
};

HttpClient::HttpClient(Endpoint endpoint, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(endpoint), std::move(options))) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

bool HttpClient::connected() const { return impl_->open; }
const Endpoint& HttpClient::endpoint() const { return impl_->endpoint; }
void HttpClient::close() { impl_->close(); }

HttpResponse HttpClient::request(const HttpRequest& req) {
  Impl& c = *impl_;
  if (c.open && !c.reusable()) c.close();
  if (!c.open) {
    if (std::string error = c.connect(); !error.empty()) {
      c.close();
      return failure(error);
    }
  }
  HttpResponse res = c.exchange(req);
  if (res.status == 0) {
    c.close();
    res.error = c.endpoint.to_string() + ": " + res.error;
  }
  return res;
}

HttpResponse http_request(const Endpoint& endpoint, const HttpRequest& req, ClientOptions options) {
  options.keep_alive = false;
  HttpClient client(endpoint, std::move(options));
  return client.request(req);
}

}  // namespace outpost::net
