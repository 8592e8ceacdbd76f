// The rights broker as a pure state machine (sync/broker.h): each path of its policy with manual
// time and a fake ledger (docs/sync-protocol.md, "Rights broker"). One broker at a time, actions
// inspected directly; then three brokers wired by an in-memory network, with the rights they move
// conserved. Test names say what breaks.
#include <gtest/gtest.h>

#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/sync/broker.h"

namespace outpost::sync {
namespace {

NodeId node(std::uint8_t b) {
  NodeId id{};
  id.fill(b);
  return id;
}

const MemberId kMember = node(0x33);
constexpr std::uint64_t kT0 = 1'000'000;

// Links of the broker under test: 1 → store-a (holds nothing), 2 → HQ, 3 → store-b.
constexpr BrokerLinkId kStoreA = 1, kHq = 2, kStoreB = 3;
const NodeId kStoreAId = node(0xA1), kHqId = node(0x01), kStoreBId = node(0xB1);

template <typename T>
std::vector<T> all_of(const BrokerOutput& out) {
  std::vector<T> v;
  for (const auto& a : out.actions) {
    if (const T* t = std::get_if<T>(&a)) v.push_back(*t);
  }
  return v;
}

template <typename T>
T only(const BrokerOutput& out) {
  EXPECT_EQ(out.actions.size(), 1u);
  auto v = all_of<T>(out);
  EXPECT_EQ(v.size(), 1u);
  return v.empty() ? T{} : v[0];
}

class BrokerTest : public ::testing::Test {
 protected:
  void link_all(RightsBroker& b) {
    b.link_up(kStoreA, kStoreAId, false);
    b.link_up(kHq, kHqId, true);
    b.link_up(kStoreB, kStoreBId, false);
  }
  // The requester's view: store-b holds 80, store-a nothing, HQ nothing.
  RightsView view() const { return {{kStoreBId, 80}, {kStoreAId, 0}, {kHqId, 0}}; }

  std::uint64_t ask(RightsBroker& b, std::uint64_t amount, BrokerOutput& out,
                    std::uint64_t now = kT0) {
    return b.request(kMember, Account::kWallet, amount, view(), now, out);
  }
};

// --- requester side ----------------------------------------------------------------------------

TEST_F(BrokerTest, OfflineRequestEndsAtOnceAndSaysNothingWasTried) {
  RightsBroker b;
  BrokerOutput out;
  const std::uint64_t t = ask(b, 100, out);
  auto done = only<RightsDone>(out);
  EXPECT_EQ(done.ticket, t);
  EXPECT_EQ(done.end, RightsEnd::kNobodyToAsk);
  EXPECT_FALSE(done.tried());
  EXPECT_EQ(b.requests_waiting(), 0u);
  EXPECT_FALSE(b.next_deadline_ms());
}

TEST_F(BrokerTest, NoHolderInViewAndNoHqLinkMeansNobodyToAsk) {
  RightsBroker b;
  b.link_up(kStoreA, kStoreAId, false);  // linked, but holds nothing in this node's view
  BrokerOutput out;
  ask(b, 100, out);
  EXPECT_EQ(only<RightsDone>(out).end, RightsEnd::kNobodyToAsk);
  EXPECT_EQ(b.stats().asks_sent, 0u);
}

TEST_F(BrokerTest, AsksHqFirstThenHoldersAndNeverAPeerWithoutRights) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto first = only<SendRightsRequest>(out);
  EXPECT_EQ(first.link, kHq);
  EXPECT_EQ(first.msg.member, kMember);
  EXPECT_EQ(first.msg.account, Account::kWallet);
  EXPECT_EQ(first.msg.amount, 100u);
  auto next = only<SendRightsRequest>(b.on_reply(kHq, {first.msg.request_id, 0, "none"}, kT0 + 10));
  EXPECT_EQ(next.link, kStoreB);
  EXPECT_GT(next.msg.request_id, first.msg.request_id);
  // store-b gives nothing either: every candidate asked, store-a never was.
  auto done = only<RightsDone>(b.on_reply(kStoreB, {next.msg.request_id, 0, "none"}, kT0 + 20));
  EXPECT_EQ(done.end, RightsEnd::kAskedAll);
  EXPECT_EQ(done.granted, 0u);
  EXPECT_TRUE(done.tried());
  EXPECT_EQ(b.stats().asks_sent, 2u);
}

TEST_F(BrokerTest, FullGrantFromHqEndsTheRequestGranted) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  const std::uint64_t t = ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  auto done = only<RightsDone>(b.on_reply(kHq, {rq.msg.request_id, 100, ""}, kT0 + 5));
  EXPECT_EQ(done.ticket, t);
  EXPECT_EQ(done.end, RightsEnd::kGranted);
  EXPECT_EQ(done.granted, 100u);
  EXPECT_EQ(b.requests_waiting(), 0u);
}

TEST_F(BrokerTest, PartialGrantAsksTheNextHolderForOnlyTheRest) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  auto next = only<SendRightsRequest>(b.on_reply(kHq, {rq.msg.request_id, 30, ""}, kT0 + 5));
  EXPECT_EQ(next.link, kStoreB);
  EXPECT_EQ(next.msg.amount, 70u) << "the second holder must be asked only for what is missing";
  auto done = only<RightsDone>(b.on_reply(kStoreB, {next.msg.request_id, 0, "none"}, kT0 + 9));
  EXPECT_EQ(done.end, RightsEnd::kAskedAll);
  EXPECT_EQ(done.granted, 30u) << "a partial grant still counts (the spend is retried once)";
  EXPECT_TRUE(done.tried());
}

