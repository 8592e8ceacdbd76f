// Proofs an auditor can hand on (docs/audit-bundle.md): inclusion proofs against HQ tree head sets
// around a real revocation, and `outpost-audit consistency` between two signed heads. The chain
// is built once through node/ (HQ and two stores, ops ingested at HQ, three rounds of
// `hq checkpoint`, store C revoked below a seq HQ already vouched for) and exported.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../unit/test_util.h"
#include "outpost/audit/consistency.h"
#include "outpost/audit/proof.h"
#include "outpost/audit/verify.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/roster.h"
#include "test_process.h"

namespace outpost {
namespace {

using node::Json;
using node::Ledger;
using sync::Bytes;
using sync::NodeId;

constexpr std::uint64_t kStartMs = 1'709'287'200'000ULL;  // 2024-03-01T10:00:00Z

// One signed record of a bundle file.
struct Record {
  Bytes body;
  crypto::Signature sig{};
};

std::vector<Record> read_records(const std::string& path) {
  const std::string s = test::read_file(path);
  const Bytes data(s.begin(), s.end());
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

void write_records(const std::string& path, const std::vector<Record>& records) {
  sync::ByteWriter w;
  for (const Record& r : records) sync::write_frame(w, r.body, r.sig);
  test::write_file(
      path, std::string_view(reinterpret_cast<const char*>(w.bytes().data()), w.bytes().size()));
}

struct Chain {
  test::TempDir tmp{"outpost-audit-proof"};
  std::string hq, a, c, bundle, root_hex;
  NodeId a_id{}, c_id{};
  std::string error;
};
Chain* g_chain = nullptr;

class AuditProofTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(crypto::init().is_ok());
    g_chain = new Chain();
    g_chain->error = build(*g_chain);
  }
  static void TearDownTestSuite() {
    delete g_chain;
    g_chain = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(c().error.empty()) << "chain setup: " << c().error; }
  static Chain& c() { return *g_chain; }

