// Noise Protocol Framework revision 34, cipher suite 25519 / ChaChaPoly / BLAKE2b, patterns XX
// and IK. Section numbers in comments refer to the spec (https://noiseprotocol.org/noise.html).
// Primitives, all from libsodium:
//   DH(priv, pub)      crypto_scalarmult (X25519); an all-zero output is an error (§12.1 allows it)
//   ENCRYPT(k, n, ...) crypto_aead_chacha20poly1305_ietf, nonce = 4 zero bytes || LE64(n) (§12.3)
//   HASH(data)         crypto_generichash with 64-byte output (BLAKE2b-512, §12.8)
//   HMAC-HASH          RFC 2104 over HASH with BLOCKLEN 128 (§4.3), not BLAKE2b's keyed mode
//   HKDF(ck, ikm, 2)   temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01); o2 = HMAC(temp, o1 || 0x02)
#include "outpost/crypto/noise.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <vector>

namespace outpost::crypto {

static_assert(kNoiseDhBytes == crypto_scalarmult_BYTES);
static_assert(kNoiseDhBytes == crypto_scalarmult_SCALARBYTES);
static_assert(kNoiseHashBytes == crypto_generichash_BYTES_MAX);
static_assert(kNoiseKeyBytes == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(kNoiseTagBytes == crypto_aead_chacha20poly1305_ietf_ABYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);
static_assert(kNoiseKeyBytes <= kNoiseHashBytes);  // MixKey/Split truncate HKDF outputs to 32
static_assert(kNoiseHashBytes <= kNoiseBlockBytes);

namespace {

using HashOut = std::span<std::uint8_t, kNoiseHashBytes>;

// HASH over the concatenation of `parts` into `out`.
void blake2b_512(std::initializer_list<ByteView> parts, HashOut out) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kNoiseHashBytes);
  for (ByteView part : parts) {
    crypto_generichash_update(&state, part.data(), part.size());
  }
  crypto_generichash_final(&state, out.data(), out.size());
  sodium_memzero(&state, sizeof state);
}

// HMAC-HASH(key, concatenation of `parts`) per RFC 2104: H((K0 ^ opad) || H((K0 ^ ipad) || m)),
// K0 being the key (hashed first if longer than a block) padded with zeros to 128 bytes.
void hmac_into(ByteView key, std::initializer_list<ByteView> parts, HashOut out) {
  std::array<std::uint8_t, kNoiseBlockBytes> k0{};
  if (key.size() > kNoiseBlockBytes) {
    blake2b_512({key}, HashOut(k0.data(), kNoiseHashBytes));
  } else {
    std::copy(key.begin(), key.end(), k0.begin());
  }
  std::array<std::uint8_t, kNoiseBlockBytes> pad{};
  for (std::size_t i = 0; i < kNoiseBlockBytes; ++i) {
    pad[i] = k0[i] ^ 0x36;
  }

  std::array<std::uint8_t, kNoiseHashBytes> inner{};
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kNoiseHashBytes);
  crypto_generichash_update(&state, pad.data(), pad.size());
  for (ByteView part : parts) {
    crypto_generichash_update(&state, part.data(), part.size());
  }
  crypto_generichash_final(&state, inner.data(), inner.size());

  for (std::size_t i = 0; i < kNoiseBlockBytes; ++i) {
    pad[i] = k0[i] ^ 0x5c;
  }
  blake2b_512({pad, inner}, out);

  sodium_memzero(&state, sizeof state);
  wipe(k0);
  wipe(pad);
  wipe(inner);
}

// HKDF(chaining_key, input_key_material, 2) of §4.3 into two HASHLEN outputs.
void hkdf2(ByteView chaining_key, ByteView input_key_material, HashOut output1, HashOut output2) {
  std::array<std::uint8_t, kNoiseHashBytes> temp_key{};
  hmac_into(chaining_key, {input_key_material}, temp_key);
  const std::uint8_t one = 0x01;
  const std::uint8_t two = 0x02;
  hmac_into(temp_key, {ByteView(&one, 1)}, output1);
  hmac_into(temp_key, {ByteView(output1), ByteView(&two, 1)}, output2);
  wipe(temp_key);
}

