// RFC 6962 Merkle trees (sync/merkle.h), HQ checkpoints and tree head sets (sync/checkpoint.h).
// Golden vectors are the Certificate Transparency test vectors for the leaves "", 00, 10, 2021,
// 3031, 40414243, 5051..57, 6061..6f, recomputed by hand from RFC 6962 §2.1 with Python's hashlib
// (an encoder independent of this code); every proof of every tree of 1..40 leaves is checked
// against a straightforward recursive reference written from the RFC text. The checkpoint and
// tree head set bytes are written from docs/audit-bundle.md's tables (the tree head set's were
// also produced by a Python struct.pack encoder of that table, byte for byte the same).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"

namespace outpost::sync {
namespace {

std::vector<std::uint8_t> hx(const std::string& s) {
  auto b = crypto::from_hex(s);
  EXPECT_TRUE(b.is_ok()) << s;
  return b.is_ok() ? *b : std::vector<std::uint8_t>();
}

Hash32 h32(const std::string& s) {
  Hash32 h{};
  auto b = hx(s);
  EXPECT_EQ(b.size(), 32u);
  std::copy(b.begin(), b.end(), h.begin());
  return h;
}

std::vector<Hash32> ct_leaves(std::size_t n) {
  static const char* kInputs[] = {"",         "00",       "10",
                                  "2021",     "3031",     "40414243",
                                  "5051525354555657",
                                  "606162636465666768696a6b6c6d6e6f"};
  std::vector<Hash32> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(merkle_leaf_hash(hx(kInputs[i])));
  return out;
}

std::vector<std::string> hexes(const std::vector<Hash32>& v) {
  std::vector<std::string> out;
  for (const auto& h : v) out.push_back(crypto::to_hex(h));
  return out;
}

// Reference MTH, PATH and SUBPROOF, literally as RFC 6962 §2.1 writes them.
std::size_t ref_k(std::size_t n) {
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
Hash32 ref_mth(const std::vector<Hash32>& d, std::size_t lo, std::size_t hi) {
  if (hi - lo == 1) return d[lo];
  const std::size_t k = ref_k(hi - lo);
  return merkle_node_hash(ref_mth(d, lo, lo + k), ref_mth(d, lo + k, hi));
}
void ref_path(const std::vector<Hash32>& d, std::size_t m, std::size_t lo, std::size_t hi,
              std::vector<Hash32>& out) {
  if (hi - lo <= 1) return;
  const std::size_t k = ref_k(hi - lo);
  if (m < k) {
    ref_path(d, m, lo, lo + k, out);
    out.push_back(ref_mth(d, lo + k, hi));
  } else {
    ref_path(d, m - k, lo + k, hi, out);
    out.push_back(ref_mth(d, lo, lo + k));
  }
}
void ref_subproof(const std::vector<Hash32>& d, std::size_t m, std::size_t lo, std::size_t hi,
                  bool b, std::vector<Hash32>& out) {
  const std::size_t n = hi - lo;
  if (m == n) {
    if (!b) out.push_back(ref_mth(d, lo, hi));
    return;
  }
  const std::size_t k = ref_k(n);
  if (m <= k) {
    ref_subproof(d, m, lo, lo + k, b, out);
    out.push_back(ref_mth(d, lo + k, hi));
  } else {
    ref_subproof(d, m - k, lo + k, hi, false, out);
    out.push_back(ref_mth(d, lo, lo + k));
  }
}

std::vector<Hash32> numbered_leaves(std::size_t n) {
  std::vector<Hash32> out;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t b[2] = {static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(i >> 8)};
    out.push_back(merkle_leaf_hash(crypto::ByteView(b, 2)));
  }
  return out;
}

TEST(MerkleGolden, EmptyTreeHeadIsSha256OfNothing) {
  EXPECT_EQ(crypto::to_hex(merkle_empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(merkle_root({}), merkle_empty_root());
}

TEST(MerkleGolden, TreeHeadsOfCtVectorsMatchRfc6962) {
  const char* kRoots[] = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  const auto leaves = ct_leaves(8);
  MerkleAccumulator acc;
  for (std::size_t n = 1; n <= 8; ++n) {
    const std::vector<Hash32> prefix(leaves.begin(), leaves.begin() + static_cast<long>(n));
    EXPECT_EQ(crypto::to_hex(merkle_root(prefix)), kRoots[n - 1]) << "tree of " << n;
    acc.append(leaves[n - 1]);
    EXPECT_EQ(crypto::to_hex(acc.root()), kRoots[n - 1]) << "accumulator of " << n;
  }
}

TEST(MerkleGolden, AuditPathsOfCtVectorsMatchRfc6962) {
  const auto leaves = ct_leaves(8);
  auto path = [&](std::size_t m, std::size_t n) {
    return hexes(merkle_inclusion_proof(
        std::vector<Hash32>(leaves.begin(), leaves.begin() + static_cast<long>(n)), m));
  };
  EXPECT_TRUE(path(0, 1).empty());
  EXPECT_EQ(path(0, 8), (std::vector<std::string>{
                            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}));
  EXPECT_EQ(path(5, 8), (std::vector<std::string>{
                            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}));
  EXPECT_EQ(path(2, 3), (std::vector<std::string>{
                            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}));
  EXPECT_EQ(path(1, 5), (std::vector<std::string>{
                            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}));
}

TEST(MerkleGolden, ConsistencyProofsOfCtVectorsMatchRfc6962) {
  const auto leaves = ct_leaves(8);
  auto proof = [&](std::size_t m, std::size_t n) {
    return hexes(merkle_consistency_proof(
        std::vector<Hash32>(leaves.begin(), leaves.begin() + static_cast<long>(n)), m));
  };
  EXPECT_TRUE(proof(1, 1).empty());
  EXPECT_EQ(proof(1, 8), (std::vector<std::string>{
                             "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}));
  EXPECT_EQ(proof(6, 8), (std::vector<std::string>{
                             "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}));
  EXPECT_EQ(proof(2, 5), (std::vector<std::string>{
                             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}));
  EXPECT_EQ(proof(4, 7), (std::vector<std::string>{
                             "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"}));
}

TEST(MerkleProofs, EveryLeafOfTreesUpTo40VerifiesAndAWrongLeafFails) {
  for (std::size_t n = 1; n <= 40; ++n) {
    const auto leaves = numbered_leaves(n);
    const MerkleTree tree(leaves);
    const Hash32 root = ref_mth(leaves, 0, n);
    ASSERT_EQ(tree.root(n), root) << "n=" << n;
    ASSERT_EQ(merkle_root(leaves), root) << "n=" << n;
    for (std::size_t i = 0; i < n; ++i) {
      const auto proof = tree.inclusion_proof(i, n);
      std::vector<Hash32> want;
      ref_path(leaves, i, 0, n, want);
      ASSERT_EQ(proof, want) << "n=" << n << " i=" << i;
      EXPECT_TRUE(merkle_verify_inclusion(i, n, leaves[i], proof, root)) << n << "/" << i;
      // A wrong leaf, a wrong position, a wrong size or a wrong root must each fail.
      const Hash32 other = leaves[(i + 1) % n];
      if (n > 1) {
        EXPECT_FALSE(merkle_verify_inclusion(i, n, other, proof, root)) << n << "/" << i;
        EXPECT_FALSE(merkle_verify_inclusion((i + 1) % n, n, leaves[i], proof, root));
      }
      EXPECT_FALSE(merkle_verify_inclusion(i, n, merkle_leaf_hash({}), proof, root));
      // A proof for n leaves says nothing about the tree of n + 1 (whose head differs). The
      // size alone is not bound by the path: RFC 9162 relies on the signed (size, root) pair.
      if (n < 40) {
        const auto grown = numbered_leaves(n + 1);
        EXPECT_FALSE(merkle_verify_inclusion(i, n + 1, leaves[i], proof, ref_mth(grown, 0, n + 1)));
      }
      EXPECT_FALSE(merkle_verify_inclusion(n, n, leaves[i], proof, root));
      EXPECT_FALSE(merkle_verify_inclusion(i, n, leaves[i], proof, merkle_empty_root()));
      if (!proof.empty()) {
        auto cut = proof;
        cut.pop_back();
        EXPECT_FALSE(merkle_verify_inclusion(i, n, leaves[i], cut, root)) << n << "/" << i;
        auto longer = proof;
        longer.push_back(root);
        EXPECT_FALSE(merkle_verify_inclusion(i, n, leaves[i], longer, root)) << n << "/" << i;
      }
    }
  }
}

TEST(MerkleProofs, ConsistencyOfEveryPrefixUpTo40VerifiesAndWrongHeadsFail) {
  const auto leaves = numbered_leaves(40);
  const MerkleTree tree(leaves);
  for (std::size_t n = 1; n <= 40; ++n) {
    const Hash32 root_n = ref_mth(leaves, 0, n);
    for (std::size_t m = 1; m <= n; ++m) {
      const Hash32 root_m = ref_mth(leaves, 0, m);
      const auto proof = tree.consistency_proof(m, n);
      std::vector<Hash32> want;
      ref_subproof(leaves, m, 0, n, true, want);
      ASSERT_EQ(proof, want) << m << "->" << n;
      EXPECT_TRUE(merkle_verify_consistency(m, n, root_m, root_n, proof)) << m << "->" << n;
      const Hash32 bogus = merkle_leaf_hash({});
      EXPECT_FALSE(merkle_verify_consistency(m, n, bogus, root_n, proof)) << m << "->" << n;
      EXPECT_FALSE(merkle_verify_consistency(m, n, root_m, bogus, proof)) << m << "->" << n;
      if (m < n) {
        // A head of a different log of the same size must not be consistent.
        auto forked = leaves;
        forked[n - 1] = bogus;
        EXPECT_FALSE(merkle_verify_consistency(m, n, root_m, ref_mth(forked, 0, n), proof));
        auto bad = proof;
        bad.back() = bogus;
        EXPECT_FALSE(merkle_verify_consistency(m, n, root_m, root_n, bad)) << m << "->" << n;
        bad = proof;
        bad.pop_back();
        EXPECT_FALSE(merkle_verify_consistency(m, n, root_m, root_n, bad)) << m << "->" << n;
        EXPECT_FALSE(merkle_verify_consistency(m, n, root_m, root_n, {})) << m << "->" << n;
      }
    }
    EXPECT_FALSE(merkle_verify_consistency(0, n, merkle_empty_root(), root_n, {}));
    EXPECT_FALSE(merkle_verify_consistency(n + 1, n, root_n, root_n, {}));
  }
}

TEST(MerkleProofs, TreeGrownLeafByLeafEqualsTheTreeBuiltAtOnce) {
  std::vector<Hash32> leaves;
  for (int i = 0; i < 70; ++i) {
    const std::string s = std::to_string(i);
    leaves.push_back(merkle_leaf_hash(crypto::view(s)));
  }
  MerkleTree grown;
  EXPECT_EQ(grown.size(), 0u);
  for (std::size_t n = 1; n <= leaves.size(); ++n) {
    grown.append(leaves[n - 1]);
    const MerkleTree built(std::span<const Hash32>(leaves.data(), n));
    ASSERT_EQ(grown.size(), n);
    for (std::size_t m = 1; m <= n; ++m) {
      ASSERT_EQ(grown.root(m), built.root(m)) << n << " leaves, root at " << m;
      ASSERT_EQ(grown.consistency_proof(m, n), built.consistency_proof(m, n)) << n << "/" << m;
    }
    ASSERT_EQ(grown.inclusion_proof(n - 1, n), built.inclusion_proof(n - 1, n));
  }
}

TEST(MerkleAccumulator, FrontierRestoresTheTreeAndKeepsAppending) {
  const auto leaves = numbered_leaves(40);
  MerkleAccumulator acc;
  for (std::size_t n = 1; n <= 40; ++n) {
    acc.append(leaves[n - 1]);
    ASSERT_EQ(acc.root(), ref_mth(leaves, 0, n)) << n;
    auto restored = MerkleAccumulator::from_frontier(acc.size(), acc.frontier());
    ASSERT_TRUE(restored.is_ok());
    for (std::size_t k = n; k < 40; ++k) restored->append(leaves[k]);
    EXPECT_EQ(restored->root(), ref_mth(leaves, 0, 40)) << "restored at " << n;
  }
  EXPECT_EQ(MerkleAccumulator::from_frontier(5, {leaves[0]}).status().code(), Code::kCorruption);
  EXPECT_EQ(MerkleAccumulator().root(), merkle_empty_root());
}

TEST(MerkleLeaves, OpLeafHashIsPrefixedSha256OfBytesThenSignature) {
  const auto bytes = hx("4f505354");
  crypto::Signature sig{};
  sig.fill(0xab);
  std::vector<std::uint8_t> input = bytes;
  input.insert(input.end(), sig.begin(), sig.end());
  EXPECT_EQ(merkle_op_leaf_hash(bytes, sig), merkle_leaf_hash(input));
  // Built by size, not by insert into a one-byte vector (GCC 12 -Warray-bounds false positive).
  std::vector<std::uint8_t> prefixed(input.size() + 1, 0x00);
  std::copy(input.begin(), input.end(), prefixed.begin() + 1);
  EXPECT_EQ(merkle_leaf_hash(input), crypto::sha256(prefixed));
}

Checkpoint golden_checkpoint() {
  Checkpoint cp;
  for (std::size_t i = 0; i < 16; ++i) cp.network_id[i] = static_cast<std::uint8_t>(0x10 + i);
  for (std::size_t i = 0; i < 16; ++i) cp.origin[i] = static_cast<std::uint8_t>(0xa0 + i);
  cp.tree_size = 258;
  cp.root = h32("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
  for (std::size_t i = 0; i < 32; ++i) cp.head_hash[i] = static_cast<std::uint8_t>(0xd0 + i);
  cp.issued = Hlc{1709208000123, 772};
  return cp;
}

// Pins every byte of the checkpoint encoding (docs/audit-bundle.md, "Checkpoint").
const char* kCheckpointHex =
    "4f50434b"                                                          // magic "OPCK"
    "01"                                                                // format 1
    "101112131415161718191a1b1c1d1e1f"                                  // network id
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"                                  // origin
    "0201000000000000"                                                  // tree size 258
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"  // root
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // head hash
    "7b56bcf48d010000"                                                  // issued wall_ms
    "04030000";                                                         // issued logical

TEST(CheckpointFormat, EncodingMatchesGoldenBytes) {
  const Bytes body = encode_checkpoint(golden_checkpoint());
  EXPECT_EQ(crypto::to_hex(body), kCheckpointHex);
  EXPECT_EQ(body.size(), kCheckpointBytes);
  auto back = decode_checkpoint(body);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, golden_checkpoint());
}

TEST(CheckpointFormat, RootSignatureVerifiesAndAnyAlteredByteFails) {
  std::vector<std::uint8_t> seed(32);
  for (std::size_t i = 0; i < 32; ++i) seed[i] = static_cast<std::uint8_t>(i + 1);
  auto root = crypto::SigningKey::from_seed(seed);
  ASSERT_TRUE(root.is_ok());
  const SignedCheckpoint s = sign_checkpoint(golden_checkpoint(), *root);
  auto ok = verify_checkpoint(s.body, s.sig, root->public_key());
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->cp, golden_checkpoint());
  for (std::size_t i = 0; i < s.body.size(); ++i) {
    Bytes bad = s.body;
    bad[i] ^= 0x01;
    EXPECT_EQ(verify_checkpoint(bad, s.sig, root->public_key()).status().code(), Code::kPermission)
        << "byte " << i;
  }
  const crypto::SigningKey other = crypto::SigningKey::generate();
  EXPECT_EQ(verify_checkpoint(s.body, s.sig, other.public_key()).status().code(),
            Code::kPermission);
}

TEST(CheckpointFormat, DecoderRefusesWrongMagicFormatLengthAndZeroSize) {
  Bytes body = hx(kCheckpointHex);
  Bytes bad = body;
  bad[0] = 'X';
  EXPECT_EQ(decode_checkpoint(bad).status().code(), Code::kCorruption);
  bad = body;
  bad[4] = 2;
  EXPECT_EQ(decode_checkpoint(bad).status().code(), Code::kUnsupported);
  bad = body;
  bad.push_back(0);
  EXPECT_EQ(decode_checkpoint(bad).status().code(), Code::kCorruption);
  bad = body;
  bad.pop_back();
  EXPECT_EQ(decode_checkpoint(bad).status().code(), Code::kCorruption);
  bad = body;
  std::fill(bad.begin() + 37, bad.begin() + 45, 0);  // tree size 0
  EXPECT_EQ(decode_checkpoint(bad).status().code(), Code::kCorruption);
}

TreeHeadSet golden_tree_head_set() {
  TreeHeadSet set;
  for (std::size_t i = 0; i < 16; ++i) set.network_id[i] = static_cast<std::uint8_t>(0x10 + i);
  set.version = 7;
  set.issued = Hlc{1709208000123, 772};
  set.roster_version = 5;
  TreeHead a;
  for (std::size_t i = 0; i < 16; ++i) a.origin[i] = static_cast<std::uint8_t>(0xa0 + i);
  a.tree_size = 258;
  a.root = h32("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
  for (std::size_t i = 0; i < 32; ++i) a.head_hash[i] = static_cast<std::uint8_t>(0xd0 + i);
  TreeHead b;  // a node with no op at HQ: the empty tree
  for (std::size_t i = 0; i < 16; ++i) b.origin[i] = static_cast<std::uint8_t>(0xb0 + i);
  b.root = merkle_empty_root();
  set.heads = {a, b};
  return set;
}

// Pins every byte of the tree head set encoding (docs/audit-bundle.md, "Tree head set").
const char* kTreeHeadSetHex =
    "4f505448"                                                          // magic "OPTH"
    "01"                                                                // format 1
    "101112131415161718191a1b1c1d1e1f"                                  // network id
    "0700000000000000"                                                  // version 7
    "7b56bcf48d010000"                                                  // issued wall_ms
    "04030000"                                                          // issued logical
    "0500000000000000"                                                  // roster version 5
    "02000000"                                                          // 2 heads
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"                                  // origin
    "0201000000000000"                                                  // tree size 258
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"  // root
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // head hash
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"                                  // origin
    "0000000000000000"                                                  // tree size 0
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  // SHA-256("")
    "0000000000000000000000000000000000000000000000000000000000000000";  // no head

TEST(TreeHeadSetFormat, EncodingMatchesGoldenBytes) {
  const Bytes body = encode_tree_head_set(golden_tree_head_set());
  EXPECT_EQ(crypto::to_hex(body), kTreeHeadSetHex);
  EXPECT_EQ(body.size(), kTreeHeadSetHeaderBytes + 2 * kTreeHeadBytes);
  auto back = decode_tree_head_set(body);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, golden_tree_head_set());
  EXPECT_EQ(back->total_ops(), 258u);
  ASSERT_NE(back->find(golden_tree_head_set().heads[1].origin), nullptr);
  EXPECT_EQ(back->find(golden_tree_head_set().heads[1].origin)->tree_size, 0u);
  EXPECT_EQ(back->find(NodeId{}), nullptr);
}

TEST(TreeHeadSetFormat, RootSignatureVerifiesAndAnyAlteredByteFails) {
  std::vector<std::uint8_t> seed(32);
  for (std::size_t i = 0; i < 32; ++i) seed[i] = static_cast<std::uint8_t>(i + 1);
  auto root = crypto::SigningKey::from_seed(seed);
  ASSERT_TRUE(root.is_ok());
  const SignedTreeHeadSet s = sign_tree_head_set(golden_tree_head_set(), *root);
  auto ok = verify_tree_head_set(s.body, s.sig, root->public_key());
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->set, golden_tree_head_set());
  EXPECT_EQ(ok->body, s.body);
  for (std::size_t i = 0; i < s.body.size(); ++i) {
    Bytes bad = s.body;
    bad[i] ^= 0x01;
    EXPECT_EQ(verify_tree_head_set(bad, s.sig, root->public_key()).status().code(),
              Code::kPermission)
        << "byte " << i;
  }
  EXPECT_EQ(verify_tree_head_set(s.body, s.sig, crypto::SigningKey::generate().public_key())
                .status()
                .code(),
            Code::kPermission);
  Bytes huge(kTreeHeadSetBytesMax + 1, 0);
  EXPECT_EQ(verify_tree_head_set(huge, s.sig, root->public_key()).status().code(),
            Code::kCorruption);
}

TEST(TreeHeadSetFormat, DecoderRefusesEveryBrokenRule) {
  const Bytes body = hx(kTreeHeadSetHex);
  ASSERT_TRUE(decode_tree_head_set(body).is_ok());
  auto code = [](Bytes b) { return decode_tree_head_set(b).status().code(); };
  auto put_u32 = [](Bytes& b, std::size_t at, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  Bytes bad = body;
  bad[0] = 'X';
  EXPECT_EQ(code(bad), Code::kCorruption) << "magic";
  bad = body;
  bad[4] = 2;
  EXPECT_EQ(code(bad), Code::kUnsupported) << "format";
  bad = body;
  bad.push_back(0);
  EXPECT_EQ(code(bad), Code::kCorruption) << "trailing byte";
  bad = body;
  bad.pop_back();
  EXPECT_EQ(code(bad), Code::kCorruption) << "cut";
  bad = Bytes(body.begin(), body.begin() + 40);
  EXPECT_EQ(code(bad), Code::kCorruption) << "cut in the header";
  bad = body;
  put_u32(bad, 49, 0);
  EXPECT_EQ(code(bad), Code::kCorruption) << "no heads";
  bad = body;
  put_u32(bad, 49, 3);
  EXPECT_EQ(code(bad), Code::kCorruption) << "count above the heads present";
  bad = body;
  put_u32(bad, 49, 0xffffffffu);
  EXPECT_EQ(code(bad), Code::kCorruption) << "count above kOriginsMax, before any allocation";
  bad = body;
  std::fill(bad.begin() + 21, bad.begin() + 29, 0);
  EXPECT_EQ(code(bad), Code::kCorruption) << "version 0";
  bad = body;
  std::fill(bad.begin() + 41, bad.begin() + 49, 0);
  EXPECT_EQ(code(bad), Code::kCorruption) << "roster version 0";
  bad = body;
  std::fill(bad.begin() + 5, bad.begin() + 21, 0);
  EXPECT_EQ(code(bad), Code::kCorruption) << "zero network";
  // The two heads swapped: origins no longer ascend.
  bad = body;
  std::copy(body.begin() + 53 + 88, body.end(), bad.begin() + 53);
  std::copy(body.begin() + 53, body.begin() + 53 + 88, bad.begin() + 53 + 88);
  EXPECT_EQ(code(bad), Code::kCorruption) << "order";
  // The second head names the first's origin.
  bad = body;
  std::copy(body.begin() + 53, body.begin() + 53 + 16, bad.begin() + 53 + 88);
  EXPECT_EQ(code(bad), Code::kCorruption) << "duplicate origin";
  bad = body;
  bad[53 + 88 + 24] ^= 0x01;  // root of the empty log
  EXPECT_EQ(code(bad), Code::kCorruption) << "empty log with a non-empty root";
  bad = body;
  bad[53 + 88 + 56] = 0x01;  // head hash of the empty log
  EXPECT_EQ(code(bad), Code::kCorruption) << "empty log with a head";
}

TEST(TreeHeadSetSuccessor, KeepsEveryOriginAndNeverShrinksOrRewritesALog) {
  const TreeHeadSet prev = golden_tree_head_set();
  TreeHeadSet next = prev;
  next.version = 8;
  next.heads[0].tree_size = 300;
  next.heads[0].root[0] ^= 1;
  next.heads[1].tree_size = 4;  // the empty log grew
  next.heads[1].head_hash[0] = 1;
  EXPECT_TRUE(check_tree_head_successor(prev, next).is_ok());
  TreeHead c;
  c.origin.fill(0xc0);
  c.root = merkle_empty_root();
  next.heads.push_back(c);  // a node enrolled since
  next.roster_version = 6;
  EXPECT_TRUE(check_tree_head_successor(prev, next).is_ok());

  TreeHeadSet bad = next;
  bad.version = 7;
  EXPECT_FALSE(check_tree_head_successor(prev, bad).is_ok()) << "same version";
  bad = next;
  bad.roster_version = 4;
  EXPECT_FALSE(check_tree_head_successor(prev, bad).is_ok()) << "older roster";
  bad = next;
  bad.heads.erase(bad.heads.begin() + 1);
  EXPECT_FALSE(check_tree_head_successor(prev, bad).is_ok()) << "dropped origin";
  bad = next;
  bad.heads[0].tree_size = 257;
  EXPECT_FALSE(check_tree_head_successor(prev, bad).is_ok()) << "shrunk log";
  bad = next;
  bad.heads[0] = prev.heads[0];
  bad.heads[0].head_hash[5] ^= 1;
  EXPECT_FALSE(check_tree_head_successor(prev, bad).is_ok()) << "same size, other head";
  bad = next;
  bad.network_id[0] ^= 1;
  EXPECT_FALSE(check_tree_head_successor(prev, bad).is_ok()) << "other network";
}

TEST(BundleFrames, CutOrOversizeFramesAreCorruptionAndLeaveTheOffset) {
  ByteWriter w;
  crypto::Signature sig{};
  sig.fill(7);
  const Bytes body = {1, 2, 3};
  write_frame(w, body, sig);
  write_frame(w, body, sig);
  const Bytes data = w.take();
  std::size_t offset = 0;
  auto f = read_frame(data, offset, 16);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(Bytes(f->body.begin(), f->body.end()), body);
  EXPECT_EQ(f->sig, sig);
  EXPECT_EQ(offset, 4u + 3 + 64);
  const Bytes cut(data.begin(), data.end() - 1);
  std::size_t at = offset;
  EXPECT_EQ(read_frame(cut, at, 16).status().code(), Code::kCorruption);
  EXPECT_EQ(at, offset);
  at = 0;
  EXPECT_EQ(read_frame(data, at, 2).status().code(), Code::kCorruption);
  EXPECT_EQ(at, 0u);
}

}  // namespace
}  // namespace outpost::sync
