// Making links: connecting out (async_connect) and accepting in (LinkListener), with the
// handshake slots that bound how many unauthenticated connections a listener holds.
#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <utility>
#include <variant>

#include "link_impl.h"

namespace outpost::node {

namespace {

// The source a connection counts against for handshake slots: its IP address, an IPv4-mapped
// IPv6 address as IPv4, other IPv6 addresses by their /64 prefix.
std::string source_of(const tcp::socket& socket) {
  boost::system::error_code ec;
  const tcp::endpoint ep = socket.remote_endpoint(ec);
  if (ec) return "?";
  const asio::ip::address a = ep.address();
  if (a.is_v4()) return a.to_string();
  const asio::ip::address_v6 v6 = a.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  asio::ip::address_v6::bytes_type b = v6.to_bytes();
  std::fill(b.begin() + 8, b.end(), 0);
  return asio::ip::address_v6(b).to_string() + "/64";
}

// The handshake slots of one listener (limits.h, "Links"): at most kLinkHandshakesInFlightMax
// in all, kLinkHandshakesPerSourceMax per source, and kLinkHandshakesReservedForKnown only for
// sources that completed a handshake here before. Thread-safe: slots are taken on the accept
// strand and given back on the links' strands.
class HandshakeSlots {
 public:
  // A slot taken for a source; give it back with release().
  struct Ticket {
    std::string source;
    bool reserved = false;  // taken from the slots kept for known sources
  };

  // Takes a slot for `source`, or returns the reason there is none.
  std::variant<Ticket, std::string> acquire(const std::string& source) {
    std::lock_guard<std::mutex> lock(mu_);
    if (total_ >= limits::kLinkHandshakesInFlightMax)
      return std::string("too many handshakes in flight");
    std::size_t& mine = by_source_[source];
    if (mine >= limits::kLinkHandshakesPerSourceMax) {
      return std::string("too many handshakes in flight from this address");
    }
    const bool known = known_.count(source) > 0;
    const std::size_t open =
        limits::kLinkHandshakesInFlightMax - limits::kLinkHandshakesReservedForKnown;
    const bool reserved = unreserved_ >= open;
    if (reserved && !known) {
      if (mine == 0) by_source_.erase(source);
      return std::string("the remaining handshake slots are kept for known peers");
    }
    ++mine;
    ++total_;
    if (!reserved) ++unreserved_;
    return Ticket{source, reserved};
  }

  void release(const Ticket& t) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_source_.find(t.source);
    OUTPOST_CHECK(it != by_source_.end() && it->second > 0 && total_ > 0);
    if (--it->second == 0) by_source_.erase(it);
    --total_;
    if (!t.reserved) --unreserved_;
  }

  // Records that `source` completed a handshake (an admitted peer): it may use the reserve.
  void remember(const std::string& source) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!known_.insert(source).second) return;
    known_order_.push_back(source);
    while (known_order_.size() > limits::kLinkKnownAddressesMax) {
      known_.erase(known_order_.front());
      known_order_.pop_front();
    }
  }

  std::size_t in_flight() const {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::size_t> by_source_;  // only sources holding a slot
  std::size_t total_ = 0;
  std::size_t unreserved_ = 0;  // slots held outside the reserve
  std::set<std::string> known_;
  std::deque<std::string> known_order_;
};

Status check_options(const LinkOptions& o) {
  if (o.handshake_timeout_ms <= 0 || o.idle_timeout_ms <= 0 || o.keepalive_ms <= 0 ||
      o.keepalive_ms >= o.idle_timeout_ms) {
    return Status::invalid("link options: timeouts must be positive and keepalive < idle");
  }
  if (o.send_queue_bytes_max < limits::kLinkMessageBytesMax) {
    return Status::invalid("link options: the send queue must hold one largest message");
  }
  return Status::ok();
}

}  // namespace

// --- connect ------------------------------------------------------------------------------------

void async_connect(asio::io_context& io, const Endpoint& to, LinkContext context,
                   std::function<void(Result<std::shared_ptr<Link>>)> done) {
  auto fail_soon = [&io, &done](const Status& st) {
    asio::post(io, [done = std::move(done), st] { done(st); });
  };
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(to.host, ec);
  if (ec) return fail_soon(Status::invalid("bad peer address '" + to.host + "'"));
  if (Status st = check_options(context.options); !st.is_ok()) return fail_soon(st);
  auto channel =
      sync::SecureChannel::create(crypto::NoiseRole::kInitiator, channel_config(context));
  if (!channel.is_ok()) return fail_soon(channel.status());
  tcp::socket socket(asio::make_strand(io));
  auto impl = std::make_shared<Link::Impl>(std::move(socket), std::move(context),
                                           std::move(channel).value(), /*initiator=*/true);
  tcp::endpoint endpoint(address, to.port);
  asio::post(impl->ex_, [impl, endpoint, done = std::move(done)]() mutable {
    impl->start_connect(endpoint,
                        [done = std::move(done)](const Status& st, std::shared_ptr<Link> link) {
                          if (st.is_ok()) {
                            done(std::move(link));
                          } else {
                            done(st);
                          }
                        });
  });
}

// --- listener -----------------------------------------------------------------------------------

