// Noise (crypto/src/noise.cc): XX and IK handshakes between two in-memory parties, transport
// ciphers, failure paths (tampering, replay, reordering, wrong prologue or key, nonce
// exhaustion), HMAC-BLAKE2b against an independent RFC 2104 computation, and the published
// test vectors in tests/vectors/noise (a missing file fails the test).
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/crypto/noise.h"

namespace outpost::crypto {
namespace {

class NoiseTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(init().is_ok()); }
};

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

struct Parties {
  HandshakeState initiator;
  HandshakeState responder;
};

// Creates both sides of `pattern`. For IK the initiator is given `responder_key_known`, which
// defaults to the responder's real static key.
Parties make_parties(NoisePattern pattern, const X25519KeyPair& init_static,
                     const X25519KeyPair& resp_static, ByteView init_prologue,
                     ByteView resp_prologue,
                     std::optional<PublicKey> responder_key_known = std::nullopt) {
  std::optional<PublicKey> rs;
  if (pattern == NoisePattern::kIK) {
    rs = responder_key_known.value_or(resp_static.public_key());
  }
  auto initiator =
      HandshakeState::create(pattern, NoiseRole::kInitiator, init_prologue, init_static, rs);
  auto responder =
      HandshakeState::create(pattern, NoiseRole::kResponder, resp_prologue, resp_static);
  OUTPOST_CHECK(initiator.is_ok() && responder.is_ok());
  return Parties{std::move(initiator).value(), std::move(responder).value()};
}

// Runs the handshake to completion, message i carrying payload "hello i". Returns the first
// error (from whichever side) or ok.
Status run_handshake(Parties& p) {
  for (int i = 0; !p.initiator.is_complete(); ++i) {
    HandshakeState& sender = i % 2 == 0 ? p.initiator : p.responder;
    HandshakeState& receiver = i % 2 == 0 ? p.responder : p.initiator;
    const Bytes payload = bytes_of("hello " + std::to_string(i));
    OUTPOST_ASSIGN_OR_RETURN(Bytes message, sender.write_message(payload));
    OUTPOST_ASSIGN_OR_RETURN(Bytes read, receiver.read_message(message));
    if (read != payload) {
      return Status::corruption("payload changed in transit");
    }
  }
  if (!p.responder.is_complete()) {
    return Status::internal("responder not complete");
  }
  return Status::ok();
}

struct Session {
  NoiseTransport initiator;
  NoiseTransport responder;
};

Session connected_session(NoisePattern pattern) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  const Bytes prologue = bytes_of("outpost test v1");
  Parties p = make_parties(pattern, a, b, prologue, prologue);
  OUTPOST_CHECK(run_handshake(p).is_ok());
  auto i = p.initiator.split();
  auto r = p.responder.split();
  OUTPOST_CHECK(i.is_ok() && r.is_ok());
  return Session{std::move(i).value(), std::move(r).value()};
}

void expect_full_handshake(NoisePattern pattern) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  const Bytes prologue = bytes_of("outpost/1 network=test");
  Parties p = make_parties(pattern, a, b, prologue, prologue);
  ASSERT_TRUE(run_handshake(p).is_ok());

  ASSERT_TRUE(p.initiator.remote_static().has_value());
  ASSERT_TRUE(p.responder.remote_static().has_value());
  EXPECT_EQ(*p.initiator.remote_static(), b.public_key());
  EXPECT_EQ(*p.responder.remote_static(), a.public_key());
  EXPECT_EQ(p.initiator.handshake_hash(), p.responder.handshake_hash());

  auto i = p.initiator.split();
  auto r = p.responder.split();
  ASSERT_TRUE(i.is_ok() && r.is_ok());
  const Bytes ping = bytes_of("ping");
  const Bytes pong = bytes_of("pong");
  auto sealed = i->send.encrypt_with_ad({}, ping);
  ASSERT_TRUE(sealed.is_ok());
  EXPECT_EQ(sealed->size(), ping.size() + kNoiseTagBytes);
  auto opened = r->receive.decrypt_with_ad({}, *sealed);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  EXPECT_EQ(*opened, ping);
  auto back = r->send.encrypt_with_ad({}, pong);
  ASSERT_TRUE(back.is_ok());
  auto back_opened = i->receive.decrypt_with_ad({}, *back);
  ASSERT_TRUE(back_opened.is_ok());
  EXPECT_EQ(*back_opened, pong);
}

