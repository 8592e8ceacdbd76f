// Links over real TCP sockets on 127.0.0.1 (node/src/replication/link.cc): good XX handshakes in
// both directions with message exchange up to 1 MiB, rekey, keepalive, graceful close and
// send-queue bounds; and every bad peer of issue 3 — crafted with a raw Asio socket and the crypto/
// Noise API — closes its link with a logged reason, never hangs the server, and leaves it serving
// the next good peer with no handshake left in flight. Waits are bounded only as a hang guard;
// nothing here asserts on time.
#include "outpost/node/link.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/crypto/noise.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/secure_channel.h"

namespace outpost::node {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using sync::Bytes;
using sync::ByteView;

// Longest any single wait may take before the test fails as hung (not a timing assertion).
constexpr auto kHangGuard = std::chrono::seconds(30);

// A thread-safe queue a test thread waits on.
template <typename T>
class Mailbox {
 public:
  void push(T v) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(std::move(v));
    cv_.notify_all();
  }
  // Returns the next item, or nullopt if none came within the hang guard.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, kHangGuard, [&] { return !items_.empty(); })) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    return v;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    items_.clear();
  }
  // Returns what is there now, without waiting.
  std::vector<T> take_all() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<T> all(std::make_move_iterator(items_.begin()),
                       std::make_move_iterator(items_.end()));
    items_.clear();
    return all;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
};

// Runs an io_context on a background thread.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

// A hostile peer: a plain Asio socket driven synchronously from the test thread, each read
// bounded by the hang guard.
class RawPeer {
 public:
  explicit RawPeer(const Endpoint& to) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address(to.host), to.port));
  }
  void write(ByteView b) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(b.data(), b.size()), ec);
  }
  void write_frame(ByteView body) {
    Bytes f{static_cast<std::uint8_t>(body.size() >> 8), static_cast<std::uint8_t>(body.size())};
    f.insert(f.end(), body.begin(), body.end());
    write(f);
  }
  void shutdown_send() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
  }
  // Reads exactly out.size() bytes. kUnavailable on EOF, error or the hang guard.
  Status read_exact(std::span<std::uint8_t> out) {
    std::optional<boost::system::error_code> result;
    asio::async_read(socket_, asio::buffer(out.data(), out.size()),
                     [&](const boost::system::error_code& ec, std::size_t) { result = ec; });
    io_.restart();
    io_.run_for(kHangGuard);
    if (!result) {
      boost::system::error_code ec;
      socket_.cancel(ec);
      io_.restart();
      io_.run();
      return Status::unavailable("read hung");
    }
    return *result ? Status::unavailable(result->message()) : Status::ok();
  }
  Result<Bytes> read_frame() {
    std::array<std::uint8_t, 2> header{};
    OUTPOST_RETURN_IF_ERROR(read_exact(header));
    Bytes body((std::size_t{header[0]} << 8) | header[1]);
    OUTPOST_RETURN_IF_ERROR(read_exact(body));
    return body;
  }
  // True once the server closed the connection (EOF or reset); false if it stayed open.
  bool closed_by_server() {
    std::array<std::uint8_t, 4096> buf{};
    for (int i = 0; i < 1024; ++i) {
      std::optional<boost::system::error_code> result;
      socket_.async_read_some(asio::buffer(buf), [&](const boost::system::error_code& ec,
                                                     std::size_t) { result = ec; });
      io_.restart();
      io_.run_for(kHangGuard);
      if (!result) {
        boost::system::error_code ec;
        socket_.cancel(ec);
        io_.restart();
        io_.run();
        return false;
      }
      if (*result) return true;  // eof, reset: the server closed
    }
    return false;
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
};

struct Node {
  sync::SignedCertificate cert;
  std::shared_ptr<const crypto::X25519KeyPair> noise;
};

