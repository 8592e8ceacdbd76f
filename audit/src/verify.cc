// The verifier: runs the stages in order (docs/audit-bundle.md, "What verify checks"), each in its
// own file (verifier.h lists them):
//   1. files       every file the manifest lists has its size and SHA-256;
//   2. rosters     each version root-signed, one network, each a valid successor of the last;
//   3. ops         frames parsed by this thread, then decoded, re-encoded, hashed and
//                  signature-checked by `workers` threads, which also hash the listed files;
//   4. logs        per origin, in seq order: order in the file, duplicates, equivocation, gaps,
//                  then each op by the rule book's log rule (sync::judge_op: prev links,
//                  revocation cut-offs), and HLC, request ids, reversals;
//   5. checkpoints signatures, Merkle roots and heads against the ops, consistency proofs; the
//                  tree head sets (every origin HQ knows, with its log length) against the bundle:
//                  a removed origin or a cut log is a finding;
//   6. replay      accepted ops through sync::Replica (the rule book's apply_effects) in HLC order
//                  (a linear extension of causality), checking value and rights after each op and
//                  at the end;
//   7. balances    the replayed state against balances.json.
// A finding that makes later checks meaningless suppresses their derived findings (documented
// per case), so each tampering shows up as the one finding that names its cause.
//
// Pipeline. Ed25519 verification is nearly all of the work, so the workers do nothing else but
// per-op work and file digests, and this thread checks each origin's log, extends its Merkle tree
// and replays the ops *while* they verify, in replay order, as each batch completes
// (stream_checked_ops); whenever it would wait, it checks a batch itself, so `workers` threads
// in all share the cores. That fast path only accepts a log that has no finding at all (every op
// valid, in seq order, chained, ...); at the first op it would not accept, it gives up, and once
// the workers are done the stages run one after another as written below, from scratch. So the
// report never depends on the path: tests run every tamper case both ways and compare.
#include "outpost/audit/verify.h"

#include <algorithm>

#include "outpost/audit/bundle_format.h"
#include "outpost/base/limits.h"
#include "verifier.h"

