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

#include "outpost/audit/proof.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/op.h"
#include "outpost/sync/protocol.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rules.h"
#include "test_util.h"

namespace outpost::sync {
namespace {

namespace fs = std::filesystem;

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
  const std::string head = "0101" "606162636465666768696a6b6c6d6e6f" "0100000000000000"
                           "0000010000000000" "00505c18a3010000" "02000000";
  const Bytes sorted = unhex(head + b + "0800000000000000" + a + "0000000000000000");
  const Bytes unsorted = unhex(head + a + "0000000000000000" + b + "0800000000000000");
  auto good = decode_message(sorted);
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_EQ(std::get<HelloMsg>(*good).vv.size(), 2u);
  EXPECT_EQ(decode_message(unsorted).status().code(), Code::kCorruption);
  // The same rule for ACK, whose body is a version vector alone.
  const Bytes ack = unhex("0301" "02000000" + a + "0100000000000000" + b + "0200000000000000");
  EXPECT_EQ(decode_message(ack).status().code(), Code::kCorruption);
  AckMsg m;
  m.vv = {{*parse_id(a), 1}, {*parse_id(b), 2}};
  EXPECT_TRUE(decode_message(encode_message(m)).is_ok());
}

// bundle_fuzz: `outpost-audit prove` sized its Merkle leaves by the tree size of the newest
// checkpoint in checkpoints.bin, read before anything checks it, so a bundle naming a tree of
// 2^40 ops made it allocate 32 TiB and die (std::bad_alloc) instead of refusing the bundle.
TEST(FuzzRegression, ProofFromABundleWhoseCheckpointClaimsAHugeTreeIsRefusedNotAllocated) {
  test::TempDir tmp("outpost-fuzz-regression");
  const std::string dir = tmp.path();
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
  Checkpoint cp;
  cp.network_id.fill(0x33);
  cp.origin = op.origin;
  cp.tree_size = std::uint64_t{1} << 40;
  cp.root = signed_op.hash;
  cp.head_hash = signed_op.hash;
  const SignedCheckpoint scp = sign_checkpoint(cp, key);
  ByteWriter cps;
  write_frame(cps, scp.body, scp.sig);
  const std::string origin = id_hex(op.origin);
  std::filesystem::create_directories(dir + "/ops");
  auto text = [](const Bytes& b) { return std::string(b.begin(), b.end()); };
  test::write_file(dir + "/ops/" + origin + ".ops", text(ops.bytes()));
  test::write_file(dir + "/checkpoints.bin", text(cps.bytes()));
  test::write_file(dir + "/manifest.json",
                   R"({"format": "outpost-audit-bundle", "version": 1, "files": [],
                       "origins": [{"origin": ")" + origin + R"(", "file": "ops/)" + origin +
                       R"(.ops"}]})");
  auto proof = audit::prove_inclusion(dir, op.origin, 1);
  EXPECT_EQ(proof.status().code(), Code::kCorruption) << proof.status().to_string();
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
