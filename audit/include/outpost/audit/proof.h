// Inclusion proofs of single ops against HQ checkpoints (RFC 9162 audit paths), as standalone
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

// Builds the inclusion proof of op ORIGIN:SEQ against the newest checkpoint of that origin in the
// bundle. kNotFound when the origin, the op or a checkpoint covering it is missing; kCorruption
// when the bundle's ops do not hash to that checkpoint's root (run verify).
Result<Json> prove_inclusion(const std::string& dir, const sync::NodeId& origin,
                             std::uint64_t seq);

// What verify_inclusion_proof established.
struct ProofResult {
  bool valid = false;
  std::vector<std::string> checks;  // each check passed, in order
  std::string failure;              // the first check that failed, when !valid
};

// Checks a proof document: the roster and the checkpoint are signed by `root`, the op decodes
// and is signed by its origin's certificate key and allowed by the roster's revocations, and the
// audit path leads from the op's leaf hash to the checkpoint's root. kInvalidArgument only when
// the document is not a proof at all; a wrong proof is a result with valid = false.
Result<ProofResult> verify_inclusion_proof(const Json& proof, const crypto::PublicKey& root);

}  // namespace outpost::audit