TEST_F(BrokerTest, DeadlineEndsTheRequestWithWhatArrivedBefore) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  auto next = only<SendRightsRequest>(b.on_reply(kHq, {rq.msg.request_id, 25, ""}, kT0 + 100));
  ASSERT_TRUE(b.next_deadline_ms());
  EXPECT_EQ(*b.next_deadline_ms(), kT0 + limits::kRightsRequestTimeoutMs)
      << "the deadline is for the whole request, not per ask";
  EXPECT_TRUE(b.advance(kT0 + limits::kRightsRequestTimeoutMs - 1).actions.empty());
  auto done = only<RightsDone>(b.advance(kT0 + limits::kRightsRequestTimeoutMs));
  EXPECT_EQ(done.end, RightsEnd::kDeadline);
  EXPECT_EQ(done.granted, 25u);
  EXPECT_EQ(b.stats().deadlines, 1u);
  EXPECT_FALSE(b.next_deadline_ms());
  // store-b answers after the deadline: ignored, nothing reported twice.
  EXPECT_TRUE(b.on_reply(kStoreB, {next.msg.request_id, 75, ""}, kT0 + 3'100).actions.empty());
  EXPECT_EQ(b.stats().replies_ignored, 1u);
}

TEST_F(BrokerTest, ReplyAfterTheDeadlinePassedButBeforeAdvanceDoesNotAskAgain) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  // The reply is heard only after the deadline (the driver's timer had not fired yet): it
  // counts, but nobody else is asked.
  auto done = only<RightsDone>(b.on_reply(kHq, {rq.msg.request_id, 10, ""}, kT0 + 5'000));
  EXPECT_EQ(done.end, RightsEnd::kDeadline);
  EXPECT_EQ(done.granted, 10u);
}

TEST_F(BrokerTest, LinkLostMidRequestMovesOnToTheNextHolderAtOnce) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  auto next = only<SendRightsRequest>(b.link_down(kHq, kT0 + 50));
  EXPECT_EQ(next.link, kStoreB);
  EXPECT_EQ(next.msg.amount, 100u);
  EXPECT_EQ(b.stats().asks_lost_with_link, 1u);
  // The lost link's reply can no longer arrive; one for its id on another link is ignored.
  EXPECT_TRUE(b.on_reply(kStoreB, {rq.msg.request_id, 100, ""}, kT0 + 60).actions.empty());
  auto done = only<RightsDone>(b.link_down(kStoreB, kT0 + 70));
  EXPECT_EQ(done.end, RightsEnd::kAskedAll);
  EXPECT_EQ(done.granted, 0u);
  EXPECT_TRUE(done.tried());
}

TEST_F(BrokerTest, CandidateWhoseLinkWentDownBeforeItsTurnIsSkipped) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  EXPECT_TRUE(b.link_down(kStoreB, kT0 + 1).actions.empty());  // not asked yet: nothing to do
  auto done = only<RightsDone>(b.on_reply(kHq, {rq.msg.request_id, 40, ""}, kT0 + 2));
  EXPECT_EQ(done.end, RightsEnd::kAskedAll);
  EXPECT_EQ(done.granted, 40u);
}

TEST_F(BrokerTest, DuplicateReplyIsCountedOnce) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  auto next = only<SendRightsRequest>(b.on_reply(kHq, {rq.msg.request_id, 40, ""}, kT0 + 1));
  EXPECT_EQ(next.msg.amount, 60u);
  EXPECT_TRUE(b.on_reply(kHq, {rq.msg.request_id, 40, ""}, kT0 + 2).actions.empty());
  EXPECT_EQ(b.stats().replies_ignored, 1u);
  auto done = only<RightsDone>(b.on_reply(kStoreB, {next.msg.request_id, 60, ""}, kT0 + 3));
  EXPECT_EQ(done.granted, 100u) << "the repeated 40 must not have been added again";
  EXPECT_EQ(done.end, RightsEnd::kGranted);
}

TEST_F(BrokerTest, ReplyForAnUnknownRequestIdChangesNothing) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  const auto deadline = b.next_deadline_ms();
  EXPECT_TRUE(b.on_reply(kHq, {rq.msg.request_id + 1000, 100, ""}, kT0 + 1).actions.empty());
  EXPECT_TRUE(b.on_reply(kHq, {0, 100, ""}, kT0 + 1).actions.empty());
  EXPECT_EQ(b.stats().replies_ignored, 2u);
  EXPECT_EQ(b.requests_waiting(), 1u);
  EXPECT_EQ(b.next_deadline_ms(), deadline);
  // The real reply still counts in full.
  EXPECT_EQ(only<RightsDone>(b.on_reply(kHq, {rq.msg.request_id, 100, ""}, kT0 + 2)).granted, 100u);
}

