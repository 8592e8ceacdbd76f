// Audit bundles end to end (docs/audit-bundle.md): a real multi-op history (HQ and three stores
// enrolled through node/identity.h, store ops ingested at HQ with Ledger::ingest, two rounds of
// HQ checkpoints, a revoked store) is exported, then a tamper suite mutates copies of the bundle
// and checks that `verify` reports exactly the finding that names the tampering. The `outpost`
// and `outpost-audit` binaries are exercised for exit codes, --json and --help.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../unit/test_util.h"
#include "outpost/audit/bundle_format.h"
#include "outpost/audit/proof.h"
#include "outpost/audit/verify.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "outpost/sync/checkpoint.h"
#include "test_process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using audit::Report;
using node::Json;
using node::Ledger;
using sync::Bytes;
using sync::NodeId;

constexpr std::uint64_t kDay1Ms = 1'709'287'200'000ULL;  // 2024-03-01T10:00:00Z
constexpr std::uint64_t kDay2Ms = kDay1Ms + 86'400'000ULL;

// A signed op as it sits in a bundle's ops file.
struct FrameAt {
  std::size_t offset = 0;
  std::size_t size = 0;  // whole frame
  sync::SignedOp op;
};

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  const std::string s = test::read_file(path);
  return {s.begin(), s.end()};
}
void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  test::write_file(path, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

std::vector<FrameAt> op_frames(const std::string& path) {
  const auto data = read_bytes(path);
  std::vector<FrameAt> out;
  std::size_t offset = 0;
  while (offset < data.size()) {
    const std::size_t at = offset;
    auto f = sync::read_frame(data, offset, 4096);
    if (!f.is_ok()) break;
    auto op = sync::load_signed_op(f->body, f->sig);
    EXPECT_TRUE(op.is_ok()) << op.status().to_string();
    out.push_back(FrameAt{at, offset - at, op.is_ok() ? *op : sync::SignedOp{}});
  }
  return out;
}

Bytes frame_bytes(const sync::SignedOp& op) {
  sync::ByteWriter w;
  sync::write_signed_op(w, op);
  return w.take();
}

// The history every test starts from, built once.
struct History {
  test::TempDir tmp{"outpost-audit"};
  std::string hq, a, b, c, bundle, partial;
  std::string root_hex;
  NodeId hq_id{}, a_id{}, b_id{}, c_id{};
  sync::MemberId m1{}, m2{}, m4{};
  std::uint64_t a_topup_m2_seq = 0;
  std::uint64_t ops = 0;
  std::string error;
};
History* g_history = nullptr;

class AuditTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(crypto::init().is_ok());
    g_history = new History();
    g_history->error = build(*g_history);
  }
  static void TearDownTestSuite() {
    delete g_history;
    g_history = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(h().error.empty()) << "history setup: " << h().error; }

  static History& h() { return *g_history; }

  // Builds HQ + stores A, B, C, two days of ops, two rounds of checkpoints, revokes C, exports.
  static std::string build(History& h) {
    sync::ManualEnv clock(kDay1Ms);
    h.hq = h.tmp.file("hq");
    h.a = h.tmp.file("store-a");
    h.b = h.tmp.file("store-b");
    h.c = h.tmp.file("store-c");
    auto init = node::hq_init(h.hq, "hq", 3650, clock);
    if (!init.is_ok()) return "hq_init: " + init.status().to_string();
    h.root_hex = (*init)["root_public_key"].get<std::string>();
    const std::vector<std::pair<std::string, std::string>> stores = {
        {h.a, "store-a"}, {h.b, "store-b"}, {h.c, "store-c"}};
    for (const auto& [dir, name] : stores) {
      if (Status st = Ledger::init(dir, {name, "store"}); !st.is_ok()) return st.to_string();
      auto req = node::make_enroll_request(dir);
      if (!req.is_ok()) return req.status().to_string();
      auto enr = node::hq_enroll(h.hq, name, sync::NodeRole::kStore, *req, 730, clock);
      if (!enr.is_ok()) return "hq_enroll: " + enr.status().to_string();
      auto inst = node::install_enrollment(dir, *enr);
      if (!inst.is_ok()) return "install: " + inst.status().to_string();
    }
    auto la = Ledger::open(h.a, clock);
    auto lb = Ledger::open(h.b, clock);
    auto lc = Ledger::open(h.c, clock);
    auto lhq = Ledger::open(h.hq, clock);
    if (!la.is_ok() || !lb.is_ok() || !lc.is_ok() || !lhq.is_ok()) return "Ledger::open failed";
    Ledger& A = **la;
    Ledger& B = **lb;
    Ledger& C = **lc;
    Ledger& HQ = **lhq;
    h.a_id = A.node_id();
    h.b_id = B.node_id();
    h.c_id = C.node_id();
    h.hq_id = HQ.node_id();
    std::string err;
    int n = 0;
    auto rid = [&] { return "req-" + std::to_string(++n); };
    auto ok = [&](const Result<node::Outcome>& r, const char* what) {
      clock.advance(1000);
      if (!err.empty()) return Json();
      if (!r.is_ok()) {
        err = std::string(what) + ": " + r.status().to_string();
      } else if (r->refused) {
        err = std::string(what) + " refused: " + node::schema::outcome_json(*r).dump();
      }
      return r.is_ok() ? node::schema::outcome_json(*r) : Json();
    };
    auto member = [&](const Json& body) {
      auto id = sync::parse_id(body.value("member", ""));
      return id.is_ok() ? *id : sync::MemberId{};
    };
    auto ship = [&](Ledger& from, Ledger& to, std::uint64_t from_seq) {
      auto ops = from.store().ops_of_origin(from.node_id(), from_seq, 1000);
      if (!ops.is_ok()) return ops.status().to_string();
      auto r = to.ingest(*ops);
      return r.is_ok() ? std::string() : "ingest: " + r.status().to_string();
    };

    // Day 1: store A serves two members, moves wallet rights to B; B spends them.
    h.m1 = member(ok(A.enroll({rid(), "40000001", "Ann Lee", "", ""}), "enroll m1"));
    h.m2 = member(ok(A.enroll({rid(), "40000002", "Bo Chen", "", ""}), "enroll m2"));
    ok(A.topup(rid(), h.m1, 5000, "R-1"), "topup m1");
    ok(A.earn(rid(), h.m1, 12345, "R-2"), "earn m1");
    ok(A.spend(rid(), h.m1, 700, "R-3"), "spend m1");
    ok(A.redeem(rid(), h.m1, 10, "R-4"), "redeem m1");
    Json t = ok(A.topup(rid(), h.m2, 3000, "R-5"), "topup m2");
    NodeId topup_origin{};
    if (!sync::parse_op_ref(t.value("op", ""), topup_origin, h.a_topup_m2_seq)) {
      return "topup m2 gave no op ref";
    }
    ok(A.reverse(rid(), h.a_id, h.a_topup_m2_seq), "reverse topup m2");
    ok(A.topup(rid(), h.m2, 1000, "R-6"), "topup m2 again");
    ok(A.move_rights(rid(), h.m1, sync::Account::kWallet, 1000, h.b_id), "move m1 to B");
    if (err.empty()) err = ship(A, B, 1);
    ok(B.spend(rid(), h.m1, 800, "R-7"), "B spends m1");
    ok(B.earn(rid(), h.m1, 5000, "R-8"), "B earn m1");
    const sync::MemberId m3 = member(ok(B.enroll({rid(), "40000003", "Cy Diaz", "", ""}), "m3"));
    ok(B.topup(rid(), m3, 2500, "R-8b"), "topup m3");
    if (err.empty()) err = ship(A, HQ, 1);
    if (err.empty()) err = ship(B, HQ, 1);
    if (!err.empty()) return err;
    auto cp1 = node::hq_checkpoint(h.hq, clock);
    if (!cp1.is_ok()) return "checkpoint 1: " + cp1.status().to_string();

    // Day 2: more ops everywhere, C and HQ join in; a second round of checkpoints; a tail.
    clock.set(kDay2Ms);
    ok(A.topup(rid(), h.m2, 200, "R-9"), "topup m2");
    ok(A.spend(rid(), h.m2, 100, "R-10"), "spend m2");
    ok(B.spend(rid(), h.m1, 100, "R-11"), "B spends m1 again");
    h.m4 = member(ok(C.enroll({rid(), "40000004", "Di Evans", "", ""}), "enroll m4"));
    ok(C.topup(rid(), h.m4, 500, "R-12"), "topup m4");
    ok(HQ.enroll({rid(), "40000005", "Ed Fox", "", ""}), "enroll m5");
    if (err.empty()) err = ship(A, HQ, 11);
    if (err.empty()) err = ship(B, HQ, 5);
    if (err.empty()) err = ship(C, HQ, 1);
    if (!err.empty()) return err;
    auto cp2 = node::hq_checkpoint(h.hq, clock);
    if (!cp2.is_ok()) return "checkpoint 2: " + cp2.status().to_string();
    ok(A.earn(rid(), h.m2, 2000, "R-13"), "earn m2");
    if (err.empty()) err = ship(A, HQ, 13);
    if (!err.empty()) return err;
    auto rev = node::hq_revoke(h.hq, "store-c", 2, false, clock);
    if (!rev.is_ok()) return "revoke: " + rev.status().to_string();
    auto vv = HQ.store().version_vector();
    if (!vv.is_ok()) return vv.status().to_string();
    for (const auto& [o, s] : *vv) h.ops += s;

    h.bundle = h.tmp.file("bundle");
    node::ExportOptions opts;
    opts.out_dir = h.bundle;
    auto ex = node::export_audit(h.hq, opts, clock);
    if (!ex.is_ok()) return "export: " + ex.status().to_string();
    h.partial = h.tmp.file("bundle-day2");
    opts.out_dir = h.partial;
    opts.from = "2024-03-02";
    ex = node::export_audit(h.hq, opts, clock);
    if (!ex.is_ok()) return "partial export: " + ex.status().to_string();
    return "";
  }

  // A private copy of the clean (or partial) bundle for one test to tamper with.
  std::string copy_bundle(bool partial = false) {
    std::string dst = tmp_.file("bundle");
    fs::copy(partial ? h().partial : h().bundle, dst, fs::copy_options::recursive);
    return dst;
  }
  static std::string ops_file(const std::string& bundle, const NodeId& origin) {
    return bundle + "/ops/" + sync::id_hex(origin) + ".ops";
  }
  static crypto::PublicKey root() {
    auto k = audit::parse_root_key(h().root_hex);
    EXPECT_TRUE(k.is_ok());
    return k.is_ok() ? *k : crypto::PublicKey{};
  }
  static crypto::SigningKey node_key(const std::string& dir) {
    auto k = crypto::read_signing_key(dir + "/node.key");
    EXPECT_TRUE(k.is_ok()) << k.status().to_string();
    return std::move(k).value();
  }

  // Recomputes the manifest's file sizes and digests (and lists new ops files), as a careful
  // forger would: the verifier must not rely on the unsigned manifest.
  static void rehash(const std::string& bundle) {
    const std::string path = bundle + "/manifest.json";
    Json m = Json::parse(test::read_file(path));
    std::set<std::string> listed;
    for (auto& f : m["files"]) {
      const std::string rel = f["path"].get<std::string>();
      listed.insert(rel);
      const auto data = read_bytes(bundle + "/" + rel);
      f["bytes"] = data.size();
      f["sha256"] = crypto::to_hex(crypto::sha256(data));
    }
    for (const auto& it : fs::directory_iterator(bundle + "/ops")) {
      const std::string rel = "ops/" + it.path().filename().string();
      if (listed.count(rel)) continue;
      const auto data = read_bytes(bundle + "/" + rel);
      m["files"].push_back(
          {{"path", rel}, {"bytes", data.size()}, {"sha256", crypto::to_hex(crypto::sha256(data))}});
      m["origins"].push_back({{"origin", it.path().stem().string()}, {"file", rel}});
    }
    test::write_file(path, m.dump(2));
  }

  // Verifies with the pipeline and with the stages one after another, and expects the same
  // report from both (the pipeline's fast path gives up at the first op it cannot accept).
  static Report verify(const std::string& bundle, std::optional<crypto::PublicKey> key = {}) {
    audit::VerifyOptions o;
    o.root = key ? *key : root();
    auto r = audit::verify_bundle(bundle, o);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    o.pipeline = false;
    auto serial = audit::verify_bundle(bundle, o);
    EXPECT_TRUE(serial.is_ok()) << serial.status().to_string();
    if (r.is_ok() && serial.is_ok()) {
      EXPECT_EQ(audit::report_json(*r).dump(2), audit::report_json(*serial).dump(2))
          << "the pipeline and the serial stages disagree";
    }
    return r.is_ok() ? *r : Report{};
  }
  static std::multiset<std::string> kinds(const Report& r) {
    std::multiset<std::string> out;
    for (const auto& f : r.findings) out.insert(f.kind);
    return out;
  }
  static std::string dump(const Report& r) { return audit::report_text(r); }

  // Expects exactly one finding, of `kind`, about `origin`:`seq` (seq 0: any).
  static void expect_only(const Report& r, const std::string& kind, const NodeId* origin,
                          std::uint64_t seq) {
    ASSERT_EQ(r.findings.size(), 1u) << dump(r);
    const audit::Finding& f = r.findings[0];
    EXPECT_EQ(f.kind, kind) << dump(r);
    if (origin) {
      EXPECT_EQ(f.origin, sync::id_hex(*origin)) << dump(r);
    }
    if (seq) {
      EXPECT_EQ(f.seq, seq) << dump(r);
    }
  }

  // The next op of `origin` after its last one in the bundle, ready to be altered and signed.
  static sync::Op next_op(const std::string& bundle, const NodeId& origin) {
    const auto frames = op_frames(ops_file(bundle, origin));
    const sync::SignedOp& last = frames.back().op;
    sync::Op op;
    op.kind = sync::OpKind::kTopup;
    op.origin = origin;
    op.seq = last.op.seq + 1;
    op.prev = last.hash;
    op.hlc = sync::Hlc{last.op.hlc.wall_ms + 1000, 0};
    op.member = last.op.member;
    op.account = sync::Account::kWallet;
    op.amount = 100;
    op.request_id = "tamper-1";
    return op;
  }
  static void append(const std::string& file, const sync::SignedOp& op) {
    auto data = read_bytes(file);
    const Bytes f = frame_bytes(op);
    data.insert(data.end(), f.begin(), f.end());
    write_bytes(file, data);
  }

  // The chain's root signing key, as HQ holds it: for cases where HQ itself signs something wrong.
  static crypto::SigningKey root_signing_key() {
    auto seed = crypto::read_key_file(h().hq + "/root.key", node::kRootKeyKind);
    EXPECT_TRUE(seed.is_ok()) << seed.status().to_string();
    auto key = crypto::SigningKey::from_seed(seed->view());
    EXPECT_TRUE(key.is_ok());
    return std::move(key).value();
  }

  // The signed records of a bundle file, and the file written back from (edited) records.
  struct Record {
    Bytes body;
    crypto::Signature sig{};
  };
  static std::vector<Record> read_records(const std::string& path) {
    const auto data = read_bytes(path);
    std::vector<Record> out;
    std::size_t offset = 0;
    while (offset < data.size()) {
      auto f = sync::read_frame(data, offset, sync::kTreeHeadSetBytesMax);
      EXPECT_TRUE(f.is_ok()) << f.status().to_string();
      if (!f.is_ok()) break;
      out.push_back(Record{Bytes(f->body.begin(), f->body.end()), f->sig});
    }
    return out;
  }
  static void write_records(const std::string& path, const std::vector<Record>& records) {
    sync::ByteWriter w;
    for (const Record& r : records) sync::write_frame(w, r.body, r.sig);
    write_bytes(path, w.bytes());
  }
  static std::vector<sync::TreeHeadSet> tree_head_sets(const std::string& bundle) {
    std::vector<sync::TreeHeadSet> out;
    for (const Record& r : read_records(bundle + "/tree_heads.bin")) {
      auto set = sync::decode_tree_head_set(r.body);
      EXPECT_TRUE(set.is_ok()) << set.status().to_string();
      if (set.is_ok()) out.push_back(*set);
    }
    return out;
  }
  // Replaces tree_heads.bin by `sets`, each signed with the real root key (HQ lying).
  static void write_tree_head_sets(const std::string& bundle,
                                   const std::vector<sync::TreeHeadSet>& sets) {
    const crypto::SigningKey root = root_signing_key();
    std::vector<Record> records;
    for (const auto& set : sets) {
      const sync::SignedTreeHeadSet s = sync::sign_tree_head_set(set, root);
      records.push_back(Record{s.body, s.sig});
    }
    write_records(bundle + "/tree_heads.bin", records);
  }
  // Removes every checkpoint of `origin` from checkpoints.bin.
  static void drop_checkpoints(const std::string& bundle, const NodeId& origin) {
    std::vector<Record> kept;
    for (const Record& r : read_records(bundle + "/checkpoints.bin")) {
      auto cp = sync::decode_checkpoint(r.body);
      ASSERT_TRUE(cp.is_ok());
      if (cp->origin != origin) kept.push_back(r);
    }
    write_records(bundle + "/checkpoints.bin", kept);
  }
  // Removes a file from the bundle and from the manifest's file list.
  static void drop_file(const std::string& bundle, const std::string& rel) {
    fs::remove(bundle + "/" + rel);
    const std::string path = bundle + "/manifest.json";
    Json m = Json::parse(test::read_file(path));
    Json files = Json::array();
    for (const auto& f : m["files"]) {
      if (f["path"] != rel) files.push_back(f);
    }
    m["files"] = files;
    test::write_file(path, m.dump(2));
  }
  // Removes an origin as a careful forger would: its ops file, its manifest entry, its lines of
  // ops.jsonl and its checkpoints; then fixes the manifest's digests.
  static void drop_origin(const std::string& bundle, const NodeId& origin) {
    const std::string hex = sync::id_hex(origin);
    drop_file(bundle, "ops/" + hex + ".ops");
    const std::string path = bundle + "/manifest.json";
    Json m = Json::parse(test::read_file(path));
    Json origins = Json::array();
    for (const auto& o : m["origins"]) {
      if (o["origin"] != hex) origins.push_back(o);
    }
    m["origins"] = origins;
    test::write_file(path, m.dump(2));
    std::string jsonl, line;
    std::istringstream in(test::read_file(bundle + "/ops.jsonl"));
    while (std::getline(in, line)) {
      if (Json::parse(line)["origin"] != hex) jsonl += line + "\n";
    }
    test::write_file(bundle + "/ops.jsonl", jsonl);
    drop_checkpoints(bundle, origin);
    rewrite_balances(bundle);
    rehash(bundle);
  }
  // Writes balances.json as the remaining ops give it (what a forger who removed ops would do).
  static void rewrite_balances(const std::string& bundle) {
    sync::Replica replica;
    for (const auto& it : fs::directory_iterator(bundle + "/ops")) {
      for (const FrameAt& f : op_frames(it.path().string())) {
        ASSERT_TRUE(replica.apply(f.op.op).is_ok());
      }
    }
    Json members = Json::array();
    for (const auto& [id, m] : replica.members()) {
      members.push_back(audit::bundle::balance_json(id, m));
    }
    const std::string path = bundle + "/balances.json";
    Json j = Json::parse(test::read_file(path));
    j["members"] = members;
    test::write_file(path, j.dump());
  }
  static const audit::CheckResult* check_named(const Report& r, const std::string& prefix) {
    for (const auto& c : r.checks) {
      if (c.name.rfind(prefix, 0) == 0) return &c;
    }
    return nullptr;
  }

  test::TempDir tmp_{"outpost-audit-case"};
};

