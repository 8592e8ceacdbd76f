// Certificates and rosters (sync/src/roster.cc, docs/roster-format.md): golden byte vectors and
// root signatures, decode round trips and every rejection path, root-signature verification,
// the successor rules, op_allowed cutoffs and link-peer admission.
//
// The golden vectors are written field by field in the order of the byte tables in
// docs/roster-format.md. They were produced by an independent encoder written from that page in
// Python, with keys and Ed25519 signatures from the `cryptography` package (not libsodium); if one
// of these tests fails, the format changed and every stored roster and deployed node with it.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/crypto/noise.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/secure_channel.h"

namespace outpost::sync {
namespace {

template <std::size_t N>
std::array<std::uint8_t, N> run_from(std::uint8_t first) {
  std::array<std::uint8_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(first + i);
  return a;
}

Bytes unhex(const std::string& hex) {
  auto b = crypto::from_hex(hex);
  EXPECT_TRUE(b.is_ok()) << "bad hex literal in test: " << hex;
  return b.is_ok() ? *b : Bytes{};
}

std::string hex(ByteView b) { return crypto::to_hex(b); }

// Fixed inputs: every key derives from a run of consecutive bytes.
const NetworkId kNetwork = run_from<16>(0x10);
const NodeId kStoreId = run_from<16>(0xa0);
const NodeId kHqId = run_from<16>(0x90);
constexpr std::uint64_t kStoreFromMs = 1709208000123;   // 2024-02-29T12:00:00.123Z
constexpr std::uint64_t kStoreUntilMs = 1772366400123;  // 2026-03-01T12:00:00.123Z
constexpr std::uint64_t kHqFromMs = 1709121600000;
constexpr std::uint64_t kHqUntilMs = 2024740800000;

const std::string kRootPublicHex =
    "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";

// clang-format off
// The store's certificate, field by field (docs/roster-format.md, "Certificate").
const std::string kStoreCertHex =
    "4f504354"                                                          // magic "OPCT"
    "01"                                                                // format 1
    "101112131415161718191a1b1c1d1e1f"                                  // network id
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"                                  // node id
    "01"                                                                // role store
    "adc14011f82d1c56d956aa4f9d73d8858361a606048525e0d08c638dc75dd8c7"  // signing key
    "244fe3b963e899dd295baffce248d3530f3a9a7479ba063002680ebfe7adad49"  // noise key
    "7b56bcf48d010000"                                                  // valid_from_ms
    "7b0a45a99c010000"                                                  // valid_until_ms
    "0700"                                                              // name length 7
    "73746f72652d37";                                                   // "store-7"
const std::string kStoreCertSigHex =
    "07d07e937000afa46dc6b3ba6bc6f77342d90225b1b31cdbc9359ba64f23ea21"
    "9d5fb1d28369aef0a71558f76e15ad09201407cf24d39836646ad48d4f21f00c";

const std::string kHqCertHex =
    "4f504354"                                                          // magic "OPCT"
    "01"                                                                // format 1
    "101112131415161718191a1b1c1d1e1f"                                  // network id
    "909192939495969798999a9b9c9d9e9f"                                  // node id
    "02"                                                                // role hq
    "e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0"  // signing key
    "883186b800b41d5cf0429695da9b3cc4f328ebcd184a6e482fa578c103f06c77"  // noise key
    "00fa95ef8d010000"                                                  // valid_from_ms
    "00c6f46bd7010000"                                                  // valid_until_ms
    "0200"                                                              // name length 2
    "6871";                                                             // "hq"
const std::string kHqCertSigHex =
    "e956983509387534c8a9be6292ee0643dc804d26ab9bb24ebafe40dbfd3b6b2d"
    "fb47736a3e6f7ec0fd4a31eec0c85e25f2d8120e92f94cae28ce07e44b510105";

// Roster v3 listing both, with the store revoked after seq 42 (docs/roster-format.md, "Roster").
const std::string kRosterHex =
    "4f505253"                          // magic "OPRS"
    "01"                                // format 1
    "101112131415161718191a1b1c1d1e1f"  // network id
    "0300000000000000"                  // version 3
    "c857bcf48d010000"                  // issued wall_ms 1709208000456
    "07000000"                          // issued logical 7
    "02000000"                          // 2 certificates, ascending node id
    "7a00" +                            // certificate 1: 122 bytes, then its signature
    kHqCertHex + kHqCertSigHex +
    "7f00" +                            // certificate 2: 127 bytes, then its signature
    kStoreCertHex + kStoreCertSigHex +
    "01000000"                          // 1 revocation
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // node id
    "2a00000000000000";                 // after_seq 42
const std::string kRosterSigHex =
    "b2d6096775d30b464d95335e3f0ce4559c45678d6944a3f9ef86a020ca272bbe"
    "2cfdbec705f2691bc65ffeb9febaf53da4f5fa0026f0723b37f76693c093e603";
// clang-format on

class SyncRosterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::init().is_ok()); }

  static crypto::SigningKey root() {
    return crypto::SigningKey::from_seed(run_from<32>(0x01)).value();
  }
  static crypto::PublicKey public_of_seed(std::uint8_t first) {
    return crypto::SigningKey::from_seed(run_from<32>(first))->public_key();
  }
  static crypto::PublicKey noise_of(std::uint8_t first) {
    return crypto::X25519KeyPair::from_private(run_from<32>(first))->public_key();
  }

  static Certificate store_cert() {
    Certificate c;
    c.network_id = kNetwork;
    c.node_id = kStoreId;
    c.role = NodeRole::kStore;
    c.signing_key = public_of_seed(0x41);
    c.noise_key = noise_of(0x61);
    c.valid_from_ms = kStoreFromMs;
    c.valid_until_ms = kStoreUntilMs;
    c.name = "store-7";
    return c;
  }
  static Certificate hq_cert() {
    Certificate c;
    c.network_id = kNetwork;
    c.node_id = kHqId;
    c.role = NodeRole::kHq;
    c.signing_key = public_of_seed(0x21);
    c.noise_key = noise_of(0x81);
    c.valid_from_ms = kHqFromMs;
    c.valid_until_ms = kHqUntilMs;
    c.name = "hq";
    return c;
  }
  static Roster golden_roster() {
    Roster r;
    r.network_id = kNetwork;
    r.version = 3;
    r.issued = Hlc{1709208000456, 7};
    EXPECT_TRUE(r.put_certificate(sign_certificate(store_cert(), root())).is_ok());
    EXPECT_TRUE(r.put_certificate(sign_certificate(hq_cert(), root())).is_ok());
    EXPECT_TRUE(r.add_revocation({kStoreId, 42}).is_ok());
    return r;
  }
  static crypto::PublicKey root_public() { return root().public_key(); }
};

