// node/ ledger service (node/src/ledger/) through its public API, on a real data dir
// with a ManualEnv: every member operation, tiers over the rolling 12-month window,
// idempotency by request_id, refusals with balance/rights/shortfall, reversal rules, bad input
// that must leave the database byte-for-byte unchanged, and `log verify` catching damage done to
// the database behind the ledger's back.
#include "outpost/node/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/schema.h"
#include "test_util.h"

namespace outpost::node {
namespace {

// The body the API would answer with (outpost/node/schema.h).
Json body_of(const Outcome& o) { return schema::outcome_json(o); }

using sync::MemberId;

// 2024-01-15T12:00:00Z and later instants used to cross months and the 12-month window.
constexpr std::uint64_t kJan15_2024 = 1705320000000ULL;
constexpr std::uint64_t kMar10_2024 = 1710072000000ULL;
constexpr std::uint64_t kDec20_2024 = 1734696000000ULL;
constexpr std::uint64_t kJan20_2025 = 1737374400000ULL;
constexpr std::uint64_t kMar05_2025 = 1741176000000ULL;

// Runs `sql` on a separate raw connection: damage done behind the ledger's back.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

// XORs byte `offset` of blob `column` of the ops row with seq `seq` with `mask`.
void flip_op_byte(const std::string& path, const char* column, std::uint64_t seq,
                  std::size_t offset, std::uint8_t mask) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  std::string sel = std::string("SELECT ") + column + " FROM ops WHERE seq=?1";
  ASSERT_EQ(sqlite3_prepare_v2(db, sel.c_str(), -1, &s, nullptr), SQLITE_OK);
  sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(seq));
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, 0));
  std::vector<std::uint8_t> blob(p, p + sqlite3_column_bytes(s, 0));
  sqlite3_finalize(s);
  ASSERT_LT(offset, blob.size());
  blob[offset] ^= mask;
  std::string upd = std::string("UPDATE ops SET ") + column + "=?1 WHERE seq=?2";
  ASSERT_EQ(sqlite3_prepare_v2(db, upd.c_str(), -1, &s, nullptr), SQLITE_OK);
  sqlite3_bind_blob(s, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(seq));
  ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
  sqlite3_finalize(s);
  sqlite3_close(db);
}

