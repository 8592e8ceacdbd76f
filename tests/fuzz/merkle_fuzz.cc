// libFuzzer target for the Merkle tree code (sync/merkle.h, RFC 6962 / RFC 9162): the proofs an
// auditor checks and the frontier a partial audit bundle carries. The input picks a tree
// (bytes 0-1: leaf count 1..256 and the seed of the leaf hashes), a leaf and a prefix size (bytes
// 2-3), and the rest is a proof or frontier of the attacker's choosing, 32 bytes a hash. Checks:
//   - MerkleTree, merkle_root and MerkleAccumulator agree on the head of every prefix;
//   - the genuine inclusion and consistency proofs verify, and the one-shot and tree functions
//     give the same proofs;
//   - a proof from the input verifies only when it is the genuine proof (for the index and tree
//     size it claims), and a frontier from the input restores an accumulator only with the
//     right number of hashes.
// Any crash, sanitizer report or broken invariant (FUZZ_CHECK) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_world.h"
#include "outpost/sync/merkle.h"

namespace {

using namespace outpost;
using fuzz::ByteView;
using sync::Hash32;

std::vector<Hash32> hashes_of(ByteView bytes, std::size_t max) {
  std::vector<Hash32> out;
  for (std::size_t pos = 0; pos + 32 <= bytes.size() && out.size() < max; pos += 32) {
    Hash32 h{};
    std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(pos), 32, h.begin());
    out.push_back(h);
  }
  return out;
}

// The accumulator against the tree at every prefix; the one-shot merkle_root at prefix m and n.
void check_heads(const std::vector<Hash32>& leaves, const sync::MerkleTree& tree, std::uint64_t m) {
  sync::MerkleAccumulator acc;
  FUZZ_CHECK(acc.root() == sync::merkle_empty_root());
  for (std::size_t k = 1; k <= leaves.size(); ++k) {
    acc.append(leaves[k - 1]);
    const Hash32 head = tree.root(k);
    FUZZ_CHECK(acc.size() == k && acc.root() == head);
    if (k == m || k == leaves.size()) {
      FUZZ_CHECK(sync::merkle_root(std::span(leaves).first(k)) == head);
    }
  }
}

void check_inclusion(const std::vector<Hash32>& leaves, const sync::MerkleTree& tree,
                     std::uint64_t index, std::uint64_t size, ByteView attack) {
  const Hash32 root = tree.root(size);
  const auto proof = tree.inclusion_proof(index, size);
  FUZZ_CHECK(proof == sync::merkle_inclusion_proof(std::span(leaves).first(size), index));
  FUZZ_CHECK(sync::merkle_verify_inclusion(index, size, leaves[index], proof, root));
  if (index + 1 < size) {
    FUZZ_CHECK(!sync::merkle_verify_inclusion(index + 1, size, leaves[index], proof, root));
  }
  FUZZ_CHECK(!sync::merkle_verify_inclusion(size, size, leaves[index], proof, root));
  const auto forged = hashes_of(attack, 65);
  if (sync::merkle_verify_inclusion(index, size, leaves[index], forged, root)) {
    FUZZ_CHECK(forged == proof);
  }
}

void check_consistency(const std::vector<Hash32>& leaves, const sync::MerkleTree& tree,
                       std::uint64_t m, ByteView attack) {
  const std::uint64_t n = leaves.size();
  const auto proof = tree.consistency_proof(m, n);
  FUZZ_CHECK(proof == sync::merkle_consistency_proof(leaves, m));
  FUZZ_CHECK(sync::merkle_verify_consistency(m, n, tree.root(m), tree.root(n), proof));
  FUZZ_CHECK(!sync::merkle_verify_consistency(0, n, tree.root(m), tree.root(n), proof));
  FUZZ_CHECK(!sync::merkle_verify_consistency(n + 1, n, tree.root(m), tree.root(n), proof));
  const auto forged = hashes_of(attack, 130);
  if (sync::merkle_verify_consistency(m, n, tree.root(m), tree.root(n), forged)) {
    FUZZ_CHECK(forged == proof);
  }
}

void check_frontier(const std::vector<Hash32>& leaves, const Hash32& tree_root, std::uint64_t m,
                    ByteView attack) {
  sync::MerkleAccumulator prefix;
  for (std::uint64_t i = 0; i < m; ++i) prefix.append(leaves[i]);
  auto restored = sync::MerkleAccumulator::from_frontier(m, prefix.frontier());
  FUZZ_CHECK(restored.is_ok());
  for (std::uint64_t i = m; i < leaves.size(); ++i) restored->append(leaves[i]);
  FUZZ_CHECK(restored->root() == tree_root);
  // An attacker's frontier: any size, any hashes. Restores only with popcount(size) hashes.
  if (attack.size() < 8) return;
  std::uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size |= std::uint64_t{attack[i]} << (8 * i);
  const auto frontier = hashes_of(attack.subspan(8), 64);
  auto acc = sync::MerkleAccumulator::from_frontier(size, frontier);
  FUZZ_CHECK(acc.is_ok() == (static_cast<std::size_t>(std::popcount(size)) == frontier.size()));
  if (!acc.is_ok()) return;
  (void)acc->root();
  if (size < (std::uint64_t{1} << 62)) {
    acc->append(leaves[0]);
    FUZZ_CHECK(acc->size() == size + 1);
    FUZZ_CHECK(acc->frontier().size() == static_cast<std::size_t>(std::popcount(size + 1)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size < 4) return 0;
  const std::size_t n = std::size_t{bytes[0]} + 1;
  std::vector<Hash32> leaves;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t input[3] = {bytes[1], static_cast<std::uint8_t>(i),
                                   static_cast<std::uint8_t>(i >> 8)};
    leaves.push_back(sync::merkle_leaf_hash(ByteView(input, 3)));
  }
  const sync::MerkleTree tree(leaves);
  FUZZ_CHECK(tree.size() == n);
  const std::uint64_t m = bytes[3] % n + 1;  // a prefix size, 1..n
  check_heads(leaves, tree, m);
  const std::uint64_t index = bytes[2] % m;  // a leaf of that prefix
  const ByteView attack(bytes + 4, size - 4);
  check_inclusion(leaves, tree, index, m, attack);
  check_consistency(leaves, tree, m, attack);
  check_frontier(leaves, tree.root(n), m, attack);
  return 0;
}
