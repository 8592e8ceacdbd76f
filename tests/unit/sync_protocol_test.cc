// The sync protocol (sync/protocol.h) and the pure session state machine (sync/session.h),
// without sockets: golden bytes pin every message encoding of docs/sync-protocol.md, the decoder
// refuses every malformed input, and the session follows the protocol's rules (HELLO first,
// flow-control window, batch bounds, all-or-nothing ingest answered by ERROR, documents offered
// once per version, rights replies after the move op). Test names say what breaks.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/protocol.h"
#include "outpost/sync/session.h"

namespace outpost::sync {
namespace {

NodeId id_of(std::uint8_t b) {
  NodeId id{};
  id.fill(b);
  return id;
}

crypto::SigningKey key_of(std::uint8_t b) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(b);
  return std::move(crypto::SigningKey::from_seed(seed)).value();
}

// A valid chain of `n` top-ups by `origin`.
std::vector<SignedOp> chain_of(const NodeId& origin, const crypto::SigningKey& key, std::size_t n) {
  std::vector<SignedOp> out;
  Hash32 prev{};
  for (std::size_t i = 1; i <= n; ++i) {
    Op op;
    op.kind = OpKind::kTopup;
    op.origin = origin;
    op.seq = i;
    op.prev = prev;
    op.hlc = Hlc{1'790'000'000'000 + i, 0};
    op.member = id_of(0x33);
    op.account = Account::kWallet;
    op.amount = 100;
    out.push_back(sign_op(op, key));
    prev = out.back().hash;
  }
  return out;
}

std::string hex(const Bytes& b) { return crypto::to_hex(b); }

// --- golden bytes ------------------------------------------------------------------------------

TEST(SyncProtocolGolden, HelloCarriesIdsVersionsClockVectorAndItsOptionalTail) {
  HelloMsg h;
  h.node = id_of(0x11);
  h.roster_version = 3;
  h.rules_version = 2;
  h.wall_ms = 0x0102030405060708ULL;
  h.vv = {{id_of(0x22), 5}};
  h.software_version = "0.1.0";
  h.schema_version = 3;
  h.tree_heads_version = 9;
  h.features = kFeatureAlerts;
  EXPECT_EQ(hex(encode_message(h)),
            "0101"                              // type HELLO, protocol version 1
            "11111111111111111111111111111111"  // node id
            "0300000000000000"                  // roster version
            "0200000000000000"                  // rules version
            "0807060504030201"                  // wall clock ms
            "01000000"                          // vv count
            "22222222222222222222222222222222" "0500000000000000"
            "0500" "302e312e30"                 // software version "0.1.0"
            "03000000"                          // schema version
            "0900000000000000"                  // tree head set version
            "01000000");                        // features: ALERTS
}

TEST(SyncProtocolGolden, HelloOfAnEarlierBuildWithoutTheReportedVersionsStillDecodes) {
  const Bytes older = *crypto::from_hex(
      "0101" "11111111111111111111111111111111" "0300000000000000" "0200000000000000"
      "0807060504030201" "00000000");
  auto m = decode_message(older);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  const auto& h = std::get<HelloMsg>(*m);
  EXPECT_EQ(h.roster_version, 3u);
  EXPECT_TRUE(h.software_version.empty());
  EXPECT_EQ(h.schema_version, 0u);
  // Half of the optional part is malformed, not optional.
  Bytes half = older;
  half.push_back(5);
  EXPECT_EQ(decode_message(half).status().code(), Code::kCorruption);
  // A HELLO that ends after the tree head set version (before features) announces none.
  HelloMsg with_features;
  with_features.node = id_of(0x11);
  with_features.features = kFeatureAlerts;
  Bytes no_features = encode_message(with_features);
  no_features.resize(no_features.size() - 4);
  auto nf = decode_message(no_features);
  ASSERT_TRUE(nf.is_ok()) << nf.status().to_string();
  EXPECT_EQ(std::get<HelloMsg>(*nf).features, 0u);
}

AlertRecord alert_of(std::uint64_t id, std::string kind = "refused_spend", std::string message = "ok") {
  AlertRecord a;
  a.id = id;
  a.at_ms = 1'790'000'000'000 + id;
  a.kind = std::move(kind);
  a.message = std::move(message);
  return a;
}

TEST(SyncProtocolGolden, AlertsCarryIdClockKindAboutAndMessageAndTheAckItsCursor) {
  AlertRecord a = alert_of(7, "refused_spend", "no");
  a.at_ms = 0x0102030405060708ULL;
  a.about = id_of(0x44);
  AlertRecord b = alert_of(9, "clock_skew", "");
  b.at_ms = 1;
  EXPECT_EQ(hex(encode_message(AlertsMsg{{a, b}})),
            "0801"                                      // type ALERTS, protocol version 1
            "02000000"                                  // count
            "0700000000000000" "0807060504030201"       // id, at_ms
            "0d00" "726566757365645f7370656e64"         // kind "refused_spend"
            "01" "44444444444444444444444444444444"     // about: present, node id
            "0200" "6e6f"                               // message "no"
            "0900000000000000" "0100000000000000"
            "0a00" "636c6f636b5f736b6577"               // kind "clock_skew"
            "00"                                        // about: none
            "0000");                                    // message ""
  EXPECT_EQ(hex(encode_message(AlertsAckMsg{5})), "0901" "0500000000000000");
  auto back = decode_message(encode_message(AlertsMsg{{a, b}}));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  const auto& m = std::get<AlertsMsg>(*back);
  ASSERT_EQ(m.alerts.size(), 2u);
  EXPECT_EQ(m.alerts[0].about, id_of(0x44));
  EXPECT_FALSE(m.alerts[1].about.has_value());
  EXPECT_EQ(m.alerts[1].kind, "clock_skew");
}

TEST(SyncProtocolDecode, AlertsOverAnyBoundOrWithUnprintableTextAreRefused) {
  auto refused = [](const AlertsMsg& m) { return decode_message(encode_message(m)).status().code() == Code::kCorruption; };
  EXPECT_FALSE(refused(AlertsMsg{{alert_of(1)}}));
  EXPECT_TRUE(refused(AlertsMsg{})) << "an empty ALERTS";
  std::vector<AlertRecord> many;
  for (std::uint64_t i = 1; i <= limits::kSyncAlertsPerMessageMax + 1; ++i) many.push_back(alert_of(i));
  EXPECT_TRUE(refused(AlertsMsg{many})) << "65 alerts in one message";
  many.pop_back();
  EXPECT_FALSE(refused(AlertsMsg{many}));
  EXPECT_TRUE(refused(AlertsMsg{{alert_of(2), alert_of(2)}})) << "ids not strictly ascending";
  EXPECT_TRUE(refused(AlertsMsg{{alert_of(3), alert_of(2)}})) << "ids not strictly ascending";
  EXPECT_TRUE(refused(AlertsMsg{{alert_of(0)}})) << "id 0";
  EXPECT_TRUE(refused(AlertsMsg{{alert_of(limits::kAlertIdMax + 1)}})) << "id beyond int64";
  for (const char* kind : {"", "Refused", "refused spend", "refused-spend", "k\n"}) {
    EXPECT_TRUE(refused(AlertsMsg{{alert_of(1, kind)}})) << "kind '" << kind << "'";
  }
  for (const std::string& text : {std::string("a\x1b[2Jb"), std::string("line\nbreak"), std::string("\xff"),
                                  std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xc2\x85")}) {
    EXPECT_TRUE(refused(AlertsMsg{{alert_of(1, "refused_spend", text)}})) << "message " << hex(Bytes(text.begin(), text.end()));
  }
  EXPECT_FALSE(refused(AlertsMsg{{alert_of(1, "refused_spend", "M\xc3\xbcller \xe2\x82\xac")}})) << "UTF-8 is fine";
  // Over-long text cannot be encoded (the encoder cuts); forge it.
  ByteWriter w;
  w.u8(8);
  w.u8(1);
  w.u32(1);
  w.u64(1);
  w.u64(1);
  w.str16("x");
  w.u8(0);
  w.str16(std::string(limits::kAlertMessageBytesMax + 1, 'm'));
  EXPECT_EQ(decode_message(w.take()).status().code(), Code::kCorruption);
  Bytes about = encode_message(AlertsMsg{{alert_of(1, "x", "")}});
  about[2 + 4 + 16 + 2 + 1] = 2;  // the about flag
  EXPECT_EQ(decode_message(about).status().code(), Code::kCorruption);
  EXPECT_EQ(decode_message(encode_message(AlertsAckMsg{limits::kAlertIdMax + 1})).status().code(), Code::kCorruption);
}

TEST(SyncProtocolDecode, CleanAlertTextKeepsPrintableUtf8AndCutsOnACharacter) {
  EXPECT_EQ(clean_alert_text("a\x1b[2Jb\xff", 100), "a?[2Jb?");
  EXPECT_EQ(clean_alert_text("M\xc3\xbcller", 2), "M");  // never half of the two-byte character
  EXPECT_EQ(clean_alert_text(std::string(600, 'x'), limits::kAlertMessageBytesMax).size(), limits::kAlertMessageBytesMax);
  AlertRecord a = alert_of(1, "refused_spend", clean_alert_text("bad\x01 \xc0\xaf text", 512));
  EXPECT_TRUE(decode_message(encode_message(AlertsMsg{{a}})).is_ok());
}

TEST(SyncProtocolGolden, AckBlobRightsAndErrorMessages) {
  EXPECT_EQ(hex(encode_message(AckMsg{{{id_of(0x22), 7}}})),
            "0301" "01000000" "22222222222222222222222222222222" "0700000000000000");
  BlobMsg b;
  b.kind = BlobKind::kRules;
  b.version = 9;
  b.body = {0xaa, 0xbb};
  b.sig = Bytes(64, 0xcc);
  EXPECT_EQ(hex(encode_message(b)), "0401" "02" "0900000000000000" "02000000" "aabb" "40000000" + std::string(128, 'c'));
  EXPECT_EQ(hex(encode_message(RightsRequestMsg{4, id_of(0x33), Account::kPoints, 250})),
            "0501" "0400000000000000" "33333333333333333333333333333333" "01" "fa00000000000000");
  EXPECT_EQ(hex(encode_message(RightsReplyMsg{4, 250, "ok"})), "0601" "0400000000000000" "fa00000000000000" "0200" "6f6b");
  EXPECT_EQ(hex(encode_message(ErrorMsg{4, "no"})), "0701" "0400" "0200" "6e6f");
}

TEST(SyncProtocolGolden, OpsIsACountThenEachOpInItsFileFraming) {
  const auto ops = chain_of(id_of(0xa1), key_of(1), 2);
  const Bytes msg = encode_message(OpsMsg{ops});
  ByteWriter expect;
  expect.u8(2);
  expect.u8(1);
  expect.u32(2);
  for (const auto& op : ops) write_signed_op(expect, op);
  EXPECT_EQ(msg, expect.take());
  auto back = decode_message(msg);
  ASSERT_TRUE(back.is_ok());
  ASSERT_EQ(std::get<OpsMsg>(*back).ops.size(), 2u);
  EXPECT_EQ(std::get<OpsMsg>(*back).ops[1].hash, ops[1].hash);
}

// --- decoder refusals ----------------------------------------------------------------------------

TEST(SyncProtocolDecode, EveryTruncationAndTrailingByteIsRefused) {
  HelloMsg h;
  h.node = id_of(1);
  h.vv = {{id_of(2), 1}};
  h.software_version = "0.1.0";
  const std::vector<Message> all = {h, OpsMsg{chain_of(id_of(0xa1), key_of(1), 1)}, AckMsg{{{id_of(2), 1}}},
                                    BlobMsg{BlobKind::kRoster, 1, {1, 2, 3}, Bytes(64, 7)},
                                    RightsRequestMsg{1, id_of(3), Account::kWallet, 5}, RightsReplyMsg{1, 0, "none"},
                                    ErrorMsg{1, "bye"}, AlertsMsg{{alert_of(1)}}, AlertsAckMsg{3}};
  for (const auto& m : all) {
    const Bytes good = encode_message(m);
    ASSERT_TRUE(decode_message(good).is_ok()) << message_name(m);
    for (std::size_t n = 0; n < good.size(); ++n) {
      // A HELLO cut exactly after its vv is an earlier build's HELLO, which is valid.
      if (std::holds_alternative<HelloMsg>(m) && n == good.size() - 4 - 2 - 5 - 4 - 8) continue;
      // So is one cut before its features.
      if (std::holds_alternative<HelloMsg>(m) && n == good.size() - 4) continue;
      Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_FALSE(decode_message(cut).is_ok()) << message_name(m) << " cut to " << n << " bytes";
    }
    Bytes trailing = good;
    trailing.push_back(0);
    EXPECT_EQ(decode_message(trailing).status().code(), Code::kCorruption) << message_name(m);
  }
}

TEST(SyncProtocolDecode, UnknownTypeVersionAndEveryOverBoundCountAreRefused) {
  EXPECT_EQ(decode_message(Bytes{99, 1}).status().code(), Code::kUnsupported);
  EXPECT_EQ(decode_message(Bytes{1, 2}).status().code(), Code::kUnsupported);
  EXPECT_EQ(decode_message(Bytes{}).status().code(), Code::kCorruption);
  // 257 ops.
  const auto one = chain_of(id_of(0xa1), key_of(1), 1);
  EXPECT_EQ(decode_message(encode_message(OpsMsg{std::vector<SignedOp>(257, one[0])})).status().code(),
            Code::kCorruption);
  // A version vector naming one origin twice, or announcing more than kOriginsMax.
  Bytes dup = *crypto::from_hex("0301" "02000000" "22222222222222222222222222222222" "0100000000000000"
                                "22222222222222222222222222222222" "0200000000000000");
  EXPECT_EQ(decode_message(dup).status().code(), Code::kCorruption);
  ByteWriter big;
  big.u8(3);
  big.u8(1);
  big.u32(static_cast<std::uint32_t>(limits::kOriginsMax + 1));
  EXPECT_EQ(decode_message(big.take()).status().code(), Code::kCorruption);
  // A blob of an unknown kind, a signature that is not 64 bytes, a rights request for nothing.
  Bytes kind = encode_message(BlobMsg{BlobKind::kRoster, 1, {1}, Bytes(64, 0)});
  kind[2] = 4;
  EXPECT_EQ(decode_message(kind).status().code(), Code::kCorruption);
  EXPECT_EQ(decode_message(encode_message(BlobMsg{BlobKind::kRoster, 1, {1}, Bytes(65, 0)})).status().code(),
            Code::kCorruption);
  EXPECT_EQ(decode_message(encode_message(RightsRequestMsg{1, id_of(3), Account::kWallet, 0})).status().code(),
            Code::kCorruption);
  // A software version longer than 32 bytes.
  HelloMsg h;
  h.node = id_of(1);
  Bytes long_version = encode_message(h);
  long_version.resize(long_version.size() - 2 - 4 - 8 - 4);
  ByteWriter w;
  w.str16(std::string(33, 'v'));
  w.u32(1);
  w.u64(1);
  for (auto b : w.take()) long_version.push_back(b);
  EXPECT_EQ(decode_message(long_version).status().code(), Code::kCorruption);
}

// --- the session ---------------------------------------------------------------------------------

// An in-memory node for the session: logs per origin, ingest that accepts only the next seq.
class MemStore : public SyncStore {
 public:
  explicit MemStore(NodeId self) : self_(self) {}
  NodeId self() const override { return self_; }
  Result<VersionVector> version_vector() override {
    VersionVector vv;
    for (const auto& [o, log] : logs) {
      if (!log.empty()) vv[o] = log.size();
    }
    return vv;
  }
  Result<std::vector<SignedOp>> ops_from(const NodeId& origin, std::uint64_t from, std::size_t max) override {
    std::vector<SignedOp> out;
    auto& log = logs[origin];
    for (std::uint64_t s = from; s <= log.size() && out.size() < max; ++s) out.push_back(log[s - 1]);
    return out;
  }
  Result<IngestReport> ingest(const std::vector<SignedOp>& ops) override {
    ++ingest_calls;
    if (refuse_next) return Status::corruption("refused by the test");
    auto copy = logs;
    IngestReport r;
    for (const auto& op : ops) {
      auto& log = copy[op.op.origin];
      if (op.op.seq <= log.size()) {
        ++r.duplicates;
        continue;
      }
      if (op.op.seq != log.size() + 1) return Status::corruption("gap");
      log.push_back(op);
      ++r.applied;
    }
    logs = std::move(copy);
    return r;
  }
  Status on_peer_hello(const HelloMsg& h) override {
    hellos.push_back(h);
    return Status::ok();
  }
  std::uint64_t blob_version(BlobKind k) override { return k == BlobKind::kRoster ? roster_version : 0; }
  std::optional<BlobMsg> blob(BlobKind k) override {
    if (k != BlobKind::kRoster || roster_version == 0) return std::nullopt;
    return BlobMsg{BlobKind::kRoster, roster_version, {1, 2}, Bytes(64, 9)};
  }
  Status offer_blob(const BlobMsg& b) override {
    offered.push_back(b.version);
    return Status::ok();
  }
  Result<std::uint64_t> grant_rights(const NodeId&, const MemberId&, Account, std::uint64_t amount) override {
    // The "move op" the grant makes: a new op of our own origin the peer lacks.
    auto key = key_of(0x5e);
    auto next = chain_of(self_, key, logs[self_].size() + 1);
    logs[self_].push_back(next.back());
    return amount;
  }

  // Alerts: as HQ this store collects them (the cursor it answers), as a store it sends its own.
  Result<std::optional<std::uint64_t>> alerts_wanted_from(const NodeId& peer) override {
    if (!collects) return std::optional<std::uint64_t>{};
    auto& held = collected[peer];
    return std::optional<std::uint64_t>{held.empty() ? 0 : held.back().id};
  }
  Result<std::uint64_t> accept_alerts(const NodeId& peer, const std::vector<AlertRecord>& alerts) override {
    auto& held = collected[peer];
    for (const auto& a : alerts) {
      if (held.empty() || a.id > held.back().id) held.push_back(a);
    }
    return held.empty() ? 0 : held.back().id;
  }
  Result<std::vector<AlertRecord>> alerts_for(const NodeId&, std::uint64_t after, std::size_t max) override {
    ++alerts_for_calls;
    std::vector<AlertRecord> out;
    for (const auto& a : own_alerts) {
      if (a.id > after && out.size() < max) out.push_back(a);
    }
    return out;
  }

  NodeId self_;
  bool collects = false;
  std::map<NodeId, std::vector<AlertRecord>> collected;
  std::vector<AlertRecord> own_alerts;
  int alerts_for_calls = 0;
  std::map<NodeId, std::vector<SignedOp>> logs;
  bool refuse_next = false;
  int ingest_calls = 0;
  std::uint64_t roster_version = 0;
  std::vector<std::uint64_t> offered;
  std::vector<HelloMsg> hellos;
};

std::vector<Message> decoded(const SessionOutput& out) {
  std::vector<Message> v;
  for (const auto& b : out.send) v.push_back(*decode_message(b));
  return v;
}

template <typename T>
std::size_t count_of(const SessionOutput& out) {
  std::size_t n = 0;
  for (const auto& m : decoded(out)) n += std::holds_alternative<T>(m) ? 1 : 0;
  return n;
}

Bytes hello_from(const NodeId& node, VersionVector vv = {}, std::uint32_t features = 0) {
  HelloMsg h;
  h.node = node;
  h.vv = std::move(vv);
  h.features = features;
  return encode_message(h);
}

TEST(SyncSessionTest, AnythingBeforeHelloASecondHelloOrOurOwnIdIsAProtocolError) {
  MemStore store(id_of(1));
  {
    SyncSession s(store);
    auto out = s.on_message(encode_message(AckMsg{}), 0);
    EXPECT_TRUE(out.close);
    ASSERT_EQ(count_of<ErrorMsg>(out), 1u);
    EXPECT_NE(out.close_reason.find("before HELLO"), std::string::npos) << out.close_reason;
    EXPECT_TRUE(s.on_message(hello_from(id_of(2)), 0).send.empty()) << "a failed session answers nothing more";
  }
  {
    SyncSession s(store);
    EXPECT_FALSE(s.on_message(hello_from(id_of(2)), 0).close);
    auto out = s.on_message(hello_from(id_of(2)), 0);
    EXPECT_TRUE(out.close);
    EXPECT_NE(out.close_reason.find("second HELLO"), std::string::npos);
  }
  {
    SyncSession s(store);
    auto out = s.on_message(hello_from(id_of(1)), 0);
    EXPECT_TRUE(out.close);
    EXPECT_NE(out.close_reason.find("own node id"), std::string::npos);
  }
  {
    SyncSession s(store);
    auto out = s.on_message(Bytes{1, 1, 0}, 0);  // a HELLO cut short
    EXPECT_TRUE(out.close);
    EXPECT_NE(out.close_reason.find("bad message"), std::string::npos);
  }
}

// Issue 11 item 1: a HELLO is only a claim; a session bound to the node its link authenticated
// refuses a HELLO naming any other node, before the store sees it (no fence, no peer state).
TEST(SyncSessionTest, BoundSessionRefusesAHelloClaimingAnotherNodeBeforeTheStoreSeesIt) {
  MemStore store(id_of(1));
  store.logs[id_of(1)] = chain_of(id_of(1), key_of(1), 2);
  SyncSession s(store, id_of(2));
  auto out = s.on_message(hello_from(id_of(3), {{id_of(1), 1'000'000}}), 0);
  EXPECT_TRUE(out.close);
  ASSERT_EQ(count_of<ErrorMsg>(out), 1u);
  EXPECT_EQ(count_of<OpsMsg>(out), 0u) << "ops sent to a peer whose HELLO was refused";
  const std::string want = "claims node " + id_hex(id_of(3)) + " but the link authenticated node " + id_hex(id_of(2));
  EXPECT_NE(out.close_reason.find(want), std::string::npos) << out.close_reason;
  EXPECT_NE(std::get<ErrorMsg>(decoded(out)[0]).message.find(want), std::string::npos);
  EXPECT_TRUE(store.hellos.empty()) << "the store acted on a claimed identity";
  EXPECT_FALSE(s.established());
  // The authenticated node itself is welcome.
  SyncSession ok(store, id_of(2));
  EXPECT_FALSE(ok.on_message(hello_from(id_of(2)), 0).close);
  EXPECT_EQ(ok.peer(), id_of(2));
  EXPECT_EQ(store.hellos.size(), 1u);
}

TEST(SyncSessionTest, StartSendsHelloWithOurVectorAndReportedVersions) {
  MemStore store(id_of(1));
  store.logs[id_of(1)] = chain_of(id_of(1), key_of(1), 3);
  SyncSession s(store);
  auto out = s.start(42);
  auto msgs = decoded(out);
  ASSERT_EQ(msgs.size(), 1u);
  const auto& h = std::get<HelloMsg>(msgs[0]);
  EXPECT_EQ(h.node, id_of(1));
  EXPECT_EQ(h.wall_ms, 42u);
  EXPECT_EQ(h.vv.at(id_of(1)), 3u);
}

TEST(SyncSessionTest, PeerHelloIsSeenByTheStoreBeforeAnyOpIsSent) {
  MemStore store(id_of(1));
  store.logs[id_of(1)] = chain_of(id_of(1), key_of(1), 2);
  SyncSession s(store);
  auto out = s.on_message(hello_from(id_of(2), {{id_of(1), 1}}), 7);
  ASSERT_EQ(store.hellos.size(), 1u);
  EXPECT_EQ(store.hellos[0].vv.at(id_of(1)), 1u);
  // Only what the peer lacks: seq 2.
  auto msgs = decoded(out);
  ASSERT_EQ(msgs.size(), 1u);
  const auto& ops = std::get<OpsMsg>(msgs[0]).ops;
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].op.seq, 2u);
}

