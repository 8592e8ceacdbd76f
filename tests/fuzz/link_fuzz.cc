// libFuzzer target for the link decoders (sync/secure_channel.h, sync/roster.h): bytes a hostile
// peer controls. The first input byte picks what the rest feeds:
//   0  a responder's receive(), from the first handshake message on, split in chunks
//   1  an initiator's receive() after it sent message 1 (the peer's message 2 onwards)
//   2  an open channel's receive(): the rest are plaintext frames (u16 LE length + bytes) that
//      the harness encrypts as the real peer would, optionally with one ciphertext bit flipped
//   3  the canonical decoders: roster, certificate (wire form), handshake payload
// Built with clang -fsanitize=fuzzer,address,undefined (tests/fuzz/CMakeLists.txt); run by
// scripts/fuzz.sh. Any crash, sanitizer report or broken invariant (OUTPOST_CHECK) is a finding.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "outpost/crypto/crypto.h"
#include "outpost/crypto/noise.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/secure_channel.h"

namespace {

using namespace outpost;
using sync::Bytes;
using sync::ByteView;

constexpr std::uint64_t kNowMs = 1'800'000'000'000;

template <std::size_t N>
std::array<std::uint8_t, N> run_from(std::uint8_t first) {
  std::array<std::uint8_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(first + i);
  return a;
}

// Two enrolled nodes of one network and their roster, built once from fixed seeds.
struct World {
  crypto::SigningKey root = crypto::SigningKey::from_seed(run_from<32>(1)).value();
  sync::NetworkId network = run_from<16>(0x10);
  std::shared_ptr<const sync::Roster> roster;
  sync::ChannelConfig a, b;

  World() {
    auto r = std::make_shared<sync::Roster>();
    r->network_id = network;
    r->version = 1;
    a = make("alpha", 0x40, *r);
    b = make("beta", 0x80, *r);
    roster = r;
    a.roster = b.roster = [r = roster] { return r; };
  }

  sync::ChannelConfig make(const char* name, std::uint8_t seed, sync::Roster& r) {
    sync::ChannelConfig cfg;
    cfg.noise_key = std::make_shared<const crypto::X25519KeyPair>(
        crypto::X25519KeyPair::from_private(run_from<32>(seed)).value());
    sync::Certificate c;
    c.network_id = network;
    c.node_id = run_from<16>(seed);
    c.signing_key = crypto::SigningKey::from_seed(run_from<32>(seed + 1))->public_key();
    c.noise_key = cfg.noise_key->public_key();
    c.valid_from_ms = kNowMs - 1000;
    c.valid_until_ms = kNowMs + 1000;
    c.name = name;
    cfg.certificate = sync::sign_certificate(c, root);
    cfg.network_id = network;
    cfg.root_key = root.public_key();
    cfg.rekey_after_messages = 4;  // exercise rekey on short inputs
    if (!r.put_certificate(cfg.certificate).is_ok()) __builtin_trap();
    return cfg;
  }
};

World& world() {
  static World* w = [] {
    if (!crypto::init().is_ok()) __builtin_trap();
    return new World();
  }();
  return *w;
}

// Feeds `data` to `ch` in chunks of 1..256 bytes chosen by `chunk`; stops at the first error.
void feed(sync::SecureChannel& ch, ByteView data, std::uint8_t chunk) {
  const std::size_t step = std::size_t{chunk} + 1;
  for (std::size_t pos = 0; pos < data.size();) {
    const std::size_t n = std::min(step, data.size() - pos);
    sync::ChannelOutput out;
    if (!ch.receive(data.subspan(pos, n), kNowMs, out).is_ok()) return;
    pos += n;
  }
}

// Opens a real channel pair in memory; nullopt if the handshake failed (it must not).
std::optional<std::pair<sync::SecureChannel, sync::SecureChannel>> open_pair() {
  World& w = world();
  auto init = sync::SecureChannel::create(crypto::NoiseRole::kInitiator, w.a);
  auto resp = sync::SecureChannel::create(crypto::NoiseRole::kResponder, w.b);
  if (!init.is_ok() || !resp.is_ok()) __builtin_trap();
  sync::ChannelOutput m1, m2, m3, confirm;
  if (!init->start(m1).is_ok() || !resp->receive(m1.wire, kNowMs, m2).is_ok() ||
      !init->receive(m2.wire, kNowMs, m3).is_ok() ||
      !resp->receive(m3.wire, kNowMs, confirm).is_ok() ||
      !init->receive(confirm.wire, kNowMs, m1).is_ok() || !init->is_open()) {
    __builtin_trap();  // a good handshake failing is a bug
  }
  return std::make_pair(std::move(init).value(), std::move(resp).value());
}

void fuzz_transport(ByteView data, std::uint8_t control) {
  auto pair = open_pair();
  auto& [sender, receiver] = *pair;
  Bytes wire;
  sync::ByteReader r(data);
  std::uint16_t len = 0;
  while (r.u16(len)) {
    Bytes plain(std::min<std::size_t>(len, std::min(r.remaining(), sync::kFrameDataBytesMax + 1)));
    if (!r.raw(plain)) break;
    if (!sender.encrypt_frame_for_testing(plain, wire).is_ok()) break;
  }
  if ((control & 0x80) && !wire.empty()) wire[(control & 0x7f) * 131u % wire.size()] ^= 0x01;
  feed(receiver, wire, control & 0x7f);
}

void fuzz_decoders(ByteView data) {
  (void)sync::decode_roster(data);
  (void)sync::decode_certificate(data);
  (void)sync::decode_handshake_payload(data);
  sync::ByteReader r(data);
  (void)sync::read_signed_certificate(r);
  World& w = world();
  if (data.size() > 64) {
    (void)sync::verify_roster(data.subspan(64), data.first(64), w.root.public_key(), w.network);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size < 2) return 0;
  World& w = world();
  const ByteView data(bytes + 2, size - 2);
  switch (bytes[0] % 4) {
    case 0: {
      auto resp = sync::SecureChannel::create(crypto::NoiseRole::kResponder, w.b);
      feed(*resp, data, bytes[1]);
      break;
    }
    case 1: {
      auto init = sync::SecureChannel::create(crypto::NoiseRole::kInitiator, w.a);
      sync::ChannelOutput m1;
      if (!init->start(m1).is_ok()) __builtin_trap();
      feed(*init, data, bytes[1]);
      break;
    }
    case 2:
      fuzz_transport(data, bytes[1]);
      break;
    default:
      fuzz_decoders(data);
  }
  return 0;
}
