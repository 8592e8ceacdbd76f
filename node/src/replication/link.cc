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
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string_view>
#include <variant>

#include "outpost/node/identity.h"
#include "outpost/node/log.h"
#include "outpost/sync/secure_channel.h"

namespace outpost::node {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// Deadlines and timeouts count the environment's monotonic milliseconds (sync/env.h): the link
// never reads the system's clocks itself.
struct SteadyClock {
  using duration = std::chrono::milliseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<SteadyClock>;
  static constexpr bool is_steady = true;
};
using sync::Bytes;

namespace {

// Each link owns one read buffer and one write batch of this size (a few of the largest frames):
// bulk transfer then costs one system call per few frames each way, and both buffers fit in a
// core's L2 cache. Pages that only ever carry small messages are never touched.
constexpr std::size_t kReadBufferBytes = 4 * sync::kFrameWireBytesMax;
constexpr std::size_t kWriteBatchBytes = 4 * sync::kFrameWireBytesMax;
// Frames are decrypted in place, so a whole frame must fit behind whatever partial frame the
// read buffer keeps; and a batch must hold the largest frame.
static_assert(kReadBufferBytes >= 2 * sync::kFrameWireBytesMax);
static_assert(kWriteBatchBytes >= sync::kFrameWireBytesMax);
// Longest a graceful close() waits to flush its CLOSE frame before dropping the socket.
constexpr int kCloseLingerMsMax = 1000;

std::chrono::milliseconds ms(int v) { return std::chrono::milliseconds(v); }

// The context's environment, or the system's when the context names none.
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

// One connection from accept/connect to close. Everything below runs on `ex_` (a strand) except
// the atomics, which Link's thread-safe methods read.
struct Link::Impl : std::enable_shared_from_this<Link::Impl> {
  // Called once when the handshake ends: with the admitted link, or the failure reason.
  using HandshakeDone = std::function<void(const Status&, std::shared_ptr<Link>)>;

  Impl(tcp::socket socket, LinkContext context, sync::SecureChannel channel, bool initiator)
      : ex_(socket.get_executor()),
        socket_(std::move(socket)),
        timer_(ex_),
        context_(std::move(context)),
        channel_(std::move(channel)),
        initiator_(initiator),
        read_buffer_(std::make_unique_for_overwrite<std::uint8_t[]>(kReadBufferBytes)) {
    const LinkOptions& o = context_.options;
    tick_ = ms(std::clamp(std::min({o.handshake_timeout_ms, o.idle_timeout_ms, o.keepalive_ms}) / 4,
                          5, 1000));
    handshake_deadline_ = steady_now(context_) + ms(o.handshake_timeout_ms);
  }

  // --- start ---

