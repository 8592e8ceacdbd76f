// The sync receiver of a real outpostd (HQ) against a hostile but enrolled peer: this test
// connects over a real Noise link as an enrolled store whose daemon is not running and speaks
// the sync protocol by hand (docs/sync-protocol.md). Each bad input of issue 5 (an op from an
// unknown origin, a gap, a bad signature, an oversize batch, an unknown message type or protocol
// version) must be answered with ERROR naming it, close the session, apply nothing and leave HQ
// serving; a good batch on the next link is then applied and acknowledged. Waits are bounded
// hang guards, never timed assertions.
#include <gtest/gtest.h>

#include "chain_harness.h"
#include "outpost/base/limits.h"
#include "raw_peer.h"

namespace outpost::test {
namespace {

using sync::Bytes;

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(chain_.start(1));
    ASSERT_TRUE(chain_.wait_links(chain_.hq(), 1));
    // "rogue" is enrolled but its daemon never runs: the test speaks for it.
    ASSERT_TRUE(chain_.enroll_store("rogue"));
    rogue_dir_ = chain_.store(2).node->data_dir();
    sync::SystemEnv clock;
    auto ledger = node::Ledger::open(rogue_dir_, clock);
    ASSERT_TRUE(ledger.is_ok()) << ledger.status().to_string();
    node::EnrollRequest e{node::new_request_id(), "40002222", "Gus", "", ""};
    ASSERT_TRUE((*ledger)->enroll(e).is_ok());
    auto member = (*ledger)->resolve_member("40002222");
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*ledger)->topup(node::new_request_id(), *member, 100, "").is_ok());
    rogue_id_ = (*ledger)->node_id();
    ops_ = *(*ledger)->store().ops_of_origin(rogue_id_, 1, 10);
    ASSERT_EQ(ops_.size(), 4u);
  }

  // Opens a link as the rogue store and exchanges HELLO (HQ's comes first).
  testing::AssertionResult open_session(RawPeer& peer) {
    if (auto c = peer.connect(chain_.hq().node->peer_port()); !c) return c;
    if (!peer.next<sync::HelloMsg>()) return testing::AssertionFailure() << "HQ sent no HELLO";
    sync::HelloMsg hello;
    hello.node = rogue_id_;
    if (Status st = peer.send(sync::encode_message(hello)); !st.is_ok()) {
      return testing::AssertionFailure() << st.to_string();
    }
    return testing::AssertionSuccess();
  }

  // Sends `bytes` in a fresh session and expects ERROR naming `needle`, then the close.
  testing::AssertionResult refused(const Bytes& bytes, const std::string& needle) {
    RawPeer peer(rogue_dir_);
    if (auto s = open_session(peer); !s) return s;
    if (Status st = peer.send(bytes); !st.is_ok()) return testing::AssertionFailure() << st.to_string();
    auto err = peer.next<sync::ErrorMsg>();
    if (!err) return testing::AssertionFailure() << "no ERROR for input that must be refused (" << needle << ")";
    if (err->message.find(needle) == std::string::npos) {
      return testing::AssertionFailure() << "ERROR '" << err->message << "' does not name " << needle;
    }
    if (!peer.wait_closed()) return testing::AssertionFailure() << "HQ kept the session open after ERROR";
    return testing::AssertionSuccess();
  }

  std::uint64_t hq_seq_of_rogue() {
    Json vv = chain_.version_vector(chain_.hq());
    return vv.value(sync::id_hex(rogue_id_), 0);
  }

  Bytes ops_message(std::vector<sync::SignedOp> ops) { return sync::encode_message(sync::OpsMsg{std::move(ops)}); }

  Chain chain_;
  std::string rogue_dir_;
  sync::NodeId rogue_id_{};
  std::vector<sync::SignedOp> ops_;
};

