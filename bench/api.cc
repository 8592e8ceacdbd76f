// bench_api: durable POS operations per second, and their latency, through the HTTP API of a
// real daemon (outpostd's Daemon, in this process on its own threads, on a temporary data dir)
// with 1, 8 and 64 concurrent keep-alive clients doing top-ups on distinct members. Next to it,
// the baseline measured in the same run on the same disk: raw single-row SQLite commits with the
// same durability (WAL, synchronous=FULL). Prints ratios against the targets of issue 4:
// >= 0.5x raw with 1 client, >= 5x raw with 64 clients (group commit).
//
// Usage: bench_api [--seconds S] [--dir DIR] [--clients N]
//   S per measurement (default 3); DIR default $TMPDIR; --clients N measures only that client
//   count (for profiling one case, e.g. under valgrind --tool=callgrind; the raw baseline still runs).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <latch>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.h"
#include "outpost/crypto/crypto.h"
#include "outpost/net/http_client.h"
#include "outpost/node/config.h"
#include "outpost/node/daemon.h"
#include "outpost/node/ledger.h"
#include "outpost/node/log.h"

namespace {

using Clock = std::chrono::steady_clock;
using outpost::node::Json;
namespace net = outpost::net;

constexpr double kTarget1Client = 0.5;
constexpr double kTarget64Clients = 5.0;

double percentile_ms(std::vector<double>& sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  std::size_t i = std::min(sorted_us.size() - 1, static_cast<std::size_t>(p * static_cast<double>(sorted_us.size())));
  return sorted_us[i] / 1000.0;
}

struct Figures {
  double ops_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double avg_batch = 0;
  std::uint64_t failures = 0;
  // Context: CPU time of the whole process (daemon threads and the benchmark's own clients, user
  // + kernel) per acknowledged op, and how many cores that kept busy on average.
  double cpu_us_per_op = 0;
  double cores_busy = 0;
};

double process_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// Raw SQLite: one INSERT of one small row per transaction, WAL + synchronous=FULL (one fsync of
// the WAL per commit), on the same file system as the daemon's data dir.
Figures raw_sqlite(const std::string& dir, double seconds) {
  const std::string path = dir + "/raw.db";
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::cerr << "bench_api: cannot open " << path << "\n";
    std::exit(1);
  }
  char* err = nullptr;
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
                   nullptr, nullptr, &err) != SQLITE_OK) {
    std::cerr << "bench_api: " << (err ? err : "sqlite error") << "\n";
    std::exit(1);
  }
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES (?1)", -1, &ins, nullptr);
  const std::string row(200, 'r');  // about the size of one signed op
  std::vector<double> lat_us;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < deadline) {
    auto t0 = Clock::now();
    sqlite3_bind_blob(ins, 1, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) {
      std::cerr << "bench_api: raw insert failed: " << sqlite3_errmsg(db) << "\n";
      std::exit(1);
    }
    sqlite3_reset(ins);
    lat_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  sqlite3_finalize(ins);
  sqlite3_close(db);
  std::sort(lat_us.begin(), lat_us.end());
  Figures f;
  f.ops_per_s = static_cast<double>(lat_us.size()) / elapsed;
  f.p50_ms = percentile_ms(lat_us, 0.50);
  f.p99_ms = percentile_ms(lat_us, 0.99);
  f.avg_batch = 1;
  return f;
}

// Context, not a target: raw Ed25519 signatures per second on one core over a message the size
// of a signed top-up. Ops are signed one after another (each op's prev is the hash of the previous
// op and its signature), so this rate bounds durable ops/s of one node whatever the disk and the
// batch size; the rest of a request (HTTP, JSON, SQLite, the answer) comes on top of it.
double raw_sign_per_s(double seconds) {
  outpost::crypto::SigningKey key = outpost::crypto::SigningKey::generate();
  std::vector<std::uint8_t> msg(160, 0x5a);  // a top-up's signed bytes
  std::uint64_t n = 0;
  const auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    for (int i = 0; i < 64; ++i) {
      msg[i] = static_cast<std::uint8_t>(n + static_cast<std::uint64_t>(i));
      const outpost::crypto::Signature sig = key.sign(msg);
      msg[64] ^= sig[0];
    }
    n += 64;
  }
  return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

struct GroupCommit {
  std::uint64_t batches = 0;
  std::uint64_t mutating_ops = 0;
  std::uint64_t largest_batch = 0;
};

GroupCommit group_commit(std::uint16_t admin_port, const std::string& admin_token) {
  GroupCommit g;
  auto res =
      net::http_request({"127.0.0.1", admin_port}, {"GET", "/admin/v1/node", admin_token, {}, ""});
  if (res.status != 200) return g;
  Json j = Json::parse(res.body, nullptr, false);
  if (j.is_discarded() || !j.contains("group_commit")) return g;
  g.batches = j["group_commit"].value("batches", std::uint64_t{0});
  g.mutating_ops = j["group_commit"].value("mutating_ops", std::uint64_t{0});
  g.largest_batch = j["group_commit"].value("largest_batch", std::uint64_t{0});
  return g;
}

