// Bugs the libFuzzer targets in tests/fuzz found, one test each, named after the bug and built
// from the input that showed it (docs/testing.md, "Fuzzing"); and a check that the committed
// seed corpora still decode, so a format change that leaves them stale fails here rather than
// quietly making the fuzzers start from garbage.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <variant>
#include <vector>

#include "outpost/audit/bundle_format.h"
#include "outpost/audit/proof.h"
#include "outpost/audit/verify.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"
#include "outpost/sync/op.h"
#include "outpost/sync/protocol.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rules.h"
#include "test_util.h"

namespace outpost::sync {
namespace {

namespace fs = std::filesystem;
namespace bundle = audit::bundle;

Bytes unhex(const std::string& hex) {
  auto b = crypto::from_hex(hex);
  EXPECT_TRUE(b.is_ok()) << hex;
  return b.is_ok() ? *b : Bytes{};
}

// sync_message_fuzz: a HELLO (or ACK) whose version vector lists its origins out of order
// decoded to the same message as the sorted one, so one message had two encodings.
TEST(FuzzRegression, VersionVectorWithOriginsOutOfOrderIsRefused) {
  const std::string a = "40414201000000000000000000000000";  // sorts after b
  const std::string b = "006162636465666768696a6b6c6d6e6f";
  // HELLO, version 1, node 60..6f, roster v1, rules v0x10000, wall clock, two origins.
  const std::string head = std::string("0101") + "606162636465666768696a6b6c6d6e6f" +
                           "0100000000000000" + "0000010000000000" + "00505c18a3010000" +
                           "02000000";
  const Bytes sorted = unhex(head + b + "0800000000000000" + a + "0000000000000000");
  const Bytes unsorted = unhex(head + a + "0000000000000000" + b + "0800000000000000");
  auto good = decode_message(sorted);
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_EQ(std::get<HelloMsg>(*good).vv.size(), 2u);
  EXPECT_EQ(decode_message(unsorted).status().code(), Code::kCorruption);
  // The same rule for ACK, whose body is a version vector alone.
  const Bytes ack =
      unhex(std::string("0301") + "02000000" + a + "0100000000000000" + b + "0200000000000000");
  EXPECT_EQ(decode_message(ack).status().code(), Code::kCorruption);
  AckMsg m;
  m.vv = {{*parse_id(a), 1}, {*parse_id(b), 2}};
  EXPECT_TRUE(decode_message(encode_message(m)).is_ok());
}

// sync_message_fuzz (CI): the HELLO gained an optional features word after the tree head set
// version, and the target's own invariant still expected a HELLO of an earlier build to grow by the
// reported-versions tail alone. The decoder was right; this pins both earlier shapes: a HELLO that
// ends after its version vector, and one that ends after the tree head set version, each decodes
// and re-encodes as the input plus its missing tails, all zero.
TEST(FuzzRegression, HelloOfAnEarlierBuildReencodesWithItsMissingTailsEmpty) {
  const std::string head = std::string("0101") + "606162636465666768696a6b6c6d6e6f" +
                           "0100000000000000" + "0000000000000000" + "00505c18a3010000" +
                           "01000000" + "404142434445464748494a4b4c4d4e4f" + "0800000000000000";
  const std::string versions = "0000" + std::string("00000000") + "0000000000000000";
  const std::string features = "00000000";
  for (const std::string& input : {head, head + versions}) {
    auto m = decode_message(unhex(input));
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    const auto& hello = std::get<HelloMsg>(*m);
    EXPECT_EQ(hello.features, 0u);
    EXPECT_EQ(hello.schema_version, 0u);
    EXPECT_EQ(crypto::to_hex(encode_message(*m)), head + versions + features);
  }
  // A HELLO with every tail round-trips exactly.
  HelloMsg full;
  full.node.fill(0x60);
  full.software_version = "0.2.0";
  full.schema_version = 6;
  full.tree_heads_version = 3;
  full.features = 1;
  const Bytes bytes = encode_message(full);
  auto back = decode_message(bytes);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(encode_message(*back), bytes);
  EXPECT_EQ(std::get<HelloMsg>(*back).features, 1u);
}

// bundle_fuzz: `outpost-audit prove` sized its Merkle leaves by the tree size the newest tree
// head set in the bundle names, read before anything checks it, so a bundle naming a tree of 2^40
// ops made it allocate 32 TiB and die (std::bad_alloc) instead of refusing the bundle.
TEST(FuzzRegression, ProofFromABundleWhoseTreeHeadClaimsAHugeTreeIsRefusedNotAllocated) {
  test::TempDir tmp("outpost-fuzz-regression");
  const std::string& dir = tmp.path();
  std::array<std::uint8_t, 32> seed{};
  seed.fill(7);
  const auto key = crypto::SigningKey::from_seed(seed).value();
  Op op;
  op.kind = OpKind::kTopup;
  op.origin.fill(0x11);
  op.seq = 1;
  op.member.fill(0x22);
  op.account = Account::kWallet;
  op.amount = 100;
  const SignedOp signed_op = sign_op(op, key);
  ByteWriter ops;
  write_signed_op(ops, signed_op);
  TreeHeadSet set;
  set.network_id.fill(0x33);
  set.version = 1;
  set.issued.wall_ms = 1;
  set.roster_version = 1;
  TreeHead head;
  head.origin = op.origin;
  head.tree_size = std::uint64_t{1} << 40;
  head.root = signed_op.hash;
  head.head_hash = signed_op.hash;
  set.heads.push_back(head);
  ASSERT_TRUE(validate_tree_head_set(set).is_ok());
  const SignedTreeHeadSet signed_set = sign_tree_head_set(set, key);
  ByteWriter sets;
  write_frame(sets, signed_set.body, signed_set.sig);
  const std::string origin = id_hex(op.origin);
  std::filesystem::create_directories(dir + "/ops");
  auto text = [](const Bytes& b) { return std::string(b.begin(), b.end()); };
  test::write_file(dir + "/ops/" + origin + ".ops", text(ops.bytes()));
  test::write_file(dir + "/" + bundle::kTreeHeadsFile, text(sets.bytes()));
  const std::string entry =
      R"({"origin": ")" + origin + R"(", "file": "ops/)" + origin + R"(.ops"})";
  test::write_file(dir + "/manifest.json",
                   R"({"format": "outpost-audit-bundle", "version": 1, "files": [], "origins": [)" +
                       entry + "]}");
  auto proof = audit::prove_inclusion(dir, op.origin, 1);
  EXPECT_EQ(proof.status().code(), Code::kCorruption) << proof.status().to_string();
  // The same bundle with an honest head proves the op: the refusal above is the size check.
  set.heads[0].tree_size = 1;
  set.heads[0].root = merkle_op_leaf_hash(signed_op.signed_bytes, signed_op.sig);
  const SignedTreeHeadSet honest = sign_tree_head_set(set, key);
  ByteWriter honest_sets;
  write_frame(honest_sets, honest.body, honest.sig);
  test::write_file(dir + "/" + bundle::kTreeHeadsFile, text(honest_sets.bytes()));
  EXPECT_NE(audit::prove_inclusion(dir, op.origin, 1).status().code(), Code::kCorruption);
}

crypto::SigningKey key_of(std::uint8_t b) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(b);
  return crypto::SigningKey::from_seed(seed).value();
}

// A chain of one store: its root key, the store's key and a roster v1 listing it.
struct OneStoreChain {
  crypto::SigningKey root = key_of(1);
  crypto::SigningKey node = key_of(2);
  Certificate cert;
  SignedRoster roster;

