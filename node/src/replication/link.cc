// Links over Boost.Asio TCP. Each link is one Link::Impl on its own strand: a read loop feeding
// sync::SecureChannel, a send queue of messages and control frames, and one watchdog timer that
// enforces the handshake deadline, the idle timeout, write progress and keepalive pings. Every
// close goes through close_now(), which logs the reason once and runs exactly one completion
// handler.
//
// The data path (docs/performance.md, "Link bulk transfer") allocates nothing per frame and
// copies little in user space:
//   send:    queued message --(encrypt)--> write batch --(one write per batch)--> socket
//   receive: socket --(read)--> read buffer, decrypted in place --(copy)--> delivered message
// Frames are sealed only when the write batch is filled, in queue order, so nonces follow the
// wire order whatever mix of messages, pings and CLOSE is queued. A batch gathers many small
// messages into one write; a large message is sealed a batch at a time, which keeps the batch
// in cache between encryption and the kernel's copy.

#include "outpost/node/link.h"

#include <algorithm>
#include <utility>

#include "link_impl.h"

namespace outpost::node {

namespace link_internal {

sync::Env& env_of(const LinkContext& context) {
  static sync::SystemEnv system_env;
  return context.clock ? *context.clock : system_env;
}

SteadyClock::time_point steady_now(const LinkContext& context) {
  return SteadyClock::time_point(
      std::chrono::milliseconds(static_cast<std::int64_t>(env_of(context).steady_ms())));
}

std::string address_of(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint ep = socket.remote_endpoint(ec);
  if (ec) return "?";
  return Endpoint{ep.address().to_string(), ep.port()}.to_string();
}

sync::ChannelConfig channel_config(const LinkContext& c) {
  sync::ChannelConfig cfg;
  cfg.certificate = c.certificate;
  cfg.noise_key = c.noise_key;
  cfg.network_id = c.network_id;
  cfg.root_key = c.root_key;
  cfg.roster = c.roster;
  cfg.rekey_after_messages = c.options.rekey_after_messages;
  return cfg;
}

}  // namespace link_internal

LinkContext make_link_context(const NodeIdentity& identity,
                              std::function<std::shared_ptr<const sync::Roster>()> roster) {
  LinkContext c;
  c.certificate = identity.certificate;
  c.noise_key = identity.noise_key;
  c.network_id = identity.network_id;
  c.root_key = identity.root_key;
  c.roster = std::move(roster);
  return c;
}

// --- Link::Impl: start, handshake and reads (writes, deadlines and close: link_send.cc) ---

void Link::Impl::start_connect(const tcp::endpoint& to, HandshakeDone done) {
  on_handshake_ = std::move(done);
  address_ = Endpoint{to.address().to_string(), to.port()}.to_string();
  arm_watchdog();
  socket_.async_connect(to, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      self->close_now(
          Status::unavailable("connect to " + self->address_ + " failed: " + ec.message()));
      return;
    }
    self->start_handshake();
  });
}

void Link::Impl::start_accepted(HandshakeDone done) {
  on_handshake_ = std::move(done);
  address_ = address_of(socket_);
  arm_watchdog();
  start_handshake();
}

void Link::Impl::start_handshake() {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);  // small sync messages must not wait
  last_rx_ = last_tx_ = steady_now(context_);
  if (initiator_) {
    sync::ChannelOutput out;
    Status st = channel_.start(out);
    if (!st.is_ok()) return close_now(st);
    enqueue(Outgoing::wire(std::move(out.wire)));
  }
  do_read();
}

// Reads into the free space after the unconsumed bytes (at most a partial frame) of the read
// buffer. They move to the front only when a whole frame might no longer fit behind them.
void Link::Impl::do_read() {
  if (closed_ || reading_) return;
  reading_ = true;
  if (read_begin_ == read_end_) {
    read_begin_ = read_end_ = 0;
  } else if (kReadBufferBytes - read_begin_ < sync::kFrameWireBytesMax) {
    std::memmove(read_buffer_.get(), read_buffer_.get() + read_begin_, read_end_ - read_begin_);
    read_end_ -= read_begin_;
    read_begin_ = 0;
  }
  socket_.async_read_some(
      asio::buffer(read_buffer_.get() + read_end_, kReadBufferBytes - read_end_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->on_read(ec, n);
      });
}

void Link::Impl::on_read(const boost::system::error_code& ec, std::size_t n) {
  reading_ = false;
  if (closed_ || closing_) return;  // a closing link only flushes its last frames
  if (ec == asio::error::eof || ec == asio::error::connection_reset) {
    const char* phase = handshake_done_ ? "" : " during the handshake";
    std::string what = channel_.has_partial_frame() ? "truncated frame: peer hung up mid-frame"
                       : !handshake_done_           ? "peer hung up"
                       : channel_.has_partial_message()
                           ? "truncated message: peer hung up between fragments"
                           : "peer hung up without closing the link";
    what += phase;
    return close_now(Status::unavailable(what));
  }
  if (ec) return close_now(Status::unavailable("read failed: " + ec.message()));
  wire_bytes_received_.fetch_add(n, std::memory_order_relaxed);
  last_rx_ = steady_now(context_);
  read_end_ += n;
  sync::ChannelOutput out;
  std::size_t consumed = 0;
  Status st = channel_.receive_in_place(
      std::span<std::uint8_t>(read_buffer_.get() + read_begin_, read_end_ - read_begin_), wall_ms(),
      out, consumed);
  if (!st.is_ok()) {
    // A responder that refused the initiator has a CLOSE frame saying why: flush it first.
    if (!out.wire.empty()) return close_after_flush(st, Outgoing::wire(std::move(out.wire)));
    return close_now(st);
  }
  read_begin_ += consumed;
  if (consumed > 0) note_frame();  // every whole frame consumed was authenticated
  if (!out.wire.empty()) enqueue(Outgoing::wire(std::move(out.wire)));
  if (out.handshake_completed) finish_handshake();
  if (closed_) return;
  deliver(std::move(out.messages));
  if (closed_) return;
  if (out.peer_closed) {
    return close_now(Status::unavailable("peer closed the link: " + *out.peer_closed));
  }
  // After the handshake, reading waits for set_handlers(): nothing piles up unread here.
  if (!handshake_done_ || handlers_set_) do_read();
}

