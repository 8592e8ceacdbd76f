// node/: the state machine of one spend or redeem (outpost/node/debit_flow.h), driven with
// outcomes directly, and the API bodies of outpost/node/schema.h (their exact wire form and
// their round trip). The Api driving the machine over a real worker is in api_pin_test.cc.
#include "outpost/node/debit_flow.h"

#include <gtest/gtest.h>

#include "outpost/node/api.h"
#include "outpost/node/schema.h"

namespace outpost::node {
namespace {

using Do = DebitFlow::Step::Do;
using State = DebitFlow::State;

const sync::MemberId kMember = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const sync::NodeId kHq = {0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

Ledger::PinGate gate(Ledger::PinGate::Kind kind, const std::string& hash = "") {
  Ledger::PinGate g;
  g.kind = kind;
  g.hash = hash;
  if (kind == Ledger::PinGate::Kind::kRefuse)
    g.refusal = {RefusalReason::kPinWrong, "wrong PIN (4 tries left)", {}, {}, {}};
  return g;
}

Outcome short_of_rights(std::uint64_t shortfall) {
  Refusal r{RefusalReason::kInsufficientRights,
            "not enough wallet rights here (shortfall " + std::to_string(shortfall) + ")",
            RightsShortfall{kMember,
                            sync::Account::kWallet,
                            1000,
                            700,
                            1000 - shortfall,
                            shortfall,
                            {{kHq, 300}},
                            false},
            {},
            {}};
  return Outcome::refuse(std::move(r));
}

Outcome made(std::uint64_t seq) {
  Done d;
  d.origin = kHq;
  d.seq = seq;
  d.kind = sync::OpKind::kSpend;
  d.member = kMember;
  d.amount = 1000;
  d.points = AccountView{0, 0, {}};
  d.wallet = AccountView{300, 0, {{kHq, 300}}};
  d.hash.fill(0xab);
  return Outcome::made(std::move(d));
}

TEST(DebitFlowTest, WrongPinIsAnswered403WithoutReachingTheDebit) {
  DebitFlow flow(/*spend=*/true, /*has_broker=*/true);
  EXPECT_EQ(flow.start().what, Do::kRunOnWorker);
  auto check = flow.on_gate(gate(Ledger::PinGate::Kind::kVerify, "hash-1"));
  ASSERT_TRUE(check);
  EXPECT_EQ(check->what, Do::kCheckPin);
  EXPECT_EQ(check->pin_hash, "hash-1");
  EXPECT_EQ(flow.state(), State::kCheckPin);

  EXPECT_EQ(flow.on_pin_checked(false).what, Do::kRunOnWorker);
  ASSERT_TRUE(flow.verdict());
  EXPECT_EQ(flow.verdict()->hash, "hash-1");
  EXPECT_FALSE(flow.verdict()->match);

  // The gate, given the verdict, refuses: the answer, and no step toward the debit.
  auto answer = flow.on_gate(gate(Ledger::PinGate::Kind::kRefuse));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->what, Do::kAnswer);
  EXPECT_FALSE(answer->alert);
  EXPECT_EQ(flow.state(), State::kAnswered);
  EXPECT_EQ(outcome_response(answer->answer).status, 403);
}

TEST(DebitFlowTest, PassedGateGoesOnToTheDebitInTheSamePass) {
  DebitFlow flow(true, false);
  flow.start();
  EXPECT_FALSE(flow.on_gate(gate(Ledger::PinGate::Kind::kPass)));
  EXPECT_EQ(flow.state(), State::kWorker);
  DebitFlow::Step s = flow.on_debit(made(7));
  EXPECT_EQ(s.what, Do::kAnswer);
  EXPECT_FALSE(s.alert);
  EXPECT_EQ(outcome_response(s.answer).status, 200);
}

TEST(DebitFlowTest, RefusedForRightsAsksTheBrokerOnceAndTheSecondDebitSucceeds) {
  DebitFlow flow(false, true);  // a redeem: no PIN gate
  flow.start();
  DebitFlow::Step ask = flow.on_debit(short_of_rights(300));
  ASSERT_EQ(ask.what, Do::kAskBroker);
  EXPECT_EQ(ask.shortfall.shortfall, 300u);
  EXPECT_EQ(ask.shortfall.member, kMember);
  EXPECT_EQ(ask.shortfall.elsewhere.at(kHq), 300);
  EXPECT_EQ(flow.state(), State::kAskBroker);

  EXPECT_EQ(flow.on_broker(true, true).what, Do::kRunOnWorker);
  DebitFlow::Step done = flow.on_debit(made(8));
  EXPECT_EQ(done.what, Do::kAnswer);
  EXPECT_FALSE(done.alert);
  EXPECT_FALSE(done.answer.refused);
  EXPECT_TRUE(flow.broker_asked());
}

TEST(DebitFlowTest, SecondRefusalAfterAGrantIsFinalWithRightsRequestTriedAndAnAlert) {
  DebitFlow flow(false, true);
  flow.start();
  ASSERT_EQ(flow.on_debit(short_of_rights(300)).what, Do::kAskBroker);
  ASSERT_EQ(flow.on_broker(true, true).what, Do::kRunOnWorker);
  DebitFlow::Step final_answer = flow.on_debit(short_of_rights(100));
  ASSERT_EQ(final_answer.what, Do::kAnswer) << "the broker is asked once per request";
  EXPECT_TRUE(final_answer.alert);
  ASSERT_TRUE(final_answer.answer.refusal.rights);
  EXPECT_TRUE(final_answer.answer.refusal.rights->request_tried);
  EXPECT_EQ(outcome_response(final_answer.answer).status, 409);
}

TEST(DebitFlowTest, BrokerNotGrantedAnswers409WithWhetherItTriedAndAnAlert) {
  for (bool tried : {true, false}) {
    DebitFlow flow(true, true);
    flow.start();
    ASSERT_FALSE(flow.on_gate(gate(Ledger::PinGate::Kind::kPass)));
    ASSERT_EQ(flow.on_debit(short_of_rights(300)).what, Do::kAskBroker);
    DebitFlow::Step s = flow.on_broker(tried, false);
    ASSERT_EQ(s.what, Do::kAnswer);
    EXPECT_TRUE(s.alert);
    EXPECT_EQ(flow.state(), State::kAnswered);
    HttpResponse r = outcome_response(s.answer);
    EXPECT_EQ(r.status, 409);
    EXPECT_EQ(schema::Json::parse(r.body)["rights_request_tried"], tried) << r.body;
  }
}

TEST(DebitFlowTest, WithoutABrokerTheRefusalForRightsIsFinalAtOnce) {
  DebitFlow flow(false, false);
  flow.start();
  DebitFlow::Step s = flow.on_debit(short_of_rights(300));
  ASSERT_EQ(s.what, Do::kAnswer);
  EXPECT_TRUE(s.alert);
  EXPECT_FALSE(s.answer.refusal.rights->request_tried);
  EXPECT_FALSE(flow.broker_asked());
}

TEST(DebitFlowTest, OtherRefusalsAreAnsweredWithoutBrokerOrAlert) {
  DebitFlow flow(false, true);
  flow.start();
  DebitFlow::Step s =
      flow.on_debit(Outcome::refuse(RefusalReason::kMemberBlocked, "member is blocked"));
  EXPECT_EQ(s.what, Do::kAnswer);
  EXPECT_FALSE(s.alert);
  EXPECT_EQ(outcome_response(s.answer).status, 409);
}

TEST(DebitFlowTest, PinThatKeepsChangingEndsTheAttemptAfterTheBound) {
  DebitFlow flow(true, false);
  flow.start();
  int checks = 0;
  for (; checks < 100; ++checks) {
    auto s = flow.on_gate(gate(Ledger::PinGate::Kind::kVerify, "hash-" + std::to_string(checks)));
    ASSERT_TRUE(s);
    if (s->what == Do::kPinKeptChanging) break;
    ASSERT_EQ(s->what, Do::kCheckPin);
    ASSERT_EQ(flow.on_pin_checked(true).what, Do::kRunOnWorker);
  }
  EXPECT_EQ(checks, static_cast<int>(limits::kPinCheckAttemptsMax));
  EXPECT_EQ(flow.state(), State::kAnswered);
}

// --- schema.h ---

TEST(SchemaTest, RefusalBodiesHaveTheFieldsAndOrderOfDocsApi) {
  const std::string hq = sync::id_hex(kHq);
  const std::string member = sync::id_hex(kMember);
  HttpResponse r = outcome_response(short_of_rights(300));
  EXPECT_EQ(r.status, 409);
  const std::string expected =
      R"x({"error":"insufficient_rights","message":"not enough wallet rights here (shortfall 300)","member":")x" +
      member +
      R"x(","account":"wallet","requested":1000,"balance":700,"rights_here":700,"shortfall":300,)x" +
      R"x("rights_elsewhere":{")x" + hq + R"x(":300},"rights_request_tried":false})x";
  EXPECT_EQ(r.body, expected);

  Refusal locked{RefusalReason::kPinLocked, "locked", {}, {}, 1234};
  r = outcome_response(Outcome::refuse(locked));
  EXPECT_EQ(r.status, 423);
  const std::string expected_locked =
      R"x({"error":"pin_locked","message":"locked","locked_until_ms":1234})x";
  EXPECT_EQ(r.body, expected_locked);

  Refusal not_empty{RefusalReason::kWalletNotEmpty, "wallet holds 5", {}, 5, {}};
  const std::string expected_not_empty =
      R"x({"error":"wallet_not_empty","message":"wallet holds 5","balance":5})x";
  EXPECT_EQ(outcome_response(Outcome::refuse(not_empty)).body, expected_not_empty);
}