  OneStoreChain() {
    cert.network_id.fill(0x33);
    cert.node_id.fill(0x11);
    cert.signing_key = node.public_key();
    cert.noise_key.fill(0x44);
    cert.valid_from_ms = 1;
    cert.valid_until_ms = 2;
    cert.name = "store-a";
    Roster r;
    r.network_id = cert.network_id;
    r.version = 1;
    EXPECT_TRUE(r.put_certificate(sign_certificate(cert, root)).is_ok());
    roster = sign_roster(r, root);
  }
};

// A genuine inclusion proof document (version 2) of the store's one-op log
// (docs/audit-bundle.md, "Inclusion proofs").
audit::Json one_op_proof(const OneStoreChain& chain) {
  Op op;
  op.kind = OpKind::kTopup;
  op.origin = chain.cert.node_id;
  op.seq = 1;
  op.member.fill(0x22);
  op.account = Account::kWallet;
  op.amount = 100;
  const SignedOp signed_op = sign_op(op, chain.node);
  TreeHeadSet set;
  set.network_id = chain.cert.network_id;
  set.version = 1;
  set.issued.wall_ms = 1;
  set.roster_version = 1;
  TreeHead head;
  head.origin = op.origin;
  head.tree_size = 1;
  head.root = merkle_op_leaf_hash(signed_op.signed_bytes, signed_op.sig);
  head.head_hash = signed_op.hash;
  set.heads.push_back(head);
  const SignedTreeHeadSet signed_set = sign_tree_head_set(set, chain.root);
  using crypto::to_hex;
  return {
      {"format", "outpost-inclusion-proof"},
      {"version", 2},
      {"origin", id_hex(op.origin)},
      {"seq", std::uint64_t{1}},
      {"op", {{"signed_bytes", to_hex(signed_op.signed_bytes)}, {"sig", to_hex(signed_op.sig)}}},
      {"tree_heads", {{"body", to_hex(signed_set.body)}, {"sig", to_hex(signed_set.sig)}}},
      {"roster", {{"body", to_hex(chain.roster.body)}, {"sig", to_hex(chain.roster.sig)}}},
      {"audit_path", audit::Json::array()}};
}

// proof_fuzz: verify_inclusion_proof read "format", "version" and "origin" with Json::value(),
// which throws when the member is there with another type, so `outpost-audit verify-proof` died
// on such a document instead of calling it no proof, or an invalid one.
TEST(FuzzRegression, ProofDocumentWithFieldsOfTheWrongTypeIsRefusedNotThrown) {
  const OneStoreChain chain;
  const audit::Json proof = one_op_proof(chain);
  const crypto::PublicKey& root = chain.root.public_key();
  auto good = audit::verify_inclusion_proof(proof, root);
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  ASSERT_TRUE(good->valid) << good->failure;
  audit::Json doc = proof;
  doc["format"] = audit::Json::object();
  EXPECT_EQ(audit::verify_inclusion_proof(doc, root).status().code(), Code::kInvalidArgument);
  doc = proof;
  doc["version"] = "2";
  EXPECT_EQ(audit::verify_inclusion_proof(doc, root).status().code(), Code::kUnsupported);
  doc = proof;
  doc["origin"] = 17;
  EXPECT_EQ(audit::verify_inclusion_proof(doc, root).status().code(), Code::kInvalidArgument);
  doc = proof;
  doc["seq"] = "1";
  EXPECT_EQ(audit::verify_inclusion_proof(doc, root).status().code(), Code::kInvalidArgument);
  doc = proof;
  doc["tree_heads"]["body"] = 5;
  EXPECT_EQ(audit::verify_inclusion_proof(doc, root).status().code(), Code::kInvalidArgument);
}

// The same pattern in the verifier: a balances.json whose "format" is not a string threw out of
// verify_bundle (`outpost-audit verify` died) instead of being a malformed_file finding.
TEST(FuzzRegression, BalancesFileWhoseFormatIsNotAStringIsAMalformedFileFinding) {
  const OneStoreChain chain;
  test::TempDir tmp("outpost-fuzz-regression");
  ByteWriter rosters;
  write_frame(rosters, chain.roster.body, chain.roster.sig);
  test::write_file(tmp.file("rosters.bin"),
                   std::string(rosters.bytes().begin(), rosters.bytes().end()));
  test::write_file(tmp.file("manifest.json"),
                   R"({"format": "outpost-audit-bundle", "version": 1, "origins": [],
                       "files": []})");
  test::write_file(tmp.file("balances.json"), R"({"format": 1, "members": []})");
  audit::VerifyOptions opt;
  opt.root = chain.root.public_key();
  opt.workers = 1;
  auto report = audit::verify_bundle(tmp.path(), opt);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  bool malformed_balances = false;
  for (const auto& f : report->findings) {
    malformed_balances |= f.kind == "malformed_file" && f.file == "balances.json";
  }
  EXPECT_TRUE(malformed_balances) << audit::report_text(*report);
}