bool any_finding_contains(const VerifyReport& r, const std::string& needle) {
  for (const auto& f : r.findings) {
    if (f.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string findings_text(const VerifyReport& r) {
  std::string s;
  for (const auto& f : r.findings) s += "\n  " + f;
  return s;
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    InitOptions opts;
    opts.name = "store-1";
    Status st = Ledger::init(data_, opts);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    reopen();
  }

  void reopen() {
    ledger_.reset();
    auto l = Ledger::open(data_, clock_);
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    ledger_ = std::move(l).value();
  }

  std::string db_path() const { return data_ + "/" + kDbFile; }
  std::string key_path() const { return data_ + "/" + kSigningKeyFile; }
  std::string next_rid() { return "req-" + std::to_string(++rid_counter_); }

  MemberId enroll(const std::string& card, const std::string& phone = "") {
    EnrollRequest req;
    req.request_id = next_rid();
    req.card = card;
    req.name = "Member " + card;
    req.phone = phone;
    auto r = ledger_->enroll(req);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return {};
    EXPECT_FALSE(r->refused) << body_of(*r).dump();
    auto id = sync::parse_id(body_of(*r)["member"].get<std::string>());
    EXPECT_TRUE(id.is_ok());
    return id.is_ok() ? *id : MemberId{};
  }

  // Asserts success (not refused) and returns the answer's body.
  Json ok(const Result<Outcome>& r) {
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return Json();
    EXPECT_FALSE(r->refused) << body_of(*r).dump();
    return body_of(*r);
  }

  Json member(const MemberId& id) {
    auto j = schema::json_of(ledger_->member_view(id), schema::member_json);
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    return j.is_ok() ? *j : Json();
  }
  std::int64_t points(const MemberId& id) {
    return member(id)["points"]["balance"].get<std::int64_t>();
  }
  std::int64_t wallet(const MemberId& id) {
    return member(id)["wallet"]["balance"].get<std::int64_t>();
  }
  std::string tier(const MemberId& id) { return member(id)["tier"].get<std::string>(); }

  std::uint64_t op_count() {
    auto n = ledger_->store().op_count();
    EXPECT_TRUE(n.is_ok());
    return n.is_ok() ? *n : 0;
  }
  // Every row of every table (ops, member state, requests, meta including the HLC).
  std::string snapshot() { return test::dump_sqlite(db_path()); }

  std::uint64_t seq_of(const Json& body) {
    sync::NodeId origin{};
    std::uint64_t seq = 0;
    EXPECT_TRUE(sync::parse_op_ref(body["op"].get<std::string>(), origin, seq)) << body.dump();
    return seq;
  }

  void expect_clean_verify() {
    auto rep = ledger_->verify_log();
    ASSERT_TRUE(rep.is_ok()) << rep.status().to_string();
    EXPECT_TRUE(rep->ok()) << findings_text(*rep);
  }

  test::TempDir tmp_{"outpost-ledger"};
  std::string data_ = tmp_.file("data");
  sync::ManualEnv clock_{kJan15_2024};
  std::unique_ptr<Ledger> ledger_;
  int rid_counter_ = 0;
};

// --- each operation ---

TEST_F(LedgerTest, InitCreatesPrivateDirKeyAndIdentity) {
  EXPECT_EQ(test::file_mode(data_), 0700);
  EXPECT_EQ(test::file_mode(key_path()), 0600);
  auto st = schema::json_of(ledger_->node_status(), schema::status_json);
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ((*st)["name"], "store-1");
  EXPECT_EQ((*st)["ops"], 0);
  EXPECT_EQ((*st)["node_id"], sync::id_hex(ledger_->node_id()));
  EXPECT_EQ((*st)["signing_public_key"], crypto::to_hex(ledger_->public_key()));
}

TEST_F(LedgerTest, InitOfAnInitializedDirIsRefusedAndKeepsTheKey) {
  std::string key_before = test::read_file(key_path());
  InitOptions opts;
  opts.name = "again";
  Status st = Ledger::init(data_, opts);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(test::read_file(key_path()), key_before);
}

TEST_F(LedgerTest, EnrolledMemberIsFoundByCardPhoneAndId) {
  MemberId id = enroll("40001234", "+4915112345");
  Json m = member(id);
  EXPECT_EQ(m["card"], "40001234");
  EXPECT_EQ(m["phone"], "+4915112345");
  EXPECT_EQ(m["status"], "active");
  EXPECT_EQ(m["home_store"], sync::id_hex(ledger_->node_id()));
  EXPECT_EQ(m["tier"], "member");
  EXPECT_EQ(m["points"]["balance"], 0);
  EXPECT_EQ(m["wallet"]["balance"], 0);

  auto by_card = ledger_->find_by_card("40001234");
  ASSERT_TRUE(by_card.is_ok());
  ASSERT_EQ(by_card->size(), 1u);
  EXPECT_EQ(by_card->front(), id);
  auto by_phone = ledger_->find_by_phone("+4915112345");
  ASSERT_TRUE(by_phone.is_ok());
  ASSERT_EQ(by_phone->size(), 1u);
  EXPECT_EQ(*ledger_->resolve_member("40001234"), id);
  EXPECT_EQ(*ledger_->resolve_member(sync::id_hex(id)), id);
  EXPECT_TRUE(ledger_->find_by_card("40009999")->empty());
}

TEST_F(LedgerTest, EnrollWithCardInUseIsRefusedAndAddsNoOp) {
  enroll("40001234");
  std::uint64_t n = op_count();
  EnrollRequest req{next_rid(), "40001234", "Someone Else", "", ""};
  auto r = ledger_->enroll(req);
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->refused);
  EXPECT_EQ(body_of(*r)["error"], "card_in_use");
  EXPECT_EQ(op_count(), n);
}

TEST_F(LedgerTest, EarnCreditsPointsAtTheMemberTierRate) {
  MemberId id = enroll("40001234");
  Json b = ok(ledger_->earn(next_rid(), id, 1234, "rcpt-1"));
  EXPECT_EQ(b["kind"], "earn");
  EXPECT_EQ(b["amount"], 12) << "member tier: 1 point per 100 minor units, rounded down";
  EXPECT_EQ(b["purchase_minor"], 1234);
  EXPECT_EQ(b["points"]["balance"], 12);
  EXPECT_EQ(b["points"]["rights_here"], 12);
  Json m = member(id);
  EXPECT_EQ(m["points"]["balance"], 12);
  EXPECT_EQ(m["rolling_spend_minor"], 1234);
  EXPECT_EQ(m["visits"], 1);
}

TEST_F(LedgerTest, EarnBelowOneUnitEarnsZeroPointsAndLogStillVerifies) {
  MemberId id = enroll("40001234");
  Json b = ok(ledger_->earn(next_rid(), id, 99, ""));
  EXPECT_EQ(b["amount"], 0);
  EXPECT_EQ(points(id), 0);
  EXPECT_EQ(member(id)["rolling_spend_minor"], 99) << "the purchase still counts toward tiers";
  expect_clean_verify();
}

TEST_F(LedgerTest, RedeemDebitsPoints) {
  MemberId id = enroll("40001234");
  ok(ledger_->earn(next_rid(), id, 10'000, ""));
  Json b = ok(ledger_->redeem(next_rid(), id, 40, "rcpt-2"));
  EXPECT_EQ(b["kind"], "redeem");
  EXPECT_EQ(b["amount"], 40);
  EXPECT_EQ(b["points"]["balance"], 60);
  EXPECT_EQ(points(id), 60);
}

TEST_F(LedgerTest, TopupAndSpendMoveTheWallet) {
  MemberId id = enroll("40001234");
  Json t = ok(ledger_->topup(next_rid(), id, 5'000, ""));
  EXPECT_EQ(t["kind"], "topup");
  EXPECT_EQ(t["wallet"]["balance"], 5'000);
  Json s = ok(ledger_->spend(next_rid(), id, 1'250, ""));
  EXPECT_EQ(s["kind"], "spend");
  EXPECT_EQ(s["wallet"]["balance"], 3'750);
  EXPECT_EQ(s["wallet"]["rights_here"], 3'750);
  // Spending exactly everything that is left is allowed.
  ok(ledger_->spend(next_rid(), id, 3'750, ""));
  EXPECT_EQ(wallet(id), 0);
  EXPECT_EQ(seq_of(s), 3u) << "enroll, topup, spend";
}

TEST_F(LedgerTest, ReversalOfEachKindRestoresTheBalance) {
  MemberId id = enroll("40001234");
  Json earn = ok(ledger_->earn(next_rid(), id, 20'000, ""));  // +200 points
  Json redeem = ok(ledger_->redeem(next_rid(), id, 50, ""));  // -50 points
  Json topup = ok(ledger_->topup(next_rid(), id, 900, ""));   // +900 wallet
  Json spend = ok(ledger_->spend(next_rid(), id, 300, ""));   // -300 wallet
  ASSERT_EQ(points(id), 150);
  ASSERT_EQ(wallet(id), 600);
  const sync::NodeId me = ledger_->node_id();

  Json r = ok(ledger_->reverse(next_rid(), me, seq_of(spend)));
  EXPECT_EQ(r["kind"], "reverse");
  EXPECT_EQ(wallet(id), 900);
  ok(ledger_->reverse(next_rid(), me, seq_of(topup)));
  EXPECT_EQ(wallet(id), 0);
  ok(ledger_->reverse(next_rid(), me, seq_of(redeem)));
  EXPECT_EQ(points(id), 200);
  ok(ledger_->reverse(next_rid(), me, seq_of(earn)));
  EXPECT_EQ(points(id), 0);
  EXPECT_EQ(member(id)["rolling_spend_minor"], 0) << "a reversed purchase leaves the tier spend";

  auto hist = schema::json_of(ledger_->history(id, 100), schema::history_json);
  ASSERT_TRUE(hist.is_ok());
  int reversed = 0;
  for (const auto& op : *hist) reversed += op.contains("reversed_by") ? 1 : 0;
  EXPECT_EQ(reversed, 4);
  expect_clean_verify();
}

TEST_F(LedgerTest, ReversalOfEnrollIsInvalid) {
  MemberId id = enroll("40001234");
  (void)id;
  auto r = ledger_->reverse(next_rid(), ledger_->node_id(), 1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST_F(LedgerTest, ProfileUpdateReplacesPhoneForLookups) {
  MemberId id = enroll("40001234", "+4915100001");
  ok(ledger_->update_profile(next_rid(), id, {{sync::Field::kPhone, "+4915100002"}}));
  EXPECT_TRUE(ledger_->find_by_phone("+4915100001")->empty());
  EXPECT_EQ(ledger_->find_by_phone("+4915100002")->size(), 1u);
  EXPECT_EQ(member(id)["phone"], "+4915100002");
  auto bad = ledger_->update_profile(next_rid(), id, {{sync::Field::kStatus, "deleted"}});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ledger_->update_profile(next_rid(), id, {}).status().code(), Code::kInvalidArgument);
}

// --- tiers over the rolling window ---

TEST_F(LedgerTest, TierUpgradesOnceRollingSpendPassesTheSilverThreshold) {
  MemberId id = enroll("40001234");
  // January: 300.00 spent, member rate (1 point / 1.00).
  EXPECT_EQ(ok(ledger_->earn(next_rid(), id, 30'000, ""))["amount"], 300);
  EXPECT_EQ(tier(id), "member");
  // March: the tier is decided by the spend before this purchase, so still the member rate.
  clock_.set(kMar10_2024);
  EXPECT_EQ(ok(ledger_->earn(next_rid(), id, 30'000, ""))["amount"], 300);
  EXPECT_EQ(member(id)["rolling_spend_minor"], 60'000);
  EXPECT_EQ(tier(id), "silver");
  // Now silver: 2 points / 1.00.
  EXPECT_EQ(ok(ledger_->earn(next_rid(), id, 10'000, ""))["amount"], 200);
  EXPECT_EQ(points(id), 800);
}

TEST_F(LedgerTest, TierFallsBackAsSpendLeavesTheTwelveMonthWindow) {
  MemberId id = enroll("40001234");
  ok(ledger_->earn(next_rid(), id, 30'000, ""));  // Jan 2024
  clock_.set(kMar10_2024);
  ok(ledger_->earn(next_rid(), id, 30'000, ""));  // Mar 2024
  ASSERT_EQ(tier(id), "silver");

  // Dec 2024: January 2024 is still one of the 12 months ending now.
  clock_.set(kDec20_2024);
  EXPECT_EQ(member(id)["rolling_spend_minor"], 60'000);
  EXPECT_EQ(tier(id), "silver");
  // Jan 2025: January 2024 has left the window.
  clock_.set(kJan20_2025);
  EXPECT_EQ(member(id)["rolling_spend_minor"], 30'000);
  EXPECT_EQ(tier(id), "member");
  EXPECT_EQ(ok(ledger_->earn(next_rid(), id, 1'000, ""))["amount"], 10) << "member rate again";
  // Mar 2025: March 2024 has left too; only this year's purchase counts.
  clock_.set(kMar05_2025);
  EXPECT_EQ(member(id)["rolling_spend_minor"], 1'000);
  // Points never expire with the tier.
  EXPECT_EQ(points(id), 610);
  expect_clean_verify();
}

TEST_F(LedgerTest, ReversedEarnTakesTheTierBack) {
  MemberId id = enroll("40001234");
  Json big = ok(ledger_->earn(next_rid(), id, 60'000, ""));
  ASSERT_EQ(tier(id), "silver");
  ok(ledger_->reverse(next_rid(), ledger_->node_id(), seq_of(big)));
  EXPECT_EQ(tier(id), "member");
  EXPECT_EQ(ok(ledger_->earn(next_rid(), id, 1'000, ""))["amount"], 10);
}

// --- idempotency ---

TEST_F(LedgerTest, RepeatedRequestIdReturnsTheFirstAnswerAndChangesNothing) {
  MemberId id = enroll("40001234");
  Json first = ok(ledger_->topup("pos-7:0001", id, 500, "r1"));
  std::string before = snapshot();
  std::uint64_t n = op_count();

  auto again = ledger_->topup("pos-7:0001", id, 500, "r1");
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_FALSE(again->refused);
  EXPECT_EQ(body_of(*again)["replayed"], true);
  Json body = body_of(*again);
  body.erase("replayed");
  EXPECT_EQ(body.dump(), first.dump())
      << "the stored answer, read back, is the first byte for byte";
  EXPECT_EQ(op_count(), n);
  EXPECT_EQ(wallet(id), 500);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTest, RequestIdReusedWithAnotherAmountIsInvalidAndChangesNothing) {
  MemberId id = enroll("40001234");
  ok(ledger_->topup("pos-7:0001", id, 500, "r1"));
  std::string before = snapshot();
  auto again = ledger_->topup("pos-7:0001", id, 9'999, "r2");
  ASSERT_FALSE(again.is_ok());
  EXPECT_EQ(again.status().code(), Code::kInvalidArgument);
  EXPECT_NE(again.status().message().find("already used"), std::string::npos) << again.status().to_string();
  EXPECT_EQ(wallet(id), 500);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTest, RequestIdReusedForAnotherKindOrMemberIsInvalidAndChangesNothing) {
  MemberId id = enroll("40001234");
  MemberId other = enroll("40005678");
  ok(ledger_->topup("same-id", id, 500, ""));
  std::string before = snapshot();
  auto spend = ledger_->spend("same-id", id, 100, "");
  ASSERT_FALSE(spend.is_ok());
  EXPECT_EQ(spend.status().code(), Code::kInvalidArgument);
  auto topup_other = ledger_->topup("same-id", other, 500, "");
  ASSERT_FALSE(topup_other.is_ok());
  EXPECT_EQ(topup_other.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(wallet(id), 500);
  EXPECT_EQ(wallet(other), 0);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTest, RepeatedRequestIdIsRememberedAcrossReopen) {
  MemberId id = enroll("40001234");
  Json first = ok(ledger_->earn("pos-1:42", id, 5'000, ""));
  reopen();
  std::uint64_t n = op_count();
  auto again = ledger_->earn("pos-1:42", id, 5'000, "");
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(body_of(*again)["op"], first["op"]);
  EXPECT_EQ(body_of(*again)["hash"], first["hash"]);
  EXPECT_EQ(op_count(), n);
  EXPECT_EQ(points(id), 50);
}

TEST_F(LedgerTest, RepeatedEnrollRequestReturnsTheSameMember) {
  EnrollRequest req{"enroll-1", "40001234", "Ann", "", ""};
  Json first = ok(ledger_->enroll(req));
  std::uint64_t n = op_count();
  req.card = "40005678";  // a retry with other data still gets the first answer
  auto again = ledger_->enroll(req);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(body_of(*again)["member"], first["member"]);
  EXPECT_EQ(op_count(), n);
  EXPECT_TRUE(ledger_->find_by_card("40005678")->empty());
}

TEST_F(LedgerTest, RepeatedReversalRequestReturnsItsAnswerNotAlreadyReversed) {
  MemberId id = enroll("40001234");
  Json t = ok(ledger_->topup(next_rid(), id, 500, ""));
  Json first = ok(ledger_->reverse("rev-1", ledger_->node_id(), seq_of(t)));
  std::uint64_t n = op_count();
  auto again = ledger_->reverse("rev-1", ledger_->node_id(), seq_of(t));
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_FALSE(again->refused);
  EXPECT_EQ(body_of(*again)["op"], first["op"]);
  EXPECT_EQ(op_count(), n);
}

// --- refusals ---

TEST_F(LedgerTest, OverspendIsRefusedWithBalanceRightsAndShortfall) {
  MemberId id = enroll("40001234");
  ok(ledger_->topup(next_rid(), id, 700, ""));
  std::string before = snapshot();
  auto r = ledger_->spend(next_rid(), id, 1'000, "");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->refused);
  EXPECT_FALSE(r->replayed);
  EXPECT_EQ(body_of(*r)["error"], "insufficient_rights");
  EXPECT_EQ(body_of(*r)["account"], "wallet");
  EXPECT_EQ(body_of(*r)["requested"], 1'000);
  EXPECT_EQ(body_of(*r)["balance"], 700);
  EXPECT_EQ(body_of(*r)["rights_here"], 700);
  EXPECT_EQ(body_of(*r)["shortfall"], 300);
  EXPECT_TRUE(body_of(*r)["rights_elsewhere"].is_object());
  EXPECT_NE(body_of(*r)["message"].get<std::string>().find("shortfall 300"), std::string::npos);
  EXPECT_EQ(snapshot(), before) << "a refusal changes nothing";
}

TEST_F(LedgerTest, OverRedeemIsRefusedWithBalanceRightsAndShortfall) {
  MemberId id = enroll("40001234");
  ok(ledger_->earn(next_rid(), id, 2'500, ""));  // 25 points
  std::uint64_t n = op_count();
  auto r = ledger_->redeem(next_rid(), id, 26, "");
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->refused);
  EXPECT_EQ(body_of(*r)["account"], "points");
  EXPECT_EQ(body_of(*r)["balance"], 25);
  EXPECT_EQ(body_of(*r)["rights_here"], 25);
  EXPECT_EQ(body_of(*r)["shortfall"], 1);
  EXPECT_EQ(op_count(), n);
  EXPECT_EQ(points(id), 25);
}

TEST_F(LedgerTest, SpendFromEmptyWalletIsRefusedWithFullShortfall) {
  MemberId id = enroll("40001234");
  auto r = ledger_->spend(next_rid(), id, 1, "");
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->refused);
  EXPECT_EQ(body_of(*r)["balance"], 0);
  EXPECT_EQ(body_of(*r)["rights_here"], 0);
  EXPECT_EQ(body_of(*r)["shortfall"], 1);
}

TEST_F(LedgerTest, DoubleReversalIsRefused) {
  MemberId id = enroll("40001234");
  Json t = ok(ledger_->topup(next_rid(), id, 500, ""));
  Json rev = ok(ledger_->reverse(next_rid(), ledger_->node_id(), seq_of(t)));
  std::string before = snapshot();
  auto again = ledger_->reverse(next_rid(), ledger_->node_id(), seq_of(t));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_TRUE(again->refused);
  EXPECT_EQ(body_of(*again)["error"], "already_reversed");
  EXPECT_NE(body_of(*again)["message"].get<std::string>().find(rev["op"].get<std::string>()),
            std::string::npos)
      << "the refusal names the reversing op";
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(wallet(id), 0);
}

TEST_F(LedgerTest, ReversalOfTopupAfterTheWalletWasSpentIsRefused) {
  MemberId id = enroll("40001234");
  Json t = ok(ledger_->topup(next_rid(), id, 500, ""));
  ok(ledger_->spend(next_rid(), id, 200, ""));
  std::string before = snapshot();
  auto r = ledger_->reverse(next_rid(), ledger_->node_id(), seq_of(t));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->refused);
  EXPECT_EQ(body_of(*r)["error"], "insufficient_rights");
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(wallet(id), 300) << "the wallet must never go negative";
}

TEST_F(LedgerTest, ReversalOfEarnAfterPointsWereRedeemedIsRefused) {
  MemberId id = enroll("40001234");
  Json e = ok(ledger_->earn(next_rid(), id, 10'000, ""));  // 100 points
  ok(ledger_->redeem(next_rid(), id, 60, ""));
  std::uint64_t n = op_count();
  auto r = ledger_->reverse(next_rid(), ledger_->node_id(), seq_of(e));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->refused);
  EXPECT_EQ(op_count(), n);
  EXPECT_EQ(points(id), 40);
}

// --- not found ---

TEST_F(LedgerTest, UnknownMemberIsNotFoundAndChangesNothing) {
  enroll("40001234");
  std::string before = snapshot();
  MemberId stranger{};
  stranger[3] = 0x42;
  for (const auto& r :
       {ledger_->earn(next_rid(), stranger, 100, ""), ledger_->redeem(next_rid(), stranger, 1, ""),
        ledger_->topup(next_rid(), stranger, 100, ""),
        ledger_->spend(next_rid(), stranger, 1, "")}) {
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().to_string();
  }
  EXPECT_EQ(schema::json_of(ledger_->member_view(stranger), schema::member_json).status().code(),
            Code::kNotFound);
  EXPECT_EQ(schema::json_of(ledger_->history(stranger, 10), schema::history_json).status().code(),
            Code::kNotFound);
  EXPECT_EQ(ledger_->resolve_member("49999999").status().code(), Code::kNotFound);
  EXPECT_EQ(ledger_->resolve_member("not-a-card").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTest, UnknownOpIsNotFoundAndChangesNothing) {
  enroll("40001234");
  std::string before = snapshot();
  auto r = ledger_->reverse(next_rid(), ledger_->node_id(), 999);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  sync::NodeId other{};
  other[0] = 7;
  EXPECT_EQ(ledger_->reverse(next_rid(), other, 1).status().code(), Code::kNotFound);
  EXPECT_EQ(snapshot(), before);
}

// --- bad input ---

TEST(LedgerParseAmountTest, AcceptsPlainPositiveIntegersUpToTheMaximum) {
  EXPECT_EQ(*parse_amount("1", "amount"), 1u);
  EXPECT_EQ(*parse_amount("250", "amount"), 250u);
  EXPECT_EQ(*parse_amount(std::to_string(limits::kAmountMax), "amount"), limits::kAmountMax);
}

TEST(LedgerParseAmountTest, RejectsZeroSignsDecimalsWhitespaceAndOverflow) {
  const std::vector<std::string> bad = {"0",
                                        "-5",
                                        "-0",
                                        "1.5",
                                        "+5",
                                        " 5",
                                        "5 ",
                                        "",
                                        "1e3",
                                        "0x10",
                                        "12a",
                                        "1,000",
                                        "\xef\xbc\x95",
                                        std::to_string(limits::kAmountMax + 1),
                                        "10000000000000",
                                        "99999999999999999999",
                                        "184467440737095516160"};
  for (const auto& text : bad) {
    auto r = parse_amount(text, "amount");
    EXPECT_FALSE(r.is_ok()) << "'" << text << "' was accepted as " << (r.is_ok() ? *r : 0);
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
      EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "one-line error";
      EXPECT_NE(r.status().message().find("amount"), std::string::npos) << "names the field";
    }
  }
}

TEST_F(LedgerTest, OutOfRangeAmountsThroughTheApiAreInvalidAndChangeNothing) {
  MemberId id = enroll("40001234");
  ok(ledger_->topup(next_rid(), id, 100, ""));
  std::string before = snapshot();
  const std::uint64_t too_big = limits::kAmountMax + 1;
  for (const auto& r :
       {ledger_->earn(next_rid(), id, 0, ""), ledger_->earn(next_rid(), id, too_big, ""),
        ledger_->redeem(next_rid(), id, 0, ""), ledger_->topup(next_rid(), id, 0, ""),
        ledger_->topup(next_rid(), id, too_big, ""), ledger_->spend(next_rid(), id, 0, ""),
        ledger_->spend(next_rid(), id, too_big, "")}) {
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().to_string();
  }
  EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTest, MalformedEnrollFieldsAreInvalidAndChangeNothing) {
  enroll("40001234");
  std::string before = snapshot();
  std::uint64_t n = op_count();
  struct Case {
    const char* what;
    EnrollRequest req;
  };
  const std::vector<Case> cases = {
      {"short card", {"e1", "1234567", "Ann", "", ""}},
      {"long card", {"e2", "12345678901234567890", "Ann", "", ""}},
      {"card with letter", {"e3", "1234567a", "Ann", "", ""}},
      {"card with space", {"e4", "1234 5678", "Ann", "", ""}},
      {"empty card", {"e5", "", "Ann", "", ""}},
      {"phone with dash", {"e6", "50001234", "Ann", "0151-123456", ""}},
      {"short phone", {"e7", "50001234", "Ann", "12345", ""}},
      {"plus only phone", {"e8", "50001234", "Ann", "+", ""}},
      {"long phone", {"e9", "50001234", "Ann", "+1234567890123456", ""}},
      {"empty name", {"e10", "50001234", "", "", ""}},
      {"control char in name", {"e11", "50001234", "An\nn", "", ""}},
      {"name too long", {"e12", "50001234", std::string(limits::kNameBytesMax + 1, 'x'), "", ""}},
      {"birthday not a date", {"e13", "50001234", "Ann", "", "1990-13-01"}},
      {"birthday no leap day", {"e14", "50001234", "Ann", "", "2023-02-29"}},
      {"birthday wrong format", {"e15", "50001234", "Ann", "", "19900101"}},
      {"birthday letters", {"e16", "50001234", "Ann", "", "abcd-ef-gh"}},
      {"birthday day 32", {"e17", "50001234", "Ann", "", "1990-01-32"}},
      {"empty request id", {"", "50001234", "Ann", "", ""}},
      {"request id with space", {"a b", "50001234", "Ann", "", ""}},
      {"request id too long",
       {std::string(limits::kRequestIdBytesMax + 1, 'r'), "50001234", "Ann", "", ""}},
  };
  for (const auto& c : cases) {
    auto r = ledger_->enroll(c.req);
    ASSERT_FALSE(r.is_ok()) << c.what << " was accepted";
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.what;
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << c.what << ": one line";
    EXPECT_EQ(op_count(), n) << c.what;
    EXPECT_EQ(snapshot(), before) << c.what;
  }
  // The same fields, well-formed, are accepted (the cases above fail for the stated reason).
  EnrollRequest good{"e-ok", "50001234", "Ann", "+4915112345", "2024-02-29"};
  ok(ledger_->enroll(good));
}

TEST_F(LedgerTest, BadRequestIdOnMoneyOpIsInvalidAndChangesNothing) {
  MemberId id = enroll("40001234");
  std::string before = snapshot();
  for (const std::string& rid : {std::string(""), std::string("has space"), std::string("semi;"),
                                 std::string(limits::kRequestIdBytesMax + 1, 'a')}) {
    EXPECT_EQ(ledger_->topup(rid, id, 100, "").status().code(), Code::kInvalidArgument) << rid;
  }
  EXPECT_EQ(snapshot(), before);
}

// --- log verify ---

class LedgerVerifyTest : public LedgerTest {
 protected:
  // A mixed history: two members, every kind, a reversal, months apart.
  void make_history() {
    a_ = enroll("40001234", "+4915100001");
    b_ = enroll("40005678");
    ok(ledger_->earn(next_rid(), a_, 12'345, "r"));
    ok(ledger_->topup(next_rid(), a_, 10'000, ""));
    topup_b_ = seq_of(ok(ledger_->topup(next_rid(), b_, 2'000, "")));
    ok(ledger_->spend(next_rid(), a_, 2'500, ""));
    clock_.advance(40ULL * 24 * 3600 * 1000);
    ok(ledger_->redeem(next_rid(), a_, 23, ""));
    Json e = ok(ledger_->earn(next_rid(), b_, 70'000, ""));
    ok(ledger_->reverse(next_rid(), ledger_->node_id(), seq_of(e)));
    ok(ledger_->update_profile(next_rid(), b_, {{sync::Field::kName, "Bea"}}));
    last_seq_ = op_count();
  }
  // Reopens the ledger after `damage` ran on the closed database, then verifies.
  VerifyReport verify_after(const std::function<void()>& damage) {
    ledger_.reset();
    damage();
    reopen();
    auto rep = ledger_->verify_log();
    EXPECT_TRUE(rep.is_ok()) << rep.status().to_string();
    return rep.is_ok() ? *rep : VerifyReport{};
  }

  MemberId a_{}, b_{};
  std::uint64_t topup_b_ = 0;
  std::uint64_t last_seq_ = 0;
};

TEST_F(LedgerVerifyTest, CleanAfterMixedHistoryAndReopen) {
  make_history();
  auto rep = ledger_->verify_log();
  ASSERT_TRUE(rep.is_ok());
  EXPECT_TRUE(rep->ok()) << findings_text(*rep);
  EXPECT_EQ(rep->ops_checked, last_seq_);
  EXPECT_EQ(rep->origins, 1u);
  EXPECT_EQ(rep->members_compared, 2u);
  reopen();
  expect_clean_verify();
}

TEST_F(LedgerVerifyTest, FindsEscrowCreditInflatedBehindItsBack) {
  make_history();
  auto rep = verify_after([&] { raw_exec(db_path(), "UPDATE escrow SET credit=credit+1"); });
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(any_finding_contains(rep, "stored state differs")) << findings_text(rep);
}

TEST_F(LedgerVerifyTest, FindsDeletedMemberStateRow) {
  make_history();
  auto rep = verify_after([&] { raw_exec(db_path(), "DELETE FROM gcounters"); });
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(any_finding_contains(rep, "stored state differs")) << findings_text(rep);
}

TEST_F(LedgerVerifyTest, FindsFlippedAmountByteInOpBody) {
  make_history();
  // Byte 91 of the signed encoding is the low byte of `amount` (docs/op-format.md): the op still
  // decodes, so only the signature and the chain can tell.
  auto rep = verify_after([&] { flip_op_byte(db_path(), "body", topup_b_, 91, 0x01); });
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(any_finding_contains(rep, "bad signature")) << findings_text(rep);
  EXPECT_TRUE(any_finding_contains(rep, "prev does not match")) << findings_text(rep);
}

TEST_F(LedgerVerifyTest, FindsFlippedSignatureByte) {
  make_history();
  auto rep = verify_after([&] { flip_op_byte(db_path(), "sig", 3, 10, 0x40); });
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(any_finding_contains(rep, "bad signature")) << findings_text(rep);
}

TEST_F(LedgerVerifyTest, FindsOpDeletedFromTheMiddleOfTheChain) {
  make_history();
  auto rep = verify_after([&] { raw_exec(db_path(), "DELETE FROM ops WHERE seq=4"); });
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(any_finding_contains(rep, "gap")) << findings_text(rep);
}

TEST_F(LedgerVerifyTest, FindsTruncatedLogBehindHead) {
  make_history();
  auto rep = verify_after(
      [&] { raw_exec(db_path(), "DELETE FROM ops WHERE seq=" + std::to_string(last_seq_)); });
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(any_finding_contains(rep, "head")) << findings_text(rep);
}

TEST_F(LedgerVerifyTest, UndecodableOpBodyFailsVerification) {
  make_history();
  ledger_.reset();
  flip_op_byte(db_path(), "body", 2, 0, 0xFF);  // the magic: no longer an op at all
  reopen();
  auto rep = ledger_->verify_log();
  // A finding that names the op, not an abort: the rest of the log is still checked.
  ASSERT_TRUE(rep.is_ok()) << rep.status().to_string();
  EXPECT_FALSE(rep->ok());
  const std::string ref = sync::op_ref_string(ledger_->node_id(), 2);
  bool named = false;
  for (const auto& f : rep->findings) named = named || f.rfind(ref + ": stored op cannot be decoded", 0) == 0;
  EXPECT_TRUE(named) << "no finding names " << ref;
}

// --- opening damaged or foreign data dirs ---

TEST_F(LedgerTest, CorruptedKeyFileMakesOpenFailWithClearError) {
  ledger_.reset();
  std::string text = test::read_file(key_path());
  std::size_t pos = std::string("outpost-key v1 ed25519-seed ").size() + 3;
  text[pos] = text[pos] == 'f' ? 'e' : 'f';
  test::write_file(key_path(), text);
  auto l = Ledger::open(data_, clock_);
  ASSERT_FALSE(l.is_ok());
  EXPECT_EQ(l.status().code(), Code::kCorruption);
  EXPECT_NE(l.status().message().find(kSigningKeyFile), std::string::npos) << l.status().message();
  EXPECT_NE(l.status().message().find("damaged"), std::string::npos) << l.status().message();
  EXPECT_EQ(l.status().message().find('\n'), std::string::npos);
}

TEST_F(LedgerTest, GroupReadableKeyFileMakesOpenFailWithPermission) {
  ledger_.reset();
  ASSERT_EQ(::chmod(key_path().c_str(), 0644), 0);
  auto l = Ledger::open(data_, clock_);
  ASSERT_FALSE(l.is_ok());
  EXPECT_EQ(l.status().code(), Code::kPermission);
}

TEST_F(LedgerTest, KeyFileOfAnotherNodeMakesOpenFail) {
  ledger_.reset();
  ASSERT_EQ(::unlink(key_path().c_str()), 0);
  ASSERT_TRUE(crypto::write_signing_key(key_path(), crypto::SigningKey::generate()).is_ok());
  auto l = Ledger::open(data_, clock_);
  ASSERT_FALSE(l.is_ok());
  EXPECT_EQ(l.status().code(), Code::kCorruption);
  EXPECT_NE(l.status().message().find("does not belong"), std::string::npos);
}

TEST_F(LedgerTest, MissingKeyFileMakesOpenFail) {
  ledger_.reset();
  ASSERT_EQ(::unlink(key_path().c_str()), 0);
  auto l = Ledger::open(data_, clock_);
  ASSERT_FALSE(l.is_ok());
  EXPECT_EQ(l.status().code(), Code::kNotFound);
}

TEST_F(LedgerTest, DatabaseFromANewerVersionIsRefusedAndUnchanged) {
  MemberId id = enroll("40001234");
  ok(ledger_->topup(next_rid(), id, 100, ""));
  ledger_.reset();
  raw_exec(db_path(), "PRAGMA user_version=" + std::to_string(storage::kSchemaVersion + 1));
  std::string before = snapshot();
  auto l = Ledger::open(data_, clock_);
  ASSERT_FALSE(l.is_ok());
  EXPECT_EQ(l.status().code(), Code::kUnsupported);
  EXPECT_NE(l.status().message().find("newer"), std::string::npos) << l.status().message();
  EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTest, OpenOfSomethingThatIsNotADataDirIsNotFound) {
  EXPECT_EQ(Ledger::open(tmp_.file("missing"), clock_).status().code(), Code::kNotFound);
  test::write_file(tmp_.file("plain-file"), "x");
  EXPECT_EQ(Ledger::open(tmp_.file("plain-file"), clock_).status().code(), Code::kNotFound);
  ASSERT_EQ(::mkdir(tmp_.file("empty-dir").c_str(), 0700), 0);
  auto l = Ledger::open(tmp_.file("empty-dir"), clock_);
  EXPECT_EQ(l.status().code(), Code::kNotFound);
  EXPECT_NE(l.status().message().find("outpost init"), std::string::npos) << l.status().message();
  EXPECT_EQ(test::file_mode(tmp_.file("empty-dir/outpost.db")), -1) << "open must not create a db";
}

TEST_F(LedgerTest, ForeignDatabaseInDataDirIsRefused) {
  ledger_.reset();
  ASSERT_EQ(::unlink(db_path().c_str()), 0);
  raw_exec(db_path(), "CREATE TABLE orders(id INTEGER PRIMARY KEY)");
  std::string before = snapshot();
  auto l = Ledger::open(data_, clock_);
  ASSERT_FALSE(l.is_ok());
  EXPECT_EQ(l.status().code(), Code::kCorruption);
  EXPECT_EQ(snapshot(), before);
}

}  // namespace
}  // namespace outpost::node

namespace outpost::node {
namespace {

// The cache through which the daemon's verifier thread spares the worker re-checking signatures:
// an entry counts only for the exact key it was checked under, only once, and the cache is bounded.
TEST(VerifiedSignaturesTest, AnEntryCountsOnceAndOnlyForTheKeyItWasCheckedUnder) {
  VerifiedSignatures v;
  sync::Hash32 h{};
  h[0] = 1;
  crypto::PublicKey k1{}, k2{};
  k1[0] = 1;
  k2[0] = 2;
  EXPECT_FALSE(v.take(h, k1)) << "nothing was checked yet";
  v.add(h, k1);
  EXPECT_FALSE(v.take(h, k2)) << "checked under another key (a different origin claims the op)";
  EXPECT_TRUE(v.take(h, k1));
  EXPECT_FALSE(v.take(h, k1)) << "an entry is used once";
  // Bounded: the oldest entries are forgotten first.
  for (std::size_t i = 0; i <= VerifiedSignatures::kEntriesMax; ++i) {
    sync::Hash32 x{};
    x[0] = static_cast<std::uint8_t>(i);
    x[1] = static_cast<std::uint8_t>(i >> 8);
    x[2] = static_cast<std::uint8_t>(i >> 16);
    x[31] = 0xee;
    v.add(x, k1);
  }
  sync::Hash32 first{};
  first[31] = 0xee;
  EXPECT_FALSE(v.take(first, k1)) << "the cache grew past its bound";
  sync::Hash32 last{};
  last[0] = static_cast<std::uint8_t>(VerifiedSignatures::kEntriesMax);
  last[1] = static_cast<std::uint8_t>(VerifiedSignatures::kEntriesMax >> 8);
  last[2] = static_cast<std::uint8_t>(VerifiedSignatures::kEntriesMax >> 16);
  last[31] = 0xee;
  EXPECT_TRUE(v.take(last, k1));
}

}  // namespace
}  // namespace outpost::node
