#include "outpost/crypto/crypto.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "outpost/base/files.h"
#include "outpost/base/limits.h"

namespace outpost::crypto {

Status init() {
  if (sodium_init() < 0) return Status::internal("libsodium failed to initialize");
  return Status::ok();
}

void random_bytes(std::span<std::uint8_t> out) {
  if (out.empty()) return;  // randombytes_buf must not get a null pointer, even for 0 bytes
  randombytes_buf(out.data(), out.size());
}

bool ct_equal(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void wipe(std::span<std::uint8_t> data) {
  if (!data.empty()) sodium_memzero(data.data(), data.size());
}

Hash32 sha256(ByteView data) {
  Hash32 out{};
  crypto_hash_sha256(out.data(), data.data(), data.size());
  return out;
}

Hash32 sha256(std::initializer_list<ByteView> parts) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (const auto& p : parts) crypto_hash_sha256_update(&st, p.data(), p.size());
  Hash32 out{};
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

static_assert(sizeof(crypto_hash_sha256_state) <= 128 && alignof(crypto_hash_sha256_state) <= 16);

Sha256::Sha256() {
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()));
}

void Sha256::update(ByteView data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()),
                            data.data(), data.size());
}

Hash32 Sha256::finish() {
  Hash32 out{};
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()),
                           out.data());
  return out;
}

Bytes blake2b(ByteView data, std::size_t out_len) {
  OUTPOST_CHECK(out_len >= crypto_generichash_BYTES_MIN && out_len <= crypto_generichash_BYTES_MAX);
  Bytes out(out_len);
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

std::string to_hex(ByteView data) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  s.reserve(data.size() * 2);
  for (auto b : data) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0xf]);
  }
  return s;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<Bytes> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return Status::invalid("hex string has odd length");
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::invalid("hex string has a non-hex character");
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

SecretBytes::~SecretBytes() { wipe(span()); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.bytes_.clear();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    wipe(span());
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

SigningKey SigningKey::generate() {
  SigningKey k;
  randombytes_buf(k.seed_.data(), k.seed_.size());
  crypto_sign_seed_keypair(k.public_key_.data(), k.secret_.data(), k.seed_.data());
  return k;
}

Result<SigningKey> SigningKey::from_seed(ByteView seed) {
  if (seed.size() != crypto_sign_SEEDBYTES) return Status::invalid("Ed25519 seed must be 32 bytes");
  SigningKey k;
  std::memcpy(k.seed_.data(), seed.data(), seed.size());
  crypto_sign_seed_keypair(k.public_key_.data(), k.secret_.data(), k.seed_.data());
  return k;
}

Signature SigningKey::sign(ByteView message) const {
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
  return sig;
}

bool verify(const PublicKey& pk, ByteView message, const Signature& sig) {
  return crypto_sign_verify_detached(sig.data(), message.data(), message.size(), pk.data()) == 0;
}

namespace {

constexpr std::string_view kKeyFileMagic = "outpost-key";
constexpr std::string_view kKeyFileVersion = "v1";

std::string key_check(std::string_view kind, ByteView secret) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 8);
  crypto_generichash_update(&st, reinterpret_cast<const std::uint8_t*>(kKeyFileMagic.data()),
                            kKeyFileMagic.size());
  crypto_generichash_update(&st, reinterpret_cast<const std::uint8_t*>(kind.data()), kind.size());
  crypto_generichash_update(&st, secret.data(), secret.size());
  std::array<std::uint8_t, 8> out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return to_hex(out);
}

