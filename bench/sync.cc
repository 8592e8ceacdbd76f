// bench_sync: how fast HQ ingests a store's log over a real Noise link, and what it costs on the
// wire. A store that was cut off from HQ (not running) builds up N signed wallet top-ups; then
// HQ and the store start as real daemons (outpostd's Daemon, in this process on their own
// threads, on temporary data dirs, enrolled through the same functions as the CLI) and the store
// reconnects. Measured:
//   - time to converge: from the store's start until HQ's version vector holds all its ops;
//   - HQ ingest ops/s over that time (receive, verify, store, apply, ack), next to raw Ed25519
//     verifications/s on one core measured in the same run (target >= 0.7x);
//   - TCP bytes per op on the store's link (Noise handshake, frames, tags, sync messages), next
//     to the op's signed size (signed bytes + 64-byte signature; target <= 1.2x).
//
//   bench_sync [--ops N] [--dir DIR] [--max-seconds S]
//
// Bounded: N ops (default 20000, at most 200000); gives up after S seconds (default 120).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.h"
#include "outpost/crypto/crypto.h"
#include "outpost/net/http_client.h"
#include "outpost/node/config.h"
#include "outpost/node/daemon.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/log.h"

namespace {

using Clock = std::chrono::steady_clock;
using outpost::Status;
using outpost::node::Json;
namespace node = outpost::node;
namespace crypto = outpost::crypto;

constexpr double kTargetIngestVsVerify = 0.7;
constexpr double kTargetWireVsSigned = 1.2;
constexpr int kMembers = 50;
constexpr int kOpsPerCommit = 500;  // setup only: the offline store's ops, in few transactions

[[noreturn]] void die(const std::string& what, const Status& st) {
  std::cerr << "bench_sync: " << what << ": " << st.to_string() << "\n";
  std::exit(1);
}

template <typename T>
T must(outpost::Result<T> r, const std::string& what) {
  if (!r.is_ok()) die(what, r.status());
  return std::move(r).value();
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Raw Ed25519 verifications per second on one core, of a message the size of a signed op.
double raw_verify_per_s(std::size_t message_bytes, double seconds) {
  crypto::SigningKey key = crypto::SigningKey::generate();
  std::vector<std::uint8_t> msg(message_bytes, 0x5a);
  const crypto::Signature sig = key.sign(msg);
  std::uint64_t n = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    for (int i = 0; i < 256; ++i) {
      if (!crypto::verify(key.public_key(), msg, sig)) {
        std::cerr << "bench_sync: baseline signature failed to verify\n";
        std::exit(1);
      }
    }
    n += 256;
  }
  return static_cast<double>(n) / seconds_since(start);
}

struct Node {
  std::string dir;
  std::string admin_token;
};

std::string admin_terminal(const std::string& dir, outpost::sync::Clock& clock) {
  auto ledger = must(node::Ledger::open(dir, clock), "open " + dir);
  return must(ledger->add_terminal("bench-admin", "admin"), "terminal");
}

// HQ and one enrolled store, as `outpost hq init`, `enroll-request`, `hq enroll`, `init --enroll`.
void enroll(const Node& hq, const Node& store, outpost::sync::Clock& clock) {
  must(node::hq_init(hq.dir, "hq", node::kHqValidDaysDefault, clock), "hq init");
  if (auto st = node::Ledger::init(store.dir, {"store-1", "store"}); !st.is_ok()) die("init", st);
  Json request = must(node::make_enroll_request(store.dir), "enroll-request");
  Json enrollment = must(node::hq_enroll(hq.dir, "store-1", outpost::sync::NodeRole::kStore, request,
                                         node::kNodeValidDaysDefault, clock),
                         "hq enroll");
  must(node::install_enrollment(store.dir, enrollment), "init --enroll");
}

struct OfflineLog {
  std::string origin;
  std::uint64_t ops = 0;
  double signed_bytes_per_op = 0;  // signed bytes + signature
};

// The store's ops while it cannot reach anyone: kMembers enrollments, then top-ups.
OfflineLog build_offline_log(const std::string& dir, int topups, outpost::sync::Clock& clock) {
  auto ledger = must(node::Ledger::open(dir, clock), "open store");
  std::vector<outpost::sync::MemberId> members;
  if (auto st = ledger->begin_batch(); !st.is_ok()) die("begin", st);
  for (int i = 0; i < kMembers; ++i) {
    auto r = must(ledger->enroll({"e-" + std::to_string(i), std::to_string(60000000 + i), "Bench " + std::to_string(i), "", ""}),
                  "enroll");
    members.push_back(r.done.member);
  }
  for (int i = 0; i < topups; ++i) {
    if (i % kOpsPerCommit == kOpsPerCommit - 1) {
      if (auto st = ledger->commit_batch(); !st.is_ok()) die("commit", st);
      if (auto st = ledger->begin_batch(); !st.is_ok()) die("begin", st);
    }
    auto r = must(ledger->topup("t-" + std::to_string(i), members[static_cast<std::size_t>(i) % members.size()], 100, ""),
                  "topup");
    if (r.refused) die("topup", Status::refused(r.refusal.message));
  }
  if (auto st = ledger->commit_batch(); !st.is_ok()) die("commit", st);
  OfflineLog log;
  log.origin = outpost::sync::id_hex(ledger->node_id());
  std::uint64_t bytes = 0;
  for (std::uint64_t seq = 1;;) {
    auto ops = must(ledger->store().ops_of_origin(ledger->node_id(), seq, 4096), "read ops");
    if (ops.empty()) break;
    for (const auto& op : ops) bytes += op.signed_bytes.size() + op.sig.size();
    log.ops += ops.size();
    seq = ops.back().op.seq + 1;
  }
  log.signed_bytes_per_op = log.ops ? static_cast<double>(bytes) / static_cast<double>(log.ops) : 0;
  return log;
}

struct Running {
  std::unique_ptr<node::Daemon> daemon;
  std::thread thread;
  void stop() {
    daemon->stop();
    thread.join();
  }
};

Running start_daemon(const std::string& dir, const std::string& role, std::vector<node::PeerConfig> peers,
                     outpost::sync::Clock& clock) {
  node::Config c;
  c.data_dir = dir;
  c.role = role;
  c.api = {"127.0.0.1", 0};
  c.admin = {"127.0.0.1", 0};
  c.peer = {"127.0.0.1", 0};
  c.peers = std::move(peers);
  c.sync_interval_ms = 200;
  Running r;
  r.daemon = must(node::Daemon::create(c, clock), "daemon " + dir);
  if (auto st = r.daemon->start(); !st.is_ok()) die("start " + dir, st);
  r.thread = std::thread([d = r.daemon.get()] { d->run(); });
  return r;
}

Json admin_get(std::uint16_t port, const std::string& token, const std::string& path) {
  auto res = outpost::net::http_request({"127.0.0.1", port}, {"GET", path, token, {}, ""});
  if (res.status != 200) return Json();
  Json j = Json::parse(res.body, nullptr, false);
  return j.is_discarded() ? Json() : j;
}

}  // namespace

