// Identity on real data dirs (node/src/identity/identity.cc, the identity parts of
// node/src/ledger/ledger.cc): `hq init`, the two-step enrollment in which no private key travels,
// every check of `init --enroll`, revocation and its cutoff (refused signing, refused ingest,
// log-verify findings), origin keys from the roster, and accepting only root-signed, newer rosters.
#include "outpost/node/identity.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "outpost/crypto/crypto.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/backup.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "test_util.h"

namespace outpost::node {
namespace {

constexpr std::uint64_t kNowMs = 1'790'000'000'000;  // 2026-09-21

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    hq_ = tmp_.file("hq");
    store_ = tmp_.file("store");
    auto r = hq_init(hq_, "hq-central", kHqValidDaysDefault, clock_);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    hq_summary_ = *r;
  }

  // Runs `outpost init` + `enroll-request` + `hq enroll` + `init --enroll` for `dir`.
  Json enroll(const std::string& dir, const std::string& name) {
    EXPECT_TRUE(Ledger::init(dir, InitOptions{name, "store"}).is_ok());
    auto req = make_enroll_request(dir);
    EXPECT_TRUE(req.is_ok()) << req.status().to_string();
    auto file = hq_enroll(hq_, name, sync::NodeRole::kStore, *req, 30, clock_);
    EXPECT_TRUE(file.is_ok()) << file.status().to_string();
    auto installed = install_enrollment(dir, *file);
    EXPECT_TRUE(installed.is_ok()) << installed.status().to_string();
    return *file;
  }

  std::unique_ptr<Ledger> open(const std::string& dir) {
    auto l = Ledger::open(dir, clock_);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    return l.is_ok() ? std::move(l).value() : nullptr;
  }

  // The HQ's newest stored roster (what sync would carry to the store).
  storage::StoredRoster hq_roster() {
    auto hq = open(hq_);
    auto r = hq->store().latest_roster();
    EXPECT_TRUE(r.is_ok() && r->has_value());
    return **r;
  }

  // Makes `n` ops at `ledger` (a member enrollment, then top-ups) and returns them in order.
  std::vector<sync::SignedOp> make_ops(Ledger& ledger, int n) {
    EnrollRequest e{new_request_id(), "40000001", "Ann", "", ""};
    auto r = ledger.enroll(e);
    EXPECT_TRUE(r.is_ok() && !r->refused);
    auto member = ledger.resolve_member("40000001");
    for (int i = 1; i < n; ++i)
      EXPECT_TRUE(ledger.topup(new_request_id(), *member, 100, "").is_ok());
    auto ops = ledger.store().ops_of_origin(ledger.node_id(), 1, 1000);
    EXPECT_TRUE(ops.is_ok());
    return *ops;
  }

  test::TempDir tmp_{"outpost-identity"};
  sync::ManualEnv clock_{kNowMs};
  std::string hq_, store_;
  Json hq_summary_;
};

TEST_F(IdentityTest, HqInitCreatesRootKeyAndRosterListingItself) {
  EXPECT_EQ(test::file_mode(hq_ + "/root.key"), 0600);
  EXPECT_EQ(test::file_mode(hq_ + "/noise.key"), 0600);
  auto hq = open(hq_);
  ASSERT_NE(hq->roster(), nullptr);
  EXPECT_EQ(hq->roster()->version, 1u);
  const sync::SignedCertificate* self = hq->roster()->find(hq->node_id());
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->cert.role, sync::NodeRole::kHq);
  EXPECT_EQ(self->cert.signing_key, hq->public_key());
  EXPECT_FALSE(hq_init(hq_, "again", 10, clock_).is_ok());
}

TEST_F(IdentityTest, EnrollmentInstallsCertificateRosterAndTrustAnchors) {
  enroll(store_, "store-1");
  auto store = open(store_);
  ASSERT_NE(store->roster(), nullptr);
  EXPECT_EQ(store->roster()->version, 2u);
  auto id = load_identity(store_, store->store());
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_EQ(id->certificate.cert.node_id, store->node_id());
  EXPECT_EQ(id->certificate.cert.signing_key, store->public_key());
  EXPECT_EQ(id->noise_key->public_key(), id->certificate.cert.noise_key);
  EXPECT_EQ(crypto::to_hex(id->root_key), hq_summary_["root_public_key"].get<std::string>());
  EXPECT_EQ(test::file_mode(store_ + "/noise.key"), 0600);
}

TEST_F(IdentityTest, NoPrivateKeyLeavesItsNodeInTheExchangedFiles) {
  ASSERT_TRUE(Ledger::init(store_, InitOptions{"store-1", "store"}).is_ok());
  auto req = make_enroll_request(store_);
  ASSERT_TRUE(req.is_ok());
  auto file = hq_enroll(hq_, "store-1", sync::NodeRole::kStore, *req, 30, clock_);
  ASSERT_TRUE(file.is_ok());
  const std::string exchanged = req->dump() + file->dump();
  auto node_seed = crypto::read_signing_key(store_ + "/node.key");
  auto noise = read_noise_key(store_);
  auto root = crypto::read_key_file(hq_ + "/root.key", kRootKeyKind);
  ASSERT_TRUE(node_seed.is_ok() && noise.is_ok() && root.is_ok());
  for (crypto::ByteView secret : {node_seed->seed(), noise->private_key(), root->view()}) {
    EXPECT_EQ(exchanged.find(crypto::to_hex(secret)), std::string::npos);
  }
}

