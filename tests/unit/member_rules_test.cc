// Member rules: the pure functions of sync/member_rules.h (status, PIN lockout) and the
// RecentEvents CRDT behind the lockout, then the ledger applying them on real data dirs: the
// request_id rule of reversals, status enforcement on every path that moves value (including the
// rights broker's grant), PIN clearance for spends and PIN changes, wrong PINs at two ledgers that
// exchange ops adding up to a lockout at both, the rights-move guard at its boundary, and the
// reversal of another origin's op.
#include "outpost/sync/member_rules.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "test_util.h"

namespace outpost {
namespace {

using node::Json;
using node::Ledger;
using node::Outcome;
// The body the API would answer with (outpost/node/schema.h).
Json body_of(const Outcome& o) { return node::schema::outcome_json(o); }
using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::OpKind;

constexpr std::uint64_t kNowMs = 1705320000000ULL;  // 2024-01-15T12:00:00Z

sync::NodeId node_id(std::uint8_t b) {
  sync::NodeId id{};
  id.fill(b);
  return id;
}

// --- RecentEvents ---

TEST(RecentEventsTest, KeepsTheNewestFiveWhateverTheOrderOfMerges) {
  sync::RecentEvents a, b, c;
  for (std::uint64_t t = 1; t <= 4; ++t) a.add({t * 10, 0}, node_id(1));
  for (std::uint64_t t = 1; t <= 4; ++t) b.add({t * 10 + 5, 0}, node_id(2));
  c.add({100, 0}, node_id(3));
  sync::RecentEvents ab_c = a, c_ba = c;
  ab_c.merge(b);
  ab_c.merge(c);
  sync::RecentEvents ba = b;
  ba.merge(a);
  c_ba.merge(ba);
  EXPECT_EQ(ab_c, c_ba);
  ASSERT_EQ(ab_c.events().size(), sync::RecentEvents::kKept);
  EXPECT_EQ(ab_c.events().front().hlc.wall_ms, 100u);
  EXPECT_EQ(ab_c.events().back().hlc.wall_ms, 30u);
  sync::RecentEvents again = ab_c;
  again.merge(ab_c);
  EXPECT_EQ(again, ab_c) << "merge must be idempotent";
  EXPECT_EQ(ab_c.count_after({30, 0}), 4u);
}

TEST(RecentEventsTest, SameTimeAtTwoNodesIsTwoEvents) {
  sync::RecentEvents e;
  e.add({7, 0}, node_id(1));
  e.add({7, 0}, node_id(2));
  e.add({7, 0}, node_id(1));
  EXPECT_EQ(e.events().size(), 2u);
}

// --- pure rules ---

MemberState member_with_status(const std::string& status) {
  MemberState m;
  m.fields[Field::kCard].assign("40000001", {1, 0}, node_id(1));
  if (!status.empty()) m.fields[Field::kStatus].assign(status, {2, 0}, node_id(1));
  return m;
}

sync::Op op_of(OpKind kind, OpKind ref_kind = OpKind::kNone) {
  sync::Op op;
  op.kind = kind;
  op.ref_kind = ref_kind;
  op.member = MemberId{1};
  return op;
}

TEST(StatusRuleTest, BlockedAndClosedMembersMoveNoValueButGetRefundsWhileBlocked) {
  const MemberState active = member_with_status("active"), unset = member_with_status("");
  const MemberState blocked = member_with_status("blocked"), closed = member_with_status("closed");
  for (OpKind k : {OpKind::kEarn, OpKind::kRedeem, OpKind::kTopup, OpKind::kSpend, OpKind::kMove}) {
    SCOPED_TRACE(sync::kind_name(k));
    EXPECT_FALSE(sync::status_refusal(active, op_of(k)));
    EXPECT_FALSE(sync::status_refusal(unset, op_of(k)));
    EXPECT_EQ(sync::status_refusal(blocked, op_of(k))->code, "member_blocked");
    EXPECT_EQ(sync::status_refusal(closed, op_of(k))->code, "member_closed");
  }
  // Reversals, by what they do to the member.
  EXPECT_FALSE(sync::status_refusal(blocked, op_of(OpKind::kReverse, OpKind::kEarn)));
  EXPECT_FALSE(sync::status_refusal(closed, op_of(OpKind::kReverse, OpKind::kEarn)));
  EXPECT_EQ(sync::status_refusal(blocked, op_of(OpKind::kReverse, OpKind::kTopup))->code,
            "member_blocked");
  EXPECT_EQ(sync::status_refusal(closed, op_of(OpKind::kReverse, OpKind::kTopup))->code,
            "member_closed");
  for (OpKind refund : {OpKind::kSpend, OpKind::kRedeem}) {
    EXPECT_FALSE(sync::status_refusal(blocked, op_of(OpKind::kReverse, refund)));
    EXPECT_EQ(sync::status_refusal(closed, op_of(OpKind::kReverse, refund))->code, "member_closed");
  }
  for (OpKind other : {OpKind::kProfile, OpKind::kPinFailure}) {
    EXPECT_FALSE(sync::status_refusal(closed, op_of(other)));
  }
}

TEST(StatusRuleTest, ClosingNeedsAZeroWalletAndReopeningAnExplicitFlag) {
  MemberState m = member_with_status("active");
  ASSERT_TRUE(m.wallet.credit(node_id(1), 5).is_ok());
  const std::vector<sync::FieldValue> close = {{Field::kStatus, "closed"}};
  EXPECT_EQ(sync::profile_refusal(m, close, false)->code, "wallet_not_empty");
  ASSERT_TRUE(m.wallet.apply_debit(node_id(1), 5).is_ok());
  EXPECT_FALSE(sync::profile_refusal(m, close, false));
  const MemberState closed = member_with_status("closed");
  const std::vector<sync::FieldValue> reopen = {{Field::kStatus, "active"}};
  EXPECT_EQ(sync::profile_refusal(closed, reopen, false)->code, "member_closed");
  EXPECT_FALSE(sync::profile_refusal(closed, reopen, true));
  EXPECT_FALSE(sync::profile_refusal(closed, {{Field::kName, "New"}}, false))
      << "other fields stay editable";
}

TEST(PinLockRuleTest, FiveFailuresSinceTheResetMarkLockForTheWindowAfterTheNewest) {
  MemberState m = member_with_status("active");
  m.fields[Field::kPinHash].assign("hash", {1000, 0}, node_id(1));
  for (std::uint64_t t : {900, 950})
    m.pin_failures.add({t, 0}, node_id(2));  // before the PIN was set
  for (std::uint64_t t : {2000, 2100, 2200, 2300})
    m.pin_failures.add({t, 0}, node_id(t == 2200 ? 2 : 1));
  EXPECT_EQ(sync::pin_lock(m, 2400).failures, 4u);
  EXPECT_FALSE(sync::pin_lock(m, 2400).locked());
  m.pin_failures.add({2400, 0}, node_id(3));
  const sync::PinLock lock = sync::pin_lock(m, 2500);
  EXPECT_TRUE(lock.locked());
  EXPECT_EQ(lock.locked_until_ms, 2400 + limits::kPinLockoutMs);
  EXPECT_FALSE(sync::pin_lock(m, 2400 + limits::kPinLockoutMs).locked());
  // A right PIN after them (pin_reset) restarts the count.
  m.fields[Field::kPinReset].assign("x", {2450, 0}, node_id(1));
  EXPECT_EQ(sync::pin_lock(m, 2500).failures, 0u);
  EXPECT_FALSE(sync::pin_lock(m, 2500).locked());
}

// --- the ledger ---

class LedgerRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    hq_ = tmp_.file("hq");
    ASSERT_TRUE(node::hq_init(hq_, "hq-central", node::kHqValidDaysDefault, clock_).is_ok());
    a_ = open("store-a");
    b_ = open("store-b");
    ASSERT_TRUE(a_ && b_);
    // Both stores are enrolled in one chain; store-a was enrolled first, so it learns store-b's
    // key from HQ's newest roster, as sync would carry it.
    auto hq = Ledger::open(hq_, clock_);
    ASSERT_TRUE(hq.is_ok()) << hq.status().to_string();
    auto roster = (*hq)->store().latest_roster();
    ASSERT_TRUE(roster.is_ok() && roster->has_value());
    ASSERT_TRUE(a_->accept_roster((**roster).body, (**roster).sig).is_ok());
    node::EnrollRequest req{"enroll", "40000001", "Ann", "", ""};
    auto r = a_->enroll(req);
    ASSERT_TRUE(r.is_ok() && !r->refused);
    member_ = *sync::parse_id(body_of(*r)["member"].get<std::string>());
    ok(a_->topup("t0", member_, 1000, ""));
    ok(a_->earn("e0", member_, 5000, ""));
    exchange();
  }