  // HQ, stores A and C. Round 1: A's first ops. Round 2: more of A, C's three ops. Then C is
  // revoked after seq 2 (forced: HQ holds C:3) and round 3 signs a set under that roster.
  static std::string build(Chain& ch) {
    sync::ManualEnv clock(kStartMs);
    ch.hq = ch.tmp.file("hq");
    ch.a = ch.tmp.file("store-a");
    ch.c = ch.tmp.file("store-c");
    auto init = node::hq_init(ch.hq, "hq", 3650, clock);
    if (!init.is_ok()) return "hq_init: " + init.status().to_string();
    ch.root_hex = (*init)["root_public_key"].get<std::string>();
    const std::vector<std::pair<std::string, std::string>> stores = {{ch.a, "store-a"},
                                                                     {ch.c, "store-c"}};
    for (const auto& [dir, name] : stores) {
      if (Status st = Ledger::init(dir, {name, "store"}); !st.is_ok()) return st.to_string();
      auto req = node::make_enroll_request(dir);
      if (!req.is_ok()) return req.status().to_string();
      auto enr = node::hq_enroll(ch.hq, name, sync::NodeRole::kStore, *req, 730, clock);
      if (!enr.is_ok()) return "hq_enroll: " + enr.status().to_string();
      auto installed = node::install_enrollment(dir, *enr);
      if (!installed.is_ok()) return installed.status().to_string();
    }
    auto la = Ledger::open(ch.a, clock);
    auto lc = Ledger::open(ch.c, clock);
    auto lhq = Ledger::open(ch.hq, clock);
    if (!la.is_ok() || !lc.is_ok() || !lhq.is_ok()) return "Ledger::open failed";
    Ledger& A = **la;
    Ledger& C = **lc;
    Ledger& HQ = **lhq;
    ch.a_id = A.node_id();
    ch.c_id = C.node_id();
    std::string err;
    int n = 0;
    auto ok = [&](const Result<node::Outcome>& r, const char* what) {
      clock.advance(1000);
      if (err.empty() && (!r.is_ok() || r->refused)) {
        err = std::string(what) + ": " +
              (r.is_ok() ? node::schema::outcome_json(*r).dump() : r.status().to_string());
      }
      return r.is_ok() ? node::schema::outcome_json(*r) : Json();
    };
    auto rid = [&] { return "req-" + std::to_string(++n); };
    auto member = [&](const Json& body) {
      auto id = sync::parse_id(body.value("member", ""));
      return id.is_ok() ? *id : sync::MemberId{};
    };
    auto ship = [&](Ledger& from, std::uint64_t from_seq) {
      auto ops = from.store().ops_of_origin(from.node_id(), from_seq, 1000);
      if (!ops.is_ok()) return ops.status().to_string();
      auto r = HQ.ingest(*ops);
      return r.is_ok() ? std::string() : "ingest: " + r.status().to_string();
    };
    auto checkpoint = [&](const char* what) {
      auto cp = node::hq_checkpoint(ch.hq, clock);
      return cp.is_ok() ? std::string() : std::string(what) + ": " + cp.status().to_string();
    };
    const sync::MemberId m1 = member(ok(A.enroll({rid(), "40000001", "Ann Lee", "", ""}), "m1"));
    ok(A.topup(rid(), m1, 5000, "R-1"), "topup");
    ok(A.spend(rid(), m1, 700, "R-2"), "spend");
    if (err.empty()) err = ship(A, 1);
    if (err.empty()) err = checkpoint("checkpoint 1");
    ok(A.earn(rid(), m1, 12345, "R-3"), "earn");
    ok(A.spend(rid(), m1, 100, "R-4"), "spend");
    const sync::MemberId m2 = member(ok(C.enroll({rid(), "40000002", "Bo Chen", "", ""}), "m2"));
    ok(C.topup(rid(), m2, 3000, "R-5"), "topup m2");
    ok(C.topup(rid(), m2, 4000, "R-6"), "topup m2 again");
    if (err.empty()) err = ship(A, 4);
    if (err.empty()) err = ship(C, 1);
    if (err.empty()) err = checkpoint("checkpoint 2");
    if (!err.empty()) return err;
    auto rev = node::hq_revoke(ch.hq, "store-c", 2, /*force=*/true, clock);
    if (!rev.is_ok()) return "revoke: " + rev.status().to_string();
    if (auto e = checkpoint("checkpoint 3"); !e.empty()) return e;
    ch.bundle = ch.tmp.file("bundle");
    node::ExportOptions opts;
    opts.out_dir = ch.bundle;
    auto ex = node::export_audit(ch.hq, opts, clock);
    return ex.is_ok() ? "" : "export: " + ex.status().to_string();
  }

  static crypto::PublicKey root() {
    auto k = audit::parse_root_key(c().root_hex);
    EXPECT_TRUE(k.is_ok());
    return k.is_ok() ? *k : crypto::PublicKey{};
  }
  static Json prove(const NodeId& origin, std::uint64_t seq) {
    auto p = audit::prove_inclusion(c().bundle, origin, seq);
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    return p.is_ok() ? *p : Json();
  }
  static audit::ProofResult check(const Json& proof, std::uint64_t min_version = 0) {
    auto r = audit::verify_inclusion_proof(proof, root(), min_version);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : audit::ProofResult{};
  }
  // The bundle's signed records of `file`, decoded as tree head sets / rosters, by version.
  static std::vector<std::pair<std::uint64_t, Record>> sets() {
    std::vector<std::pair<std::uint64_t, Record>> out;
    for (Record& r : read_records(c().bundle + "/tree_heads.bin")) {
      auto s = sync::decode_tree_head_set(r.body);
      EXPECT_TRUE(s.is_ok());
      out.emplace_back(s->version, std::move(r));
    }
    return out;
  }
  static std::vector<std::pair<std::uint64_t, Record>> rosters() {
    std::vector<std::pair<std::uint64_t, Record>> out;
    for (Record& r : read_records(c().bundle + "/rosters.bin")) {
      auto s = sync::decode_roster(r.body);
      EXPECT_TRUE(s.is_ok());
      out.emplace_back(s->version, std::move(r));
    }
    return out;
  }
  static void put(Json& proof, const char* key, const Record& r) {
    proof[key]["body"] = crypto::to_hex(r.body);
    proof[key]["sig"] = crypto::to_hex(r.sig);
  }