TEST_F(NoiseTest, XxHandshakeDeliversPayloadsLearnsStaticKeysAndCarriesTransport) {
  expect_full_handshake(NoisePattern::kXX);
}

TEST_F(NoiseTest, IkHandshakeDeliversPayloadsLearnsStaticKeysAndCarriesTransport) {
  expect_full_handshake(NoisePattern::kIK);
}

TEST_F(NoiseTest, HandshakeMessagesHaveTheSpecSizes) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties xx = make_parties(NoisePattern::kXX, a, b, {}, {});
  auto m1 = xx.initiator.write_message({});
  ASSERT_TRUE(m1.is_ok());
  EXPECT_EQ(m1->size(), 32u);  // e, plaintext empty payload
  ASSERT_TRUE(xx.responder.read_message(*m1).is_ok());
  auto m2 = xx.responder.write_message({});
  ASSERT_TRUE(m2.is_ok());
  EXPECT_EQ(m2->size(), 32u + 48u + 16u);  // e, encrypted s, payload tag
  ASSERT_TRUE(xx.initiator.read_message(*m2).is_ok());
  auto m3 = xx.initiator.write_message({});
  ASSERT_TRUE(m3.is_ok());
  EXPECT_EQ(m3->size(), 48u + 16u);

  Parties ik = make_parties(NoisePattern::kIK, a, b, {}, {});
  auto k1 = ik.initiator.write_message({});
  ASSERT_TRUE(k1.is_ok());
  EXPECT_EQ(k1->size(), 32u + 48u + 16u);
}

TEST_F(NoiseTest, TamperedTransportCiphertextIsRejectedWithoutDesync) {
  Session s = connected_session(NoisePattern::kXX);
  auto sealed = s.initiator.send.encrypt_with_ad({}, bytes_of("award 100 points"));
  ASSERT_TRUE(sealed.is_ok());
  for (std::size_t i = 0; i < sealed->size(); i += 5) {
    Bytes bad = *sealed;
    bad[i] ^= 0x01;
    auto opened = s.responder.receive.decrypt_with_ad({}, bad);
    ASSERT_FALSE(opened.is_ok()) << "flipped byte " << i << " accepted";
    EXPECT_EQ(opened.status().code(), Code::kCorruption);
  }
  Bytes truncated(sealed->begin(), sealed->begin() + kNoiseTagBytes - 1);
  EXPECT_EQ(s.responder.receive.decrypt_with_ad({}, truncated).status().code(), Code::kCorruption);
  // A forged message must not advance the nonce: the genuine one still decrypts.
  EXPECT_EQ(s.responder.receive.nonce(), 0u);
  EXPECT_TRUE(s.responder.receive.decrypt_with_ad({}, *sealed).is_ok());
}

TEST_F(NoiseTest, TamperedHandshakeMessageFailsTheHandshake) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kXX, a, b, {}, {});
  auto m1 = p.initiator.write_message({});
  ASSERT_TRUE(m1.is_ok() && p.responder.read_message(*m1).is_ok());
  auto m2 = p.responder.write_message(bytes_of("responder cert"));
  ASSERT_TRUE(m2.is_ok());
  (*m2)[40] ^= 0x80;  // inside the encrypted static key
  auto read = p.initiator.read_message(*m2);
  ASSERT_FALSE(read.is_ok());
  EXPECT_EQ(read.status().code(), Code::kCorruption);
  EXPECT_TRUE(p.initiator.has_failed());
  EXPECT_FALSE(p.initiator.write_message({}).is_ok());
  EXPECT_FALSE(p.initiator.split().is_ok());
}