TEST_F(BrokerTest, ReplyFromAPeerOtherThanTheOneAskedIsIgnored) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  ASSERT_EQ(rq.link, kHq);
  // store-b (authenticated on its own link) answers the id HQ was asked under.
  EXPECT_TRUE(b.on_reply(kStoreB, {rq.msg.request_id, 100, ""}, kT0 + 1).actions.empty());
  // So does a link the broker never heard of.
  EXPECT_TRUE(b.on_reply(77, {rq.msg.request_id, 100, ""}, kT0 + 1).actions.empty());
  EXPECT_EQ(b.stats().replies_ignored, 2u);
  EXPECT_EQ(b.stats().replies_accepted, 0u);
  auto next = only<SendRightsRequest>(b.on_reply(kHq, {rq.msg.request_id, 10, ""}, kT0 + 2));
  EXPECT_EQ(next.msg.amount, 90u) << "only HQ's own answer counted";
}

TEST_F(BrokerTest, ReplyOnANewLinkOfTheSamePeerAfterReconnectIsIgnored) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  (void)b.link_down(kHq, kT0 + 1);  // moves on to store-b
  b.link_up(9, kHqId, true);        // HQ reconnects on a new link
  EXPECT_TRUE(b.on_reply(9, {rq.msg.request_id, 100, ""}, kT0 + 2).actions.empty());
  EXPECT_EQ(b.stats().replies_ignored, 1u);
}

TEST_F(BrokerTest, InflatedGrantClaimIsCappedAtTheAmountAsked) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  auto done =
      only<RightsDone>(b.on_reply(kHq, {rq.msg.request_id, ~std::uint64_t{0}, ""}, kT0 + 1));
  EXPECT_EQ(done.granted, 100u);
}

TEST_F(BrokerTest, PeerWithTwoLinksIsAskedOnce) {
  RightsBroker b;
  b.link_up(kHq, kHqId, true);
  b.link_up(8, kHqId, true);  // HQ dialed us and we dialed HQ
  BrokerOutput out;
  ask(b, 100, out);
  auto rq = only<SendRightsRequest>(out);
  EXPECT_EQ(rq.link, kHq);
  EXPECT_EQ(only<RightsDone>(b.on_reply(kHq, {rq.msg.request_id, 0, ""}, kT0 + 1)).end,
            RightsEnd::kAskedAll);
}

TEST_F(BrokerTest, ZeroAmountIsNotAsked) {
  RightsBroker b;
  link_all(b);
  BrokerOutput out;
  ask(b, 0, out);
  EXPECT_EQ(only<RightsDone>(out).end, RightsEnd::kNobodyToAsk);
}

TEST_F(BrokerTest, TooManyWaitingRequestsAreRefusedAtOnceUntried) {
  RightsBroker b;
  link_all(b);
  for (std::size_t i = 0; i < limits::kBrokerRequestsMax; ++i) {
    BrokerOutput out;
    ask(b, 1, out);
    ASSERT_EQ(all_of<SendRightsRequest>(out).size(), 1u);
  }
  BrokerOutput out;
  ask(b, 1, out);
  auto done = only<RightsDone>(out);
  EXPECT_EQ(done.end, RightsEnd::kBusy);
  EXPECT_FALSE(done.tried());
  // Each waiting one still ends, by its deadline.
  EXPECT_EQ(all_of<RightsDone>(b.advance(kT0 + limits::kRightsRequestTimeoutMs)).size(),
            limits::kBrokerRequestsMax);
  EXPECT_EQ(b.requests_waiting(), 0u);
}