TEST(SyncSessionTest, AtMostFourBatchesInFlightUntilAnAckOpensTheWindow) {
  MemStore store(id_of(1));
  store.logs[id_of(1)] = chain_of(id_of(1), key_of(1), limits::kSyncBatchOpsMax * 6);
  SyncSession s(store);
  auto out = s.on_message(hello_from(id_of(2)), 0);
  EXPECT_EQ(count_of<OpsMsg>(out), limits::kSyncWindowBatches);
  for (const auto& m : decoded(out)) EXPECT_LE(std::get<OpsMsg>(m).ops.size(), limits::kSyncBatchOpsMax);
  EXPECT_EQ(count_of<OpsMsg>(s.pump()), 0u) << "sent past the window";
  auto more = s.on_message(encode_message(AckMsg{{{id_of(1), limits::kSyncBatchOpsMax}}}), 0);
  EXPECT_EQ(count_of<OpsMsg>(more), 1u);
  EXPECT_EQ(s.peer_vv().at(id_of(1)), limits::kSyncBatchOpsMax);
}

TEST(SyncSessionTest, BatchesStayUnderTheByteBound) {
  MemStore store(id_of(1));
  // 6000-byte ops (the session only measures what it sends): 256 of them would be 1.5 MiB.
  auto ops = chain_of(id_of(1), key_of(1), 300);
  for (auto& op : ops) op.signed_bytes.resize(6000);
  store.logs[id_of(1)] = ops;
  SyncSession s(store);
  auto out = s.on_message(hello_from(id_of(2)), 0);
  ASSERT_GE(out.send.size(), 2u);
  for (const auto& b : out.send) {
    EXPECT_LE(b.size(), limits::kSyncBatchBytesMax + 6) << "an OPS message over 1 MiB";
    ByteReader r(b);
    std::uint8_t type = 0, version = 0;
    std::uint32_t n = 0;
    ASSERT_TRUE(r.u8(type) && r.u8(version) && r.u32(n));
    EXPECT_LT(n, limits::kSyncBatchOpsMax) << "the byte bound did not cut the batch";
  }
}

