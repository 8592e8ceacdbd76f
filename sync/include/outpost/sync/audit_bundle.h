// Names and versions of the audit bundle layout (docs/audit-bundle.md), shared by its writer
// (node/, `outpost export-audit`) and its reader (audit/, `outpost-audit`), which must not depend
// on each other: constants, and the one rendering of a member's balances both must agree on.
// Safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "outpost/sync/replica.h"

namespace outpost::sync::bundle {

inline constexpr const char* kFormat = "outpost-audit-bundle";
inline constexpr int kVersion = 1;
inline constexpr const char* kBalancesFormat = "outpost-audit-balances";
inline constexpr const char* kProofFormat = "outpost-inclusion-proof";

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kRostersFile = "rosters.bin";
inline constexpr const char* kCheckpointsFile = "checkpoints.bin";
inline constexpr const char* kTreeHeadsFile = "tree_heads.bin";
inline constexpr const char* kEquivocationsFile = "equivocations.bin";
inline constexpr const char* kBalancesFile = "balances.json";
inline constexpr const char* kOpsJsonFile = "ops.jsonl";
inline constexpr const char* kOpsDir = "ops";
inline constexpr const char* kOpsSuffix = ".ops";

// A manifest or balances file above this is refused before parsing (1M members at ~500 bytes).
inline constexpr std::size_t kJsonFileBytesMax = std::size_t{1} << 30;
// Bundle binary files are read whole; one above this is refused as unreadable.
inline constexpr std::uint64_t kBinaryFileBytesMax = std::uint64_t{64} << 30;

// Returns the balances.json entry of one member (docs/audit-bundle.md, "Balances"): card, points
// and wallet (value and rights per node), and the spend, reversed-spend and visit G-counters
// summed per month. The exporter writes it; the verifier recomputes it from the ops and compares.
nlohmann::ordered_json balance_json(const MemberId& id, const MemberState& m);

}  // namespace outpost::sync::bundle