TEST_F(BrokerTest, ConcurrentRequestsKeepTheirOwnTicketsAndAsks) {
  RightsBroker b;
  link_all(b);
  BrokerOutput o1, o2;
  const std::uint64_t t1 = ask(b, 100, o1);
  const std::uint64_t t2 = ask(b, 50, o2, kT0 + 1'000);
  auto r1 = only<SendRightsRequest>(o1);
  auto r2 = only<SendRightsRequest>(o2);
  EXPECT_NE(r1.msg.request_id, r2.msg.request_id);
  auto d2 = only<RightsDone>(b.on_reply(kHq, {r2.msg.request_id, 50, ""}, kT0 + 1'001));
  EXPECT_EQ(d2.ticket, t2);
  auto d1 = only<RightsDone>(b.advance(kT0 + limits::kRightsRequestTimeoutMs));
  EXPECT_EQ(d1.ticket, t1);
  EXPECT_EQ(d1.end, RightsEnd::kDeadline);
}

// --- holder side -------------------------------------------------------------------------------

TEST_F(BrokerTest, StoreGrantsWhatItHoldsAndAnswersOnlyAfterTheGrant) {
  RightsBroker b;  // a store: no relay
  link_all(b);
  auto g = only<GrantRights>(b.on_request(kStoreB, {5, kMember, Account::kPoints, 100}, kT0));
  EXPECT_EQ(g.to, kStoreBId) << "rights go to the authenticated peer of the link";
  EXPECT_EQ(g.member, kMember);
  EXPECT_EQ(g.account, Account::kPoints);
  EXPECT_EQ(g.amount, 100u);
  EXPECT_FALSE(g.want_view);
  EXPECT_EQ(b.requests_in_service(), 1u);
  auto reply = only<SendRightsReply>(b.on_granted(g.grant_id, 30, {}, kT0 + 1));
  EXPECT_EQ(reply.link, kStoreB);
  EXPECT_EQ(reply.msg.request_id, 5u);
  EXPECT_EQ(reply.msg.granted, 30u) << "a store answers a partial grant at once";
  EXPECT_EQ(reply.msg.reason, "");
  EXPECT_EQ(b.requests_in_service(), 0u);
}

TEST_F(BrokerTest, NothingHeldIsAnsweredZeroWithAReason) {
  RightsBroker b;
  link_all(b);
  auto g = only<GrantRights>(b.on_request(kStoreB, {1, kMember, Account::kWallet, 10}, kT0));
  auto reply = only<SendRightsReply>(b.on_granted(g.grant_id, 0, {}, kT0));
  EXPECT_EQ(reply.msg.granted, 0u);
  EXPECT_EQ(reply.msg.reason, "no rights available at this node");
}

TEST_F(BrokerTest, RepeatedOrOlderRequestIdFromALinkIsIgnored) {
  RightsBroker b;
  link_all(b);
  EXPECT_EQ(
      all_of<GrantRights>(b.on_request(kStoreB, {7, kMember, Account::kWallet, 10}, kT0)).size(),
      1u);
  EXPECT_TRUE(b.on_request(kStoreB, {7, kMember, Account::kWallet, 10}, kT0).actions.empty());
  EXPECT_TRUE(b.on_request(kStoreB, {3, kMember, Account::kWallet, 10}, kT0).actions.empty());
  EXPECT_EQ(b.stats().requests_ignored, 2u);
  EXPECT_EQ(b.requests_in_service(), 1u) << "a replayed id must not move rights twice";
  // Ids are per link: another peer may use the same number.
  EXPECT_EQ(
      all_of<GrantRights>(b.on_request(kStoreA, {7, kMember, Account::kWallet, 10}, kT0)).size(),
      1u);
}

TEST_F(BrokerTest, RequestOnALinkThatIsNotUpIsIgnored) {
  RightsBroker b;
  EXPECT_TRUE(b.on_request(4, {1, kMember, Account::kWallet, 10}, kT0).actions.empty());
  EXPECT_EQ(b.stats().requests_ignored, 1u);
  EXPECT_EQ(b.requests_in_service(), 0u);
}

TEST_F(BrokerTest, ZeroAmountRequestIsAnsweredWithoutTouchingTheLedger) {
  RightsBroker b;
  link_all(b);
  auto reply = only<SendRightsReply>(b.on_request(kStoreA, {1, kMember, Account::kWallet, 0}, kT0));
  EXPECT_EQ(reply.msg.granted, 0u);
}

TEST_F(BrokerTest, PeerFloodingRequestsGetsZeroBeyondTheBound) {
  RightsBroker b;
  link_all(b);
  std::uint64_t id = 1;
  for (std::size_t i = 0; i < limits::kBrokerServedPerLinkMax; ++i) {
    ASSERT_EQ(all_of<GrantRights>(b.on_request(kStoreB, {id++, kMember, Account::kWallet, 1}, kT0))
                  .size(),
              1u);
  }
  auto reply =
      only<SendRightsReply>(b.on_request(kStoreB, {id++, kMember, Account::kWallet, 1}, kT0));
  EXPECT_EQ(reply.msg.granted, 0u);
  EXPECT_EQ(b.requests_in_service(), limits::kBrokerServedPerLinkMax);
  // Other links are not affected.
  EXPECT_EQ(
      all_of<GrantRights>(b.on_request(kStoreA, {1, kMember, Account::kWallet, 1}, kT0)).size(),
      1u);
}

TEST_F(BrokerTest, RequesterLinkLostDuringTheGrantGetsNoReply) {
  RightsBroker b;
  link_all(b);
  auto g = only<GrantRights>(b.on_request(kStoreB, {1, kMember, Account::kWallet, 10}, kT0));
  EXPECT_TRUE(b.link_down(kStoreB, kT0 + 1).actions.empty());
  EXPECT_EQ(b.requests_in_service(), 0u);
  EXPECT_TRUE(b.on_granted(g.grant_id, 10, {}, kT0 + 2).actions.empty())
      << "the move op stands (it reaches the requester by sync); there is nobody to answer";
}

TEST_F(BrokerTest, UnknownGrantIdChangesNothing) {
  RightsBroker b;
  link_all(b);
  EXPECT_TRUE(b.on_granted(42, 10, {}, kT0).actions.empty());
}

// --- relay (HQ) ---------------------------------------------------------------------------------

class RelayTest : public BrokerTest {
 protected:
  RelayTest() {
    BrokerPolicy p;
    p.relay = true;
    hq = RightsBroker(p);
    // HQ's links: 1 → store-a (the requester), 3 → store-b (a holder).
    hq.link_up(kStoreA, kStoreAId, false);
    hq.link_up(kStoreB, kStoreBId, false);
  }
  RightsBroker hq;
};

TEST_F(RelayTest, HqMovesWhatItHoldsThenGathersTheRestAndPassesItOn) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  EXPECT_TRUE(g.want_view) << "a relaying node needs to know where the rest sits";
  // HQ held 30; its view: store-b holds 70, and so (by stale view) does the requester.
  RightsView view{{kStoreBId, 70}, {kStoreAId, 5}};
  auto ask = only<SendRightsRequest>(hq.on_granted(g.grant_id, 30, view, kT0 + 1));
  EXPECT_EQ(ask.link, kStoreB) << "never the requester itself";
  EXPECT_EQ(ask.msg.amount, 70u);
  EXPECT_EQ(hq.stats().relays_started, 1u);
  auto onward = only<GrantRights>(hq.on_reply(kStoreB, {ask.msg.request_id, 70, ""}, kT0 + 2));
  EXPECT_EQ(onward.to, kStoreAId);
  EXPECT_EQ(onward.amount, 70u);
  EXPECT_FALSE(onward.want_view);
  auto reply = only<SendRightsReply>(hq.on_granted(onward.grant_id, 70, {}, kT0 + 3));
  EXPECT_EQ(reply.link, kStoreA);
  EXPECT_EQ(reply.msg.request_id, 1u);
  EXPECT_EQ(reply.msg.granted, 100u);
  EXPECT_EQ(hq.requests_in_service(), 0u);
  EXPECT_EQ(hq.requests_waiting(), 0u);
}

TEST_F(RelayTest, HqHoldingEnoughAnswersWithoutRelaying) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  auto reply = only<SendRightsReply>(hq.on_granted(g.grant_id, 100, {{kStoreBId, 70}}, kT0));
  EXPECT_EQ(reply.msg.granted, 100u);
  EXPECT_EQ(hq.stats().relays_started, 0u);
}

TEST_F(RelayTest, NoOtherHolderAnswersWhatHqHeld) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  auto reply = only<SendRightsReply>(hq.on_granted(g.grant_id, 30, {{kStoreAId, 70}}, kT0));
  EXPECT_EQ(reply.msg.granted, 30u);
}

