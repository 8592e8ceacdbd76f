// bench_audit: how fast `outpost-audit verify` checks a large bundle. Generates a synthetic but
// valid bundle (root-signed roster, one store's chain of N ops with enrolls, top-ups, earns,
// spends and redeems over M members, two root-signed checkpoints, a root-signed tree head set
// listing both nodes, balances.json), then measures in the same run:
//   - raw Ed25519 verifications/s of one core, and of two threads at once (the baseline);
//   - audit::verify_bundle end to end (files, rosters, decode + re-encode + signature on
//     `--workers` threads, chains, checkpoints, HLC-order replay, balances), in ops/s.
// Prints the verifier's rate as a ratio of two cores' raw rate (target >= 0.8x).
//
//   bench_audit [--ops N] [--members M] [--workers W] [--dir DIR] [--keep] [--no-pipeline]
//
// --no-pipeline runs the verifier's stages one after another (VerifyOptions::pipeline off), to
// see what checking logs and replaying while the signatures verify is worth.
//
// Defaults: 1,000,000 ops, 10,000 members, 2 workers, $TMPDIR or /tmp. Generation signs the ops
// one after another (each op's prev is the hash of the previous one, signature included).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "outpost/audit/bundle_format.h"
#include "outpost/audit/verify.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"
#include "outpost/sync/replica.h"
#include "outpost/sync/roster.h"

namespace {

namespace fs = std::filesystem;
namespace bundle = outpost::audit::bundle;
namespace sync = outpost::sync;
namespace crypto = outpost::crypto;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

struct Options {
  std::uint64_t ops = 1'000'000;
  std::uint64_t members = 10'000;
  unsigned workers = 2;
  std::string dir;
  bool keep = false;
  bool pipeline = true;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--ops N] [--members M] [--workers W] [--dir DIR] [--keep] "
               "[--no-pipeline]\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (a == "--ops") {
      o.ops = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--members") {
      o.members = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--workers") {
      o.workers = static_cast<unsigned>(std::atoi(next().c_str()));
    } else if (a == "--dir") {
      o.dir = next();
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--no-pipeline") {
      o.pipeline = false;
    } else {
      usage(argv[0]);
    }
  }
  if (o.members == 0 || o.ops < o.members || o.workers == 0) usage(argv[0]);
  return o;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void die(const std::string& what) {
  std::fprintf(stderr, "bench_audit: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T check(outpost::Result<T> r, const char* what) {
  if (!r.is_ok()) die(std::string(what) + ": " + r.status().to_string());
  return std::move(r).value();
}

void write_file(const std::string& path, const std::vector<std::uint8_t>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) die("cannot write " + path);
}

sync::SignedCertificate certificate(const sync::NetworkId& net, const sync::NodeId& id,
                                    sync::NodeRole role, const crypto::PublicKey& key,
                                    const std::string& name, const crypto::SigningKey& root) {
  sync::Certificate c;
  c.network_id = net;
  c.node_id = id;
  c.role = role;
  c.signing_key = key;
  crypto::random_bytes(c.noise_key);
  c.valid_from_ms = 1'700'000'000'000ULL;
  c.valid_until_ms = 1'900'000'000'000ULL;
  c.name = name;
  return sync::sign_certificate(c, root);
}

struct Generated {
  crypto::PublicKey root{};
  std::vector<std::uint8_t> ops_file;               // framed ops
  std::vector<std::pair<std::size_t, std::uint32_t>> frames;  // (offset, body length)
  crypto::PublicKey store_key{};
};

