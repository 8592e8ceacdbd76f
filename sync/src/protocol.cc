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

// Length of the UTF-8 sequence at s[i] when it is one well-formed, printable character (no C0 or
// C1 control, no DEL, no surrogate or overlong form); 0 otherwise.
std::size_t printable_char_bytes(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return c < 0x20 || c == 0x7f ? 0 : 1;
  // The lead byte gives the length; 0xc0, 0xc1 and 0xf5.. never start a well-formed sequence.
  const std::size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0) return 0;
  std::uint32_t cp = c & (0x7fu >> n);
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3fu);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f) return 0;
  return n;
}

bool is_printable_text(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = printable_char_bytes(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void write_alert(ByteWriter& w, const AlertRecord& a) {
  w.u64(a.id);
  w.u64(a.at_ms);
  w.str16(std::string_view(a.kind).substr(0, limits::kAlertKindBytesMax));
  w.u8(a.about ? 1 : 0);
  if (a.about) w.raw(*a.about);
  w.str16(std::string_view(a.message).substr(0, limits::kAlertMessageBytesMax));
}

// Reads one alert; false when it is malformed or breaks a rule of docs/sync-protocol.md "Alerts".
bool read_alert(ByteReader& r, AlertRecord& a) {
  std::uint8_t has_about = 0;
  if (!r.u64(a.id) || !r.u64(a.at_ms) || !r.str16(a.kind, limits::kAlertKindBytesMax) || !r.u8(has_about)) {
    return false;
  }
  if (a.id == 0 || a.id > limits::kAlertIdMax || a.at_ms > limits::kAlertIdMax || !is_alert_kind(a.kind)) return false;
  if (has_about > 1) return false;
  if (has_about == 1) {
    NodeId about{};
    if (!r.raw(about)) return false;
    a.about = about;
  }
  return r.str16(a.message, limits::kAlertMessageBytesMax) && is_printable_text(a.message);
}

bool read_alerts(ByteReader& r, AlertsMsg& m) {
  std::uint32_t n = 0;
  if (!r.u32(n) || n == 0 || n > limits::kSyncAlertsPerMessageMax) return false;
  for (std::uint32_t i = 0; i < n; ++i) {
    AlertRecord a;
    if (!read_alert(r, a)) return false;
    if (!m.alerts.empty() && a.id <= m.alerts.back().id) return false;  // ids strictly ascending
    m.alerts.push_back(std::move(a));
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
    w.u32(m.features);
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
  void operator()(const AlertsMsg& m) {
    w.u32(static_cast<std::uint32_t>(m.alerts.size()));
    for (const auto& a : m.alerts) write_alert(w, a);
  }
  void operator()(const AlertsAckMsg& m) { w.u64(m.upto); }
};

MsgType type_of(const Message& m) { return static_cast<MsgType>(m.index() + 1); }

}  // namespace

const char* message_name(const Message& m) {
  static const char* kNames[] = {"HELLO", "OPS",   "ACK",    "BLOB",      "RIGHTS_REQUEST",
                                 "RIGHTS_REPLY", "ERROR", "ALERTS", "ALERTS_ACK"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == std::variant_size_v<Message>);
  return kNames[m.index()];
}

std::string clean_alert_text(std::string_view text, std::size_t max_bytes) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = printable_char_bytes(text, i);
    const std::size_t take = n == 0 ? 1 : n;
    if (out.size() + take > max_bytes) break;
    if (n == 0) {
      out.push_back('?');
    } else {
      out.append(text.substr(i, n));
    }
    i += take;
  }
  return out;
}

bool is_alert_kind(std::string_view kind) {
  if (kind.empty() || kind.size() > limits::kAlertKindBytesMax) return false;
  for (char c : kind) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
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
      // The features are optional too: a HELLO of an earlier build ends after the tree heads.
      if (!r.at_end() && !r.u32(m.features)) return bad("HELLO");
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
    case MsgType::kAlerts: {
      AlertsMsg m;
      if (!read_alerts(r, m)) return bad("ALERTS");
      out = std::move(m);
      break;
    }
    case MsgType::kAlertsAck: {
      AlertsAckMsg m;
      if (!r.u64(m.upto) || m.upto > limits::kAlertIdMax) return bad("ALERTS_ACK");
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