  std::unique_ptr<Ledger> open(const std::string& name) {
    const std::string dir = tmp_.file(name);
    EXPECT_TRUE(Ledger::init(dir, {name, "store"}).is_ok());
    auto req = node::make_enroll_request(dir);
    EXPECT_TRUE(req.is_ok()) << req.status().to_string();
    if (!req.is_ok()) return nullptr;
    auto file = node::hq_enroll(hq_, name, sync::NodeRole::kStore, *req, 30, clock_);
    EXPECT_TRUE(file.is_ok()) << file.status().to_string();
    if (!file.is_ok()) return nullptr;
    EXPECT_TRUE(node::install_enrollment(dir, *file).is_ok());
    auto l = Ledger::open(dir, clock_);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    return l.is_ok() ? std::move(l).value() : nullptr;
  }
  // Each ledger ingests the ops of every origin the other holds beyond its own view.
  void exchange() {
    for (auto [from, to] : {std::pair{a_.get(), b_.get()}, {b_.get(), a_.get()}}) {
      auto vv = from->store().version_vector();
      ASSERT_TRUE(vv.is_ok());
      for (const auto& [origin, seq] : *vv) {
        const std::uint64_t held = to->store().head(origin)->seq;
        if (held >= seq) continue;
        auto ops = from->store().ops_of_origin(origin, held + 1, 1000);
        ASSERT_TRUE(ops.is_ok());
        auto r = to->ingest(*ops);
        ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      }
    }
  }
  static Json ok(const Result<Outcome>& r) {
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return Json();
    EXPECT_FALSE(r->refused) << body_of(*r).dump();
    return body_of(*r);
  }
  static std::string refusal(const Result<Outcome>& r) {
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return "(error)";
    EXPECT_TRUE(r->refused) << body_of(*r).dump();
    return body_of(*r).value("error", "");
  }
  static std::uint64_t seq_of(const Json& body) {
    sync::NodeId origin{};
    std::uint64_t seq = 0;
    EXPECT_TRUE(sync::parse_op_ref(body.value("op", ""), origin, seq));
    return seq;
  }
  std::string snapshot(Ledger& l) {
    return test::dump_sqlite(tmp_.file(l.node_name()) + "/" + node::kDbFile);
  }
  std::string pin_refusal(Ledger& l, const std::string& pin) {
    auto gate = l.check_pin(member_, OpKind::kSpend, &pin, clock_.now_ms());
    EXPECT_TRUE(gate.is_ok()) << gate.status().to_string();
    if (!gate.is_ok() || gate->kind == Ledger::PinGate::Kind::kPass) return "";
    return std::string(node::refusal_code(gate->refusal.reason));
  }