TEST_F(IdentityTest, InstallRefusesAnEnrollmentFileMadeForAnotherNode) {
  Json file = enroll(store_, "store-1");
  const std::string other = tmp_.file("other");
  ASSERT_TRUE(Ledger::init(other, InitOptions{"store-2", "store"}).is_ok());
  auto st = install_enrollment(other, file);
  EXPECT_EQ(st.status().code(), Code::kPermission);
  EXPECT_NE(st.status().message().find("not this node"), std::string::npos);
}

TEST_F(IdentityTest, InstallRefusesATamperedCertificateOrRoster) {
  ASSERT_TRUE(Ledger::init(store_, InitOptions{"store-1", "store"}).is_ok());
  auto req = make_enroll_request(store_);
  auto file = hq_enroll(hq_, "store-1", sync::NodeRole::kStore, *req, 30, clock_);
  ASSERT_TRUE(file.is_ok());
  const std::string before = test::dump_sqlite(store_ + "/" + kDbFile);
  for (const char* field : {"certificate", "roster"}) {
    Json bad = *file;
    std::string& hex = field == std::string("roster")
                           ? bad["roster"]["body"].get_ref<std::string&>()
                           : bad["certificate"].get_ref<std::string&>();
    hex[hex.size() - 140] = hex[hex.size() - 140] == '0' ? '1' : '0';  // inside the name/keys
    EXPECT_FALSE(install_enrollment(store_, bad).is_ok()) << field;
  }
  EXPECT_EQ(test::dump_sqlite(store_ + "/" + kDbFile), before);  // nothing changed
}

TEST_F(IdentityTest, InstallRefusesAnEnrollmentFromAnotherChainsRoot) {
  const std::string other_hq = tmp_.file("other-hq");
  ASSERT_TRUE(hq_init(other_hq, "hq-other", 10, clock_).is_ok());
  enroll(store_, "store-1");
  auto req = make_enroll_request(store_);
  auto foreign = hq_enroll(other_hq, "store-1", sync::NodeRole::kStore, *req, 30, clock_);
  ASSERT_TRUE(foreign.is_ok());
  auto st = install_enrollment(store_, *foreign);
  EXPECT_EQ(st.status().code(), Code::kInvalidArgument);
  EXPECT_NE(st.status().message().find("already enrolled"), std::string::npos);
}

TEST_F(IdentityTest, HqEnrollRefusesATamperedRequestAndANameClash) {
  ASSERT_TRUE(Ledger::init(store_, InitOptions{"store-1", "store"}).is_ok());
  auto req = make_enroll_request(store_);
  ASSERT_TRUE(req.is_ok());
  Json bad = *req;
  bad["noise_key"] = crypto::to_hex(crypto::X25519KeyPair::generate().public_key());
  EXPECT_EQ(hq_enroll(hq_, "store-1", sync::NodeRole::kStore, bad, 30, clock_).status().code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(hq_enroll(hq_, "hq-central", sync::NodeRole::kStore, *req, 30, clock_).is_ok());
  EXPECT_FALSE(hq_enroll(hq_, "store-1", sync::NodeRole::kStore, *req, 0, clock_).is_ok());
}

TEST_F(IdentityTest, OriginKeysComeFromTheRosterSoHqVerifiesAStoresOps) {
  enroll(store_, "store-1");
  auto store = open(store_);
  auto ops = make_ops(*store, 3);
  auto hq = open(hq_);
  EXPECT_EQ(hq->origin_key(store->node_id()), store->public_key());
  auto ingested = hq->ingest(ops);
  ASSERT_TRUE(ingested.is_ok()) << ingested.status().to_string();
  EXPECT_EQ(ingested->applied, 3u);
  auto report = hq->verify_log();
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->ok()) << (report->findings.empty() ? "" : report->findings[0]);
  EXPECT_EQ(report->ops_checked, 3u);
}

TEST_F(IdentityTest, BatchWithABadSignatureIsRefusedWholeAndRaisesABadSignatureAlert) {
  enroll(store_, "store-1");
  auto store = open(store_);
  auto ops = make_ops(*store, 3);
  ops[1].sig[5] ^= 0x01;
  auto hq = open(hq_);
  auto r = hq->ingest(ops, store->node_id());  // the store sent it itself
  ASSERT_FALSE(r.is_ok());
  auto vv = hq->store().version_vector();
  ASSERT_TRUE(vv.is_ok());
  EXPECT_EQ(vv->count(store->node_id()), 0u) << "a refused batch applied ops";
  auto alerts = hq->store().recent_alerts(10);
  ASSERT_TRUE(alerts.is_ok());
  ASSERT_FALSE(alerts->empty());
  EXPECT_EQ(alerts->front().kind, "bad_signature");
  EXPECT_EQ(alerts->front().node, sync::id_hex(store->node_id()));
}

