// bench_link: bulk transfer over one encrypted link on loopback (node::Link: framing, Noise
// transport with ChaCha20-Poly1305, reassembly, TCP) next to the raw single-core
// ChaCha20-Poly1305 rate of libsodium measured in the same run, and full link handshakes per
// second (TCP connect, Noise XX, certificate and roster checks, confirmation) next to raw X25519
// operations per second. Sender and receiver each run their own io_context thread.
//
//   bench_link [--seconds S] [--message-kib K]
//
// Bounded: each of the four phases runs about S seconds (default 3; at most 4.5 s each), so the
// whole run stays under 20 s.
#include "outpost/node/link.h"

#include <sodium.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "outpost/crypto/crypto.h"
#include "outpost/node/log.h"

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using outpost::Status;
using outpost::sync::Bytes;
namespace node = outpost::node;
namespace sync = outpost::sync;
namespace crypto = outpost::crypto;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{asio::make_work_guard(io)};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    guard.reset();
    io.stop();
    thread.join();
  }
};

// Two enrolled nodes of one network.
struct World {
  crypto::SigningKey root = crypto::SigningKey::generate();
  sync::NetworkId network{};
  std::shared_ptr<const sync::Roster> roster;
  node::LinkContext a, b;

  World() {
    crypto::random_bytes(network);
    auto r = std::make_shared<sync::Roster>();
    r->network_id = network;
    r->version = 1;
    a = make("bench-a", *r);
    b = make("bench-b", *r);
    roster = r;
    a.roster = b.roster = [r = roster] { return r; };
  }

  node::LinkContext make(const std::string& name, sync::Roster& r) {
    node::LinkContext c;
    c.noise_key = std::make_shared<const crypto::X25519KeyPair>(crypto::X25519KeyPair::generate());
    sync::Certificate cert;
    cert.network_id = network;
    crypto::random_bytes(cert.node_id);
    cert.signing_key = crypto::SigningKey::generate().public_key();
    cert.noise_key = c.noise_key->public_key();
    sync::SystemClock clock;
    cert.valid_from_ms = clock.now_ms() - 60'000;
    cert.valid_until_ms = clock.now_ms() + 3'600'000;
    cert.name = name;
    c.certificate = sync::sign_certificate(cert, root);
    c.network_id = network;
    c.root_key = root.public_key();
    if (!r.put_certificate(c.certificate).is_ok()) std::abort();
    return c;
  }
};

double raw_chachapoly_mb_s(double seconds) {
  std::vector<unsigned char> key(crypto_aead_chacha20poly1305_ietf_KEYBYTES);
  std::vector<unsigned char> nonce(crypto_aead_chacha20poly1305_ietf_NPUBBYTES, 0);
  randombytes_buf(key.data(), key.size());
  const std::size_t n = 65535 - 16;  // one full Noise transport payload
  std::vector<unsigned char> plain(n, 0x5a), out(n + 16);
  std::uint64_t bytes = 0, counter = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    for (int i = 0; i < 64; ++i) {
      std::memcpy(nonce.data() + 4, &++counter, 8);
      unsigned long long len = 0;
      crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &len, plain.data(), n, nullptr, 0,
                                                nullptr, nonce.data(), key.data());
      bytes += n;
    }
  }
  return static_cast<double>(bytes) / 1e6 / seconds_since(start);
}

double raw_x25519_ops_s(double seconds) {
  unsigned char scalar[32], point[32], out[32];
  randombytes_buf(scalar, sizeof scalar);
  crypto_scalarmult_base(point, scalar);
  std::uint64_t ops = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    for (int i = 0; i < 64; ++i) {
      if (crypto_scalarmult(out, scalar, point) != 0) std::abort();
      scalar[0] ^= out[0];
      ++ops;
    }
  }
  return static_cast<double>(ops) / seconds_since(start);
}

