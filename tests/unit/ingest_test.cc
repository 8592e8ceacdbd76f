// Ingest of ops received from a peer (Ledger::ingest, node/src/ledger/ledger_ingest.cc) and the seq
// fence's rules about who may fence a node (Ledger::observe_peer_hello), on real data dirs of an
// enrolled chain. Each test names the deliberate bug it catches (issue 11, items 2 and 14-16): a
// skipped signature check in a many-op batch, the signature fast path trusting an op's own hash
// field, badly signed "forks" kept as evidence or blamed on their origin, the HLC not observing
// received ops, and claims that fence a node without proof.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/node/backup.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "test_util.h"

namespace outpost::node {
namespace {

constexpr std::uint64_t kNowMs = 1'790'000'000'000;  // 2026-09-21
constexpr std::size_t kManyOps = 10;                 // a batch well past "a few ops"

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    hq_ = tmp_.file("hq");
    store_ = tmp_.file("store");
    ASSERT_TRUE(hq_init(hq_, "hq-central", kHqValidDaysDefault, clock_).is_ok());
    ASSERT_TRUE(Ledger::init(store_, InitOptions{"store-1", "store"}).is_ok());
    auto req = make_enroll_request(store_);
    ASSERT_TRUE(req.is_ok()) << req.status().to_string();
    auto file = hq_enroll(hq_, "store-1", sync::NodeRole::kStore, *req, 30, clock_);
    ASSERT_TRUE(file.is_ok()) << file.status().to_string();
    ASSERT_TRUE(install_enrollment(store_, *file).is_ok());
    sender_.fill(0x77);  // the authenticated peer that relays the batch (not its origin)
  }

  std::unique_ptr<Ledger> open(const std::string& dir, sync::Clock& clock) {
    auto l = Ledger::open(dir, clock);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    return l.is_ok() ? std::move(l).value() : nullptr;
  }
  std::unique_ptr<Ledger> open(const std::string& dir) { return open(dir, clock_); }

  // Makes `n` ops at `ledger` (a member enrollment, then top-ups) and returns its whole log.
  static std::vector<sync::SignedOp> make_ops(Ledger& ledger, std::size_t n,
                                              const std::string& card = "40000001") {
    EnrollRequest e{new_request_id(), card, "Ann", "", ""};
    EXPECT_TRUE(ledger.enroll(e).is_ok());
    auto member = ledger.resolve_member(card);
    for (std::size_t i = 1; i < n; ++i)
      EXPECT_TRUE(ledger.topup(new_request_id(), *member, 100, "").is_ok());
    auto ops = ledger.store().ops_of_origin(ledger.node_id(), 1, 1000);
    EXPECT_TRUE(ops.is_ok());
    return *ops;
  }

  static std::uint64_t head_of(Ledger& l, const sync::NodeId& origin) {
    return l.store().head(origin)->seq;
  }
  static std::vector<storage::Alert> alerts(Ledger& l) { return *l.store().recent_alerts(100); }
  static std::size_t count_alerts(Ledger& l, const std::string& kind) {
    auto all = alerts(l);
    return static_cast<std::size_t>(std::count_if(
        all.begin(), all.end(), [&](const storage::Alert& a) { return a.kind == kind; }));
  }
  static bool fenced(Ledger& l) {
    return (*schema::json_of(l.fence_state(), schema::fence_json))["fenced"].get<bool>();
  }

  test::TempDir tmp_{"outpost-ingest"};
  sync::ManualEnv clock_{kNowMs};
  std::string hq_, store_;
  sync::NodeId sender_{};
};