// Regression: a running HQ kept the roster it opened with, so ops of a store enrolled afterwards
// (by `outpost hq enroll` in another process) were refused as "unknown origin".
TEST_F(IdentityTest, LedgerOpenBeforeAnEnrollmentPicksUpTheNewRosterOnIngest) {
  auto hq = open(hq_);  // opened first, as the daemon is
  enroll(store_, "store-1");
  auto store = open(store_);
  auto ops = make_ops(*store, 2);
  auto ingested = hq->ingest(ops);
  ASSERT_TRUE(ingested.is_ok()) << ingested.status().to_string();
  EXPECT_EQ(ingested->applied, 2u);
  auto again = hq->refresh_roster();
  ASSERT_TRUE(again.is_ok());
  EXPECT_FALSE(*again) << "the roster in use is already the newest";
}

TEST_F(IdentityTest, RevokedNodeRefusesToSignOnceItHoldsTheRoster) {
  enroll(store_, "store-1");
  auto revoked = hq_revoke(hq_, "store-1", 0, false, clock_);
  ASSERT_TRUE(revoked.is_ok()) << revoked.status().to_string();
  storage::StoredRoster r = hq_roster();
  EXPECT_EQ(r.version, 3u);
  auto store = open(store_);
  ASSERT_TRUE(store->accept_roster(r.body, r.sig).is_ok());
  EXPECT_EQ(store->signing_allowed().code(), Code::kPermission);
  EnrollRequest e{new_request_id(), "40000002", "Bob", "", ""};
  auto refused = store->enroll(e);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), Code::kPermission);
  EXPECT_NE(refused.status().message().find("revoked"), std::string::npos);
  // A restart keeps refusing: the roster is stored.
  store.reset();
  store = open(store_);
  EXPECT_FALSE(store->signing_allowed().is_ok());
  EXPECT_TRUE(schema::json_of(store->node_status(), schema::status_json)
                  .is_ok());  // reads still work for the operator
}

TEST_F(IdentityTest, OpsPastTheRevocationCutoffAreRefusedAndReported) {
  enroll(store_, "store-1");
  auto store = open(store_);
  auto ops = make_ops(*store, 4);
  auto hq = open(hq_);
  ASSERT_TRUE(hq->ingest({ops[0], ops[1]}).is_ok());
  hq.reset();
  // A cutoff below what HQ holds would split state: refused unless forced.
  EXPECT_EQ(hq_revoke(hq_, "store-1", 1, false, clock_).status().code(), Code::kRefused);
  ASSERT_TRUE(hq_revoke(hq_, "store-1", 2, false, clock_).is_ok());
  hq = open(hq_);
  EXPECT_TRUE(hq->roster()->op_allowed(store->node_id(), 2));
  auto late = hq->ingest({ops[2]});
  ASSERT_FALSE(late.is_ok());
  EXPECT_NE(late.status().message().find("revocation"), std::string::npos);
  auto report = hq->verify_log();
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->ok());
}

TEST_F(IdentityTest, ForcedCutoffBelowHeldOpsShowsUpInLogVerify) {
  enroll(store_, "store-1");
  auto store = open(store_);
  auto ops = make_ops(*store, 3);
  {
    auto hq = open(hq_);
    ASSERT_TRUE(hq->ingest(ops).is_ok());
  }
  ASSERT_TRUE(hq_revoke(hq_, "store-1", 1, /*force=*/true, clock_).is_ok());
  auto hq = open(hq_);
  auto report = hq->verify_log();
  ASSERT_TRUE(report.is_ok());
  ASSERT_EQ(report->findings.size(), 2u);
  EXPECT_NE(report->findings[0].find("revocation cutoff"), std::string::npos);
}

TEST_F(IdentityTest, AcceptRosterTakesOnlyNewerRootSignedRostersOfThisNetwork) {
  enroll(store_, "store-1");
  auto store = open(store_);
  storage::StoredRoster current = hq_roster();
  EXPECT_EQ(store->accept_roster(current.body, current.sig).code(), Code::kRefused);  // not newer

  const std::string other_hq = tmp_.file("other-hq");
  ASSERT_TRUE(hq_init(other_hq, "hq-other", 10, clock_).is_ok());
  auto other = open(other_hq);
  auto foreign = other->store().latest_roster();
  ASSERT_TRUE(foreign.is_ok() && foreign->has_value());
  EXPECT_EQ(store->accept_roster((*foreign)->body, (*foreign)->sig).code(), Code::kPermission);

  ASSERT_TRUE(hq_revoke(hq_, "store-1", 0, false, clock_).is_ok());
  storage::StoredRoster next = hq_roster();
  sync::Bytes tampered = next.body;
  tampered[30] ^= 1;
  EXPECT_FALSE(store->accept_roster(tampered, next.sig).is_ok());
  EXPECT_EQ(store->roster()->version, 2u);
  EXPECT_TRUE(store->accept_roster(next.body, next.sig).is_ok());
  EXPECT_EQ(store->roster()->version, 3u);
}