class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    crypto::random_bytes(network_);
    auto r = std::make_shared<sync::Roster>();
    r->network_id = network_;
    r->version = 1;
    roster_ = r;
    io_ = std::make_unique<IoThread>();
    server_node_ = make_node("hq-1");
    client_node_ = make_node("store-1");
  }

  void TearDown() override {
    listener_.reset();
    drain();
    io_->stop();
    drain();  // late hand-overs, now that no handler can run
    io_.reset();
  }

  void drain() {
    server_links_.clear();
    connects_.clear();
    held_.clear();
  }

  static std::uint64_t now_ms() {
    static sync::SystemEnv clock;
    return clock.now_ms();
  }

  sync::Certificate cert_fields(const std::string& name, const crypto::PublicKey& noise) {
    sync::Certificate c;
    c.network_id = network_;
    crypto::random_bytes(c.node_id);
    c.role = sync::NodeRole::kStore;
    c.signing_key = crypto::SigningKey::generate().public_key();
    c.noise_key = noise;
    c.valid_from_ms = now_ms() - 3'600'000;
    c.valid_until_ms = now_ms() + 3'600'000;
    c.name = name;
    return c;
  }

  // A node with a fresh Noise key and a root-signed certificate, listed in the roster.
  Node make_node(const std::string& name) {
    Node n;
    n.noise = std::make_shared<const crypto::X25519KeyPair>(crypto::X25519KeyPair::generate());
    n.cert = sync::sign_certificate(cert_fields(name, n.noise->public_key()), root_);
    update_roster([&](sync::Roster& r) { ASSERT_TRUE(r.put_certificate(n.cert).is_ok()); });
    return n;
  }

  template <typename F>
  void update_roster(F f) {
    std::lock_guard<std::mutex> lock(roster_mu_);
    auto next = std::make_shared<sync::Roster>(*roster_);
    next->version++;
    f(*next);
    roster_ = next;
  }

  LinkContext context(const Node& n) {
    LinkContext c;
    c.certificate = n.cert;
    c.noise_key = n.noise;
    c.network_id = network_;
    c.root_key = root_.public_key();
    c.roster = [this] {
      std::lock_guard<std::mutex> lock(roster_mu_);
      return std::shared_ptr<const sync::Roster>(roster_);
    };
    c.options.handshake_timeout_ms = 5000;
    c.options.idle_timeout_ms = 5000;
    c.options.keepalive_ms = 1000;
    return c;
  }

  // Starts the server: every admitted link echoes what it receives.
  void start_server(LinkContext ctx) {
    auto l = LinkListener::listen(
        io_->io(), Endpoint{"127.0.0.1", 0}, std::move(ctx),
        [this](std::shared_ptr<Link> link) {
          std::weak_ptr<Link> weak = link;
          link->set_handlers(
              [this, weak](Bytes m) {
                server_messages_.push(m);
                if (auto l = weak.lock()) (void)l->send(std::move(m));
              },
              [this](const Status& reason) { server_closes_.push(reason); });
          server_links_.push(std::move(link));
        },
        [this](const Status& reason, const std::string&) { rejects_.push(reason); });
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    listener_ = std::move(l).value();
  }
  void start_server() { start_server(context(server_node_)); }
  Endpoint server() const { return listener_->local_endpoint(); }

  Result<std::shared_ptr<Link>> connect(LinkContext ctx, const Endpoint& to) {
    async_connect(io_->io(), to, std::move(ctx),
                  [this](Result<std::shared_ptr<Link>> r) { connects_.push(std::move(r)); });
    auto r = connects_.pop();
    if (!r) return Status::internal("connect hung");
    return std::move(*r);
  }

  // Connects `ctx` to the server and installs handlers feeding client_messages_/client_closes_.
  std::shared_ptr<Link> connect_good(LinkContext ctx) {
    auto r = connect(std::move(ctx), server());
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return nullptr;
    std::shared_ptr<Link> link = r.value();
    link->set_handlers([this](Bytes m) { client_messages_.push(std::move(m)); },
                       [this](const Status& reason) { client_closes_.push(reason); });
    return link;
  }

  // The next reason the server rejected a handshake with.
  Status next_reject() {
    auto r = rejects_.pop();
    return r ? *r : Status::internal("no reject reported (hung)");
  }
  Status next_server_close() {
    auto r = server_closes_.pop();
    return r ? *r : Status::internal("no close reported (hung)");
  }

  // The server still admits a good peer and echoes its message; nothing is left half-open.
  void expect_server_still_serves() {
    std::shared_ptr<Link> link = connect_good(context(client_node_));
    ASSERT_NE(link, nullptr);
    ASSERT_TRUE(link->send(Bytes{'o', 'k'}).is_ok());
    auto echo = client_messages_.pop();
    ASSERT_TRUE(echo.has_value());
    EXPECT_EQ(*echo, (Bytes{'o', 'k'}));
    server_messages_.clear();
    EXPECT_EQ(listener_->handshakes_in_flight(), 0u);
    link->close(Status::ok());
    auto closed = client_closes_.pop();
    ASSERT_TRUE(closed.has_value());
    EXPECT_TRUE(closed->is_ok()) << closed->to_string();
    Status at_server = next_server_close();  // the server side saw the CLOSE frame
    EXPECT_NE(at_server.message().find("peer closed the link"), std::string::npos)
        << at_server.to_string();
  }

  // Runs the XX handshake as initiator with static key `s`, sending `payload` in message 3.
  Result<crypto::NoiseTransport> raw_handshake(RawPeer& peer, const crypto::X25519KeyPair& s,
                                               ByteView payload) {
    OUTPOST_ASSIGN_OR_RETURN(
        crypto::HandshakeState hs,
        crypto::HandshakeState::create(crypto::NoisePattern::kXX, crypto::NoiseRole::kInitiator,
                                       sync::link_prologue(network_), s));
    OUTPOST_ASSIGN_OR_RETURN(Bytes m1, hs.write_message({}));
    peer.write_frame(m1);
    OUTPOST_ASSIGN_OR_RETURN(Bytes m2, peer.read_frame());
    OUTPOST_ASSIGN_OR_RETURN(Bytes server_payload, hs.read_message(m2));
    OUTPOST_ASSIGN_OR_RETURN(Bytes m3, hs.write_message(payload));
    peer.write_frame(m3);
    return hs.split();
  }

  // The handshake payload a well-behaved node sends.
  Bytes payload_of(const sync::SignedCertificate& cert) {
    return sync::encode_handshake_payload({cert, roster_->version});
  }

  // A raw peer that completed a valid handshake as client_node_, and the server's link to it.
  crypto::NoiseTransport raw_admitted(RawPeer& peer) {
    auto t = raw_handshake(peer, *client_node_.noise, payload_of(client_node_.cert));
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    auto link = server_links_.pop();
    EXPECT_TRUE(link.has_value());
    if (link) held_.push(std::move(*link));
    return std::move(t).value();
  }

  static Bytes data_frame(crypto::CipherState& send, const std::string& text) {
    Bytes plain{static_cast<std::uint8_t>(sync::FrameType::kLast)};
    plain.insert(plain.end(), text.begin(), text.end());
    return send.encrypt_with_ad({}, plain).value();
  }

  crypto::SigningKey root_ = crypto::SigningKey::generate();
  sync::NetworkId network_{};
  std::mutex roster_mu_;
  std::shared_ptr<const sync::Roster> roster_;
  std::unique_ptr<IoThread> io_;
  Node server_node_, client_node_;
  std::unique_ptr<LinkListener> listener_;
  Mailbox<std::shared_ptr<Link>> server_links_;
  Mailbox<std::shared_ptr<Link>> held_;
  Mailbox<Result<std::shared_ptr<Link>>> connects_;
  Mailbox<Bytes> server_messages_, client_messages_;
  Mailbox<Status> server_closes_, client_closes_, rejects_;
};