// --- the committed seed corpora (tests/fuzz/corpus/NAME) still decode -------------------------

std::vector<Bytes> corpus(const std::string& name) {
  std::vector<Bytes> out;
  const fs::path dir = fs::path(OUTPOST_SOURCE_DIR) / "tests/fuzz/corpus" / name;
  for (const auto& it : fs::directory_iterator(dir)) {
    std::ifstream in(it.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

TEST(FuzzCorpus, EveryMessageSeedDecodes) {
  const auto seeds = corpus("sync_message");
  EXPECT_GE(seeds.size(), 7u);
  for (const Bytes& b : seeds) EXPECT_TRUE(decode_message(b).is_ok()) << crypto::to_hex(b);
}

TEST(FuzzCorpus, EveryOpSeedIsAnOpASignedOpOrAnOpReference) {
  const auto seeds = corpus("op");
  EXPECT_GE(seeds.size(), 8u);  // one of each kind at least
  for (const Bytes& b : seeds) {
    ByteReader r(b);
    NodeId origin{};
    std::uint64_t seq = 0;
    EXPECT_TRUE(decode_op(b).is_ok() || read_signed_op(r).is_ok() ||
                parse_op_ref(std::string(b.begin(), b.end()), origin, seq))
        << crypto::to_hex(b);
  }
}

// A document, a certificate in either form, a signed document (body, then its 64-byte
// signature) or a file of framed documents.
bool decodes_as_a_document(ByteView b) {
  ByteReader r(b);
  std::size_t offset = 0;
  return decode_roster(b).is_ok() || decode_rules(b).is_ok() || decode_checkpoint(b).is_ok() ||
         decode_tree_head_set(b).is_ok() || decode_certificate(b).is_ok() ||
         read_signed_certificate(r).is_ok() || read_frame(b, offset, 1 << 20).is_ok();
}

TEST(FuzzCorpus, EveryDocumentSeedDecodes) {
  const auto seeds = corpus("documents");
  EXPECT_GE(seeds.size(), 7u);
  for (const Bytes& b : seeds) {
    const ByteView all(b);
    EXPECT_TRUE(decodes_as_a_document(all) ||
                (b.size() > 64 && decodes_as_a_document(all.first(b.size() - 64))))
        << crypto::to_hex(b);
  }
}

}  // namespace
}  // namespace outpost::sync
