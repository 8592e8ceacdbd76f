// The Noise Protocol Framework (revision 34) for Outpost's links: Noise_XX and Noise_IK over
// 25519 / ChaChaPoly / BLAKE2b, built from libsodium primitives only (docs/noise.md).
// Owns the spec's CipherState, SymmetricState and HandshakeState; callers are the link layer and
// tests. Objects are value types, movable and not copyable, thread-compatible (one owner at a
// time); every secret they hold is wiped on destruction. Call crypto::init() first.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"

namespace outpost::crypto {

// Sizes fixed by the cipher suite 25519 / ChaChaPoly / BLAKE2b (Noise spec §4, §12).
inline constexpr std::size_t kNoiseDhBytes = 32;      // DHLEN: X25519 public keys and outputs
inline constexpr std::size_t kNoiseHashBytes = 64;    // HASHLEN: BLAKE2b-512
inline constexpr std::size_t kNoiseBlockBytes = 128;  // BLOCKLEN: BLAKE2b's block, for HMAC
inline constexpr std::size_t kNoiseKeyBytes = 32;     // ChaChaPoly key
inline constexpr std::size_t kNoiseTagBytes = 16;     // Poly1305 tag
// Largest plaintext one transport message can carry (the spec's 65535-byte message less the tag).
inline constexpr std::size_t kNoisePayloadBytesMax = limits::kNoiseMessageBytesMax - kNoiseTagBytes;
// Nonce 2^64-1 is reserved for Rekey (§5.1); a CipherState refuses to use it for messages.
inline constexpr std::uint64_t kNoiseNonceReserved = UINT64_MAX;

using NoiseHash = std::array<std::uint8_t, kNoiseHashBytes>;

// Returns HMAC-BLAKE2b-512(key, data), RFC 2104 with a 128-byte block (the spec's HMAC-HASH).
// Not BLAKE2b's keyed mode: Noise defines HMAC over the plain hash.
NoiseHash hmac_blake2b(ByteView key, ByteView data);

// An X25519 key pair (Noise's GENERATE_KEYPAIR). The private half is wiped on destruction.
class X25519KeyPair {
 public:
  // Generates a fresh key pair from the OS random source.
  static X25519KeyPair generate();
  // Derives the public key from a 32-byte private key; fails (kInvalidArgument) on any other
  // length. Any 32 bytes are a valid X25519 private key (clamping happens inside X25519).
  static Result<X25519KeyPair> from_private(ByteView private_key);

  X25519KeyPair(X25519KeyPair&&) noexcept = default;
  X25519KeyPair& operator=(X25519KeyPair&&) noexcept = default;
  X25519KeyPair(const X25519KeyPair&) = delete;
  X25519KeyPair& operator=(const X25519KeyPair&) = delete;

  const PublicKey& public_key() const { return public_key_; }
  // Returns the 32-byte private key (secret). Key files and copies of the pair need it.
  ByteView private_key() const { return private_key_.view(); }
  // Returns an independent copy (both copies wipe their own secret).
  X25519KeyPair clone() const;

 private:
  X25519KeyPair() : private_key_(kNoiseDhBytes) {}
  SecretBytes private_key_;
  PublicKey public_key_{};
};

// Spec §5.1: a ChaChaPoly key k (possibly empty) and a 64-bit nonce n. Transport ciphers after
// split() are CipherStates; send and receive each own one.
class CipherState {
 public:
  // Starts with no key: encrypt/decrypt pass bytes through unchanged, as the spec says.
  CipherState() = default;
  CipherState(CipherState&&) noexcept = default;
  CipherState& operator=(CipherState&&) noexcept = default;
  CipherState(const CipherState&) = delete;
  CipherState& operator=(const CipherState&) = delete;

  // Sets k = key and n = 0 (InitializeKey).
  void initialize_key(std::span<const std::uint8_t, kNoiseKeyBytes> key);
  // Removes the key (InitializeKey(empty)) and sets n = 0.
  void clear_key();
  bool has_key() const { return key_.size() == kNoiseKeyBytes; }
  // Sets n (SetNonce). Setting the reserved 2^64-1 makes every later message refused.
  void set_nonce(std::uint64_t nonce) { nonce_ = nonce; }
  std::uint64_t nonce() const { return nonce_; }

