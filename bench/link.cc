// bench_link: bulk transfer over one encrypted link on loopback (node::Link: framing, Noise
// transport with ChaCha20-Poly1305, reassembly, TCP) next to the raw single-core
// ChaCha20-Poly1305 rate of libsodium measured in the same run, and full link handshakes per
// second (TCP connect, Noise XX, certificate and roster checks, confirmation) next to raw X25519
// operations per second. Sender and receiver each run their own io_context thread.
//
// For context it also prints the CPU time each thread of the bulk transfer spent per MB (which
// other load on the machine hardly changes, unlike MB/s) and the rate of raw encryption and
// decryption pipelined on two threads, the most two cores can do with this cipher here.
//
//   bench_link [--seconds S] [--message-kib K]
//
// Bounded: each of the five phases runs about S seconds (default 3; at most 4.5 s each), so the
// whole run stays under 25 s.
#include "outpost/node/link.h"

#include <pthread.h>
#include <sodium.h>
#include <time.h>

#include <array>
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

#include "bench_args.h"
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

// CPU seconds a thread has consumed so far (user + system), whatever else runs on the machine.
double thread_cpu_seconds(pthread_t thread) {
  clockid_t id;
  timespec ts{};
  if (pthread_getcpuclockid(thread, &id) != 0 || clock_gettime(id, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{asio::make_work_guard(io)};
  std::thread thread{[this] { io.run(); }};
  double cpu_seconds() { return thread_cpu_seconds(thread.native_handle()); }
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
    sync::SystemEnv clock;
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

struct RawResult {
  double mb_s = 0;
  double cpu_us_per_mb = 0;  // CPU time of the encrypting thread per MB
};

RawResult raw_chachapoly(double seconds) {
  std::vector<unsigned char> key(crypto_aead_chacha20poly1305_ietf_KEYBYTES);
  std::vector<unsigned char> nonce(crypto_aead_chacha20poly1305_ietf_NPUBBYTES, 0);
  randombytes_buf(key.data(), key.size());
  const std::size_t n = 65535 - 16;  // one full Noise transport payload
  std::vector<unsigned char> plain(n, 0x5a), out(n + 16);
  std::uint64_t bytes = 0, counter = 0;
  const double cpu_start = thread_cpu_seconds(pthread_self());
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
  const double mb = static_cast<double>(bytes) / 1e6;
  return {mb / seconds_since(start), (thread_cpu_seconds(pthread_self()) - cpu_start) * 1e6 / mb};
}

// Context for the link figure, not its baseline: encryption on this thread and decryption on a
// second one, 64 KiB blocks handed over through a ring of 16 (no TCP, no framing, no copies).
// This is what two cores of this machine do with the link's cipher alone, hand-over between
// cores included; a link on two cores cannot beat it.
double raw_pipelined_mb_s(double seconds) {
  constexpr std::size_t kSlots = 16;
  const std::size_t n = 65535 - 16;
  std::vector<unsigned char> key(crypto_aead_chacha20poly1305_ietf_KEYBYTES);
  randombytes_buf(key.data(), key.size());
  std::vector<std::vector<unsigned char>> slots(kSlots, std::vector<unsigned char>(n + 16));
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t produced = 0, consumed = 0;
  bool stop = false;
  auto nonce_for = [](std::uint64_t counter) {
    std::array<unsigned char, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
    std::memcpy(nonce.data() + 4, &counter, 8);
    return nonce;
  };
  std::thread decryptor([&] {
    std::vector<unsigned char> plain(n);
    for (;;) {
      std::uint64_t next;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return produced > consumed || stop; });
        if (produced == consumed) return;
        next = consumed;
      }
      const auto nonce = nonce_for(next);
      std::vector<unsigned char>& slot = slots[next % kSlots];
      if (crypto_aead_chacha20poly1305_ietf_decrypt(plain.data(), nullptr, nullptr, slot.data(),
                                                    slot.size(), nullptr, 0, nonce.data(),
                                                    key.data()) != 0) {
        std::abort();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        ++consumed;
      }
      cv.notify_all();
    }
  });
  std::vector<unsigned char> plain(n, 0x5a);
  const auto start = Clock::now();
  for (std::uint64_t i = 0; seconds_since(start) < seconds; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return produced - consumed < kSlots; });
    }
    const auto nonce = nonce_for(i);
    crypto_aead_chacha20poly1305_ietf_encrypt(slots[i % kSlots].data(), nullptr, plain.data(), n,
                                              nullptr, 0, nullptr, nonce.data(), key.data());
    {
      std::lock_guard<std::mutex> lock(mu);
      ++produced;
    }
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  decryptor.join();
  return static_cast<double>(consumed * n) / 1e6 / seconds_since(start);
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