// ChaChaPoly's 96-bit nonce for counter n: 32 bits of zeros, then n little-endian (§12.3).
std::array<std::uint8_t, 12> chachapoly_nonce(std::uint64_t n) {
  std::array<std::uint8_t, 12> nonce{};
  for (int i = 0; i < 8; ++i) {
    nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  }
  return nonce;
}

// DH(local private key, remote public key) into `out`. kCorruption for an all-zero result,
// which a low-order (malicious or damaged) public key produces.
Status x25519(ByteView private_key, const PublicKey& public_key,
              std::span<std::uint8_t, kNoiseDhBytes> out) {
  if (crypto_scalarmult(out.data(), private_key.data(), public_key.data()) != 0 ||
      sodium_is_zero(out.data(), out.size()) == 1) {
    wipe(out);
    return Status::corruption("noise: X25519 with the peer's public key gave all zeros");
  }
  return Status::ok();
}

}  // namespace

NoiseHash hmac_blake2b(ByteView key, ByteView data) {
  NoiseHash out{};
  hmac_into(key, {data}, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// X25519KeyPair

X25519KeyPair X25519KeyPair::generate() {
  X25519KeyPair pair;
  random_bytes(pair.private_key_.span());
  crypto_scalarmult_base(pair.public_key_.data(), pair.private_key_.data());
  return pair;
}

Result<X25519KeyPair> X25519KeyPair::from_private(ByteView private_key) {
  if (private_key.size() != kNoiseDhBytes) {
    return Status::invalid("X25519 private key must be 32 bytes, got " +
                           std::to_string(private_key.size()));
  }
  X25519KeyPair pair;
  std::copy(private_key.begin(), private_key.end(), pair.private_key_.data());
  crypto_scalarmult_base(pair.public_key_.data(), pair.private_key_.data());
  return pair;
}

X25519KeyPair X25519KeyPair::clone() const {
  X25519KeyPair pair;
  std::copy(private_key().begin(), private_key().end(), pair.private_key_.data());
  pair.public_key_ = public_key_;
  return pair;
}

// ---------------------------------------------------------------------------------------------
// CipherState (§5.1)

void CipherState::initialize_key(std::span<const std::uint8_t, kNoiseKeyBytes> key) {
  key_ = SecretBytes(ByteView(key));
  nonce_ = 0;
}

void CipherState::clear_key() {
  key_ = SecretBytes();
  nonce_ = 0;
}

Status CipherState::check_nonce() const {
  if (nonce_ == kNoiseNonceReserved) {
    return Status::refused("noise: nonce exhausted (2^64-1 is reserved); the session must end");
  }
  return Status::ok();
}

Result<Bytes> CipherState::encrypt_with_ad(ByteView ad, ByteView plaintext) {
  if (!has_key()) {
    if (plaintext.size() > limits::kNoiseMessageBytesMax) {
      return Status::invalid("noise: message longer than 65535 bytes");
    }
    return Bytes(plaintext.begin(), plaintext.end());
  }
  OUTPOST_RETURN_IF_ERROR(check_nonce());
  if (plaintext.size() > kNoisePayloadBytesMax) {
    return Status::invalid("noise: plaintext longer than " + std::to_string(kNoisePayloadBytesMax) +
                           " bytes");
  }
  Bytes out(plaintext.size() + kNoiseTagBytes);
  OUTPOST_RETURN_IF_ERROR(encrypt_into(ad, plaintext, out));
  return out;
}

Result<Bytes> CipherState::decrypt_with_ad(ByteView ad, ByteView ciphertext) {
  if (ciphertext.size() > limits::kNoiseMessageBytesMax) {
    return Status::corruption("noise: message longer than 65535 bytes");
  }
  if (!has_key()) {
    return Bytes(ciphertext.begin(), ciphertext.end());
  }
  OUTPOST_RETURN_IF_ERROR(check_nonce());
  if (ciphertext.size() < kNoiseTagBytes) {
    return Status::corruption("noise: ciphertext shorter than its 16-byte tag");
  }
  Bytes out(ciphertext.size() - kNoiseTagBytes);
  OUTPOST_RETURN_IF_ERROR(decrypt_into(ad, ciphertext, out));
  return out;
}

namespace {

// libsodium's ChaCha20 XORs the keystream block by block, so output and input may be the same
// bytes, but an output that starts inside the input (or the other way round) would read bytes it
// already overwrote.
bool overlaps_but_not_in_place(ByteView in, const std::uint8_t* out, std::size_t out_bytes) {
  const std::uint8_t* in_begin = in.data();
  const std::uint8_t* in_end = in.data() + in.size();
  if (out == in_begin || in.empty() || out_bytes == 0) return false;
  return std::less<const std::uint8_t*>()(out, in_end) &&
         std::less<const std::uint8_t*>()(in_begin, out + out_bytes);
}

}  // namespace

Status CipherState::encrypt_into(ByteView ad, ByteView plaintext, std::span<std::uint8_t> out) {
  if (!has_key()) return Status::internal("noise: encrypt_into needs a key");
  OUTPOST_RETURN_IF_ERROR(check_nonce());
  if (plaintext.size() > kNoisePayloadBytesMax) {
    return Status::invalid("noise: plaintext longer than " + std::to_string(kNoisePayloadBytesMax) +
                           " bytes");
  }
  const std::size_t message_bytes = plaintext.size() + kNoiseTagBytes;
  if (out.size() < message_bytes) return Status::invalid("noise: no room for the ciphertext");
  if (overlaps_but_not_in_place(plaintext, out.data(), message_bytes)) {
    return Status::internal("noise: ciphertext would overlap its plaintext");
  }
  const auto nonce = chachapoly_nonce(nonce_);
  unsigned long long tag_bytes = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      out.data(), out.data() + plaintext.size(), &tag_bytes, plaintext.data(), plaintext.size(),
      ad.data(), ad.size(), nullptr, nonce.data(), key_.data());
  // Invariant: ChaChaPoly ciphertext is exactly plaintext plus tag.
  OUTPOST_CHECK(tag_bytes == kNoiseTagBytes);
  ++nonce_;
  return Status::ok();
}

Status CipherState::decrypt_into(ByteView ad, ByteView ciphertext, std::span<std::uint8_t> out) {
  if (ciphertext.size() > limits::kNoiseMessageBytesMax) {
    return Status::corruption("noise: message longer than 65535 bytes");
  }
  if (!has_key()) return Status::internal("noise: decrypt_into needs a key");
  OUTPOST_RETURN_IF_ERROR(check_nonce());
  if (ciphertext.size() < kNoiseTagBytes) {
    return Status::corruption("noise: ciphertext shorter than its 16-byte tag");
  }
  const std::size_t plain_bytes = ciphertext.size() - kNoiseTagBytes;
  if (out.size() < plain_bytes) return Status::invalid("noise: no room for the plaintext");
  if (overlaps_but_not_in_place(ciphertext, out.data(), plain_bytes)) {
    return Status::internal("noise: plaintext would overlap its ciphertext");
  }
  const auto nonce = chachapoly_nonce(nonce_);
  // libsodium checks the tag over the ciphertext before it writes any plaintext. The output
  // pointer must not be null even for an empty plaintext: null asks libsodium to verify only.
  std::uint8_t scratch = 0;
  std::uint8_t* plain = plain_bytes == 0 ? &scratch : out.data();
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
          plain, nullptr, ciphertext.data(), plain_bytes, ciphertext.data() + plain_bytes,
          ad.data(), ad.size(), nonce.data(), key_.data()) != 0) {
    return Status::corruption(
        "noise: message failed authentication (forged, corrupted, "
        "replayed or out of order)");
  }
  ++nonce_;
  return Status::ok();
}