TEST_F(RelayTest, HolderGivingNothingAnswersWhatHqHeld) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  auto ask = only<SendRightsRequest>(hq.on_granted(g.grant_id, 0, {{kStoreBId, 70}}, kT0));
  auto reply =
      only<SendRightsReply>(hq.on_reply(kStoreB, {ask.msg.request_id, 0, "none"}, kT0 + 1));
  EXPECT_EQ(reply.msg.granted, 0u);
  EXPECT_EQ(reply.msg.reason, "no rights available at this node");
}

TEST_F(RelayTest, RelayDeadlineComesBeforeTheRequestersAndAnswersWhatWasHeld) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  (void)only<SendRightsRequest>(hq.on_granted(g.grant_id, 30, {{kStoreBId, 70}}, kT0 + 10));
  ASSERT_TRUE(hq.next_deadline_ms());
  EXPECT_EQ(*hq.next_deadline_ms(), kT0 + 10 + limits::kRightsRelayTimeoutMs);
  EXPECT_LT(limits::kRightsRelayTimeoutMs, limits::kRightsRequestTimeoutMs);
  auto reply = only<SendRightsReply>(hq.advance(kT0 + 10 + limits::kRightsRelayTimeoutMs));
  EXPECT_EQ(reply.msg.granted, 30u);
  EXPECT_EQ(hq.stats().deadlines, 1u);
}

TEST_F(RelayTest, RequesterLostMidRelayStopsAskingAndMovesNothingOn) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  auto ask = only<SendRightsRequest>(hq.on_granted(g.grant_id, 30, {{kStoreBId, 70}}, kT0));
  EXPECT_TRUE(hq.link_down(kStoreA, kT0 + 1).actions.empty());
  EXPECT_EQ(hq.requests_in_service(), 0u);
  EXPECT_EQ(hq.requests_waiting(), 0u);
  // store-b's late answer: its rights stay at HQ; nothing is moved on or answered.
  EXPECT_TRUE(hq.on_reply(kStoreB, {ask.msg.request_id, 70, ""}, kT0 + 2).actions.empty());
  EXPECT_FALSE(hq.next_deadline_ms());
}

TEST_F(RelayTest, HolderLostMidRelayAnswersWhatHqHeld) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  (void)only<SendRightsRequest>(hq.on_granted(g.grant_id, 30, {{kStoreBId, 70}}, kT0));
  auto reply = only<SendRightsReply>(hq.link_down(kStoreB, kT0 + 1));
  EXPECT_EQ(reply.link, kStoreA);
  EXPECT_EQ(reply.msg.granted, 30u);
}

TEST_F(RelayTest, RequesterLostWhileHqPassesRightsOnGetsNoReply) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  auto ask = only<SendRightsRequest>(hq.on_granted(g.grant_id, 30, {{kStoreBId, 70}}, kT0));
  auto onward = only<GrantRights>(hq.on_reply(kStoreB, {ask.msg.request_id, 70, ""}, kT0 + 1));
  (void)hq.link_down(kStoreA, kT0 + 2);
  EXPECT_TRUE(hq.on_granted(onward.grant_id, 70, {}, kT0 + 3).actions.empty());
}

TEST_F(RelayTest, GrantReportArrivingWhileRelayingIsIgnored) {
  auto g = only<GrantRights>(hq.on_request(kStoreA, {1, kMember, Account::kWallet, 100}, kT0));
  (void)only<SendRightsRequest>(hq.on_granted(g.grant_id, 30, {{kStoreBId, 70}}, kT0));
  EXPECT_TRUE(hq.on_granted(g.grant_id, 70, {}, kT0 + 1).actions.empty()) << "a repeated report";
  EXPECT_EQ(hq.requests_waiting(), 1u);
}

// --- three brokers on an in-memory network ------------------------------------------------------

