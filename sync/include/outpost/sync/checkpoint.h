// HQ checkpoints, signed by the chain's root key: the RFC 6962 tree head of one origin's log at a
// seq (Checkpoint), and the chain-wide tree head set that lists every origin HQ knows with its log
// length, root and head (TreeHeadSet: what makes a removed origin or a cut log visible). Also the
// framing of signed records in audit bundle files. The canonical encodings are in
// docs/audit-bundle.md ("Checkpoint", "Tree head set") and pinned by
// tests/unit/audit_merkle_test.cc. Pure functions and value types; thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/bytes.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/op.h"
#include "outpost/sync/roster.h"

namespace outpost::sync {

inline constexpr std::array<std::uint8_t, 4> kCheckpointMagic = {'O', 'P', 'C', 'K'};
inline constexpr std::uint8_t kCheckpointFormat = 1;
// magic 4, format 1, network 16, origin 16, tree_size 8, root 32, head hash 32, wall_ms 8,
// logical 4.
inline constexpr std::size_t kCheckpointBytes = 121;

// "HQ holds the first tree_size ops of `origin`, durably; their tree head is `root` and the last
// of them has op hash `head_hash`." tree_size is the seq of that last op.
struct Checkpoint {
  NetworkId network_id{};
  NodeId origin{};
  std::uint64_t tree_size = 0;
  Hash32 root{};
  Hash32 head_hash{};
  Hlc issued;  // HQ's clock when it signed (reported, never used for ordering)
  bool operator==(const Checkpoint&) const = default;
};

// A checkpoint with its canonical bytes and the root key's signature over them.
// Invariant: body == encode_checkpoint(cp).
struct SignedCheckpoint {
  Checkpoint cp;
  Bytes body;
  crypto::Signature sig{};
};

// Checks the shape rules: network and origin not all zero, tree_size >= 1. kInvalidArgument.
Status validate_checkpoint(const Checkpoint& cp);
// Returns the canonical bytes of `cp`, which must satisfy validate_checkpoint() (checked).
Bytes encode_checkpoint(const Checkpoint& cp);
// Parses canonical bytes. kCorruption on a wrong magic or length or a value validate_checkpoint()
// refuses; kUnsupported on an unknown format.
Result<Checkpoint> decode_checkpoint(ByteView bytes);
// Encodes `cp` and signs it with the root key.
SignedCheckpoint sign_checkpoint(const Checkpoint& cp, const crypto::SigningKey& root);
// Returns the checkpoint if `sig` is the root's signature over `body` and the body decodes.
// kPermission for a signature that does not verify; decoding errors as decode_checkpoint().
Result<SignedCheckpoint> verify_checkpoint(ByteView body, ByteView sig,
                                           const crypto::PublicKey& root);

// --- Tree head sets ---

inline constexpr std::array<std::uint8_t, 4> kTreeHeadSetMagic = {'O', 'P', 'T', 'H'};
inline constexpr std::uint8_t kTreeHeadSetFormat = 1;
// magic 4, format 1, network 16, version 8, issued wall_ms 8, issued logical 4, roster version 8,
// head count 4.
inline constexpr std::size_t kTreeHeadSetHeaderBytes = 53;
// origin 16, tree size 8, root 32, head hash 32.
inline constexpr std::size_t kTreeHeadBytes = 88;
// Every origin is a roster node, so a set lists at most kOriginsMax heads (~352 KiB).
inline constexpr std::size_t kTreeHeadSetBytesMax =
    kTreeHeadSetHeaderBytes + limits::kOriginsMax * kTreeHeadBytes;
static_assert(kTreeHeadSetBytesMax + 64 * 1024 < limits::kLinkMessageBytesMax,
              "a tree head set travels whole in one sync BLOB (docs/sync-protocol.md, kind 3)");

// One origin's line in a tree head set: HQ holds its ops 1 .. tree_size, their RFC 6962 head is
// `root` and op `tree_size` has op hash `head_hash`. tree_size 0 (a node with no op at HQ) has the
// empty tree's head and an all-zero head hash.
struct TreeHead {
  NodeId origin{};
  std::uint64_t tree_size = 0;
  Hash32 root{};
  Hash32 head_hash{};
  bool operator==(const TreeHead&) const = default;
};

// HQ's chain-wide statement, version `version`: "these are all the origins I know (every node of
// roster `roster_version`, and every origin I hold ops of), and this is how much of each log I
// hold, durably". One self-contained signed blob; successive versions only grow.
struct TreeHeadSet {
  NetworkId network_id{};
  std::uint64_t version = 0;         // 1, 2, 3, ... per network
  Hlc issued;                        // HQ's clock when it signed (reported only)
  std::uint64_t roster_version = 0;  // the roster HQ held; every node of it has a head
  std::vector<TreeHead> heads;       // strictly ascending by origin, 1 .. kOriginsMax
  bool operator==(const TreeHeadSet&) const = default;

