// SecureChannel: the socket-free half of an Outpost link (docs/security.md, "Link protocol"):
// the Noise_XX handshake with node certificates in its payloads, peer admission against the
// pinned root and the roster, 2-byte big-endian length framing, transport encryption with rekey,
// and splitting/reassembly of application messages. Bytes in, bytes out, time passed in:
// node/src/replication/link.cc drives it over TCP; tests and the fuzzer drive it directly. Not
// thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/crypto/noise.h"
#include "outpost/sync/bytes.h"
#include "outpost/sync/roster.h"

namespace outpost::sync {

// First bytes of the Noise prologue; the 16-byte network id follows. A new link protocol
// version changes this string, so mismatched versions fail the handshake instead of misparsing.
inline constexpr std::string_view kLinkProloguePrefix = "outpost/1";
inline constexpr std::array<std::uint8_t, 4> kHandshakePayloadMagic = {'O', 'P', 'H', 'S'};
inline constexpr std::uint8_t kHandshakePayloadFormat = 1;
// The 2-byte big-endian length that precedes every Noise message on the wire.
inline constexpr std::size_t kFrameHeaderBytes = 2;
// Plaintext of one transport frame: a type byte, then up to this many bytes.
inline constexpr std::size_t kFrameDataBytesMax = crypto::kNoisePayloadBytesMax - 1;
// Wire bytes of a transport frame beyond its data: length header, type byte, tag.
inline constexpr std::size_t kFrameOverheadBytes = kFrameHeaderBytes + 1 + crypto::kNoiseTagBytes;
// The longest frame on the wire, header included. A buffer that decrypts frames in place must
// hold one whole.
inline constexpr std::size_t kFrameWireBytesMax = kFrameHeaderBytes + limits::kNoiseMessageBytesMax;
static_assert(kFrameDataBytesMax + kFrameOverheadBytes == kFrameWireBytesMax);
// Size of the first XX message: the initiator's ephemeral key and an empty payload.
inline constexpr std::size_t kHandshakeMessage1Bytes = crypto::kNoiseDhBytes;

// The type byte that starts each transport frame's plaintext.
enum class FrameType : std::uint8_t {
  kMore = 1,   // a fragment of an application message; more fragments follow
  kLast = 2,   // the last (or only) fragment of an application message
  kPing = 3,   // keepalive; empty; never delivered to the application
  kClose = 4,  // the sender closes the link; the rest is its reason (UTF-8, bounded)
};

// What each side proves in its handshake payload (messages 2 and 3 of XX, encrypted).
struct HandshakePayload {
  SignedCertificate certificate;
  std::uint64_t roster_version = 0;  // the sender's current roster version (0: none)
};

// Returns the canonical payload bytes: magic, format, certificate (wire form), roster version.
Bytes encode_handshake_payload(const HandshakePayload& payload);
// Parses payload bytes strictly (bounded by limits::kLinkHandshakePayloadBytesMax). kCorruption
// on anything malformed, kUnsupported on an unknown format. Does not check the certificate.
Result<HandshakePayload> decode_handshake_payload(ByteView bytes);
// Returns the Noise prologue for a network: kLinkProloguePrefix || network id.
Bytes link_prologue(const NetworkId& network_id);

// What one node brings to every link: its identity and trust anchors.
struct ChannelConfig {
  SignedCertificate certificate;                           // this node's, root-signed
  std::shared_ptr<const crypto::X25519KeyPair> noise_key;  // the static key it names
  NetworkId network_id{};
  crypto::PublicKey root_key{};  // the pinned HQ root public key
  // Returns the current roster (it may change between calls; null when the node has none).
  std::function<std::shared_ptr<const Roster>()> roster;
  // Both sides rekey each direction after this many frames (docs/security.md, "Rekey").
  std::uint64_t rekey_after_messages = limits::kNoiseRekeyAfterMessages;
  // Largest reassembled application message accepted or sent.
  std::size_t message_bytes_max = limits::kLinkMessageBytesMax;
};

// Everything one call produced; the caller writes `wire` to the peer, in order.
struct ChannelOutput {
  Bytes wire;
  std::vector<Bytes> messages;             // complete application messages received
  bool handshake_completed = false;        // this call finished the handshake
  std::optional<std::string> peer_closed;  // the peer sent CLOSE with this reason
  std::size_t pings_received = 0;
};

class SecureChannel {
 public:
  // kConfirming: an initiator that sent message 3 and waits for the responder's first transport
  // frame, which confirms that the responder admitted it (a CLOSE instead carries the refusal).
  enum class State { kHandshake, kConfirming, kOpen, kClosed };

  // Creates one side of a link. kInvalidArgument if the config lacks a noise key, its key does
  // not match the certificate, or rekey_after_messages is 0.
  static Result<SecureChannel> create(crypto::NoiseRole role, ChannelConfig config);

  SecureChannel(SecureChannel&&) noexcept = default;
  SecureChannel& operator=(SecureChannel&&) noexcept = default;

