// The audit bundle format (docs/audit-bundle.md): names, versions and limits of the bundle
// layout, and the one rendering of a member's balances, shared by its writer (node/, `outpost
// export-audit`) and its reader (audit/, `outpost-audit`). A library of its own
// (outpost_audit_format) so that the node links the format and nothing else of audit/, and
// audit/ nothing of node/. Safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "outpost/sync/member_state.h"

namespace outpost::audit::bundle {

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
nlohmann::ordered_json balance_json(const sync::MemberId& id, const sync::MemberState& m);

}  // namespace outpost::audit::bundle