  // Returns ENCRYPT(k, n++, ad, plaintext), or plaintext itself when there is no key.
  // kRefused if n has reached the reserved 2^64-1 (the session must end or rekey-and-reset),
  // kInvalidArgument if the result would exceed the 65535-byte Noise message.
  Result<Bytes> encrypt_with_ad(ByteView ad, ByteView plaintext);
  // Returns DECRYPT(k, n, ad, ciphertext) and increments n, or the ciphertext itself when there
  // is no key. kCorruption if authentication fails (n unchanged, so a forged message cannot
  // desynchronize the peers) or the message is shorter than a tag or longer than 65535 bytes;
  // kRefused if n has reached 2^64-1.
  Result<Bytes> decrypt_with_ad(ByteView ad, ByteView ciphertext);

  // Forms of the two above that write into the caller's memory, for transport messages (no
  // allocation; in place if the caller wants). Both need a key (kInternal without one) and
  // otherwise fail exactly as the copying forms do. `out` may begin at the input's first byte
  // (in place) and must not otherwise overlap the input (kInternal).
  //
  // Writes ENCRYPT(k, n++, ad, plaintext), the ciphertext then the 16-byte tag, to
  // out[0, plaintext.size() + 16). kInvalidArgument if that exceeds 65535 bytes or `out`;
  // kRefused at the reserved nonce.
  Status encrypt_into(ByteView ad, ByteView plaintext, std::span<std::uint8_t> out);
  // Authenticates `ciphertext` (ciphertext then tag) and only then writes its plaintext to
  // out[0, ciphertext.size() - 16), and increments n. On kCorruption or kRefused n is
  // unchanged and `out` holds nothing usable.
  Status decrypt_into(ByteView ad, ByteView ciphertext, std::span<std::uint8_t> out);
  // Sets k = REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes). n is
  // unchanged. kInternal if there is no key.
  Status rekey();

 private:
  // kRefused if the nonce reached the reserved 2^64-1 (checked before every message).
  Status check_nonce() const;

  SecretBytes key_;  // empty or kNoiseKeyBytes
  std::uint64_t nonce_ = 0;
};

// Spec §5.2: chaining key ck, handshake hash h and the handshake's CipherState.
class SymmetricState {
 public:
  // InitializeSymmetric(protocol_name): h = name padded to 64 bytes (or HASH(name)), ck = h.
  explicit SymmetricState(std::string_view protocol_name);
  SymmetricState(SymmetricState&&) noexcept = default;
  SymmetricState& operator=(SymmetricState&&) noexcept = default;
  SymmetricState(const SymmetricState&) = delete;
  SymmetricState& operator=(const SymmetricState&) = delete;

  // ck, temp_k = HKDF(ck, input_key_material, 2); InitializeKey(temp_k[0:32]).
  void mix_key(ByteView input_key_material);
  // h = HASH(h || data).
  void mix_hash(ByteView data);
  // Returns EncryptWithAd(h, plaintext) and mixes it into h. Errors as CipherState.
  Result<Bytes> encrypt_and_hash(ByteView plaintext);
  // Returns DecryptWithAd(h, ciphertext) and mixes the ciphertext into h. Errors as CipherState.
  Result<Bytes> decrypt_and_hash(ByteView ciphertext);
  bool has_key() const { return cipher_.has_key(); }
  const NoiseHash& handshake_hash() const { return h_; }
  // Split(): returns (c1, c2) from HKDF(ck, empty, 2), c1 for initiator-to-responder messages.
  // Wipes ck and k afterwards; h stays readable.
  std::pair<CipherState, CipherState> split();