// --- golden vectors ---------------------------------------------------------------------------

TEST_F(SyncRosterTest, FixedSeedGivesGoldenRootPublicKey) {
  EXPECT_EQ(hex(root_public()), kRootPublicHex);
}

TEST_F(SyncRosterTest, CertificateEncodingMatchesGoldenBytes) {
  Bytes body = encode_certificate(store_cert());
  EXPECT_EQ(hex(body), kStoreCertHex);
  EXPECT_EQ(body.size(), kCertificateFixedBytes + 2 + 7);
  EXPECT_EQ(hex(encode_certificate(hq_cert())), kHqCertHex);
}

TEST_F(SyncRosterTest, CertificateSignatureMatchesGoldenVector) {
  SignedCertificate sc = sign_certificate(store_cert(), root());
  EXPECT_EQ(hex(sc.sig), kStoreCertSigHex);
  EXPECT_EQ(hex(sign_certificate(hq_cert(), root()).sig), kHqCertSigHex);
}

TEST_F(SyncRosterTest, RosterEncodingAndSignatureMatchGoldenVector) {
  SignedRoster sr = sign_roster(golden_roster(), root());
  EXPECT_EQ(hex(sr.body), kRosterHex);
  EXPECT_EQ(sr.body.size(), 454u);
  EXPECT_EQ(hex(sr.sig), kRosterSigHex);
}

TEST_F(SyncRosterTest, GoldenBytesVerifyAndDecodeToTheRoster) {
  auto v = verify_roster(unhex(kRosterHex), unhex(kRosterSigHex), root_public(), kNetwork);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->roster, golden_roster());
  EXPECT_EQ(encode_roster(v->roster), unhex(kRosterHex));
}