// --- good peers ---------------------------------------------------------------------------------

TEST_F(LinkTest, GoodHandshakeExchangesMessagesUpTo1MiBInBothDirections) {
  start_server();
  std::shared_ptr<Link> link = connect_good(context(client_node_));
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->peer_id(), server_node_.cert.cert.node_id);
  EXPECT_EQ(link->peer_certificate().name, "hq-1");
  EXPECT_TRUE(link->is_initiator());
  auto server_link = server_links_.pop();
  ASSERT_TRUE(server_link.has_value());
  EXPECT_EQ((*server_link)->peer_id(), client_node_.cert.cert.node_id);
  EXPECT_FALSE((*server_link)->is_initiator());
  EXPECT_EQ((*server_link)->peer_roster_version(), roster_->version);

  Bytes big(1024 * 1024);
  crypto::random_bytes(big);
  for (const Bytes& m : {Bytes{}, Bytes{'h', 'i'}, big}) {
    ASSERT_TRUE(link->send(m).is_ok());
    auto at_server = server_messages_.pop();
    ASSERT_TRUE(at_server.has_value());
    EXPECT_EQ(*at_server, m);
    auto echoed = client_messages_.pop();  // the server sent it back: the other direction
    ASSERT_TRUE(echoed.has_value());
    EXPECT_EQ(*echoed, m);
  }
}