  test::TempDir tmp_{"outpost-member-rules"};
  std::string hq_;
  sync::ManualEnv clock_{kNowMs};
  std::unique_ptr<Ledger> a_, b_;
  MemberId member_{};
};

// Regression: reverse() answered a request_id of another operation with that operation's answer.
TEST_F(LedgerRulesTest, ReversalWithARequestIdOfAnotherOperationIsInvalidAndChangesNothing) {
  const Json topup = ok(a_->topup("t1", member_, 100, ""));
  const Json other = ok(a_->topup("t2", member_, 50, ""));
  ok(a_->reverse("rev-other", a_->node_id(), seq_of(other)));
  const std::string before = snapshot(*a_);
  for (const char* used : {"t1", "e0", "rev-other"}) {
    auto r = a_->reverse(used, a_->node_id(), seq_of(topup));
    ASSERT_FALSE(r.is_ok()) << used << ": " << (r.is_ok() ? body_of(*r).dump() : "");
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << used;
  }
  EXPECT_EQ(snapshot(*a_), before);
  auto again = a_->reverse("rev-other", a_->node_id(), seq_of(other));
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->replayed);
}

TEST_F(LedgerRulesTest, BlockedMemberMovesNoValueAndTheBlockHoldsWhereverItIsKnown) {
  ok(b_->update_profile("block", member_, {{Field::kStatus, "blocked"}}));
  exchange();
  for (Ledger* l : {a_.get(), b_.get()}) {
    SCOPED_TRACE(l->node_name());
    const std::string before = snapshot(*l);
    EXPECT_EQ(refusal(l->earn("x1", member_, 100, "")), "member_blocked");
    EXPECT_EQ(refusal(l->redeem("x2", member_, 1, "")), "member_blocked");
    EXPECT_EQ(refusal(l->topup("x3", member_, 1, "")), "member_blocked");
    EXPECT_EQ(refusal(l->spend("x4", member_, 1, "")), "member_blocked");
    EXPECT_EQ(snapshot(*l), before);
  }
  // The rights broker grants nothing for a blocked member, and the holder moves nothing.
  const std::string before = snapshot(*a_);
  auto granted = a_->grant_rights(b_->node_id(), member_, sync::Account::kWallet, 100);
  ASSERT_TRUE(granted.is_ok());
  EXPECT_EQ(*granted, 0u);
  EXPECT_EQ(refusal(a_->move_rights("m1", member_, sync::Account::kWallet, 1, b_->node_id())),
            "member_blocked");
  EXPECT_EQ(snapshot(*a_), before);
}