TEST_F(SyncRosterTest, DocWorkedExampleIsTheGoldenRoster) {
#ifndef OUTPOST_SOURCE_DIR
  GTEST_SKIP() << "built without OUTPOST_SOURCE_DIR";
#else
  std::FILE* f = std::fopen(OUTPOST_SOURCE_DIR "/docs/roster-format.md", "rb");
  ASSERT_NE(f, nullptr) << "docs/roster-format.md is missing";
  std::string doc;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) doc.append(buf, n);
  std::fclose(f);
  // The page quotes the signatures and the certificate body verbatim.
  EXPECT_NE(doc.find(kStoreCertSigHex.substr(0, 64)), std::string::npos);
  EXPECT_NE(doc.find(kRosterSigHex.substr(0, 64)), std::string::npos);
  EXPECT_NE(doc.find(kRootPublicHex), std::string::npos);
#endif
}

// --- certificate decoding ---------------------------------------------------------------------

TEST_F(SyncRosterTest, EveryTruncatedCertificatePrefixIsCorruption) {
  Bytes body = unhex(kStoreCertHex);
  for (std::size_t n = 0; n < body.size(); ++n) {
    auto c = decode_certificate(ByteView(body).first(n));
    EXPECT_EQ(c.status().code(), Code::kCorruption) << "prefix of " << n << " bytes";
  }
}

TEST_F(SyncRosterTest, CertificateTrailingByteIsCorruption) {
  Bytes body = unhex(kStoreCertHex);
  body.push_back(0);
  EXPECT_EQ(decode_certificate(body).status().code(), Code::kCorruption);
}

TEST_F(SyncRosterTest, CertificateUnknownFormatIsUnsupported) {
  Bytes body = unhex(kStoreCertHex);
  body[4] = 2;
  EXPECT_EQ(decode_certificate(body).status().code(), Code::kUnsupported);
}

TEST_F(SyncRosterTest, CertificateUnknownRoleIsCorruption) {
  Bytes body = unhex(kStoreCertHex);
  body[37] = 3;
  EXPECT_EQ(decode_certificate(body).status().code(), Code::kCorruption);
}

TEST_F(SyncRosterTest, CertificateWithEmptyValidityIsCorruption) {
  Certificate c = store_cert();
  c.valid_until_ms = c.valid_from_ms;
  EXPECT_FALSE(validate_certificate(c).is_ok());
  Bytes body = unhex(kStoreCertHex);
  std::copy(body.begin() + 102, body.begin() + 110, body.begin() + 110);  // until = from
  EXPECT_EQ(decode_certificate(body).status().code(), Code::kCorruption);
}

TEST_F(SyncRosterTest, CertificateNameAtLimitDecodesAndOneMoreIsCorruption) {
  Certificate c = store_cert();
  c.name.assign(limits::kNameBytesMax, 'n');
  Bytes body = encode_certificate(c);
  EXPECT_TRUE(decode_certificate(body).is_ok());
  body[kCertificateFixedBytes] = static_cast<std::uint8_t>(limits::kNameBytesMax + 1);
  body.push_back('n');
  EXPECT_EQ(decode_certificate(body).status().code(), Code::kCorruption);
}

TEST_F(SyncRosterTest, CertificateNameWithControlCharacterIsRefused) {
  Certificate c = store_cert();
  c.name = "bad\nname";
  EXPECT_FALSE(validate_certificate(c).is_ok());
}

TEST_F(SyncRosterTest, CertificateFromAnotherRootFailsVerification) {
  auto other = crypto::SigningKey::generate();
  SignedCertificate sc = sign_certificate(store_cert(), other);
  EXPECT_EQ(verify_certificate(sc.body, sc.sig, root_public()).status().code(), Code::kPermission);
  EXPECT_TRUE(verify_certificate(sc.body, sc.sig, other.public_key()).is_ok());
}

// --- roster decoding and verification ----------------------------------------------------------

TEST_F(SyncRosterTest, EveryTruncatedRosterPrefixIsCorruption) {
  Bytes body = unhex(kRosterHex);
  for (std::size_t n = 0; n < body.size(); ++n) {
    auto r = decode_roster(ByteView(body).first(n));
    EXPECT_EQ(r.status().code(), Code::kCorruption) << "prefix of " << n << " bytes";
  }
}

