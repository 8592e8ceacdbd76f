// Sync protocol messages (docs/sync-protocol.md): their types and canonical encodings. Every
// message is "type u8, protocol version u8, body"; decoders are strict (bounded counts and sizes
// from limits.h, no trailing bytes). Pure value code; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/sync/bytes.h"
#include "outpost/sync/op.h"

namespace outpost::sync {

inline constexpr std::uint8_t kSyncProtocolVersion = 1;

using VersionVector = std::map<NodeId, std::uint64_t>;

enum class MsgType : std::uint8_t {
  kHello = 1,         // version vector and metadata versions; first message each way
  kOps = 2,           // a batch of signed ops, per origin in seq order
  kAck = 3,           // receiver's version vector entries after durably applying a batch
  kBlob = 4,          // an HQ-signed document (roster, rules, tree head set) by kind
  kRightsRequest = 5,  // ask the peer to move escrow rights to us
  kRightsReply = 6,    // answer to a rights request (sent after the move op)
  kError = 7,          // the sender closes the session after this, with a reason
};

struct HelloMsg {
  NodeId node{};
  std::uint64_t roster_version = 0;
  std::uint64_t rules_version = 0;
  std::uint64_t wall_ms = 0;  // sender's wall clock, for skew reporting only
  VersionVector vv;
  // Optional tail (a HELLO of an earlier build ends after the vv; then "", 0, 0): the software
  // and schema version (reported only; outpost-top shows them) and the version of the newest HQ
  // tree head set the sender holds (so a peer offers only a newer one).
  std::string software_version;  // at most kSoftwareVersionBytesMax bytes
  std::uint32_t schema_version = 0;
  std::uint64_t tree_heads_version = 0;
};
inline constexpr std::size_t kSoftwareVersionBytesMax = 32;

struct OpsMsg {
  std::vector<SignedOp> ops;
};

struct AckMsg {
  VersionVector vv;
};

// kTreeHeads: HQ's chain-wide tree head set (sync/checkpoint.h, docs/audit-bundle.md).
enum class BlobKind : std::uint8_t { kRoster = 1, kRules = 2, kTreeHeads = 3 };

struct BlobMsg {
  BlobKind kind = BlobKind::kRoster;
  std::uint64_t version = 0;
  Bytes body;
  Bytes sig;
};

struct RightsRequestMsg {
  std::uint64_t request_id = 0;
  MemberId member{};
  Account account = Account::kWallet;
  std::uint64_t amount = 0;
};

struct RightsReplyMsg {
  std::uint64_t request_id = 0;
  std::uint64_t granted = 0;  // 0 = refused
  std::string reason;
};

struct ErrorMsg {
  std::uint16_t code = 0;
  std::string message;
};

using Message = std::variant<HelloMsg, OpsMsg, AckMsg, BlobMsg, RightsRequestMsg, RightsReplyMsg, ErrorMsg>;

Bytes encode_message(const Message& m);
// Parses one message. kUnsupported for an unknown protocol version or type, kCorruption for
// anything malformed or over a bound.
Result<Message> decode_message(ByteView bytes);
const char* message_name(const Message& m);

}  // namespace outpost::sync
