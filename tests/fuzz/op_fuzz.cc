// libFuzzer target for the op decoders (sync/op.h, docs/op-format.md): the signed bytes a peer, a
// bundle or the database hand us. The whole input is tried three ways:
//   - decode_op(input): on success the op passes validate_op, and encode_op gives back exactly
//     the input (the format is canonical: one op, one encoding, one hash);
//   - read_signed_op over the input (the u32-length, bytes, signature framing of OPS messages and
//     bundle files): on success write_signed_op gives back the bytes it consumed, the hash is the
//     op hash, and a signature that verifies under a world node's key is that node's own op;
//   - load_signed_op(input minus its last 64 bytes, those 64 bytes): agrees with decode_op.
// The printable op reference ("ORIGINHEX:SEQ") parser is fed the input as text. Any crash,
// sanitizer report or broken invariant (FUZZ_CHECK) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_world.h"
#include "outpost/sync/op.h"

namespace {

using namespace outpost;
using fuzz::Bytes;
using fuzz::ByteView;

void check_decoded(ByteView input, const sync::Op& op) {
  FUZZ_CHECK(sync::validate_op(op).is_ok());
  const Bytes again = sync::encode_op(op);
  FUZZ_CHECK(again.size() == input.size() && std::equal(again.begin(), again.end(), input.begin()));
  auto twice = sync::decode_op(again);
  FUZZ_CHECK(twice.is_ok() && *twice == op);
  FUZZ_CHECK(std::string(sync::kind_name(op.kind)) != "unknown");
  FUZZ_CHECK(std::string(sync::account_name(op.account)) != "unknown");
}

void fuzz_framing(ByteView input) {
  sync::ByteReader r(input);
  auto signed_op = sync::read_signed_op(r);
  if (!signed_op.is_ok()) return;
  sync::ByteWriter w;
  sync::write_signed_op(w, *signed_op);
  FUZZ_CHECK(w.bytes().size() == r.position() &&
             std::equal(w.bytes().begin(), w.bytes().end(), input.begin()));
  FUZZ_CHECK(signed_op->hash == sync::op_hash(signed_op->signed_bytes, signed_op->sig));
  FUZZ_CHECK(sync::encode_op(signed_op->op) == signed_op->signed_bytes);
  // A signature that verifies under a world node's key is one that node made: the bytes and
  // the hash are those of its logged op (no second encoding or signature of one op verifies).
  const fuzz::WorldNode* n = fuzz::world().find(signed_op->op.origin);
  if (n == nullptr || !sync::verify_op(*signed_op, n->key->public_key()).is_ok()) return;
  const std::uint64_t seq = signed_op->op.seq;
  FUZZ_CHECK(seq >= 1 && seq <= n->log.size());
  FUZZ_CHECK(n->log[seq - 1].signed_bytes == signed_op->signed_bytes);
  FUZZ_CHECK(n->log[seq - 1].hash == signed_op->hash);
}

void fuzz_op_ref(ByteView input) {
  const std::string text(input.begin(), input.end());
  sync::NodeId origin{};
  std::uint64_t seq = 0;
  if (!sync::parse_op_ref(text, origin, seq)) return;
  FUZZ_CHECK(seq >= 1);
  sync::NodeId origin2{};
  std::uint64_t seq2 = 0;
  FUZZ_CHECK(sync::parse_op_ref(sync::op_ref_string(origin, seq), origin2, seq2));
  FUZZ_CHECK(origin2 == origin && seq2 == seq);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const ByteView input(bytes, size);
  auto op = sync::decode_op(input);
  if (op.is_ok()) check_decoded(input, *op);
  fuzz_framing(input);
  if (size >= 64) {
    auto loaded = sync::load_signed_op(input.first(size - 64), input.last(64));
    FUZZ_CHECK(loaded.is_ok() == sync::decode_op(input.first(size - 64)).is_ok());
    if (loaded.is_ok())
      FUZZ_CHECK(loaded->hash == sync::op_hash(loaded->signed_bytes, loaded->sig));
  }
  if (size <= 64) fuzz_op_ref(input);
  return 0;
}