TEST_F(LedgerRulesTest, ClosedMemberNeedsAnEmptyWalletAndAnExplicitReopen) {
  auto r = a_->update_profile("close-1", member_, {{Field::kStatus, "closed"}});
  EXPECT_EQ(refusal(r), "wallet_not_empty");
  EXPECT_EQ(body_of(*r).value("balance", -1), 1000);
  const Json spend = ok(a_->spend("s1", member_, 1000, ""));
  ok(a_->update_profile("close-2", member_, {{Field::kStatus, "closed"}}));
  EXPECT_EQ(refusal(a_->reverse("refund", a_->node_id(), seq_of(spend))), "member_closed")
      << "no refund into a closed wallet";
  EXPECT_EQ(refusal(a_->update_profile("open-1", member_, {{Field::kStatus, "active"}})),
            "member_closed");
  ok(a_->update_profile("open-2", member_, {{Field::kStatus, "active"}}, true));
  ok(a_->topup("t9", member_, 5, ""));
}

// Regression: Ledger::spend (the CLI's path) took money from a PIN-protected wallet without a PIN.
TEST_F(LedgerRulesTest, SpendAndPinChangeOfAPinProtectedWalletNeedAClearance) {
  ok(a_->set_pin("pin", member_, "4711"));
  const std::string before = snapshot(*a_);
  EXPECT_EQ(refusal(a_->spend("s1", member_, 10, "")), "pin_wrong");
  EXPECT_EQ(refusal(a_->set_pin("pin-2", member_, "1234")), "pin_wrong");
  EXPECT_EQ(snapshot(*a_), before);

  const std::string right = "4711";
  auto gate = a_->check_pin(member_, OpKind::kSpend, &right, clock_.now_ms());
  ASSERT_TRUE(gate.is_ok() && gate->kind == Ledger::PinGate::Kind::kPass);
  ok(a_->spend("s2", member_, 10, "", &gate->clearance));
  const auto override = Ledger::pin_override(member_, "pin-override by operator: known");
  const Json over = ok(a_->spend("s3", member_, 10, "R-1", &override));
  auto stored = a_->store().get_op(a_->node_id(), seq_of(over));
  ASSERT_TRUE(stored.is_ok() && *stored);
  EXPECT_EQ((*stored)->op.receipt, "R-1 | pin-override by operator: known");
  ok(a_->set_pin("pin-3", member_, "1234", &override));
  EXPECT_EQ(pin_refusal(*a_, "4711"), "pin_wrong");
  EXPECT_EQ(pin_refusal(*a_, "1234"), "");
}