// Bug caught: the signature check skipped for batches of more than a few ops.
TEST_F(IngestTest,
       BadSignatureInTheMiddleOrAtTheEndOfAManyOpBatchRefusesItWholeAndBlamesTheSender) {
  auto store = open(store_);
  const auto ops = make_ops(*store, kManyOps);
  auto hq = open(hq_);
  for (std::size_t bad_at : {kManyOps / 2, kManyOps - 1}) {
    SCOPED_TRACE("bad signature at position " + std::to_string(bad_at));
    auto batch = ops;
    batch[bad_at].sig[5] ^= 0x01;
    const std::size_t alerts_before = count_alerts(*hq, "bad_signature");
    auto r = hq->ingest(batch, sender_);
    ASSERT_FALSE(r.is_ok()) << "a batch with a bad signature was applied";
    EXPECT_NE(r.status().message().find("bad signature on op " +
                                        sync::op_ref_string(store->node_id(), bad_at + 1)),
              std::string::npos)
        << r.status().to_string();
    EXPECT_EQ(head_of(*hq, store->node_id()), 0u) << "ops before the bad one were applied";
    EXPECT_EQ(hq->resolve_member("40000001").status().code(), Code::kNotFound);
    ASSERT_EQ(count_alerts(*hq, "bad_signature"), alerts_before + 1);
    EXPECT_EQ(alerts(*hq).front().kind, "bad_signature");
    EXPECT_EQ(alerts(*hq).front().node, sync::id_hex(sender_)) << "the alert must name the sender";
  }
  auto good = hq->ingest(ops, sender_);  // the same batch, untouched: it was only the one op
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_EQ(good->applied, kManyOps);
}

// Bug caught: the fast path (signatures checked ahead on the verifier thread) trusting the op's
// own `hash` field: an op whose signature was altered after its hash was taken would pass as the
// good op the verifier checked.
TEST_F(IngestTest, PreverifiedBatchStillRefusesAnOpWhoseSignatureDoesNotMatchItsHash) {
  auto store = open(store_);
  const auto ops = make_ops(*store, kManyOps);
  auto hq = open(hq_);
  auto verified = std::make_shared<VerifiedSignatures>();
  hq->set_verified_signatures(verified);
  for (const auto& op : ops) verified->add(op.hash, store->public_key());  // all good as checked
  for (std::size_t bad_at : {kManyOps / 2, kManyOps - 1}) {
    SCOPED_TRACE("bad signature at position " + std::to_string(bad_at));
    auto batch = ops;
    batch[bad_at].sig[7] ^= 0x01;  // the hash field still names the good op
    ASSERT_FALSE(hq->ingest(batch, sender_).is_ok()) << "the fast path let a bad signature through";
    EXPECT_EQ(head_of(*hq, store->node_id()), 0u);
    for (const auto& op : ops)
      verified->add(op.hash, store->public_key());  // refill what was taken
  }
  ASSERT_TRUE(hq->ingest(ops, sender_).is_ok());
  EXPECT_EQ(head_of(*hq, store->node_id()), kManyOps);
}

// Bug caught: a different op at a held (origin, seq) kept as equivocation evidence without its
// signature checked, so that any peer could frame an honest store.
TEST_F(IngestTest, BadlySignedForkIsABadSignatureOfTheSenderNeverEvidenceAgainstTheOrigin) {
  auto store = open(store_);
  const auto ops = make_ops(*store, 3);
  auto hq = open(hq_);
  ASSERT_TRUE(hq->ingest(ops, store->node_id()).is_ok());
  auto key = crypto::read_signing_key(store_ + "/node.key");
  ASSERT_TRUE(key.is_ok());
  std::array<std::uint8_t, 32> seed{};
  seed.fill(0x42);
  auto forger = crypto::SigningKey::from_seed(seed);
  ASSERT_TRUE(forger.is_ok());

  sync::Op other = ops[1].op;  // a second seq 2
  other.amount += 1;
  sync::Op successor = ops[2].op;  // a seq 4 on top of that second seq 2
  successor.seq = 4;
  successor.prev = sync::sign_op(other, *key).hash;
  sync::SignedOp reused_sig = sync::sign_op(other, *key);
  reused_sig.sig = ops[1].sig;  // the honest op's signature on the altered bytes
  reused_sig.hash = sync::op_hash(reused_sig.signed_bytes, reused_sig.sig);
  const std::vector<sync::SignedOp> forgeries = {sync::sign_op(other, *forger), reused_sig,
                                                 sync::sign_op(successor, *forger)};
  for (std::size_t i = 0; i < forgeries.size(); ++i) {
    SCOPED_TRACE("forgery " + std::to_string(i));
    auto r = hq->ingest({forgeries[i]}, sender_);
    ASSERT_FALSE(r.is_ok()) << "a badly signed fork was accepted";
    EXPECT_EQ(*hq->store().equivocation_count(), 0u)
        << "a forgery was kept as evidence against the origin";
    EXPECT_EQ(count_alerts(*hq, "equivocation"), 0u);
    EXPECT_EQ(alerts(*hq).front().kind, "bad_signature");
    EXPECT_EQ(alerts(*hq).front().node, sync::id_hex(sender_))
        << "blamed on the origin, not the sender";
  }
  EXPECT_EQ(head_of(*hq, store->node_id()), 3u);

  // The control: the same fork, signed by the origin itself, is evidence against the origin.
  auto real = hq->ingest({sync::sign_op(other, *key)}, sender_);
  ASSERT_TRUE(real.is_ok()) << real.status().to_string();
  EXPECT_EQ(real->equivocations.size(), 1u);
  EXPECT_EQ(*hq->store().equivocation_count(), 1u);
  EXPECT_EQ(alerts(*hq).front().kind, "equivocation");
  EXPECT_EQ(alerts(*hq).front().node, sync::id_hex(store->node_id()));
}