// Connects with `ctx` to `to` and returns the client link, or null.
std::shared_ptr<node::Link> dial(IoThread& io, const node::Endpoint& to,
                                 const node::LinkContext& ctx) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<outpost::Result<std::shared_ptr<node::Link>>> result;
  node::async_connect(io.io, to, ctx, [&](outpost::Result<std::shared_ptr<node::Link>> r) {
    std::lock_guard<std::mutex> lock(mu);
    result.emplace(std::move(r));
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  if (!result->is_ok()) {
    std::fprintf(stderr, "bench_link: connect failed: %s\n", result->status().to_string().c_str());
    return nullptr;
  }
  return result->value();
}

double link_bulk_mb_s(World& w, double seconds, std::size_t message_bytes) {
  IoThread server_io, client_io;
  std::atomic<std::uint64_t> received{0};
  std::shared_ptr<node::Link> server_side;
  std::mutex mu;
  auto listener = node::LinkListener::listen(
      server_io.io, {"127.0.0.1", 0}, w.b, [&](std::shared_ptr<node::Link> link) {
        link->set_handlers([&](Bytes m) { received += m.size(); }, [](const Status&) {});
        std::lock_guard<std::mutex> lock(mu);
        server_side = std::move(link);
      });
  if (!listener.is_ok()) std::abort();
  auto link = dial(client_io, (*listener)->local_endpoint(), w.a);
  if (!link) std::abort();
  Bytes message(message_bytes, 0xa5);
  std::uint64_t sent = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    Status st = link->send(message);
    if (st.is_ok()) {
      sent += message.size();
    } else if (st.code() == outpost::Code::kUnavailable && link->is_open()) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // queue full: back off
    } else {
      std::fprintf(stderr, "bench_link: send failed: %s\n", st.to_string().c_str());
      std::abort();
    }
  }
  while (received.load() < sent && seconds_since(start) < seconds + 10) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const double elapsed = seconds_since(start);
  link->close(Status::ok());
  (*listener)->close();
  link.reset();
  std::lock_guard<std::mutex> lock(mu);
  server_side.reset();
  return static_cast<double>(received.load()) / 1e6 / elapsed;
}

double link_handshakes_s(World& w, double seconds, std::uint64_t& count) {
  IoThread server_io, client_io;
  auto listener = node::LinkListener::listen(server_io.io, {"127.0.0.1", 0}, w.b,
                                             [](std::shared_ptr<node::Link>) {});
  if (!listener.is_ok()) std::abort();
  const node::Endpoint to = (*listener)->local_endpoint();
  count = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    auto link = dial(client_io, to, w.a);  // one full handshake, sequentially
    if (!link) std::abort();
    ++count;
  }
  const double rate = static_cast<double>(count) / seconds_since(start);
  (*listener)->close();
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  std::size_t message_kib = 1024;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--message-kib" && i + 1 < argc) {
      message_kib = static_cast<std::size_t>(std::atol(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--message-kib K]\n", argv[0]);
      return 2;
    }
  }
  if (seconds <= 0 || seconds > 4.5 || message_kib == 0 || message_kib > 4096) {
    std::fprintf(stderr, "bench_link: --seconds must be in (0, 4.5], --message-kib in 1..4096\n");
    return 2;
  }
  if (!crypto::init().is_ok()) return 3;
  node::set_log_level(node::LogLevel::kError);  // one info line per handshake otherwise
  World world;

  const double raw_mb_s = raw_chachapoly_mb_s(seconds);
  const double link_mb_s = link_bulk_mb_s(world, seconds, message_kib * 1024);
  const double x25519_s = raw_x25519_ops_s(seconds);
  std::uint64_t handshakes = 0;
  const double hs_s = link_handshakes_s(world, seconds, handshakes);

  std::printf(
      "bench_link (loopback TCP, sender and receiver on separate threads, %zu KiB messages)\n",
      message_kib);
  std::printf("  raw ChaCha20-Poly1305 encrypt, 64 KiB blocks, 1 core  %9.1f MB/s\n", raw_mb_s);
  std::printf("  link bulk transfer (encrypt + TCP + decrypt)          %9.1f MB/s   %.2fx raw\n",
              link_mb_s, link_mb_s / raw_mb_s);
  std::printf("  raw X25519 scalar multiplications, 1 core             %9.0f ops/s\n", x25519_s);
  std::printf(
      "  link full handshakes (connect, XX, certs, confirm)    %9.1f /s      %.4fx raw "
      "(%llu handshakes; XX needs 8 X25519 ops: ceiling %.0f /s)\n",
      hs_s, hs_s / x25519_s, static_cast<unsigned long long>(handshakes), x25519_s / 8);
  return 0;
}