// store-1 (holds the member's rights) — HQ — store-2 (serves the spend): a star, as in the
// daemon's chain. Messages travel in order per link; grants move rights on one shared escrow
// counter (the test's stand-in for ledgers whose views agree once ops are synced).
class BrokerNetworkTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kStore1 = 0, kHqNode = 1, kStore2 = 2;
  struct Node {
    NodeId id{};
    std::unique_ptr<RightsBroker> broker;
    std::map<BrokerLinkId, std::size_t> peer_of_link;  // link id -> node index
    std::vector<RightsDone> done;
  };
  struct Msg {
    std::size_t to = 0;
    BrokerLinkId link = 0;  // the receiver's link id
    std::variant<RightsRequestMsg, RightsReplyMsg> body;
  };

  BrokerNetworkTest() {
    for (std::size_t i = 0; i < 3; ++i) {
      BrokerPolicy p;
      p.relay = i == kHqNode;
      nodes_[i].id = node(static_cast<std::uint8_t>(0x10 + i));
      nodes_[i].broker = std::make_unique<RightsBroker>(p);
    }
    connect(kStore1, kHqNode, 1);
    connect(kStore2, kHqNode, 2);
  }

  void connect(std::size_t a, std::size_t b, BrokerLinkId link) {
    nodes_[a].broker->link_up(link, nodes_[b].id, b == kHqNode);
    nodes_[b].broker->link_up(link, nodes_[a].id, a == kHqNode);
    nodes_[a].peer_of_link[link] = b;
    nodes_[b].peer_of_link[link] = a;
  }

  std::int64_t& rights(std::size_t i) { return escrow_[nodes_[i].id]; }

  void run(std::size_t i, BrokerOutput out) {
    for (auto& action : out.actions) {
      if (auto* s = std::get_if<SendRightsRequest>(&action)) {
        wire_.push_back({nodes_[i].peer_of_link.at(s->link), s->link, s->msg});
      } else if (auto* r = std::get_if<SendRightsReply>(&action)) {
        wire_.push_back({nodes_[i].peer_of_link.at(r->link), r->link, r->msg});
      } else if (auto* g = std::get_if<GrantRights>(&action)) {
        // The fake ledger: moves min(amount, held here), never below zero.
        const std::int64_t held = std::max<std::int64_t>(rights(i), 0);
        const std::uint64_t give =
            std::min<std::uint64_t>(g->amount, static_cast<std::uint64_t>(held));
        rights(i) -= static_cast<std::int64_t>(give);
        escrow_[g->to] += static_cast<std::int64_t>(give);
        ++grants_;
        run(i, nodes_[i].broker->on_granted(g->grant_id, give,
                                            g->want_view ? escrow_ : RightsView{}, now_));
      } else if (auto* d = std::get_if<RightsDone>(&action)) {
        nodes_[i].done.push_back(*d);
      }
    }
  }

  // Delivers every message in flight, oldest first (bounded: each step handles one message).
  void deliver_all() {
    for (int steps = 0; steps < 1000 && !wire_.empty(); ++steps) {
      Msg m = wire_.front();
      wire_.pop_front();
      now_ += 1;
      RightsBroker& b = *nodes_[m.to].broker;
      if (auto* rq = std::get_if<RightsRequestMsg>(&m.body))
        run(m.to, b.on_request(m.link, *rq, now_));
      if (auto* rp = std::get_if<RightsReplyMsg>(&m.body)) run(m.to, b.on_reply(m.link, *rp, now_));
    }
    ASSERT_TRUE(wire_.empty());
  }

  std::int64_t total() const {
    std::int64_t t = 0;
    for (const auto& [n, r] : escrow_) t += r;
    return t;
  }

  Node nodes_[3];
  RightsView escrow_;
  std::deque<Msg> wire_;
  std::uint64_t now_ = kT0;
  std::size_t grants_ = 0;
};

TEST_F(BrokerNetworkTest, StoreGetsRightsFromAnotherStoreThroughHqAndNoneAreCreated) {
  rights(kStore1) = 100;
  rights(kHqNode) = 20;
  BrokerOutput out;
  // store-2 sees store-1 as a holder, but has no link to it: only HQ can be asked.
  nodes_[kStore2].broker->request(kMember, Account::kWallet, 90, escrow_, now_, out);
  run(kStore2, std::move(out));
  deliver_all();
  ASSERT_EQ(nodes_[kStore2].done.size(), 1u);
  EXPECT_EQ(nodes_[kStore2].done[0].end, RightsEnd::kGranted);
  EXPECT_EQ(nodes_[kStore2].done[0].granted, 90u);
  EXPECT_EQ(rights(kStore2), 90);
  EXPECT_EQ(rights(kHqNode), 0);
  EXPECT_EQ(rights(kStore1), 30);
  EXPECT_EQ(total(), 120) << "the broker created or destroyed rights";
  for (const auto& n : nodes_) {
    EXPECT_EQ(n.broker->stats().requests_ignored, 0u)
        << "an honest requester's ids must ascend per link";
    EXPECT_EQ(n.broker->stats().replies_ignored, 0u);
    EXPECT_EQ(n.broker->requests_waiting(), 0u);
    EXPECT_EQ(n.broker->requests_in_service(), 0u);
  }
}

