// Links: authenticated, encrypted connections between nodes over TCP (docs/security.md, "Link
// protocol"), built on sync::SecureChannel (Noise_XX, certificates, rekey, message framing).
// async_connect() and LinkListener hand over only links whose handshake admitted the peer.
// Methods are safe from any thread; handlers run on the link's strand, one at a time. Asio stays
// inside link.cc: callers pass an io_context and never see a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/crypto/noise.h"
#include "outpost/node/config.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/roster.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outpost::node {

struct NodeIdentity;

// Deadlines and bounds of one link. Defaults come from limits.h; tests shorten them.
struct LinkOptions {
  int handshake_timeout_ms = limits::kLinkHandshakeTimeoutMs;  // connect + whole handshake
  int idle_timeout_ms = limits::kLinkIdleTimeoutMs;  // nothing received / no write progress
  int keepalive_ms = limits::kLinkKeepaliveMs;       // ping after this much send silence
  std::uint64_t rekey_after_messages = limits::kNoiseRekeyAfterMessages;
  std::size_t send_queue_bytes_max = limits::kLinkSendQueueBytesMax;
};

// What this node brings to every link. Copyable; copies share the noise key and roster source.
struct LinkContext {
  sync::SignedCertificate certificate;                     // this node's, root-signed
  std::shared_ptr<const crypto::X25519KeyPair> noise_key;  // the key the certificate names
  sync::NetworkId network_id{};
  crypto::PublicKey root_key{};  // pinned HQ root public key
  // Returns the current roster; called at every handshake, from any io thread, so it must be
  // thread-safe (e.g. read an atomically swapped shared_ptr). May return null (no roster).
  std::function<std::shared_ptr<const sync::Roster>()> roster;
  // Wall clock for certificate validity (deadlines use the steady clock); null: system clock.
  std::shared_ptr<sync::Clock> clock;
  LinkOptions options;
};

// Builds a context from a node's loaded identity (identity.h) and its roster source.
LinkContext make_link_context(const NodeIdentity& identity,
                              std::function<std::shared_ptr<const sync::Roster>()> roster);

// One open link to an admitted peer. Keep the shared_ptr: releasing the last one closes the
// link without calling its handlers again.
class Link {
 public:
  using MessageHandler = std::function<void(sync::Bytes message)>;
  using CloseHandler = std::function<void(const Status& reason)>;

  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // The admitted peer (fixed for the link's life; safe from any thread).
  const sync::NodeId& peer_id() const;
  const sync::Certificate& peer_certificate() const;
  // The roster version the peer announced in its handshake: if it is newer than ours, fetch it.
  std::uint64_t peer_roster_version() const;
  // "HOST:PORT" of the TCP peer.
  const std::string& peer_address() const;
  // True on the side that called async_connect().
  bool is_initiator() const;
  // False once the link closed (or is closing).
  bool is_open() const;
  // TCP bytes written to and read from the socket so far, handshake and framing included (what
  // the network carries; safe from any thread).
  std::uint64_t wire_bytes_sent() const;
  std::uint64_t wire_bytes_received() const;
  // Milliseconds since the peer's last authenticated frame arrived (an application message's
  // fragment, a keepalive ping, or the handshake's last message): its last sign of life, which
  // the peer manager reports as the peer's last contact. Safe from any thread.
  std::uint64_t ms_since_last_frame() const;

  // Installs the handlers and starts delivering messages, first those that arrived with the
  // handshake. Call once. on_message receives whole messages in order; on_close runs exactly
  // once with the reason (ok after a local close(Status::ok())), and no handler runs after it.
  void set_handlers(MessageHandler on_message, CloseHandler on_close);
  // Queues `message` (split into frames, reassembled by the peer). kInvalidArgument above
  // limits::kLinkMessageBytesMax; kUnavailable if the link is closed, or its send queue is over
  // options.send_queue_bytes_max (the link stays open: send again after the peer acknowledged).
  Status send(sync::Bytes message);
  // Closes the link: queued messages and a CLOSE frame carrying `reason` are flushed (bounded
  // by the idle timeout), then the socket closes and on_close(reason) runs. Idempotent.
  void close(const Status& reason);

  struct Impl;

 private:
  explicit Link(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Connects to `to`, runs the handshake as initiator and calls `done` once (on the link's strand)
// with the admitted link, or the reason it failed: kUnavailable (connect failed, timed out or
// the peer hung up), kPermission (the peer's certificate was refused), kCorruption (the peer's
// bytes were malformed or failed authentication, e.g. another network id).
void async_connect(boost::asio::io_context& io, const Endpoint& to, LinkContext context,
                   std::function<void(Result<std::shared_ptr<Link>>)> done);

// Accepts TCP connections, runs the handshake as responder and hands over admitted links. At
// most limits::kLinkHandshakesInFlightMax handshakes run at once, at most
// kLinkHandshakesPerSourceMax from one source address, and kLinkHandshakesReservedForKnown of
// them only for addresses that completed a handshake here before; a connection beyond these is
// closed at accept. Destroy it on a thread that runs its io_context, or after that stopped.
class LinkListener {
 public:
  using LinkHandler = std::function<void(std::shared_ptr<Link> link)>;
  // Called for every connection that failed before hand-over, with the reason that was logged.
  using RejectHandler = std::function<void(const Status& reason, const std::string& address)>;

  // Binds `at` (port 0: ephemeral) and starts accepting. kInvalidArgument for a bad address or
  // context, kUnavailable if the address cannot be bound.
  static Result<std::unique_ptr<LinkListener>> listen(boost::asio::io_context& io,
                                                      const Endpoint& at, LinkContext context,
                                                      LinkHandler on_link,
                                                      RejectHandler on_reject = nullptr);
  ~LinkListener();
  LinkListener(const LinkListener&) = delete;
  LinkListener& operator=(const LinkListener&) = delete;

  // The bound address (with the actual port).
  Endpoint local_endpoint() const;
  // Stops accepting and drops handshakes in progress. Links already handed over stay open.
  void close();
  // Connections accepted whose handshake has not finished yet.
  std::size_t handshakes_in_flight() const;

  struct Impl;

 private:
  explicit LinkListener(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace outpost::node