// Writes the bundle into `dir` and returns what the raw baseline needs.
Generated generate(const Options& o, const std::string& dir) {
  Generated g;
  const crypto::SigningKey root = crypto::SigningKey::generate();
  const crypto::SigningKey hq_key = crypto::SigningKey::generate();
  const crypto::SigningKey store_key = crypto::SigningKey::generate();
  g.root = root.public_key();
  g.store_key = store_key.public_key();
  sync::NetworkId net{};
  sync::NodeId hq_id{}, store_id{};
  crypto::random_bytes(net);
  crypto::random_bytes(hq_id);
  crypto::random_bytes(store_id);

  sync::Roster roster;
  roster.network_id = net;
  roster.version = 1;
  roster.issued = sync::Hlc{1'709'287'200'000ULL, 0};
  if (!roster.put_certificate(certificate(net, hq_id, sync::NodeRole::kHq, hq_key.public_key(),
                                          "hq", root))
           .is_ok() ||
      !roster.put_certificate(certificate(net, store_id, sync::NodeRole::kStore,
                                          store_key.public_key(), "store-1", root))
           .is_ok()) {
    die("cannot build the roster");
  }
  const sync::SignedRoster sr = sync::sign_roster(roster, root);

  std::mt19937_64 rng(42);
  std::vector<sync::MemberId> members(o.members);
  std::vector<std::int64_t> wallet(o.members, 0), points(o.members, 0);
  for (auto& m : members) crypto::random_bytes(m);
  sync::Replica replica;
  sync::MerkleAccumulator acc;
  std::vector<sync::SignedCheckpoint> checkpoints;
  const std::uint64_t half = o.ops / 2;
  sync::Hash32 prev{};
  g.ops_file.reserve(o.ops * 240);
  g.frames.reserve(o.ops);
  const auto t0 = Clock::now();
  for (std::uint64_t seq = 1; seq <= o.ops; ++seq) {
    sync::Op op;
    op.origin = store_id;
    op.seq = seq;
    op.prev = prev;
    op.hlc = sync::Hlc{1'709'287'200'000ULL + seq, 0};
    op.request_id = "pos-1:" + std::to_string(seq);
    if (seq <= o.members) {
      op.kind = sync::OpKind::kEnroll;
      op.member = members[seq - 1];
      op.fields = {{sync::Field::kCard, std::to_string(40'000'000 + seq)},
                   {sync::Field::kName, "Member " + std::to_string(seq)}};
    } else {
      const std::size_t i = rng() % o.members;
      op.member = members[i];
      switch (rng() % 4) {
        case 0:
          op.kind = sync::OpKind::kTopup;
          op.account = sync::Account::kWallet;
          op.amount = 100 + rng() % 5000;
          wallet[i] += static_cast<std::int64_t>(op.amount);
          break;
        case 1:
          op.kind = sync::OpKind::kEarn;
          op.account = sync::Account::kPoints;
          op.spend_minor = 100 + rng() % 20000;
          op.amount = op.spend_minor / 100;
          points[i] += static_cast<std::int64_t>(op.amount);
          break;
        case 2:
          if (wallet[i] > 0) {
            op.kind = sync::OpKind::kSpend;
            op.account = sync::Account::kWallet;
            op.amount = 1 + rng() % static_cast<std::uint64_t>(wallet[i]);
            wallet[i] -= static_cast<std::int64_t>(op.amount);
            break;
          }
          [[fallthrough]];
        default:
          if (points[i] > 0) {
            op.kind = sync::OpKind::kRedeem;
            op.account = sync::Account::kPoints;
            op.amount = 1 + rng() % static_cast<std::uint64_t>(points[i]);
            points[i] -= static_cast<std::int64_t>(op.amount);
          } else {
            op.kind = sync::OpKind::kTopup;
            op.account = sync::Account::kWallet;
            op.amount = 1000;
            wallet[i] += 1000;
          }
      }
    }
    op.receipt = "R-" + std::to_string(seq);
    const sync::SignedOp s = sync::sign_op(op, store_key);
    sync::ByteWriter w;
    sync::write_signed_op(w, s);
    g.frames.emplace_back(g.ops_file.size(), static_cast<std::uint32_t>(s.signed_bytes.size()));
    g.ops_file.insert(g.ops_file.end(), w.bytes().begin(), w.bytes().end());
    acc.append(sync::merkle_op_leaf_hash(s.signed_bytes, s.sig));
    if (!replica.apply(op).is_ok()) die("generator made an op the replica refuses");
    prev = s.hash;
    if (seq == half || seq == o.ops) {
      sync::Checkpoint cp;
      cp.network_id = net;
      cp.origin = store_id;
      cp.tree_size = seq;
      cp.root = acc.root();
      cp.head_hash = s.hash;
      cp.issued = op.hlc;
      checkpoints.push_back(sync::sign_checkpoint(cp, root));
    }
    if (seq % 200'000 == 0) {
      std::fprintf(stderr, "bench_audit: generated %llu ops (%.0f s)\n",
                   static_cast<unsigned long long>(seq), seconds_since(t0));
    }
  }

  fs::create_directories(dir + "/" + bundle::kOpsDir);
  auto framed = [](auto&& records) {
    sync::ByteWriter w;
    for (const auto& [body, sig] : records) sync::write_frame(w, body, sig);
    return w.take();
  };
  const std::string ops_rel = std::string(bundle::kOpsDir) + "/" + sync::id_hex(store_id) +
                              bundle::kOpsSuffix;
  write_file(dir + "/" + ops_rel, g.ops_file);
  write_file(dir + "/" + bundle::kRostersFile,
             framed(std::vector<std::pair<sync::Bytes, crypto::Signature>>{{sr.body, sr.sig}}));
  std::vector<std::pair<sync::Bytes, crypto::Signature>> cps;
  for (const auto& c : checkpoints) cps.emplace_back(c.body, c.sig);
  write_file(dir + "/" + bundle::kCheckpointsFile, framed(cps));
  // HQ's tree head set at the end: both nodes of the roster, HQ with an empty log.
  sync::TreeHeadSet ths;
  ths.network_id = net;
  ths.version = 1;
  ths.issued = checkpoints.back().cp.issued;
  ths.roster_version = roster.version;
  const sync::Checkpoint& last_cp = checkpoints.back().cp;
  ths.heads = {sync::TreeHead{hq_id, 0, sync::merkle_empty_root(), {}},
               sync::TreeHead{store_id, last_cp.tree_size, last_cp.root, last_cp.head_hash}};
  std::sort(ths.heads.begin(), ths.heads.end(),
            [](const auto& a, const auto& b) { return a.origin < b.origin; });
  const sync::SignedTreeHeadSet sths = sync::sign_tree_head_set(ths, root);
  write_file(dir + "/" + bundle::kTreeHeadsFile,
             framed(std::vector<std::pair<sync::Bytes, crypto::Signature>>{{sths.body, sths.sig}}));
  std::string balances = "{\"format\":\"" + std::string(bundle::kBalancesFormat) +
                         "\",\"version\":1,\"members\":[\n";
  bool first = true;
  for (const auto& [id, m] : replica.members()) {
    balances += (first ? "" : ",\n") + bundle::balance_json(id, m).dump();
    first = false;
  }
  balances += "\n]}\n";
  write_file(dir + "/" + bundle::kBalancesFile,
             std::vector<std::uint8_t>(balances.begin(), balances.end()));

  Json files = Json::array();
  for (const std::string& rel : {std::string(bundle::kRostersFile), ops_rel,
                                std::string(bundle::kCheckpointsFile),
                                std::string(bundle::kTreeHeadsFile),
                                std::string(bundle::kBalancesFile)}) {
    const auto data = check(outpost::audit::read_whole_file(dir + "/" + rel, 1ULL << 40), "read");
    files.push_back({{"path", rel},
                     {"bytes", data.size()},
                     {"sha256", crypto::to_hex(crypto::sha256(data))}});
  }
  const Json manifest{
      {"format", bundle::kFormat},
      {"version", bundle::kVersion},
      {"network_id", crypto::to_hex(net)},
      {"root_public_key", crypto::to_hex(root.public_key())},
      {"exported_by", {{"node_id", sync::id_hex(hq_id)}, {"name", "hq"}, {"role", "hq"}}},
      {"created_ms", 1'709'287'200'000ULL},
      {"range", nullptr},
      {"origins",
       {{{"origin", sync::id_hex(store_id)}, {"name", "store-1"}, {"file", ops_rel},
         {"first_seq", 1}, {"last_seq", o.ops}, {"ops", o.ops}}}},
      {"counts", {{"rosters", 1}, {"ops", o.ops}, {"origins", 1},
                  {"checkpoints", checkpoints.size()}, {"tree_heads", 1},
                  {"members", o.members}}},
      {"files", files}};
  const std::string text = manifest.dump(2) + "\n";
  write_file(dir + "/" + bundle::kManifestFile, std::vector<std::uint8_t>(text.begin(), text.end()));
  std::fprintf(stderr, "bench_audit: bundle of %llu ops written in %.1f s (%.0f MB of ops)\n",
               static_cast<unsigned long long>(o.ops), seconds_since(t0),
               static_cast<double>(g.ops_file.size()) / 1e6);
  return g;
}