TEST_F(IdentityTest, RosterJsonShowsEachNodesStatus) {
  enroll(store_, "store-1");
  enroll(tmp_.file("store2"), "store-2");
  ASSERT_TRUE(hq_revoke(hq_, "store-1", 0, false, clock_).is_ok());
  auto hq = open(hq_);
  auto j = roster_json(hq->store(), kNowMs);
  ASSERT_TRUE(j.is_ok());
  EXPECT_EQ((*j)["version"], 4);
  EXPECT_EQ((*j)["stored_versions"].size(), 4u);
  ASSERT_EQ((*j)["nodes"].size(), 3u);
  std::string text = roster_text(*j);
  EXPECT_NE(text.find("revoked after seq 0"), std::string::npos) << text;
  EXPECT_NE(text.find("hq-central"), std::string::npos) << text;
  // 31 days on, store-2's 30-day certificate has expired; store-1 stays revoked.
  auto later = roster_json(hq->store(), kNowMs + 31ULL * 86'400'000);
  ASSERT_TRUE(later.is_ok());
  std::map<std::string, std::string> status;
  for (const auto& n : (*later)["nodes"]) status[n["name"]] = n["status"];
  EXPECT_EQ(status["store-1"], "revoked");
  EXPECT_EQ(status["store-2"], "expired");
  EXPECT_EQ(status["hq-central"], "active");
}

// --- HQ-signed program rules (docs/program-rules.md, "Signed rules") ---

constexpr const char* kGoldRushRules = R"(version = 5
unit_minor = 100
window_months = 6

[[tier]]
name = "member"
threshold_minor = 0
points_per_unit = 10

[[tier]]
name = "vip"
threshold_minor = 100000
points_per_unit = 20
)";

TEST_F(IdentityTest, HqSignedRulesReachAStoreAndDecideWhatAPurchaseEarns) {
  enroll(store_, "store-1");
  const std::string file = tmp_.file("rules.toml");
  test::write_file(file, kGoldRushRules);
  auto issued = hq_set_rules(hq_, file, clock_);
  ASSERT_TRUE(issued.is_ok()) << issued.status().to_string();
  EXPECT_EQ((*issued)["version"], 5);

  auto hq = open(hq_);
  EXPECT_EQ(hq->rules_source(), "hq");
  EXPECT_EQ(hq->signed_rules_version(), 5u);
  auto doc = hq->store().latest_rules();
  ASSERT_TRUE(doc.is_ok() && doc->has_value());

  auto store = open(store_);
  EXPECT_EQ(store->rules_source(), "default");
  EXPECT_EQ(store->signed_rules_version(), 0u);
  ASSERT_TRUE(store->accept_rules((*doc)->body, (*doc)->sig).is_ok());
  EXPECT_EQ(store->rules_source(), "hq");
  EXPECT_EQ(store->rules().version, 5u);
  // A purchase of 12.34 earns floor(1234 / 100) * 10 points under the signed rules.
  EnrollRequest e{new_request_id(), "40000001", "Ann", "", ""};
  ASSERT_TRUE(store->enroll(e).is_ok());
  auto member = store->resolve_member("40000001");
  ASSERT_TRUE(member.is_ok());
  auto earned = store->earn(new_request_id(), *member, 1234, "");
  ASSERT_TRUE(earned.is_ok() && !earned->refused);
  EXPECT_EQ(schema::outcome_json(*earned)["amount"], 120);
  // They stay in force across a restart, and the same version again is ignored (kRefused).
  store.reset();
  store = open(store_);
  EXPECT_EQ(store->rules_source(), "hq");
  EXPECT_EQ(store->rules().tiers[1].name, "vip");
  EXPECT_EQ(store->accept_rules((*doc)->body, (*doc)->sig).code(), Code::kRefused);
}

