// Little-endian byte writer and bounds-checked reader used by every canonical encoding in Outpost
// (ops, roster, sync messages). The reader never reads past its input and never allocates more
// than the caller's bound. Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/base/status.h"

namespace outpost::sync {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

class ByteWriter {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void raw(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // Writes a u16 length then the bytes. The caller has bounded `s` (asserted).
  void str16(std::string_view s) {
    u16(static_cast<std::uint16_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void bytes32(ByteView b) {
    u32(static_cast<std::uint32_t>(b.size()));
    raw(b);
  }
  Bytes take() { return std::move(out_); }
  const Bytes& bytes() const { return out_; }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  Bytes out_;
};

class ByteReader {
 public:
  explicit ByteReader(ByteView in) : in_(in) {}

  bool u8(std::uint8_t& v) { return le(v, 1); }
  bool u16(std::uint16_t& v) { return le(v, 2); }
  bool u32(std::uint32_t& v) { return le(v, 4); }
  bool u64(std::uint64_t& v) { return le(v, 8); }
  bool raw(std::span<std::uint8_t> out) {
    if (remaining() < out.size()) return fail();
    if (out.empty()) return true;  // memcpy's pointers must not be null, even for 0 bytes
    std::memcpy(out.data(), in_.data() + pos_, out.size());
    pos_ += out.size();
    return true;
  }
  // Reads a u16-length-prefixed string of at most `max_len` bytes.
  bool str16(std::string& s, std::size_t max_len) {
    std::uint16_t n = 0;
    if (!u16(n) || n > max_len || remaining() < n) return fail();
    s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  // Reads a u32-length-prefixed byte string of at most `max_len` bytes.
  bool bytes32(Bytes& b, std::size_t max_len) {
    std::uint32_t n = 0;
    if (!u32(n) || n > max_len || remaining() < n) return fail();
    b.assign(in_.begin() + static_cast<std::ptrdiff_t>(pos_),
             in_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return true;
  }
  std::size_t remaining() const { return in_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }

 private:
  template <typename T>
  bool le(T& v, std::size_t n) {
    if (remaining() < n) return fail();
    std::uint64_t x = 0;
    for (std::size_t i = 0; i < n; ++i) x |= std::uint64_t{in_[pos_ + i]} << (8 * i);
    v = static_cast<T>(x);
    pos_ += n;
    return true;
  }
  bool fail() {
    ok_ = false;
    return false;
  }
  ByteView in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace outpost::sync
