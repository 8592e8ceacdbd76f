// Names and versions of the audit bundle layout (docs/audit-bundle.md), shared by its writer
// (node/, `outpost export-audit`) and its reader (audit/, `outpost-audit`), which must not depend
// on each other. Header-only constants; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace outpost::sync::bundle {

inline constexpr const char* kFormat = "outpost-audit-bundle";
inline constexpr int kVersion = 1;
inline constexpr const char* kBalancesFormat = "outpost-audit-balances";
inline constexpr const char* kProofFormat = "outpost-inclusion-proof";

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kRostersFile = "rosters.bin";
inline constexpr const char* kCheckpointsFile = "checkpoints.bin";
inline constexpr const char* kEquivocationsFile = "equivocations.bin";
inline constexpr const char* kBalancesFile = "balances.json";
inline constexpr const char* kOpsJsonFile = "ops.jsonl";
inline constexpr const char* kOpsDir = "ops";
inline constexpr const char* kOpsSuffix = ".ops";

// A manifest or balances file above this is refused before parsing (1M members at ~500 bytes).
inline constexpr std::size_t kJsonFileBytesMax = std::size_t{1} << 30;
// Bundle binary files are read whole; one above this is refused as unreadable.
inline constexpr std::uint64_t kBinaryFileBytesMax = std::uint64_t{64} << 30;

}  // namespace outpost::sync::bundle