// Regression: PIN failures were counted per store, so every store allowed its own five guesses.
TEST_F(LedgerRulesTest, WrongPinsAtTwoLedgersAddUpAndLockBothOnceTheyExchangeOps) {
  ok(a_->set_pin("pin", member_, "4711"));
  exchange();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(pin_refusal(*a_, "0000"), "pin_wrong");
  for (int i = 0; i < 2; ++i) EXPECT_EQ(pin_refusal(*b_, "9999"), "pin_wrong");
  exchange();
  for (Ledger* l : {a_.get(), b_.get()}) {
    SCOPED_TRACE(l->node_name());
    EXPECT_EQ(node::schema::json_of(l->member_view(member_), node::schema::member_json)
                  ->value("pin_failures", 0),
              5);
    EXPECT_EQ(pin_refusal(*l, "4711"), "pin_locked") << "the right PIN too";
    auto verify = l->verify_log();
    ASSERT_TRUE(verify.is_ok());
    EXPECT_TRUE(verify->ok()) << (verify->findings.empty() ? "" : verify->findings.front());
  }
  clock_.advance(limits::kPinLockoutMs);
  EXPECT_EQ(pin_refusal(*b_, "4711"), "") << "the lock ends kPinLockoutMs after the newest failure";
  exchange();
  EXPECT_EQ(node::schema::json_of(a_->member_view(member_), node::schema::member_json)
                ->value("pin_failures", 9),
            0)
      << "the right PIN restarts the count chain-wide";
}

// Item 18 of issue 11: the move guard at its boundary is a refusal, never the runtime check.
TEST_F(LedgerRulesTest, MoveOfExactlyTheRightsHeldSucceedsAndOneMoreIsRefused) {
  const std::string before = snapshot(*a_);
  EXPECT_EQ(refusal(a_->move_rights("m0", member_, sync::Account::kWallet, 1001, b_->node_id())),
            "insufficient_rights");
  EXPECT_EQ(snapshot(*a_), before);
  ok(a_->move_rights("m1", member_, sync::Account::kWallet, 1000, b_->node_id()));
  EXPECT_EQ(node::schema::json_of(a_->member_view(member_), node::schema::member_json)
                .value()["wallet"]
                .value("rights_here", -1),
            0);
  EXPECT_EQ(refusal(a_->move_rights("m2", member_, sync::Account::kWallet, 1, b_->node_id())),
            "insufficient_rights");
  ok(a_->topup("t1", member_, 30, ""));
  auto granted = a_->grant_rights(b_->node_id(), member_, sync::Account::kWallet, 31);
  ASSERT_TRUE(granted.is_ok());
  EXPECT_EQ(*granted, 30u) << "a grant gives at most what is held";
  EXPECT_EQ(node::schema::json_of(a_->member_view(member_), node::schema::member_json)
                .value()["wallet"]
                .value("rights_here", -1),
            0);
  exchange();
  EXPECT_EQ(node::schema::json_of(b_->member_view(member_), node::schema::member_json)
                .value()["wallet"]
                .value("rights_here", -1),
            1030);
}

// Item 19 of issue 11: another origin's op is refused as not_origin (a 409), not a generic 400.
TEST_F(LedgerRulesTest, ReversalOfAnotherOriginsOpIsRefusedNotOriginAndChangesNothing) {
  const std::string before = snapshot(*b_);
  auto r = b_->reverse("rev", a_->node_id(), 2);  // a's top-up, held by b
  EXPECT_EQ(refusal(r), "not_origin");
  EXPECT_EQ(snapshot(*b_), before);
}

}  // namespace
}  // namespace outpost