// Bug caught: ingest not letting the HLC observe received ops. A node whose clock is behind the
// peer's would then stamp its next op before an op it already holds (e.g. a spend before the
// move that funded it).
TEST_F(IngestTest, NextLocalOpIsStampedAfterAPeerOpStampedAheadOfTheLocalClock) {
  sync::ManualEnv ahead(kNowMs + 3'600'000);  // the store's clock runs an hour ahead
  auto store = open(store_, ahead);
  const auto ops = make_ops(*store, 3);
  sync::Hlc newest{};
  for (const auto& op : ops) newest = std::max(newest, op.op.hlc);
  ASSERT_GT(newest.wall_ms, clock_.now_ms());
  auto hq = open(hq_);
  ASSERT_TRUE(hq->ingest(ops, store->node_id()).is_ok());
  ASSERT_TRUE(hq->enroll(EnrollRequest{new_request_id(), "40000009", "Hal", "", ""}).is_ok());
  auto last_local = [&] {
    return hq->store().ops_of_origin(hq->node_id(), 1, 1000)->back().op.hlc;
  };
  EXPECT_GT(last_local(), newest) << "local op " << last_local().to_string()
                                  << " sorts before the ingested " << newest.to_string();
  // The observation is durable: after a restart the next op still sorts after it.
  hq.reset();
  hq = open(hq_);
  ASSERT_TRUE(hq->enroll(EnrollRequest{new_request_id(), "40000010", "Ida", "", ""}).is_ok());
  EXPECT_GT(last_local(), newest);
}

// --- who may fence a node (issue 11, item 2) ---

// Bug caught: HQ trusting any store's HELLO claim about HQ's own log; a rogue store could then
// stop HQ (and with it the rights broker) for good.
TEST_F(IngestTest, AStoresClaimAboutHqsOwnLogDoesNotFenceHqOnlyRaisesAnAlert) {
  auto hq = open(hq_);
  ASSERT_TRUE(hq->observe_peer_hello("store-1", /*peer_is_hq=*/false, 1'000'000).is_ok());
  EXPECT_FALSE(fenced(*hq)) << (*schema::json_of(hq->fence_state(), schema::fence_json)).dump();
  EXPECT_EQ(alerts(*hq).front().kind, "own_seq_behind");
  EXPECT_TRUE(hq->enroll(EnrollRequest{new_request_id(), "40000009", "Hal", "", ""}).is_ok());
  hq.reset();
  EXPECT_FALSE(fenced(*open(hq_))) << "the claim fenced HQ after a restart";
}