namespace outpost::audit {

namespace internal {

void Verifier::finish_checks(bool roster_ok) {
  struct Family {
    const char* name;
    std::vector<const char*> kinds;
  };
  const std::vector<Family> families = {
      {"files", {"file_missing", "file_hash_mismatch", "malformed_file", "manifest_mismatch"}},
      {"roster chain",
       {"malformed_roster", "roster_signature", "roster_network", "roster_successor"}},
      {"op encoding and signatures",
       {"malformed_op", "non_canonical_op", "wrong_origin_file", "unknown_origin",
        "bad_signature"}},
      {"log chains (order, duplicates, gaps, prev links, genesis)",
       {"out_of_order", "duplicate_op", "seq_gap", "prev_mismatch"}},
      {"equivocation", {"equivocation"}},
      {"revocation cut-offs", {"revoked_op"}},
      {"idempotency (request ids, reversals)",
       {"duplicate_request_id", "double_reversal", "bad_reversal"}},
      {"timestamps (HLC per origin)", {"hlc_backwards"}},
      {"checkpoints (signatures, Merkle roots, consistency)",
       {"checkpoint_signature", "malformed_checkpoint", "checkpoint_network",
        "checkpoint_unknown_origin", "checkpoint_conflict", "checkpoint_root_mismatch",
        "missing_checkpointed_ops", "checkpoint_inconsistent", "prefix_mismatch"}},
      {kCompletenessCheck,
       {"tree_heads_missing", "missing_origin", "malformed_tree_heads", "tree_heads_signature",
        "tree_heads_network", "tree_heads_conflict", "tree_heads_successor", "tree_heads_roster"}},
      {"replay (value and rights never below zero)",
       {"negative_rights", "negative_value", "replay_refused"}},
      {"balances", {"balance_mismatch"}},
  };
  for (const Family& f : families) {
    std::uint64_t n = 0;
    for (const Finding& x : report_.findings) {
      for (const char* k : f.kinds) n += x.kind == k ? 1 : 0;
    }
    CheckResult r{f.name, n ? "failed" : "ok", n ? std::to_string(n) + " finding(s)" : ""};
    const std::string name = f.name;
    if (!roster_ok && name != "files" && name != "roster chain") {
      r = {f.name, "skipped", "no roster version verifies under the given root key"};
    } else if (name == "balances" && n == 0) {
      if (partial_) {
        r = {f.name, "skipped", "the bundle covers a date range; balances need every op"};
      } else if (taint_all_) {
        r = {f.name, "skipped", taint_all_reason_};
      }
    } else if (name == kCompletenessCheck && n == 0 && tree_heads_.empty()) {
      r = {f.name, "skipped",
           "no HQ-signed tree head set in the bundle: nothing proves that no origin or log tail "
           "was removed"};
    } else if (name == kCompletenessCheck && n == 0 && partial_) {
      r = {f.name, "ok",
           "date range: checked for the exported origins only (origins with no op in the range "
           "are not expected)"};
    } else if (name == "replay (value and rights never below zero)" && partial_ && n == 0) {
      r = {f.name, "skipped", "the bundle covers a date range; replay needs every op"};
    }
    report_.checks.push_back(std::move(r));
  }
  judge_completeness(roster_ok);
}

// Whether the bundle proves that nothing HQ vouched for was removed, and if not, why (the first
// reason that applies). `verify` exits kExitIncomplete on a clean bundle that does not.
void Verifier::judge_completeness(bool roster_ok) {
  report_.allow_incomplete = opt_.allow_incomplete;
  std::string why;
  const auto check =
      std::find_if(report_.checks.begin(), report_.checks.end(),
                   [](const CheckResult& c) { return c.name == kCompletenessCheck; });
  if (!roster_ok) {
    why = "no roster verifies under the given root key";
  } else if (check != report_.checks.end() && check->status == "failed") {
    why = "the completeness check has findings";
  } else if (tree_heads_.empty()) {
    why =
        "the bundle holds no HQ-signed tree head set, so nothing says which origins and how many "
        "ops must be present";
  } else if (partial_) {
    why =
        "a date-range bundle: an origin left out entirely cannot be told from one with no op in "
        "the range";
  } else if (!uncovered_nodes_.empty()) {
    why = std::to_string(uncovered_nodes_.size()) + " node(s) of roster v" +
          std::to_string(roster_->version) + " (" + uncovered_nodes_.front() +
          (uncovered_nodes_.size() > 1 ? ", ..." : "") + ") have no line in tree head set v" +
          std::to_string(tree_heads_.back().set.version) +
          ": their logs could be missing unseen (run `outpost hq checkpoint` and export again)";
  }
  report_.completeness_proven = why.empty();
  report_.completeness_reason = std::move(why);
}

Result<Report> Verifier::run() {
  OUTPOST_ASSIGN_OR_RETURN(manifest_, internal::read_manifest(dir_));
  report_.bundle = dir_;
  partial_ = manifest_.contains("range") && manifest_["range"].is_object();
  report_.partial = partial_;
  check_files();
  const bool roster_ok = check_rosters();
  if (!roster_ok) {
    for (FileCheck& f : file_checks_) hash_file(f);
    add_file_findings();
    if (report_.findings.empty()) {
      add("roster_signature", "", 0, "", bundle::kRostersFile,
          "the bundle holds no roster: nothing can be authenticated");
    }
    report_.notes.push_back("no roster verifies under the given root key: wrong key, or not this "
                            "chain's bundle; nothing else was checked");
    finish_checks(false);
    return std::move(report_);
  }
  load_logs();
  report_.counts["origins"] = logs_.size();
  check_ops();
  add_file_findings();
  if (!streamed_) {
    for (auto& log : logs_) check_log(*log);
  }
  check_equivocation_evidence();
  check_checkpoints();
  if (!partial_) {
    if (streamed_) {
      finish_streamed_replay();
    } else {
      replay();
    }
    if (!taint_all_) {
      check_balances();
    } else {
      report_.notes.push_back("balances not compared: " + taint_all_reason_);
    }
  } else {
    report_.notes.push_back("partial bundle (date range): replay and balances are not checked; "
                            "each origin's chain is checked from its first exported op");
  }
  finish_checks(true);
  return std::move(report_);
}

}  // namespace internal

std::string Report::result() const {
  if (!clean()) return "findings";
  if (!completeness_proven) return allow_incomplete ? "incomplete_allowed" : "incomplete";
  return "clean";
}

int Report::exit_code() const {
  const std::string r = result();
  return r == "findings" ? kExitFindings : r == "incomplete" ? kExitIncomplete : kExitClean;
}

Result<Report> verify_bundle(const std::string& dir, const VerifyOptions& options) {
  internal::Verifier v(dir, options);
  return v.run();
}

Result<crypto::PublicKey> parse_root_key(const std::string& hex_or_path) {
  std::string text = hex_or_path;
  const bool looks_hex = text.size() == 64 && text.find_first_not_of("0123456789abcdefABCDEF") ==
                                                  std::string::npos;
  if (!looks_hex) {
    auto data = read_whole_file(hex_or_path, limits::kKeyFileBytesMax);
    if (!data.is_ok()) {
      return Status::invalid("--root must be 64 hex digits or a file holding them: " +
                             data.status().message());
    }
    text.assign(data->begin(), data->end());
    const auto b = text.find_first_not_of(" \t\r\n");
    const auto e = text.find_last_not_of(" \t\r\n");
    text = b == std::string::npos ? "" : text.substr(b, e - b + 1);
  }
  auto key = internal::hex_array<32>(text, "root key");
  if (!key.is_ok()) return Status::invalid("--root: the root public key must be 64 hex digits");
  return *key;
}

}  // namespace outpost::audit