int main(int argc, char** argv) {
  int topups = 20000;
  double max_seconds = 120;
  std::string base;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--ops" && i + 1 < argc) {
      topups = static_cast<int>(outpost::bench::int_arg("--ops", argv[++i], 1, 200000));
    } else if (a == "--dir" && i + 1 < argc) {
      base = argv[++i];
    } else if (a == "--max-seconds" && i + 1 < argc) {
      max_seconds = outpost::bench::seconds_arg("--max-seconds", argv[++i], 0.1, 3600);
    } else {
      std::cerr << "usage: bench_sync [--ops N (1..200000, default 20000)] [--dir DIR] [--max-seconds S]\n";
      return 2;
    }
  }
  if (topups < 1 || topups > 200000 || max_seconds <= 0 || max_seconds > 600) {
    std::cerr << "bench_sync: --ops must be 1..200000 and --max-seconds 0..600\n";
    return 2;
  }
  if (base.empty()) base = std::filesystem::temp_directory_path().string();
  std::string tmpl = base + "/outpost-bench-sync-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::cerr << "bench_sync: mkdtemp failed in " << base << "\n";
    return 1;
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{tmpl};
  if (!crypto::init().is_ok()) return 1;
  node::set_log_level(node::LogLevel::kError);
  outpost::sync::SystemEnv clock;

  Node hq{tmpl + "/hq", ""}, store{tmpl + "/store-1", ""};
  enroll(hq, store, clock);
  hq.admin_token = admin_terminal(hq.dir, clock);
  store.admin_token = admin_terminal(store.dir, clock);
  std::cout << "bench_sync: building the cut-off store's log (" << kMembers << " enrollments + " << topups
            << " top-ups)...\n";
  const OfflineLog log = build_offline_log(store.dir, topups, clock);

  const double raw_verify = raw_verify_per_s(static_cast<std::size_t>(log.signed_bytes_per_op) - 64, 2.0);

  Running hqd = start_daemon(hq.dir, "hq", {}, clock);
  const node::Endpoint hq_peer = hqd.daemon->peer_endpoint();
  const std::uint16_t hq_admin = hqd.daemon->admin_endpoint().port;
  const auto start = Clock::now();
  Running sd = start_daemon(store.dir, "store", {{"hq", hq_peer}}, clock);
  const std::uint16_t store_admin = sd.daemon->admin_endpoint().port;

  std::uint64_t at_hq = 0;
  double converge_s = 0;
  while (true) {
    Json j = admin_get(hq_admin, hq.admin_token, "/admin/v1/node");
    at_hq = j.is_object() ? j["version_vector"].value(log.origin, std::uint64_t{0}) : 0;
    converge_s = seconds_since(start);
    if (at_hq >= log.ops || converge_s > max_seconds) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Json peers = admin_get(store_admin, store.admin_token, "/admin/v1/peers");
  std::uint64_t wire = 0, ops_sent = 0;
  if (peers.is_object()) {
    for (const auto& p : peers["peers"]) {
      if (!p.contains("stats")) continue;
      wire += p["stats"].value("wire_bytes_sent", std::uint64_t{0});
      ops_sent += p["stats"].value("ops_sent", std::uint64_t{0});
    }
  }
  sd.stop();
  hqd.stop();
  if (at_hq < log.ops) {
    std::cerr << "bench_sync: HQ held " << at_hq << " of " << log.ops << " ops after " << max_seconds
              << " s; no figure\n";
    return 1;
  }

  const double ingest = static_cast<double>(log.ops) / converge_s;
  const double ratio_ingest = ingest / raw_verify;
  const double wire_per_op = log.ops ? static_cast<double>(wire) / static_cast<double>(log.ops) : 0;
  const double ratio_wire = wire_per_op / log.signed_bytes_per_op;
  std::printf("\n%-52s %12s %10s %8s\n", "", "value", "vs base", "target");
  std::printf("%-52s %12.0f %10s %8s\n", "raw Ed25519 verify/s, one core (baseline)", raw_verify, "1.00x", "");
  std::printf("%-52s %12.0f %9.2fx %7s%.1fx %s\n", "HQ ingest ops/s over the link (verify+store+apply)", ingest,
              ratio_ingest, ">=", kTargetIngestVsVerify, ratio_ingest >= kTargetIngestVsVerify ? "OK" : "MISSED");
  std::printf("%-52s %12.1f %10s %8s\n", "signed op size, bytes (signed bytes + signature)", log.signed_bytes_per_op,
              "1.00x", "");
  std::printf("%-52s %12.1f %9.2fx %7s%.1fx %s\n", "TCP bytes per op, store -> HQ (all framing)", wire_per_op,
              ratio_wire, "<=", kTargetWireVsSigned, ratio_wire <= kTargetWireVsSigned ? "OK" : "MISSED");
  std::printf("%-52s %12.2f\n", "time to converge after the partition, s", converge_s);
  std::printf("\n%llu ops of the cut-off store reached HQ (%llu sent on the link; %llu TCP bytes)\n",
              static_cast<unsigned long long>(log.ops), static_cast<unsigned long long>(ops_sent),
              static_cast<unsigned long long>(wire));
  return 0;
}
