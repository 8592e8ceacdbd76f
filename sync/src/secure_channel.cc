// SecureChannel: XX handshake with certificate payloads, length framing, transport frames with
// deterministic rekey, message fragmentation. Wire format in docs/security.md ("Link protocol").
#include "outpost/sync/secure_channel.h"

#include <algorithm>

namespace outpost::sync {

namespace {

constexpr std::size_t kTransportFrameBytesMin = crypto::kNoiseTagBytes + 1;  // tag + type byte

std::string printable(ByteView bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::uint8_t b : bytes) out.push_back(b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '?');
  return out;
}

ByteView view_of(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

void append_frame(Bytes& wire, ByteView message) {
  // Invariant: every Noise message fits the 2-byte length (crypto/ refuses longer ones).
  OUTPOST_CHECK(message.size() <= limits::kNoiseMessageBytesMax);
  wire.push_back(static_cast<std::uint8_t>(message.size() >> 8));
  wire.push_back(static_cast<std::uint8_t>(message.size() & 0xff));
  wire.insert(wire.end(), message.begin(), message.end());
}

}  // namespace

Bytes encode_handshake_payload(const HandshakePayload& payload) {
  ByteWriter w;
  w.raw(kHandshakePayloadMagic);
  w.u8(kHandshakePayloadFormat);
  write_signed_certificate(w, payload.certificate);
  w.u64(payload.roster_version);
  OUTPOST_CHECK(w.bytes().size() <= limits::kLinkHandshakePayloadBytesMax);
  return w.take();
}

Result<HandshakePayload> decode_handshake_payload(ByteView bytes) {
  if (bytes.empty()) return Status::permission("peer sent no certificate (empty payload)");
  if (bytes.size() > limits::kLinkHandshakePayloadBytesMax) {
    return Status::corruption("handshake payload too large");
  }
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t format = 0;
  if (!r.raw(magic) || magic != kHandshakePayloadMagic) {
    return Status::corruption("handshake payload: bad magic");
  }
  if (!r.u8(format)) return Status::corruption("handshake payload: truncated");
  if (format != kHandshakePayloadFormat) {
    return Status::unsupported("handshake payload format " + std::to_string(format) +
                               " is not supported");
  }
  HandshakePayload p;
  auto sc = read_signed_certificate(r);
  if (!sc.is_ok()) return sc.status().with_context("handshake payload");
  p.certificate = std::move(sc).value();
  if (!r.u64(p.roster_version)) return Status::corruption("handshake payload: truncated");
  if (!r.at_end()) return Status::corruption("handshake payload: trailing bytes");
  return p;
}

Bytes link_prologue(const NetworkId& network_id) {
  // Sized up front: GCC 12 -O2 misreports insert() after a 9-byte construction (-Warray-bounds).
  Bytes p(kLinkProloguePrefix.size() + network_id.size());
  std::copy(kLinkProloguePrefix.begin(), kLinkProloguePrefix.end(), p.begin());
  std::copy(network_id.begin(), network_id.end(),
            p.begin() + static_cast<std::ptrdiff_t>(kLinkProloguePrefix.size()));
  return p;
}

Result<SecureChannel> SecureChannel::create(crypto::NoiseRole role, ChannelConfig config) {
  if (!config.noise_key) return Status::invalid("link: no Noise static key");
  if (config.noise_key->public_key() != config.certificate.cert.noise_key) {
    return Status::invalid(
        "link: the Noise static key is not the one this node's certificate "
        "names");
  }
  if (config.certificate.body.empty()) return Status::invalid("link: no certificate");
  if (config.rekey_after_messages == 0) return Status::invalid("link: rekey interval is 0");
  if (config.message_bytes_max == 0 || config.message_bytes_max > limits::kLinkMessageBytesMax) {
    return Status::invalid("link: message bound out of range");
  }
  const Bytes prologue = link_prologue(config.network_id);
  OUTPOST_ASSIGN_OR_RETURN(
      crypto::HandshakeState hs,
      crypto::HandshakeState::create(crypto::NoisePattern::kXX, role, prologue, *config.noise_key));
  return SecureChannel(role, std::move(config), std::move(hs));
}

SecureChannel::SecureChannel(crypto::NoiseRole role, ChannelConfig config,
                             crypto::HandshakeState handshake)
    : role_(role), config_(std::move(config)), handshake_(std::move(handshake)) {}

Status SecureChannel::fail(Status status) {
  state_ = State::kClosed;
  handshake_.reset();
  partial_ = Bytes();
  partial_active_ = false;
  inbound_ = Bytes();
  partial_frame_ = false;
  return status;
}

Status SecureChannel::start(ChannelOutput& out) {
  if (role_ != crypto::NoiseRole::kInitiator || started_ || state_ != State::kHandshake) {
    return Status::internal("link: start() is for a fresh initiator only");
  }
  started_ = true;
  OUTPOST_ASSIGN_OR_RETURN(Bytes m1, handshake_->write_message({}));
  OUTPOST_CHECK(m1.size() == kHandshakeMessage1Bytes);
  append_frame(out.wire, m1);
  return Status::ok();
}

bool SecureChannel::in_transport() const {
  return state_ == State::kOpen || state_ == State::kConfirming;
}

std::size_t SecureChannel::frame_length_max() const {
  if (in_transport()) return limits::kNoiseMessageBytesMax;
  return limits::kLinkHandshakeFrameBytesMax;
}

Status SecureChannel::check_frame_length(std::size_t length) const {
  if (length == 0) return Status::corruption("empty frame");
  if (length > frame_length_max()) {
    return Status::corruption("frame length " + std::to_string(length) + " exceeds " +
                              std::to_string(frame_length_max()) + " bytes during the " +
                              (in_transport() ? "session" : "handshake"));
  }
  if (in_transport() && length < kTransportFrameBytesMin) {
    return Status::corruption("frame length " + std::to_string(length) +
                              " is shorter than a tag and a type byte");
  }
  return Status::ok();
}

Status SecureChannel::receive(ByteView bytes, std::uint64_t now_ms, ChannelOutput& out) {
  if (state_ == State::kClosed) return Status::unavailable("link is closed");
  inbound_.insert(inbound_.end(), bytes.begin(), bytes.end());
  std::size_t consumed = 0;
  Status st = receive_in_place(inbound_, now_ms, out, consumed);
  if (!st.is_ok()) return st;  // fail() dropped inbound_
  if (state_ == State::kClosed) {
    inbound_ = Bytes();  // bytes after the peer's CLOSE are never read
    return Status::ok();
  }
  inbound_.erase(inbound_.begin(), inbound_.begin() + static_cast<std::ptrdiff_t>(consumed));
  // Invariant: at most one partial frame is ever buffered.
  OUTPOST_CHECK(inbound_.size() < kFrameWireBytesMax);
  return Status::ok();
}

Status SecureChannel::receive_in_place(std::span<std::uint8_t> bytes, std::uint64_t now_ms,
                                       ChannelOutput& out, std::size_t& consumed) {
  consumed = 0;
  if (state_ == State::kClosed) return Status::unavailable("link is closed");
  if (role_ == crypto::NoiseRole::kInitiator && !started_) {
    return fail(Status::corruption("peer spoke before the handshake started"));
  }
  std::size_t pos = 0;
  while (state_ != State::kClosed && bytes.size() - pos >= kFrameHeaderBytes) {
    // The length is checked as soon as its two bytes are here, before any body byte is used.
    const std::size_t length = (std::size_t{bytes[pos]} << 8) | bytes[pos + 1];
    if (Status st = check_frame_length(length); !st.is_ok()) return fail(st);
    if (bytes.size() - pos - kFrameHeaderBytes < length) break;  // the rest is on its way
    Status st = on_frame(bytes.subspan(pos + kFrameHeaderBytes, length), now_ms, out);
    if (!st.is_ok()) return fail(st);
    pos += kFrameHeaderBytes + length;
  }
  consumed = pos;
  partial_frame_ = state_ != State::kClosed && pos < bytes.size();
  return Status::ok();
}

Status SecureChannel::on_frame(std::span<std::uint8_t> frame, std::uint64_t now_ms,
                               ChannelOutput& out) {
  if (in_transport()) return on_transport_frame(frame, out);
  return on_handshake_frame(frame, now_ms, out);
}

Status SecureChannel::on_handshake_frame(ByteView frame, std::uint64_t now_ms, ChannelOutput& out) {
  const bool responder = role_ == crypto::NoiseRole::kResponder;
  const bool first_message = responder && !started_;
  if (first_message && frame.size() != kHandshakeMessage1Bytes) {
    return Status::corruption("first handshake message must be " +
                              std::to_string(kHandshakeMessage1Bytes) + " bytes, got " +
                              std::to_string(frame.size()));
  }
  auto payload = handshake_->read_message(frame);
  if (!payload.is_ok()) {
    return Status::corruption("handshake failed (" + payload.status().message() +
                              "); a different network id or protocol version, or tampering");
  }
  if (first_message) {
    started_ = true;
    if (!payload->empty()) return Status::corruption("first handshake message has a payload");
    return write_handshake(out);  // message 2: e, ee, s, es + our certificate
  }
  if (!responder) {
    // Message 2 carried the responder's certificate: check it before revealing ours.
    OUTPOST_RETURN_IF_ERROR(admit_peer(*payload, now_ms));
    OUTPOST_RETURN_IF_ERROR(write_handshake(out));  // message 3: s, se + our certificate
    OUTPOST_RETURN_IF_ERROR(finish_handshake(State::kConfirming));
    return Status::ok();  // open once the responder's first transport frame confirms it
  }
  Status admitted = admit_peer(*payload, now_ms);
  OUTPOST_RETURN_IF_ERROR(finish_handshake(State::kOpen));
  if (!admitted.is_ok()) {
    // The keys are sound, the identity is not: tell the initiator why in a CLOSE frame.
    const std::string reason = "refused: " + admitted.message();
    Status st = seal(FrameType::kClose, view_of(reason.substr(0, limits::kLinkCloseReasonBytesMax)),
                     out.wire);
    (void)st;  // best effort; the refusal below stands either way
    return admitted;
  }
  // The responder's first transport frame (a ping) confirms admission to the initiator.
  OUTPOST_RETURN_IF_ERROR(seal(FrameType::kPing, {}, out.wire));
  out.handshake_completed = true;
  return Status::ok();
}

Status SecureChannel::write_handshake(ChannelOutput& out) {
  HandshakePayload mine;
  mine.certificate = config_.certificate;
  std::shared_ptr<const Roster> roster = config_.roster ? config_.roster() : nullptr;
  mine.roster_version = roster ? roster->version : 0;
  OUTPOST_ASSIGN_OR_RETURN(Bytes message,
                           handshake_->write_message(encode_handshake_payload(mine)));
  append_frame(out.wire, message);
  return Status::ok();
}

Status SecureChannel::admit_peer(ByteView payload, std::uint64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(HandshakePayload peer, decode_handshake_payload(payload));
  std::shared_ptr<const Roster> roster = config_.roster ? config_.roster() : nullptr;
  OUTPOST_RETURN_IF_ERROR(check_peer_certificate(
      peer.certificate, peer.roster_version, config_.root_key, config_.network_id,
      config_.certificate.cert.node_id, roster.get(), now_ms));
  const auto& rs = handshake_->remote_static();
  if (!rs || !crypto::ct_equal(*rs, peer.certificate.cert.noise_key)) {
    return Status::permission("peer '" + peer.certificate.cert.name + "' (" +
                              id_hex(peer.certificate.cert.node_id) +
                              "): its Noise static key is not the one its certificate names");
  }
  peer_ = std::move(peer);
  return Status::ok();
}

Status SecureChannel::finish_handshake(State next) {
  OUTPOST_CHECK(handshake_->is_complete());
  handshake_hash_ = handshake_->handshake_hash();
  OUTPOST_ASSIGN_OR_RETURN(crypto::NoiseTransport t, handshake_->split());
  send_ = std::move(t.send);
  receive_ = std::move(t.receive);
  handshake_.reset();
  state_ = next;
  return Status::ok();
}

Status SecureChannel::on_transport_frame(std::span<std::uint8_t> frame, ChannelOutput& out) {
  // Decrypted in place: the frame's bytes are the caller's to overwrite.
  if (Status st = receive_.decrypt_into({}, frame, frame); !st.is_ok()) {
    return st.code() == Code::kRefused ? st
                                       : Status::corruption("decryption failed: " + st.message());
  }
  if (receive_.nonce() % config_.rekey_after_messages == 0) {
    OUTPOST_RETURN_IF_ERROR(receive_.rekey());
  }
  const ByteView p = ByteView(frame).first(frame.size() - crypto::kNoiseTagBytes);
  if (p.empty()) return Status::corruption("transport frame without a type byte");
  const ByteView data = p.subspan(1);
  if (state_ == State::kConfirming) {
    if (static_cast<FrameType>(p[0]) == FrameType::kClose) {
      return Status::permission(
          "the peer refused this node: " +
          printable(data.first(std::min(data.size(), limits::kLinkCloseReasonBytesMax))));
    }
    state_ = State::kOpen;  // the responder admitted us
    out.handshake_completed = true;
  }
  switch (static_cast<FrameType>(p[0])) {
    case FrameType::kMore:
      return append_fragment(data, /*last=*/false, out);
    case FrameType::kLast:
      return append_fragment(data, /*last=*/true, out);
    case FrameType::kPing:
      if (!data.empty()) return Status::corruption("ping frame with data");
      out.pings_received++;
      return Status::ok();
    case FrameType::kClose:
      if (data.size() > limits::kLinkCloseReasonBytesMax) {
        return Status::corruption("close reason too long");
      }
      out.peer_closed = printable(data);
      state_ = State::kClosed;
      return Status::ok();
  }
  return Status::corruption("unknown frame type " + std::to_string(p[0]));
}

Status SecureChannel::append_fragment(ByteView data, bool last, ChannelOutput& out) {
  if (!last && data.empty()) return Status::corruption("empty message fragment");
  if (partial_.size() + data.size() > config_.message_bytes_max) {
    return Status::corruption("message larger than " + std::to_string(config_.message_bytes_max) +
                              " bytes");
  }
  if (last && !partial_active_) {  // a message of one frame
    out.messages.emplace_back(data.begin(), data.end());
    return Status::ok();
  }
  if (!partial_active_) {
    // Peers tend to send messages of similar sizes: expect the size of the previous one.
    partial_ = Bytes();
    partial_.reserve(std::max(last_multi_frame_message_bytes_, data.size()));
    partial_active_ = true;
  }
  const std::size_t needed = partial_.size() + data.size();
  if (needed > partial_.capacity()) {
    partial_.reserve(
        std::min(config_.message_bytes_max, std::max(needed, 2 * partial_.capacity())));
  }
  partial_.insert(partial_.end(), data.begin(), data.end());
  if (!last) return Status::ok();
  last_multi_frame_message_bytes_ = partial_.size();
  if (partial_.size() == partial_.capacity()) {
    out.messages.push_back(std::move(partial_));  // exactly the message: no copy
  } else {
    out.messages.emplace_back(partial_.begin(), partial_.end());  // do not hand over slack
  }
  partial_ = Bytes();
  partial_active_ = false;
  return Status::ok();
}

Status SecureChannel::seal(FrameType type, ByteView data, Bytes& wire) {
  const std::uint8_t type_byte = static_cast<std::uint8_t>(type);
  return append_sealed(ByteView(&type_byte, 1), data, wire);
}

Status SecureChannel::encrypt_frame_for_testing(ByteView plaintext, Bytes& wire) {
  if (state_ != State::kOpen) return Status::unavailable("link is not open");
  return append_sealed(plaintext, {}, wire);
}

// Appends one frame whose plaintext is head || body to `wire`, sealed in place there.
Status SecureChannel::append_sealed(ByteView head, ByteView body, Bytes& wire) {
  const std::size_t plain_bytes = head.size() + body.size();
  if (plain_bytes > crypto::kNoisePayloadBytesMax) {
    return Status::invalid("frame plaintext of " + std::to_string(plain_bytes) +
                           " bytes exceeds one Noise message");  // a caller bug
  }
  const std::size_t start = wire.size();
  wire.resize(start + kFrameHeaderBytes + plain_bytes + crypto::kNoiseTagBytes);
  const std::span<std::uint8_t> frame = std::span<std::uint8_t>(wire).subspan(start);
  auto plain = frame.begin() + kFrameHeaderBytes;
  std::copy(body.begin(), body.end(), std::copy(head.begin(), head.end(), plain));
  Status st = seal_into(ByteView(frame).subspan(kFrameHeaderBytes, plain_bytes), frame);
  if (!st.is_ok()) wire.resize(start);  // nothing of a frame that was not sealed goes out
  return st;
}

// Writes one frame to out[0, kFrameHeaderBytes + plaintext.size() + tag): the length header,
// then ENCRYPT(plaintext). `plaintext` may already sit at out[kFrameHeaderBytes] (sealed in
// place) or anywhere outside `out`.
Status SecureChannel::seal_into(ByteView plaintext, std::span<std::uint8_t> out) {
  const std::size_t length = plaintext.size() + crypto::kNoiseTagBytes;
  // Invariant: every Noise message fits the 2-byte length (callers bound the plaintext).
  OUTPOST_CHECK(length <= limits::kNoiseMessageBytesMax &&
                kFrameHeaderBytes + length <= out.size());
  out[0] = static_cast<std::uint8_t>(length >> 8);
  out[1] = static_cast<std::uint8_t>(length & 0xff);
  Status st = send_.encrypt_into({}, plaintext, out.subspan(kFrameHeaderBytes, length));
  if (!st.is_ok()) {
    // Nonce exhaustion ends the session; anything else is a caller bug.
    return st.code() == Code::kRefused ? fail(st) : st;
  }
  if (send_.nonce() % config_.rekey_after_messages == 0) {
    st = send_.rekey();
    if (!st.is_ok()) return fail(st);
  }
  return Status::ok();
}

Status SecureChannel::send_message(ByteView message, Bytes& wire) {
  if (state_ != State::kOpen) return Status::unavailable("link is not open");
  if (message.size() > config_.message_bytes_max) {
    return Status::invalid("message of " + std::to_string(message.size()) +
                           " bytes exceeds the link bound of " +
                           std::to_string(config_.message_bytes_max));
  }
  const std::size_t frames =
      std::max<std::size_t>(1, (message.size() + kFrameDataBytesMax - 1) / kFrameDataBytesMax);
  const std::size_t start = wire.size();
  wire.resize(start + message.size() + frames * kFrameOverheadBytes);
  Bytes scratch(message.begin(), message.end());  // seal_message_frames may overwrite it
  std::size_t offset = 0;
  bool done = false;
  auto written =
      seal_message_frames(scratch, offset, std::span<std::uint8_t>(wire).subspan(start), done);
  if (!written.is_ok()) {
    wire.resize(start);
    return written.status();
  }
  // Invariant: the room made above holds every frame of the message.
  OUTPOST_CHECK(done && *written == wire.size() - start);
  return Status::ok();
}

Result<std::size_t> SecureChannel::seal_message_frames(std::span<std::uint8_t> message,
                                                       std::size_t& offset,
                                                       std::span<std::uint8_t> out, bool& done) {
  done = false;
  if (state_ != State::kOpen) return Status::unavailable("link is not open");
  if (message.size() > config_.message_bytes_max) {
    return Status::invalid("message of " + std::to_string(message.size()) +
                           " bytes exceeds the link bound of " +
                           std::to_string(config_.message_bytes_max));
  }
  if (offset > message.size() || (offset == message.size() && offset > 0)) {
    return Status::internal("link: message offset out of range (already sent?)");
  }
  std::size_t written = 0;
  do {
    const std::size_t n = std::min(kFrameDataBytesMax, message.size() - offset);
    const std::size_t frame_bytes = kFrameOverheadBytes + n;
    if (out.size() - written < frame_bytes) return written;  // the rest goes in the next buffer
    const auto type = static_cast<std::uint8_t>(offset + n == message.size() ? FrameType::kLast
                                                                             : FrameType::kMore);
    const std::span<std::uint8_t> frame = out.subspan(written, frame_bytes);
    if (offset == 0) {
      // The first frame has no byte before its data to hold the type: copy, seal in place.
      frame[kFrameHeaderBytes] = type;
      std::copy_n(message.begin(), n, frame.begin() + kFrameHeaderBytes + 1);
      OUTPOST_RETURN_IF_ERROR(seal_into(ByteView(frame).subspan(kFrameHeaderBytes, 1 + n), frame));
    } else {
      // The previous frame's data is sealed already: its last byte becomes this type byte.
      message[offset - 1] = type;
      OUTPOST_RETURN_IF_ERROR(seal_into(ByteView(message).subspan(offset - 1, 1 + n), frame));
    }
    offset += n;
    written += frame_bytes;
  } while (offset < message.size());
  done = true;
  return written;
}

Status SecureChannel::send_ping(Bytes& wire) {
  if (state_ != State::kOpen) return Status::unavailable("link is not open");
  return seal(FrameType::kPing, {}, wire);
}

Status SecureChannel::send_close(std::string_view reason, Bytes& wire) {
  if (state_ != State::kOpen) return Status::unavailable("link is not open");
  Status st =
      seal(FrameType::kClose, view_of(reason.substr(0, limits::kLinkCloseReasonBytesMax)), wire);
  state_ = State::kClosed;
  return st;
}

void SecureChannel::set_nonces_for_testing(std::uint64_t send, std::uint64_t receive) {
  send_.set_nonce(send);
  receive_.set_nonce(receive);
}

}  // namespace outpost::sync
