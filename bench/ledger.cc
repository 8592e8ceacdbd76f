// bench_ledger: the rate and latency of durable single ledger ops (wallet top-ups through
// node::Ledger: validate, build, sign, chain, apply, record the answer, commit with fsync), next
// to the rate of raw single-row SQLite commits with the same durability (WAL, synchronous=FULL,
// one INSERT per transaction) measured in the same run, in the same directory, interleaved in
// blocks so that background load hits both alike. Prints both and their ratio (target >= 0.5).
//
//   bench_ledger [--ops N] [--dir DIR] [--members M] [--max-seconds S]
//
// Bounded: N ops of each kind (default 2000), stopping early after S seconds (default 60).
#include "outpost/node/ledger.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bench_args.h"
#include "outpost/crypto/crypto.h"

namespace {

using Clock = std::chrono::steady_clock;
using outpost::Status;

struct Options {
  int ops = 2000;
  int members = 5;
  double max_seconds = 60;
  std::string dir;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--ops N] [--dir DIR] [--members M] [--max-seconds S]\n", argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (a == "--ops") {
      o.ops = static_cast<int>(outpost::bench::int_arg("--ops", next().c_str(), 1, 10000000));
    } else if (a == "--dir") {
      o.dir = next();
    } else if (a == "--members") {
      o.members =
          static_cast<int>(outpost::bench::int_arg("--members", next().c_str(), 1, 1000000));
    } else if (a == "--max-seconds") {
      o.max_seconds = outpost::bench::seconds_arg("--max-seconds", next().c_str(), 0.1, 3600);
    } else {
      usage(argv[0]);
    }
  }
  if (o.ops < 10 || o.ops > 1'000'000 || o.members < 1 || o.members > 1000 || o.max_seconds <= 0) {
    usage(argv[0]);
  }
  return o;
}

void die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "bench_ledger: %s: %s\n", what.c_str(), st.to_string().c_str());
  std::exit(1);
}

// Latencies of one kind of op, in microseconds.
struct Series {
  std::vector<double> us;
  double total_s = 0;
  void add(Clock::duration d) {
    double x = std::chrono::duration<double, std::micro>(d).count();
    us.push_back(x);
    total_s += x / 1e6;
  }
  double rate() const { return us.empty() ? 0 : static_cast<double>(us.size()) / total_s; }
  double pct(double p) const {
    if (us.empty()) return 0;
    std::vector<double> s = us;
    std::sort(s.begin(), s.end());
    std::size_t i = static_cast<std::size_t>(std::lround(p * static_cast<double>(s.size() - 1)));
    return s[std::min(i, s.size() - 1)];
  }
};

// The baseline: a bare SQLite connection, WAL, synchronous=FULL, one small INSERT per commit.
class RawSqlite {
 public:
  explicit RawSqlite(const std::string& path) {
    check(sqlite3_open(path.c_str(), &db_), "open");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
    check(sqlite3_prepare_v2(db_, "INSERT INTO t(v) VALUES(?1)", -1, &ins_, nullptr), "prepare");
    check(sqlite3_prepare_v2(db_, "BEGIN IMMEDIATE", -1, &begin_, nullptr), "prepare");
    check(sqlite3_prepare_v2(db_, "COMMIT", -1, &commit_, nullptr), "prepare");
    blob_.assign(200, 0x5a);  // about the size of a signed op
  }
  ~RawSqlite() {
    sqlite3_finalize(ins_);
    sqlite3_finalize(begin_);
    sqlite3_finalize(commit_);
    sqlite3_close(db_);
  }
  void commit_one() {
    step(begin_);
    sqlite3_bind_blob(ins_, 1, blob_.data(), static_cast<int>(blob_.size()), SQLITE_STATIC);
    step(ins_);
    step(commit_);
  }

 private:
  void check(int rc, const char* what) {
    if (rc != SQLITE_OK) {
      std::fprintf(stderr, "bench_ledger: sqlite %s: %s\n", what, sqlite3_errstr(rc));
      std::exit(1);
    }
  }
  void exec(const char* sql) { check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), sql); }
  void step(sqlite3_stmt* s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) check(rc, "step");
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* ins_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  std::vector<std::uint8_t> blob_;
};