TEST_F(AuditTest, CleanBundleVerifiesClean) {
  const Report r = verify(h().bundle);
  EXPECT_TRUE(r.clean()) << dump(r);
  for (const auto& c : r.checks) EXPECT_EQ(c.status, "ok") << c.name << ": " << c.detail;
  EXPECT_EQ(r.counts["ops"], h().ops);
  EXPECT_EQ(r.counts["ops_replayed"], h().ops);
  EXPECT_EQ(r.counts["origins"], 4u);
  EXPECT_EQ(r.counts["rosters_trusted"], 5u);
  EXPECT_EQ(r.counts["checkpoints"], 6u);
  EXPECT_EQ(r.counts["checkpoints_matched"], 6u);
  EXPECT_EQ(r.counts["members_compared"], 5u);
  EXPECT_EQ(r.counts["members_not_compared"], 0u);
  // Two rounds of `hq checkpoint`, two tree head sets; the newest lists all four nodes and every
  // op HQ held then (all but A:13).
  EXPECT_EQ(r.counts["tree_heads"], 2u);
  EXPECT_EQ(r.counts["tree_heads_signature_ok"], 2u);
  ASSERT_TRUE(r.tree_head.is_object());
  EXPECT_EQ(r.tree_head["version"], 2u);
  EXPECT_EQ(r.tree_head["origins"], 4u);
  EXPECT_EQ(r.tree_head["ops"], h().ops - 1);
  EXPECT_TRUE(r.completeness_proven) << r.completeness_reason;
  EXPECT_EQ(r.result(), "clean");
  EXPECT_EQ(r.exit_code(), audit::kExitClean);
}