 private:
  CipherState cipher_;
  SecretBytes chaining_key_;  // kNoiseHashBytes
  NoiseHash h_{};
};

enum class NoisePattern {
  kXX,  // -> e; <- e, ee, s, es; -> s, se. Neither side knows the other's static key in advance.
  kIK,  // <- s (pre-message); -> e, es, s, ss; <- e, ee, se. The initiator knows the responder's.
};
enum class NoiseRole { kInitiator, kResponder };
// A message pattern token: e, s, ee, es, se, ss. Defined in noise.cc; not part of the API.
enum class NoiseToken : std::uint8_t;

// Returns "Noise_XX_25519_ChaChaPoly_BLAKE2b" or "Noise_IK_25519_ChaChaPoly_BLAKE2b".
std::string_view noise_protocol_name(NoisePattern pattern);

// The two transport ciphers of one party after the handshake. For the initiator `send` is the
// spec's c1 and `receive` its c2; for the responder the other way round.
struct NoiseTransport {
  CipherState send;
  CipherState receive;
};

// Spec §5.3: runs one side of an XX or IK handshake. The caller alternates write_message and
// read_message as the pattern dictates (the initiator writes first), then calls split().
// Any error from read_message, and any write_message error after its precondition checks,
// leaves the handshake failed: every later call returns an error, so a half-processed
// handshake can never produce keys. Start a new HandshakeState to try again.
class HandshakeState {
 public:
  // Initialize(): protocol name, prologue (mixed into h; both sides must pass the same bytes),
  // the local static key pair `s`, and `remote_static` (rs), which an IK initiator must know and
  // nobody else may pass. kInvalidArgument if rs is missing or unexpected.
  static Result<HandshakeState> create(NoisePattern pattern, NoiseRole role, ByteView prologue,
                                       const X25519KeyPair& s,
                                       std::optional<PublicKey> remote_static = std::nullopt);

  HandshakeState(HandshakeState&&) noexcept = default;
  HandshakeState& operator=(HandshakeState&&) noexcept = default;
  HandshakeState(const HandshakeState&) = delete;
  HandshakeState& operator=(const HandshakeState&) = delete;

  // Makes the next "e" token use `e` instead of a fresh random key pair. For test vectors and
  // deterministic simulation only: a reused ephemeral key breaks forward secrecy.
  // kInternal once this side has already produced its ephemeral key.
  Status set_fixed_ephemeral(const X25519KeyPair& e);

  // WriteMessage: returns the next handshake message carrying `payload` (encrypted once a key
  // exists). kInternal if it is not this side's turn, the handshake is complete or failed;
  // kInvalidArgument if the message would exceed 65535 bytes.
  Result<Bytes> write_message(ByteView payload);
  // ReadMessage: processes the peer's next handshake message and returns its payload.
  // kCorruption if the message is truncated or oversized, a key is invalid (X25519 output all
  // zero) or authentication fails, e.g. a different prologue or a wrong responder key in IK.
  // kInternal if it is not the peer's turn, the handshake is complete or failed.
  Result<Bytes> read_message(ByteView message);

  // True once every message of the pattern has been written or read.
  bool is_complete() const;
  bool has_failed() const { return failed_; }
  NoiseRole role() const { return role_; }
  NoisePattern pattern() const { return pattern_; }

  // Split(): returns this side's transport ciphers. kInternal before the handshake is complete,
  // after a failure or on a second call.
  Result<NoiseTransport> split();
  // Returns h (GetHandshakeHash). After completion it identifies the session (channel binding).
  const NoiseHash& handshake_hash() const { return symmetric_.handshake_hash(); }
  // Returns the peer's static public key once known (after the message that carries it, or from
  // the start for an IK initiator); nullopt again if the handshake fails after reading it.
  // Authenticate it against a certificate (the handshake payload) before trusting the peer.
  const std::optional<PublicKey>& remote_static() const { return rs_; }

 private:
  HandshakeState(NoisePattern pattern, NoiseRole role, X25519KeyPair s);
  bool is_my_turn_to_write() const;
  std::size_t message_bytes(std::size_t payload_bytes) const;
  Status write_token(NoiseToken token, Bytes& out);
  Status read_token(NoiseToken token, ByteView message, std::size_t& offset);
  Status mix_dh(NoiseToken token);
  Status fail(Status status);

  NoisePattern pattern_;
  NoiseRole role_;
  SymmetricState symmetric_;
  X25519KeyPair s_;
  std::optional<X25519KeyPair> e_;
  std::optional<PublicKey> rs_;
  std::optional<PublicKey> re_;
  std::size_t message_index_ = 0;  // next message of the pattern to write or read
  bool e_used_ = false;            // this side's "e" token has been written
  bool failed_ = false;
  bool split_done_ = false;
};

}  // namespace outpost::crypto
