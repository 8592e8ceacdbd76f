// RFC 6962 §2.1 tree hashing and proofs, and the RFC 9162 §2.1.3.2 / §2.1.4.2 verification
// algorithms, written from the RFC text. The recursive definitions (MTH, PATH, SUBPROOF) split a
// range of n > 1 leaves at k, the largest power of two smaller than n; every left part is then a
// perfect subtree aligned on a multiple of its size, which MerkleTree keeps precomputed.
#include "outpost/sync/merkle.h"

#include <bit>

namespace outpost::sync {

namespace {

constexpr std::uint8_t kLeafPrefix = 0x00;
constexpr std::uint8_t kNodePrefix = 0x01;

// Largest power of two strictly smaller than n (n >= 2).
std::uint64_t split_point(std::uint64_t n) { return std::bit_floor(n - 1); }

}  // namespace

Hash32 merkle_leaf_hash(crypto::ByteView leaf_input) {
  const std::uint8_t prefix = kLeafPrefix;
  return crypto::sha256({crypto::ByteView(&prefix, 1), leaf_input});
}

Hash32 merkle_op_leaf_hash(crypto::ByteView signed_bytes, const crypto::Signature& sig) {
  const std::uint8_t prefix = kLeafPrefix;
  return crypto::sha256({crypto::ByteView(&prefix, 1), signed_bytes, crypto::ByteView(sig)});
}

Hash32 merkle_node_hash(const Hash32& left, const Hash32& right) {
  const std::uint8_t prefix = kNodePrefix;
  return crypto::sha256(
      {crypto::ByteView(&prefix, 1), crypto::ByteView(left), crypto::ByteView(right)});
}

Hash32 merkle_empty_root() { return crypto::sha256(crypto::ByteView()); }

Hash32 merkle_root(std::span<const Hash32> leaves) {
  if (leaves.empty()) return merkle_empty_root();
  return MerkleTree(leaves).root(leaves.size());
}

std::vector<Hash32> merkle_inclusion_proof(std::span<const Hash32> leaves, std::uint64_t index) {
  OUTPOST_CHECK(index < leaves.size());
  return MerkleTree(leaves).inclusion_proof(index, leaves.size());
}

std::vector<Hash32> merkle_consistency_proof(std::span<const Hash32> leaves, std::uint64_t m) {
  OUTPOST_CHECK(m >= 1 && m <= leaves.size());
  return MerkleTree(leaves).consistency_proof(m, leaves.size());
}

bool merkle_verify_inclusion(std::uint64_t index, std::uint64_t tree_size, const Hash32& leaf_hash,
                             std::span<const Hash32> proof, const Hash32& root) {
  if (index >= tree_size) return false;
  std::uint64_t fn = index;
  std::uint64_t sn = tree_size - 1;
  Hash32 r = leaf_hash;
  for (const Hash32& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      r = merkle_node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

bool merkle_verify_consistency(std::uint64_t m, std::uint64_t n, const Hash32& root_m,
                               const Hash32& root_n, std::span<const Hash32> proof) {
  if (m == 0 || m > n) return false;
  if (m == n) return proof.empty() && root_m == root_n;
  if (proof.empty()) return false;
  std::vector<Hash32> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(m)) path.push_back(root_m);
  path.insert(path.end(), proof.begin(), proof.end());
  std::uint64_t fn = m - 1;
  std::uint64_t sn = n - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash32 fr = path[0];
  Hash32 sr = path[0];
  for (std::size_t i = 1; i < path.size(); ++i) {
    const Hash32& c = path[i];
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      fr = merkle_node_hash(c, fr);
      sr = merkle_node_hash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = merkle_node_hash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && fr == root_m && sr == root_n;
}

MerkleTree::MerkleTree(std::span<const Hash32> leaves) {
  if (leaves.empty()) return;
  levels_.emplace_back(leaves.begin(), leaves.end());
  while (levels_.back().size() >= 2) {
    const std::vector<Hash32>& below = levels_.back();
    std::vector<Hash32> up;
    up.reserve(below.size() / 2);
    for (std::size_t i = 0; i + 1 < below.size(); i += 2) {
      up.push_back(merkle_node_hash(below[i], below[i + 1]));
    }
    levels_.push_back(std::move(up));
  }
}

void MerkleTree::append(const Hash32& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf_hash);
  // Each level with an even count just closed a pair: its parent is new.
  for (std::size_t h = 0; levels_[h].size() % 2 == 0; ++h) {
    if (levels_.size() == h + 1) levels_.emplace_back();
    const std::vector<Hash32>& below = levels_[h];
    levels_[h + 1].push_back(merkle_node_hash(below[below.size() - 2], below.back()));
  }
}

Hash32 MerkleTree::range_root(std::uint64_t lo, std::uint64_t hi) const {
  const std::uint64_t n = hi - lo;
  if (std::has_single_bit(n) && lo % n == 0) {
    const int h = std::countr_zero(n);
    return levels_[static_cast<std::size_t>(h)][lo >> h];
  }
  const std::uint64_t k = split_point(n);
  return merkle_node_hash(range_root(lo, lo + k), range_root(lo + k, hi));
}

Hash32 MerkleTree::root(std::uint64_t tree_size) const {
  OUTPOST_CHECK(tree_size <= size());
  if (tree_size == 0) return merkle_empty_root();
  return range_root(0, tree_size);
}

void MerkleTree::path(std::uint64_t index, std::uint64_t lo, std::uint64_t hi,
                      std::vector<Hash32>& out) const {
  const std::uint64_t n = hi - lo;
  if (n <= 1) return;
  const std::uint64_t k = split_point(n);
  if (index < lo + k) {
    path(index, lo, lo + k, out);
    out.push_back(range_root(lo + k, hi));
  } else {
    path(index, lo + k, hi, out);
    out.push_back(range_root(lo, lo + k));
  }
}

std::vector<Hash32> MerkleTree::inclusion_proof(std::uint64_t index,
                                                std::uint64_t tree_size) const {
  OUTPOST_CHECK(index < tree_size && tree_size <= size());
  std::vector<Hash32> out;
  path(index, 0, tree_size, out);
  return out;
}

void MerkleTree::subproof(std::uint64_t m, std::uint64_t lo, std::uint64_t hi, bool whole,
                          std::vector<Hash32>& out) const {
  const std::uint64_t n = hi - lo;
  if (m == n) {
    if (!whole) out.push_back(range_root(lo, hi));
    return;
  }
  const std::uint64_t k = split_point(n);
  if (m <= k) {
    subproof(m, lo, lo + k, whole, out);
    out.push_back(range_root(lo + k, hi));
  } else {
    subproof(m - k, lo + k, hi, false, out);
    out.push_back(range_root(lo, lo + k));
  }
}

std::vector<Hash32> MerkleTree::consistency_proof(std::uint64_t m, std::uint64_t n) const {
  OUTPOST_CHECK(m >= 1 && m <= n && n <= size());
  std::vector<Hash32> out;
  subproof(m, 0, n, true, out);
  return out;
}

Result<MerkleAccumulator> MerkleAccumulator::from_frontier(std::uint64_t size,
                                                           std::vector<Hash32> frontier) {
  if (static_cast<std::size_t>(std::popcount(size)) != frontier.size()) {
    return Status::corruption("a Merkle frontier of " + std::to_string(size) + " leaves has " +
                              std::to_string(std::popcount(size)) + " hashes, not " +
                              std::to_string(frontier.size()));
  }
  MerkleAccumulator acc;
  acc.size_ = size;
  acc.frontier_ = std::move(frontier);
  return acc;
}

void MerkleAccumulator::append(const Hash32& leaf_hash) {
  Hash32 h = leaf_hash;
  // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
  for (std::uint64_t s = size_; (s & 1) != 0; s >>= 1) {
    h = merkle_node_hash(frontier_.back(), h);
    frontier_.pop_back();
  }
  frontier_.push_back(h);
  ++size_;
}

Hash32 MerkleAccumulator::root() const {
  if (frontier_.empty()) return merkle_empty_root();
  Hash32 r = frontier_.back();
  for (std::size_t i = frontier_.size() - 1; i-- > 0;) r = merkle_node_hash(frontier_[i], r);
  return r;
}

}  // namespace outpost::sync