Status CipherState::rekey() {
  if (!has_key()) {
    return Status::internal("noise: rekey without a key");
  }
  // REKEY(k) = ENCRYPT(k, maxnonce, zerolen, zeros)[0:32] (§4.2); bypasses the message nonce.
  std::array<std::uint8_t, kNoiseKeyBytes> zeros{};
  std::array<std::uint8_t, kNoiseKeyBytes + kNoiseTagBytes> out{};
  const auto nonce = chachapoly_nonce(kNoiseNonceReserved);
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), nullptr, zeros.data(), zeros.size(),
                                            nullptr, 0, nullptr, nonce.data(), key_.data());
  std::copy(out.begin(), out.begin() + kNoiseKeyBytes, key_.data());
  wipe(out);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// SymmetricState (§5.2)

SymmetricState::SymmetricState(std::string_view protocol_name) : chaining_key_(kNoiseHashBytes) {
  const ByteView name(reinterpret_cast<const std::uint8_t*>(protocol_name.data()),
                      protocol_name.size());
  if (name.size() <= kNoiseHashBytes) {
    std::copy(name.begin(), name.end(), h_.begin());  // rest of h_ stays zero: the padding
  } else {
    blake2b_512({name}, h_);
  }
  std::copy(h_.begin(), h_.end(), chaining_key_.data());
}