TEST_F(SyncRosterTest, RosterTrailingByteIsCorruption) {
  Bytes body = unhex(kRosterHex);
  body.push_back(0);
  EXPECT_EQ(decode_roster(body).status().code(), Code::kCorruption);
}

TEST_F(SyncRosterTest, RosterUnknownFormatIsUnsupported) {
  Bytes body = unhex(kRosterHex);
  body[4] = 9;
  EXPECT_EQ(decode_roster(body).status().code(), Code::kUnsupported);
}

TEST_F(SyncRosterTest, RosterCountAboveLimitIsCorruptionBeforeReading) {
  Bytes body = unhex(kRosterHex);
  const std::uint32_t n = limits::kRosterNodesMax + 1;
  for (int i = 0; i < 4; ++i) body[41 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  EXPECT_EQ(decode_roster(body).status().code(), Code::kCorruption);
}

TEST_F(SyncRosterTest, RosterWithCertificatesOutOfOrderIsRefused) {
  Roster r = golden_roster();
  std::swap(r.certificates[0], r.certificates[1]);
  EXPECT_FALSE(validate_roster(r).is_ok());
}

TEST_F(SyncRosterTest, RosterWithDuplicateNameIsRefused) {
  Roster r = golden_roster();
  Certificate c = hq_cert();
  c.node_id = run_from<16>(0xc0);
  c.name = "store-7";
  EXPECT_FALSE(r.put_certificate(sign_certificate(c, root())).is_ok());
  r.certificates.push_back(sign_certificate(c, root()));  // bypass put_certificate
  EXPECT_FALSE(validate_roster(r).is_ok());
}

TEST_F(SyncRosterTest, RosterRevokingAnUnlistedNodeIsRefused) {
  Roster r = golden_roster();
  EXPECT_EQ(r.add_revocation({run_from<16>(0xee), 1}).code(), Code::kNotFound);
  r.revocations.push_back({run_from<16>(0xee), 1});
  EXPECT_FALSE(validate_roster(r).is_ok());
}

TEST_F(SyncRosterTest, RosterWithCertificateOfAnotherNetworkIsRefused) {
  Roster r = golden_roster();
  Certificate c = store_cert();
  c.network_id = run_from<16>(0x70);
  EXPECT_FALSE(r.put_certificate(sign_certificate(c, root())).is_ok());
}

TEST_F(SyncRosterTest, RosterSignedByAnotherRootIsRefused) {
  auto other = crypto::SigningKey::generate();
  SignedRoster sr = sign_roster(golden_roster(), other);
  EXPECT_EQ(verify_roster(sr.body, sr.sig, root_public(), kNetwork).status().code(),
            Code::kPermission);
}

TEST_F(SyncRosterTest, RosterWithAnyFlippedBitIsRefused) {
  Bytes body = unhex(kRosterHex);
  Bytes sig = unhex(kRosterSigHex);
  for (std::size_t i = 0; i < body.size(); i += 7) {
    Bytes bad = body;
    bad[i] ^= 0x01;
    EXPECT_FALSE(verify_roster(bad, sig, root_public(), kNetwork).is_ok()) << "byte " << i;
  }
}

TEST_F(SyncRosterTest, RosterOfAnotherNetworkIsRefused) {
  auto v =
      verify_roster(unhex(kRosterHex), unhex(kRosterSigHex), root_public(), run_from<16>(0x70));
  EXPECT_EQ(v.status().code(), Code::kPermission);
}

TEST_F(SyncRosterTest, RosterListingCertificateNotSignedByRootIsRefused) {
  Roster r = golden_roster();
  auto other = crypto::SigningKey::generate();
  r.certificates[1] = sign_certificate(store_cert(), other);
  SignedRoster sr = sign_roster(r, root());
  EXPECT_EQ(verify_roster(sr.body, sr.sig, root_public(), kNetwork).status().code(),
            Code::kPermission);
  // A stored roster is re-read trusting its own signature only.
  EXPECT_TRUE(verify_roster(sr.body, sr.sig, root_public(), kNetwork, false).is_ok());
}

TEST_F(SyncRosterTest, WrongSignatureLengthIsCorruption) {
  EXPECT_EQ(verify_roster(unhex(kRosterHex), Bytes(63), root_public(), kNetwork).status().code(),
            Code::kCorruption);
}

// --- successor rules ----------------------------------------------------------------------------

TEST_F(SyncRosterTest, SameOrOlderVersionIsRefusedAsStale) {
  Roster cur = golden_roster();
  Roster next = cur;
  EXPECT_EQ(check_roster_successor(cur, next).code(), Code::kRefused);
  next.version = 2;
  EXPECT_EQ(check_roster_successor(cur, next).code(), Code::kRefused);
  next.version = 4;
  EXPECT_TRUE(check_roster_successor(cur, next).is_ok());
}

TEST_F(SyncRosterTest, SuccessorDroppingANodeOrRevocationIsRefused) {
  Roster cur = golden_roster();
  Roster dropped_node = cur;
  dropped_node.version = 4;
  dropped_node.certificates.erase(dropped_node.certificates.begin());
  EXPECT_EQ(check_roster_successor(cur, dropped_node).code(), Code::kPermission);
  Roster dropped_rev = cur;
  dropped_rev.version = 4;
  dropped_rev.revocations.clear();
  EXPECT_EQ(check_roster_successor(cur, dropped_rev).code(), Code::kPermission);
  Roster moved_cutoff = cur;
  moved_cutoff.version = 4;
  moved_cutoff.revocations[0].after_seq = 43;
  EXPECT_EQ(check_roster_successor(cur, moved_cutoff).code(), Code::kPermission);
}

TEST_F(SyncRosterTest, RenewalKeepsTheSigningKeyAndAnotherKeyIsRefused) {
  Roster r = golden_roster();
  Certificate renewed = hq_cert();
  renewed.valid_until_ms += 1000;
  renewed.noise_key = noise_of(0x33);
  EXPECT_TRUE(r.put_certificate(sign_certificate(renewed, root())).is_ok());
  EXPECT_EQ(r.find(kHqId)->cert.valid_until_ms, kHqUntilMs + 1000);
  Certificate rekeyed = hq_cert();
  rekeyed.signing_key = public_of_seed(0x55);
  EXPECT_FALSE(r.put_certificate(sign_certificate(rekeyed, root())).is_ok());
}

TEST_F(SyncRosterTest, RevocationIsPermanent) {
  Roster r = golden_roster();
  EXPECT_FALSE(r.add_revocation({kStoreId, 50}).is_ok());
  EXPECT_EQ(r.revocation(kStoreId)->after_seq, 42u);
}

// --- lookups and op_allowed ----------------------------------------------------------------------

TEST_F(SyncRosterTest, LookupsFindKeysOfListedNodesOnly) {
  Roster r = golden_roster();
  EXPECT_EQ(r.signing_key(kStoreId), public_of_seed(0x41));
  EXPECT_EQ(r.noise_key(kHqId), noise_of(0x81));
  EXPECT_EQ(r.find_by_name("hq")->cert.node_id, kHqId);
  EXPECT_FALSE(r.signing_key(run_from<16>(0xee)).has_value());
  EXPECT_EQ(r.find_by_name("nobody"), nullptr);
}

TEST_F(SyncRosterTest, OpAllowedUpToTheCutoffOnlyAndNeverForUnknownOrigins) {
  Roster r = golden_roster();
  EXPECT_TRUE(r.op_allowed(kStoreId, 1));
  EXPECT_TRUE(r.op_allowed(kStoreId, 42));
  EXPECT_FALSE(r.op_allowed(kStoreId, 43));
  EXPECT_TRUE(r.op_allowed(kHqId, 1'000'000));
  EXPECT_FALSE(r.op_allowed(run_from<16>(0xee), 1));
}

// --- link peer admission ------------------------------------------------------------------------

class PeerAdmissionTest : public SyncRosterTest {
 protected:
  const NodeId self_ = kHqId;
  const std::uint64_t now_ = kStoreFromMs + 1000;
  Status admit(const SignedCertificate& peer, const Roster* roster,
               std::uint64_t peer_roster_version = 0) {
    return check_peer_certificate(peer, peer_roster_version, root_public(), kNetwork, self_, roster,
                                  now_);
  }
  static Roster unrevoked() {
    Roster r = golden_roster();
    r.revocations.clear();
    return r;
  }
};

TEST_F(PeerAdmissionTest, ListedValidCertificateIsAdmitted) {
  Roster r = unrevoked();
  EXPECT_TRUE(admit(sign_certificate(store_cert(), root()), &r).is_ok());
  EXPECT_TRUE(admit(sign_certificate(store_cert(), root()), nullptr).is_ok());
}

TEST_F(PeerAdmissionTest, CertificateFromAnotherRootIsRefused) {
  Roster r = unrevoked();
  Status st = admit(sign_certificate(store_cert(), crypto::SigningKey::generate()), &r);
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_NE(st.message().find("root"), std::string::npos) << st.message();
}

TEST_F(PeerAdmissionTest, ExpiredAndNotYetValidCertificatesAreRefused) {
  Certificate c = store_cert();
  c.valid_until_ms = now_;  // exclusive end
  Status st = admit(sign_certificate(c, root()), nullptr);
  EXPECT_NE(st.message().find("expired"), std::string::npos) << st.message();
  c = store_cert();
  c.valid_from_ms = now_ + 1;
  c.valid_until_ms = now_ + 2;
  EXPECT_EQ(admit(sign_certificate(c, root()), nullptr).code(), Code::kPermission);
}

TEST_F(PeerAdmissionTest, RevokedNodeIsRefusedWhateverItsCutoff) {
  Roster r = golden_roster();
  Status st = admit(sign_certificate(store_cert(), root()), &r, 99);
  EXPECT_EQ(st.code(), Code::kPermission);
  EXPECT_NE(st.message().find("revoked"), std::string::npos) << st.message();
}

TEST_F(PeerAdmissionTest, SupersededCertificateIsRefused) {
  Roster r = unrevoked();
  Certificate older = store_cert();
  older.valid_until_ms -= 1000;
  Status st = admit(sign_certificate(older, root()), &r);
  EXPECT_NE(st.message().find("superseded"), std::string::npos) << st.message();
}

TEST_F(PeerAdmissionTest, UnlistedNodeIsAdmittedOnlyWithANewerRosterThanOurs) {
  Roster r = unrevoked();
  Certificate fresh = store_cert();
  fresh.node_id = run_from<16>(0xc0);
  fresh.name = "store-9";
  EXPECT_EQ(admit(sign_certificate(fresh, root()), &r, r.version).code(), Code::kPermission);
  EXPECT_TRUE(admit(sign_certificate(fresh, root()), &r, r.version + 1).is_ok());
}

TEST_F(PeerAdmissionTest, CertificateOfAnotherNetworkIsRefused) {
  Certificate c = store_cert();
  c.network_id = run_from<16>(0x70);
  EXPECT_EQ(admit(sign_certificate(c, root()), nullptr).code(), Code::kPermission);
}

TEST_F(PeerAdmissionTest, ThisNodeItselfIsRefused) {
  Roster r = unrevoked();
  Certificate c = hq_cert();
  c.valid_from_ms = now_ - 1;
  Roster with_self = r;
  ASSERT_TRUE(with_self.put_certificate(sign_certificate(c, root())).is_ok());
  EXPECT_EQ(admit(sign_certificate(c, root()), &with_self).code(), Code::kPermission);
}

// --- handshake payload --------------------------------------------------------------------------

TEST_F(SyncRosterTest, HandshakePayloadRoundTripsAndRejectsDamage) {
  HandshakePayload p{sign_certificate(store_cert(), root()), 7};
  Bytes b = encode_handshake_payload(p);
  auto d = decode_handshake_payload(b);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->certificate, p.certificate);
  EXPECT_EQ(d->roster_version, 7u);
  EXPECT_EQ(decode_handshake_payload({}).status().code(), Code::kPermission);
  for (std::size_t n = 1; n < b.size(); ++n) {
    EXPECT_FALSE(decode_handshake_payload(ByteView(b).first(n)).is_ok()) << n;
  }
  Bytes trailing = b;
  trailing.push_back(0);
  EXPECT_FALSE(decode_handshake_payload(trailing).is_ok());
  Bytes huge(limits::kLinkHandshakePayloadBytesMax + 1, 0);
  EXPECT_EQ(decode_handshake_payload(huge).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace outpost::sync