  test::TempDir tmp_{"outpost-audit-proof-case"};
};

// --- inclusion proofs and revocation ---

TEST_F(AuditProofTest, ProofCarriesTheNewestTreeHeadSetAndAtLeastItsRoster) {
  const Json proof = prove(c().a_id, 4);
  EXPECT_EQ(proof["version"], 2);
  EXPECT_EQ(proof["tree_heads"]["version"], 3u) << "three rounds of hq checkpoint";
  EXPECT_GE(proof["roster"]["version"].get<std::uint64_t>(),
            proof["tree_heads"]["roster_version"].get<std::uint64_t>());
  EXPECT_EQ(proof["tree_size"], 5u);
  const audit::ProofResult r = check(proof);
  EXPECT_TRUE(r.valid) << r.failure;
  EXPECT_EQ(r.tree_head_version, 3u);
}

TEST_F(AuditProofTest, OpOfARevokedNodePastItsCutoffIsAnInvalidProof) {
  const Json proof = prove(c().c_id, 3);  // HQ vouched for C:3 before revoking C after seq 2
  const audit::ProofResult r = check(proof);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.failure.find("revocation cut-off"), std::string::npos) << r.failure;
  EXPECT_TRUE(check(prove(c().c_id, 2)).valid) << "C:2 is within the cut-off";
}

TEST_F(AuditProofTest, OlderRosterFromBeforeTheRevocationDoesNotMakeTheProofValid) {
  // Swap the roster the proof carries for the root-signed version from before the revocation:
  // the tree head set in the proof was signed under the revoking roster, so this is refused.
  Json proof = prove(c().c_id, 3);
  const auto all = rosters();
  ASSERT_GE(all.size(), 2u);
  const std::uint64_t set_roster = proof["tree_heads"]["roster_version"].get<std::uint64_t>();
  ASSERT_EQ(all.back().first, set_roster) << "round 3 was signed under the revoking roster";
  put(proof, "roster", all[all.size() - 2].second);
  const audit::ProofResult r = check(proof);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.failure.find("older than roster v" + std::to_string(set_roster)), std::string::npos)
      << r.failure;
}

TEST_F(AuditProofTest, OlderTreeHeadSetAndRosterTogetherAreRefusedGivenTheNewestVersion) {
  // With the set from before the revocation too, the proof is consistent in itself (HQ did vouch
  // for C:3 then, under a roster that did not revoke C). The report names that set; an auditor
  // who knows a newer one passes its version and the proof is refused.
  Json proof = prove(c().c_id, 3);
  const auto all_sets = sets();
  const auto all_rosters = rosters();
  ASSERT_EQ(all_sets.size(), 3u);
  auto v2 = sync::decode_tree_head_set(all_sets[1].second.body);
  ASSERT_TRUE(v2.is_ok());
  put(proof, "tree_heads", all_sets[1].second);
  for (const auto& [version, record] : all_rosters) {
    if (version == v2->roster_version) put(proof, "roster", record);
  }
  const audit::ProofResult old = check(proof);
  EXPECT_TRUE(old.valid) << old.failure;
  EXPECT_EQ(old.tree_head_version, 2u);
  const audit::ProofResult refused = check(proof, 3);
  EXPECT_FALSE(refused.valid);
  EXPECT_NE(refused.failure.find("older than v3"), std::string::npos) << refused.failure;
}

TEST_F(AuditProofTest, VersionOneProofIsUnsupportedAndAlteredPathIsInvalid) {
  Json proof = prove(c().a_id, 2);
  Json v1 = proof;
  v1["version"] = 1;
  EXPECT_EQ(audit::verify_inclusion_proof(v1, root()).status().code(), Code::kUnsupported);
  std::string h = proof["audit_path"][0].get<std::string>();
  h[0] = h[0] == '0' ? '1' : '0';
  proof["audit_path"][0] = h;
  EXPECT_FALSE(check(proof).valid);
  EXPECT_EQ(audit::verify_inclusion_proof(Json{{"format", "x"}}, root()).status().code(),
            Code::kInvalidArgument);
}

test::CommandResult audit_cli(const std::vector<std::string>& args) {
  return test::run_command(OUTPOST_AUDIT_CLI, args);
}

