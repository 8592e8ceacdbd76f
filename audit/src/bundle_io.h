// Reading the parts of an audit bundle shared by the verifier and the proof commands: the
// manifest, bundle-relative paths, whole files and their framed records. Internal to audit/.
// Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/audit/verify.h"
#include "outpost/base/status.h"
#include "outpost/crypto/hex.h"
#include "outpost/sync/op.h"

namespace outpost::audit::internal {

// Reads and checks manifest.json: kNotFound without it, kInvalidArgument when it is not JSON or
// not a bundle manifest, kUnsupported for another bundle version.
Result<Json> read_manifest(const std::string& dir);

// Returns `rel` if it is a safe bundle-relative path (not absolute, no "..", not empty).
Result<std::string> checked_relative_path(const std::string& rel);
std::string bundle_path(const std::string& dir, const std::string& rel);

// One origin's log file as the manifest announces it (or as found in ops/).
struct OriginEntry {
  sync::NodeId origin{};
  std::string file;
  std::string name;
  std::uint64_t first_seq = 1;
  std::uint64_t prefix_size = 0;
  std::vector<crypto::Hash32> frontier;
  crypto::Hash32 prefix_prev{};
  bool listed = true;  // false: found in ops/ but not in the manifest
  // Not empty: the manifest's entry is malformed (why), and the log cannot be read as announced.
  // `origin` is all zero when the entry does not even name one.
  std::string error;
};

// The origins of a bundle: the manifest's list, then any ops/*.ops file it does not list. In a
// complete bundle (no range) every origin starts at seq 1 whatever the manifest says. A malformed
// entry (or a second entry for one origin) is returned with `error` set, so that one bad entry
// spoils only its own origin.
Result<std::vector<OriginEntry>> bundle_origins(const std::string& dir, const Json& manifest);

// A string member of a JSON object, or kInvalidArgument naming it.
Result<std::string> json_string(const Json& j, const char* key, const std::string& what);

using crypto::hex_array;

}  // namespace outpost::audit::internal