void SymmetricState::mix_key(ByteView input_key_material) {
  SecretBytes output1(kNoiseHashBytes);
  SecretBytes output2(kNoiseHashBytes);
  hkdf2(chaining_key_.view(), input_key_material, HashOut(output1.data(), kNoiseHashBytes),
        HashOut(output2.data(), kNoiseHashBytes));
  chaining_key_ = std::move(output1);
  cipher_.initialize_key(
      std::span<const std::uint8_t, kNoiseKeyBytes>(output2.data(), kNoiseKeyBytes));
}

void SymmetricState::mix_hash(ByteView data) { blake2b_512({h_, data}, h_); }

Result<Bytes> SymmetricState::encrypt_and_hash(ByteView plaintext) {
  OUTPOST_ASSIGN_OR_RETURN(Bytes ciphertext, cipher_.encrypt_with_ad(h_, plaintext));
  mix_hash(ciphertext);
  return ciphertext;
}

Result<Bytes> SymmetricState::decrypt_and_hash(ByteView ciphertext) {
  OUTPOST_ASSIGN_OR_RETURN(Bytes plaintext, cipher_.decrypt_with_ad(h_, ciphertext));
  mix_hash(ciphertext);
  return plaintext;
}

std::pair<CipherState, CipherState> SymmetricState::split() {
  SecretBytes output1(kNoiseHashBytes);
  SecretBytes output2(kNoiseHashBytes);
  hkdf2(chaining_key_.view(), ByteView(), HashOut(output1.data(), kNoiseHashBytes),
        HashOut(output2.data(), kNoiseHashBytes));
  std::pair<CipherState, CipherState> ciphers;
  ciphers.first.initialize_key(
      std::span<const std::uint8_t, kNoiseKeyBytes>(output1.data(), kNoiseKeyBytes));
  ciphers.second.initialize_key(
      std::span<const std::uint8_t, kNoiseKeyBytes>(output2.data(), kNoiseKeyBytes));
  wipe(chaining_key_.span());
  cipher_.clear_key();
  return ciphers;
}

// ---------------------------------------------------------------------------------------------
// HandshakeState (§5.3) and the two patterns (§7.5)

enum class NoiseToken : std::uint8_t { kE, kS, kEE, kES, kSE, kSS };

namespace {

using Token = NoiseToken;
using MessagePattern = std::vector<Token>;

// Message i of a pattern is written by the initiator when i is even (patterns alternate and
// start with "->").
const std::vector<MessagePattern>& message_patterns(NoisePattern pattern) {
  static const std::vector<MessagePattern> kXX = {
      {Token::kE},                                     // -> e
      {Token::kE, Token::kEE, Token::kS, Token::kES},  // <- e, ee, s, es
      {Token::kS, Token::kSE},                         // -> s, se
  };
  static const std::vector<MessagePattern> kIK = {
      {Token::kE, Token::kES, Token::kS, Token::kSS},  // -> e, es, s, ss
      {Token::kE, Token::kEE, Token::kSE},             // <- e, ee, se
  };
  return pattern == NoisePattern::kXX ? kXX : kIK;
}

}  // namespace

std::string_view noise_protocol_name(NoisePattern pattern) {
  switch (pattern) {
    case NoisePattern::kXX:
      return "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    case NoisePattern::kIK:
      return "Noise_IK_25519_ChaChaPoly_BLAKE2b";
  }
  return "Noise_unknown";
}

HandshakeState::HandshakeState(NoisePattern pattern, NoiseRole role, X25519KeyPair s)
    : pattern_(pattern), role_(role), symmetric_(noise_protocol_name(pattern)), s_(std::move(s)) {}