TEST(SchemaTest, EveryRefusalCodeMapsToItsReasonAndBack) {
  for (RefusalReason r :
       {RefusalReason::kCardInUse, RefusalReason::kNotOrigin, RefusalReason::kAlreadyReversed,
        RefusalReason::kInsufficientRights, RefusalReason::kMemberBlocked,
        RefusalReason::kMemberClosed, RefusalReason::kWalletNotEmpty, RefusalReason::kPinWrong,
        RefusalReason::kPinLocked}) {
    auto back = refusal_reason(refusal_code(r));
    ASSERT_TRUE(back) << refusal_code(r);
    EXPECT_EQ(*back, r);
  }
  EXPECT_FALSE(refusal_reason("no_such_reason"));
}

TEST(SchemaTest, DoneAndRefusalRoundTripThroughJson) {
  const schema::Json done = schema::outcome_json(made(9));
  auto back = schema::outcome_from_json(done, false);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(schema::outcome_json(*back).dump(), done.dump());

  Outcome replay = made(9);
  replay.replayed = true;
  const schema::Json replayed = schema::outcome_json(replay);
  EXPECT_EQ(replayed.back(), true) << "replayed comes last";
  auto replay_back = schema::outcome_from_json(replayed, false);
  ASSERT_TRUE(replay_back.is_ok());
  EXPECT_TRUE(replay_back->replayed);

  Done recovered = made(3).done;
  recovered.points.reset();
  recovered.wallet.reset();
  recovered.recovered_from_peer = true;
  const schema::Json rec = schema::done_json(recovered);
  EXPECT_FALSE(rec.contains("points"));
  auto rec_back = schema::done_from_json(rec);
  ASSERT_TRUE(rec_back.is_ok());
  EXPECT_EQ(schema::done_json(*rec_back).dump(), rec.dump());

  for (const Outcome& o :
       {short_of_rights(1), Outcome::refuse(RefusalReason::kCardInUse, "card 1 in use")}) {
    const schema::Json j = schema::outcome_json(o);
    auto r = schema::outcome_from_json(j, true);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(schema::outcome_json(*r).dump(), j.dump());
  }
}

TEST(SchemaTest, MalformedStoredAnswerIsCorruptionNamingTheField) {
  schema::Json j = schema::done_json(made(1).done);
  j["hash"] = "zz";
  auto r = schema::done_from_json(j);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("hash"), std::string::npos);
  j = schema::done_json(made(1).done);
  j["wallet"]["balance"] = "a lot";
  EXPECT_FALSE(schema::done_from_json(j).is_ok());
  EXPECT_FALSE(schema::done_from_json(schema::Json::array()).is_ok());
}

}  // namespace
}  // namespace outpost::node
