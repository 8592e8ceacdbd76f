// The node's side of audits (docs/audit-bundle.md): HQ signs checkpoints (RFC 6962 tree heads of
// each origin's log) and chain-wide tree head sets with the root key, and any node exports an
// audit bundle of what it holds for `outpost-audit verify`. Used by the `outpost` CLI. Functions
// open the data dir's database themselves and read a consistent snapshot; the daemon may keep
// running. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "outpost/base/status.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/hlc.h"

namespace outpost::node {

// `outpost hq checkpoint`: on the HQ data dir holding root.key, signs a checkpoint at the current
// head of every origin whose head has none yet (table checkpoints), then, when any head or the
// roster moved, a new version of the chain-wide tree head set: every node of HQ's roster with its
// log length, root and head (table tree_heads). Before signing, checks that each log still hashes
// to the origin's previous checkpoint and its line in the previous set (kCorruption otherwise:
// HQ's own log changed under a signed head). Returns {"checkpoints": [...], "signed": n,
// "tree_heads": {"version", "new", "roster_version", "origins", "ops"}}. kPermission if the dir
// has no root key or it is not the pinned one; kInvalidArgument if a concurrent run stored the
// same set version first.
Result<Json> hq_checkpoint(const std::string& hq_dir, sync::Clock& clock);

// A tree head set offered by a peer over sync (BLOB kind 3, docs/sync-protocol.md): verifies it
// against the pinned root and network, refuses (kRefused: ignore it) a version not newer than the
// stored one or one naming a roster newer than this node holds (offered again later), checks
// that it extends the stored one (check_tree_head_successor; kCorruption: HQ signed two
// histories), and stores it. kPermission for a foreign signature or network.
Result<sync::SignedTreeHeadSet> accept_tree_head_set(storage::Store& store, const TrustAnchors& anchors,
                                                      std::uint64_t roster_version_held, sync::ByteView body,
                                                      sync::ByteView sig);

// Progress of a long export: ops written so far and the total expected.
using ExportProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct ExportOptions {
  std::string out_dir;                // created; refused if it exists and is not empty
  std::optional<std::string> from;    // YYYY-MM-DD (UTC): ops with an HLC on or after that day
  std::optional<std::string> to;      // YYYY-MM-DD (UTC): ops with an HLC up to that day included
  ExportProgress progress;            // optional
};

// `outpost export-audit`: writes the audit bundle of everything the node in `dir` holds (or, with
// from/to, each origin's ops in that date range) to options.out_dir. Returns the manifest.
// kInvalidArgument for a bad date, an unenrolled node or an out dir that is not empty; kIoError
// when a file cannot be written.
Result<Json> export_audit(const std::string& dir, const ExportOptions& options,
                          sync::Clock& clock);

// Reports export progress on stderr: a bar redrawn in place when stderr is a terminal, otherwise
// one line per 100000 ops (so small exports print nothing).
ExportProgress stderr_progress();

// Parses YYYY-MM-DD as the first millisecond of that UTC day. kInvalidArgument otherwise.
Result<std::uint64_t> parse_utc_date_ms(const std::string& date);

// One-paragraph renderings of the results above, for operators.
std::string checkpoint_text(const Json& result);
std::string export_text(const Json& manifest);

}  // namespace outpost::node