TEST_F(AuditTest, VerifyGivesTheSameAnswerWithOneWorker) {
  audit::VerifyOptions o;
  o.root = root();
  o.workers = 1;
  auto r = audit::verify_bundle(h().bundle, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->clean()) << dump(*r);
}

TEST_F(AuditTest, FlippedByteInAnOpsSignatureIsBadSignature) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  const auto frames = op_frames(file);
  auto data = read_bytes(file);
  data[frames[2].offset + frames[2].size - 10] ^= 0x40;  // inside the signature of A:3
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "bad_signature", &h().a_id, 3);
}

TEST_F(AuditTest, FlippedByteInAnOpsAmountIsBadSignature) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  const auto frames = op_frames(file);
  auto data = read_bytes(file);
  data[frames[2].offset + 4 + 91] ^= 0x01;  // amount, offset 91 of the signed bytes
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "bad_signature", &h().a_id, 3);
}

TEST_F(AuditTest, DeletedOpIsSeqGap) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  const auto frames = op_frames(file);
  auto data = read_bytes(file);
  data.erase(data.begin() + static_cast<long>(frames[3].offset),
             data.begin() + static_cast<long>(frames[3].offset + frames[3].size));
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "seq_gap", &h().a_id, 4);
}

TEST_F(AuditTest, SwappedOpsAreOutOfOrder) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  const auto frames = op_frames(file);
  const auto data = read_bytes(file);
  Bytes out(data.begin(), data.begin() + static_cast<long>(frames[3].offset));
  for (int k : {4, 3}) {
    const auto& f = frames[static_cast<std::size_t>(k)];
    out.insert(out.end(), data.begin() + static_cast<long>(f.offset),
               data.begin() + static_cast<long>(f.offset + f.size));
  }
  out.insert(out.end(), data.begin() + static_cast<long>(frames[5].offset), data.end());
  ASSERT_EQ(out.size(), data.size());
  write_bytes(file, out);
  rehash(b);
  expect_only(verify(b), "out_of_order", &h().a_id, 4);
}

TEST_F(AuditTest, OpSignedWithANonEnrolledKeyIsBadSignature) {
  const std::string b = copy_bundle();
  const sync::Op op = next_op(b, h().a_id);
  append(ops_file(b, h().a_id), sync::sign_op(op, crypto::SigningKey::generate()));
  rehash(b);
  expect_only(verify(b), "bad_signature", &h().a_id, op.seq);
}

TEST_F(AuditTest, OpsOfAnOriginNoRosterListsAreUnknownOrigin) {
  const std::string b = copy_bundle();
  sync::Op op;
  op.kind = sync::OpKind::kEnroll;
  crypto::random_bytes(op.origin);
  op.seq = 1;
  op.hlc = sync::Hlc{kDay2Ms, 0};
  crypto::random_bytes(op.member);
  op.fields = {{sync::Field::kCard, "40009999"}};
  NodeId forger = op.origin;
  append(ops_file(b, forger), sync::sign_op(op, crypto::SigningKey::generate()));
  rehash(b);
  expect_only(verify(b), "unknown_origin", &forger, 0);
}

TEST_F(AuditTest, OpOfARevokedNodeAfterItsCutoffIsRevokedOp) {
  const std::string b = copy_bundle();
  const sync::Op op = next_op(b, h().c_id);
  ASSERT_EQ(op.seq, 3u);  // C was revoked after seq 2
  append(ops_file(b, h().c_id), sync::sign_op(op, node_key(h().c)));
  rehash(b);
  expect_only(verify(b), "revoked_op", &h().c_id, 3);
}

