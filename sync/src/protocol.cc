#include "outpost/sync/protocol.h"

#include "outpost/base/limits.h"

namespace outpost::sync {

namespace {

// The largest HQ-signed document: a roster (limits.h ties it to the link message bound).
constexpr std::size_t kBlobBytesMax = limits::kRosterBytesMax;
constexpr std::size_t kReasonBytesMax = 512;

void write_vv(ByteWriter& w, const VersionVector& vv) {
  w.u32(static_cast<std::uint32_t>(vv.size()));
  for (const auto& [origin, seq] : vv) {
    w.raw(origin);
    w.u64(seq);
  }
}

bool read_vv(ByteReader& r, VersionVector& vv) {
  std::uint32_t n = 0;
  if (!r.u32(n) || n > limits::kOriginsMax) return false;
  for (std::uint32_t i = 0; i < n; ++i) {
    NodeId id{};
    std::uint64_t seq = 0;
    if (!r.raw(id) || !r.u64(seq)) return false;
    // Strictly ascending origins, as write_vv writes them: one vector has one encoding.
    if (!vv.empty() && !(vv.rbegin()->first < id)) return false;
    vv.emplace_hint(vv.end(), id, seq);
  }
  return true;
}

struct Encoder {
  ByteWriter& w;
  void operator()(const HelloMsg& m) {
    w.raw(m.node);
    w.u64(m.roster_version);
    w.u64(m.rules_version);
    w.u64(m.wall_ms);
    write_vv(w, m.vv);
    w.str16(std::string_view(m.software_version).substr(0, kSoftwareVersionBytesMax));
    w.u32(m.schema_version);
    w.u64(m.tree_heads_version);
  }
  void operator()(const OpsMsg& m) {
    w.u32(static_cast<std::uint32_t>(m.ops.size()));
    for (const auto& op : m.ops) write_signed_op(w, op);
  }
  void operator()(const AckMsg& m) { write_vv(w, m.vv); }
  void operator()(const BlobMsg& m) {
    w.u8(static_cast<std::uint8_t>(m.kind));
    w.u64(m.version);
    w.bytes32(m.body);
    w.bytes32(m.sig);
  }
  void operator()(const RightsRequestMsg& m) {
    w.u64(m.request_id);
    w.raw(m.member);
    w.u8(static_cast<std::uint8_t>(m.account));
    w.u64(m.amount);
  }
  void operator()(const RightsReplyMsg& m) {
    w.u64(m.request_id);
    w.u64(m.granted);
    w.str16(m.reason.substr(0, kReasonBytesMax));
  }
  void operator()(const ErrorMsg& m) {
    w.u16(m.code);
    w.str16(m.message.substr(0, kReasonBytesMax));
  }
};

MsgType type_of(const Message& m) { return static_cast<MsgType>(m.index() + 1); }

}  // namespace

const char* message_name(const Message& m) {
  static const char* kNames[] = {"HELLO", "OPS", "ACK", "BLOB", "RIGHTS_REQUEST", "RIGHTS_REPLY", "ERROR"};
  return kNames[m.index()];
}

Bytes encode_message(const Message& m) {
  ByteWriter w;
  w.u8(static_cast<std::uint8_t>(type_of(m)));
  w.u8(kSyncProtocolVersion);
  std::visit(Encoder{w}, m);
  return w.take();
}

Result<Message> decode_message(ByteView bytes) {
  if (bytes.size() > limits::kLinkMessageBytesMax) return Status::corruption("sync message too large");
  ByteReader r(bytes);
  std::uint8_t type = 0, version = 0;
  if (!r.u8(type) || !r.u8(version)) return Status::corruption("truncated sync message");
  if (version != kSyncProtocolVersion) {
    return Status::unsupported("sync protocol version " + std::to_string(version) + " is not supported");
  }
  auto bad = [&](const char* what) { return Status::corruption(std::string("malformed ") + what + " message"); };
  Message out;
  switch (static_cast<MsgType>(type)) {
    case MsgType::kHello: {
      HelloMsg m;
      if (!r.raw(m.node) || !r.u64(m.roster_version) || !r.u64(m.rules_version) || !r.u64(m.wall_ms) ||
          !read_vv(r, m.vv)) {
        return bad("HELLO");
      }
      // The reported versions are optional: a HELLO of an earlier build ends after the vv.
      if (!r.at_end() && (!r.str16(m.software_version, kSoftwareVersionBytesMax) || !r.u32(m.schema_version) ||
                          !r.u64(m.tree_heads_version))) {
        return bad("HELLO");
      }
      out = std::move(m);
      break;
    }
    case MsgType::kOps: {
      OpsMsg m;
      std::uint32_t n = 0;
      if (!r.u32(n) || n > limits::kSyncBatchOpsMax) return bad("OPS");
      for (std::uint32_t i = 0; i < n; ++i) {
        auto op = read_signed_op(r);
        if (!op.is_ok()) return Status::corruption("OPS message: " + op.status().message());
        m.ops.push_back(std::move(op).value());
      }
      out = std::move(m);
      break;
    }
    case MsgType::kAck: {
      AckMsg m;
      if (!read_vv(r, m.vv)) return bad("ACK");
      out = std::move(m);
      break;
    }
    case MsgType::kBlob: {
      BlobMsg m;
      std::uint8_t kind = 0;
      if (!r.u8(kind) || kind < 1 || kind > 3 || !r.u64(m.version) || !r.bytes32(m.body, kBlobBytesMax) ||
          !r.bytes32(m.sig, 64)) {
        return bad("BLOB");
      }
      m.kind = static_cast<BlobKind>(kind);
      out = std::move(m);
      break;
    }
    case MsgType::kRightsRequest: {
      RightsRequestMsg m;
      std::uint8_t account = 0;
      if (!r.u64(m.request_id) || !r.raw(m.member) || !r.u8(account) || !r.u64(m.amount)) return bad("RIGHTS_REQUEST");
      if (account != 1 && account != 2) return bad("RIGHTS_REQUEST");
      if (m.amount == 0 || m.amount > limits::kAmountMax) return bad("RIGHTS_REQUEST");
      m.account = static_cast<Account>(account);
      out = std::move(m);
      break;
    }
    case MsgType::kRightsReply: {
      RightsReplyMsg m;
      if (!r.u64(m.request_id) || !r.u64(m.granted) || !r.str16(m.reason, kReasonBytesMax)) return bad("RIGHTS_REPLY");
      out = std::move(m);
      break;
    }
    case MsgType::kError: {
      ErrorMsg m;
      if (!r.u16(m.code) || !r.str16(m.message, kReasonBytesMax)) return bad("ERROR");
      out = std::move(m);
      break;
    }
    default:
      return Status::unsupported("unknown sync message type " + std::to_string(type));
  }
  if (!r.at_end()) return Status::corruption("trailing bytes after sync message");
  return out;
}

}  // namespace outpost::sync
