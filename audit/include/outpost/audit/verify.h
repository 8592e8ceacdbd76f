// The offline verifier of audit bundles (docs/audit-bundle.md): checks a bundle exported by any
// node against the chain's root public key alone and reports every finding. Depends on crypto/
// and sync/ only. verify_bundle() runs its own worker threads for signatures and joins them
// before it returns; the functions are otherwise pure and may run concurrently on different
// bundles.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/op.h"

namespace outpost::audit {

using Json = nlohmann::ordered_json;

// Exit codes of `outpost-audit` (docs/audit-bundle.md, "Exit codes").
inline constexpr int kExitClean = 0;
inline constexpr int kExitFindings = 1;
inline constexpr int kExitUsage = 2;
// `verify`: no finding, but the bundle does not prove that nothing was removed (see
// Report::completeness_proven), and the auditor did not pass --allow-incomplete.
inline constexpr int kExitIncomplete = 3;

// Reports progress of a long stage ("signatures", "replay", ...) from the calling thread.
using Progress =
    std::function<void(const std::string& stage, std::uint64_t done, std::uint64_t total)>;

struct VerifyOptions {
  crypto::PublicKey root{};  // the chain's root public key, from the auditor's own records
  unsigned workers = 2;      // signature-verification threads, 1..kWorkersMax
  Progress progress;         // optional
  // When set, the report's `trace` lists every replayed op of this member (`explain`).
  std::optional<sync::MemberId> trace_member;
  // Checks each log and replays it while the workers verify signatures (see verify.cc). Off runs
  // the stages one after another; the report is the same (tests compare both ways).
  bool pipeline = true;
  // Accepts a bundle whose completeness is not proven (`--allow-incomplete`): the report says so,
  // and its result is "incomplete_allowed" instead of "incomplete".
  bool allow_incomplete = false;
};
inline constexpr unsigned kWorkersMax = 16;

// One thing that is wrong with the bundle. `kind` is a stable name listed in
// docs/audit-bundle.md ("Findings"); origin/seq/member/file say where, when they apply.
struct Finding {
  std::string kind;
  std::string origin;     // node id hex, or empty
  std::uint64_t seq = 0;  // 0 when the finding is not about one op or checkpoint
  std::string member;     // member id hex, or empty
  std::string file;       // bundle-relative path, or empty
  std::string reason;     // one sentence for the auditor
};

// One family of checks and how it went: "ok", "failed" (see findings) or "skipped" (why).
struct CheckResult {
  std::string name;
  std::string status;
  std::string detail;
};

// One replayed op of the traced member and the member's state right after it.
struct TraceLine {
  std::string op;  // ORIGIN:SEQ
  std::string origin_name;
  sync::Hlc hlc;
  std::string kind;
  std::string account;       // points, wallet or empty
  std::int64_t delta = 0;    // change of the account's value (moves: 0)
  std::uint64_t amount = 0;  // the op's amount
  std::string detail;        // move target, reversed op, profile fields
  std::int64_t points = 0;
  std::int64_t wallet = 0;
  std::int64_t rights_at_origin = 0;  // of the op's account, at its origin
};

struct Report {
  std::string bundle;
  bool partial = false;  // the bundle covers a date range only
  Json counts = Json::object();
  std::vector<CheckResult> checks;
  std::vector<Finding> findings;
  std::vector<std::string> notes;
  // explain: the traced member's ops and final state (Json of balances.json's member shape).
  std::vector<TraceLine> trace;
  Json traced_final;     // recomputed, or null when the member has no replayed op
  Json traced_exported;  // from balances.json, or null
  // The newest HQ tree head set the bundle holds (what the completeness check rests on):
  // {"version", "issued_ms", "roster_version", "origins", "ops"}, or null when there is none.
  Json tree_head;
  // Whether the bundle proves that no origin and no log tail HQ vouched for was removed: a trusted
  // tree head set covers every node of the newest trusted roster, the completeness check found
  // nothing, and the bundle is not a date range. When not, `completeness_reason` says why.
  bool completeness_proven = false;
  std::string completeness_reason;
  bool allow_incomplete = false;  // VerifyOptions::allow_incomplete, for the renderings
  // No finding (completeness aside).
  bool clean() const { return findings.empty(); }
  // "findings", "incomplete" (no finding, completeness not proven), "incomplete_allowed" (the
  // same, accepted by the auditor) or "clean".
  std::string result() const;
  // The exit code of `outpost-audit verify` for this report: kExitFindings, kExitIncomplete or
  // kExitClean, as result() says.
  int exit_code() const;
};

// Verifies the bundle in `dir` against options.root. Findings are results, not errors: the
// Result fails only when the bundle cannot be read at all (kNotFound: no manifest;
// kInvalidArgument: the manifest is not JSON or not a bundle's; kUnsupported: a newer version).
Result<Report> verify_bundle(const std::string& dir, const VerifyOptions& options);

// The report as JSON (docs/audit-bundle.md, "Report") and as text for people.
Json report_json(const Report& report);
std::string report_text(const Report& report);
// `explain`: how the traced member's balance follows from its ops.
std::string trace_text(const Report& report, const std::string& member_hex);

// Parses the root key given on the command line: 64 hex digits, or the path of a file holding
// them (surrounding whitespace ignored). kInvalidArgument / kNotFound otherwise.
Result<crypto::PublicKey> parse_root_key(const std::string& hex_or_path);

// Resolves an explain argument: 32 hex digits are a member id; anything else is a card number,
// looked up in the enroll and profile ops of the bundle. kNotFound when no op names that card.
Result<sync::MemberId> find_member(const std::string& dir, const std::string& id_or_card);

// Reads a whole file of at most `max_bytes`. kNotFound, kIoError, or kInvalidArgument if larger.
Result<std::vector<std::uint8_t>> read_whole_file(const std::string& path, std::uint64_t max_bytes);

}  // namespace outpost::audit