struct LinkListener::Impl : std::enable_shared_from_this<LinkListener::Impl> {
  Impl(asio::io_context& io, LinkContext context, LinkHandler on_link, RejectHandler on_reject)
      : io_(io),
        strand_(asio::make_strand(io)),
        acceptor_(strand_),
        context_(std::move(context)),
        on_link_(std::move(on_link)),
        on_reject_(std::move(on_reject)) {}

  void do_accept() {
    // A tcp::socket (any_io_executor) bound to a fresh strand: one strand per link.
    acceptor_.async_accept(
        asio::any_io_executor(asio::make_strand(io_)),
        [self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
          self->on_accept(ec, std::move(socket));
        });
  }

  void on_accept(const boost::system::error_code& ec, tcp::socket socket) {
    if (closed_.load()) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      log(LogLevel::kWarn, "link accept failed", {{"error", ec.message()}});
    } else {
      auto slot = slots_.acquire(source_of(socket));
      if (auto* why = std::get_if<std::string>(&slot)) {
        refused_at_accept(*why, address_of(socket));
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        start_link(std::move(socket), std::get<HandshakeSlots::Ticket>(std::move(slot)));
      }
    }
    do_accept();
  }

  // Logs a connection closed at accept: the first of a burst, then at most one line a second
  // with the count, so that a flood cannot fill the log.
  void refused_at_accept(const std::string& why, const std::string& address) {
    ++refused_unlogged_;
    const auto now = steady_now(context_);
    if (refused_unlogged_ > 1 && now - refused_logged_at_ < std::chrono::seconds(1)) return;
    log(LogLevel::kWarn, "link refused at accept: " + why,
        {{"address", address}, {"refused_since_last_line", std::to_string(refused_unlogged_)}});
    refused_unlogged_ = 0;
    refused_logged_at_ = now;
  }

  void start_link(tcp::socket socket, HandshakeSlots::Ticket ticket) {
    auto channel =
        sync::SecureChannel::create(crypto::NoiseRole::kResponder, channel_config(context_));
    OUTPOST_CHECK(channel.is_ok());  // checked in listen()
    auto link = std::make_shared<Link::Impl>(std::move(socket), context_,
                                             std::move(channel).value(), /*initiator=*/false);
    std::weak_ptr<Link::Impl> weak = link;
    asio::post(link->ex_, [link, weak, ticket = std::move(ticket), self = shared_from_this()] {
      link->start_accepted([self, weak, ticket](const Status& st, std::shared_ptr<Link> handed) {
        self->slots_.release(ticket);
        if (st.is_ok()) self->slots_.remember(ticket.source);
        if (!st.is_ok()) {
          if (self->on_reject_ && !self->closed_.load()) {
            auto l = weak.lock();
            self->on_reject_(st, l ? l->address_ : std::string("?"));
          }
          return;
        }
        if (self->closed_.load()) {
          handed->close(Status::unavailable("listener closed"));
          return;
        }
        if (self->on_link_) self->on_link_(std::move(handed));
      });
    });
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(handshaking_, [](const std::weak_ptr<Link::Impl>& w) { return w.expired(); });
    handshaking_.push_back(weak);
  }

  void close() {
    if (closed_.exchange(true)) return;
    asio::post(strand_, [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
    });
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& w : handshaking_) {
      if (auto l = w.lock()) {
        asio::post(l->ex_, [l] {
          if (!l->handshake_done_) l->close_now(Status::unavailable("listener closed"));
        });
      }
    }
    handshaking_.clear();
  }

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::acceptor acceptor_;
  LinkContext context_;
  LinkHandler on_link_;
  RejectHandler on_reject_;
  HandshakeSlots slots_;
  std::size_t refused_unlogged_ = 0;  // accept strand only
  SteadyClock::time_point refused_logged_at_{};
  std::atomic<bool> closed_{false};
  Endpoint local_;
  std::mutex mu_;
  std::vector<std::weak_ptr<Link::Impl>> handshaking_;  // to drop them at close()
};

Result<std::unique_ptr<LinkListener>> LinkListener::listen(asio::io_context& io, const Endpoint& at,
                                                           LinkContext context, LinkHandler on_link,
                                                           RejectHandler on_reject) {
  OUTPOST_RETURN_IF_ERROR(check_options(context.options));
  auto probe = sync::SecureChannel::create(crypto::NoiseRole::kResponder, channel_config(context));
  if (!probe.is_ok()) return probe.status();
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(at.host, ec);
  if (ec) return Status::invalid("bad listen address '" + at.host + "'");
  auto impl =
      std::make_shared<Impl>(io, std::move(context), std::move(on_link), std::move(on_reject));
  tcp::endpoint endpoint(address, at.port);
  impl->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor_.bind(endpoint, ec);
  if (!ec) impl->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::unavailable("cannot listen on " + at.to_string() + ": " + ec.message());
  tcp::endpoint bound = impl->acceptor_.local_endpoint(ec);
  impl->local_ = Endpoint{bound.address().to_string(), bound.port()};
  asio::post(impl->strand_, [impl] { impl->do_accept(); });
  log(LogLevel::kInfo, "link listener started", {{"address", impl->local_.to_string()}});
  return std::unique_ptr<LinkListener>(new LinkListener(std::move(impl)));
}

LinkListener::~LinkListener() { impl_->close(); }

Endpoint LinkListener::local_endpoint() const { return impl_->local_; }

void LinkListener::close() { impl_->close(); }

std::size_t LinkListener::handshakes_in_flight() const { return impl_->slots_.in_flight(); }

}  // namespace outpost::node