void Link::Impl::deliver(std::vector<Bytes> messages) {
  for (auto& m : messages) {
    if (closed_ || closing_) return;  // close() was called: the rest is dropped
    if (!handlers_set_) {
      pending_.push_back(std::move(m));
      continue;
    }
    if (on_message_) on_message_(std::move(m));
  }
}

void Link::Impl::finish_handshake() {
  handshake_done_ = true;
  peer_ = channel_.peer_certificate().cert;
  peer_roster_version_ = channel_.peer_roster_version();
  open_.store(true);
  log(LogLevel::kInfo, "link open",
      {{"peer", describe()},
       {"address", address_},
       {"initiator", initiator_ ? "yes" : "no"},
       {"peer_roster_version", std::to_string(peer_roster_version_)}});
  auto done = std::move(on_handshake_);
  on_handshake_ = nullptr;
  if (done) done(Status::ok(), std::shared_ptr<Link>(new Link(shared_from_this())));
}

void Link::Impl::note_frame() {
  last_frame_ticks_.store(steady_now(context_).time_since_epoch().count(),
                          std::memory_order_relaxed);
}

std::string Link::Impl::describe() const {
  if (!handshake_done_) return address_;
  return peer_.name + "/" + sync::id_hex(peer_.node_id).substr(0, 8);
}

// --- Link ---------------------------------------------------------------------------------------

Link::~Link() {
  // The owner let go: close without calling its handlers again (they may point at it).
  asio::post(impl_->ex_, [impl = impl_] {
    impl->on_message_ = nullptr;
    impl->on_close_ = nullptr;
    impl->close_gracefully(Status::ok());
  });
}

const sync::NodeId& Link::peer_id() const { return impl_->peer_.node_id; }
const sync::Certificate& Link::peer_certificate() const { return impl_->peer_; }
std::uint64_t Link::peer_roster_version() const { return impl_->peer_roster_version_; }
const std::string& Link::peer_address() const { return impl_->address_; }
bool Link::is_initiator() const { return impl_->initiator_; }
bool Link::is_open() const { return impl_->open_.load(); }
std::uint64_t Link::wire_bytes_sent() const {
  return impl_->wire_bytes_sent_.load(std::memory_order_relaxed);
}
std::uint64_t Link::wire_bytes_received() const {
  return impl_->wire_bytes_received_.load(std::memory_order_relaxed);
}

std::uint64_t Link::ms_since_last_frame() const {
  const SteadyClock::duration since(impl_->last_frame_ticks_.load(std::memory_order_relaxed));
  const auto age = steady_now(impl_->context_) - SteadyClock::time_point(since);
  return static_cast<std::uint64_t>(std::max<std::int64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(age).count(), 0));
}

void Link::set_handlers(MessageHandler on_message, CloseHandler on_close) {
  asio::post(impl_->ex_, [impl = impl_, on_message = std::move(on_message),
                          on_close = std::move(on_close)]() mutable {
    if (impl->handlers_set_) return;  // only the first call counts
    impl->handlers_set_ = true;
    impl->on_message_ = std::move(on_message);
    impl->on_close_ = std::move(on_close);
    std::vector<Bytes> early = std::move(impl->pending_);
    impl->pending_.clear();
    impl->deliver(std::move(early));
    if (impl->closed_) {
      auto handler = std::move(impl->on_close_);
      impl->on_close_ = nullptr;
      impl->on_message_ = nullptr;
      if (handler) handler(impl->close_reason_);
      return;
    }
    impl->do_read();
  });
}

Status Link::send(Bytes message) {
  const std::size_t n = message.size();
  if (n > limits::kLinkMessageBytesMax) {
    return Status::invalid("message of " + std::to_string(n) + " bytes exceeds the link bound of " +
                           std::to_string(limits::kLinkMessageBytesMax));
  }
  if (!impl_->open_.load()) return Status::unavailable("link to " + impl_->address_ + " is closed");
  const std::size_t before = impl_->queued_bytes_.fetch_add(n);
  if (before + n > impl_->context_.options.send_queue_bytes_max) {
    impl_->queued_bytes_.fetch_sub(n);
    return Status::unavailable("send queue of the link to " + impl_->address_ + " is full (" +
                               std::to_string(before) + " bytes queued)");
  }
  asio::post(impl_->ex_, [impl = impl_, m = std::move(message)]() mutable {
    impl->send_on_strand(std::move(m));
  });
  return Status::ok();
}

void Link::close(const Status& reason) {
  asio::post(impl_->ex_, [impl = impl_, reason] { impl->close_gracefully(reason); });
}

}  // namespace outpost::node