TEST(SyncSessionTest, IngestedBatchIsAcknowledgedWithOurNewSeqs) {
  MemStore store(id_of(1));
  SyncSession s(store);
  (void)s.on_message(hello_from(id_of(2)), 0);
  auto out = s.on_message(encode_message(OpsMsg{chain_of(id_of(2), key_of(2), 3)}), 0);
  auto msgs = decoded(out);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(std::get<AckMsg>(msgs[0]).vv.at(id_of(2)), 3u);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].ingest.applied, 3u);
}

TEST(SyncSessionTest, RefusedBatchAnswersErrorClosesAndIsNotAcknowledged) {
  MemStore store(id_of(1));
  SyncSession s(store);
  (void)s.on_message(hello_from(id_of(2)), 0);
  store.refuse_next = true;
  auto out = s.on_message(encode_message(OpsMsg{chain_of(id_of(2), key_of(2), 1)}), 0);
  EXPECT_TRUE(out.close);
  EXPECT_EQ(count_of<AckMsg>(out), 0u);
  ASSERT_EQ(count_of<ErrorMsg>(out), 1u);
  EXPECT_NE(std::get<ErrorMsg>(decoded(out)[0]).message.find("refused by the test"), std::string::npos);
  EXPECT_TRUE(store.logs[id_of(2)].empty());
}

