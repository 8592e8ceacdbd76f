// HQ checkpoints: the RFC 6962 tree head of one origin's log at a seq, signed by the chain's root
// key, and the framing of signed records in audit bundle files. The canonical encoding is in
// docs/audit-bundle.md ("Checkpoint") and pinned by tests/unit/audit_merkle_test.cc.
// Pure functions and value types; thread-compatible.
#pragma once

#include <array>
#include <cstdint>

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
