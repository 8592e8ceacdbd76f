// SecureChannel (sync/src/secure_channel.cc): the socket-free link protocol driven in memory.
// A good handshake in both roles, bytes split anywhere, fragmentation and reassembly, pings,
// CLOSE, deterministic rekey, nonce exhaustion, and each malformed or unauthentic input closing
// the channel with a reason. Real sockets are covered in tests/integration/link_test.cc.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/crypto/noise.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/secure_channel.h"

namespace outpost::sync {
namespace {

constexpr std::uint64_t kNowMs = 1'800'000'000'000;
using crypto::NoiseRole;

struct Node {
  SignedCertificate cert;
  std::shared_ptr<const crypto::X25519KeyPair> noise;
};

class SyncChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    crypto::random_bytes(network_);
    roster_ = std::make_shared<Roster>();
    roster_->network_id = network_;
    roster_->version = 1;
    a_ = make_node("alpha");
    b_ = make_node("beta");
  }

  Node make_node(const std::string& name, bool in_roster = true) {
    Node n;
    n.noise = std::make_shared<const crypto::X25519KeyPair>(crypto::X25519KeyPair::generate());
    Certificate c;
    c.network_id = network_;
    crypto::random_bytes(c.node_id);
    c.role = NodeRole::kStore;
    c.signing_key = crypto::SigningKey::generate().public_key();
    c.noise_key = n.noise->public_key();
    c.valid_from_ms = kNowMs - 1000;
    c.valid_until_ms = kNowMs + 1000;
    c.name = name;
    n.cert = sign_certificate(c, root_);
    if (in_roster) {
      EXPECT_TRUE(roster_->put_certificate(n.cert).is_ok());
    }
    return n;
  }

  ChannelConfig config(const Node& n) {
    ChannelConfig cfg;
    cfg.certificate = n.cert;
    cfg.noise_key = n.noise;
    cfg.network_id = network_;
    cfg.root_key = root_.public_key();
    auto roster = roster_;
    cfg.roster = [roster] { return std::shared_ptr<const Roster>(roster); };
    return cfg;
  }

  // Runs the three handshake messages between `init` and `resp`, then the responder's
  // confirming ping; returns the first error.
  static Status handshake(SecureChannel& init, SecureChannel& resp) {
    ChannelOutput m1, m2, m3, confirm, done;
    OUTPOST_RETURN_IF_ERROR(init.start(m1));
    OUTPOST_RETURN_IF_ERROR(resp.receive(m1.wire, kNowMs, m2));
    OUTPOST_RETURN_IF_ERROR(init.receive(m2.wire, kNowMs, m3));
    EXPECT_FALSE(m3.handshake_completed);
    EXPECT_EQ(init.state(), SecureChannel::State::kConfirming);
    Status st = resp.receive(m3.wire, kNowMs, confirm);
    if (!st.is_ok()) {
      // A refused initiator learns why from the responder's CLOSE frame.
      Status at_init = init.receive(confirm.wire, kNowMs, done);
      EXPECT_EQ(at_init.code(), Code::kPermission) << at_init.to_string();
      return st;
    }
    EXPECT_TRUE(confirm.handshake_completed);
    OUTPOST_RETURN_IF_ERROR(init.receive(confirm.wire, kNowMs, done));
    EXPECT_TRUE(done.handshake_completed);
    EXPECT_EQ(done.pings_received, 1u);
    return Status::ok();
  }

  std::pair<SecureChannel, SecureChannel> open_pair(ChannelConfig ca, ChannelConfig cb) {
    auto a = SecureChannel::create(NoiseRole::kInitiator, std::move(ca));
    auto b = SecureChannel::create(NoiseRole::kResponder, std::move(cb));
    EXPECT_TRUE(a.is_ok() && b.is_ok());
    SecureChannel ia = std::move(a).value();
    SecureChannel rb = std::move(b).value();
    Status st = handshake(ia, rb);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return {std::move(ia), std::move(rb)};
  }

  crypto::SigningKey root_ = crypto::SigningKey::generate();
  NetworkId network_{};
  std::shared_ptr<Roster> roster_;
  Node a_, b_;
};