TEST(SyncSessionTest, NewerDocumentIsOfferedOnceAndStaleOnesNotAtAll) {
  MemStore store(id_of(1));
  store.roster_version = 3;
  SyncSession s(store);
  HelloMsg h;
  h.node = id_of(2);
  h.roster_version = 2;
  auto out = s.on_message(encode_message(h), 0);
  EXPECT_EQ(count_of<BlobMsg>(out), 1u);
  EXPECT_EQ(count_of<BlobMsg>(s.pump()), 0u) << "offered the same version twice";
  store.roster_version = 4;  // accepted mid-session (e.g. an enrollment at HQ)
  EXPECT_EQ(count_of<BlobMsg>(s.pump()), 1u);
  // A peer that already holds our version gets nothing.
  SyncSession t(store);
  h.roster_version = 4;
  EXPECT_EQ(count_of<BlobMsg>(t.on_message(encode_message(h), 0)), 0u);
}

TEST(SyncSessionTest, RightsGrantSendsTheMoveOpBeforeTheReplyEvenWithAFullWindow) {
  MemStore store(id_of(1));
  store.logs[id_of(1)] = chain_of(id_of(1), key_of(0x5e), limits::kSyncBatchOpsMax * 5);
  SyncSession s(store);
  (void)s.on_message(hello_from(id_of(2)), 0);  // fills the window
  auto out = s.on_message(encode_message(RightsRequestMsg{8, id_of(0x33), Account::kWallet, 300}), 0);
  auto msgs = decoded(out);
  ASSERT_FALSE(msgs.empty());
  ASSERT_TRUE(std::holds_alternative<RightsReplyMsg>(msgs.back()));
  EXPECT_EQ(std::get<RightsReplyMsg>(msgs.back()).granted, 300u);
  // Every op the peer lacks, the move included, went out before the reply.
  std::uint64_t highest = 0;
  for (const auto& m : msgs) {
    if (auto* ops = std::get_if<OpsMsg>(&m)) highest = std::max(highest, ops->ops.back().op.seq);
  }
  EXPECT_EQ(highest, store.logs[id_of(1)].size());
}