struct BulkResult {
  double mb_s = 0;
  // CPU time per MB delivered of the sender's io thread (framing, encryption, socket writes),
  // the receiver's io thread (socket reads, decryption, reassembly) and the thread calling
  // send() (the benchmark copies its message into each call).
  double sender_cpu_us_per_mb = 0;
  double receiver_cpu_us_per_mb = 0;
  double caller_cpu_us_per_mb = 0;
};

BulkResult link_bulk(World& w, double seconds, std::size_t message_bytes) {
  IoThread server_io, client_io;
  std::atomic<std::uint64_t> received{0};
  std::shared_ptr<node::Link> server_side;
  std::mutex mu;
  auto listener = node::LinkListener::listen(
      server_io.io, {"127.0.0.1", 0}, w.b, [&](std::shared_ptr<node::Link> link) {
        link->set_handlers([&](const Bytes& m) { received += m.size(); }, [](const Status&) {});
        std::lock_guard<std::mutex> lock(mu);
        server_side = std::move(link);
      });
  if (!listener.is_ok()) std::abort();
  auto link = dial(client_io, (*listener)->local_endpoint(), w.a);
  if (!link) std::abort();
  Bytes message(message_bytes, 0xa5);
  std::uint64_t sent = 0;
  const double sender_cpu_start = client_io.cpu_seconds();
  const double receiver_cpu_start = server_io.cpu_seconds();
  const double caller_cpu_start = thread_cpu_seconds(pthread_self());
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
  const double mb = static_cast<double>(received.load()) / 1e6;
  BulkResult r;
  r.mb_s = mb / elapsed;
  r.sender_cpu_us_per_mb = (client_io.cpu_seconds() - sender_cpu_start) * 1e6 / mb;
  r.receiver_cpu_us_per_mb = (server_io.cpu_seconds() - receiver_cpu_start) * 1e6 / mb;
  r.caller_cpu_us_per_mb = (thread_cpu_seconds(pthread_self()) - caller_cpu_start) * 1e6 / mb;
  link->close(Status::ok());
  (*listener)->close();
  link.reset();
  std::lock_guard<std::mutex> lock(mu);
  server_side.reset();
  return r;
}

double link_handshakes_s(World& w, double seconds, std::uint64_t& count) {
  IoThread server_io, client_io;
  auto listener = node::LinkListener::listen(server_io.io, {"127.0.0.1", 0}, w.b,
                                             [](const std::shared_ptr<node::Link>&) {});
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
      seconds = outpost::bench::seconds_arg("--seconds", argv[++i], 0.1, 600);
    } else if (a == "--message-kib" && i + 1 < argc) {
      message_kib =
          static_cast<std::size_t>(outpost::bench::int_arg("--message-kib", argv[++i], 1, 65536));
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

  const RawResult raw = raw_chachapoly(seconds);
  const BulkResult bulk = link_bulk(world, seconds, message_kib * 1024);
  const double pipelined_mb_s = raw_pipelined_mb_s(seconds);
  const double x25519_s = raw_x25519_ops_s(seconds);
  std::uint64_t handshakes = 0;
  const double hs_s = link_handshakes_s(world, seconds, handshakes);

  std::printf(
      "bench_link (loopback TCP, sender and receiver on separate threads, %zu KiB messages)\n",
      message_kib);
  std::printf("  raw ChaCha20-Poly1305 encrypt, 64 KiB blocks, 1 core  %9.1f MB/s\n", raw.mb_s);
  std::printf("  link bulk transfer (encrypt + TCP + decrypt)          %9.1f MB/s   %.2fx raw\n",
              bulk.mb_s, bulk.mb_s / raw.mb_s);
  std::printf(
      "  CPU per MB: raw encrypt %.0f us; link sender io thread %.0f us, receiver io thread "
      "%.0f us, send() caller %.0f us\n",
      raw.cpu_us_per_mb, bulk.sender_cpu_us_per_mb, bulk.receiver_cpu_us_per_mb,
      bulk.caller_cpu_us_per_mb);
  std::printf(
      "  context: raw encrypt | decrypt pipelined on 2 threads  %9.1f MB/s   %.2fx raw "
      "(the 2-core ceiling of this cipher here)\n",
      pipelined_mb_s, pipelined_mb_s / raw.mb_s);
  std::printf("  raw X25519 scalar multiplications, 1 core             %9.0f ops/s\n", x25519_s);
  std::printf(
      "  link full handshakes (connect, XX, certs, confirm)    %9.1f /s      %.4fx raw "
      "(%llu handshakes; XX needs 8 X25519 ops: ceiling %.0f /s)\n",
      hs_s, hs_s / x25519_s, static_cast<unsigned long long>(handshakes), x25519_s / 8);
  return 0;
}
