// Inclusion proofs of single ops against HQ tree head sets (RFC 9162 audit paths), as standalone
// JSON documents an auditor can hand to someone else: `outpost-audit prove` writes one from a
// bundle, `outpost-audit verify-proof` checks one with the root key alone. Format in
// docs/audit-bundle.md ("Inclusion proofs"). Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <string>

#include "outpost/audit/verify.h"
#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/op.h"

namespace outpost::audit {

// Builds the inclusion proof of op ORIGIN:SEQ against the newest HQ tree head set in the bundle
// (its line for ORIGIN), carrying that set and the newest roster, which is at least the one the
// set names. kNotFound when the origin, the op, a tree head set covering the op or that roster is
// missing; kCorruption when the bundle's ops do not hash to the set's head (run verify);
// kUnsupported for a date-range bundle; kInvalidArgument when the manifest's entry is malformed.
Result<Json> prove_inclusion(const std::string& dir, const sync::NodeId& origin,
                             std::uint64_t seq);

// What verify_inclusion_proof established.
struct ProofResult {
  bool valid = false;
  std::vector<std::string> checks;  // each check passed, in order
  std::string failure;              // the first check that failed, when !valid
  // What the proof was checked against, once known (0 before): the tree head set's version and
  // signing time, and the versions of the roster it names and of the roster the proof carries.
  std::uint64_t tree_head_version = 0;
  std::uint64_t tree_head_issued_ms = 0;
  std::uint64_t tree_head_roster_version = 0;
  std::uint64_t roster_version = 0;
};

// Checks a proof document: the tree head set and the roster are signed by `root` for one network,
// the roster is not older than the one the set names, the set is at least version
// `min_tree_head_version` (the newest the auditor knows HQ signed; 0: any), the op decodes and is
// signed by its origin's certificate key and allowed by the roster's revocations, and the audit
// path leads from the op's leaf hash to the set's head for the op's origin. kInvalidArgument when
// the document is not a proof at all, kUnsupported for a version this code does not check; a
// wrong proof is a result with valid = false.
Result<ProofResult> verify_inclusion_proof(const Json& proof, const crypto::PublicKey& root,
                                           std::uint64_t min_tree_head_version = 0);

}  // namespace outpost::audit