Result<HandshakeState> HandshakeState::create(NoisePattern pattern, NoiseRole role,
                                              ByteView prologue, const X25519KeyPair& s,
                                              std::optional<PublicKey> remote_static) {
  const bool needs_rs = pattern == NoisePattern::kIK && role == NoiseRole::kInitiator;
  if (needs_rs && !remote_static) {
    return Status::invalid("noise: an IK initiator needs the responder's static public key");
  }
  if (!needs_rs && remote_static) {
    return Status::invalid(std::string("noise: ") + std::string(noise_protocol_name(pattern)) +
                           " learns the remote static key in the handshake; do not pass one");
  }
  HandshakeState hs(pattern, role, s.clone());
  hs.rs_ = remote_static;
  hs.symmetric_.mix_hash(prologue);
  if (pattern == NoisePattern::kIK) {
    // Pre-message "<- s": both sides hash the responder's static public key.
    hs.symmetric_.mix_hash(role == NoiseRole::kInitiator ? ByteView(*hs.rs_)
                                                         : ByteView(hs.s_.public_key()));
  }
  return hs;
}

Status HandshakeState::set_fixed_ephemeral(const X25519KeyPair& e) {
  if (e_used_) {
    return Status::internal("noise: ephemeral key already sent");
  }
  e_ = e.clone();
  return Status::ok();
}

bool HandshakeState::is_complete() const {
  return message_index_ == message_patterns(pattern_).size();
}

bool HandshakeState::is_my_turn_to_write() const {
  return (message_index_ % 2 == 0) == (role_ == NoiseRole::kInitiator);
}

Status HandshakeState::fail(Status status) {
  failed_ = true;
  // A static key read from a message that then failed is unauthenticated: forget it.
  const bool rs_given = pattern_ == NoisePattern::kIK && role_ == NoiseRole::kInitiator;
  if (!rs_given) {
    rs_.reset();
  }
  return status;
}

// Returns the exact size of the next message this side writes with `payload_bytes` of payload.
std::size_t HandshakeState::message_bytes(std::size_t payload_bytes) const {
  bool keyed = symmetric_.has_key();
  std::size_t bytes = 0;
  for (Token token : message_patterns(pattern_)[message_index_]) {
    if (token == Token::kE) {
      bytes += kNoiseDhBytes;
    } else if (token == Token::kS) {
      bytes += kNoiseDhBytes + (keyed ? kNoiseTagBytes : 0);
    } else {
      keyed = true;  // every DH token runs MixKey
    }
  }
  return bytes + payload_bytes + (keyed ? kNoiseTagBytes : 0);
}

Status HandshakeState::mix_dh(Token token) {
  const bool initiator = role_ == NoiseRole::kInitiator;
  const X25519KeyPair* local = nullptr;
  const std::optional<PublicKey>* remote = nullptr;
  switch (token) {
    case Token::kEE:
      local = e_ ? &*e_ : nullptr;
      remote = &re_;
      break;
    case Token::kES:
      local = initiator ? (e_ ? &*e_ : nullptr) : &s_;
      remote = initiator ? &rs_ : &re_;
      break;
    case Token::kSE:
      local = initiator ? &s_ : (e_ ? &*e_ : nullptr);
      remote = initiator ? &re_ : &rs_;
      break;
    case Token::kSS:
      local = &s_;
      remote = &rs_;
      break;
    case Token::kE:
    case Token::kS:
      return Status::internal("noise: not a DH token");
  }
  // Invariant: the patterns order tokens so that both keys of every DH are known by now.
  if (local == nullptr || remote == nullptr || !remote->has_value()) {
    return Status::internal("noise: DH token before its keys are known");
  }
  std::array<std::uint8_t, kNoiseDhBytes> shared{};
  Status st = x25519(local->private_key(), **remote, shared);
  if (st.is_ok()) {
    symmetric_.mix_key(shared);
  }
  wipe(shared);
  return st;
}

Status HandshakeState::write_token(Token token, Bytes& out) {
  switch (token) {
    case Token::kE: {
      if (!e_) {
        e_ = X25519KeyPair::generate();
      }
      e_used_ = true;
      const PublicKey& pub = e_->public_key();
      out.insert(out.end(), pub.begin(), pub.end());
      symmetric_.mix_hash(pub);
      return Status::ok();
    }
    case Token::kS: {
      OUTPOST_ASSIGN_OR_RETURN(Bytes sealed, symmetric_.encrypt_and_hash(s_.public_key()));
      out.insert(out.end(), sealed.begin(), sealed.end());
      return Status::ok();
    }
    default:
      return mix_dh(token);
  }
}