TEST_F(LinkTest, EitherNodeCanBeTheInitiator) {
  // The store listens and HQ dials it: roles of the handshake are independent of node roles.
  start_server(context(client_node_));
  std::shared_ptr<Link> link = connect_good(context(server_node_));
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->peer_certificate().name, "store-1");
  ASSERT_TRUE(link->send(Bytes{1, 2, 3}).is_ok());
  auto echoed = client_messages_.pop();
  ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(*echoed, (Bytes{1, 2, 3}));
}

TEST_F(LinkTest, RekeyEveryFewFramesKeepsBothDirectionsWorking) {
  LinkContext s = context(server_node_), c = context(client_node_);
  s.options.rekey_after_messages = c.options.rekey_after_messages = 2;
  start_server(std::move(s));
  std::shared_ptr<Link> link = connect_good(std::move(c));
  ASSERT_NE(link, nullptr);
  for (int i = 0; i < 30; ++i) {
    Bytes m(static_cast<std::size_t>(i) * 7919, static_cast<std::uint8_t>(i));  // up to 4 frames
    ASSERT_TRUE(link->send(m).is_ok());
    auto echoed = client_messages_.pop();
    ASSERT_TRUE(echoed.has_value()) << "message " << i;
    EXPECT_EQ(*echoed, m);
  }
}