TEST_F(BrokerNetworkTest, ShortChainWideIsAPartialGrantAndNeverANegative) {
  rights(kStore1) = 10;
  rights(kHqNode) = 5;
  BrokerOutput out;
  nodes_[kStore2].broker->request(kMember, Account::kWallet, 100, escrow_, now_, out);
  run(kStore2, std::move(out));
  deliver_all();
  ASSERT_EQ(nodes_[kStore2].done.size(), 1u);
  EXPECT_EQ(nodes_[kStore2].done[0].granted, 15u);
  EXPECT_EQ(nodes_[kStore2].done[0].end, RightsEnd::kAskedAll);
  EXPECT_EQ(rights(kStore2), 15);
  for (const auto& [n, r] : escrow_) EXPECT_GE(r, 0);
  EXPECT_EQ(total(), 15);
}

TEST_F(BrokerNetworkTest, ManyRequestsFromBothStoresConserveRights) {
  rights(kStore1) = 500;
  rights(kStore2) = 500;
  rights(kHqNode) = 0;
  for (int round = 0; round < 20; ++round) {
    for (std::size_t s : {kStore1, kStore2}) {
      BrokerOutput out;
      nodes_[s].broker->request(kMember, Account::kWallet, 37 + round, escrow_, now_, out);
      run(s, std::move(out));
    }
    deliver_all();
  }
  EXPECT_EQ(nodes_[kStore1].done.size() + nodes_[kStore2].done.size(), 40u);
  EXPECT_EQ(total(), 1000);
  for (const auto& [n, r] : escrow_) EXPECT_GE(r, 0);
  for (const auto& n : nodes_) EXPECT_EQ(n.broker->stats().requests_ignored, 0u);
}

// --- random events against the contract --------------------------------------------------------

// Any sequence of events, however hostile (replies for random ids on random links, repeated
// requests, grant reports for unknown ids, links flapping): every local request ends exactly once
// and by its deadline, nothing is sent on a link that is not up, no amount exceeds what was asked,
// each peer's request is answered at most once, and rights always go to the link's own peer.
class BrokerContract {
 public:
  BrokerContract(std::uint64_t seed, bool relay) : rng_(seed) {
    BrokerPolicy p;
    p.relay = relay;
    broker_ = RightsBroker(p);
  }

  void step() {
    now_ += below(400);
    switch (below(9)) {
      case 0:
        flap_link();
        break;
      case 1:
      case 2:
        local_request();
        break;
      case 3:
      case 4:
        reply();
        break;
      case 5:
        peer_request();
        break;
      case 6:
      case 7:
        grant_report();
        break;
      default:
        advance();
        break;
    }
  }

  const BrokerStats& stats() const { return broker_.stats(); }

  // Lets every deadline pass and every grant report arrive; then nothing may be waiting.
  void drain() {
    for (int i = 0; i < 200 && !grants_.empty(); ++i) grant_report();
    now_ += limits::kRightsRequestTimeoutMs + 1;
    advance();
    for (int i = 0; i < 200 && !grants_.empty(); ++i) grant_report();
    check(broker_.advance(now_ + limits::kRightsRequestTimeoutMs + 1));
    EXPECT_EQ(broker_.requests_waiting(), 0u);
    EXPECT_EQ(broker_.requests_in_service(), 0u);
    EXPECT_EQ(done_.size(), tickets_.size()) << "a local request never ended";
    EXPECT_FALSE(broker_.next_deadline_ms());
  }

 private:
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  NodeId peer_of(BrokerLinkId link) const {
    return node(static_cast<std::uint8_t>(0x40 + link % 4));
  }

  // Every request whose deadline has come must have ended once time reaches it.
  void advance() {
    check(broker_.advance(now_));
    for (const auto& [ticket, t] : tickets_) {
      if (t.started_ms + limits::kRightsRequestTimeoutMs <= now_) {
        EXPECT_TRUE(done_.count(ticket)) << "request " << ticket << " outlived its deadline";
      }
    }
  }

  void flap_link() {
    const BrokerLinkId link = 1 + below(6);
    if (up_.count(link)) {
      up_.erase(link);
      check(broker_.link_down(link, now_));
      // The driver never reuses a link id; this test does, as a new link: forget the old one's.
      std::erase_if(answered_, [link](const auto& k) { return k.first == link; });
      std::erase_if(asked_of_us_, [link](const auto& kv) { return kv.first.first == link; });
      heard_.erase(link);
    } else {
      up_.insert(link);
      broker_.link_up(link, peer_of(link), link % 4 == 1);  // links 1 and 5 reach HQ (one node)
    }
  }

  void local_request() {
    RightsView view;
    for (std::uint8_t i = 0; i < 4; ++i)
      view[node(0x40 + i)] = static_cast<std::int64_t>(below(3)) - 1;
    const std::uint64_t amount = below(200);
    BrokerOutput out;
    const std::uint64_t t = broker_.request(kMember, Account::kWallet, amount, view, now_, out);
    EXPECT_TRUE(tickets_.emplace(t, Ticket{amount, now_}).second) << "a ticket was reused";
    check(out);
  }

  // Half the replies answer a real ask on the link it went out on; the rest are noise (random
  // ids, other links, repeats).
  void reply() {
    BrokerLinkId link = 1 + below(6);
    std::uint64_t id = below(40);
    if (!sent_.empty() && below(2) == 0) {
      auto it = std::next(sent_.begin(), below(sent_.size()));
      id = it->first;
      if (below(4) != 0) link = it->second;
    }
    check(broker_.on_reply(link, {id, below(300), ""}, now_));
  }