TEST_F(AuditProofTest, VerifyProofExitCodesAreZeroValidOneInvalidTwoMalformed) {
  const std::string good = tmp_.file("good.json");
  test::write_file(good, prove(c().a_id, 2).dump());
  auto ok = audit_cli({"verify-proof", good, "--root", c().root_hex});
  EXPECT_TRUE(ok.exit.exited_with(0)) << ok.describe();
  EXPECT_NE(ok.out.find("tree head set v3"), std::string::npos) << ok.out;
  auto newer =
      audit_cli({"verify-proof", good, "--root", c().root_hex, "--min-tree-head-version", "4"});
  EXPECT_TRUE(newer.exit.exited_with(1)) << newer.describe();
  const std::string revoked = tmp_.file("revoked.json");
  test::write_file(revoked, prove(c().c_id, 3).dump());
  auto bad = audit_cli({"verify-proof", revoked, "--root", c().root_hex, "--json"});
  EXPECT_TRUE(bad.exit.exited_with(1)) << bad.describe();
  EXPECT_EQ(Json::parse(bad.out)["valid"], false);
  const std::string junk = tmp_.file("junk.json");
  test::write_file(junk, "{\"format\": \"outpost-inclusion-pro");
  EXPECT_TRUE(audit_cli({"verify-proof", junk, "--root", c().root_hex}).exit.exited_with(2));
  test::write_file(junk, "{\"format\": \"outpost-inclusion-proof\", \"version\": 2}");
  EXPECT_TRUE(audit_cli({"verify-proof", junk, "--root", c().root_hex}).exit.exited_with(2));
  EXPECT_TRUE(audit_cli({"verify-proof", tmp_.file("none.json"), "--root", c().root_hex})
                  .exit.exited_with(2));
}

// --- consistency between two signed heads ---

class ConsistencyCliTest : public AuditProofTest {
 protected:
  // A file holding the tree head set of `version` only.
  std::string set_file(std::uint64_t version) {
    std::string path = tmp_.file("set-v" + std::to_string(version) + ".bin");
    for (const auto& [v, r] : sets()) {
      if (v == version) write_records(path, {r});
    }
    return path;
  }
  // A file holding the smallest checkpoint of `origin` only.
  std::string first_checkpoint_file(const NodeId& origin) {
    std::string path = tmp_.file("cp-" + sync::id_hex(origin) + ".bin");
    for (const Record& r : read_records(c().bundle + "/checkpoints.bin")) {
      auto cp = sync::decode_checkpoint(r.body);
      if (cp.is_ok() && cp->origin == origin) {
        write_records(path, {r});
        break;
      }
    }
    return path;
  }
  test::CommandResult run(std::vector<std::string> args) {
    args.insert(args.begin(), "consistency");
    args.insert(args.end(), {"--root", c().root_hex});
    return audit_cli(args);
  }
};

TEST_F(ConsistencyCliTest, NewerTreeHeadSetExtendsTheOlderOneWithProofsFromTheBundle) {
  const std::string v1 = set_file(1);
  auto r = run({v1, c().bundle + "/tree_heads.bin", "--bundle", c().bundle});
  ASSERT_TRUE(r.exit.exited_with(0)) << r.describe();
  EXPECT_NE(r.out.find("CONSISTENT"), std::string::npos) << r.out;
  // The --json result is itself a proof file: checked again without the bundle.
  auto j = run({v1, set_file(3), "--bundle", c().bundle, "--json"});
  ASSERT_TRUE(j.exit.exited_with(0)) << j.describe();
  const Json doc = Json::parse(j.out);
  EXPECT_EQ(doc["valid"], true);
  ASSERT_FALSE(doc["proofs"].empty());
  const std::string proof = tmp_.file("consistency.json");
  test::write_file(proof, doc.dump());
  auto again = run({v1, set_file(3), "--proof", proof});
  EXPECT_TRUE(again.exit.exited_with(0)) << again.describe();
}

TEST_F(ConsistencyCliTest, CheckpointsOfOneOriginAtTwoSizesAreConsistent) {
  const std::string hex = sync::id_hex(c().a_id);
  auto r = run({first_checkpoint_file(c().a_id), c().bundle + "/checkpoints.bin", "--origin", hex,
                "--bundle", c().bundle});
  EXPECT_TRUE(r.exit.exited_with(0)) << r.describe();
  EXPECT_NE(r.out.find("5 ops extend the 3"), std::string::npos) << r.out;
}