// --- alerts ---------------------------------------------------------------------------------------

TEST(SyncSessionAlerts, HqAsksAPeerThatAnnouncedAlertsAndAttributesWhatItSendsToTheSessionsPeer) {
  MemStore hq(id_of(1));
  hq.collects = true;
  SyncSession s(hq);
  auto out = s.on_message(hello_from(id_of(2), {}, kFeatureAlerts), 0);
  ASSERT_EQ(count_of<AlertsAckMsg>(out), 1u) << "HQ did not ask for the peer's alerts";
  AlertRecord a = alert_of(4);
  a.about = id_of(3);  // about another node: content, never the attribution
  auto acked = s.on_message(encode_message(AlertsMsg{{alert_of(1), a}}), 0);
  ASSERT_EQ(count_of<AlertsAckMsg>(acked), 1u);
  EXPECT_EQ(std::get<AlertsAckMsg>(decoded(acked)[0]).upto, 4u);
  ASSERT_EQ(hq.collected[id_of(2)].size(), 2u);
  EXPECT_TRUE(hq.collected[id_of(3)].empty()) << "an alert was attributed to the node it is about";
}

TEST(SyncSessionAlerts, APeerThatDidNotAnnounceAlertsIsNeverAskedAndAStoreAsksNobody) {
  MemStore hq(id_of(1));
  hq.collects = true;
  SyncSession old_peer(hq);
  EXPECT_EQ(count_of<AlertsAckMsg>(old_peer.on_message(hello_from(id_of(2)), 0)), 0u)
      << "an older build would close on a message type it does not know";
  MemStore store(id_of(1));
  SyncSession s(store);
  EXPECT_EQ(count_of<AlertsAckMsg>(s.on_message(hello_from(id_of(2), {}, kFeatureAlerts), 0)), 0u);
}

