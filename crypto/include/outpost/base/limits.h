// Every bound Outpost enforces, in one place, each with the reason for its value
// (TigerStyle: put a limit on everything). Header-only constants; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace outpost::limits {

// Largest single amount (points or minor currency units) one op may carry: 10^12 minor units is
// ten billion in a two-decimal currency, far beyond any retail transaction, and keeps the sum of
// 2^20 such ops far inside int64.
inline constexpr std::uint64_t kAmountMax = 1'000'000'000'000ULL;
// Largest running total any counter entry may reach; ops that would pass it are refused
// instead of overflowing.
inline constexpr std::uint64_t kCounterMax = (std::uint64_t{1} << 62);
static_assert(kAmountMax < kCounterMax);

// Byte-string fields inside an op (request_id, receipt, profile values). Bounded so a peer cannot
// make us allocate from a length it chose.
inline constexpr std::size_t kRequestIdBytesMax = 64;
inline constexpr std::size_t kReceiptBytesMax = 128;
inline constexpr std::size_t kFieldValueBytesMax = 128;
inline constexpr std::size_t kFieldsPerOpMax = 16;
// Upper bound of one encoded op (signed bytes): fixed part + all variable fields at their maxima.
inline constexpr std::size_t kOpSignedBytesMax = 4096;
static_assert(kRequestIdBytesMax + kReceiptBytesMax + kFieldsPerOpMax * (3 + kFieldValueBytesMax) +
                  256 < kOpSignedBytesMax);

// Names and card numbers shown to cashiers.
inline constexpr std::size_t kNameBytesMax = 100;
inline constexpr std::size_t kCardDigitsMin = 8;
inline constexpr std::size_t kCardDigitsMax = 19;  // ISO/IEC 7812 PAN length
inline constexpr std::size_t kPhoneDigitsMin = 6;
inline constexpr std::size_t kPhoneDigitsMax = 15;  // E.164

// History listings return at most this many ops per call.
inline constexpr std::size_t kHistoryRowsMax = 1000;

// SQLite busy timeout: a second writer (CLI while the daemon runs) waits this long for the lock.
inline constexpr int kSqliteBusyTimeoutMs = 5000;

// Key files are tiny; refuse anything larger before reading it.
inline constexpr std::size_t kKeyFileBytesMax = 4096;

// Noise: the spec's maximum message length, and the nonce after which a cipher must rekey/close.
inline constexpr std::size_t kNoiseMessageBytesMax = 65535;
inline constexpr std::uint64_t kNoiseRekeyAfterMessages = 1ULL << 20;

// Application messages over a link may span several Noise frames; bound the reassembled size.
inline constexpr std::size_t kLinkMessageBytesMax = 4 * 1024 * 1024;

// HTTP: request bodies above this are refused with 413 before parsing.
inline constexpr std::size_t kHttpBodyBytesMax = 64 * 1024;
inline constexpr int kHttpReadTimeoutMs = 10'000;

}  // namespace outpost::limits
