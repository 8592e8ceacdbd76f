// Sync protocol messages (docs/sync-protocol.md): their types and canonical encodings. Every
// message is "type u8, protocol version u8, body"; decoders are strict (bounded counts and sizes
// from limits.h, no trailing bytes). Pure value code; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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
  kAlerts = 8,         // alerts the sender raised itself, for HQ (only after the peer's ALERTS_ACK)
  kAlertsAck = 9,      // "I hold your alerts up to this id": asks for them, then acknowledges
};

// Capabilities a HELLO announces in its optional `features` field. A node sends a message type
// that came after protocol version 1's first seven only to a peer whose HELLO announced it, so an
// older build never receives a message it cannot decode. Unknown bits are ignored.
inline constexpr std::uint32_t kFeatureAlerts = 1;  // understands ALERTS and ALERTS_ACK
inline constexpr std::uint32_t kFeaturesOfThisBuild = kFeatureAlerts;

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
  // Optional after the tree head set version (absent in a HELLO of an earlier build: then 0).
  std::uint32_t features = 0;
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

// One alert a node raised itself (its own alerts table), as it travels to HQ. The message names no
// sender: the receiver attributes it to the session's authenticated peer.
struct AlertRecord {
  std::uint64_t id = 0;     // the sender's alert number, 1..kAlertIdMax; ascending in a message
  std::uint64_t at_ms = 0;  // the sender's wall clock when raised (reported only), <= kAlertIdMax
  std::string kind;         // 1..kAlertKindBytesMax bytes of [a-z0-9_]
  std::optional<NodeId> about;  // the node the alert is about, when there is one
  std::string message;          // printable UTF-8, at most kAlertMessageBytesMax bytes
};

struct AlertsMsg {
  std::vector<AlertRecord> alerts;  // 1..kSyncAlertsPerMessageMax
};

struct AlertsAckMsg {
  std::uint64_t upto = 0;  // the highest alert id of the peer held durably, <= kAlertIdMax
};

struct ErrorMsg {
  std::uint16_t code = 0;
  std::string message;
};

using Message = std::variant<HelloMsg, OpsMsg, AckMsg, BlobMsg, RightsRequestMsg, RightsReplyMsg, ErrorMsg,
                             AlertsMsg, AlertsAckMsg>;

Bytes encode_message(const Message& m);
// Parses one message. kUnsupported for an unknown protocol version or type, kCorruption for
// anything malformed or over a bound.
Result<Message> decode_message(ByteView bytes);
const char* message_name(const Message& m);

// Returns `text` as an alert may carry it: every control character and every byte that is not
// part of well-formed UTF-8 replaced by '?', cut at a character boundary to at most `max_bytes`.
std::string clean_alert_text(std::string_view text, std::size_t max_bytes);
// True for an alert kind the decoder accepts: 1..kAlertKindBytesMax bytes of [a-z0-9_].
bool is_alert_kind(std::string_view kind);

}  // namespace outpost::sync
