// Outpost's cryptographic primitives: libsodium only. Ed25519 signing keys and their key files,
// SHA-256 (op hashes, Merkle trees) and BLAKE2b, secure random bytes, constant-time comparison.
// Call crypto::init() once before anything else (thread-safe, idempotent). Key objects wipe their
// secret bytes with sodium_memzero when destroyed; they are movable, not copyable.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/base/status.h"

namespace outpost::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using Hash32 = std::array<std::uint8_t, 32>;
using PublicKey = std::array<std::uint8_t, 32>;
using Signature = std::array<std::uint8_t, 64>;

// Initializes libsodium. Returns an error if the library cannot start (no entropy source).
Status init();

// Fills `out` with cryptographically secure random bytes.
void random_bytes(std::span<std::uint8_t> out);

// Returns true when a and b have equal length and content, in time independent of the content.
bool ct_equal(ByteView a, ByteView b);

// Overwrites `data` with zeros in a way the compiler cannot elide.
void wipe(std::span<std::uint8_t> data);

Hash32 sha256(ByteView data);
// Returns SHA-256 over the concatenation of the given parts.
Hash32 sha256(std::initializer_list<ByteView> parts);
// Incremental SHA-256, for inputs too large to hold at once (audit bundle files). update() any
// number of times, then finish() once; the object is then spent.
class Sha256 {
 public:
  Sha256();
  void update(ByteView data);
  Hash32 finish();

 private:
  alignas(16) std::array<std::uint8_t, 128> state_{};  // libsodium's crypto_hash_sha256_state
};
// Returns an unkeyed BLAKE2b digest of `out_len` bytes (16..64).
Bytes blake2b(ByteView data, std::size_t out_len);

// Lower-case hex rendering and strict parsing (even length, [0-9a-fA-F] only).
std::string to_hex(ByteView data);
Result<Bytes> from_hex(std::string_view hex);

inline ByteView view(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A secret byte string that is wiped on destruction. Movable, not copyable.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n) : bytes_(n) {}
  explicit SecretBytes(ByteView b) : bytes_(b.begin(), b.end()) {}
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  std::uint8_t* data() { return bytes_.data(); }
  const std::uint8_t* data() const { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }
  ByteView view() const { return {bytes_.data(), bytes_.size()}; }
  std::span<std::uint8_t> span() { return {bytes_.data(), bytes_.size()}; }

 private:
  std::vector<std::uint8_t> bytes_;
};

// An Ed25519 key pair. The secret half is wiped on destruction.
class SigningKey {
 public:
  // Generates a fresh key pair from the OS random source.
  static SigningKey generate();
  // Derives the key pair from a 32-byte seed; fails if the seed has the wrong length.
  static Result<SigningKey> from_seed(ByteView seed);

  SigningKey(SigningKey&&) noexcept = default;
  SigningKey& operator=(SigningKey&&) noexcept = default;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  const PublicKey& public_key() const { return public_key_; }
  // Returns the 32-byte seed (secret). Only key files should need this.
  ByteView seed() const { return seed_.view(); }
  Signature sign(ByteView message) const;

 private:
  SigningKey() : seed_(32), secret_(64) {}
  SecretBytes seed_;
  SecretBytes secret_;  // libsodium's 64-byte expanded secret key
  PublicKey public_key_{};
};

// Returns true iff `sig` is a valid Ed25519 signature of `message` under `pk`.
bool verify(const PublicKey& pk, ByteView message, const Signature& sig);

// Key files: one line "outpost-key v1 KIND HEX CHECK\n" (docs/security.md, "Key files"), CHECK
// being BLAKE2b with an 8-byte output length (not truncated) of "outpost-key" || KIND || secret in
// hex, so a damaged file is detected rather than loaded as a different key. Mode 0600.

// Writes `secret` to a new file at `path` (fails if it exists), mode 0600, fsync'd.
Status write_key_file(const std::string& path, std::string_view kind, ByteView secret);
// Reads a key file of the given kind. Fails with kPermission if the file is readable or
// writable by group or others, kCorruption if it is malformed or its check does not match,
// kNotFound if it is missing.
Result<SecretBytes> read_key_file(const std::string& path, std::string_view kind);

// Convenience wrappers for Ed25519 signing keys (kind "ed25519-seed").
Status write_signing_key(const std::string& path, const SigningKey& key);
Result<SigningKey> read_signing_key(const std::string& path);

}  // namespace outpost::crypto

namespace outpost::crypto {

// Member PINs: Argon2id (libsodium crypto_pwhash_str, interactive limits). The encoded string
// carries its own salt and parameters.
Result<std::string> hash_pin(const std::string& pin);
// Returns true iff `pin` matches `encoded`. Constant time in the PIN by construction.
bool verify_pin(const std::string& encoded, const std::string& pin);

}  // namespace outpost::crypto
