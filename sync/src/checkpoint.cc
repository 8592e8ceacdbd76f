#include "outpost/sync/checkpoint.h"

#include <algorithm>

#include "outpost/sync/merkle.h"

namespace outpost::sync {

namespace {

bool is_zero(ByteView b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

}  // namespace

Status validate_checkpoint(const Checkpoint& cp) {
  if (is_zero(cp.network_id)) return Status::invalid("checkpoint: network id is zero");
  if (is_zero(cp.origin)) return Status::invalid("checkpoint: origin is zero");
  if (cp.tree_size == 0) return Status::invalid("checkpoint: tree size must be at least 1");
  return Status::ok();
}

Bytes encode_checkpoint(const Checkpoint& cp) {
  OUTPOST_CHECK(validate_checkpoint(cp).is_ok());
  ByteWriter w;
  w.raw(kCheckpointMagic);
  w.u8(kCheckpointFormat);
  w.raw(cp.network_id);
  w.raw(cp.origin);
  w.u64(cp.tree_size);
  w.raw(cp.root);
  w.raw(cp.head_hash);
  w.u64(cp.issued.wall_ms);
  w.u32(cp.issued.logical);
  OUTPOST_CHECK(w.bytes().size() == kCheckpointBytes);
  return w.take();
}

Result<Checkpoint> decode_checkpoint(ByteView bytes) {
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t format = 0;
  if (!r.raw(magic) || magic != kCheckpointMagic) {
    return Status::corruption("not a checkpoint (bad magic)");
  }
  if (!r.u8(format)) return Status::corruption("truncated checkpoint");
  if (format != kCheckpointFormat) {
    return Status::unsupported("checkpoint format " + std::to_string(format) +
                               " is not supported");
  }
  if (bytes.size() != kCheckpointBytes) {
    return Status::corruption("checkpoint is " + std::to_string(bytes.size()) + " bytes, not " +
                              std::to_string(kCheckpointBytes));
  }
  Checkpoint cp;
  bool ok = r.raw(cp.network_id) && r.raw(cp.origin) && r.u64(cp.tree_size) && r.raw(cp.root) &&
            r.raw(cp.head_hash) && r.u64(cp.issued.wall_ms) && r.u32(cp.issued.logical);
  if (!ok || !r.at_end()) return Status::corruption("malformed checkpoint");
  Status st = validate_checkpoint(cp);
  if (!st.is_ok()) return Status::corruption(st.message());
  return cp;
}

SignedCheckpoint sign_checkpoint(const Checkpoint& cp, const crypto::SigningKey& root) {
  SignedCheckpoint s;
  s.cp = cp;
  s.body = encode_checkpoint(cp);
  s.sig = root.sign(s.body);
  return s;
}

Result<SignedCheckpoint> verify_checkpoint(ByteView body, ByteView sig,
                                           const crypto::PublicKey& root) {
  if (sig.size() != crypto::Signature{}.size()) {
    return Status::corruption("checkpoint signature must be 64 bytes");
  }
  if (body.size() > 4 * kCheckpointBytes) return Status::corruption("checkpoint too large");
  SignedCheckpoint s;
  std::copy(sig.begin(), sig.end(), s.sig.begin());
  if (!crypto::verify(root, body, s.sig)) {
    return Status::permission("checkpoint is not signed by this chain's root key");
  }
  OUTPOST_ASSIGN_OR_RETURN(s.cp, decode_checkpoint(body));
  s.body.assign(body.begin(), body.end());
  return s;
}

// --- Tree head sets ---

const TreeHead* TreeHeadSet::find(const NodeId& origin) const {
  auto it = std::lower_bound(heads.begin(), heads.end(), origin,
                             [](const TreeHead& h, const NodeId& o) { return h.origin < o; });
  return it != heads.end() && it->origin == origin ? &*it : nullptr;
}

std::uint64_t TreeHeadSet::total_ops() const {
  std::uint64_t n = 0;
  for (const TreeHead& h : heads) n += h.tree_size;
  return n;
}

Status validate_tree_head_set(const TreeHeadSet& set) {
  if (is_zero(set.network_id)) return Status::invalid("tree head set: network id is zero");
  if (set.version == 0) return Status::invalid("tree head set: version must be at least 1");
  if (set.roster_version == 0) {
    return Status::invalid("tree head set: roster version must be at least 1");
  }
  if (set.heads.empty() || set.heads.size() > limits::kOriginsMax) {
    return Status::invalid("tree head set: " + std::to_string(set.heads.size()) +
                           " heads (must be 1.." + std::to_string(limits::kOriginsMax) + ")");
  }
  const Hash32 empty_root = merkle_empty_root();
  for (std::size_t i = 0; i < set.heads.size(); ++i) {
    const TreeHead& h = set.heads[i];
    if (is_zero(h.origin)) return Status::invalid("tree head set: an origin is zero");
    if (i > 0 && !(set.heads[i - 1].origin < h.origin)) {
      return Status::invalid("tree head set: origins are not strictly ascending at " +
                             id_hex(h.origin));
    }
    if (h.tree_size == 0 && (h.root != empty_root || !is_zero(h.head_hash))) {
      return Status::invalid("tree head set: the empty log of " + id_hex(h.origin) +
                             " must have the empty tree's root and a zero head hash");
    }
  }
  return Status::ok();
}

Bytes encode_tree_head_set(const TreeHeadSet& set) {
  OUTPOST_CHECK(validate_tree_head_set(set).is_ok());
  ByteWriter w;
  w.raw(kTreeHeadSetMagic);
  w.u8(kTreeHeadSetFormat);
  w.raw(set.network_id);
  w.u64(set.version);
  w.u64(set.issued.wall_ms);
  w.u32(set.issued.logical);
  w.u64(set.roster_version);
  w.u32(static_cast<std::uint32_t>(set.heads.size()));
  for (const TreeHead& h : set.heads) {
    w.raw(h.origin);
    w.u64(h.tree_size);
    w.raw(h.root);
    w.raw(h.head_hash);
  }
  OUTPOST_CHECK(w.bytes().size() == kTreeHeadSetHeaderBytes + set.heads.size() * kTreeHeadBytes);
  return w.take();
}

Result<TreeHeadSet> decode_tree_head_set(ByteView bytes) {
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t format = 0;
  if (!r.raw(magic) || magic != kTreeHeadSetMagic) {
    return Status::corruption("not a tree head set (bad magic)");
  }
  if (!r.u8(format)) return Status::corruption("truncated tree head set");
  if (format != kTreeHeadSetFormat) {
    return Status::unsupported("tree head set format " + std::to_string(format) +
                               " is not supported");
  }
  TreeHeadSet set;
  std::uint32_t count = 0;
  if (!r.raw(set.network_id) || !r.u64(set.version) || !r.u64(set.issued.wall_ms) ||
      !r.u32(set.issued.logical) || !r.u64(set.roster_version) || !r.u32(count)) {
    return Status::corruption("truncated tree head set");
  }
  // The count is bounded before anything is allocated for it.
  if (count == 0 || count > limits::kOriginsMax) {
    return Status::corruption("tree head set announces " + std::to_string(count) +
                              " heads (must be 1.." + std::to_string(limits::kOriginsMax) + ")");
  }
  const std::size_t expect = kTreeHeadSetHeaderBytes + std::size_t{count} * kTreeHeadBytes;
  if (bytes.size() != expect) {
    return Status::corruption("tree head set of " + std::to_string(count) + " heads is " +
                              std::to_string(bytes.size()) + " bytes, not " +
                              std::to_string(expect));
  }
  set.heads.resize(count);
  for (TreeHead& h : set.heads) {
    if (!r.raw(h.origin) || !r.u64(h.tree_size) || !r.raw(h.root) || !r.raw(h.head_hash)) {
      return Status::corruption("truncated tree head set");
    }
  }
  if (!r.at_end()) return Status::corruption("malformed tree head set");
  Status st = validate_tree_head_set(set);
  if (!st.is_ok()) return Status::corruption(st.message());
  return set;
}

SignedTreeHeadSet sign_tree_head_set(const TreeHeadSet& set, const crypto::SigningKey& root) {
  SignedTreeHeadSet s;
  s.set = set;
  s.body = encode_tree_head_set(set);
  s.sig = root.sign(s.body);
  return s;
}

Result<SignedTreeHeadSet> verify_tree_head_set(ByteView body, ByteView sig,
                                               const crypto::PublicKey& root) {
  if (sig.size() != crypto::Signature{}.size()) {
    return Status::corruption("tree head set signature must be 64 bytes");
  }
  if (body.size() > kTreeHeadSetBytesMax) return Status::corruption("tree head set too large");
  SignedTreeHeadSet s;
  std::copy(sig.begin(), sig.end(), s.sig.begin());
  if (!crypto::verify(root, body, s.sig)) {
    return Status::permission("tree head set is not signed by this chain's root key");
  }
  OUTPOST_ASSIGN_OR_RETURN(s.set, decode_tree_head_set(body));
  s.body.assign(body.begin(), body.end());
  return s;
}

Status check_tree_head_successor(const TreeHeadSet& prev, const TreeHeadSet& next) {
  if (next.network_id != prev.network_id) {
    return Status::invalid("tree head set v" + std::to_string(next.version) +
                           " names another network");
  }
  if (next.version <= prev.version) {
    return Status::invalid("tree head set v" + std::to_string(next.version) +
                           " is not newer than v" + std::to_string(prev.version));
  }
  if (next.roster_version < prev.roster_version) {
    return Status::invalid("tree head set v" + std::to_string(next.version) + " names roster v" +
                           std::to_string(next.roster_version) + ", older than v" +
                           std::to_string(prev.roster_version));
  }
  for (const TreeHead& old : prev.heads) {
    const TreeHead* now = next.find(old.origin);
    if (now == nullptr) {
      return Status::invalid("tree head set v" + std::to_string(next.version) + " drops origin " +
                             id_hex(old.origin));
    }
    if (now->tree_size < old.tree_size) {
      return Status::invalid("tree head set v" + std::to_string(next.version) +
                             " shrinks the log of " + id_hex(old.origin) + " from " +
                             std::to_string(old.tree_size) + " to " +
                             std::to_string(now->tree_size) + " ops");
    }
    if (now->tree_size == old.tree_size &&
        (now->root != old.root || now->head_hash != old.head_hash)) {
      return Status::invalid("tree head set v" + std::to_string(next.version) +
                             " changes the head of " + id_hex(old.origin) + " at " +
                             std::to_string(old.tree_size) + " ops");
    }
  }
  return Status::ok();
}

void write_frame(ByteWriter& w, ByteView body, const crypto::Signature& sig) {
  w.bytes32(body);
  w.raw(sig);
}

Result<Frame> read_frame(ByteView input, std::size_t& offset, std::size_t body_max) {
  if (offset > input.size()) return Status::corruption("frame offset past the end");
  ByteReader r(input.subspan(offset));
  std::uint32_t n = 0;
  if (!r.u32(n)) return Status::corruption("file ends inside a frame's length");
  if (n > body_max) {
    return Status::corruption("frame length " + std::to_string(n) + " is above the maximum " +
                              std::to_string(body_max));
  }
  if (r.remaining() < std::size_t{n} + 64) {
    return Status::corruption("file ends inside a frame (" + std::to_string(r.remaining()) +
                              " of " + std::to_string(std::size_t{n} + 64) + " bytes)");
  }
  Frame f;
  f.body = input.subspan(offset + 4, n);
  std::copy_n(input.begin() + static_cast<std::ptrdiff_t>(offset + 4 + n), 64, f.sig.begin());
  offset += 4 + std::size_t{n} + 64;
  return f;
}

}  // namespace outpost::sync