// A claim is proven by the ops themselves: an op of our own origin, signed with our own key,
// above the held head fences until the ops up to it are back; a forged one proves nothing.
TEST_F(IngestTest, OwnOpCorrectlySignedBeyondAGapFencesUntilTheOpsUpToItAreBack) {
  const std::string backup = tmp_.file("store.backup");
  std::vector<sync::SignedOp> held_by_peers;
  {
    auto store = open(store_);
    make_ops(*store, 3);
    ASSERT_TRUE(backup_data_dir(store_, backup).is_ok());
    held_by_peers = make_ops(*store, 2, "40000002");  // seq 4 and 5, then the disk is lost
    ASSERT_EQ(held_by_peers.size(), 5u);
  }
  ASSERT_TRUE(restore_data_dir(store_, backup, clock_).is_ok());
  auto store = open(store_);
  ASSERT_TRUE(schema::json_of(store->release_fence(), schema::fence_json)
                  .is_ok());  // as if the copy had been put back by hand
  ASSERT_FALSE(fenced(*store));

  std::array<std::uint8_t, 32> seed{};
  seed.fill(0x42);
  auto forger = crypto::SigningKey::from_seed(seed);
  sync::Op far = held_by_peers[4].op;
  far.seq = 9;
  ASSERT_FALSE(store->ingest({sync::sign_op(far, *forger)}, sender_).is_ok());
  EXPECT_FALSE(fenced(*store)) << "a forged op of our own origin fenced us";

  ASSERT_FALSE(store->ingest({held_by_peers[4]}, sender_).is_ok())
      << "seq 5 without seq 4 is a gap";
  EXPECT_TRUE(fenced(*store)) << "our own correctly signed seq 5 did not fence us";
  EXPECT_EQ((*schema::json_of(store->fence_state(), schema::fence_json))["own_seq_floor"], 5);
  auto member = store->resolve_member("40000001");
  EXPECT_EQ(store->topup(new_request_id(), *member, 100, "").status().code(), Code::kUnavailable);

  ASSERT_TRUE(store->ingest({held_by_peers[3], held_by_peers[4]}, sender_).is_ok());
  EXPECT_FALSE(fenced(*store));
  auto next = store->topup(new_request_id(), *member, 100, "");
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(schema::outcome_json(*next)["op"], sync::op_ref_string(store->node_id(), 6))
      << "a seq was reused";
}

// HQ restored with `outpost restore` waits until a peer's claim is met (the ops are back), so a
// false claim neither ends the wait (then HQ would reuse seqs) nor holds it (another peer ends it).
TEST_F(IngestTest, RestoredHqWaitsUntilAClaimIsMetAndAFalseClaimNeitherEndsNorHoldsTheWait) {
  const std::string backup = tmp_.file("hq.backup");
  std::vector<sync::SignedOp> held_by_store;
  {
    auto hq = open(hq_);
    make_ops(*hq, 1);
    ASSERT_TRUE(backup_data_dir(hq_, backup).is_ok());
    held_by_store = make_ops(*hq, 2, "40000002");  // seq 2 and 3
    ASSERT_EQ(held_by_store.size(), 3u);
  }
  ASSERT_TRUE(restore_data_dir(hq_, backup, clock_).is_ok());
  auto hq = open(hq_);
  ASSERT_TRUE(fenced(*hq));
  ASSERT_TRUE(hq->observe_peer_hello("rogue", false, 1'000'000).is_ok());
  EXPECT_TRUE(fenced(*hq)) << "a claim HQ cannot check ended the wait";
  ASSERT_TRUE(hq->observe_peer_hello("store-1", false, 3).is_ok());
  EXPECT_TRUE(fenced(*hq)) << "HQ may sign before it has seq 2 and 3 back";
  ASSERT_TRUE(hq->ingest({held_by_store[1], held_by_store[2]}, sender_).is_ok());
  EXPECT_FALSE(fenced(*hq)) << (*schema::json_of(hq->fence_state(), schema::fence_json)).dump();
  auto next = hq->enroll(EnrollRequest{new_request_id(), "40000009", "Hal", "", ""});
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(schema::outcome_json(*next)["op"], sync::op_ref_string(hq->node_id(), 4));
}

TEST_F(IngestTest, RestoredHqEndsTheWaitOnAPeerThatHoldsNoMoreOfItsOps) {
  const std::string backup = tmp_.file("hq.backup");
  {
    auto hq = open(hq_);
    make_ops(*hq, 2);
    ASSERT_TRUE(backup_data_dir(hq_, backup).is_ok());
  }
  ASSERT_TRUE(restore_data_dir(hq_, backup, clock_).is_ok());
  auto hq = open(hq_);
  ASSERT_TRUE(hq->observe_peer_hello("rogue", false, 1'000'000).is_ok());
  ASSERT_TRUE(fenced(*hq));
  ASSERT_TRUE(hq->observe_peer_hello("store-1", false, 2).is_ok());
  EXPECT_FALSE(fenced(*hq)) << (*schema::json_of(hq->fence_state(), schema::fence_json)).dump();
}

}  // namespace
}  // namespace outpost::node
