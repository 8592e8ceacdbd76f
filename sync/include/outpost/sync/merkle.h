// Merkle trees of RFC 6962 / RFC 9162 (Certificate Transparency) over SHA-256: the tree head HQ
// signs in a checkpoint, audit paths (inclusion proofs) and consistency proofs. An origin's log is
// the leaf sequence; leaf i (0-based) is the op with seq i + 1. Pure functions and value types;
// thread-compatible. Specified in docs/audit-bundle.md, pinned by tests/unit/audit_merkle_test.cc.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"

namespace outpost::sync {

using Hash32 = crypto::Hash32;

// SHA-256(0x00 || leaf_input): the hash of one leaf (RFC 6962 §2.1).
Hash32 merkle_leaf_hash(crypto::ByteView leaf_input);
// The leaf hash of a signed op: SHA-256(0x00 || signed_bytes || sig).
Hash32 merkle_op_leaf_hash(crypto::ByteView signed_bytes, const crypto::Signature& sig);
// SHA-256(0x01 || left || right): an interior node.
Hash32 merkle_node_hash(const Hash32& left, const Hash32& right);
// The head of the empty tree: SHA-256 of the empty string.
Hash32 merkle_empty_root();

// Returns MTH(D[n]) over the given leaf hashes (n = leaves.size(), may be 0).
Hash32 merkle_root(std::span<const Hash32> leaves);
// Returns PATH(index, D[n]): the audit path of leaf `index` in the tree of all `leaves`, ordered
// from the leaf's sibling up to the root's child. Requires index < leaves.size() (checked).
std::vector<Hash32> merkle_inclusion_proof(std::span<const Hash32> leaves, std::uint64_t index);
// Returns PROOF(m, D[n]): the consistency proof from the tree of the first `m` leaves to the tree
// of all of them. Requires 1 <= m <= leaves.size() (checked); empty when m == n.
std::vector<Hash32> merkle_consistency_proof(std::span<const Hash32> leaves, std::uint64_t m);

// Verifies an audit path (RFC 9162 §2.1.3.2): true iff `proof` proves that `leaf_hash` is leaf
// `index` of the tree of `tree_size` leaves whose head is `root`. False for index >= tree_size.
bool merkle_verify_inclusion(std::uint64_t index, std::uint64_t tree_size, const Hash32& leaf_hash,
                             std::span<const Hash32> proof, const Hash32& root);
// Verifies a consistency proof (RFC 9162 §2.1.4.2): true iff the tree of `m` leaves with head
// `root_m` is a prefix of the tree of `n` leaves with head `root_n`. m == n needs an empty proof
// and equal roots; m == 0 or m > n is refused (false).
bool merkle_verify_consistency(std::uint64_t m, std::uint64_t n, const Hash32& root_m,
                               const Hash32& root_n, std::span<const Hash32> proof);

// Every level of a tree, kept so that the head of any prefix and proofs between any two sizes cost
// O(log^2 n) hashes instead of O(n). Memory: about 2n hashes.
class MerkleTree {
 public:
  MerkleTree() = default;
  explicit MerkleTree(std::span<const Hash32> leaves);

  // Appends one leaf and every node it completes (one hash per leaf, amortized): a tree grown
  // leaf by leaf equals the tree built from all of them at once.
  void append(const Hash32& leaf_hash);

  std::uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  // Head of the tree of the first `tree_size` leaves (tree_size <= size(), checked).
  Hash32 root(std::uint64_t tree_size) const;
  // Audit path of leaf `index` in the tree of the first `tree_size` leaves.
  std::vector<Hash32> inclusion_proof(std::uint64_t index, std::uint64_t tree_size) const;
  // Consistency proof from the first `m` leaves to the first `n` (1 <= m <= n <= size()).
  std::vector<Hash32> consistency_proof(std::uint64_t m, std::uint64_t n) const;

 private:
  // MTH of leaves [lo, hi), hi > lo.
  Hash32 range_root(std::uint64_t lo, std::uint64_t hi) const;
  void path(std::uint64_t index, std::uint64_t lo, std::uint64_t hi,
            std::vector<Hash32>& out) const;
  void subproof(std::uint64_t m, std::uint64_t lo, std::uint64_t hi, bool whole,
                std::vector<Hash32>& out) const;
  std::vector<std::vector<Hash32>> levels_;  // levels_[h][i] = root of leaves [i*2^h, (i+1)*2^h)
};

// Appends leaves one at a time and yields the head of the tree so far: the "compact range" of the
// perfect subtrees covering the leaves (at most 64 hashes). Its frontier lets a bundle that leaves
// out a log's first ops still recompute the heads HQ signed (docs/audit-bundle.md).
class MerkleAccumulator {
 public:
  MerkleAccumulator() = default;
  // Restores an accumulator of `size` leaves from its frontier (the roots of the perfect subtrees,
  // largest first). kCorruption when the number of hashes is not popcount(size).
  static Result<MerkleAccumulator> from_frontier(std::uint64_t size,
                                                 std::vector<Hash32> frontier);

  void append(const Hash32& leaf_hash);
  std::uint64_t size() const { return size_; }
  // Head of the tree of all leaves appended so far (merkle_empty_root() when none).
  Hash32 root() const;
  // Roots of the perfect subtrees covering the leaves, largest (leftmost) first.
  const std::vector<Hash32>& frontier() const { return frontier_; }

 private:
  std::uint64_t size_ = 0;
  std::vector<Hash32> frontier_;
};

}  // namespace outpost::sync