TEST_F(NoiseTest, FailedHandshakeForgetsUnauthenticatedRemoteStatic) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kXX, a, b, {}, {});
  auto m1 = p.initiator.write_message({});
  ASSERT_TRUE(m1.is_ok() && p.responder.read_message(*m1).is_ok());
  auto m2 = p.responder.write_message(bytes_of("responder cert"));
  ASSERT_TRUE(m2.is_ok());
  m2->back() ^= 0x01;  // the payload's tag: s decrypts, the payload does not
  EXPECT_EQ(p.initiator.read_message(*m2).status().code(), Code::kCorruption);
  EXPECT_FALSE(p.initiator.remote_static().has_value());
}

TEST_F(NoiseTest, ReplayedTransportMessageIsRejected) {
  Session s = connected_session(NoisePattern::kIK);
  auto sealed = s.initiator.send.encrypt_with_ad({}, bytes_of("spend 5.00"));
  ASSERT_TRUE(sealed.is_ok());
  ASSERT_TRUE(s.responder.receive.decrypt_with_ad({}, *sealed).is_ok());
  auto replay = s.responder.receive.decrypt_with_ad({}, *sealed);
  ASSERT_FALSE(replay.is_ok());
  EXPECT_EQ(replay.status().code(), Code::kCorruption);
}

TEST_F(NoiseTest, ReorderedTransportMessagesAreRejected) {
  Session s = connected_session(NoisePattern::kXX);
  auto first = s.responder.send.encrypt_with_ad({}, bytes_of("first"));
  auto second = s.responder.send.encrypt_with_ad({}, bytes_of("second"));
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  EXPECT_EQ(s.initiator.receive.decrypt_with_ad({}, *second).status().code(), Code::kCorruption);
  EXPECT_TRUE(s.initiator.receive.decrypt_with_ad({}, *first).is_ok());
  EXPECT_TRUE(s.initiator.receive.decrypt_with_ad({}, *second).is_ok());
}

TEST_F(NoiseTest, TransportDirectionsUseDifferentKeys) {
  Session s = connected_session(NoisePattern::kXX);
  auto sealed = s.initiator.send.encrypt_with_ad({}, bytes_of("loop"));
  ASSERT_TRUE(sealed.is_ok());
  // A message reflected back to its sender must not decrypt.
  EXPECT_FALSE(s.initiator.receive.decrypt_with_ad({}, *sealed).is_ok());
}

TEST_F(NoiseTest, WrongPrologueFailsXxHandshake) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kXX, a, b, bytes_of("outpost/1 network=A"),
                           bytes_of("outpost/1 network=B"));
  Status st = run_handshake(p);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
}

TEST_F(NoiseTest, WrongPrologueFailsIkHandshake) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kIK, a, b, bytes_of("v1"), bytes_of("v2"));
  auto m1 = p.initiator.write_message(bytes_of("hi"));
  ASSERT_TRUE(m1.is_ok());
  auto read = p.responder.read_message(*m1);
  ASSERT_FALSE(read.is_ok());
  EXPECT_EQ(read.status().code(), Code::kCorruption);
}

TEST_F(NoiseTest, IkInitiatorWithWrongResponderStaticKeyFails) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  auto impostor = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kIK, a, b, {}, {}, impostor.public_key());
  auto m1 = p.initiator.write_message(bytes_of("hi"));
  ASSERT_TRUE(m1.is_ok());
  auto read = p.responder.read_message(*m1);
  ASSERT_FALSE(read.is_ok());
  EXPECT_EQ(read.status().code(), Code::kCorruption);
  EXPECT_FALSE(p.responder.remote_static().has_value());
}