TEST_F(ReceiverTest, EveryBadBatchOrMessageIsRefusedWithErrorAppliesNothingAndHqKeepsServing) {
  // An op of an origin HQ never enrolled, signed by its own key.
  {
    std::array<std::uint8_t, 32> seed{};
    seed.fill(0x5a);
    auto stranger = crypto::SigningKey::from_seed(seed);
    ASSERT_TRUE(stranger.is_ok());
    sync::Op op = ops_[0].op;
    op.origin[0] ^= 0xff;
    ASSERT_TRUE(refused(ops_message({sync::sign_op(op, *stranger)}), "unknown origin"));
  }
  // A gap: seq 1, then seq 3.
  ASSERT_TRUE(refused(ops_message({ops_[0], ops_[2]}), "gap"));
  // A bad signature on an otherwise good op.
  {
    sync::SignedOp bad = ops_[0];
    bad.sig[5] ^= 1;
    ASSERT_TRUE(refused(ops_message({bad}), "signature"));
  }
  // An oversize batch: 257 ops where at most 256 are allowed.
  ASSERT_TRUE(refused(ops_message(std::vector<sync::SignedOp>(257, ops_[0])), "bad message"));
  // An unknown message type, and a known type with an unknown protocol version.
  ASSERT_TRUE(refused(Bytes{99, sync::kSyncProtocolVersion}, "bad message"));
  {
    Bytes ack = sync::encode_message(sync::AckMsg{});
    ack[1] = 2;
    ASSERT_TRUE(refused(ack, "bad message"));
  }
  EXPECT_EQ(hq_seq_of_rogue(), 0u) << "a refused batch applied ops";
  Json alerts = chain_.admin(chain_.hq()).get("/admin/v1/alerts").json();
  EXPECT_GE(alerts["counts"].value("bad_signature", 0), 1) << alerts.dump();
  EXPECT_EQ(chain_.admin(chain_.hq()).get("/admin/v1/health").status, 200);

  // The same peer with a good batch: applied, acknowledged, and relayed on to store-1.
  RawPeer peer(rogue_dir_);
  ASSERT_TRUE(open_session(peer));
  ASSERT_TRUE(peer.send(ops_message(ops_)).is_ok());
  auto ack = peer.next<sync::AckMsg>();
  ASSERT_TRUE(ack.has_value()) << "no ACK for a good batch";
  EXPECT_EQ(ack->vv.at(rogue_id_), 4u);
  EXPECT_EQ(hq_seq_of_rogue(), 4u);
  EXPECT_FALSE(chain_.wait_converged().is_null()) << "store-1 never got the relayed ops";
}

// A validly signed successor of another op than the one HQ holds (the origin signed two
// histories) is equivocation: kept as evidence once, one alert, never applied; the same batch's
// ops of other origins still apply (the simulator's rule, now in the daemon).
TEST_F(ReceiverTest, ForkedSuccessorIsEvidenceNotARefusalAndOtherOriginsStillApply) {
  // HQ holds rogue's seq 1..2.
  {
    RawPeer peer(rogue_dir_);
    ASSERT_TRUE(open_session(peer));
    ASSERT_TRUE(peer.send(ops_message({ops_[0], ops_[1]})).is_ok());
    ASSERT_TRUE(peer.next<sync::AckMsg>().has_value());
  }
  ASSERT_EQ(hq_seq_of_rogue(), 2u);
  // Rogue signs a second seq 2 and a seq 3 on top of it; HQ gets only that seq 3.
  auto key = crypto::read_signing_key(rogue_dir_ + "/node.key");
  ASSERT_TRUE(key.is_ok());
  sync::Op other2 = ops_[1].op;
  other2.amount += 1;
  const sync::SignedOp fork2 = sync::sign_op(other2, *key);
  sync::Op fork3 = ops_[2].op;
  fork3.prev = fork2.hash;
  const sync::SignedOp forked_successor = sync::sign_op(fork3, *key);
  for (int round = 0; round < 2; ++round) {  // the second time: no second alert
    RawPeer peer(rogue_dir_);
    ASSERT_TRUE(open_session(peer));
    ASSERT_TRUE(peer.send(ops_message({forked_successor})).is_ok());
    auto ack = peer.next<sync::AckMsg>();
    ASSERT_TRUE(ack.has_value()) << "a forked successor must not refuse the batch (round " << round << ")";
    EXPECT_EQ(ack->vv.at(rogue_id_), 2u);
  }
  EXPECT_EQ(hq_seq_of_rogue(), 2u) << "the forked successor was applied";
  Json alerts = chain_.admin(chain_.hq()).get("/admin/v1/alerts").json();
  EXPECT_EQ(alerts["counts"].value("equivocation", 0), 1) << alerts.dump();
  // The honest successor still applies after the evidence.
  RawPeer peer(rogue_dir_);
  ASSERT_TRUE(open_session(peer));
  ASSERT_TRUE(peer.send(ops_message({ops_[2], ops_[3]})).is_ok());
  auto ack = peer.next<sync::AckMsg>();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->vv.at(rogue_id_), 4u);
}