TEST_F(IdentityTest, RulesNotSignedByThisRootTamperedOrNotNewerChangeNothing) {
  enroll(store_, "store-1");
  const std::string file = tmp_.file("rules.toml");
  test::write_file(file, kGoldRushRules);
  ASSERT_TRUE(hq_set_rules(hq_, file, clock_).is_ok());
  // HQ refuses to sign a version that is not newer than the one it issued.
  auto again = hq_set_rules(hq_, file, clock_);
  EXPECT_EQ(again.status().code(), Code::kInvalidArgument);
  EXPECT_NE(again.status().message().find("raise 'version'"), std::string::npos) << again.status().to_string();
  // A bad rules file is refused before anything is signed.
  test::write_file(file, "version = 6\nunit_minor = 0\n");
  EXPECT_EQ(hq_set_rules(hq_, file, clock_).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(hq_set_rules(hq_, tmp_.file("missing.toml"), clock_).status().code(), Code::kNotFound);
  auto hq = open(hq_);
  auto doc = hq->store().latest_rules();
  ASSERT_TRUE(doc.is_ok() && doc->has_value());
  EXPECT_EQ((*doc)->version, 5u);

  auto store = open(store_);
  // Rules of another chain's root.
  const std::string other = tmp_.file("other-hq");
  ASSERT_TRUE(hq_init(other, "other", kHqValidDaysDefault, clock_).is_ok());
  const std::string other_file = tmp_.file("other.toml");
  test::write_file(other_file, kGoldRushRules);
  ASSERT_TRUE(hq_set_rules(other, other_file, clock_).is_ok());
  auto foreign = open(other)->store().latest_rules();
  ASSERT_TRUE(foreign.is_ok() && foreign->has_value());
  EXPECT_EQ(store->accept_rules((*foreign)->body, (*foreign)->sig).code(), Code::kPermission);
  // A tampered body under HQ's signature.
  sync::Bytes tampered = (*doc)->body;
  tampered.back() ^= 1;
  EXPECT_EQ(store->accept_rules(tampered, (*doc)->sig).code(), Code::kPermission);
  // Garbage.
  EXPECT_NE(store->accept_rules(sync::Bytes{1, 2, 3}, (*doc)->sig).code(), Code::kOk);
  EXPECT_EQ(store->rules_source(), "default");
  auto held = store->store().latest_rules();
  ASSERT_TRUE(held.is_ok());
  EXPECT_FALSE(held->has_value()) << "nothing was stored";
  // A node that is not enrolled cannot check rules at all.
  const std::string lone = tmp_.file("lone");
  ASSERT_TRUE(Ledger::init(lone, InitOptions{"lone", "store"}).is_ok());
  EXPECT_EQ(open(lone)->accept_rules((*doc)->body, (*doc)->sig).code(), Code::kNotFound);
}

TEST_F(IdentityTest, ARunningLedgerPicksUpRulesAnotherProcessSignedOnRefresh) {
  auto hq = open(hq_);
  auto unchanged = hq->refresh_rules();
  ASSERT_TRUE(unchanged.is_ok());
  EXPECT_FALSE(*unchanged);
  const std::string file = tmp_.file("rules.toml");
  test::write_file(file, kGoldRushRules);
  ASSERT_TRUE(hq_set_rules(hq_, file, clock_).is_ok());  // another connection, as the CLI does
  auto changed = hq->refresh_rules();
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(hq->rules().version, 5u);
  EXPECT_EQ(schema::rules_json(hq->rules(), hq->rules_source())["source"], "hq");
}

// --- backup, restore and the seq fence (docs/architecture.md, failure rule 7) ---

// The regression this guards against: a store restored from an old backup signs ops with seqs
// its peers already hold (equivocation) and may spend rights twice.
TEST_F(IdentityTest, RestoredStoreSignsNothingUntilItHasItsOwnNewerOpsBackThenContinuesAfterThem) {
  enroll(store_, "store-1");
  const std::string backup = tmp_.file("store.backup");
  std::vector<sync::SignedOp> held_by_hq;
  {
    auto store = open(store_);
    make_ops(*store, 3);  // seq 1..3
    auto b = backup_data_dir(store_, backup);
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    EXPECT_EQ((*b)["own_seq"], 3);
    auto member = store->resolve_member("40000001");
    ASSERT_TRUE(store->topup("after-backup-4", *member, 100, "").is_ok());
    ASSERT_TRUE(store->topup("after-backup-5", *member, 100, "").is_ok());
    held_by_hq = *store->store().ops_of_origin(store->node_id(), 1, 100);  // what sync gave HQ
    ASSERT_EQ(held_by_hq.size(), 5u);
  }
  // A backup never overwrites a file.
  EXPECT_EQ(backup_data_dir(store_, backup).status().code(), Code::kInvalidArgument);
  // The backup is one self-contained file: no WAL beside it, rollback-journal format (SQLite
  // header bytes 18 and 19 are 1; 2 would mean WAL).
  EXPECT_FALSE(std::filesystem::exists(backup + "-wal"));
  const std::string header = test::read_file(backup).substr(0, 20);
  ASSERT_EQ(header.size(), 20u);
  EXPECT_EQ(header[18], 1);
  EXPECT_EQ(header[19], 1);

  auto restored = restore_data_dir(store_, backup, clock_);
  ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
  EXPECT_EQ((*restored)["own_seq"], 3);
  EXPECT_TRUE(std::filesystem::exists((*restored)["replaced"].get<std::string>())) << "the old database is kept";

  auto store = open(store_);
  auto member = store->resolve_member("40000001");
  ASSERT_TRUE(member.is_ok());
  auto fenced = store->topup(new_request_id(), *member, 100, "");
  ASSERT_EQ(fenced.status().code(), Code::kUnavailable) << "a restored node signed before hearing from HQ";
  EXPECT_NE(fenced.status().message().find("restored from a backup"), std::string::npos);
  EXPECT_EQ(store->store().head(store->node_id())->seq, 3u) << "the refused request changed nothing";

  // HQ's HELLO says it holds seq 5 of ours: still fenced (we hold 3), with an alert.
  ASSERT_TRUE(store->observe_peer_hello("hq-central", true, 5).is_ok());
  auto still = store->topup(new_request_id(), *member, 100, "");
  ASSERT_EQ(still.status().code(), Code::kUnavailable);
  EXPECT_NE(still.status().message().find("up to seq 5"), std::string::npos) << still.status().to_string();
  auto alerts = store->store().recent_alerts(10);
  ASSERT_TRUE(alerts.is_ok());
  ASSERT_FALSE(alerts->empty());
  EXPECT_EQ(alerts->front().kind, "own_seq_behind");

  // Sync gives our own ops 4 and 5 back: the fence lifts, a POS retry of request 5 is a replay,
  // and the next op is seq 6: no seq is reused.
  auto report = store->ingest({held_by_hq[3], held_by_hq[4]});
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->applied, 2u);
  auto replay = store->topup("after-backup-5", *member, 100, "");
  ASSERT_TRUE(replay.is_ok()) << replay.status().to_string();
  EXPECT_TRUE(replay->replayed);
  auto next = store->topup(new_request_id(), *member, 100, "");
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(schema::outcome_json(*next)["op"], sync::op_ref_string(store->node_id(), 6));
  auto fence = schema::json_of(store->fence_state(), schema::fence_json);
  ASSERT_TRUE(fence.is_ok());
  EXPECT_FALSE((*fence)["fenced"].get<bool>());
  // The lifted fence survives a restart.
  store.reset();
  store = open(store_);
  EXPECT_FALSE((*schema::json_of(store->fence_state(), schema::fence_json))["fenced"].get<bool>());
  auto report2 = store->verify_log();
  ASSERT_TRUE(report2.is_ok());
  EXPECT_TRUE(report2->ok()) << report2->findings.front();
}