TEST(SyncSessionAlerts, UnaskedAlertsAreAProtocolErrorAndChangeNothing) {
  for (bool collects : {false, true}) {
    MemStore node(id_of(1));
    node.collects = collects;
    SyncSession s(node);
    // Without the feature in its HELLO the peer was not asked, whatever this node collects.
    (void)s.on_message(hello_from(id_of(2)), 0);
    auto out = s.on_message(encode_message(AlertsMsg{{alert_of(1)}}), 0);
    EXPECT_TRUE(out.close);
    ASSERT_EQ(count_of<ErrorMsg>(out), 1u);
    EXPECT_NE(out.close_reason.find("not asked for"), std::string::npos) << out.close_reason;
    EXPECT_TRUE(node.collected.empty());
  }
}

TEST(SyncSessionAlerts, OversizeOrMalformedAlertsCloseTheSessionAndStoreNothing) {
  MemStore hq(id_of(1));
  hq.collects = true;
  SyncSession s(hq);
  (void)s.on_message(hello_from(id_of(2), {}, kFeatureAlerts), 0);
  std::vector<AlertRecord> many;
  for (std::uint64_t i = 1; i <= limits::kSyncAlertsPerMessageMax + 1; ++i) many.push_back(alert_of(i));
  auto out = s.on_message(encode_message(AlertsMsg{many}), 0);
  EXPECT_TRUE(out.close);
  ASSERT_EQ(count_of<ErrorMsg>(out), 1u);
  EXPECT_NE(out.close_reason.find("malformed ALERTS"), std::string::npos) << out.close_reason;
  EXPECT_TRUE(hq.collected[id_of(2)].empty());
  // The session is over: a good message after it changes nothing either.
  EXPECT_TRUE(s.on_message(encode_message(AlertsMsg{{alert_of(1)}}), 0).send.empty());
  EXPECT_TRUE(hq.collected[id_of(2)].empty());
}