// CPU seconds this process has used so far, all threads (user + system).
double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Raw Ed25519 verifications/s with `threads` threads each verifying `per_thread` signatures.
double raw_rate(const Generated& g, unsigned threads, std::size_t per_thread) {
  std::atomic<bool> bad{false};
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (std::size_t k = 0; k < per_thread; ++k) {
        const auto& [offset, len] = g.frames[(t * per_thread + k) % g.frames.size()];
        const std::uint8_t* body = g.ops_file.data() + offset + 4;
        crypto::Signature sig{};
        std::copy_n(body + len, 64, sig.begin());
        if (!crypto::verify(g.store_key, crypto::ByteView(body, len), sig)) bad = true;
      }
    });
  }
  for (auto& t : ts) t.join();
  if (bad) die("a generated signature does not verify");
  return static_cast<double>(threads * per_thread) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (!crypto::init().is_ok()) die("libsodium failed to initialize");
  std::string base = o.dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp && *tmp ? tmp : "/tmp";
  }
  const std::string dir = base + "/bench-audit-" + std::to_string(::getpid());
  const Generated g = generate(o, dir);

  const std::size_t raw_n = std::min<std::size_t>(g.frames.size(), 100'000);
  const double cpu_raw0 = cpu_seconds();
  const double raw1 = raw_rate(g, 1, raw_n);
  const double raw_cpu_us = (cpu_seconds() - cpu_raw0) * 1e6 / static_cast<double>(raw_n);
  const double raw2 = raw_rate(g, 2, raw_n);

  outpost::audit::VerifyOptions vo;
  vo.root = g.root;
  vo.workers = o.workers;
  vo.pipeline = o.pipeline;
  double sig_stage_s = 0;
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  vo.progress = [&](const std::string& stage, std::uint64_t done, std::uint64_t total) {
    if (stage == "signatures" && done == total) sig_stage_s = seconds_since(t0);
  };
  auto report = outpost::audit::verify_bundle(dir, vo);
  const double verify_s = seconds_since(t0);
  const double verify_cpu_s = cpu_seconds() - cpu0;
  if (!report.is_ok()) die("verify: " + report.status().to_string());
  if (!report->clean()) {
    std::fputs(outpost::audit::report_text(*report).c_str(), stderr);
    die("the synthetic bundle does not verify clean");
  }
  const double rate = static_cast<double>(o.ops) / verify_s;
  std::printf("bundle: %llu ops, %llu members, %u worker threads, %u hardware threads%s\n",
              static_cast<unsigned long long>(o.ops), static_cast<unsigned long long>(o.members),
              o.workers, std::thread::hardware_concurrency(),
              o.pipeline ? "" : ", pipeline off");
  std::printf("raw Ed25519 verify, 1 thread:            %9.0f /s (per core)\n", raw1);
  std::printf("raw Ed25519 verify, 2 threads:           %9.0f /s (2 x 1 core = %.0f)\n", raw2,
              2 * raw1);
  std::printf("outpost-audit verify, end to end:        %9.0f ops/s (%.1f s; signatures stage "
              "%.1f s = %.0f ops/s)\n",
              rate, verify_s, sig_stage_s, static_cast<double>(o.ops) / sig_stage_s);
  std::printf("ratio verify / (2 x raw 1-core):         %9.2fx (target >= 0.8x)\n",
              rate / (2 * raw1));
  std::printf("ratio verify / raw 2 threads measured:   %9.2fx\n", rate / raw2);
  // CPU time is less sensitive than wall time to other load on a shared machine: it says how
  // much work per op the verifier adds to the signature check, and whether both cores were used.
  const double verify_cpu_us = verify_cpu_s * 1e6 / static_cast<double>(o.ops);
  std::printf("CPU per op: raw verify %.1f us, outpost-audit verify %.1f us (raw / verify = "
              "%.2fx); %.2f cores busy on average\n",
              raw_cpu_us, verify_cpu_us, raw_cpu_us / verify_cpu_us, verify_cpu_s / verify_s);
  if (!o.keep) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  } else {
    std::printf("bundle kept in %s (root key %s)\n", dir.c_str(),
                crypto::to_hex(g.root).c_str());
  }
  return 0;
}