TEST_F(NoiseTest, IkResponderRejectsLowOrderEphemeralKey) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kIK, a, b, {}, {});
  auto m1 = p.initiator.write_message({});
  ASSERT_TRUE(m1.is_ok());
  std::fill(m1->begin(), m1->begin() + 32, 0);  // e = the all-zero point: DH output all zero
  auto read = p.responder.read_message(*m1);
  ASSERT_FALSE(read.is_ok());
  EXPECT_EQ(read.status().code(), Code::kCorruption);
  EXPECT_NE(read.status().message().find("all zeros"), std::string::npos);
}

TEST_F(NoiseTest, TruncatedHandshakeMessageIsCorruption) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kXX, a, b, {}, {});
  auto m1 = p.initiator.write_message({});
  ASSERT_TRUE(m1.is_ok());
  m1->resize(31);
  EXPECT_EQ(p.responder.read_message(*m1).status().code(), Code::kCorruption);
  EXPECT_TRUE(p.responder.has_failed());
}

TEST_F(NoiseTest, OutOfTurnAndEarlySplitAreRefused) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kXX, a, b, {}, {});
  EXPECT_FALSE(p.responder.write_message({}).is_ok());
  EXPECT_FALSE(p.initiator.read_message(Bytes(32)).is_ok());
  EXPECT_FALSE(p.initiator.split().is_ok());
  EXPECT_FALSE(p.initiator.has_failed());  // caller mistakes do not poison the handshake
  ASSERT_TRUE(run_handshake(p).is_ok());
  EXPECT_TRUE(p.initiator.split().is_ok());
  EXPECT_FALSE(p.initiator.split().is_ok());  // keys are handed out once
}