void print_row(const char* name, const Series& s) {
  std::printf("%-34s %7zu ops %9.0f ops/s   p50 %8.0f us   p99 %8.0f us   max %8.0f us\n", name,
              s.us.size(), s.rate(), s.pct(0.50), s.pct(0.99), s.pct(1.0));
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  if (!outpost::crypto::init().is_ok()) return 1;
  namespace fs = std::filesystem;
  std::string base = opt.dir.empty() ? fs::temp_directory_path().string() : opt.dir;
  std::string tmpl = base + "/bench-ledger-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string root = buf.data();
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{root};

  // Ledger: a fresh store with a handful of members (not timed).
  const std::string data = root + "/data";
  outpost::node::InitOptions init;
  init.name = "bench-store";
  if (Status st = outpost::node::Ledger::init(data, init); !st.is_ok()) die("init", st);
  outpost::sync::SystemEnv clock;
  auto opened = outpost::node::Ledger::open(data, clock);
  if (!opened.is_ok()) die("open", opened.status());
  outpost::node::Ledger& ledger = **opened;
  std::vector<outpost::sync::MemberId> members;
  for (int i = 0; i < opt.members; ++i) {
    outpost::node::EnrollRequest req{"enroll-" + std::to_string(i), std::to_string(40'000'000 + i),
                                     "Bench " + std::to_string(i), "", ""};
    auto r = ledger.enroll(req);
    if (!r.is_ok()) die("enroll", r.status());
    members.push_back(r->done.member);
  }
  RawSqlite raw(root + "/raw.db");

  int ledger_done = 0;
  auto ledger_one = [&] {
    const auto& m = members[static_cast<std::size_t>(ledger_done) % members.size()];
    auto r = ledger.topup("bench-" + std::to_string(ledger_done), m, 100, "");
    if (!r.is_ok()) die("topup", r.status());
    if (r->refused) die("topup", Status::internal("refused"));
    ++ledger_done;
  };

  // Warm both paths up (page cache, WAL file growth), untimed.
  for (int i = 0; i < 20; ++i) {
    raw.commit_one();
    ledger_one();
  }

  // Interleave blocks so that noise from other processes lands on both series alike.
  const int block = std::max(10, opt.ops / 8);
  Series raw_s, ledger_s;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(opt.max_seconds));
  bool cut_short = false;
  while (static_cast<int>(ledger_s.us.size()) < opt.ops) {
    if (Clock::now() > deadline) {
      cut_short = true;
      break;
    }
    const int n = std::min(block, opt.ops - static_cast<int>(ledger_s.us.size()));
    for (int i = 0; i < n; ++i) {
      auto t0 = Clock::now();
      raw.commit_one();
      raw_s.add(Clock::now() - t0);
    }
    for (int i = 0; i < n; ++i) {
      auto t0 = Clock::now();
      ledger_one();
      ledger_s.add(Clock::now() - t0);
    }
  }

  auto report = ledger.verify_log();
  if (!report.is_ok()) die("verify_log", report.status());

  std::printf("bench_ledger: durable single ops, directory %s\n", root.c_str());
  print_row("raw SQLite commit (WAL, FULL)", raw_s);
  print_row("ledger topup (sign+chain+apply)", ledger_s);
  const double ratio = raw_s.rate() > 0 ? ledger_s.rate() / raw_s.rate() : 0;
  std::printf("ratio ledger/raw: %.2fx (target >= 0.50x: %s)%s\n", ratio,
              ratio >= 0.5 ? "met" : "NOT met", cut_short ? "  [stopped at --max-seconds]" : "");
  std::printf("log verify after the run: %s (%llu ops)\n", report->ok() ? "ok" : "FAILED",
              static_cast<unsigned long long>(report->ops_checked));
  return report->ok() ? 0 : 1;
}
