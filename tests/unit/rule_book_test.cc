// The rule book (sync/rule_book.h) on its own, with exact outcomes: each verdict of the log rule
// and the order its checks run in (a gap or a duplicate is judged before the signature is looked
// at; evidence of equivocation only ever after it verifies), then, per op kind, a refusal and an
// application to member state, and the per-kind facts that signing, replay and audit read.
#include "outpost/sync/rule_book.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/sync/member_rules.h"
#include "outpost/sync/replica.h"

namespace outpost::sync {
namespace {

constexpr std::uint64_t kFeb2024Ms = 1706745600000ULL;  // 2024-02-01T00:00:00Z

NodeId id_of(std::uint8_t b) {
  NodeId id{};
  id.fill(b);
  return id;
}

const NodeId kStore = id_of(0x51);
const NodeId kOther = id_of(0x52);
const MemberId kMember = id_of(0xAA);

// --- the log rule --------------------------------------------------------------------------------

// One origin's log of signed ops, and a node's view of it.
class LogRuleTest : public ::testing::Test {
 protected:
  LogRuleTest() : key_(crypto::SigningKey::generate()) {
    for (std::uint64_t seq = 1; seq <= 3; ++seq) log_.push_back(make(seq, 100 * seq));
  }

  // The op of `seq` chained onto the log so far (or onto `prev`), topping up `amount`.
  SignedOp make(std::uint64_t seq, std::uint64_t amount, std::optional<Hash32> prev = {}) const {
    Op op;
    op.kind = OpKind::kTopup;
    op.origin = kStore;
    op.seq = seq;
    op.prev = prev ? *prev : (seq == 1 ? Hash32{} : log_[seq - 2].hash);
    op.hlc = Hlc{kFeb2024Ms + seq, 0};
    op.member = kMember;
    op.account = Account::kWallet;
    op.amount = amount;
    return sign_op(op, key_);
  }
  LogHead head() const { return LogHead{log_.size(), log_.back().hash}; }
  OriginTrust trust() const { return OriginTrust{key_.public_key(), std::nullopt}; }
  HeldHash held() const {
    return [this](std::uint64_t seq) -> std::optional<Hash32> { return log_.at(seq - 1).hash; };
  }