TEST_F(NoiseTest, CreateRejectsMissingOrUnexpectedRemoteStatic) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  EXPECT_EQ(HandshakeState::create(NoisePattern::kIK, NoiseRole::kInitiator, {}, a).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(HandshakeState::create(NoisePattern::kXX, NoiseRole::kInitiator, {}, a, b.public_key())
                .status()
                .code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(X25519KeyPair::from_private(Bytes(31)).is_ok());
}

TEST_F(NoiseTest, OversizedMessagesAreRefused) {
  Session s = connected_session(NoisePattern::kXX);
  EXPECT_TRUE(s.initiator.send.encrypt_with_ad({}, Bytes(kNoisePayloadBytesMax)).is_ok());
  EXPECT_EQ(s.initiator.send.encrypt_with_ad({}, Bytes(kNoisePayloadBytesMax + 1)).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(s.responder.receive.decrypt_with_ad({}, Bytes(limits::kNoiseMessageBytesMax + 1))
                .status()
                .code(),
            Code::kCorruption);

  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  Parties p = make_parties(NoisePattern::kXX, a, b, {}, {});
  // Message 1 of XX carries 32 bytes of e before the payload.
  EXPECT_EQ(p.initiator.write_message(Bytes(limits::kNoiseMessageBytesMax - 31)).status().code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(p.initiator.has_failed());
  EXPECT_TRUE(p.initiator.write_message(Bytes(limits::kNoiseMessageBytesMax - 32)).is_ok());
}

// HMAC written out independently from RFC 2104 with libsodium's BLAKE2b-512.
NoiseHash reference_hmac(ByteView key, ByteView data) {
  std::array<std::uint8_t, 128> k0{};
  if (key.size() > 128) {
    crypto_generichash(k0.data(), 64, key.data(), key.size(), nullptr, 0);
  } else {
    std::copy(key.begin(), key.end(), k0.begin());
  }
  Bytes inner_input;
  for (auto b : k0) {
    inner_input.push_back(b ^ 0x36);
  }
  inner_input.insert(inner_input.end(), data.begin(), data.end());
  std::array<std::uint8_t, 64> inner{};
  crypto_generichash(inner.data(), 64, inner_input.data(), inner_input.size(), nullptr, 0);
  Bytes outer_input;
  for (auto b : k0) {
    outer_input.push_back(b ^ 0x5c);
  }
  outer_input.insert(outer_input.end(), inner.begin(), inner.end());
  NoiseHash out{};
  crypto_generichash(out.data(), 64, outer_input.data(), outer_input.size(), nullptr, 0);
  return out;
}

TEST_F(NoiseTest, HmacBlake2bMatchesRfc2104Construction) {
  const Bytes data = bytes_of("The quick brown fox jumps over the lazy dog");
  for (std::size_t key_len : {0u, 1u, 32u, 64u, 127u, 128u, 129u, 200u}) {
    Bytes key(key_len);
    for (std::size_t i = 0; i < key_len; ++i) {
      key[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    EXPECT_EQ(hmac_blake2b(key, data), reference_hmac(key, data)) << "key length " << key_len;
  }
  // And it is not BLAKE2b's keyed mode, which Noise does not use for HMAC.
  const Bytes key(32, 0x0b);
  NoiseHash keyed{};
  crypto_generichash(keyed.data(), 64, data.data(), data.size(), key.data(), key.size());
  EXPECT_NE(hmac_blake2b(key, data), keyed);
}

TEST_F(NoiseTest, RekeyChangesKeyAndBothSidesStayInSync) {
  std::array<std::uint8_t, 32> key{};
  for (std::size_t i = 0; i < key.size(); ++i) {
    key[i] = static_cast<std::uint8_t>(i);
  }
  CipherState sender;
  CipherState receiver;
  sender.initialize_key(key);
  receiver.initialize_key(key);
  const Bytes msg = bytes_of("after rekey");

  ASSERT_TRUE(sender.rekey().is_ok());
  EXPECT_EQ(sender.nonce(), 0u);  // Rekey leaves n alone
  auto sealed = sender.encrypt_with_ad({}, msg);
  ASSERT_TRUE(sealed.is_ok());

  // A receiver that did not rekey cannot read it: the key really changed.
  CipherState stale;
  stale.initialize_key(key);
  EXPECT_FALSE(stale.decrypt_with_ad({}, *sealed).is_ok());

  ASSERT_TRUE(receiver.rekey().is_ok());
  auto opened = receiver.decrypt_with_ad({}, *sealed);
  ASSERT_TRUE(opened.is_ok());
  EXPECT_EQ(*opened, msg);

  // The new key is REKEY(k) of spec §4.2: ENCRYPT(k, 2^64-1, empty, 32 zeros)[0:32], computed
  // here directly with libsodium.
  std::array<std::uint8_t, 12> nonce{};
  std::fill(nonce.begin() + 4, nonce.end(), 0xff);
  std::array<std::uint8_t, 32> zeros{};
  std::array<std::uint8_t, 48> rekeyed{};
  crypto_aead_chacha20poly1305_ietf_encrypt(rekeyed.data(), nullptr, zeros.data(), zeros.size(),
                                            nullptr, 0, nullptr, nonce.data(), key.data());
  CipherState expected;
  expected.initialize_key(std::span<const std::uint8_t, 32>(rekeyed.data(), 32));
  EXPECT_EQ(expected.encrypt_with_ad({}, msg).value(), *sealed);

  // Both sides keep talking after a second rekey.
  ASSERT_TRUE(sender.rekey().is_ok() && receiver.rekey().is_ok());
  auto again = sender.encrypt_with_ad(bytes_of("ad"), msg);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(receiver.decrypt_with_ad(bytes_of("ad"), *again).is_ok());

  CipherState empty;
  EXPECT_FALSE(empty.rekey().is_ok());
}

// Three CipherStates with one key: what the copying, the out-of-place and the in-place forms
// write must be the same bytes, for sizes around ChaCha20's 64-byte blocks and the largest.
TEST_F(NoiseTest, EncryptIntoAndDecryptIntoMatchTheCopyingFormsInPlaceOrNot) {
  std::array<std::uint8_t, 32> key{};
  random_bytes(key);
  CipherState copying, into, in_place, open_copying, open_into, open_in_place;
  for (CipherState* c : {&copying, &into, &in_place, &open_copying, &open_into, &open_in_place}) {
    c->initialize_key(key);
  }
  const Bytes ad = bytes_of("ad");
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64},
                        std::size_t{65}, std::size_t{1000}, kNoisePayloadBytesMax}) {
    Bytes plain(n);
    random_bytes(plain);
    auto expected = copying.encrypt_with_ad(ad, plain);
    ASSERT_TRUE(expected.is_ok());

    Bytes out(n + kNoiseTagBytes);
    ASSERT_TRUE(into.encrypt_into(ad, plain, out).is_ok());
    EXPECT_EQ(out, *expected) << "out of place, " << n << " bytes";

    Bytes buffer = plain;
    buffer.resize(n + kNoiseTagBytes);
    ASSERT_TRUE(in_place.encrypt_into(ad, ByteView(buffer).first(n), buffer).is_ok());
    EXPECT_EQ(buffer, *expected) << "in place, " << n << " bytes";

    auto opened = open_copying.decrypt_with_ad(ad, *expected);
    ASSERT_TRUE(opened.is_ok());
    EXPECT_EQ(*opened, plain);
    Bytes opened_into(n);
    ASSERT_TRUE(open_into.decrypt_into(ad, *expected, opened_into).is_ok());
    EXPECT_EQ(opened_into, plain);
    ASSERT_TRUE(open_in_place.decrypt_into(ad, buffer, buffer).is_ok());
    EXPECT_EQ(ByteView(buffer).first(n).size(), n);
    EXPECT_TRUE(std::equal(plain.begin(), plain.end(), buffer.begin())) << n << " bytes";
  }
  EXPECT_EQ(into.nonce(), copying.nonce());
  EXPECT_EQ(open_in_place.nonce(), copying.nonce());
}

TEST_F(NoiseTest, TamperedMessageDecryptedInPlaceFailsWithoutDesync) {
  Session s = connected_session(NoisePattern::kXX);
  const Bytes msg = bytes_of("top up 20.00 to wallet");
  Bytes sealed(msg.size() + kNoiseTagBytes);
  ASSERT_TRUE(s.initiator.send.encrypt_into({}, msg, sealed).is_ok());
  for (std::size_t i = 0; i < sealed.size(); i += 3) {
    Bytes bad = sealed;
    bad[i] ^= 0x10;
    Status st = s.responder.receive.decrypt_into({}, bad, bad);
    EXPECT_EQ(st.code(), Code::kCorruption) << "flipped byte " << i << " accepted";
    EXPECT_EQ(s.responder.receive.nonce(), 0u);
  }
  ASSERT_TRUE(s.responder.receive.decrypt_into({}, sealed, sealed).is_ok());
  EXPECT_TRUE(std::equal(msg.begin(), msg.end(), sealed.begin()));
  EXPECT_EQ(s.responder.receive.nonce(), 1u);
}

TEST_F(NoiseTest, CallerIntoFormsRefuseNoKeyNoRoomAndPartialOverlap) {
  CipherState keyless;
  Bytes buf(64);
  EXPECT_EQ(keyless.encrypt_into({}, ByteView(buf).first(16), buf).code(), Code::kInternal);
  EXPECT_EQ(keyless.decrypt_into({}, buf, buf).code(), Code::kInternal);

  Session s = connected_session(NoisePattern::kXX);
  const Bytes msg = bytes_of("redeem 500 points");
  Bytes small(msg.size() + kNoiseTagBytes - 1);
  EXPECT_EQ(s.initiator.send.encrypt_into({}, msg, small).code(), Code::kInvalidArgument);
  // Output starting one byte into the input would read bytes it already overwrote.
  Bytes shared(msg.size() + kNoiseTagBytes + 1);
  std::copy(msg.begin(), msg.end(), shared.begin());
  EXPECT_EQ(s.initiator.send
                .encrypt_into({}, ByteView(shared).first(msg.size()),
                              std::span<std::uint8_t>(shared).subspan(1))
                .code(),
            Code::kInternal);
  EXPECT_EQ(s.initiator.send.nonce(), 0u);  // refused calls use no nonce

  Bytes sealed(msg.size() + kNoiseTagBytes);
  ASSERT_TRUE(s.initiator.send.encrypt_into({}, msg, sealed).is_ok());
  Bytes too_small(msg.size() - 1);
  EXPECT_EQ(s.responder.receive.decrypt_into({}, sealed, too_small).code(), Code::kInvalidArgument);
  Bytes overlapping = sealed;
  overlapping.push_back(0);
  EXPECT_EQ(s.responder.receive
                .decrypt_into({}, ByteView(overlapping).first(sealed.size()),
                              std::span<std::uint8_t>(overlapping).subspan(1))
                .code(),
            Code::kInternal);
  EXPECT_EQ(s.responder.receive.nonce(), 0u);
  Bytes opened(msg.size());
  ASSERT_TRUE(s.responder.receive.decrypt_into({}, sealed, opened).is_ok());
  EXPECT_EQ(opened, msg);

  s.initiator.send.set_nonce(kNoiseNonceReserved);
  EXPECT_EQ(s.initiator.send.encrypt_into({}, msg, sealed).code(), Code::kRefused);
  s.responder.receive.set_nonce(kNoiseNonceReserved);
  EXPECT_EQ(s.responder.receive.decrypt_into({}, sealed, opened).code(), Code::kRefused);
}

TEST_F(NoiseTest, NonceExhaustionIsRefused) {
  Session s = connected_session(NoisePattern::kXX);
  s.initiator.send.set_nonce(kNoiseNonceReserved - 1);
  s.responder.receive.set_nonce(kNoiseNonceReserved - 1);
  auto last = s.initiator.send.encrypt_with_ad({}, bytes_of("last"));
  ASSERT_TRUE(last.is_ok());  // 2^64-2 is the last usable nonce
  EXPECT_TRUE(s.responder.receive.decrypt_with_ad({}, *last).is_ok());

  auto refused = s.initiator.send.encrypt_with_ad({}, bytes_of("one too many"));
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), Code::kRefused);
  EXPECT_EQ(s.responder.receive.decrypt_with_ad({}, *last).status().code(), Code::kRefused);
  EXPECT_EQ(s.initiator.send.nonce(), kNoiseNonceReserved);
}