TEST_F(IdentityTest, CopyPutBackWithoutRestoreIsFencedOnceAPeerShowsItHoldsMore) {
  enroll(store_, "store-1");
  auto store = open(store_);
  make_ops(*store, 2);
  auto member = store->resolve_member("40000001");
  // Another store claims it holds seq 4 of ours: only an alert (a rogue store could claim seqs
  // it can never deliver and stop this store for good).
  ASSERT_TRUE(store->observe_peer_hello("store-2", false, 4).is_ok());
  EXPECT_FALSE((*schema::json_of(store->fence_state(), schema::fence_json))["fenced"].get<bool>());
  EXPECT_EQ(store->store().recent_alerts(10)->front().kind, "own_seq_behind");
  // HQ says so (e.g. the database was copied back by hand): fenced.
  ASSERT_TRUE(store->observe_peer_hello("hq-central", true, 4).is_ok());
  EXPECT_EQ(store->topup(new_request_id(), *member, 100, "").status().code(), Code::kUnavailable);
  // The floor is persisted: a restart does not lift it.
  store.reset();
  store = open(store_);
  EXPECT_TRUE((*schema::json_of(store->fence_state(), schema::fence_json))["fenced"].get<bool>());
  EXPECT_EQ((*schema::json_of(store->fence_state(), schema::fence_json))["own_seq_floor"], 4);
  // Only the operator can lift it without the ops (they accept the equivocation risk).
  auto before = schema::json_of(store->release_fence(), schema::fence_json);
  ASSERT_TRUE(before.is_ok());
  EXPECT_TRUE((*before)["fenced"].get<bool>());
  EXPECT_TRUE(store->topup(new_request_id(), *member, 100, "").is_ok());
  // A peer that holds less than we do changes nothing.
  ASSERT_TRUE(store->observe_peer_hello("hq-central", true, 1).is_ok());
  EXPECT_FALSE((*schema::json_of(store->fence_state(), schema::fence_json))["fenced"].get<bool>());
}