TEST_F(AuditTest, SecondOpSignedForOneSeqIsEquivocation) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  const auto frames = op_frames(file);
  sync::Op twin = frames[2].op.op;  // A:3, signed again with another receipt
  twin.receipt = "R-forked";
  const Bytes f = frame_bytes(sync::sign_op(twin, node_key(h().a)));
  auto data = read_bytes(file);
  const auto at = static_cast<long>(frames[2].offset + frames[2].size);
  data.insert(data.begin() + at, f.begin(), f.end());
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "equivocation", &h().a_id, 3);
}

TEST_F(AuditTest, TruncatedTailBehindACheckpointIsMissingCheckpointedOps) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().b_id);
  const auto frames = op_frames(file);
  ASSERT_EQ(frames.size(), 5u);  // all of B's ops are checkpointed (second round)
  auto data = read_bytes(file);
  data.resize(frames[3].offset);  // drop B:4 and B:5
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "missing_checkpointed_ops", &h().b_id, 4);
}

TEST_F(AuditTest, AlteredCheckpointRootFailsItsSignature) {
  const std::string b = copy_bundle();
  const std::string file = b + "/checkpoints.bin";
  auto data = read_bytes(file);
  data[4 + 45] ^= 0x01;  // first byte of the first checkpoint's root
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "checkpoint_signature", nullptr, 0);
}

TEST_F(AuditTest, CheckpointSignedOverAnotherRootIsCheckpointConflict) {
  const std::string b = copy_bundle();
  const std::string file = b + "/checkpoints.bin";
  // HQ (holding the real root key) signs a head that is not the tree of A's ops; its tree head
  // set holds the true head for the same size, so HQ contradicts itself.
  std::vector<Record> records = read_records(file);
  std::optional<sync::Checkpoint> lied;
  for (Record& r : records) {
    auto cp = sync::decode_checkpoint(r.body);
    ASSERT_TRUE(cp.is_ok());
    if (!lied && cp->origin == h().a_id) {
      cp->root[0] ^= 0x01;
      lied = *cp;
      const sync::SignedCheckpoint s = sync::sign_checkpoint(*cp, root_signing_key());
      r = Record{s.body, s.sig};
    }
  }
  ASSERT_TRUE(lied.has_value());
  write_records(file, records);
  rehash(b);
  const Report r = verify(b);
  expect_only(r, "checkpoint_conflict", &h().a_id, lied->tree_size);
  EXPECT_NE(r.findings[0].reason.find("the ops match the tree head set v1's"), std::string::npos)
      << dump(r);
}

TEST_F(AuditTest, HeadSignedOverAnotherRootEverywhereIsRootMismatch) {
  const std::string b = copy_bundle();
  // HQ lies consistently: A's newest checkpoint and its line in the newest tree head set both
  // carry a root that is not the tree of A's ops.
  std::vector<Record> records = read_records(b + "/checkpoints.bin");
  std::uint64_t newest = 0;
  for (const Record& r : records) {
    auto cp = sync::decode_checkpoint(r.body);
    ASSERT_TRUE(cp.is_ok());
    if (cp->origin == h().a_id) newest = std::max(newest, cp->tree_size);
  }
  sync::Hash32 lie{};
  for (Record& r : records) {
    auto cp = sync::decode_checkpoint(r.body);
    if (cp->origin != h().a_id || cp->tree_size != newest) continue;
    cp->root[0] ^= 0x01;
    lie = cp->root;
    const sync::SignedCheckpoint s = sync::sign_checkpoint(*cp, root_signing_key());
    r = Record{s.body, s.sig};
  }
  write_records(b + "/checkpoints.bin", records);
  auto sets = tree_head_sets(b);
  ASSERT_EQ(sets.size(), 2u);
  for (auto& head : sets[1].heads) {
    if (head.origin == h().a_id) {
      ASSERT_EQ(head.tree_size, newest);
      head.root = lie;
    }
  }
  write_tree_head_sets(b, sets);
  rehash(b);
  expect_only(verify(b), "checkpoint_root_mismatch", &h().a_id, newest);
}

// --- completeness: HQ's tree head sets ---

TEST_F(AuditTest, OriginRemovedWithItsManifestEntryAndCheckpointsIsMissingOrigin) {
  const std::string b = copy_bundle();
  drop_origin(b, h().b_id);
  const Report r = verify(b);
  expect_only(r, "missing_origin", &h().b_id, 5);  // all five of B's ops were checkpointed
  EXPECT_NE(r.findings[0].reason.find("store-b"), std::string::npos) << dump(r);
  const audit::CheckResult* c = check_named(r, "completeness");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, "failed");
}

TEST_F(AuditTest, OriginRemovedTogetherWithTheTreeHeadSetsIsTreeHeadsMissing) {
  const std::string b = copy_bundle();
  drop_origin(b, h().b_id);
  drop_file(b, "tree_heads.bin");
  rehash(b);
  expect_only(verify(b), "tree_heads_missing", nullptr, 0);
}

TEST_F(AuditTest, RemovedTreeHeadSetsAreTreeHeadsMissing) {
  const std::string b = copy_bundle();
  drop_file(b, "tree_heads.bin");
  rehash(b);
  const Report r = verify(b);
  expect_only(r, "tree_heads_missing", nullptr, 0);
  EXPECT_TRUE(r.tree_head.is_null());
}

TEST_F(AuditTest, BundleWithNoSignedHeadAtAllSaysCompletenessIsNotProven) {
  // Nothing HQ-signed is left to say what must be present, so nothing can be found missing: the
  // report stays free of findings but says, in the completeness check and the text, that
  // completeness is not proven (docs/audit-bundle.md, "Completeness").
  const std::string b = copy_bundle();
  drop_origin(b, h().b_id);
  drop_file(b, "tree_heads.bin");
  write_bytes(b + "/checkpoints.bin", {});  // emptied: the verifier expects the file
  rehash(b);
  const Report r = verify(b);
  EXPECT_TRUE(r.clean()) << dump(r);
  const audit::CheckResult* c = check_named(r, "completeness");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, "skipped");
  EXPECT_NE(dump(r).find("completeness: NOT PROVEN"), std::string::npos) << dump(r);
  EXPECT_TRUE(audit::report_json(r)["tree_head"].is_null());
  EXPECT_FALSE(r.completeness_proven);
  EXPECT_EQ(r.exit_code(), audit::kExitIncomplete) << "not proven is not clean";
  EXPECT_EQ(audit::report_json(r)["result"], "incomplete");
}

TEST_F(AuditTest, AlteredTreeHeadSetFailsItsSignature) {
  const std::string b = copy_bundle();
  const std::string file = b + "/tree_heads.bin";
  auto data = read_bytes(file);
  data[4 + 53 + 16] ^= 0x01;  // tree size of the first set's first head
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "tree_heads_signature", nullptr, 0);
}

TEST_F(AuditTest, LogCutBelowItsTreeHeadIsMissingCheckpointedOpsEvenWithoutCheckpoints) {
  const std::string b = copy_bundle();
  drop_checkpoints(b, h().a_id);  // only the tree head sets vouch for A's log now
  const std::string file = ops_file(b, h().a_id);
  const auto frames = op_frames(file);
  ASSERT_EQ(frames.size(), 13u);  // set v1 holds 10 of A's ops, v2 12
  auto data = read_bytes(file);
  data.resize(frames[10].offset);  // keep A:1..10
  write_bytes(file, data);
  rehash(b);
  const Report r = verify(b);
  expect_only(r, "missing_checkpointed_ops", &h().a_id, 11);
  EXPECT_NE(r.findings[0].reason.find("tree head set v2"), std::string::npos) << dump(r);
}

TEST_F(AuditTest, TreeHeadSetThatLeavesOutARosterNodeIsTreeHeadsRoster) {
  const std::string b = copy_bundle();
  auto sets = tree_head_sets(b);
  ASSERT_EQ(sets.size(), 2u);
  sync::TreeHeadSet newest = sets[1];
  std::erase_if(newest.heads, [&](const sync::TreeHead& t) { return t.origin == h().c_id; });
  write_tree_head_sets(b, {newest});
  rehash(b);
  expect_only(verify(b), "tree_heads_roster", &h().c_id, 0);
}