// `clients` threads, each on its own keep-alive connection, top up their own member for `seconds`.
Figures http_topups(std::uint16_t port, std::uint16_t admin_port, const std::string& token,
                    const std::string& admin_token, const std::vector<std::string>& members, int clients,
                    double seconds) {
  std::vector<std::vector<double>> lat(clients);
  std::atomic<std::uint64_t> failures{0};
  std::latch ready(clients + 1);
  std::atomic<bool> go{false};
  Clock::time_point deadline;
  const GroupCommit before = group_commit(admin_port, admin_token);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      net::HttpClient c({"127.0.0.1", port});
      const std::string path = "/v1/members/" + members[t] + "/topup";
      ready.arrive_and_wait();
      while (!go.load()) std::this_thread::yield();
      for (std::uint64_t i = 0; Clock::now() < deadline; ++i) {
        std::string body = R"({"request_id":"b)" + std::to_string(clients) + "-" + std::to_string(t) + "-" +
                           std::to_string(i) + R"(","amount_minor":1})";
        auto t0 = Clock::now();
        int status = c.request({"POST", path, token, {}, body}).status;
        if (status != 200) {
          failures++;
          if (status == 0) return;  // connection lost
          continue;
        }
        lat[t].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  ready.arrive_and_wait();
  const double cpu_before = process_cpu_seconds();
  auto start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go = true;
  for (auto& th : threads) th.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu_seconds = process_cpu_seconds() - cpu_before;
  const GroupCommit after = group_commit(admin_port, admin_token);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  Figures f;
  f.ops_per_s = static_cast<double>(all.size()) / elapsed;
  f.p50_ms = percentile_ms(all, 0.50);
  f.p99_ms = percentile_ms(all, 0.99);
  f.failures = failures.load();
  f.cpu_us_per_op = all.empty() ? 0 : cpu_seconds * 1e6 / static_cast<double>(all.size());
  f.cores_busy = cpu_seconds / elapsed;
  // The admin requests themselves are read-only: they do not count as batches.
  std::uint64_t batches = after.batches - before.batches;
  f.avg_batch = batches ? static_cast<double>(after.mutating_ops - before.mutating_ops) / static_cast<double>(batches) : 0;
  return f;
}