TEST_F(IdentityTest, RestoreRefusesARunningDaemonAnotherNodesBackupAndGarbage) {
  enroll(store_, "store-1");
  const std::string backup = tmp_.file("store.backup");
  ASSERT_TRUE(backup_data_dir(store_, backup).is_ok());
  {
    auto lock = DataDirLock::acquire(store_);  // what outpostd holds while it runs
    ASSERT_TRUE(lock.is_ok());
    EXPECT_TRUE(*DataDirLock::held_by_other(store_));
    auto r = restore_data_dir(store_, backup, clock_);
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().to_string();
  }
  EXPECT_FALSE(*DataDirLock::held_by_other(store_));
  // HQ's backup is not this store's.
  const std::string hq_backup = tmp_.file("hq.backup");
  ASSERT_TRUE(backup_data_dir(hq_, hq_backup).is_ok());
  auto other = restore_data_dir(store_, hq_backup, clock_);
  EXPECT_EQ(other.status().code(), Code::kInvalidArgument) << other.status().to_string();
  EXPECT_NE(other.status().message().find("another node"), std::string::npos);
  const std::string junk = tmp_.file("junk.backup");
  test::write_file(junk, "this is not a database");
  EXPECT_EQ(restore_data_dir(store_, junk, clock_).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(restore_data_dir(store_, tmp_.file("missing"), clock_).status().code(), Code::kNotFound);
  // None of the refusals touched the store: it is not fenced and keeps its database.
  auto store = open(store_);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE((*schema::json_of(store->fence_state(), schema::fence_json))["fenced"].get<bool>());
}

// --- the rebalancer (node/src/ledger/ledger_requests.cc Ledger::rebalance over
// sync::plan_rebalance) ---

TEST_F(IdentityTest, RebalancerMovesIdleWalletRightsToTheStoreTheMemberNowUsesAndTheyCanBeSpentThere) {
  const std::string store2 = tmp_.file("store-2");
  enroll(store_, "store-1");
  enroll(store2, "store-2");
  auto s1 = open(store_);
  auto s2 = open(store2);
  auto roster = hq_roster();  // lists both stores
  ASSERT_TRUE(s1->accept_roster(roster.body, roster.sig).is_ok());
  EnrollRequest e{new_request_id(), "40000001", "Ann", "", ""};
  ASSERT_TRUE(s1->enroll(e).is_ok());
  auto member = s1->resolve_member("40000001");
  ASSERT_TRUE(s1->topup(new_request_id(), *member, 5000, "").is_ok());
  ASSERT_TRUE(s2->ingest(*s1->store().ops_of_origin(s1->node_id(), 1, 100)).is_ok());
  clock_.advance(24ULL * 3600 * 1000);
  ASSERT_TRUE(s2->earn(new_request_id(), *member, 1200, "").is_ok());  // she shops at store-2 now
  ASSERT_TRUE(s1->ingest(*s2->store().ops_of_origin(s2->node_id(), 1, 100)).is_ok());

  const sync::RebalancePolicy policy;  // idle after 7 days
  sync::MemberId cursor{};
  auto early = s1->rebalance(&cursor, 10, clock_.now_ms(), policy);
  ASSERT_TRUE(early.is_ok()) << early.status().to_string();
  EXPECT_TRUE(early->empty()) << "rights moved while the member still shopped at store-1";

  clock_.advance(8ULL * 24 * 3600 * 1000);
  auto moved = s1->rebalance(&cursor, 10, clock_.now_ms(), policy);
  ASSERT_TRUE(moved.is_ok()) << moved.status().to_string();
  ASSERT_EQ(moved->size(), 1u);
  EXPECT_NE(moved->front().find("wallet 5000"), std::string::npos) << moved->front();
  EXPECT_EQ(cursor, sync::MemberId{}) << "the cursor wraps after the last page";
  auto again = s1->rebalance(&cursor, 10, clock_.now_ms(), policy);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->empty()) << "store-1 holds nothing more to move";

  // Store-2 gets the move op and can now serve a wallet spend on its own (e.g. while offline).
  ASSERT_TRUE(s2->ingest(*s1->store().ops_of_origin(s1->node_id(), 1, 100)).is_ok());
  auto spend = s2->spend(new_request_id(), *member, 3000, "");
  ASSERT_TRUE(spend.is_ok()) << spend.status().to_string();
  EXPECT_FALSE(spend->refused) << schema::outcome_json(*spend).dump();
  EXPECT_EQ(schema::outcome_json(*spend)["wallet"]["balance"], 2000);
  for (Ledger* l : {s1.get(), s2.get()}) {
    auto v = l->verify_log();
    ASSERT_TRUE(v.is_ok());
    EXPECT_TRUE(v->ok()) << v->findings.front();
  }
}

// --- HQ tree head sets carried by sync (Ledger::accept_tree_heads) ---