TEST_F(LinkTest, KeepalivePingsHoldAnIdleLinkOpen) {
  LinkContext s = context(server_node_), c = context(client_node_);
  s.options.idle_timeout_ms = c.options.idle_timeout_ms = 1000;
  s.options.keepalive_ms = c.options.keepalive_ms = 50;  // 20 pings per idle timeout
  start_server(std::move(s));
  std::shared_ptr<Link> link = connect_good(std::move(c));
  ASSERT_NE(link, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // quiet application
  ASSERT_TRUE(link->is_open());
  ASSERT_TRUE(link->send(Bytes{9}).is_ok());
  auto echoed = client_messages_.pop();
  ASSERT_TRUE(echoed.has_value());
}

TEST_F(LinkTest, GracefulCloseDeliversTheReasonToThePeer) {
  start_server();
  std::shared_ptr<Link> link = connect_good(context(client_node_));
  ASSERT_NE(link, nullptr);
  link->close(Status::unavailable("maintenance"));
  Status at_server = next_server_close();
  EXPECT_NE(at_server.message().find("maintenance"), std::string::npos) << at_server.to_string();
  auto local = client_closes_.pop();
  ASSERT_TRUE(local.has_value());
  EXPECT_NE(local->message().find("maintenance"), std::string::npos);
  EXPECT_FALSE(link->is_open());
  EXPECT_EQ(link->send(Bytes{1}).code(), Code::kUnavailable);
}

TEST_F(LinkTest, FullSendQueueRefusesWithoutClosing) {
  LinkContext c = context(client_node_);
  c.options.send_queue_bytes_max = limits::kLinkMessageBytesMax;
  start_server();
  std::shared_ptr<Link> link = connect_good(std::move(c));
  ASSERT_NE(link, nullptr);
  ASSERT_TRUE(link->send(Bytes(limits::kLinkMessageBytesMax)).is_ok());
  EXPECT_EQ(link->send(Bytes(1)).code(), Code::kUnavailable);  // queue holds one message
  EXPECT_EQ(link->send(Bytes(limits::kLinkMessageBytesMax + 1)).code(), Code::kInvalidArgument);
  auto echoed = client_messages_.pop();
  ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(echoed->size(), limits::kLinkMessageBytesMax);
  EXPECT_TRUE(link->is_open());
}

TEST_F(LinkTest, ManySmallMessagesSentAtOnceArriveInOrderGatheredIntoFewWrites) {
  start_server();
  std::shared_ptr<Link> link = connect_good(context(client_node_));
  ASSERT_NE(link, nullptr);
  constexpr std::size_t kMessages = 3000;
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < kMessages; ++i) {
    Bytes m(1 + i % 300, static_cast<std::uint8_t>(i));
    m[0] = static_cast<std::uint8_t>(i >> 8);
    ASSERT_TRUE(link->send(m).is_ok()) << "message " << i;  // no waiting between sends
    sent.push_back(std::move(m));
  }
  for (std::size_t i = 0; i < kMessages; ++i) {
    auto at_server = server_messages_.pop();
    ASSERT_TRUE(at_server.has_value()) << "message " << i;
    ASSERT_EQ(*at_server, sent[i]) << "message " << i;
  }
  for (std::size_t i = 0; i < kMessages; ++i) {
    auto echoed = client_messages_.pop();
    ASSERT_TRUE(echoed.has_value()) << "echo " << i;
    ASSERT_EQ(*echoed, sent[i]) << "echo " << i;
  }
  EXPECT_TRUE(link->is_open());
}

TEST_F(LinkTest, LargeAndSmallMessagesInterleavedArriveWholeAndInOrder) {
  start_server();
  std::shared_ptr<Link> link = connect_good(context(client_node_));
  ASSERT_NE(link, nullptr);
  std::vector<Bytes> sent;
  for (std::size_t n : {std::size_t{1} << 20, std::size_t{0}, sync::kFrameDataBytesMax,
                        sync::kFrameDataBytesMax + 1, std::size_t{3}, (std::size_t{1} << 20) + 1,
                        std::size_t{1} << 20, 3 * sync::kFrameDataBytesMax, std::size_t{2} << 20,
                        std::size_t{17}}) {
    Bytes m(n);
    crypto::random_bytes(m);
    ASSERT_TRUE(link->send(m).is_ok()) << n << " bytes";
    sent.push_back(std::move(m));
  }
  for (const Bytes& m : sent) {
    auto echoed = client_messages_.pop();
    ASSERT_TRUE(echoed.has_value()) << m.size() << " bytes";
    EXPECT_EQ(*echoed, m) << m.size() << " bytes";
  }
}

TEST_F(LinkTest, CloseRightAfterManyQueuedMessagesFlushesThemBeforeTheCloseFrame) {
  start_server();
  std::shared_ptr<Link> link = connect_good(context(client_node_));
  ASSERT_NE(link, nullptr);
  // The server side sends (the client side only records, it does not echo into a closing link).
  auto server_link = server_links_.pop();
  ASSERT_TRUE(server_link.has_value());
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < 12; ++i) {
    Bytes m(200'000 + i, static_cast<std::uint8_t>(i));
    ASSERT_TRUE((*server_link)->send(m).is_ok());
    sent.push_back(std::move(m));
  }
  (*server_link)->close(Status::unavailable("hq closing for maintenance"));
  for (std::size_t i = 0; i < sent.size(); ++i) {
    auto at_client = client_messages_.pop();
    ASSERT_TRUE(at_client.has_value()) << "message " << i;
    EXPECT_EQ(*at_client, sent[i]) << "message " << i;
  }
  // The CLOSE frame was sealed after them, so it decrypts: the reason arrives intact.
  auto at_client = client_closes_.pop();
  ASSERT_TRUE(at_client.has_value());
  EXPECT_NE(at_client->message().find("hq closing for maintenance"), std::string::npos)
      << at_client->to_string();
}