[[noreturn]] void die(const std::string& what, const outpost::Status& st) {
  std::cerr << "bench_api: " << what << ": " << st.to_string() << "\n";
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  std::string base;
  int only_clients = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = outpost::bench::seconds_arg("--seconds", argv[++i], 0.5, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      base = argv[++i];
    } else if (a == "--clients" && i + 1 < argc) {
      only_clients = static_cast<int>(outpost::bench::int_arg("--clients", argv[++i], 1, 64));
    } else {
      std::cerr << "usage: bench_api [--seconds S (0.5..10, default 3)] [--dir DIR] [--clients 1|8|64]\n";
      return 2;
    }
  }
  if (seconds < 0.5 || seconds > 10) {
    std::cerr << "bench_api: --seconds must be 0.5..10 (keeps the run under a minute)\n";
    return 2;
  }
  if (base.empty()) base = std::filesystem::temp_directory_path().string();
  std::string tmpl = base + "/outpost-bench-api-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::cerr << "bench_api: mkdtemp failed in " << base << "\n";
    return 1;
  }
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  if (!outpost::crypto::init().is_ok()) return 1;
  outpost::node::set_log_level(outpost::node::LogLevel::kWarn);

  std::vector<int> levels = {1, 8, 64};
  if (only_clients != 0) {
    if (std::find(levels.begin(), levels.end(), only_clients) == levels.end()) {
      std::cerr << "bench_api: --clients must be 1, 8 or 64\n";
      return 2;
    }
    levels = {only_clients};
  }
  const int members_max = *std::max_element(levels.begin(), levels.end());

  // The daemon's data dir: node key, terminals, one member per client.
  outpost::sync::SystemEnv clock;
  const std::string data = dir + "/data";
  if (auto st = outpost::node::Ledger::init(data, {"bench-store", "store"}); !st.is_ok()) die("init", st);
  std::string token, admin_token;
  std::vector<std::string> members;
  {
    auto ledger = outpost::node::Ledger::open(data, clock);
    if (!ledger.is_ok()) die("open", ledger.status());
    auto t = (*ledger)->add_terminal("bench-till", "pos");
    auto a = (*ledger)->add_terminal("bench-admin", "admin");
    if (!t.is_ok() || !a.is_ok()) die("terminal", t.is_ok() ? a.status() : t.status());
    token = *t;
    admin_token = *a;
    // One transaction for all enrollments (setup, not measured).
    if (auto st = (*ledger)->begin_batch(); !st.is_ok()) die("begin", st);
    for (int i = 0; i < members_max; ++i) {
      auto r = (*ledger)->enroll({"enroll-" + std::to_string(i), std::to_string(70000000 + i), "Bench " + std::to_string(i), "", ""});
      if (!r.is_ok() || r->refused)
        die("enroll", r.is_ok() ? outpost::Status::refused(r->refusal.message) : r.status());
      members.push_back(outpost::sync::id_hex(r->done.member));
    }
    if (auto st = (*ledger)->commit_batch(); !st.is_ok()) die("commit", st);
  }

  std::cout << "bench_api: durable POS top-ups through HTTP (keep-alive, distinct members) vs raw\n"
               "single-row SQLite commits (WAL, synchronous=FULL), same disk, same run; "
            << seconds << " s per row\n\n";
  const Figures raw = raw_sqlite(dir, seconds);
  const double sign_per_s = raw_sign_per_s(std::min(seconds, 1.0));

  outpost::node::Config config;
  config.data_dir = data;
  config.api = {"127.0.0.1", 0};
  config.admin = {"127.0.0.1", 0};
  config.peer = {"127.0.0.1", 0};
  auto daemon = outpost::node::Daemon::create(config, clock);
  if (!daemon.is_ok()) die("daemon", daemon.status());
  if (auto st = (*daemon)->start(); !st.is_ok()) die("daemon start", st);
  std::thread runner([&] { (*daemon)->run(); });
  const std::uint16_t port = (*daemon)->api_endpoint().port;
  const std::uint16_t admin_port = (*daemon)->admin_endpoint().port;

  std::vector<std::pair<int, Figures>> rows;
  rows.reserve(levels.size());
  for (int clients : levels) {
    rows.emplace_back(clients, http_topups(port, admin_port, token, admin_token, members, clients, seconds));
  }
  const GroupCommit gc = group_commit(admin_port, admin_token);
  (*daemon)->stop();
  runner.join();

  std::printf("%-28s %10s %8s %8s %9s %8s %8s\n", "", "ops/s", "p50 ms", "p99 ms", "avg batch", "vs raw", "target");
  std::printf("%-28s %10.0f %8.2f %8.2f %9s %8s %8s\n", "raw sqlite commit (1 row)", raw.ops_per_s, raw.p50_ms,
              raw.p99_ms, "1", "1.00x", "");
  bool all_met = true;
  for (auto& [clients, f] : rows) {
    double ratio = raw.ops_per_s > 0 ? f.ops_per_s / raw.ops_per_s : 0;
    double target = clients == 1 ? kTarget1Client : clients == 64 ? kTarget64Clients : 0;
    std::string verdict = target == 0 ? "" : (ratio >= target ? "OK" : "MISSED");
    if (target > 0 && ratio < target) all_met = false;
    char label[64];
    std::snprintf(label, sizeof label, "HTTP topup, %d client%s", clients, clients == 1 ? "" : "s");
    char tgt[32] = "";
    if (target > 0) std::snprintf(tgt, sizeof tgt, ">=%.1fx", target);
    std::printf("%-28s %10.0f %8.2f %8.2f %9.1f %7.2fx %8s %s%s\n", label, f.ops_per_s, f.p50_ms, f.p99_ms,
                f.avg_batch, ratio, tgt, verdict.c_str(),
                f.failures ? (" (" + std::to_string(f.failures) + " failed requests)").c_str() : "");
  }
  std::printf("\ncontext: CPU of this process (daemon and clients, user + kernel) per op, cores kept busy:\n");
  for (auto& [clients, f] : rows) {
    std::printf("  %2d client%s %7.1f us/op  %4.2f cores\n", clients, clients == 1 ? " " : "s", f.cpu_us_per_op,
                f.cores_busy);
  }
  std::printf("context: raw Ed25519 sign, 1 core: %.0f/s = %.2fx raw (every op is signed in sequence: the\n"
              "ceiling of durable ops/s on this machine however fast the disk, before HTTP, JSON and SQLite)\n",
              sign_per_s, raw.ops_per_s > 0 ? sign_per_s / raw.ops_per_s : 0);
  std::printf("group commit over the run: %llu batches, %llu ops, largest batch %llu\n",
              static_cast<unsigned long long>(gc.batches), static_cast<unsigned long long>(gc.mutating_ops),
              static_cast<unsigned long long>(gc.largest_batch));
  std::printf("targets: %s\n", all_met ? "all met" : "NOT all met");
  return 0;
}