  // Initiator only, once: appends the first handshake message to out.wire.
  Status start(ChannelOutput& out);
  // Consumes bytes received from the peer, split anywhere. Appends replies (handshake messages)
  // to out.wire and complete messages to out.messages. A non-ok Status closes the channel and
  // is the reason to log: kCorruption for malformed, oversize or unauthentic bytes (any
  // decryption failure), kPermission for a peer refused by its certificate (or, initiator, a
  // responder that refused us), kRefused for an exhausted nonce. out.wire may still hold bytes
  // to flush then (a responder's CLOSE telling the initiator why it was refused). After an
  // error or CLOSE every later call returns an error. Copies `bytes` into the channel first;
  // a reader that owns its buffer uses receive_in_place() instead.
  Status receive(ByteView bytes, std::uint64_t now_ms, ChannelOutput& out);
  // As receive(), without copying: processes the complete frames at the front of `bytes`,
  // decrypting each in place (the buffer is overwritten), and sets `consumed` to their length.
  // A trailing incomplete frame is left where it is, its length already checked: the caller
  // keeps bytes[consumed, size) and passes them again, followed by what arrives next. Errors
  // and output as receive() (consumed is then meaningless). Do not mix with receive() on one
  // channel.
  Status receive_in_place(std::span<std::uint8_t> bytes, std::uint64_t now_ms, ChannelOutput& out,
                          std::size_t& consumed);
  // Encrypts `message` (at most message_bytes_max bytes) as one or more frames appended to
  // `wire`. kInvalidArgument for an oversize message (the channel stays open); kUnavailable if
  // the channel is not open; kRefused on nonce exhaustion (the channel closes).
  Status send_message(ByteView message, Bytes& wire);
  // send_message() for a writer that owns the message and a bounded output buffer: writes the
  // frames of `message` from byte `offset` on into `out`, as many whole frames as fit, advances
  // `offset` past the data they carry and returns the bytes written. `done` becomes true once
  // the message's last frame is written (an empty message is one frame); otherwise call again
  // with the same offset and more room. The bytes of `message` before the new offset may be
  // overwritten: every frame after the first is encrypted straight from the message into `out`,
  // its type byte written over the last byte of the previous frame's data, so the data is not
  // copied first. Errors as send_message().
  Result<std::size_t> seal_message_frames(std::span<std::uint8_t> message, std::size_t& offset,
                                          std::span<std::uint8_t> out, bool& done);
  // Appends a keepalive frame. Errors as send_message.
  Status send_ping(Bytes& wire);
  // Appends a CLOSE frame carrying `reason` (cut to kLinkCloseReasonBytesMax) and closes.
  Status send_close(std::string_view reason, Bytes& wire);
  // Marks the channel closed without sending anything (the transport failed).
  void abort() { state_ = State::kClosed; }

  State state() const { return state_; }
  bool is_open() const { return state_ == State::kOpen; }
  crypto::NoiseRole role() const { return role_; }
  // The peer's admitted certificate and announced roster version; meaningful once open.
  const SignedCertificate& peer_certificate() const { return peer_.certificate; }
  std::uint64_t peer_roster_version() const { return peer_.roster_version; }
  // The Noise handshake hash h: identical on both sides of one session once open.
  const crypto::NoiseHash& handshake_hash() const { return handshake_hash_; }
  // Frames sent and received in transport mode (each side rekeys on these counts).
  std::uint64_t frames_sent() const { return send_.nonce(); }
  std::uint64_t frames_received() const { return receive_.nonce(); }
  // True while part of a frame, or some fragments of a message, wait for more bytes: a peer
  // that hangs up now truncated what it was sending.
  bool has_partial_frame() const { return partial_frame_; }
  bool has_partial_message() const { return partial_active_; }

  // --- for tests and the fuzzer only ---
  // Encrypts `plaintext` as one transport frame verbatim (any type byte) onto `wire`.
  Status encrypt_frame_for_testing(ByteView plaintext, Bytes& wire);
  // Moves both transport nonces, e.g. next to exhaustion.
  void set_nonces_for_testing(std::uint64_t send, std::uint64_t receive);

 private:
  SecureChannel(crypto::NoiseRole role, ChannelConfig config, crypto::HandshakeState handshake);
  Status fail(Status status);
  Status on_frame(std::span<std::uint8_t> frame, std::uint64_t now_ms, ChannelOutput& out);
  Status on_handshake_frame(ByteView frame, std::uint64_t now_ms, ChannelOutput& out);
  Status on_transport_frame(std::span<std::uint8_t> frame, ChannelOutput& out);
  Status check_frame_length(std::size_t length) const;
  Status append_fragment(ByteView data, bool last, ChannelOutput& out);
  Status admit_peer(ByteView payload, std::uint64_t now_ms);
  Status write_handshake(ChannelOutput& out);
  Status finish_handshake(State next);
  Status seal(FrameType type, ByteView data, Bytes& wire);
  Status append_sealed(ByteView head, ByteView body, Bytes& wire);
  Status seal_into(ByteView plaintext, std::span<std::uint8_t> out);
  bool in_transport() const;
  std::size_t frame_length_max() const;

  crypto::NoiseRole role_;
  ChannelConfig config_;
  std::optional<crypto::HandshakeState> handshake_;
  crypto::CipherState send_;
  crypto::CipherState receive_;
  crypto::NoiseHash handshake_hash_{};
  State state_ = State::kHandshake;
  bool started_ = false;
  HandshakePayload peer_;
  Bytes inbound_;               // receive(): received bytes not yet consumed (< one frame)
  bool partial_frame_ = false;  // the last receive left an incomplete frame
  // Fragments of the message being reassembled, in a buffer reserved for the size of the
  // previous multi-frame message; if it ends up exactly full it is delivered as it is.
  Bytes partial_;
  bool partial_active_ = false;
  std::size_t last_multi_frame_message_bytes_ = 0;
};

}  // namespace outpost::sync