TEST_F(AuditTest, LaterTreeHeadSetThatShrinksALogIsTreeHeadsSuccessor) {
  const std::string b = copy_bundle();
  auto sets = tree_head_sets(b);
  ASSERT_EQ(sets.size(), 2u);
  // v1 now claims B's five ops (true: they are B's first five), v2 only the first four.
  auto b_line = [&](sync::TreeHeadSet& s) -> sync::TreeHead& {
    for (auto& t : s.heads) {
      if (t.origin == h().b_id) return t;
    }
    ADD_FAILURE() << "no line for B";
    return s.heads[0];
  };
  std::swap(b_line(sets[0]), b_line(sets[1]));
  write_tree_head_sets(b, sets);
  rehash(b);
  expect_only(verify(b), "tree_heads_successor", &h().b_id, 4);
}

TEST_F(AuditTest, TwoTreeHeadSetsWithOneVersionAreTreeHeadsConflict) {
  const std::string b = copy_bundle();
  auto sets = tree_head_sets(b);
  ASSERT_EQ(sets.size(), 2u);
  sync::TreeHeadSet twin = sets[1];
  twin.issued.wall_ms += 1;
  sets.push_back(twin);
  write_tree_head_sets(b, sets);
  rehash(b);
  expect_only(verify(b), "tree_heads_conflict", nullptr, 2);
}

