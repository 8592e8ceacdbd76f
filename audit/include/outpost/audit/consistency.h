// RFC 6962 / RFC 9162 consistency between two HQ-signed heads of the same logs, for
// `outpost-audit consistency OLD NEW`: that every log HQ vouched for in the older head is a prefix
// of the same log in the newer one (nothing rewritten, nothing dropped). Format and exit codes in
// docs/audit-bundle.md ("Consistency between two signed heads"). Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/audit/verify.h"
#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/checkpoint.h"

namespace outpost::audit {

// A signed head read from a file: one checkpoint (one origin) or one tree head set (every origin
// HQ knew), verified under the root key.
struct SignedHeads {
  bool is_set = false;  // a tree head set, else a checkpoint
  sync::NetworkId network_id{};
  std::uint64_t version = 0;         // the set's version (0 for a checkpoint)
  std::uint64_t roster_version = 0;  // the roster the set names (0 for a checkpoint)
  std::uint64_t issued_ms = 0;
  std::vector<sync::TreeHead> heads;  // ascending by origin; a checkpoint gives one
  // "tree head set v7" or "checkpoint of ORIGIN at 12", for messages.
  std::string describe() const;
};

// Reads a file of framed signed records (docs/audit-bundle.md, "Framed record"): a bundle's
// `tree_heads.bin` or `checkpoints.bin`, or one record of them. A file of tree head sets gives the
// set of the highest version; a file of checkpoints gives the largest checkpoint of `origin`, or
// of its only origin when `origin` is not given. Every record must be signed by `root`.
// kPermission when a record's signature does not verify; kNotFound / kIoError when the file cannot
// be read; kInvalidArgument when it is not such records (cut short, another kind, two kinds, two
// networks, two sets of one version) or names no checkpoint of `origin` / several origins.
Result<SignedHeads> read_signed_heads(const std::string& path, const crypto::PublicKey& root,
                                      const std::optional<sync::NodeId>& origin);

// A consistency proof PROOF(old_size, D[new_size]) of one origin's log.
struct ConsistencyProof {
  sync::NodeId origin{};
  std::uint64_t old_size = 0;
  std::uint64_t new_size = 0;
  std::vector<sync::Hash32> path;
};

// Parses the `proofs` of a consistency proof document (format "outpost-consistency-proof",
// version 1; other keys are ignored, so a saved `--json` result is a proof document).
// kInvalidArgument when it is not one; kUnsupported for another version.
Result<std::vector<ConsistencyProof>> parse_consistency_proofs(const Json& doc);

// Computes the proof of every origin that both heads name with a larger tree in `now`, from the
// ops of the bundle in `dir` (which need not be trusted: a proof from altered ops fails). An origin
// whose ops the bundle lacks gets no proof. kNotFound / kInvalidArgument when the bundle cannot be
// read at all.
Result<std::vector<ConsistencyProof>> consistency_proofs_from_bundle(const std::string& dir,
                                                                     const SignedHeads& old,
                                                                     const SignedHeads& now);

struct ConsistencyResult {
  bool valid = false;
  std::vector<std::string> checks;  // each check passed, in order
  std::string failure;              // the first check that failed, when !valid
};

// Checks that `now` extends `old`: one network; for two sets, versions and roster versions in
// order; for every origin of `old` (only `origin`, when given) a head in `now` whose tree is at
// least as large and, by its proof in `proofs`, extends the old one (equal sizes: equal heads).
ConsistencyResult check_consistency(const SignedHeads& old, const SignedHeads& now,
                                    const std::vector<ConsistencyProof>& proofs,
                                    const std::optional<sync::NodeId>& origin);

// The result as a consistency proof document with "valid", "checks" and "failure" added.
Json consistency_json(const SignedHeads& old, const SignedHeads& now,
                      const std::vector<ConsistencyProof>& proofs, const ConsistencyResult& r);

}  // namespace outpost::audit