TEST_F(ConsistencyCliTest, TamperedProofIsNotConsistent) {
  auto j = run({set_file(1), set_file(3), "--bundle", c().bundle, "--json"});
  ASSERT_TRUE(j.exit.exited_with(0)) << j.describe();
  Json doc = Json::parse(j.out);
  ASSERT_FALSE(doc["proofs"][0]["path"].empty());
  std::string h = doc["proofs"][0]["path"][0].get<std::string>();
  h[0] = h[0] == '0' ? '1' : '0';
  doc["proofs"][0]["path"][0] = h;
  const std::string proof = tmp_.file("tampered.json");
  test::write_file(proof, doc.dump());
  auto r = run({set_file(1), set_file(3), "--proof", proof});
  EXPECT_TRUE(r.exit.exited_with(1)) << r.describe();
  EXPECT_NE(r.out.find("NOT CONSISTENT"), std::string::npos) << r.out;
}

TEST_F(ConsistencyCliTest, CheckpointsOfTwoDifferentLogsAreNotConsistent) {
  auto r = run(
      {first_checkpoint_file(c().a_id), first_checkpoint_file(c().c_id), "--bundle", c().bundle});
  EXPECT_TRUE(r.exit.exited_with(1)) << r.describe();
  EXPECT_NE(r.out.find("different logs"), std::string::npos) << r.out;
}

TEST_F(ConsistencyCliTest, NewerHeadGivenFirstIsTheWrongOrder) {
  auto r = run({set_file(3), set_file(1), "--bundle", c().bundle});
  EXPECT_TRUE(r.exit.exited_with(1)) << r.describe();
  EXPECT_NE(r.out.find("wrong order"), std::string::npos) << r.out;
  const std::string hex = sync::id_hex(c().a_id);
  auto cps = run({c().bundle + "/checkpoints.bin", first_checkpoint_file(c().a_id), "--origin", hex,
                  "--bundle", c().bundle});
  EXPECT_TRUE(cps.exit.exited_with(1)) << cps.describe();
  EXPECT_NE(cps.out.find("wrong order"), std::string::npos) << cps.out;
}

TEST_F(ConsistencyCliTest, MalformedInputsAreUsageErrorsAndAForgedHeadIsNotConsistent) {
  const std::string v1 = set_file(1), v3 = set_file(3);
  const std::string junk = tmp_.file("junk.bin");
  test::write_file(junk, "not a record");
  EXPECT_TRUE(run({junk, v3, "--bundle", c().bundle}).exit.exited_with(2));
  EXPECT_TRUE(run({v1, tmp_.file("absent.bin"), "--bundle", c().bundle}).exit.exited_with(2));
  EXPECT_TRUE(run({v1, v3}).exit.exited_with(2)) << "no proof source";
  const std::string proof = tmp_.file("proof.json");
  test::write_file(proof, "{\"format\": \"outpost-consistency");
  EXPECT_TRUE(run({v1, v3, "--proof", proof}).exit.exited_with(2)) << "not JSON";
  test::write_file(proof, "{\"format\": \"outpost-consistency-proof\", \"version\": 1}");
  EXPECT_TRUE(run({v1, v3, "--proof", proof}).exit.exited_with(2)) << "no proofs array";
  EXPECT_TRUE(
      run({c().bundle + "/checkpoints.bin", v3, "--bundle", c().bundle}).exit.exited_with(2))
      << "checkpoints of several origins need --origin";
  // A head whose bytes were altered is not signed by the root: not consistent (exit 1).
  std::vector<Record> rec = read_records(v1);
  rec[0].body[30] ^= 0x01;  // the set's issued time: it still decodes
  const std::string forged = tmp_.file("forged.bin");
  write_records(forged, rec);
  auto r = run({forged, v3, "--bundle", c().bundle});
  EXPECT_TRUE(r.exit.exited_with(1)) << r.describe();
  auto help = audit_cli({"consistency", "--help"});
  EXPECT_TRUE(help.exit.exited_with(0));
  EXPECT_NE(help.out.find("--bundle"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace outpost
