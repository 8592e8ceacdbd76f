// Who a peer is, over real links against real outpostd processes (issue 11, items 1-3, 14, 15):
// an enrolled but hostile store (its daemon never runs; the test speaks for it through RawPeer)
// claims another node's id in its HELLO, claims seqs of other nodes' own logs, sends many-op
// batches with one bad signature and badly signed "forks" of an honest store's ops; and silent
// TCP connections flood the handshake slots. Waits are bounded polls or hang guards, never timed
// assertions; sources other than 127.0.0.1 are other loopback addresses (all of 127.0.0.0/8).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chain_harness.h"
#include "raw_peer.h"

namespace outpost::test {
namespace {

using sync::Bytes;

constexpr std::size_t kManyOps = 10;  // a batch well past "a few ops"
constexpr int kConnectAttempts = 3;   // a legitimate peer's tries while a flood is on

// A TCP connection from `from` (a 127.x.y.z address) to 127.0.0.1:port that never sends a byte:
// what a flood of the handshake slots is made of.
class SilentConnection {
 public:
  SilentConnection(const std::string& from, std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, from.c_str(), &local.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~SilentConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  SilentConnection(const SilentConnection&) = delete;
  SilentConnection& operator=(const SilentConnection&) = delete;
  bool connected() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

class LinkIdentityTest : public ::testing::Test {
 protected:
  // Starts HQ and `stores` stores, then enrolls "rogue" (never started) with `ops` ops of its own.
  void start(int stores, std::size_t ops) {
    ASSERT_TRUE(chain_.start(stores));
    if (stores > 0) {
      ASSERT_TRUE(chain_.wait_links(chain_.hq(), stores));
    }
    ASSERT_TRUE(chain_.enroll_store("rogue"));
    rogue_dir_ = chain_.store(stores + 1).node->data_dir();
    sync::SystemEnv clock;
    auto ledger = node::Ledger::open(rogue_dir_, clock);
    ASSERT_TRUE(ledger.is_ok()) << ledger.status().to_string();
    node::EnrollRequest e{node::new_request_id(), "40002222", "Gus", "", ""};
    ASSERT_TRUE((*ledger)->enroll(e).is_ok());
    auto member = (*ledger)->resolve_member("40002222");
    for (std::size_t i = 1; i < ops; ++i) {
      ASSERT_TRUE((*ledger)->topup(node::new_request_id(), *member, 100, "").is_ok());
    }
    rogue_id_ = (*ledger)->node_id();
    ops_ = *(*ledger)->store().ops_of_origin(rogue_id_, 1, 1000);
    ASSERT_EQ(ops_.size(), ops);
  }

  // Opens a link as the rogue store to `port`, waits for the node's HELLO (returned) and sends
  // a HELLO that names `claimed` and carries `vv`.
  std::optional<sync::HelloMsg> open_session(RawPeer& peer, std::uint16_t port,
                                             const sync::NodeId& claimed,
                                             sync::VersionVector vv = {}) {
    if (auto c = peer.connect(port); !c) {
      ADD_FAILURE() << "connect: " << c.message();
      return std::nullopt;
    }
    auto theirs = peer.next<sync::HelloMsg>();
    if (!theirs) {
      ADD_FAILURE() << "the node sent no HELLO";
      return std::nullopt;
    }
    sync::HelloMsg hello;
    hello.node = claimed;
    hello.vv = std::move(vv);
    if (Status st = peer.send(sync::encode_message(hello)); !st.is_ok()) {
      ADD_FAILURE() << st.to_string();
      return std::nullopt;
    }
    return theirs;
  }

  sync::NodeId node_id_of(ChainNode& n) {
    auto r = n.node->cli({"--json", "status"});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.describe();
    auto id = sync::parse_id(Json::parse(r.out)["node_id"].get<std::string>());
    EXPECT_TRUE(id.is_ok()) << r.out;
    return id.is_ok() ? *id : sync::NodeId{};
  }

  Json fence_of(ChainNode& n) {
    auto r = n.node->cli({"--json", "fence", "show"});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.describe();
    return Json::parse(r.out, nullptr, false);
  }

  std::uint64_t seq_at(ChainNode& n, const sync::NodeId& origin) {
    return chain_.version_vector(n).value(sync::id_hex(origin), 0);
  }

  // Polls (bounded) until HQ and store-1 hold the same ops (the rogue store never syncs, so
  // Chain::wait_converged, which waits for every enrolled store, does not apply).
  testing::AssertionResult hq_and_store_converged() {
    for (int i = 0; i < kConvergePolls; ++i) {
      Json a = chain_.version_vector(chain_.hq());
      if (!a.is_null() && a == chain_.version_vector(chain_.store(1)))
        return testing::AssertionSuccess();
      std::this_thread::sleep_for(kPoll);
    }
    return testing::AssertionFailure() << "HQ and store-1 did not converge";
  }

  Json alerts_of(ChainNode& n) { return chain_.admin(n).get("/admin/v1/alerts").json(); }

  // The newest alert of `kind` at `n`, or null.
  Json newest_alert(ChainNode& n, const std::string& kind) {
    Json all = alerts_of(n);
    Json newest;
    for (const auto& a : all["alerts"]) {
      if (a.value("kind", "") == kind &&
          (newest.is_null() || a.value("id", 0) > newest.value("id", 0)))
        newest = a;
    }
    return newest;
  }

  int pos_enroll(ChainNode& n, const std::string& card) {
    return chain_.pos(n)
        .post("/v1/members", {{"request_id", rid("e")}, {"card", card}, {"name", "Eve"}})
        .status;
  }

  // Connects as the rogue store (a few tries, no waiting between them), sends its ops and
  // returns whether they were acknowledged: a legitimate peer that connects and syncs.
  testing::AssertionResult rogue_syncs_with_hq() {
    std::string why;
    for (int attempt = 0; attempt < kConnectAttempts; ++attempt) {
      RawPeer peer(rogue_dir_);
      if (auto c = peer.connect(chain_.hq().node->peer_port()); !c) {
        why = c.message();
        continue;
      }
      if (!peer.next<sync::HelloMsg>()) return testing::AssertionFailure() << "HQ sent no HELLO";
      sync::HelloMsg hello;
      hello.node = rogue_id_;
      if (!peer.send(sync::encode_message(hello)).is_ok() ||
          !peer.send(sync::encode_message(sync::OpsMsg{ops_})).is_ok()) {
        return testing::AssertionFailure() << "send failed";
      }
      auto ack = peer.next<sync::AckMsg>();
      if (!ack) return testing::AssertionFailure() << "no ACK";
      if (ack->vv.at(rogue_id_) != ops_.size())
        return testing::AssertionFailure() << "ops not applied";
      return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << "an enrolled peer could not connect: " << why;
  }

  Chain chain_;
  std::string rogue_dir_;
  sync::NodeId rogue_id_{};
  std::vector<sync::SignedOp> ops_;
};

// --- item 1: a HELLO is bound to the certificate the link authenticated ---

// The attack: an enrolled store that claims HQ's id in its HELLO lifted a restored store's
// fence, and the restored store then signed seqs HQ already held (equivocation).
TEST_F(LinkIdentityTest, HelloClaimingHqsIdIsRefusedAndDoesNotLiftARestoredStoresFence) {
  start(1, 1);
  ChainNode& store = chain_.store(1);
  ASSERT_EQ(pos_enroll(store, "40001111"), 200);
  const std::string backup = store.node->dir() + "/store-1.backup";
  ASSERT_TRUE(store.node->cli({"backup", "--out", backup}).exit.exited_with(0));
  ASSERT_EQ(pos_enroll(store, "40001112"), 200);  // seq 2: HQ holds it, the backup does not
  ASSERT_TRUE(hq_and_store_converged());
  const sync::NodeId hq_id = node_id_of(chain_.hq());
  const sync::NodeId store_id = node_id_of(store);

  // Restored, and started without HQ as a peer: it waits to hear from HQ.
  ASSERT_TRUE(store.node->stop());
  ASSERT_TRUE(store.node->cli({"restore", backup}).exit.exited_with(0));
  ASSERT_TRUE(chain_.start_node(store, ""));
  ASSERT_EQ(pos_enroll(store, "40001113"), 503);

  {
    RawPeer peer(rogue_dir_);
    ASSERT_TRUE(open_session(peer, store.node->peer_port(), hq_id, {{store_id, 1}}));
    auto err = peer.next<sync::ErrorMsg>();
    ASSERT_TRUE(err.has_value()) << "a HELLO claiming HQ's id was not refused";
    const std::string want = "claims node " + sync::id_hex(hq_id) +
                             " but the link authenticated node " + sync::id_hex(rogue_id_);
    EXPECT_NE(err->message.find(want), std::string::npos) << err->message;
    EXPECT_TRUE(peer.wait_closed()) << "the session stayed open after the refusal";
  }
  {
    // Its own id, honestly: a store's HELLO does not end a store's wait either.
    RawPeer peer(rogue_dir_);
    ASSERT_TRUE(open_session(peer, store.node->peer_port(), rogue_id_, {{store_id, 2}}));
    // Our HELLO named roster version 0: the node offers its roster once it handled the HELLO.
    ASSERT_TRUE(peer.next<sync::BlobMsg>().has_value()) << "the HELLO was not handled";
  }
  EXPECT_EQ(pos_enroll(store, "40001113"), 503) << "the restored store signed: it may reuse seq 2";
  EXPECT_TRUE(fence_of(store)["awaiting_peer"].get<bool>()) << fence_of(store).dump();

  // The control: HQ itself ends the wait, and the store continues after seq 2.
  ASSERT_TRUE(store.node->stop());
  ASSERT_TRUE(chain_.start_node(store, chain_.hq_peer()));
  int status = 0;
  for (int i = 0; i < kConvergePolls && status != 200; ++i) {
    status = pos_enroll(store, "40001114");
    if (status != 200) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_EQ(status, 200) << "HQ did not end the restored store's wait";
  EXPECT_EQ(seq_at(store, store_id), 3u);
}

// --- item 2: a store's claim about another node's own log fences nobody ---

TEST_F(LinkIdentityTest, StoreClaimingAHugeSeqOfAnotherNodesOwnLogFencesNeitherAStoreNorHq) {
  start(1, 1);
  ASSERT_EQ(pos_enroll(chain_.store(1), "40001111"), 200);
  ASSERT_TRUE(hq_and_store_converged());
  int card = 40001200;
  for (ChainNode* victim : {&chain_.store(1), &chain_.hq()}) {
    SCOPED_TRACE(victim->name);
    const sync::NodeId victim_id = node_id_of(*victim);
    RawPeer peer(rogue_dir_);
    ASSERT_TRUE(open_session(peer, victim->node->peer_port(), rogue_id_, {{victim_id, 1'000'000}}));
    // Our HELLO named roster version 0: the victim offers its roster once it handled the HELLO.
    ASSERT_TRUE(peer.next<sync::BlobMsg>().has_value());
    EXPECT_EQ(pos_enroll(*victim, std::to_string(++card)), 200)
        << "a store's claim fenced " << victim->name;
    EXPECT_FALSE(fence_of(*victim)["fenced"].get<bool>()) << fence_of(*victim).dump();
    EXPECT_GE(alerts_of(*victim)["counts"].value("own_seq_behind", 0), 1)
        << "the false claim went unreported";
  }
}

// --- item 14: a bad signature anywhere in a many-op batch ---

TEST_F(LinkIdentityTest, ManyOpBatchWithABadSignatureInTheMiddleOrAtTheEndIsRefusedWhole) {
  start(0, kManyOps);
  ChainNode& hq = chain_.hq();
  for (std::size_t bad_at : {kManyOps / 2, kManyOps - 1}) {
    SCOPED_TRACE("bad signature at position " + std::to_string(bad_at));
    auto batch = ops_;
    batch[bad_at].sig[5] ^= 0x01;
    const int before = alerts_of(hq)["counts"].value("bad_signature", 0);
    RawPeer peer(rogue_dir_);
    ASSERT_TRUE(open_session(peer, hq.node->peer_port(), rogue_id_));
    ASSERT_TRUE(peer.send(sync::encode_message(sync::OpsMsg{batch})).is_ok());
    auto err = peer.next<sync::ErrorMsg>();
    ASSERT_TRUE(err.has_value()) << "a batch with a bad signature was not refused";
    EXPECT_NE(err->message.find("bad signature"), std::string::npos) << err->message;
    EXPECT_TRUE(peer.wait_closed());
    EXPECT_EQ(seq_at(hq, rogue_id_), 0u) << "ops of a refused batch were applied";
    EXPECT_EQ(alerts_of(hq)["counts"].value("bad_signature", 0), before + 1);
    EXPECT_EQ(newest_alert(hq, "bad_signature").value("node", ""), sync::id_hex(rogue_id_));
  }
  EXPECT_TRUE(rogue_syncs_with_hq()) << "the untouched batch must apply";
  EXPECT_EQ(seq_at(hq, rogue_id_), kManyOps);
}

// --- item 15: a badly signed "fork" frames nobody ---

TEST_F(LinkIdentityTest, BadlySignedForkOfAnHonestStoresOpIsBlamedOnTheSenderNotKeptAsEvidence) {
  start(1, 1);
  ChainNode& hq = chain_.hq();
  ASSERT_EQ(pos_enroll(chain_.store(1), "40001111"), 200);
  ASSERT_TRUE(hq_and_store_converged());
  const sync::NodeId honest = node_id_of(chain_.store(1));
  ASSERT_EQ(seq_at(hq, honest), 1u);
  // A different seq 1 "of" the honest store, signed by the rogue's own key.
  auto key = crypto::read_signing_key(rogue_dir_ + "/node.key");
  ASSERT_TRUE(key.is_ok());
  sync::Op forged = ops_[0].op;
  forged.origin = honest;
  RawPeer peer(rogue_dir_);
  ASSERT_TRUE(open_session(peer, hq.node->peer_port(), rogue_id_));
  ASSERT_TRUE(peer.send(sync::encode_message(sync::OpsMsg{{sync::sign_op(forged, *key)}})).is_ok());
  auto err = peer.next<sync::ErrorMsg>();
  ASSERT_TRUE(err.has_value()) << "a badly signed fork was not refused";
  EXPECT_NE(err->message.find("bad signature"), std::string::npos) << err->message;
  EXPECT_TRUE(peer.wait_closed());
  Json alerts = alerts_of(hq);
  EXPECT_EQ(alerts["counts"].value("equivocation", 0), 0)
      << "the honest store was framed: " << alerts.dump();
  EXPECT_EQ(newest_alert(hq, "bad_signature").value("node", ""), sync::id_hex(rogue_id_))
      << alerts.dump();
  EXPECT_EQ(seq_at(hq, honest), 1u);
  auto verify = hq.node->cli({"log", "verify"});
  EXPECT_TRUE(verify.exit.exited_with(0)) << verify.describe();
}

// --- item 3: a flood of silent connections locks nobody out ---

// 127.0.0.1 never completed a handshake with this HQ: only the per-source bound lets it in.
TEST_F(LinkIdentityTest, FloodOfSilentConnectionsFromOneAddressLeavesRoomForAnEnrolledPeer) {
  start(0, 2);
  std::vector<std::unique_ptr<SilentConnection>> flood;
  for (std::size_t i = 0; i < limits::kLinkHandshakesInFlightMax + 16; ++i) {
    flood.push_back(std::make_unique<SilentConnection>("127.0.0.2", chain_.hq().node->peer_port()));
    ASSERT_TRUE(flood.back()->connected()) << "flood connection " << i;
  }
  EXPECT_TRUE(rogue_syncs_with_hq());
}

// A flood spread over many addresses: the slots kept for known addresses let a peer that
// connected before back in.
TEST_F(LinkIdentityTest, FloodFromManyAddressesLeavesTheReservedSlotsToAPeerSeenBefore) {
  start(0, 2);
  ASSERT_TRUE(rogue_syncs_with_hq());  // 127.0.0.1 is now a known address
  std::vector<std::unique_ptr<SilentConnection>> flood;
  const std::size_t sources =
      limits::kLinkHandshakesInFlightMax / limits::kLinkHandshakesPerSourceMax + 4;
  for (std::size_t s = 0; s < sources; ++s) {
    const std::string from = "127.0.1." + std::to_string(s + 1);
    for (std::size_t i = 0; i < limits::kLinkHandshakesPerSourceMax; ++i) {
      flood.push_back(std::make_unique<SilentConnection>(from, chain_.hq().node->peer_port()));
      ASSERT_TRUE(flood.back()->connected()) << from;
    }
  }
  EXPECT_TRUE(rogue_syncs_with_hq());
}

}  // namespace
}  // namespace outpost::test