TEST_F(NoiseTest, FixedEphemeralMakesHandshakeDeterministic) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  auto ea = X25519KeyPair::generate();
  auto eb = X25519KeyPair::generate();
  std::vector<Bytes> transcripts[2];
  for (auto& transcript : transcripts) {
    Parties p = make_parties(NoisePattern::kXX, a, b, {}, {});
    ASSERT_TRUE(p.initiator.set_fixed_ephemeral(ea).is_ok());
    ASSERT_TRUE(p.responder.set_fixed_ephemeral(eb).is_ok());
    for (int i = 0; !p.initiator.is_complete(); ++i) {
      HandshakeState& sender = i % 2 == 0 ? p.initiator : p.responder;
      HandshakeState& receiver = i % 2 == 0 ? p.responder : p.initiator;
      auto m = sender.write_message({});
      ASSERT_TRUE(m.is_ok());
      ASSERT_TRUE(receiver.read_message(*m).is_ok());
      transcript.push_back(*m);
    }
    EXPECT_FALSE(p.initiator.set_fixed_ephemeral(ea).is_ok());  // too late once e was sent
  }
  EXPECT_EQ(transcripts[0], transcripts[1]);
  EXPECT_EQ(Bytes(transcripts[0][0].begin(), transcripts[0][0].begin() + 32),
            Bytes(ea.public_key().begin(), ea.public_key().end()));
}