  // Returns the head of `origin`, or nullptr when the set does not list it.
  const TreeHead* find(const NodeId& origin) const;
  // Sum of every head's tree size: the ops the set vouches for.
  std::uint64_t total_ops() const;
};

// A tree head set with its canonical bytes and the root key's signature over them.
// Invariant: body == encode_tree_head_set(set).
struct SignedTreeHeadSet {
  TreeHeadSet set;
  Bytes body;
  crypto::Signature sig{};
};

// Checks the shape rules of docs/audit-bundle.md ("Tree head set"): network not zero, version and
// roster version >= 1, 1 .. kOriginsMax heads strictly ascending by non-zero origin, an empty head
// exactly for tree size 0. kInvalidArgument naming the first broken rule.
Status validate_tree_head_set(const TreeHeadSet& set);
// Returns the canonical bytes of `set`, which must satisfy validate_tree_head_set() (checked).
Bytes encode_tree_head_set(const TreeHeadSet& set);
// Parses canonical bytes. kCorruption on a wrong magic, a length that is not the header plus the
// heads it announces, or a rule validate_tree_head_set() refuses; kUnsupported on an unknown
// format.
Result<TreeHeadSet> decode_tree_head_set(ByteView bytes);
// Encodes `set` and signs it with the root key.
SignedTreeHeadSet sign_tree_head_set(const TreeHeadSet& set, const crypto::SigningKey& root);
// Returns the set if `sig` is the root's signature over `body` and the body decodes. kPermission
// for a signature that does not verify; kCorruption for a body above kTreeHeadSetBytesMax; decoding
// errors as decode_tree_head_set().
Result<SignedTreeHeadSet> verify_tree_head_set(ByteView body, ByteView sig,
                                               const crypto::PublicKey& root);
// Checks that `next` may follow `prev` (both valid): same network, a greater version, a roster
// version not lower, and every origin of `prev` still listed with a tree at least as large and,
// at the same size, the same root and head hash. (That a larger tree extends a smaller one needs
// the ops: an RFC 9162 consistency proof, which holders of the log check.) kInvalidArgument
// naming the first origin that breaks a rule.
Status check_tree_head_successor(const TreeHeadSet& prev, const TreeHeadSet& next);

// Framing of every signed record in a bundle file (ops, rosters, checkpoints): u32 LE length n,
// n bytes of body, 64-byte Ed25519 signature. Same as the op framing of docs/op-format.md.
struct Frame {
  ByteView body;  // points into the input
  crypto::Signature sig{};
};
void write_frame(ByteWriter& w, ByteView body, const crypto::Signature& sig);
// Reads the frame at `offset` of `input`, whose body must be at most `body_max` bytes, and
// advances `offset` past it. kCorruption when the length is above the bound or the input ends
// inside the frame (`offset` is left unchanged then).
Result<Frame> read_frame(ByteView input, std::size_t& offset, std::size_t body_max);

}  // namespace outpost::sync