TEST_F(SyncChannelTest, HandshakeAdmitsBothPeersAndAgreesOnTheHash) {
  auto [a, b] = open_pair(config(a_), config(b_));
  ASSERT_TRUE(a.is_open() && b.is_open());
  EXPECT_EQ(a.peer_certificate(), b_.cert);
  EXPECT_EQ(b.peer_certificate(), a_.cert);
  EXPECT_EQ(a.peer_roster_version(), 1u);
  EXPECT_EQ(a.handshake_hash(), b.handshake_hash());
}

TEST_F(SyncChannelTest, MessagesOfEverySizeArriveWholeAndInOrderWhateverTheSplit) {
  auto [a, b] = open_pair(config(a_), config(b_));
  Bytes wire;
  std::vector<Bytes> sent;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, kFrameDataBytesMax, kFrameDataBytesMax + 1,
                        std::size_t{300'000}}) {
    Bytes m(n);
    crypto::random_bytes(m);
    ASSERT_TRUE(a.send_message(m, wire).is_ok());
    sent.push_back(std::move(m));
  }
  // Feed in odd-sized chunks so frame headers and bodies split everywhere.
  ChannelOutput out;
  for (std::size_t pos = 0, step = 1; pos < wire.size(); pos += step, step = step * 3 % 9973 + 1) {
    const std::size_t n = std::min(step, wire.size() - pos);
    ASSERT_TRUE(b.receive(ByteView(wire).subspan(pos, n), kNowMs, out).is_ok());
  }
  EXPECT_EQ(out.messages, sent);
  EXPECT_FALSE(b.has_partial_frame());
}

// How node/src/replication/link.cc drives a channel: a reader that keeps unconsumed bytes in its
// own buffer and calls receive_in_place() on them after every chunk.
struct InPlaceReader {
  Bytes buffer;
  Status feed(SecureChannel& channel, ByteView chunk, ChannelOutput& out) {
    buffer.insert(buffer.end(), chunk.begin(), chunk.end());
    std::size_t consumed = 0;
    OUTPOST_RETURN_IF_ERROR(channel.receive_in_place(buffer, kNowMs, out, consumed));
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(consumed));
    return Status::ok();
  }
};

// Seals `message` (a copy: the channel may overwrite it) into buffers of `room` bytes, as the
// link's write batches do, and appends them to `wire`.
Status seal_in_batches(SecureChannel& channel, const Bytes& message, std::size_t room, Bytes& wire,
                       std::size_t& batches) {
  Bytes owned = message;
  std::size_t offset = 0;
  bool done = false;
  while (!done) {
    Bytes batch(room);
    OUTPOST_ASSIGN_OR_RETURN(std::size_t n,
                             channel.seal_message_frames(owned, offset, batch, done));
    if (n == 0 && !done) return Status::internal("no progress");
    wire.insert(wire.end(), batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(n));
    ++batches;
  }
  return Status::ok();
}

TEST_F(SyncChannelTest, MessagesSealedIntoBoundedBatchesArriveWholeThroughInPlaceReads) {
  auto [a, b] = open_pair(config(a_), config(b_));
  std::vector<Bytes> sent;
  Bytes wire;
  std::size_t batches = 0;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, kFrameDataBytesMax - 1, kFrameDataBytesMax,
                        kFrameDataBytesMax + 1, std::size_t{300'000}, std::size_t{1} << 20,
                        std::size_t{1} << 20, std::size_t{5}}) {
    Bytes m(n);
    crypto::random_bytes(m);
    // One largest frame per batch, then three: frames never straddle batches.
    const std::size_t room = sent.size() % 2 == 0 ? kFrameWireBytesMax : 3 * kFrameWireBytesMax;
    ASSERT_TRUE(seal_in_batches(a, m, room, wire, batches).is_ok()) << n << " bytes";
    sent.push_back(std::move(m));
  }
  EXPECT_GT(batches, sent.size());  // the large messages took several batches
  InPlaceReader reader;
  ChannelOutput out;
  for (std::size_t pos = 0, step = 7; pos < wire.size(); pos += step, step = step * 5 % 70001 + 1) {
    const std::size_t n = std::min(step, wire.size() - pos);
    ASSERT_TRUE(reader.feed(b, ByteView(wire).subspan(pos, n), out).is_ok()) << "at " << pos;
  }
  ASSERT_EQ(out.messages.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(out.messages[i], sent[i]) << "message " << i;
    // The receiver hands over exactly the message, never a half-empty reassembly buffer.
    EXPECT_EQ(out.messages[i].capacity(), out.messages[i].size()) << "message " << i;
  }
  EXPECT_TRUE(reader.buffer.empty());
  EXPECT_FALSE(b.has_partial_frame());
  EXPECT_FALSE(b.has_partial_message());
}