bool valid_kind(std::string_view kind) {
  if (kind.empty() || kind.size() > 32) return false;
  for (char c : kind) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace

Status write_key_file(const std::string& path, std::string_view kind, ByteView secret) {
  if (!valid_kind(kind)) return Status::invalid("bad key kind");
  std::string line;
  line.append(kKeyFileMagic).append(" ").append(kKeyFileVersion).append(" ");
  line.append(kind).append(" ");
  std::string hex = to_hex(secret);
  line.append(hex).append(" ").append(key_check(kind, secret)).append("\n");
  wipe({reinterpret_cast<std::uint8_t*>(hex.data()), hex.size()});

  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    wipe({reinterpret_cast<std::uint8_t*>(line.data()), line.size()});
    return Status::io_error("cannot create key file " + path + ": " + std::strerror(errno));
  }
  // umask cannot widen 0600, but an inherited ACL could; pin the mode explicitly.
  ::fchmod(fd, 0600);
  std::size_t off = 0;
  Status st;
  while (off < line.size()) {
    ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      st = Status::io_error("write " + path + ": " + std::strerror(errno));
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  if (st.is_ok() && ::fsync(fd) != 0) st = Status::io_error("fsync " + path);
  ::close(fd);
  wipe({reinterpret_cast<std::uint8_t*>(line.data()), line.size()});
  // The new directory entry too: a key file that vanishes after a power loss loses the identity.
  if (st.is_ok()) st = fsync_parent_dir(path);
  if (!st.is_ok()) ::unlink(path.c_str());
  return st;
}

Result<SecretBytes> read_key_file(const std::string& path, std::string_view kind) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("key file " + path + " does not exist");
    return Status::io_error("cannot open key file " + path + ": " + std::strerror(errno));
  }
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) {
    ::close(fd);
    return Status::io_error("cannot stat key file " + path);
  }
  if ((sb.st_mode & 077) != 0) {
    ::close(fd);
    return Status::permission("key file " + path + " is accessible by group or others (mode " +
                              [&] {
                                std::ostringstream o;
                                o << std::oct << (sb.st_mode & 0777);
                                return o.str();
                              }() +
                              "); run: chmod 600 " + path);
  }
  if (!S_ISREG(sb.st_mode) || static_cast<std::size_t>(sb.st_size) > limits::kKeyFileBytesMax) {
    ::close(fd);
    return Status::corruption("key file " + path + " is not a small regular file");
  }
  SecretBytes buf(static_cast<std::size_t>(sb.st_size));
  std::size_t off = 0;
  while (off < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + off, buf.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (off != buf.size()) return Status::io_error("short read of key file " + path);

  std::string_view text(reinterpret_cast<const char*>(buf.data()), buf.size());
  auto bad = [&](const std::string& why) {
    return Status::corruption("key file " + path + " is damaged: " + why);
  };
  if (text.empty() || text.back() != '\n') return bad("missing final newline");
  text.remove_suffix(1);
  std::array<std::string_view, 5> parts;
  std::size_t count = 0;
  while (!text.empty()) {
    std::size_t sp = text.find(' ');
    if (count == parts.size()) return bad("too many fields");
    parts[count++] = text.substr(0, sp);
    if (sp == std::string_view::npos) break;
    text.remove_prefix(sp + 1);
  }
  if (count != 5) return bad("expected 5 fields");
  if (parts[0] != kKeyFileMagic) return bad("not an Outpost key file");
  if (parts[1] != kKeyFileVersion) return Status::unsupported("key file " + path + " has version " + std::string(parts[1]));
  if (parts[2] != kind) {
    return Status::invalid("key file " + path + " holds a " + std::string(parts[2]) +
                           " key, expected " + std::string(kind));
  }
  auto secret = from_hex(parts[3]);
  if (!secret.is_ok()) return bad("secret is not hex");
  SecretBytes out(secret.value());
  wipe(secret.value());
  std::string want = key_check(kind, out.view());
  if (!ct_equal(view(want), {reinterpret_cast<const std::uint8_t*>(parts[4].data()), parts[4].size()})) {
    return bad("check value does not match the key");
  }
  return out;
}

Status write_signing_key(const std::string& path, const SigningKey& key) {
  return write_key_file(path, "ed25519-seed", key.seed());
}

Result<SigningKey> read_signing_key(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(SecretBytes seed, read_key_file(path, "ed25519-seed"));
  if (seed.size() != crypto_sign_SEEDBYTES) {
    return Status::corruption("key file " + path + " holds a seed of the wrong length");
  }
  return SigningKey::from_seed(seed.view());
}

Result<std::string> hash_pin(const std::string& pin) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, pin.data(), pin.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return Status::internal("Argon2id hashing failed (out of memory)");
  }
  return std::string(out);
}

bool verify_pin(const std::string& encoded, const std::string& pin) {
  if (encoded.empty() || encoded.size() >= crypto_pwhash_STRBYTES) return false;
  return crypto_pwhash_str_verify(encoded.c_str(), pin.data(), pin.size()) == 0;
}

}  // namespace outpost::crypto
