// bench_reports: how HQ's member reports (docs/reports.md) grow with the chain. Writes N members
// with two years of visits and spend at 1..3 of 50 stores, points and stored value, into a real
// Store (SQLite on disk, as HQ's replica), then, for a small and a large chain in the same run:
//   - loads the report input in one read snapshot (load_report_input),
//   - runs each report over it,
//   - and, as the baseline, one pass that only sums every member's wallet.
// Prints each time per member and the growth ratio large/small of the time per member (1.00x is
// linear; the reports sort, so a little above is expected).
//
//   bench_reports [--small N] [--large N] [--dir DIR]
//
// Defaults: 100,000 and 1,000,000 members (about 7 ops each), $TMPDIR or /tmp. Writing the chains
// takes most of the run.
#include "outpost/node/reports.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench_args.h"
#include "outpost/storage/store.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/op.h"

namespace {

namespace fs = std::filesystem;
namespace sync = outpost::sync;
namespace reports = outpost::node::reports;
using Clock = std::chrono::steady_clock;
using outpost::Status;

constexpr std::uint32_t kNow = 2026 * 12 + 11;  // 2026-12, the month the reports look from
constexpr std::uint64_t kStart =
    1735689600000;  // 2025-01-01T00:00Z: purchases run two years from here
constexpr int kStores = 50;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

sync::NodeId store_id(int i) {
  sync::NodeId id{};
  id[0] = static_cast<std::uint8_t>(i + 1);
  return id;
}

// One store's log: ops are chained (seq, prev) and written through Store::append_op, which
// applies them with the rule book, as ingest does. Signatures are not checked by the Store and
// the reports never look at them, so the benchmark signs nothing (a zero signature).
struct Origin {
  sync::NodeId id{};
  std::uint64_t seq = 0;
  sync::Hash32 prev{};
};

void append(outpost::storage::Store& store, Origin& o, sync::Op op) {
  op.origin = o.id;
  op.seq = ++o.seq;
  op.prev = o.prev;
  sync::SignedOp sop;
  sop.signed_bytes = sync::encode_op(op);
  sop.hash = sync::op_hash(sop.signed_bytes, sop.sig);
  sop.op = std::move(op);
  o.prev = sop.hash;
  if (Status st = store.append_op(sop); !st.is_ok()) {
    std::fprintf(stderr, "append failed: %s\n", st.to_string().c_str());
    std::exit(3);
  }
}

// Writes `n` members with a deterministic history into a new Store at `path`: each enrolled at
// a home store with a top-up, then 1..8 purchases over two years at 1..3 stores.
void write_chain(const std::string& path, std::uint64_t n) {
  auto store = outpost::storage::Store::open(path, outpost::storage::OpenMode::kCreate);
  if (!store.is_ok()) {
    std::fprintf(stderr, "cannot create %s: %s\n", path.c_str(),
                 store.status().to_string().c_str());
    std::exit(3);
  }
  std::vector<Origin> origins(kStores);
  for (int i = 0; i < kStores; ++i) origins[static_cast<std::size_t>(i)].id = store_id(i);
  std::mt19937_64 rng(n);
  constexpr std::uint64_t kBatch = 5'000;
  constexpr std::uint64_t kDayMs = 86'400'000;
  for (std::uint64_t done = 0; done < n;) {
    auto txn = (*store)->begin();
    if (!txn.is_ok()) std::exit(3);
    for (std::uint64_t k = 0; k < kBatch && done < n; ++k, ++done) {
      sync::MemberId id{};
      for (std::size_t b = 0; b < 8; ++b) id[b] = static_cast<std::uint8_t>(done >> (8 * (7 - b)));
      id[15] = 1;  // never the zero id
      const std::size_t home = rng() % kStores;
      const std::uint64_t enrolled = kStart - (rng() % 365) * kDayMs;
      sync::Op enroll;
      enroll.kind = sync::OpKind::kEnroll;
      enroll.member = id;
      enroll.hlc = sync::Hlc{enrolled, 0};
      enroll.fields = {{sync::Field::kCard, std::to_string(40'000'000 + done)},
                       {sync::Field::kName, "M"}};
      append(**store, origins[home], enroll);
      sync::Op topup;
      topup.kind = sync::OpKind::kTopup;
      topup.member = id;
      topup.account = sync::Account::kWallet;
      topup.amount = 1 + rng() % 10'000;
      topup.hlc = sync::Hlc{enrolled + 1, 0};
      append(**store, origins[home], topup);
      const std::size_t stores = 1 + rng() % 3;
      for (std::uint64_t v = 1 + rng() % 8; v > 0; --v) {
        sync::Op earn;
        earn.kind = sync::OpKind::kEarn;
        earn.member = id;
        earn.account = sync::Account::kPoints;
        earn.spend_minor = 500 + rng() % 20'000;
        earn.amount = earn.spend_minor / 100;
        earn.hlc = sync::Hlc{kStart + (rng() % 700) * kDayMs, 0};
        append(**store, origins[(home + rng() % stores) % kStores], earn);
      }
    }
    if (!txn->commit().is_ok()) std::exit(3);
  }
}

struct Figures {
  double load = 0, baseline = 0;
  std::vector<std::pair<std::string, double>> reports;
};

Figures measure(const std::string& path, std::uint64_t n) {
  Figures f;
  auto store = outpost::storage::Store::open(path, outpost::storage::OpenMode::kExisting);
  if (!store.is_ok()) std::exit(3);
  sync::ProgramRules rules;
  rules.tiers = {{"member", 0, 1}, {"silver", 50'000, 2}, {"gold", 200'000, 3}};
  auto t = Clock::now();
  auto in = reports::load_report_input(**store, nullptr, rules);
  f.load = seconds_since(t);
  if (!in.is_ok() || in->members.size() != n) {
    std::fprintf(stderr, "load failed or short: %s\n",
                 in.is_ok() ? "short" : in.status().to_string().c_str());
    std::exit(3);
  }
  t = Clock::now();
  std::int64_t sum = 0;
  for (const auto& m : in->members) sum += m.state.wallet.value();
  f.baseline = seconds_since(t);
  if (sum < 0) std::exit(3);
  reports::Scope scope{kNow - 11, kNow, std::nullopt};
  auto time = [&](const char* name, auto&& run) {
    t = Clock::now();
    run();
    f.reports.emplace_back(name, seconds_since(t));
  };
  time("quadrants", [&] { (void)reports::quadrants(*in, scope, std::nullopt, 20); });
  time("rfm", [&] { (void)reports::rfm(*in, scope, 20); });
  time("lifecycle", [&] { (void)reports::lifecycle(*in, scope, reports::LifecycleRules{}, 20); });
  time("liability", [&] { (void)reports::liability(*in, std::nullopt, std::nullopt); });
  time("kpis", [&] { (void)reports::kpis(*in, scope); });
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t small = 100'000, large = 1'000'000;
  const char* tmpdir = std::getenv("TMPDIR");
  std::string dir = tmpdir != nullptr ? tmpdir : "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: %s [--small N] [--large N] [--dir DIR]\n", argv[0]);
      return 2;
    }
    if (a == "--small") {
      small = static_cast<std::uint64_t>(
          outpost::bench::int_arg("--small", argv[++i], 100, 10'000'000));
    } else if (a == "--large") {
      large = static_cast<std::uint64_t>(
          outpost::bench::int_arg("--large", argv[++i], 100, 10'000'000));
    } else if (a == "--dir") {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--small N] [--large N] [--dir DIR]\n", argv[0]);
      return 2;
    }
  }
  const std::string base = dir + "/bench_reports." + std::to_string(::getpid());
  fs::create_directories(base);
  std::vector<std::pair<std::uint64_t, Figures>> runs;
  for (std::uint64_t n : {small, large}) {
    const std::string path = base + "/hq-" + std::to_string(n) + ".db";
    std::fprintf(stderr, "writing %llu members ...\n", static_cast<unsigned long long>(n));
    const auto t = Clock::now();
    write_chain(path, n);
    std::fprintf(stderr, "  written in %.1f s; measuring\n", seconds_since(t));
    runs.emplace_back(n, measure(path, n));
  }
  fs::remove_all(base);
  auto per = [](double s, std::uint64_t n) { return s * 1e9 / static_cast<double>(n); };
  const std::uint64_t ns = runs[0].first, nl = runs[1].first;
  const Figures& fs_ = runs[0].second;
  const Figures& fl = runs[1].second;
  std::printf(
      "HQ member reports, %llu and %llu members (ns per member; growth = large/small per member)\n",
      static_cast<unsigned long long>(ns), static_cast<unsigned long long>(nl));
  std::printf("  %-28s %10s %10s %8s\n", "", "small", "large", "growth");
  auto row = [&](const std::string& name, double s, double l) {
    std::printf("  %-28s %10.0f %10.0f %7.2fx\n", name.c_str(), per(s, ns), per(l, nl),
                per(l, nl) / per(s, ns));
  };
  row("baseline: sum wallets", fs_.baseline, fl.baseline);
  row("load (one read snapshot)", fs_.load, fl.load);
  for (std::size_t i = 0; i < fs_.reports.size(); ++i) {
    row(fs_.reports[i].first, fs_.reports[i].second, fl.reports[i].second);
  }
  std::printf("  each report as a multiple of the baseline pass (large):");
  for (const auto& [name, s] : fl.reports) std::printf(" %s %.1fx", name.c_str(), s / fl.baseline);
  std::printf("\n");
  return 0;
}