TEST_F(AuditTest, HqCheckpointSignsANewTreeHeadSetOnlyWhenAHeadMoves) {
  sync::ManualEnv clock(kDay1Ms);
  const std::string hq = tmp_.file("hq");
  ASSERT_TRUE(node::hq_init(hq, "hq", 3650, clock).is_ok());
  auto first = node::hq_checkpoint(hq, clock);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  // A fresh HQ holds no op, yet its set lists it (an empty log): every roster node has a line.
  EXPECT_EQ((*first)["tree_heads"]["version"], 1u);
  EXPECT_EQ((*first)["tree_heads"]["new"], true);
  EXPECT_EQ((*first)["tree_heads"]["origins"], 1u);
  EXPECT_EQ((*first)["tree_heads"]["ops"], 0u);
  auto again = node::hq_checkpoint(hq, clock);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ((*again)["tree_heads"]["version"], 1u);
  EXPECT_EQ((*again)["tree_heads"]["new"], false);
  {
    auto ledger = Ledger::open(hq, clock);
    ASSERT_TRUE(ledger.is_ok());
    auto r = (*ledger)->enroll({"req-1", "40000001", "Ann Lee", "", ""});
    ASSERT_TRUE(r.is_ok() && !r->refused);
  }
  auto moved = node::hq_checkpoint(hq, clock);
  ASSERT_TRUE(moved.is_ok()) << moved.status().to_string();
  EXPECT_EQ((*moved)["tree_heads"]["version"], 2u);
  EXPECT_EQ((*moved)["tree_heads"]["new"], true);
  EXPECT_EQ((*moved)["tree_heads"]["ops"], 1u);
  EXPECT_NE(node::checkpoint_text(*moved).find("signed tree head set v2"), std::string::npos);

  // Storage keeps one body per version: a second `hq checkpoint` that lost a race is refused.
  auto store = node::open_data_dir_store(hq);
  ASSERT_TRUE(store.is_ok());
  auto latest = (*store)->latest_tree_head_set();
  ASSERT_TRUE(latest.is_ok() && latest->has_value());
  EXPECT_EQ((*latest)->version, 2u);
  EXPECT_EQ((*store)->put_tree_head_set(2, (*latest)->body, (*latest)->sig).code(),
            Code::kInvalidArgument);
  auto versions = (*store)->tree_head_set_versions();
  ASSERT_TRUE(versions.is_ok());
  EXPECT_EQ(*versions, (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(AuditTest, AlteredExportedBalanceIsBalanceMismatch) {
  const std::string b = copy_bundle();
  const std::string file = b + "/balances.json";
  Json j = Json::parse(test::read_file(file));
  bool changed = false;
  for (auto& m : j["members"]) {
    if (m["member"] == sync::id_hex(h().m1)) {
      m["wallet"]["value"] = m["wallet"]["value"].get<std::int64_t>() + 1;
      changed = true;
    }
  }
  ASSERT_TRUE(changed);
  test::write_file(file, j.dump());
  rehash(b);
  const Report r = verify(b);
  expect_only(r, "balance_mismatch", nullptr, 0);
  EXPECT_EQ(r.findings[0].member, sync::id_hex(h().m1));
}

TEST_F(AuditTest, BalancesWrittenWithKeysInAnotherOrderStillMatch) {
  // JSON objects are unordered: an exporter that writes members' keys, and the rights of each
  // account, in another order than this one's describes the same balances.
  const std::string b = copy_bundle();
  const std::string file = b + "/balances.json";
  Json j = Json::parse(test::read_file(file));
  auto reversed = [](const Json& object) {
    std::vector<std::pair<std::string, Json>> items;
    for (const auto& [k, v] : object.items()) items.emplace_back(k, v);
    Json out = Json::object();
    for (auto it = items.rbegin(); it != items.rend(); ++it) out[it->first] = it->second;
    return out;
  };
  bool two_nodes = false;
  Json members = Json::array();
  for (const auto& m : j["members"]) {
    Json entry = reversed(m);
    for (const char* acct : {"points", "wallet"}) {
      two_nodes = two_nodes || m[acct]["rights"].size() > 1;
      entry[acct] = Json{{"rights", reversed(m[acct]["rights"])}, {"value", m[acct]["value"]}};
    }
    members.push_back(entry);
  }
  ASSERT_TRUE(two_nodes) << "some account must hold rights at two nodes";
  j["members"] = members;
  test::write_file(file, j.dump());
  rehash(b);
  const Report r = verify(b);
  EXPECT_TRUE(r.clean()) << dump(r);
}

TEST_F(AuditTest, WrongRootKeyFailsEveryRosterAndStops) {
  const Report r = verify(h().bundle, crypto::SigningKey::generate().public_key());
  const std::vector<std::string> five(5, "roster_signature");
  EXPECT_EQ(kinds(r), std::multiset<std::string>(five.begin(), five.end())) << dump(r);
  for (const auto& c : r.checks) {
    if (c.name != "files" && c.name != "roster chain") {
      EXPECT_EQ(c.status, "skipped") << c.name;
    }
  }
}

TEST_F(AuditTest, TruncatedCheckpointFileIsMalformedFile) {
  const std::string b = copy_bundle();
  const std::string file = b + "/checkpoints.bin";
  auto data = read_bytes(file);
  data.resize(data.size() - 10);  // cuts the last checkpoint's signature
  write_bytes(file, data);
  rehash(b);
  expect_only(verify(b), "malformed_file", nullptr, 0);
}

TEST_F(AuditTest, OpsFileCutInsideAFrameIsMalformedFile) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  auto data = read_bytes(file);
  data.resize(data.size() - 30);  // A:13, beyond every checkpoint, is cut short
  write_bytes(file, data);
  rehash(b);
  const Report r = verify(b);
  expect_only(r, "malformed_file", &h().a_id, 0);
  EXPECT_EQ(r.findings[0].file, "ops/" + sync::id_hex(h().a_id) + ".ops");
}

TEST_F(AuditTest, BalancesThatAreNotJsonAreMalformedFile) {
  const std::string b = copy_bundle();
  test::write_file(b + "/balances.json", "{\"format\": \"outpost-audit-bal");
  rehash(b);
  expect_only(verify(b), "malformed_file", nullptr, 0);
}

TEST_F(AuditTest, TamperingWithoutFixingTheManifestAlsoBreaksTheFileDigest) {
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  auto data = read_bytes(file);
  data[data.size() - 5] ^= 0x01;  // signature of A:13
  write_bytes(file, data);
  EXPECT_EQ(kinds(verify(b)), (std::multiset<std::string>{"bad_signature", "file_hash_mismatch"}));
}

TEST_F(AuditTest, SecondReversalOfAnOpIsDoubleReversal) {
  const std::string b = copy_bundle();
  sync::Op op = next_op(b, h().a_id);
  op.kind = sync::OpKind::kReverse;
  op.member = h().m2;
  op.amount = 3000;
  op.ref_origin = h().a_id;
  op.ref_seq = h().a_topup_m2_seq;
  op.ref_kind = sync::OpKind::kTopup;
  append(ops_file(b, h().a_id), sync::sign_op(op, node_key(h().a)));
  rehash(b);
  expect_only(verify(b), "double_reversal", &h().a_id, op.seq);
}

TEST_F(AuditTest, RequestIdUsedTwiceByOneOriginIsDuplicateRequestId) {
  const std::string b = copy_bundle();
  const auto frames = op_frames(ops_file(b, h().a_id));
  sync::Op op = next_op(b, h().a_id);
  op.kind = sync::OpKind::kProfile;  // changes no compared balance
  op.account = sync::Account::kNone;
  op.amount = 0;
  op.member = h().m1;
  op.fields = {{sync::Field::kName, "Ann Lee-Smith"}};
  op.request_id = frames[0].op.op.request_id;
  append(ops_file(b, h().a_id), sync::sign_op(op, node_key(h().a)));
  rehash(b);
  expect_only(verify(b), "duplicate_request_id", &h().a_id, op.seq);
}

TEST_F(AuditTest, HlcGoingBackwardsWithinAnOriginIsFlagged) {
  const std::string b = copy_bundle();
  sync::Op op = next_op(b, h().a_id);
  op.kind = sync::OpKind::kProfile;
  op.account = sync::Account::kNone;
  op.amount = 0;
  op.member = h().m1;
  op.fields = {{sync::Field::kName, "Ann Lee-Smith"}};
  op.hlc = sync::Hlc{kDay1Ms, 0};
  append(ops_file(b, h().a_id), sync::sign_op(op, node_key(h().a)));
  rehash(b);
  expect_only(verify(b), "hlc_backwards", &h().a_id, op.seq);
}

TEST_F(AuditTest, SpendBeyondTheOriginsRightsIsNegativeRights) {
  const std::string b = copy_bundle();
  sync::Op op = next_op(b, h().a_id);
  op.kind = sync::OpKind::kSpend;
  op.member = h().m1;
  op.amount = 1'000'000;
  append(ops_file(b, h().a_id), sync::sign_op(op, node_key(h().a)));
  rehash(b);
  const Report r = verify(b);
  // The node never applied this op, so its exported balance differs too.
  EXPECT_EQ(kinds(r), (std::multiset<std::string>{"balance_mismatch", "negative_rights",
                                                  "negative_value"}))
      << dump(r);
  for (const auto& f : r.findings) {
    if (f.kind == "negative_rights") {
      EXPECT_EQ(f.seq, op.seq);
    }
  }
}

// --- rights after a move (the per-op check also covers moves) ---

TEST_F(AuditTest, MoveBeyondTheOriginsRightsIsNegativeRightsAtThatSeq) {
  const std::string b = copy_bundle();
  sync::Op op = next_op(b, h().a_id);
  op.kind = sync::OpKind::kMove;
  op.member = h().m1;
  op.amount = 1'000'000;  // far more of m1's wallet rights than A holds
  op.target = h().b_id;
  append(ops_file(b, h().a_id), sync::sign_op(op, node_key(h().a)));
  rehash(b);
  const Report r = verify(b);
  // A move changes no value, only where the rights sit; the node never applied it.
  EXPECT_EQ(kinds(r), (std::multiset<std::string>{"balance_mismatch", "negative_rights"}))
      << dump(r);
  for (const auto& f : r.findings) {
    if (f.kind == "negative_rights") {
      EXPECT_EQ(f.origin, sync::id_hex(h().a_id)) << dump(r);
      EXPECT_EQ(f.seq, op.seq) << "found at the move itself, not only in the final state";
    }
  }
}

TEST_F(AuditTest, MoveBeyondTheOriginsRightsHiddenByLaterCreditsIsStillNegativeRights) {
  const std::string b = copy_bundle();
  sync::Op move = next_op(b, h().a_id);
  move.kind = sync::OpKind::kMove;
  move.member = h().m1;
  move.amount = 1'000'000;
  move.target = h().b_id;
  append(ops_file(b, h().a_id), sync::sign_op(move, node_key(h().a)));
  sync::Op topup = next_op(b, h().a_id);  // credits A enough that its final rights are >= 0
  topup.member = h().m1;
  topup.amount = 1'000'000;
  topup.request_id = "tamper-2";
  append(ops_file(b, h().a_id), sync::sign_op(topup, node_key(h().a)));
  rehash(b);
  const Report r = verify(b);
  EXPECT_EQ(kinds(r), (std::multiset<std::string>{"balance_mismatch", "negative_rights"}))
      << dump(r);
  for (const auto& f : r.findings) {
    if (f.kind == "negative_rights") {
      EXPECT_EQ(f.seq, move.seq) << dump(r);
    }
  }
}

// --- an op with a finding of its own is not replayed (docs/audit-bundle.md, "Findings") ---

TEST_F(AuditTest, AlteredMemberOfAMoveIsOneBadSignatureNotNegativeRightsAtTheReceiver) {
  // The move of m1's wallet rights from A to B has its member byte altered: the op no longer
  // verifies, so nothing says which member it was about. B's spends of the moved rights must not
  // then be reported as overdrafts.
  const std::string b = copy_bundle();
  const std::string file = ops_file(b, h().a_id);
  const auto frames = op_frames(file);
  const FrameAt* move = nullptr;
  for (const FrameAt& f : frames) {
    if (f.op.op.kind == sync::OpKind::kMove) move = &f;
  }
  ASSERT_NE(move, nullptr);
  auto data = read_bytes(file);
  data[move->offset + 4 + 74] ^= 0x01;  // member, offset 74 of the signed bytes
  write_bytes(file, data);
  rehash(b);
  const Report r = verify(b);
  expect_only(r, "bad_signature", &h().a_id, move->op.op.seq);
  const audit::CheckResult* c = check_named(r, "balances");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, "skipped") << "an unauthenticated op names no member to trust";
}

TEST_F(AuditTest, SpendThatReusesARequestIdIsNotReplayed) {
  // A second spend under an applied request id is a finding of its own; replaying it anyway
  // would add overdraft findings that only restate it.
  const std::string b = copy_bundle();
  const auto frames = op_frames(ops_file(b, h().a_id));
  sync::Op op = next_op(b, h().a_id);
  op.kind = sync::OpKind::kSpend;
  op.member = h().m1;
  op.amount = 1'000'000;
  op.request_id = frames[0].op.op.request_id;
  append(ops_file(b, h().a_id), sync::sign_op(op, node_key(h().a)));
  rehash(b);
  const Report r = verify(b);
  expect_only(r, "duplicate_request_id", &h().a_id, op.seq);
  EXPECT_EQ(r.counts["ops_replayed"], h().ops) << "every op but the reused request id";
}

TEST_F(AuditTest, OneOriginsMalformedRangePrefixSpoilsOnlyThatOrigin) {
  const std::string b = copy_bundle(true);
  const std::string path = b + "/manifest.json";
  Json m = Json::parse(test::read_file(path));
  std::size_t origins = 0;
  for (auto& o : m["origins"]) {
    ++origins;
    if (o["origin"] == sync::id_hex(h().a_id)) {
      o["prefix"]["size"] = o["prefix"]["size"].get<std::uint64_t>() + 1;  // not first_seq - 1
    }
  }
  ASSERT_GE(origins, 2u);
  test::write_file(path, m.dump(2));
  const Report r = verify(b);
  expect_only(r, "manifest_mismatch", &h().a_id, 0);
  EXPECT_EQ(r.counts["origins"], origins - 1) << "every other origin's log is still verified";
}

// --- completeness not proven: exit 3 unless --allow-incomplete ---

TEST_F(AuditTest, NodeEnrolledAfterTheNewestTreeHeadSetLeavesCompletenessNotProven) {
  // HQ enrolls a node after it signed its newest tree head set: nothing signed covers that node's
  // log yet, so its removal could not be seen.
  const std::string b = copy_bundle();
  std::vector<Record> rosters = read_records(b + "/rosters.bin");
  auto newest = sync::decode_roster(rosters.back().body);
  ASSERT_TRUE(newest.is_ok());
  sync::Roster next = *newest;
  next.version += 1;
  sync::Certificate cert = next.certificates.back().cert;
  crypto::random_bytes(cert.node_id);
  cert.name = "store-late";
  cert.signing_key = crypto::SigningKey::generate().public_key();
  ASSERT_TRUE(next.put_certificate(sync::sign_certificate(cert, root_signing_key())).is_ok());
  const sync::SignedRoster signed_next = sync::sign_roster(next, root_signing_key());
  rosters.push_back(Record{signed_next.body, signed_next.sig});
  write_records(b + "/rosters.bin", rosters);
  rehash(b);
  const Report r = verify(b);
  EXPECT_TRUE(r.clean()) << dump(r);
  EXPECT_FALSE(r.completeness_proven);
  EXPECT_NE(r.completeness_reason.find("store-late"), std::string::npos) << r.completeness_reason;
  EXPECT_EQ(r.result(), "incomplete");
  EXPECT_EQ(r.exit_code(), audit::kExitIncomplete);
}

TEST_F(AuditTest, MissingManifestMakesTheBundleUnreadable) {
  const std::string b = copy_bundle();
  fs::remove(b + "/manifest.json");
  audit::VerifyOptions o;
  o.root = root();
  EXPECT_EQ(audit::verify_bundle(b, o).status().code(), Code::kNotFound);
  test::write_file(b + "/manifest.json", "[]");
  EXPECT_EQ(audit::verify_bundle(b, o).status().code(), Code::kInvalidArgument);
  test::write_file(b + "/manifest.json", R"({"format":"outpost-audit-bundle","version":9})");
  EXPECT_EQ(audit::verify_bundle(b, o).status().code(), Code::kUnsupported);
}

TEST_F(AuditTest, DateRangeBundleVerifiesFromItsPrefix) {
  const Report r = verify(h().partial);
  EXPECT_TRUE(r.clean()) << dump(r);
  EXPECT_TRUE(r.partial);
  EXPECT_LT(r.counts["ops"].get<std::uint64_t>(), h().ops);
  // A's day-1 checkpoint sits exactly at the prefix; its day-2 one covers the exported ops.
  EXPECT_GE(r.counts["checkpoints_matched"].get<std::uint64_t>(), 4u);
  for (const auto& c : r.checks) {
    if (c.name == "balances") {
      EXPECT_EQ(c.status, "skipped");
    }
  }
  // A whole origin with no op left in the range cannot be told from a removed one.
  EXPECT_FALSE(r.completeness_proven);
  EXPECT_NE(r.completeness_reason.find("date-range"), std::string::npos) << r.completeness_reason;
}

TEST_F(AuditTest, DateRangeBundleWithAForgedPrefixIsPrefixMismatch) {
  const std::string b = copy_bundle(true);
  Json m = Json::parse(test::read_file(b + "/manifest.json"));
  bool changed = false;
  for (auto& o : m["origins"]) {
    if (o["origin"] == sync::id_hex(h().a_id)) {
      ASSERT_FALSE(o["prefix"]["frontier"].empty());
      std::string f = o["prefix"]["frontier"][0].get<std::string>();
      f[0] = f[0] == '0' ? '1' : '0';
      o["prefix"]["frontier"][0] = f;
      changed = true;
    }
  }
  ASSERT_TRUE(changed);
  test::write_file(b + "/manifest.json", m.dump(2));
  expect_only(verify(b), "prefix_mismatch", &h().a_id, 0);
}

TEST_F(AuditTest, InclusionProofOfAnOpVerifiesAndAnAlteredOneDoesNot) {
  auto proof = audit::prove_inclusion(h().bundle, h().a_id, 5);
  ASSERT_TRUE(proof.is_ok()) << proof.status().to_string();
  EXPECT_EQ((*proof)["tree_size"], 12u);  // A's line in the newest tree head set
  auto ok = audit::verify_inclusion_proof(*proof, root());
  ASSERT_TRUE(ok.is_ok());
  EXPECT_TRUE(ok->valid) << ok->failure;

  Json bad = *proof;
  std::string p = bad["audit_path"][0].get<std::string>();
  p[5] = p[5] == 'a' ? 'b' : 'a';
  bad["audit_path"][0] = p;
  auto r = audit::verify_inclusion_proof(bad, root());
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->valid);

  auto other = audit::verify_inclusion_proof(*proof, crypto::SigningKey::generate().public_key());
  ASSERT_TRUE(other.is_ok());
  EXPECT_FALSE(other->valid);
  EXPECT_EQ(audit::prove_inclusion(h().bundle, h().a_id, 13).status().code(), Code::kNotFound)
      << "A:13 was never checkpointed";
}