// The published vectors (Noise wiki format) for the two protocols Outpost implements, run
// through the same API a link uses: every handshake and transport ciphertext, and the hash.
TEST_F(NoiseTest, PublishedXxAndIkVectorsMatchByteForByte) {
  const std::filesystem::path path =
      std::filesystem::path(OUTPOST_SOURCE_DIR) / "tests" / "vectors" / "noise" / "cacophony.txt";
  ASSERT_TRUE(std::filesystem::exists(path))
      << "Noise test vectors missing: " << path.string() << " (see tests/vectors/noise/README.md)";
  nlohmann::json doc;
  try {
    std::ifstream in(path);
    doc = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    FAIL() << "cannot parse " << path.string() << ": " << e.what();
  }
  auto hex = [](const nlohmann::json& v, const char* key) {
    return from_hex(v.at(key).get<std::string>()).value();
  };
  int ran = 0;
  for (const auto& v : doc.at("vectors")) {
    const std::string name = v.value("protocol_name", "");
    std::optional<NoisePattern> pattern;
    if (name == noise_protocol_name(NoisePattern::kXX)) {
      pattern = NoisePattern::kXX;
    }
    if (name == noise_protocol_name(NoisePattern::kIK)) {
      pattern = NoisePattern::kIK;
    }
    if (!pattern) {
      continue;
    }
    SCOPED_TRACE(name);
    ++ran;
    auto party = [&](NoiseRole role) {
      const std::string pre = role == NoiseRole::kInitiator ? "init_" : "resp_";
      auto s = X25519KeyPair::from_private(hex(v, (pre + "static").c_str())).value();
      auto e = X25519KeyPair::from_private(hex(v, (pre + "ephemeral").c_str())).value();
      std::optional<PublicKey> rs;
      if (v.contains(pre + "remote_static")) {
        const Bytes r = hex(v, (pre + "remote_static").c_str());
        rs.emplace();
        std::copy(r.begin(), r.end(), rs->begin());
      }
      auto hs =
          HandshakeState::create(*pattern, role, hex(v, (pre + "prologue").c_str()), s, rs).value();
      OUTPOST_CHECK(hs.set_fixed_ephemeral(e).is_ok());
      return hs;
    };
    HandshakeState init_hs = party(NoiseRole::kInitiator);
    HandshakeState resp_hs = party(NoiseRole::kResponder);
    std::optional<NoiseTransport> init_t;
    std::optional<NoiseTransport> resp_t;
    const auto& messages = v.at("messages");
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const bool from_init = i % 2 == 0;
      const Bytes payload = hex(messages[i], "payload");
      const Bytes expected = hex(messages[i], "ciphertext");
      Bytes got;
      Bytes read;
      if (!init_hs.is_complete()) {
        got = (from_init ? init_hs : resp_hs).write_message(payload).value();
        read = (from_init ? resp_hs : init_hs).read_message(got).value();
      } else {
        if (!init_t) {
          const Bytes hash(init_hs.handshake_hash().begin(), init_hs.handshake_hash().end());
          EXPECT_EQ(to_hex(hash), to_hex(hex(v, "handshake_hash")));
          init_t.emplace(init_hs.split().value());
          resp_t.emplace(resp_hs.split().value());
        }
        got = (from_init ? init_t->send : resp_t->send).encrypt_with_ad({}, payload).value();
        read = (from_init ? resp_t->receive : init_t->receive).decrypt_with_ad({}, got).value();
      }
      EXPECT_EQ(to_hex(got), to_hex(expected)) << "message " << i;
      EXPECT_EQ(read, payload) << "message " << i;
    }
    EXPECT_TRUE(init_t.has_value()) << "vector never finished its handshake";
  }
  EXPECT_GE(ran, 2) << "expected at least one XX and one IK vector in " << path.string();
}

}  // namespace
}  // namespace outpost::crypto
