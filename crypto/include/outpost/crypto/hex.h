// Parsing a fixed-size key, id or signature from hex, for the readers of Outpost's text files
// (identity files, roster and anchor documents, the audit bundle).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"

namespace outpost::crypto {

// The N bytes `hex` spells (2N hex digits), or kInvalidArgument naming `what`.
template <std::size_t N>
Result<std::array<std::uint8_t, N>> hex_array(const std::string& hex, const std::string& what) {
  auto bytes = from_hex(hex);
  if (!bytes.is_ok() || bytes->size() != N) {
    return Status::invalid(what + " must be " + std::to_string(2 * N) + " hex digits");
  }
  std::array<std::uint8_t, N> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

}  // namespace outpost::crypto