TEST_F(AuditTest, ExplainTracesAMembersBalanceThroughEveryOrigin) {
  audit::VerifyOptions o;
  o.root = root();
  o.trace_member = h().m1;
  auto r = audit::verify_bundle(h().bundle, o);
  ASSERT_TRUE(r.is_ok());
  std::set<std::string> origins;
  for (const auto& t : r->trace) origins.insert(t.op.substr(0, 32));
  EXPECT_EQ(origins, (std::set<std::string>{sync::id_hex(h().a_id), sync::id_hex(h().b_id)}));
  ASSERT_FALSE(r->trace.empty());
  EXPECT_EQ(r->traced_final["wallet"]["value"], r->trace.back().wallet);
  EXPECT_EQ(r->traced_final, r->traced_exported);
  o.pipeline = false;  // the serial stages trace the same ops, in the same order
  auto serial = audit::verify_bundle(h().bundle, o);
  ASSERT_TRUE(serial.is_ok());
  ASSERT_EQ(serial->trace.size(), r->trace.size());
  for (std::size_t i = 0; i < r->trace.size(); ++i) {
    EXPECT_EQ(serial->trace[i].op, r->trace[i].op);
    EXPECT_EQ(serial->trace[i].wallet, r->trace[i].wallet);
    EXPECT_EQ(serial->trace[i].rights_at_origin, r->trace[i].rights_at_origin);
  }
  auto by_card = audit::find_member(h().bundle, "40000001");
  ASSERT_TRUE(by_card.is_ok());
  EXPECT_EQ(*by_card, h().m1);
}

// --- the binaries ---

test::CommandResult audit_cli(const std::vector<std::string>& args) {
  return test::run_command(OUTPOST_AUDIT_CLI, args);
}
test::CommandResult outpost_cli(const std::vector<std::string>& args) {
  test::ProcessOptions o;
  o.extra_env["OUTPOST_DATA"] = "";
  return test::run_command(OUTPOST_CLI, args, o);
}