Status HandshakeState::read_token(Token token, ByteView message, std::size_t& offset) {
  switch (token) {
    case Token::kE: {
      if (message.size() - offset < kNoiseDhBytes) {
        return Status::corruption("noise: handshake message too short for an ephemeral key");
      }
      PublicKey re{};
      std::copy_n(message.begin() + offset, kNoiseDhBytes, re.begin());
      offset += kNoiseDhBytes;
      re_ = re;
      symmetric_.mix_hash(re);
      return Status::ok();
    }
    case Token::kS: {
      const std::size_t len = kNoiseDhBytes + (symmetric_.has_key() ? kNoiseTagBytes : 0);
      if (message.size() - offset < len) {
        return Status::corruption("noise: handshake message too short for a static key");
      }
      OUTPOST_ASSIGN_OR_RETURN(Bytes rs, symmetric_.decrypt_and_hash(message.subspan(offset, len)));
      offset += len;
      PublicKey key{};
      std::copy(rs.begin(), rs.end(), key.begin());
      rs_ = key;
      return Status::ok();
    }
    default:
      return mix_dh(token);
  }
}

Result<Bytes> HandshakeState::write_message(ByteView payload) {
  if (failed_) {
    return Status::internal("noise: handshake already failed");
  }
  if (split_done_ || is_complete()) {
    return Status::internal("noise: handshake already complete");
  }
  if (!is_my_turn_to_write()) {
    return Status::internal("noise: it is the peer's turn to write");
  }
  if (payload.size() > limits::kNoiseMessageBytesMax ||
      message_bytes(payload.size()) > limits::kNoiseMessageBytesMax) {
    return Status::invalid("noise: handshake message would exceed 65535 bytes");
  }
  Bytes out;
  out.reserve(message_bytes(payload.size()));
  for (Token token : message_patterns(pattern_)[message_index_]) {
    Status st = write_token(token, out);
    if (!st.is_ok()) {
      return fail(st.with_context("writing handshake message"));
    }
  }
  Result<Bytes> sealed = symmetric_.encrypt_and_hash(payload);
  if (!sealed.is_ok()) {
    return fail(sealed.status().with_context("writing handshake message"));
  }
  out.insert(out.end(), sealed->begin(), sealed->end());
  ++message_index_;
  return out;
}

Result<Bytes> HandshakeState::read_message(ByteView message) {
  if (failed_) {
    return Status::internal("noise: handshake already failed");
  }
  if (split_done_ || is_complete()) {
    return Status::internal("noise: handshake already complete");
  }
  if (is_my_turn_to_write()) {
    return Status::internal("noise: it is this side's turn to write");
  }
  if (message.size() > limits::kNoiseMessageBytesMax) {
    return fail(Status::corruption("noise: handshake message longer than 65535 bytes"));
  }
  std::size_t offset = 0;
  for (Token token : message_patterns(pattern_)[message_index_]) {
    Status st = read_token(token, message, offset);
    if (!st.is_ok()) {
      return fail(st.with_context("reading handshake message"));
    }
  }
  Result<Bytes> payload = symmetric_.decrypt_and_hash(message.subspan(offset));
  if (!payload.is_ok()) {
    return fail(payload.status().with_context("reading handshake message"));
  }
  ++message_index_;
  return payload;
}

Result<NoiseTransport> HandshakeState::split() {
  if (failed_) {
    return Status::internal("noise: handshake failed; no transport keys");
  }
  if (!is_complete()) {
    return Status::internal("noise: split before the handshake is complete");
  }
  if (split_done_) {
    return Status::internal("noise: split called twice");
  }
  split_done_ = true;
  auto [c1, c2] = symmetric_.split();
  e_.reset();  // the ephemeral private key is not needed any more
  if (role_ == NoiseRole::kInitiator) {
    return NoiseTransport{std::move(c1), std::move(c2)};
  }
  return NoiseTransport{std::move(c2), std::move(c1)};
}

}  // namespace outpost::crypto