  crypto::SigningKey key_;
  std::vector<SignedOp> log_;
};

TEST_F(LogRuleTest, NextOpChainedToTheHeadIsApplied) {
  const LogRuling r = judge_op(head(), trust(), make(4, 7), held());
  EXPECT_EQ(r.verdict, LogVerdict::kApply);
  EXPECT_FALSE(r.at_held_seq);
  EXPECT_TRUE(r.signature.is_ok());
  EXPECT_STREQ(log_verdict_name(r.verdict), "apply");
}

TEST_F(LogRuleTest, FirstOpOfAnEmptyLogIsApplied) {
  log_.resize(1);
  EXPECT_EQ(judge_op(LogHead{}, trust(), log_[0], nullptr).verdict, LogVerdict::kApply);
}

TEST_F(LogRuleTest, HeldOpAgainIsADuplicateWithoutCheckingItsSignature) {
  int checks = 0;
  const SignatureCheck never = [&](const crypto::PublicKey&) {
    ++checks;
    return Status::corruption("must not be asked");
  };
  const LogRuling r = judge_op(head(), trust(), log_[1].op, log_[1].hash, held(), never);
  EXPECT_EQ(r.verdict, LogVerdict::kDuplicate);
  EXPECT_TRUE(r.at_held_seq);
  EXPECT_EQ(checks, 0);
}

TEST_F(LogRuleTest, SeqBeyondTheNextIsAGapRefusedBeforeTheSignatureIsChecked) {
  int checks = 0;
  const SignatureCheck count = [&](const crypto::PublicKey&) {
    ++checks;
    return Status::ok();
  };
  const SignedOp far = make(5, 7, Hash32{});
  EXPECT_EQ(judge_op(head(), trust(), far.op, far.hash, held(), count).verdict, LogVerdict::kGap);
  EXPECT_EQ(checks, 0);
}

TEST_F(LogRuleTest, OriginWithoutKeyIsUnknown) {
  EXPECT_EQ(judge_op(head(), OriginTrust{}, make(4, 7), held()).verdict,
            LogVerdict::kUnknownOrigin);
}

TEST_F(LogRuleTest, FlippedSignatureByteIsABadSignatureWithTheCheckersReason) {
  SignedOp op = make(4, 7);
  op.sig[10] ^= 0x40;
  const LogRuling r = judge_op(head(), trust(), op, held());
  EXPECT_EQ(r.verdict, LogVerdict::kBadSignature);
  EXPECT_NE(r.signature.message().find("bad signature"), std::string::npos)
      << r.signature.to_string();
}

TEST_F(LogRuleTest, OpSignedByAnotherKeyIsABadSignature) {
  const crypto::SigningKey stranger = crypto::SigningKey::generate();
  const SignedOp forged = sign_op(make(4, 7).op, stranger);
  EXPECT_EQ(judge_op(head(), trust(), forged, held()).verdict, LogVerdict::kBadSignature);
}

TEST_F(LogRuleTest, OpAfterTheRevocationCutOffIsRevoked) {
  OriginTrust t = trust();
  t.cutoff = 3;
  EXPECT_EQ(judge_op(head(), t, make(4, 7), held()).verdict, LogVerdict::kRevoked);
  t.cutoff = 4;  // the cut-off seq itself stays valid
  EXPECT_EQ(judge_op(head(), t, make(4, 7), held()).verdict, LogVerdict::kApply);
}

TEST_F(LogRuleTest, SecondValidOpAtAHeldSeqIsEquivocationEvidence) {
  const SignedOp other = make(2, 999, log_[0].hash);  // seq 2 again, another amount
  const LogRuling r = judge_op(head(), trust(), other, held());
  EXPECT_EQ(r.verdict, LogVerdict::kEquivocation);
  EXPECT_TRUE(r.at_held_seq);
  EXPECT_TRUE(is_equivocation_evidence(r.verdict));
}

TEST_F(LogRuleTest, ConflictingOpWithABadSignatureIsNeverEvidence) {
  SignedOp other = make(2, 999, log_[0].hash);
  other.sig[0] ^= 0x01;
  const LogRuling r = judge_op(head(), trust(), other, held());
  EXPECT_EQ(r.verdict, LogVerdict::kBadSignature);
  EXPECT_TRUE(r.at_held_seq);
  EXPECT_FALSE(is_equivocation_evidence(r.verdict));
  // Nor from an origin the node cannot authenticate.
  EXPECT_EQ(judge_op(head(), OriginTrust{}, make(2, 999, log_[0].hash), held()).verdict,
            LogVerdict::kUnknownOrigin);
}

TEST_F(LogRuleTest, ValidSuccessorOfAnotherOpIsAFork) {
  const SignedOp forked = make(4, 7, log_[1].hash);  // names seq 2's hash, not seq 3's
  const LogRuling r = judge_op(head(), trust(), forked, held());
  EXPECT_EQ(r.verdict, LogVerdict::kFork);
  EXPECT_TRUE(is_equivocation_evidence(r.verdict));
}

TEST_F(LogRuleTest, SeqZeroAndAGenesisWithAPrevAreMalformed) {
  Op zero = make(1, 7).op;
  zero.seq = 0;
  const SignatureCheck ok = [](const crypto::PublicKey&) { return Status::ok(); };
  EXPECT_EQ(judge_op(LogHead{}, trust(), zero, Hash32{}, nullptr, ok).verdict,
            LogVerdict::kMalformed);
  Op genesis = make(1, 7).op;
  genesis.prev = log_[2].hash;
  EXPECT_EQ(judge_op(LogHead{}, trust(), genesis, Hash32{}, nullptr, ok).verdict,
            LogVerdict::kMalformed);
}

TEST_F(LogRuleTest, SignatureIsJudgedBeforeTheCutOffAndTheCutOffBeforeTheChain) {
  OriginTrust t = trust();
  t.cutoff = 3;
  SignedOp bad = make(4, 7, log_[0].hash);  // revoked and forked...
  EXPECT_EQ(judge_op(head(), t, bad, held()).verdict, LogVerdict::kRevoked);
  bad.sig[5] ^= 0x02;  // ...and badly signed
  EXPECT_EQ(judge_op(head(), t, bad, held()).verdict, LogVerdict::kBadSignature);
}

TEST(SeqPlaceTest, HeldNextAndBeyond) {
  EXPECT_EQ(seq_place(0, 1), SeqPlace::kNext);
  EXPECT_EQ(seq_place(0, 2), SeqPlace::kBeyond);
  EXPECT_EQ(seq_place(5, 5), SeqPlace::kHeld);
  EXPECT_EQ(seq_place(5, 1), SeqPlace::kHeld);
  EXPECT_EQ(seq_place(5, 6), SeqPlace::kNext);
  EXPECT_EQ(seq_place(5, 7), SeqPlace::kBeyond);
}

// --- per op kind
// -----------------------------------------------------------------------------------

Op op_of(OpKind kind, Account account, std::uint64_t amount, const NodeId& origin = kStore) {
  Op op;
  op.kind = kind;
  op.origin = origin;
  op.seq = 1;
  op.hlc = Hlc{kFeb2024Ms, 0};
  op.member = kMember;
  op.account = account;
  op.amount = amount;
  return op;
}

Op field_op(OpKind kind, Field field, const std::string& value) {
  Op op = op_of(kind, Account::kNone, 0);
  op.fields = {{field, value}};
  return op;
}

Op earn_op(std::uint64_t purchase_minor, std::uint64_t points, const NodeId& origin = kStore) {
  Op op = op_of(OpKind::kEarn, Account::kPoints, points, origin);
  op.spend_minor = purchase_minor;
  return op;
}

Op reverse_op(const Op& target) {
  Op op = reversal_of(target);
  op.origin = target.origin;
  op.seq = target.seq + 1;
  op.hlc = Hlc{kFeb2024Ms + 1, 0};
  return op;
}

MemberState with_status(const std::string& status) {
  MemberState m;
  EXPECT_TRUE(apply_effects(m, field_op(OpKind::kEnroll, Field::kStatus, status)).is_ok());
  return m;
}

// A member whose wallet holds 100 at kStore and 50 at kOther, and whose points hold 30 at kStore.
MemberState funded() {
  MemberState m;
  EXPECT_TRUE(apply_effects(m, op_of(OpKind::kTopup, Account::kWallet, 100)).is_ok());
  EXPECT_TRUE(apply_effects(m, op_of(OpKind::kTopup, Account::kWallet, 50, kOther)).is_ok());
  EXPECT_TRUE(apply_effects(m, earn_op(3'000, 30)).is_ok());
  return m;
}

TEST(OpRulesTest, EnrollAssignsItsFieldsAndNoMemberStateRefusesIt) {
  MemberState m;
  Op enroll = field_op(OpKind::kEnroll, Field::kCard, "40001234");
  enroll.fields.push_back({Field::kStatus, "active"});
  ASSERT_TRUE(apply_effects(m, enroll).is_ok());
  EXPECT_EQ(m.field(Field::kCard), "40001234");
  EXPECT_EQ(m.field(Field::kStatus), "active");
  EXPECT_EQ(m.fields.at(Field::kCard).origin(), kStore);
  // A closed member's card can be enrolled again elsewhere: the status rule does not apply.
  EXPECT_FALSE(status_refusal(with_status("closed"), enroll));
  EXPECT_FALSE(rights_refusal(m, enroll, kStore));
}

TEST(OpRulesTest, ProfileUpdateIsLastWriterWinsAndClosingNeedsAnEmptyWallet) {
  MemberState m = funded();
  ASSERT_TRUE(apply_effects(m, field_op(OpKind::kProfile, Field::kName, "Ann")).is_ok());
  Op older = field_op(OpKind::kProfile, Field::kName, "Old");
  older.hlc = Hlc{kFeb2024Ms - 1, 0};
  ASSERT_TRUE(apply_effects(m, older).is_ok());
  EXPECT_EQ(m.field(Field::kName), "Ann");
  auto no = profile_refusal(m, {{Field::kStatus, "closed"}}, false);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->code, "wallet_not_empty");
  EXPECT_EQ(no->message, "the wallet holds 150; refund it to zero before closing the account");
  EXPECT_FALSE(
      status_refusal(with_status("blocked"), field_op(OpKind::kProfile, Field::kName, "B")));
}

TEST(OpRulesTest, EarnCreditsPointsSpendAndAVisitAtItsOriginAndIsRefusedWhenBlocked) {
  MemberState m;
  ASSERT_TRUE(apply_effects(m, earn_op(12'345, 123)).is_ok());
  EXPECT_EQ(m.points.value(), 123);
  EXPECT_EQ(m.points.rights(kStore), 123);
  EXPECT_EQ(m.spend.total(), 12'345u);
  EXPECT_EQ(m.visits.total(), 1u);
  EXPECT_EQ(value_change(earn_op(12'345, 123)), 123);
  auto no = status_refusal(with_status("blocked"), earn_op(100, 1));
  ASSERT_TRUE(no);
  EXPECT_EQ(no->code, "member_blocked");
  EXPECT_EQ(no->message, "member " + id_hex(kMember) +
                             " is blocked: no earn until the member is set active again");
  EXPECT_FALSE(no->rights);
}

TEST(OpRulesTest, EarnPointsFollowTheTierTheRollingSpendReaches) {
  const ProgramRules rules = default_rules();  // member 1, silver (50'000) 2, gold 3 per unit
  const std::uint32_t month = month_index(kFeb2024Ms);
  EXPECT_EQ(points_for_purchase(nullptr, rules, month, 12'345), 123u);
  MemberState m;
  ASSERT_TRUE(apply_effects(m, earn_op(60'000, 600)).is_ok());
  EXPECT_EQ(points_for_purchase(&m, rules, month, 12'345), 246u);  // silver now
}

TEST(OpRulesTest, RedeemDebitsPointsAtItsOriginAndIsRefusedBeyondTheRightsHere) {
  MemberState m = funded();
  const Op redeem = op_of(OpKind::kRedeem, Account::kPoints, 31);
  auto no = rights_refusal(m, redeem, kStore);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->code, "insufficient_rights");
  EXPECT_EQ(no->message, "redeem of 31 points refused: balance 30, rights here 30, shortfall 1");
  ASSERT_TRUE(no->rights);
  EXPECT_EQ(no->rights->account, Account::kPoints);
  EXPECT_EQ(no->rights->requested, 31u);
  EXPECT_EQ(no->rights->here, 30u);
  EXPECT_EQ(no->rights->shortfall, 1u);
  EXPECT_TRUE(no->rights->elsewhere.empty());
  EXPECT_FALSE(rights_refusal(m, op_of(OpKind::kRedeem, Account::kPoints, 30), kStore));
  ASSERT_TRUE(apply_effects(m, op_of(OpKind::kRedeem, Account::kPoints, 30)).is_ok());
  EXPECT_EQ(m.points.value(), 0);
  EXPECT_EQ(m.points.rights(kStore), 0);
  EXPECT_EQ(value_change(redeem), -31);
}

TEST(OpRulesTest, TopupCreditsTheWalletAtItsOriginAndIsRefusedWhenClosed) {
  MemberState m;
  ASSERT_TRUE(apply_effects(m, op_of(OpKind::kTopup, Account::kWallet, 250)).is_ok());
  EXPECT_EQ(m.wallet.value(), 250);
  EXPECT_EQ(m.wallet.rights(kStore), 250);
  EXPECT_FALSE(rights_refusal(m, op_of(OpKind::kTopup, Account::kWallet, 1'000), kStore));
  auto no = status_refusal(with_status("closed"), op_of(OpKind::kTopup, Account::kWallet, 1));
  ASSERT_TRUE(no);
  EXPECT_EQ(no->code, "member_closed");
  EXPECT_EQ(no->message, "member " + id_hex(kMember) + " is closed: no topup on a closed account");
}

TEST(OpRulesTest, SpendRefusalSaysWhereTheRestOfTheWalletSits) {
  MemberState m = funded();
  auto no = rights_refusal(m, op_of(OpKind::kSpend, Account::kWallet, 120), kStore);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->message, "spend of 120 wallet refused: balance 150, rights here 100, shortfall 20");
  ASSERT_TRUE(no->rights);
  EXPECT_EQ(no->rights->balance, 150);
  EXPECT_EQ(no->rights->elsewhere, (std::map<NodeId, std::int64_t>{{kOther, 50}}));
  ASSERT_TRUE(apply_effects(m, op_of(OpKind::kSpend, Account::kWallet, 100)).is_ok());
  EXPECT_EQ(m.wallet.value(), 50);
  EXPECT_EQ(m.wallet.rights(kStore), 0);
  EXPECT_EQ(m.wallet.rights(kOther), 50);
}

TEST(OpRulesTest, MoveHandsRightsToItsTargetAndIsRefusedBeyondTheRightsHere) {
  MemberState m = funded();
  Op move = op_of(OpKind::kMove, Account::kWallet, 101);
  move.target = kOther;
  auto no = rights_refusal(m, move, kStore);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->message, "move of 101 refused: rights here 100");
  move.amount = 40;
  EXPECT_FALSE(rights_refusal(m, move, kStore));
  ASSERT_TRUE(apply_effects(m, move).is_ok());
  EXPECT_EQ(m.wallet.value(), 150) << "a move changes where value sits, not how much there is";
  EXPECT_EQ(m.wallet.rights(kStore), 60);
  EXPECT_EQ(m.wallet.rights(kOther), 90);
  EXPECT_EQ(value_change(move), 0);
  auto blocked = status_refusal(with_status("blocked"), move);
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->code, "member_blocked");
}

TEST(OpRulesTest, ReversalUndoesEachReversibleKindExactly) {
  MemberState m;
  const Op earn = earn_op(12'345, 123);
  ASSERT_TRUE(apply_effects(m, earn).is_ok());
  ASSERT_TRUE(apply_effects(m, reverse_op(earn)).is_ok());
  EXPECT_EQ(m.points.value(), 0);
  EXPECT_EQ(m.spend_reversed.total(), 12'345u);
  EXPECT_EQ(m.rolling_spend(month_index(kFeb2024Ms), 12), 0u);
  const Op topup = op_of(OpKind::kTopup, Account::kWallet, 80);
  const Op spend = op_of(OpKind::kSpend, Account::kWallet, 30);
  for (const Op& op : {topup, spend}) ASSERT_TRUE(apply_effects(m, op).is_ok());
  ASSERT_TRUE(apply_effects(m, reverse_op(spend)).is_ok());
  EXPECT_EQ(m.wallet.value(), 80);
  ASSERT_TRUE(apply_effects(m, reverse_op(topup)).is_ok());
  EXPECT_EQ(m.wallet.value(), 0);
  EXPECT_EQ(value_change(reverse_op(earn)), -123);
  EXPECT_EQ(value_change(reverse_op(spend)), 30);
}

TEST(OpRulesTest, ReversalOfACreditIsRefusedOnceTheRightsAreSpent) {
  MemberState m = funded();
  ASSERT_TRUE(apply_effects(m, op_of(OpKind::kSpend, Account::kWallet, 90)).is_ok());
  Op topup = op_of(OpKind::kTopup, Account::kWallet, 100);
  topup.seq = 7;
  auto no = rights_refusal(m, reverse_op(topup), kStore);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->code, "insufficient_rights");
  EXPECT_EQ(no->message, "reversal of " + op_ref_string(kStore, 7) +
                             " needs 100 rights here, only 10 are left (already spent)");
  // Undoing a debit is a refund: no rights needed, and allowed for a blocked member.
  const Op spend = op_of(OpKind::kSpend, Account::kWallet, 90);
  EXPECT_FALSE(rights_refusal(m, reverse_op(spend), kStore));
  EXPECT_FALSE(status_refusal(with_status("blocked"), reverse_op(spend)));
  auto paid_out = status_refusal(with_status("blocked"), reverse_op(topup));
  ASSERT_TRUE(paid_out);
  EXPECT_EQ(paid_out->message, "member " + id_hex(kMember) +
                                   " is blocked: no reverse of a topup until the member is set "
                                   "active again");
}

TEST(OpRulesTest, PinFailureIsRecordedChainWideAndNeverRefused) {
  MemberState m = with_status("closed");
  Op failure = op_of(OpKind::kPinFailure, Account::kNone, 0);
  EXPECT_FALSE(status_refusal(m, failure));
  EXPECT_FALSE(rights_refusal(m, failure, kStore));
  ASSERT_TRUE(apply_effects(m, failure).is_ok());
  ASSERT_EQ(m.pin_failures.events().size(), 1u);
  EXPECT_EQ(m.pin_failures.events()[0].origin, kStore);
  EXPECT_EQ(m.pin_failures.events()[0].hlc, (Hlc{kFeb2024Ms, 0}));
}

TEST(OpRulesTest, EveryKindHasAnEffectAndExactlyTheDebitsLowerRights) {
  for (std::uint8_t k = 1; k <= kOpKindMax; ++k) {
    const auto kind = static_cast<OpKind>(k);
    Op op = op_of(kind, Account::kWallet, 1);
    if (kind == OpKind::kReverse) op = reverse_op(op_of(OpKind::kTopup, Account::kWallet, 1));
    MemberState m = funded();
    Status st = apply_effects(m, op);
    EXPECT_TRUE(st.is_ok()) << kind_name(kind) << ": " << st.to_string();
    const bool lowers = kind == OpKind::kRedeem || kind == OpKind::kSpend ||
                        kind == OpKind::kMove || kind == OpKind::kReverse;
    EXPECT_EQ(lowers_rights(op), lowers) << kind_name(kind);
  }
  Op none = op_of(OpKind::kNone, Account::kNone, 0);
  MemberState m;
  EXPECT_EQ(apply_effects(m, none).code(), Code::kCorruption);
}

TEST(OpRulesTest, ReversalMatchNamesTheWrongKindAndAnInexactUndo) {
  const Op topup = op_of(OpKind::kTopup, Account::kWallet, 80);
  EXPECT_TRUE(is_reversible(OpKind::kTopup));
  EXPECT_FALSE(is_reversible(OpKind::kMove));
  EXPECT_FALSE(is_reversible(OpKind::kReverse));
  Op rev = reverse_op(topup);
  EXPECT_EQ(rev.ref_kind, OpKind::kTopup);
  EXPECT_EQ(rev.ref_seq, topup.seq);
  EXPECT_EQ(match_reversal(rev, topup), ReversalMatch::kExact);
  rev.amount = 79;
  EXPECT_EQ(match_reversal(rev, topup), ReversalMatch::kNotExact);
  rev = reverse_op(topup);
  rev.ref_kind = OpKind::kSpend;
  EXPECT_EQ(match_reversal(rev, topup), ReversalMatch::kWrongKind);
}

TEST(OpRulesTest, SameRequestComparesWhatEachKindIsAbout) {
  const Op earn = earn_op(500, 5);
  Op again = earn_op(500, 6);  // points follow the tier: not part of the request
  EXPECT_TRUE(same_request(earn, again));
  again.spend_minor = 501;
  EXPECT_FALSE(same_request(earn, again));
  const Op spend = op_of(OpKind::kSpend, Account::kWallet, 10);
  EXPECT_FALSE(same_request(spend, op_of(OpKind::kSpend, Account::kWallet, 11)));
  EXPECT_FALSE(same_request(spend, op_of(OpKind::kTopup, Account::kWallet, 10)));
  Op enroll_a = field_op(OpKind::kEnroll, Field::kCard, "1");
  Op enroll_b = field_op(OpKind::kEnroll, Field::kCard, "2");
  enroll_b.member = id_of(0xBB);
  EXPECT_TRUE(same_request(enroll_a, enroll_b)) << "an enrollment makes its member id";
  Op rev_a = reverse_op(spend), rev_b = reverse_op(spend);
  rev_b.amount = 1;
  EXPECT_TRUE(same_request(rev_a, rev_b)) << "a reversal is named by the op it reverses";
  rev_b.ref_seq = 9;
  EXPECT_FALSE(same_request(rev_a, rev_b));
}

}  // namespace
}  // namespace outpost::sync
