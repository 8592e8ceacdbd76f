// libFuzzer target for the sync protocol message decoder (sync/protocol.h,
// docs/sync-protocol.md): the plaintext of every frame a peer sends after the handshake. The input
// is one message. On success:
//   - encode_message gives back exactly the input (the encoding is canonical), except for a HELLO
//     of an earlier build that ends before one of its optional tails (after the version vector,
//     or after the tree head set version): its re-encoding is the input plus the missing tails
//     with empty values, and decodes to the same message;
//   - every op of an OPS message has a hash equal to its op hash and canonical signed bytes.
// Any crash, sanitizer report or broken invariant (FUZZ_CHECK) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <variant>

#include "fuzz_world.h"
#include "outpost/sync/protocol.h"

namespace {

using namespace outpost;
using fuzz::Bytes;
using fuzz::ByteView;

// Bytes of the optional HELLO tails when every value is empty: the reported versions (str16 "",
// u32, u64) and the features (u32).
constexpr std::size_t kEmptyVersionsTailBytes = 2 + 4 + 8;
constexpr std::size_t kEmptyFeaturesTailBytes = 4;

// True when `again` is `input` plus the HELLO tails an earlier build leaves out, all empty.
bool is_short_hello(const sync::Message& m, ByteView input, const Bytes& again) {
  const auto* hello = std::get_if<sync::HelloMsg>(&m);
  if (hello == nullptr || hello->features != 0 || again.size() <= input.size() ||
      !std::equal(input.begin(), input.end(), again.begin())) {
    return false;
  }
  const std::size_t added = again.size() - input.size();
  const bool no_versions = hello->software_version.empty() && hello->schema_version == 0 &&
                           hello->tree_heads_version == 0;
  const bool zeros = std::all_of(again.begin() + static_cast<std::ptrdiff_t>(input.size()),
                                 again.end(), [](std::uint8_t b) { return b == 0; });
  return zeros && (added == kEmptyFeaturesTailBytes ||
                   (no_versions && added == kEmptyVersionsTailBytes + kEmptyFeaturesTailBytes));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const ByteView input(bytes, size);
  auto msg = sync::decode_message(input);
  if (!msg.is_ok()) {
    FUZZ_CHECK(!msg.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(sync::message_name(*msg) != nullptr);
  const Bytes again = sync::encode_message(*msg);
  const bool same =
      again.size() == input.size() && std::equal(again.begin(), again.end(), input.begin());
  FUZZ_CHECK(same || is_short_hello(*msg, input, again));
  auto twice = sync::decode_message(again);
  FUZZ_CHECK(twice.is_ok() && twice->index() == msg->index());
  FUZZ_CHECK(sync::encode_message(*twice) == again);
  if (const auto* ops = std::get_if<sync::OpsMsg>(&*msg)) {
    for (const auto& op : ops->ops) {
      FUZZ_CHECK(op.hash == sync::op_hash(op.signed_bytes, op.sig));
      FUZZ_CHECK(sync::encode_op(op.op) == op.signed_bytes);
    }
  }
  return 0;
}
