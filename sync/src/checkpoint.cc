#include "outpost/sync/checkpoint.h"

#include <algorithm>

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