TEST_F(IdentityTest, StoreAcceptsOnlyNewerRootSignedTreeHeadSetsThatExtendTheHeldOne) {
  enroll(store_, "store-1");
  auto store = open(store_);
  auto roster = hq_roster();
  ASSERT_TRUE(store->accept_roster(roster.body, roster.sig).code() != Code::kPermission);
  auto ops = make_ops(*store, 3);
  {
    auto hq = open(hq_);
    ASSERT_TRUE(hq->ingest(ops).is_ok());
  }
  ASSERT_TRUE(hq_checkpoint(hq_, clock_).is_ok());
  auto hq = open(hq_);
  auto v1 = hq->store().latest_tree_head_set();
  ASSERT_TRUE(v1.is_ok() && v1->has_value());
  ASSERT_TRUE(store->accept_tree_heads((*v1)->body, (*v1)->sig).is_ok());
  EXPECT_EQ(store->tree_head_version(), 1u);
  EXPECT_EQ(store->accept_tree_heads((*v1)->body, (*v1)->sig).code(), Code::kRefused) << "same version again";

  // HQ gets one more op and signs v2; the store takes it, and v1 afterwards is stale.
  auto member = store->resolve_member("40000001");
  ASSERT_TRUE(store->topup(new_request_id(), *member, 100, "").is_ok());
  ASSERT_TRUE(hq->ingest(*store->store().ops_of_origin(store->node_id(), 4, 10)).is_ok());
  hq.reset();
  ASSERT_TRUE(hq_checkpoint(hq_, clock_).is_ok());
  hq = open(hq_);
  auto v2 = hq->store().latest_tree_head_set();
  ASSERT_TRUE(v2.is_ok() && v2->has_value());
  EXPECT_EQ((*v2)->version, 2u);
  ASSERT_TRUE(store->accept_tree_heads((*v2)->body, (*v2)->sig).is_ok());
  EXPECT_EQ(store->accept_tree_heads((*v1)->body, (*v1)->sig).code(), Code::kRefused);
  // Tampered, or signed by another chain's root: refused, nothing stored.
  sync::Bytes tampered = (*v2)->body;
  tampered.back() ^= 1;
  EXPECT_EQ(store->accept_tree_heads(tampered, (*v2)->sig).code(), Code::kPermission);
  const std::string other = tmp_.file("other-hq");
  ASSERT_TRUE(hq_init(other, "other", kHqValidDaysDefault, clock_).is_ok());
  ASSERT_TRUE(hq_checkpoint(other, clock_).is_ok());
  auto foreign = open(other)->store().latest_tree_head_set();
  ASSERT_TRUE(foreign.is_ok() && foreign->has_value());
  EXPECT_EQ(store->accept_tree_heads((*foreign)->body, (*foreign)->sig).code(), Code::kPermission);
  EXPECT_EQ(store->tree_head_version(), 2u);
  // Restarted, the store still knows which set it holds.
  store.reset();
  EXPECT_EQ(open(store_)->tree_head_version(), 2u);
}

TEST_F(IdentityTest, RootSignedTreeHeadSetThatShrinksALogIsRefusedAndOneNamingAnotherOpRaisesAnAlert) {
  enroll(store_, "store-1");
  auto store = open(store_);
  auto roster = hq_roster();
  (void)store->accept_roster(roster.body, roster.sig);
  auto ops = make_ops(*store, 3);
  {
    auto hq = open(hq_);
    ASSERT_TRUE(hq->ingest(ops).is_ok());
  }
  ASSERT_TRUE(hq_checkpoint(hq_, clock_).is_ok());
  auto hq = open(hq_);
  auto v1 = hq->store().latest_tree_head_set();
  ASSERT_TRUE(v1.is_ok() && v1->has_value());
  ASSERT_TRUE(store->accept_tree_heads((*v1)->body, (*v1)->sig).is_ok());
  auto seed = crypto::read_key_file(hq_ + "/root.key", kRootKeyKind);
  ASSERT_TRUE(seed.is_ok());
  auto root = crypto::SigningKey::from_seed(seed->view());
  ASSERT_TRUE(root.is_ok());
  auto set = sync::decode_tree_head_set((*v1)->body);
  ASSERT_TRUE(set.is_ok());
  sync::TreeHead* mine = nullptr;
  for (auto& h : set->heads) {
    if (h.origin == store->node_id()) mine = &h;
  }
  ASSERT_NE(mine, nullptr);
  ASSERT_EQ(mine->tree_size, 3u);
  // v2 claims HQ holds only 2 of the store's ops: HQ signing two histories.
  sync::TreeHeadSet shrunk = *set;
  shrunk.version = 2;
  for (auto& h : shrunk.heads) {
    if (h.origin == store->node_id()) h = sync::TreeHead{h.origin, 2, ops[0].hash, ops[1].hash};
  }
  auto bad = sync::sign_tree_head_set(shrunk, *root);
  EXPECT_EQ(store->accept_tree_heads(bad.body, bad.sig).code(), Code::kCorruption);
  EXPECT_EQ(store->tree_head_version(), 1u);
  // v2 that extends v1 by a head this store holds under another hash: stored, and an alert.
  auto member = store->resolve_member("40000001");
  ASSERT_TRUE(store->topup(new_request_id(), *member, 100, "").is_ok());
  sync::TreeHeadSet other = *set;
  other.version = 2;
  for (auto& h : other.heads) {
    if (h.origin == store->node_id()) h = sync::TreeHead{h.origin, 4, ops[1].hash, ops[0].hash};
  }
  auto forked = sync::sign_tree_head_set(other, *root);
  ASSERT_TRUE(store->accept_tree_heads(forked.body, forked.sig).is_ok());
  auto alerts = store->store().recent_alerts(10);
  ASSERT_TRUE(alerts.is_ok());
  ASSERT_FALSE(alerts->empty());
  EXPECT_EQ(alerts->front().kind, "checkpoint_mismatch");
  // A set naming a roster newer than the store holds waits (kRefused), nothing stored.
  sync::TreeHeadSet later = other;
  later.version = 3;
  later.roster_version = 99;
  auto early = sync::sign_tree_head_set(later, *root);
  EXPECT_EQ(store->accept_tree_heads(early.body, early.sig).code(), Code::kRefused);
  EXPECT_EQ(store->tree_head_version(), 2u);
}

}  // namespace
}  // namespace outpost::node