// --- bad peers against a good server -----------------------------------------------------------

TEST_F(LinkTest, PeerWithNoCertificateIsRejected) {
  start_server();
  RawPeer peer(server());
  auto t = raw_handshake(peer, *client_node_.noise, {});
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  Status st = next_reject();
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_NE(st.message().find("no certificate"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, CertificateFromAnotherRootIsRejected) {
  start_server();
  crypto::SigningKey other_root = crypto::SigningKey::generate();
  sync::SignedCertificate forged = sync::sign_certificate(client_node_.cert.cert, other_root);
  RawPeer peer(server());
  ASSERT_TRUE(raw_handshake(peer, *client_node_.noise, payload_of(forged)).is_ok());
  Status st = next_reject();
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_NE(st.message().find("root"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, ExpiredCertificateIsRejected) {
  start_server();
  auto noise = std::make_shared<const crypto::X25519KeyPair>(crypto::X25519KeyPair::generate());
  sync::Certificate c = cert_fields("store-old", noise->public_key());
  c.valid_from_ms = now_ms() - 2 * 86'400'000;
  c.valid_until_ms = now_ms() - 86'400'000;
  sync::SignedCertificate expired = sync::sign_certificate(c, root_);
  update_roster([&](sync::Roster& r) { ASSERT_TRUE(r.put_certificate(expired).is_ok()); });
  RawPeer peer(server());
  ASSERT_TRUE(raw_handshake(peer, *noise, payload_of(expired)).is_ok());
  Status st = next_reject();
  EXPECT_NE(st.message().find("expired"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, RevokedNodeIsRejected) {
  start_server();
  Node thief = make_node("store-stolen");
  update_roster([&](sync::Roster& r) {
    ASSERT_TRUE(r.add_revocation({thief.cert.cert.node_id, 10}).is_ok());
  });
  RawPeer peer(server());
  ASSERT_TRUE(raw_handshake(peer, *thief.noise, payload_of(thief.cert)).is_ok());
  Status st = next_reject();
  EXPECT_NE(st.message().find("revoked"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, RevokedNodeUsingTheLinkApiCannotConnect) {
  start_server();
  Node thief = make_node("store-stolen");
  update_roster([&](sync::Roster& r) {
    ASSERT_TRUE(r.add_revocation({thief.cert.cert.node_id, 0}).is_ok());
  });
  LinkContext ctx = context(thief);
  ctx.roster = nullptr;  // the thief's own copy does not know it is revoked
  auto r = connect(std::move(ctx), server());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kPermission);  // told by the server's CLOSE frame
  EXPECT_NE(r.status().message().find("revoked"), std::string::npos) << r.status().to_string();
  EXPECT_NE(next_reject().message().find("revoked"), std::string::npos);
  expect_server_still_serves();
}

TEST_F(LinkTest, RevokingAConnectedPeerClosesItsOpenLink) {
  start_server();
  std::shared_ptr<Link> link = connect_good(context(client_node_));
  ASSERT_NE(link, nullptr);
  update_roster([&](sync::Roster& r) {
    ASSERT_TRUE(r.add_revocation({client_node_.cert.cert.node_id, 3}).is_ok());
  });
  Status st = next_server_close();  // the server's watchdog sees the new roster
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_NE(st.message().find("revoked"), std::string::npos) << st.to_string();
  auto at_client = client_closes_.pop();
  ASSERT_TRUE(at_client.has_value());
  EXPECT_FALSE(at_client->is_ok());
}

TEST_F(LinkTest, StaticKeyNotMatchingTheCertificateIsRejected) {
  start_server();
  crypto::X25519KeyPair other = crypto::X25519KeyPair::generate();
  RawPeer peer(server());
  // A valid, listed certificate, but the handshake proves a different Noise key.
  ASSERT_TRUE(raw_handshake(peer, other, payload_of(client_node_.cert)).is_ok());
  Status st = next_reject();
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_NE(st.message().find("static key"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, TruncatedHandshakeFrameIsRejected) {
  start_server();
  RawPeer peer(server());
  Bytes partial{0x00, 0x20};     // announces 32 bytes ...
  partial.resize(2 + 10, 0x11);  // ... sends 10, then hangs up
  peer.write(partial);
  peer.shutdown_send();
  Status st = next_reject();
  EXPECT_NE(st.message().find("truncated frame"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, TruncatedFrameFromASilentPeerHitsTheHandshakeDeadline) {
  LinkContext s = context(server_node_);
  s.options.handshake_timeout_ms = 200;
  start_server(std::move(s));
  RawPeer peer(server());
  peer.write(Bytes{0x00, 0x20, 0x01});  // then silence, connection held open
  Status st = next_reject();
  EXPECT_NE(st.message().find("timed out"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, TruncatedTransportFrameClosesTheLink) {
  start_server();
  RawPeer peer(server());
  crypto::NoiseTransport t = raw_admitted(peer);
  Bytes ct = data_frame(t.send, "cut short");
  Bytes wire{static_cast<std::uint8_t>(ct.size() >> 8), static_cast<std::uint8_t>(ct.size())};
  wire.insert(wire.end(), ct.begin(), ct.begin() + 5);
  peer.write(wire);
  peer.shutdown_send();
  Status st = next_server_close();
  EXPECT_NE(st.message().find("truncated frame"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, OversizedFrameLengthIsRejectedFromItsHeader) {
  start_server();
  RawPeer peer(server());
  peer.write(Bytes{0xff, 0xff});  // no body follows: refused on the length alone
  Status st = next_reject();
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("exceeds"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, GarbageBytesAreRejected) {
  start_server();
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    RawPeer peer(server());
    Bytes garbage(300);
    std::uint32_t x = seed * 2654435761u;
    for (auto& b : garbage) b = static_cast<std::uint8_t>((x = x * 1103515245u + 12345u) >> 16);
    peer.write(garbage);
    peer.shutdown_send();
    Status st = next_reject();
    EXPECT_FALSE(st.is_ok()) << "seed " << seed;
    EXPECT_TRUE(peer.closed_by_server()) << "seed " << seed;
  }
  expect_server_still_serves();
}

TEST_F(LinkTest, ReplayedTransportFrameClosesTheLink) {
  start_server();
  RawPeer peer(server());
  crypto::NoiseTransport t = raw_admitted(peer);
  Bytes frame = data_frame(t.send, "pay 10");
  peer.write_frame(frame);
  auto first = server_messages_.pop();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, (Bytes{'p', 'a', 'y', ' ', '1', '0'}));
  peer.write_frame(frame);  // the same ciphertext again
  Status st = next_server_close();
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("decryption failed"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, ReorderedFramesCloseTheLink) {
  start_server();
  RawPeer peer(server());
  crypto::NoiseTransport t = raw_admitted(peer);
  Bytes f1 = data_frame(t.send, "first");
  Bytes f2 = data_frame(t.send, "second");
  peer.write_frame(f2);
  peer.write_frame(f1);
  Status st = next_server_close();
  EXPECT_NE(st.message().find("decryption failed"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, TamperedCiphertextClosesTheLink) {
  start_server();
  RawPeer peer(server());
  crypto::NoiseTransport t = raw_admitted(peer);
  Bytes frame = data_frame(t.send, "pay 10");
  frame[3] ^= 0x01;
  peer.write_frame(frame);
  Status st = next_server_close();
  EXPECT_NE(st.message().find("decryption failed"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, TamperedFrameAmongGoodOnesInOneReadClosesTheLink) {
  start_server();
  RawPeer peer(server());
  crypto::NoiseTransport t = raw_admitted(peer);
  // Three frames in one write, so the server decrypts them in place from one read buffer.
  Bytes wire;
  for (const char* text : {"earn 10", "earn 20", "earn 30"}) {
    Bytes ct = data_frame(t.send, text);
    wire.push_back(static_cast<std::uint8_t>(ct.size() >> 8));
    wire.push_back(static_cast<std::uint8_t>(ct.size()));
    wire.insert(wire.end(), ct.begin(), ct.end());
  }
  const std::size_t second_frame = wire.size() / 3;
  wire[second_frame + 4] ^= 0x01;  // inside the second frame's ciphertext
  peer.write(wire);
  Status st = next_server_close();
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("decryption failed"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  // Nothing at or after the tampered frame was delivered (the close handler runs last). The
  // frame before it may or may not have been, depending on how the reads split.
  for (const Bytes& m : server_messages_.take_all()) {
    EXPECT_EQ(m, (Bytes{'e', 'a', 'r', 'n', ' ', '1', '0'}));
  }
  expect_server_still_serves();
}

TEST_F(LinkTest, SilentAdmittedPeerHitsTheIdleTimeout) {
  LinkContext s = context(server_node_);
  s.options.idle_timeout_ms = 300;
  s.options.keepalive_ms = 100;
  start_server(std::move(s));
  RawPeer peer(server());
  raw_admitted(peer);  // then never sends a frame, not even a ping
  Status st = next_server_close();
  EXPECT_NE(st.message().find("idle timeout"), std::string::npos) << st.to_string();
  EXPECT_TRUE(peer.closed_by_server());
  expect_server_still_serves();
}

TEST_F(LinkTest, WrongNetworkIdFailsTheHandshakeOnBothSides) {
  start_server();
  LinkContext ctx = context(client_node_);
  ctx.network_id[0] ^= 0x80;  // another chain's prologue
  auto r = connect(std::move(ctx), server());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("network id"), std::string::npos) << r.status().to_string();
  Status st = next_reject();
  EXPECT_NE(st.message().find("hung up"), std::string::npos) << st.to_string();
  expect_server_still_serves();
}

// --- a bad server against a good client ---------------------------------------------------------

TEST_F(LinkTest, ClientRefusesServerWithExpiredCertificate) {
  auto noise = std::make_shared<const crypto::X25519KeyPair>(crypto::X25519KeyPair::generate());
  sync::Certificate c = cert_fields("hq-expired", noise->public_key());
  c.valid_from_ms = now_ms() - 2 * 86'400'000;
  c.valid_until_ms = now_ms() - 86'400'000;
  Node bad{sync::sign_certificate(c, root_), noise};
  update_roster([&](sync::Roster& r) { ASSERT_TRUE(r.put_certificate(bad.cert).is_ok()); });
  start_server(context(bad));
  auto r = connect(context(client_node_), server());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kPermission);
  EXPECT_NE(r.status().message().find("expired"), std::string::npos) << r.status().to_string();
}

TEST_F(LinkTest, ClientRefusesServerFromAnotherRoot) {
  crypto::SigningKey other_root = crypto::SigningKey::generate();
  Node bad{sync::sign_certificate(server_node_.cert.cert, other_root), server_node_.noise};
  start_server(context(bad));
  auto r = connect(context(client_node_), server());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kPermission);
}

TEST_F(LinkTest, ConnectToAClosedPortFailsCleanly) {
  start_server();
  Endpoint gone = server();
  listener_->close();
  listener_.reset();
  auto r = connect(context(client_node_), gone);
  EXPECT_FALSE(r.is_ok());
}

}  // namespace
}  // namespace outpost::node