TEST_F(AuditTest, AuditCliExitCodesAreZeroCleanOneFindingsTwoUsage) {
  auto clean = audit_cli({"verify", h().bundle, "--root", h().root_hex, "--json"});
  ASSERT_TRUE(clean.exit.exited_with(0)) << clean.describe();
  EXPECT_TRUE(Json::parse(clean.out)["clean"].get<bool>());

  const std::string b = copy_bundle();
  const std::string key_file = tmp_.file("root.hex");
  test::write_file(key_file, h().root_hex + "\n");
  test::write_file(b + "/balances.json", "{");
  rehash(b);
  auto dirty = audit_cli({"verify", b, "--root", key_file, "--json"});
  ASSERT_TRUE(dirty.exit.exited_with(1)) << dirty.describe();
  Json rep = Json::parse(dirty.out);
  EXPECT_FALSE(rep["clean"].get<bool>());
  EXPECT_EQ(rep["findings"][0]["kind"], "malformed_file");
  auto text = audit_cli({"verify", b, "--root", h().root_hex});
  EXPECT_TRUE(text.exit.exited_with(1));
  EXPECT_NE(text.out.find("malformed_file"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("RESULT: FAILED"), std::string::npos) << text.out;

  EXPECT_TRUE(audit_cli({"verify", h().bundle}).exit.exited_with(2)) << "no --root";
  EXPECT_TRUE(audit_cli({"verify", h().bundle, "--root", "abcd"}).exit.exited_with(2));
  EXPECT_TRUE(audit_cli({"verify", tmp_.file("nope"), "--root", h().root_hex}).exit.exited_with(2));
  EXPECT_TRUE(audit_cli({"frobnicate"}).exit.exited_with(2));
  for (const char* sub : {"verify", "explain", "prove", "verify-proof", "consistency"}) {
    auto help = audit_cli({sub, "--help"});
    EXPECT_TRUE(help.exit.exited_with(0)) << sub;
    EXPECT_NE(help.out.find(sub), std::string::npos) << help.out;
  }
  EXPECT_TRUE(audit_cli({"--help"}).exit.exited_with(0));
}

TEST_F(AuditTest, BundleWithAnOriginRemovedAndItsSignedHeadsEmptiedExitsThreeUnlessAllowed) {
  // The forger removes store B and empties both signed head files: nothing HQ signed is left to
  // show the removal, so verify cannot prove completeness and must not exit 0 by default.
  const std::string b = copy_bundle();
  drop_origin(b, h().b_id);
  write_bytes(b + "/tree_heads.bin", {});
  write_bytes(b + "/checkpoints.bin", {});
  rehash(b);
  auto text = audit_cli({"verify", b, "--root", h().root_hex, "--no-progress"});
  EXPECT_TRUE(text.exit.exited_with(3)) << text.describe();
  EXPECT_NE(text.out.find("completeness: NOT PROVEN"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("RESULT: INCOMPLETE"), std::string::npos) << text.out;
  auto json = audit_cli({"verify", b, "--root", h().root_hex, "--json", "--no-progress"});
  EXPECT_TRUE(json.exit.exited_with(3)) << json.describe();
  Json rep = Json::parse(json.out);
  EXPECT_EQ(rep["result"], "incomplete");
  EXPECT_EQ(rep["completeness"]["proven"], false);
  EXPECT_TRUE(rep["completeness"]["reason"].is_string());

  auto allowed = audit_cli({"verify", b, "--root", h().root_hex, "--allow-incomplete", "--json"});
  EXPECT_TRUE(allowed.exit.exited_with(0)) << allowed.describe();
  rep = Json::parse(allowed.out);
  EXPECT_EQ(rep["result"], "incomplete_allowed");
  EXPECT_EQ(rep["completeness"]["allow_incomplete"], true);
  auto allowed_text = audit_cli({"verify", b, "--root", h().root_hex, "--allow-incomplete"});
  EXPECT_TRUE(allowed_text.exit.exited_with(0)) << allowed_text.describe();
  EXPECT_NE(allowed_text.out.find("accepted with --allow-incomplete"), std::string::npos)
      << allowed_text.out;
  // Findings still win over the flag.
  test::write_file(b + "/balances.json", "{");
  rehash(b);
  EXPECT_TRUE(
      audit_cli({"verify", b, "--root", h().root_hex, "--allow-incomplete"}).exit.exited_with(1));
}

TEST_F(AuditTest, HqBundleProvesCompletenessOnlyAfterHqCheckpoint) {
  // An HQ that never signed a tree head set exports a bundle that cannot prove completeness: the
  // exporter warns, verify exits 3. After `hq checkpoint` the same chain's bundle exits 0.
  const std::string hq = tmp_.file("hq");
  auto init = outpost_cli({"--data", hq, "--json", "hq", "init", "--name", "hq"});
  ASSERT_TRUE(init.exit.exited_with(0)) << init.describe();
  const std::string root_hex = Json::parse(init.out)["root_public_key"].get<std::string>();
  ASSERT_TRUE(outpost_cli({"--data", hq, "member", "add", "--card", "40001234", "--name", "Ann"})
                  .exit.exited_with(0));
  const std::string before = tmp_.file("before");
  auto ex = outpost_cli({"--data", hq, "export-audit", "--out", before});
  ASSERT_TRUE(ex.exit.exited_with(0)) << ex.describe();
  EXPECT_NE(ex.out.find("cannot prove completeness"), std::string::npos) << ex.out;
  auto v = audit_cli({"verify", before, "--root", root_hex, "--no-progress"});
  EXPECT_TRUE(v.exit.exited_with(3)) << v.describe();

  ASSERT_TRUE(outpost_cli({"--data", hq, "hq", "checkpoint"}).exit.exited_with(0));
  const std::string after = tmp_.file("after");
  auto ex2 = outpost_cli({"--data", hq, "--json", "export-audit", "--out", after});
  ASSERT_TRUE(ex2.exit.exited_with(0)) << ex2.describe();
  EXPECT_TRUE(Json::parse(ex2.out)["completeness_warning"].is_null()) << ex2.out;
  auto v2 = audit_cli({"verify", after, "--root", root_hex, "--no-progress"});
  EXPECT_TRUE(v2.exit.exited_with(0)) << v2.describe();
}

TEST_F(AuditTest, CheckpointExportVerifyProveAndExplainThroughTheBinaries) {
  const std::string hq = tmp_.file("hq");
  auto init = outpost_cli({"--data", hq, "--json", "hq", "init", "--name", "hq"});
  ASSERT_TRUE(init.exit.exited_with(0)) << init.describe();
  const std::string root_hex = Json::parse(init.out)["root_public_key"].get<std::string>();
  for (auto args : std::vector<std::vector<std::string>>{
           {"member", "add", "--card", "40001234", "--name", "Ann Lee"},
           {"topup", "40001234", "--amount", "5000"},
           {"spend", "40001234", "--amount", "700"},
           {"hq", "checkpoint"},
           {"earn", "40001234", "--purchase", "12345"},
           {"hq", "checkpoint"}}) {
    args.insert(args.begin(), {"--data", hq});
    auto r = outpost_cli(args);
    ASSERT_TRUE(r.exit.exited_with(0)) << r.describe();
  }
  const std::string out = tmp_.file("exported");
  auto ex = outpost_cli({"--data", hq, "--json", "export-audit", "--out", out});
  ASSERT_TRUE(ex.exit.exited_with(0)) << ex.describe();
  EXPECT_EQ(Json::parse(ex.out)["manifest"]["counts"]["ops"], 4u);
  EXPECT_TRUE(outpost_cli({"--data", hq, "export-audit", "--out", out}).exit.exited_with(2))
      << "a non-empty out dir is refused";
  EXPECT_TRUE(outpost_cli({"--data", hq, "export-audit", "--out", tmp_.file("x"), "--from",
                           "2024-02-30"}).exit.exited_with(2));

  auto cp_json = outpost_cli({"--data", hq, "--json", "hq", "checkpoint"});
  ASSERT_TRUE(cp_json.exit.exited_with(0)) << cp_json.describe();
  EXPECT_EQ(Json::parse(cp_json.out)["tree_heads"]["version"], 2u) << "nothing moved since v2";
  EXPECT_EQ(Json::parse(cp_json.out)["tree_heads"]["new"], false);

  auto v = audit_cli({"verify", out, "--root", root_hex});
  ASSERT_TRUE(v.exit.exited_with(0)) << v.describe();
  EXPECT_NE(v.out.find("RESULT: CLEAN"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("completeness: HQ tree head set v2"), std::string::npos) << v.out;
  auto vj = audit_cli({"verify", out, "--root", root_hex, "--json"});
  ASSERT_TRUE(vj.exit.exited_with(0)) << vj.describe();
  EXPECT_EQ(Json::parse(vj.out)["tree_head"]["ops"], 4u);

  const Json manifest = Json::parse(test::read_file(out + "/manifest.json"));
  const std::string origin = manifest["origins"][0]["origin"].get<std::string>();
  auto prove = audit_cli({"prove", out, origin + ":2"});
  ASSERT_TRUE(prove.exit.exited_with(0)) << prove.describe();
  test::write_file(tmp_.file("proof.json"), prove.out);
  auto vp = audit_cli({"verify-proof", tmp_.file("proof.json"), "--root", root_hex});
  EXPECT_TRUE(vp.exit.exited_with(0)) << vp.describe();
  EXPECT_NE(vp.out.find("PROOF VALID"), std::string::npos);
  auto vp_wrong = audit_cli({"verify-proof", tmp_.file("proof.json"), "--root",
                             crypto::to_hex(crypto::SigningKey::generate().public_key())});
  EXPECT_TRUE(vp_wrong.exit.exited_with(1)) << vp_wrong.describe();

  auto explain = audit_cli({"explain", out, "40001234", "--root", root_hex});
  ASSERT_TRUE(explain.exit.exited_with(0)) << explain.describe();
  EXPECT_NE(explain.out.find("the exported balance follows from the ops"), std::string::npos)
      << explain.out;
  auto explain_json = audit_cli({"explain", out, "40001234", "--root", root_hex, "--json"});
  ASSERT_TRUE(explain_json.exit.exited_with(0)) << explain_json.describe();
  EXPECT_EQ(Json::parse(explain_json.out)["recomputed"]["wallet"]["value"], 4300);
  EXPECT_TRUE(audit_cli({"explain", out, "49999999", "--root", root_hex}).exit.exited_with(2));
}

}  // namespace
}  // namespace outpost