TEST_F(SyncChannelTest, BatchTooSmallForTheNextFrameTakesNothingAndKeepsTheOffset) {
  auto [a, b] = open_pair(config(a_), config(b_));
  Bytes m(2 * kFrameDataBytesMax);
  std::size_t offset = 0;
  bool done = true;
  Bytes batch(kFrameWireBytesMax - 1);
  auto n = a.seal_message_frames(m, offset, batch, done);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_FALSE(done);
  EXPECT_EQ(offset, 0u);
  EXPECT_EQ(a.frames_sent(), 0u);  // no nonce spent on a frame that did not go out
  Bytes small(sync::kFrameOverheadBytes + 3);
  Bytes tiny{1, 2, 3};
  offset = 0;
  n = a.seal_message_frames(tiny, offset, small, done);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, small.size());
  EXPECT_TRUE(done);
  // Calling again for a message already sent is a caller bug, refused without sealing.
  EXPECT_EQ(a.seal_message_frames(tiny, offset, small, done).status().code(), Code::kInternal);
  EXPECT_EQ(a.frames_sent(), 1u);
}

TEST_F(SyncChannelTest, InPlaceReadLeavesATrailingPartialFrameToTheCaller) {
  auto [a, b] = open_pair(config(a_), config(b_));
  Bytes first, second;
  ASSERT_TRUE(a.send_message(Bytes{1, 2, 3}, first).is_ok());
  ASSERT_TRUE(a.send_message(Bytes(1000, 7), second).is_ok());
  Bytes buffer = first;
  buffer.insert(buffer.end(), second.begin(), second.end() - 5);
  ChannelOutput out;
  std::size_t consumed = 0;
  ASSERT_TRUE(b.receive_in_place(buffer, kNowMs, out, consumed).is_ok());
  EXPECT_EQ(consumed, first.size());
  EXPECT_TRUE(b.has_partial_frame());
  ASSERT_EQ(out.messages.size(), 1u);
  Bytes rest(buffer.begin() + static_cast<std::ptrdiff_t>(consumed), buffer.end());
  rest.insert(rest.end(), second.end() - 5, second.end());
  ASSERT_TRUE(b.receive_in_place(rest, kNowMs, out, consumed).is_ok());
  EXPECT_EQ(consumed, rest.size());
  EXPECT_FALSE(b.has_partial_frame());
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(out.messages[1], Bytes(1000, 7));
}

TEST_F(SyncChannelTest, TamperedFrameInsideAMultiFrameMessageClosesTheInPlaceReader) {
  auto [a, b] = open_pair(config(a_), config(b_));
  Bytes m(5 * kFrameDataBytesMax);
  crypto::random_bytes(m);
  Bytes wire;
  ASSERT_TRUE(a.send_message(m, wire).is_ok());
  wire[3 * kFrameWireBytesMax + 100] ^= 0x01;  // inside the fourth frame's ciphertext
  InPlaceReader reader;
  ChannelOutput out;
  Status st = reader.feed(b, wire, out);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("decryption failed"), std::string::npos) << st.message();
  EXPECT_TRUE(out.messages.empty());  // nothing of the message is delivered
  EXPECT_FALSE(b.is_open());
  EXPECT_FALSE(b.has_partial_message());
  std::size_t consumed = 0;
  EXPECT_FALSE(b.receive_in_place(reader.buffer, kNowMs, out, consumed).is_ok());
}

TEST_F(SyncChannelTest, PingIsCountedNotDeliveredAndCloseCarriesTheReason) {
  auto [a, b] = open_pair(config(a_), config(b_));
  Bytes wire;
  ASSERT_TRUE(a.send_ping(wire).is_ok());
  ASSERT_TRUE(a.send_close("shutting down", wire).is_ok());
  EXPECT_FALSE(a.is_open());
  ChannelOutput out;
  ASSERT_TRUE(b.receive(wire, kNowMs, out).is_ok());
  EXPECT_EQ(out.pings_received, 1u);
  EXPECT_TRUE(out.messages.empty());
  ASSERT_TRUE(out.peer_closed.has_value());
  EXPECT_EQ(*out.peer_closed, "shutting down");
  EXPECT_EQ(b.state(), SecureChannel::State::kClosed);
}