  void peer_request() {
    const BrokerLinkId link = 1 + below(6);
    const std::uint64_t id = below(3) == 0 ? below(10) : ++peer_ids_[link];
    RightsRequestMsg rq{id, kMember, Account::kPoints, below(150)};
    // The contract: a request is heard only on a link that is up, and only with a new, higher id.
    if (up_.count(link) && id > heard_[link]) {
      heard_[link] = id;
      asked_of_us_[{link, id}] = rq.amount;
    }
    check(broker_.on_request(link, rq, now_));
  }

  void grant_report() {
    std::uint64_t id = below(30);
    std::uint64_t amount = below(100);
    if (!grants_.empty() && below(4) != 0) {
      auto it = std::next(grants_.begin(), below(grants_.size()));
      id = it->first;
      amount = below(it->second + 1);  // a ledger moves at most what it was asked
      grants_.erase(it);
    }
    RightsView view{{node(0x42), 50}, {node(0x43), 20}, {node(0x41), 5}};
    check(broker_.on_granted(id, amount, view, now_));
  }

  void check(const BrokerOutput& out) {
    for (const auto& action : out.actions) {
      if (const auto* s = std::get_if<SendRightsRequest>(&action)) {
        EXPECT_TRUE(up_.count(s->link)) << "asked on a link that is not up";
        EXPECT_GT(s->msg.amount, 0u);
        EXPECT_TRUE(sent_.emplace(s->msg.request_id, s->link).second) << "a request id was reused";
      } else if (const auto* r = std::get_if<SendRightsReply>(&action)) {
        EXPECT_TRUE(up_.count(r->link)) << "answered on a link that is not up";
        auto key = std::make_pair(r->link, r->msg.request_id);
        EXPECT_TRUE(answered_.insert(key).second) << "a peer's request was answered twice";
        auto asked = asked_of_us_.find(key);
        ASSERT_NE(asked, asked_of_us_.end()) << "answered a request nobody made";
        EXPECT_LE(r->msg.granted, asked->second) << "answered more than was asked";
      } else if (const auto* g = std::get_if<GrantRights>(&action)) {
        EXPECT_GT(g->amount, 0u);
        EXPECT_NE(g->to, NodeId{});
        grants_[g->grant_id] = g->amount;
      } else if (const auto* d = std::get_if<RightsDone>(&action)) {
        auto t = tickets_.find(d->ticket);
        ASSERT_NE(t, tickets_.end()) << "ended a request never made";
        EXPECT_TRUE(done_.insert(d->ticket).second) << "a request ended twice";
        EXPECT_LE(d->granted, t->second.amount) << "granted more than was asked";
        if (d->end == RightsEnd::kGranted) {
          EXPECT_EQ(d->granted, t->second.amount);
        }
      }
    }
  }

  struct Ticket {
    std::uint64_t amount = 0;
    std::uint64_t started_ms = 0;
  };
  std::mt19937_64 rng_;
  RightsBroker broker_;
  std::uint64_t now_ = kT0;
  std::set<BrokerLinkId> up_;
  std::map<std::uint64_t, Ticket> tickets_;
  std::set<std::uint64_t> done_;
  std::map<std::uint64_t, BrokerLinkId> sent_;  // request ids this broker sent
  std::map<BrokerLinkId, std::uint64_t> peer_ids_;
  std::map<BrokerLinkId, std::uint64_t> heard_;  // highest request id the broker should have heard
  std::map<std::pair<BrokerLinkId, std::uint64_t>, std::uint64_t> asked_of_us_;
  std::set<std::pair<BrokerLinkId, std::uint64_t>> answered_;
  std::map<std::uint64_t, std::uint64_t> grants_;  // grant id -> amount asked, not yet reported
};

TEST(BrokerContractTest, RandomEventsNeverBreakTheContract) {
  BrokerStats sum;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE("reproduce with seed=" + std::to_string(seed));
    BrokerContract c(seed, seed % 2 == 0);
    for (int i = 0; i < 400; ++i) c.step();
    c.drain();
    if (::testing::Test::HasFailure()) return;
    sum.replies_accepted += c.stats().replies_accepted;
    sum.replies_ignored += c.stats().replies_ignored;
    sum.requests_served += c.stats().requests_served;
    sum.requests_ignored += c.stats().requests_ignored;
    sum.relays_started += c.stats().relays_started;
    sum.deadlines += c.stats().deadlines;
    sum.asks_lost_with_link += c.stats().asks_lost_with_link;
  }
  // Coverage: the random events must have reached every path the contract speaks of.
  EXPECT_GT(sum.replies_accepted, 0u);
  EXPECT_GT(sum.replies_ignored, 0u);
  EXPECT_GT(sum.requests_served, 0u);
  EXPECT_GT(sum.requests_ignored, 0u);
  EXPECT_GT(sum.relays_started, 0u);
  EXPECT_GT(sum.deadlines, 0u);
  EXPECT_GT(sum.asks_lost_with_link, 0u);
  std::cout << "broker contract: accepted=" << sum.replies_accepted
            << " ignored=" << sum.replies_ignored << " served=" << sum.requests_served
            << " refused_requests=" << sum.requests_ignored << " relays=" << sum.relays_started
            << " deadlines=" << sum.deadlines << " lost_with_link=" << sum.asks_lost_with_link
            << "\n";
}

}  // namespace
}  // namespace outpost::sync
