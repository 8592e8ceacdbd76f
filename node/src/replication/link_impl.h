// Private to the link files (link.cc, link_send.cc, link_listen.cc): one connection's state,
// Link::Impl, and the helpers its halves share. See link.cc for the design of the data path.
#pragma once

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
#include "outpost/node/link.h"
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

namespace link_internal {

// Each link owns one read buffer and one write batch of this size (a few of the largest frames):
// bulk transfer then costs one system call per few frames each way, and both buffers fit in a
// core's L2 cache. Pages that only ever carry small messages are never touched.
inline constexpr std::size_t kReadBufferBytes = 4 * sync::kFrameWireBytesMax;
inline constexpr std::size_t kWriteBatchBytes = 4 * sync::kFrameWireBytesMax;
// Frames are decrypted in place, so a whole frame must fit behind whatever partial frame the
// read buffer keeps; and a batch must hold the largest frame.
static_assert(kReadBufferBytes >= 2 * sync::kFrameWireBytesMax);
static_assert(kWriteBatchBytes >= sync::kFrameWireBytesMax);
// Longest a graceful close() waits to flush its CLOSE frame before dropping the socket.
inline constexpr int kCloseLingerMsMax = 1000;

inline std::chrono::milliseconds ms(int v) { return std::chrono::milliseconds(v); }

// The context's environment, or the system's when the context names none.
sync::Env& env_of(const LinkContext& context);

SteadyClock::time_point steady_now(const LinkContext& context);

// The remote endpoint as text, "?" when the socket has none.
std::string address_of(const tcp::socket& socket);

// The secure channel's configuration for a link with `c`.
sync::ChannelConfig channel_config(const LinkContext& c);

}  // namespace link_internal

using link_internal::address_of;
using link_internal::channel_config;
using link_internal::env_of;
using link_internal::kCloseLingerMsMax;
using link_internal::kReadBufferBytes;
using link_internal::kWriteBatchBytes;
using link_internal::ms;
using link_internal::steady_now;

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

  void start_connect(const tcp::endpoint& to, HandshakeDone done);

  void start_accepted(HandshakeDone done);

  void start_handshake();

  // --- reads ---

  // Reads into the free space after the unconsumed bytes (at most a partial frame) of the read
  // buffer. They move to the front only when a whole frame might no longer fit behind them.
  void do_read();

  void on_read(const boost::system::error_code& ec, std::size_t n);

  void deliver(std::vector<Bytes> messages);

  void finish_handshake();

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

  void enqueue(Outgoing item);

  // Fills the write batch from the front of the send queue and writes it.
  void do_write();

  void write_some();

  void on_write(const boost::system::error_code& ec, std::size_t n);

  // Seals queued items into the write batch until it is full or the queue is empty. An error
  // is the channel's (nonce exhaustion, a message over its bound): the link closes.
  Status fill_write_batch();

  void send_on_strand(Bytes message);

  // --- deadlines ---

  void arm_watchdog();

  void on_tick();

  // A roster accepted while the link is open may revoke the peer: then the link ends.
  Status check_still_admitted();

  // --- close ---

  void close_gracefully(const Status& reason);

  // Writes `last` after everything queued, then closes with `reason` (bounded by the linger).
  void close_after_flush(const Status& reason, Outgoing last);

  void close_now(const Status& reason);

  // --- helpers ---

  void note_frame();

  std::uint64_t wall_ms() { return env_of(context_).now_ms(); }

  std::string describe() const;

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

}  // namespace outpost::node