// Regression: receive() once kept every byte after a CLOSE frame as if it were a partial frame,
// and more than one frame's worth of them broke its invariant (a crash a peer could trigger).
TEST_F(SyncChannelTest, BytesAfterTheCloseFrameInOneChunkAreIgnored) {
  auto [a, b] = open_pair(config(a_), config(b_));
  Bytes wire;
  ASSERT_TRUE(a.send_close("bye", wire).is_ok());
  wire.insert(wire.end(), 3 * kFrameWireBytesMax, 0x41);
  ChannelOutput out;
  ASSERT_TRUE(b.receive(wire, kNowMs, out).is_ok());
  ASSERT_TRUE(out.peer_closed.has_value());
  EXPECT_EQ(*out.peer_closed, "bye");
  EXPECT_FALSE(b.has_partial_frame());
  EXPECT_EQ(b.receive(Bytes{1}, kNowMs, out).code(), Code::kUnavailable);
}

TEST_F(SyncChannelTest, BothSidesRekeyAtTheSameFrameCount) {
  ChannelConfig ca = config(a_), cb = config(b_);
  ca.rekey_after_messages = cb.rekey_after_messages = 3;
  auto [a, b] = open_pair(std::move(ca), std::move(cb));
  for (int i = 0; i < 20; ++i) {
    Bytes wire, back;
    ASSERT_TRUE(a.send_message(Bytes{static_cast<std::uint8_t>(i)}, wire).is_ok());
    ChannelOutput out;
    ASSERT_TRUE(b.receive(wire, kNowMs, out).is_ok()) << "message " << i;
    ASSERT_EQ(out.messages.size(), 1u);
    ASSERT_TRUE(b.send_message(out.messages[0], back).is_ok());
    ChannelOutput echo;
    ASSERT_TRUE(a.receive(back, kNowMs, echo).is_ok()) << "echo " << i;
  }
  EXPECT_EQ(a.frames_sent(), 20u);
}

TEST_F(SyncChannelTest, RekeyedSenderAndUnrekeyedReceiverFailAuthentication) {
  ChannelConfig ca = config(a_), cb = config(b_);
  ca.rekey_after_messages = 1;  // only the sender rekeys: the second frame must not decrypt
  auto [a, b] = open_pair(std::move(ca), std::move(cb));
  Bytes wire;
  ASSERT_TRUE(a.send_message(Bytes{1}, wire).is_ok());
  ASSERT_TRUE(a.send_message(Bytes{2}, wire).is_ok());
  ChannelOutput out;
  Status st = b.receive(wire, kNowMs, out);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_FALSE(b.is_open());
}

TEST_F(SyncChannelTest, NonceExhaustionClosesTheChannel) {
  auto [a, b] = open_pair(config(a_), config(b_));
  a.set_nonces_for_testing(crypto::kNoiseNonceReserved - 1, 0);
  Bytes wire;
  ASSERT_TRUE(a.send_message(Bytes{1}, wire).is_ok());  // uses the last usable nonce
  Status st = a.send_message(Bytes{2}, wire);
  EXPECT_EQ(st.code(), Code::kRefused);
  EXPECT_FALSE(a.is_open());
  b.set_nonces_for_testing(0, crypto::kNoiseNonceReserved);
  ChannelOutput out;
  EXPECT_EQ(b.receive(wire, kNowMs, out).code(), Code::kRefused);
  EXPECT_FALSE(b.is_open());
}