TEST(SyncSessionAlerts, AStoreSendsItsAlertsOnlyAfterHqAsksOneMessageAtATimeFromHqsCursor) {
  MemStore store(id_of(1));
  for (std::uint64_t i = 1; i <= limits::kSyncAlertsPerMessageMax + 10; ++i) store.own_alerts.push_back(alert_of(i));
  SyncSession s(store);
  EXPECT_EQ(count_of<AlertsMsg>(s.on_message(hello_from(id_of(2), {}, kFeatureAlerts), 0)), 0u)
      << "alerts sent before HQ said which it holds";
  EXPECT_EQ(count_of<AlertsMsg>(s.pump()), 0u);
  // HQ holds up to id 3 (they arrived in an earlier session).
  auto first = s.on_message(encode_message(AlertsAckMsg{3}), 0);
  ASSERT_EQ(count_of<AlertsMsg>(first), 1u);
  const auto batch = std::get<AlertsMsg>(decoded(first)[0]).alerts;
  ASSERT_EQ(batch.size(), limits::kSyncAlertsPerMessageMax);
  EXPECT_EQ(batch.front().id, 4u);
  EXPECT_EQ(count_of<AlertsMsg>(s.pump()), 0u) << "a second ALERTS before the first was acknowledged";
  auto second = s.on_message(encode_message(AlertsAckMsg{batch.back().id}), 0);
  ASSERT_EQ(count_of<AlertsMsg>(second), 1u);
  const auto rest = std::get<AlertsMsg>(decoded(second)[0]).alerts;
  ASSERT_EQ(rest.size(), 7u);
  EXPECT_EQ(rest.front().id, batch.back().id + 1);
  EXPECT_EQ(count_of<AlertsMsg>(s.on_message(encode_message(AlertsAckMsg{rest.back().id}), 0)), 0u);
  // An acknowledgement that goes backwards does not make the store resend what HQ holds.
  EXPECT_EQ(count_of<AlertsMsg>(s.on_message(encode_message(AlertsAckMsg{1}), 0)), 0u);
  // A new alert goes out with the next pump.
  store.own_alerts.push_back(alert_of(rest.back().id + 1));
  EXPECT_EQ(count_of<AlertsMsg>(s.pump()), 1u);
}

}  // namespace
}  // namespace outpost::sync