  void start_connect(const tcp::endpoint& to, HandshakeDone done) {
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

  void start_accepted(HandshakeDone done) {
    on_handshake_ = std::move(done);
    address_ = address_of(socket_);
    arm_watchdog();
    start_handshake();
  }

  void start_handshake() {
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

  // --- reads ---

  // Reads into the free space after the unconsumed bytes (at most a partial frame) of the read
  // buffer. They move to the front only when a whole frame might no longer fit behind them.
  void do_read() {
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

  void on_read(const boost::system::error_code& ec, std::size_t n) {
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
        std::span<std::uint8_t>(read_buffer_.get() + read_begin_, read_end_ - read_begin_),
        wall_ms(), out, consumed);
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

  void deliver(std::vector<Bytes> messages) {
    for (auto& m : messages) {
      if (closed_ || closing_) return;  // close() was called: the rest is dropped
      if (!handlers_set_) {
        pending_.push_back(std::move(m));
        continue;
      }
      if (on_message_) on_message_(std::move(m));
    }
  }

  void finish_handshake() {
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

  // --- writes ---

  // One entry of the send queue. Transport frames are sealed from it only when the write batch
  // is filled, so that nonces follow the order of the queue.
  struct Outgoing {
    enum class Kind {
      kWire,     // bytes already framed (handshake messages, a refusal): written as they are
      kMessage,  // an application message, sealed as fragments
      kPing,     // a keepalive frame
      kClose,    // a CLOSE frame carrying `bytes` as the reason; the channel closes
    };
    Kind kind = Kind::kWire;
    Bytes bytes;
    std::size_t offset = 0;     // kWire: bytes copied so far; kMessage: bytes sealed so far
    std::size_t accounted = 0;  // message bytes counted in queued_bytes_

    static Outgoing wire(Bytes b) { return {Kind::kWire, std::move(b), 0, 0}; }
    static Outgoing message(Bytes b) {
      const std::size_t n = b.size();
      return {Kind::kMessage, std::move(b), 0, n};
    }
    static Outgoing ping() { return {Kind::kPing, {}, 0, 0}; }
    static Outgoing close(std::string_view reason) {
      return {Kind::kClose, Bytes(reason.begin(), reason.end()), 0, 0};
    }
  };

  void enqueue(Outgoing item) {
    // Invariant: frames sealed outside the queue (handshake messages, the responder's confirming
    // ping or its refusal) are all queued before the handshake completes, so no message sealed
    // later from the queue can overtake them with a smaller nonce.
    OUTPOST_CHECK(item.kind != Outgoing::Kind::kWire || !handshake_done_);
    last_tx_ = steady_now(context_);
    send_queue_.push_back(std::move(item));
    if (!writing_) do_write();
  }

  // Fills the write batch from the front of the send queue and writes it.
  void do_write() {
    if (closed_) return;
    write_batch_bytes_ = 0;
    write_batch_written_ = 0;
    if (Status st = fill_write_batch(); !st.is_ok()) return close_now(st);
    if (write_batch_bytes_ == 0) {
      writing_ = false;
      if (closing_) close_now(close_reason_);
      return;
    }
    writing_ = true;
    last_write_progress_ = steady_now(context_);
    write_some();
  }

  void write_some() {
    socket_.async_write_some(asio::buffer(write_batch_.get() + write_batch_written_,
                                          write_batch_bytes_ - write_batch_written_),
                             [self = shared_from_this()](const boost::system::error_code& ec,
                                                         std::size_t n) { self->on_write(ec, n); });
  }

  void on_write(const boost::system::error_code& ec, std::size_t n) {
    if (closed_) return;
    if (ec) return close_now(Status::unavailable("write failed: " + ec.message()));
    wire_bytes_sent_.fetch_add(n, std::memory_order_relaxed);
    last_write_progress_ = steady_now(context_);
    write_batch_written_ += n;
    if (write_batch_written_ < write_batch_bytes_) return write_some();
    do_write();
  }

  // Seals queued items into the write batch until it is full or the queue is empty. An error
  // is the channel's (nonce exhaustion, a message over its bound): the link closes.
  Status fill_write_batch() {
    if (!write_batch_)
      write_batch_ = std::make_unique_for_overwrite<std::uint8_t[]>(kWriteBatchBytes);
    while (!send_queue_.empty()) {
      Outgoing& item = send_queue_.front();
      const std::span<std::uint8_t> room(write_batch_.get() + write_batch_bytes_,
                                         kWriteBatchBytes - write_batch_bytes_);
      bool done = false;
      switch (item.kind) {
        case Outgoing::Kind::kWire: {
          const std::size_t n = std::min(item.bytes.size() - item.offset, room.size());
          std::memcpy(room.data(), item.bytes.data() + item.offset, n);
          item.offset += n;
          write_batch_bytes_ += n;
          done = item.offset == item.bytes.size();
          break;
        }
        case Outgoing::Kind::kMessage: {
          // The message is ours now: the channel encrypts straight from it into the batch.
          OUTPOST_ASSIGN_OR_RETURN(
              std::size_t n, channel_.seal_message_frames(item.bytes, item.offset, room, done));
          write_batch_bytes_ += n;
          break;
        }
        case Outgoing::Kind::kPing:
        case Outgoing::Kind::kClose: {
          if (room.size() < sync::kFrameOverheadBytes + limits::kLinkCloseReasonBytesMax) break;
          Bytes frame;
          const std::string_view reason(reinterpret_cast<const char*>(item.bytes.data()),
                                        item.bytes.size());
          OUTPOST_RETURN_IF_ERROR(item.kind == Outgoing::Kind::kPing
                                      ? channel_.send_ping(frame)
                                      : channel_.send_close(reason, frame));
          std::memcpy(room.data(), frame.data(), frame.size());
          write_batch_bytes_ += frame.size();
          done = true;
          break;
        }
      }
      if (!done) break;  // the batch is full: the rest goes in the next one
      if (item.accounted > 0) queued_bytes_.fetch_sub(item.accounted);
      send_queue_.pop_front();
    }
    return Status::ok();
  }

  void send_on_strand(Bytes message) {
    const std::size_t n = message.size();
    if (closed_ || closing_) {
      queued_bytes_.fetch_sub(n);
      return;
    }
    enqueue(Outgoing::message(std::move(message)));
  }

  // --- deadlines ---

  void arm_watchdog() {
    timer_.expires_after(tick_);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code&) {
      if (self->closed_) return;
      self->on_tick();
      if (!self->closed_) self->arm_watchdog();
    });
  }

  void on_tick() {
    const auto now = steady_now(context_);
    const LinkOptions& o = context_.options;
    if (closing_ && now >= closing_deadline_) return close_now(close_reason_);
    if (!handshake_done_) {
      if (now >= handshake_deadline_) {
        close_now(Status::unavailable("handshake timed out after " +
                                      std::to_string(o.handshake_timeout_ms) + " ms"));
      }
      return;
    }
    if (closing_) return;
    if (Status st = check_still_admitted(); !st.is_ok()) return close_gracefully(st);
    if (now - last_rx_ > ms(o.idle_timeout_ms)) {
      return close_now(Status::unavailable("idle timeout: nothing received for " +
                                           std::to_string(o.idle_timeout_ms) + " ms"));
    }
    if (writing_ && now - last_write_progress_ > ms(o.idle_timeout_ms)) {
      return close_now(Status::unavailable("write stalled for " +
                                           std::to_string(o.idle_timeout_ms) +
                                           " ms: the peer stopped reading"));
    }
    if (now - last_tx_ >= ms(o.keepalive_ms)) enqueue(Outgoing::ping());
  }

  // A roster accepted while the link is open may revoke the peer: then the link ends.
  Status check_still_admitted() {
    std::shared_ptr<const sync::Roster> roster = context_.roster ? context_.roster() : nullptr;
    if (!roster || roster->version == roster_version_checked_) return Status::ok();
    roster_version_checked_ = roster->version;
    if (const sync::Revocation* rev = roster->revocation(peer_.node_id)) {
      return Status::permission("peer revoked in roster v" + std::to_string(roster->version) +
                                " (after seq " + std::to_string(rev->after_seq) + ")");
    }
    return Status::ok();
  }

  // --- close ---

  void close_gracefully(const Status& reason) {
    if (closed_ || closing_) return;
    if (!handshake_done_ || !channel_.is_open()) return close_now(reason);
    close_after_flush(reason, Outgoing::close(reason.is_ok() ? "closed" : reason.to_string()));
  }

  // Writes `last` after everything queued, then closes with `reason` (bounded by the linger).
  void close_after_flush(const Status& reason, Outgoing last) {
    closing_ = true;
    open_.store(false);
    close_reason_ = reason;
    closing_deadline_ =
        steady_now(context_) + ms(std::min(kCloseLingerMsMax, context_.options.idle_timeout_ms));
    enqueue(std::move(last));
  }

  void close_now(const Status& reason) {
    if (closed_) return;
    closed_ = true;
    open_.store(false);
    channel_.abort();
    boost::system::error_code ec;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    send_queue_.clear();
    pending_.clear();
    queued_bytes_.store(0);
    const bool failed = !reason.is_ok();
    log(failed && reason.code() != Code::kUnavailable ? LogLevel::kWarn : LogLevel::kInfo,
        handshake_done_ ? "link closed" : "link handshake failed",
        {{"peer", describe()}, {"address", address_}, {"reason", reason.to_string()}});
    if (!handshake_done_) {
      auto done = std::move(on_handshake_);
      on_handshake_ = nullptr;
      if (done) done(reason, nullptr);
      return;
    }
    auto on_close = std::move(on_close_);
    on_close_ = nullptr;
    on_message_ = nullptr;
    if (handlers_set_ && on_close) {
      on_close(reason);
    } else {
      close_reason_ = reason;  // reported when set_handlers() comes
    }
  }

  // --- helpers ---

  void note_frame() {
    last_frame_ticks_.store(steady_now(context_).time_since_epoch().count(),
                            std::memory_order_relaxed);
  }

  std::uint64_t wall_ms() { return env_of(context_).now_ms(); }

  std::string describe() const {
    if (!handshake_done_) return address_;
    return peer_.name + "/" + sync::id_hex(peer_.node_id).substr(0, 8);
  }

  asio::any_io_executor ex_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  LinkContext context_;
  sync::SecureChannel channel_;
  const bool initiator_;
  std::string address_;
  // Received bytes not yet consumed are read_buffer_[read_begin_, read_end_) (at most a partial
  // frame between reads); frames are decrypted where they landed.
  std::unique_ptr<std::uint8_t[]> read_buffer_;
  std::size_t read_begin_ = 0;
  std::size_t read_end_ = 0;
  std::chrono::milliseconds tick_{1000};
  std::uint64_t roster_version_checked_ = 0;

  // Set once at hand-over, then read-only (Link's getters read them from any thread).
  sync::Certificate peer_;
  std::uint64_t peer_roster_version_ = 0;

  std::atomic<bool> open_{false};
  std::atomic<std::size_t> queued_bytes_{0};
  std::atomic<std::uint64_t> wire_bytes_sent_{0};
  std::atomic<std::uint64_t> wire_bytes_received_{0};
  std::atomic<SteadyClock::rep> last_frame_ticks_{steady_now(context_).time_since_epoch().count()};

  // Strand-only state.
  HandshakeDone on_handshake_;
  MessageHandler on_message_;
  CloseHandler on_close_;
  std::vector<Bytes> pending_;  // messages that arrived before set_handlers()
  std::deque<Outgoing> send_queue_;
  // Sealed frames being written: write_batch_[write_batch_written_, write_batch_bytes_) is
  // still to go. Allocated at the first write (kWriteBatchBytes).
  std::unique_ptr<std::uint8_t[]> write_batch_;
  std::size_t write_batch_bytes_ = 0;
  std::size_t write_batch_written_ = 0;
  bool handshake_done_ = false;
  bool handlers_set_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  Status close_reason_;
  SteadyClock::time_point handshake_deadline_;
  SteadyClock::time_point closing_deadline_;
  SteadyClock::time_point last_rx_;
  SteadyClock::time_point last_tx_;
  SteadyClock::time_point last_write_progress_;
};

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