// Alerts over sync from a hostile but enrolled peer (issue 11, item 8): HQ asks only a peer whose
// HELLO announced ALERTS; an unasked, oversize or malformed ALERTS is refused with ERROR and stores
// nothing; a good one is stored under the link's node, never under the node it names.
TEST_F(ReceiverTest, HostileOrOversizeAlertsAreRefusedAndChangeNothingAndGoodOnesCountForTheLinksNode) {
  const std::string rogue = sync::id_hex(rogue_id_);
  auto held_from = [&](const std::string& source) {
    return chain_.admin(chain_.hq()).get("/admin/v1/alerts?source=" + source).json()["alerts"].size();
  };
  auto alert = [](std::uint64_t id, const std::string& kind, const std::string& message) {
    sync::AlertRecord a;
    a.id = id;
    a.at_ms = 1'790'000'000'000;
    a.kind = kind;
    a.message = message;
    return a;
  };
  // Opens a session whose HELLO announces ALERTS; HQ answers with what it holds of ours.
  auto open_alerts_session = [&](RawPeer& peer) -> std::optional<sync::AlertsAckMsg> {
    if (!peer.connect(chain_.hq().node->peer_port()) || !peer.next<sync::HelloMsg>()) return std::nullopt;
    sync::HelloMsg hello;
    hello.node = rogue_id_;
    hello.features = sync::kFeatureAlerts;
    if (!peer.send(sync::encode_message(hello)).is_ok()) return std::nullopt;
    return peer.next<sync::AlertsAckMsg>();
  };

  // Unasked: a HELLO without the feature, then ALERTS.
  ASSERT_TRUE(refused(sync::encode_message(sync::AlertsMsg{{alert(1, "refused_spend", "x")}}), "not asked for"));
  std::vector<Bytes> hostile;
  {
    std::vector<sync::AlertRecord> many;
    for (std::uint64_t i = 1; i <= limits::kSyncAlertsPerMessageMax + 1; ++i) many.push_back(alert(i, "flood", "x"));
    hostile.push_back(sync::encode_message(sync::AlertsMsg{many}));
    hostile.push_back(sync::encode_message(sync::AlertsMsg{{alert(1, "refused_spend", "\x1b[2J\x1b[Hfake screen")}}));
    hostile.push_back(sync::encode_message(sync::AlertsMsg{{alert(2, "refused_spend", "x"), alert(1, "x", "y")}}));
    sync::ByteWriter w;  // a message of 600 bytes where 512 is the bound
    w.u8(8);
    w.u8(sync::kSyncProtocolVersion);
    w.u32(1);
    w.u64(1);
    w.u64(1);
    w.str16("refused_spend");
    w.u8(0);
    w.str16(std::string(600, 'm'));
    hostile.push_back(w.take());
  }
  for (const Bytes& bad : hostile) {
    RawPeer peer(rogue_dir_);
    auto asked = open_alerts_session(peer);
    ASSERT_TRUE(asked.has_value()) << "HQ did not ask a peer that announced ALERTS for its alerts";
    EXPECT_EQ(asked->upto, 0u);
    ASSERT_TRUE(peer.send(bad).is_ok());
    auto err = peer.next<sync::ErrorMsg>();
    ASSERT_TRUE(err.has_value()) << "no ERROR for a hostile ALERTS";
    EXPECT_NE(err->message.find("malformed ALERTS"), std::string::npos) << err->message;
    EXPECT_TRUE(peer.wait_closed());
  }
  EXPECT_EQ(held_from(rogue), 0u) << "a refused ALERTS stored something";

  // A good one that claims to be about store-1: stored as the rogue's, acknowledged.
  const std::string store1 = chain_.admin(chain_.store(1)).get("/admin/v1/node").json().value("node_id", "");
  sync::AlertRecord claim = alert(7, "refused_spend", "store-1 refused a spend (it did not)");
  claim.about = *sync::parse_id(store1);
  RawPeer peer(rogue_dir_);
  ASSERT_TRUE(open_alerts_session(peer).has_value());
  ASSERT_TRUE(peer.send(sync::encode_message(sync::AlertsMsg{{claim}})).is_ok());
  auto ack = peer.next<sync::AlertsAckMsg>();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->upto, 7u);
  Json from_rogue = chain_.admin(chain_.hq()).get("/admin/v1/alerts?source=" + rogue).json();
  ASSERT_EQ(from_rogue["alerts"].size(), 1u) << from_rogue.dump();
  EXPECT_EQ(from_rogue["alerts"][0]["source"], rogue);
  EXPECT_EQ(from_rogue["alerts"][0]["source_name"], "rogue");
  EXPECT_EQ(from_rogue["alerts"][0]["node"], store1);
  Json from_store1 = chain_.admin(chain_.hq()).get("/admin/v1/alerts?source=" + store1).json();
  for (const auto& a : from_store1["alerts"]) {
    EXPECT_NE(a["message"], claim.message) << "an alert was attributed to the node it names";
  }
  // The next session starts from what HQ holds.
  RawPeer again(rogue_dir_);
  auto resumed = open_alerts_session(again);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->upto, 7u);
}

}  // namespace
}  // namespace outpost::test