TEST_F(SyncChannelTest, OversizeMessageIsRefusedToSendAndClosesTheReceiver) {
  ChannelConfig ca = config(a_), cb = config(b_);
  cb.message_bytes_max = 100'000;
  auto [a, b] = open_pair(std::move(ca), std::move(cb));
  Bytes wire;
  ASSERT_TRUE(a.send_message(Bytes(100'001), wire).is_ok());  // a's own bound is larger
  ChannelOutput out;
  Status st = b.receive(wire, kNowMs, out);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("larger than"), std::string::npos) << st.message();
  Bytes none;
  EXPECT_EQ(a.send_message(Bytes(limits::kLinkMessageBytesMax + 1), none).code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(a.is_open());
}

TEST_F(SyncChannelTest, UnknownFrameTypeAndEmptyFragmentClose) {
  for (Bytes plain : {Bytes{9}, Bytes{}, Bytes{static_cast<std::uint8_t>(FrameType::kMore)},
                      Bytes{static_cast<std::uint8_t>(FrameType::kPing), 0}}) {
    auto [a, b] = open_pair(config(a_), config(b_));
    Bytes wire;
    ASSERT_TRUE(a.encrypt_frame_for_testing(plain, wire).is_ok());
    ChannelOutput out;
    EXPECT_EQ(b.receive(wire, kNowMs, out).code(), Code::kCorruption) << crypto::to_hex(plain);
    EXPECT_FALSE(b.is_open());
  }
}

TEST_F(SyncChannelTest, TamperedReplayedAndReorderedFramesClose) {
  auto [a, b] = open_pair(config(a_), config(b_));
  Bytes f1, f2;
  ASSERT_TRUE(a.send_message(Bytes{1}, f1).is_ok());
  ASSERT_TRUE(a.send_message(Bytes{2}, f2).is_ok());
  {
    auto [x, y] = open_pair(config(a_), config(b_));
    Bytes t1;
    ASSERT_TRUE(x.send_message(Bytes{1}, t1).is_ok());
    t1[5] ^= 0x40;
    ChannelOutput out;
    EXPECT_EQ(y.receive(t1, kNowMs, out).code(), Code::kCorruption);
  }
  {
    auto [x, y] = open_pair(config(a_), config(b_));
    Bytes t1, t2;
    ASSERT_TRUE(x.send_message(Bytes{1}, t1).is_ok());
    ASSERT_TRUE(x.send_message(Bytes{2}, t2).is_ok());
    ChannelOutput out;
    EXPECT_EQ(y.receive(t2, kNowMs, out).code(), Code::kCorruption);  // reordered
  }
  ChannelOutput out;
  ASSERT_TRUE(b.receive(f1, kNowMs, out).is_ok());
  EXPECT_EQ(b.receive(f1, kNowMs, out).code(), Code::kCorruption);  // replayed
}

TEST_F(SyncChannelTest, FrameLengthsOutsideThePhaseBoundsCloseBeforeTheBody) {
  auto resp = SecureChannel::create(NoiseRole::kResponder, config(b_)).value();
  ChannelOutput out;
  const std::uint8_t huge[] = {0xff, 0xff};
  Status st = resp.receive(huge, kNowMs, out);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("65535"), std::string::npos) << st.message();

  auto resp2 = SecureChannel::create(NoiseRole::kResponder, config(b_)).value();
  const std::uint8_t zero[] = {0x00, 0x00};
  EXPECT_EQ(resp2.receive(zero, kNowMs, out).code(), Code::kCorruption);

  auto resp3 = SecureChannel::create(NoiseRole::kResponder, config(b_)).value();
  Bytes m1(2 + 33, 0);
  m1[1] = 33;  // message 1 must be exactly 32 bytes
  EXPECT_EQ(resp3.receive(m1, kNowMs, out).code(), Code::kCorruption);

  auto [a, b] = open_pair(config(a_), config(b_));
  const std::uint8_t tiny[] = {0x00, 0x10};  // 16 < tag + type byte
  EXPECT_EQ(b.receive(tiny, kNowMs, out).code(), Code::kCorruption);
}

TEST_F(SyncChannelTest, PeerWithoutRosterEntryIsRefusedUnlessItsRosterIsNewer) {
  Node stranger = make_node("stranger", /*in_roster=*/false);
  auto init = SecureChannel::create(NoiseRole::kInitiator, config(stranger)).value();
  auto resp = SecureChannel::create(NoiseRole::kResponder, config(b_)).value();
  Status st = handshake(init, resp);
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_NE(st.message().find("not in roster"), std::string::npos) << st.message();
}

TEST_F(SyncChannelTest, ResponderWithForeignRootIsRefusedBeforeTheInitiatorRevealsItself) {
  crypto::SigningKey other = crypto::SigningKey::generate();
  Node b = b_;
  Certificate c = b.cert.cert;
  b.cert = sign_certificate(c, other);
  auto init = SecureChannel::create(NoiseRole::kInitiator, config(a_)).value();
  auto resp = SecureChannel::create(NoiseRole::kResponder, config(b)).value();
  ChannelOutput m1, m2, m3;
  ASSERT_TRUE(init.start(m1).is_ok());
  ASSERT_TRUE(resp.receive(m1.wire, kNowMs, m2).is_ok());
  Status st = init.receive(m2.wire, kNowMs, m3);
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_TRUE(m3.wire.empty());  // message 3 (the initiator's certificate) was never written
}

TEST_F(SyncChannelTest, OwnCertificateNamingAnotherNoiseKeyIsRefusedAtCreate) {
  // The peer-side check (handshake key != certificate key) runs over real sockets in
  // tests/integration/link_test.cc; here: a node cannot even start with a mismatched pair.
  Node liar = b_;
  Certificate c = b_.cert.cert;
  c.noise_key = crypto::X25519KeyPair::generate().public_key();
  liar.cert = sign_certificate(c, root_);
  EXPECT_EQ(SecureChannel::create(NoiseRole::kResponder, config(liar)).status().code(),
            Code::kInvalidArgument);
}

TEST_F(SyncChannelTest, DifferentNetworkIdFailsTheHandshake) {
  ChannelConfig cb = config(b_);
  cb.network_id[0] ^= 1;  // different prologue
  auto init = SecureChannel::create(NoiseRole::kInitiator, config(a_)).value();
  auto resp = SecureChannel::create(NoiseRole::kResponder, cb).value();
  Status st = handshake(init, resp);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("network id"), std::string::npos) << st.message();
}

TEST_F(SyncChannelTest, InitiatorSendsNothingUntilTheResponderConfirms) {
  auto init = SecureChannel::create(NoiseRole::kInitiator, config(a_)).value();
  auto resp = SecureChannel::create(NoiseRole::kResponder, config(b_)).value();
  ChannelOutput m1, m2, m3, confirm, done;
  ASSERT_TRUE(init.start(m1).is_ok());
  ASSERT_TRUE(resp.receive(m1.wire, kNowMs, m2).is_ok());
  ASSERT_TRUE(init.receive(m2.wire, kNowMs, m3).is_ok());
  Bytes early;
  EXPECT_EQ(init.send_message(Bytes{7}, early).code(), Code::kUnavailable);
  // The responder may send data right behind its confirming ping, in the same bytes.
  ASSERT_TRUE(resp.receive(m3.wire, kNowMs, confirm).is_ok());
  ASSERT_TRUE(resp.send_message(Bytes{7, 7}, confirm.wire).is_ok());
  ASSERT_TRUE(init.receive(confirm.wire, kNowMs, done).is_ok());
  EXPECT_TRUE(done.handshake_completed);
  ASSERT_EQ(done.messages.size(), 1u);
  EXPECT_EQ(done.messages[0], (Bytes{7, 7}));
}

TEST_F(SyncChannelTest, RefusedInitiatorLearnsTheReasonFromTheResponder) {
  ASSERT_TRUE(roster_->add_revocation({a_.cert.cert.node_id, 5}).is_ok());
  auto init = SecureChannel::create(NoiseRole::kInitiator, config(a_)).value();
  auto resp = SecureChannel::create(NoiseRole::kResponder, config(b_)).value();
  ChannelOutput m1, m2, m3, refusal, done;
  ASSERT_TRUE(init.start(m1).is_ok());
  ASSERT_TRUE(resp.receive(m1.wire, kNowMs, m2).is_ok());
  ASSERT_TRUE(init.receive(m2.wire, kNowMs, m3).is_ok());
  Status at_resp = resp.receive(m3.wire, kNowMs, refusal);
  EXPECT_EQ(at_resp.code(), Code::kPermission);
  ASSERT_FALSE(refusal.wire.empty());
  Status at_init = init.receive(refusal.wire, kNowMs, done);
  EXPECT_EQ(at_init.code(), Code::kPermission);
  EXPECT_NE(at_init.message().find("revoked"), std::string::npos) << at_init.to_string();
  EXPECT_FALSE(done.handshake_completed);
}

TEST_F(SyncChannelTest, EveryCallAfterAnErrorFails) {
  auto resp = SecureChannel::create(NoiseRole::kResponder, config(b_)).value();
  ChannelOutput out;
  const std::uint8_t huge[] = {0xff, 0xff};
  ASSERT_FALSE(resp.receive(huge, kNowMs, out).is_ok());
  Bytes wire;
  EXPECT_FALSE(resp.receive(huge, kNowMs, out).is_ok());
  EXPECT_FALSE(resp.send_message(Bytes{1}, wire).is_ok());
  EXPECT_TRUE(wire.empty());
}

}  // namespace
}  // namespace outpost::sync
