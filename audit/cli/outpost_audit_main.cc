// `outpost-audit`: verifies an Outpost audit bundle offline with the chain's root public key
// alone (docs/audit-bundle.md). Exit codes: 0 clean (or the command succeeded), 1 findings (or an
// invalid proof, inconsistent heads, or nothing to prove), 2 usage error or an input that cannot
// be read as what it should be, 3 (`verify`) no findings but completeness not proven.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "outpost/audit/bundle_format.h"
#include "outpost/audit/consistency.h"
#include "outpost/audit/proof.h"
#include "outpost/audit/verify.h"
#include "outpost/crypto/crypto.h"

namespace {

using outpost::Status;
using outpost::audit::Json;
using outpost::audit::kExitClean;
using outpost::audit::kExitFindings;
using outpost::audit::kExitUsage;

// Without a terminal, one progress line per this many ops; with one, a bar from this many ops.
constexpr std::uint64_t kProgressLineOps = 100'000;
constexpr std::uint64_t kProgressBarMinOps = 10'000;

int usage_error(const std::string& message) {
  std::cerr << "outpost-audit: error: " << message << "\n";
  return kExitUsage;
}

// A progress bar redrawn in place when stderr is a terminal, else a line every kProgressLineOps.
outpost::audit::Progress stderr_progress() {
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  return [tty, last = std::string(), next_line = kProgressLineOps](
             const std::string& stage, std::uint64_t done, std::uint64_t total) mutable {
    if (total < kProgressBarMinOps) return;
    if (stage != last) {
      next_line = kProgressLineOps;
      last = stage;
    }
    const unsigned pct = total ? static_cast<unsigned>(done * 100 / total) : 100;
    if (tty) {
      constexpr int kWidth = 30;
      const int fill = static_cast<int>(pct * kWidth / 100);
      std::fprintf(stderr, "\r%-10s [%s%s] %3u%% %llu/%llu ops", stage.c_str(),
                   std::string(static_cast<std::size_t>(fill), '#').c_str(),
                   std::string(static_cast<std::size_t>(kWidth - fill), '.').c_str(), pct,
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
      if (done >= total) std::fputc('\n', stderr);
    } else if (done >= next_line || done >= total) {
      std::fprintf(stderr, "outpost-audit: %s %llu/%llu ops (%u%%)\n", stage.c_str(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   pct);
      next_line = done + kProgressLineOps;
    }
  };
}

int print_status_error(const std::string& what, const Status& st) {
  std::cerr << "outpost-audit: " << what << ": " << st.message() << "\n";
  return kExitUsage;
}

// Reads and parses a JSON file of at most kJsonFileBytesMax; prints why and returns nullopt when
// it cannot.
std::optional<Json> read_json_file(const std::string& path, const std::string& what) {
  auto data = outpost::audit::read_whole_file(path, outpost::audit::bundle::kJsonFileBytesMax);
  if (!data.is_ok()) {
    print_status_error("cannot read the " + what, data.status());
    return std::nullopt;
  }
  try {
    return Json::parse(data->begin(), data->end());
  } catch (const std::exception& e) {
    usage_error(path + " is not JSON: " + e.what());
    return std::nullopt;
  }
}

// Prints each passed check as "ok", the failure as "FAIL", then `verdict_ok` or `verdict_bad`.
void print_checks(const std::vector<std::string>& checks, bool valid, const std::string& failure,
                  const char* verdict_ok, const char* verdict_bad) {
  for (const auto& c : checks) std::cout << "ok    " << c << "\n";
  if (!valid) std::cout << "FAIL  " << failure << "\n";
  std::cout << (valid ? verdict_ok : verdict_bad) << "\n";
}

// `verify-proof PROOF --root KEY`: 0 valid, 1 invalid, 2 unreadable or not a proof document.
int run_verify_proof(const std::string& proof_file, const outpost::crypto::PublicKey& root,
                     std::uint64_t min_tree_head_version, bool json) {
  auto doc = read_json_file(proof_file, "proof");
  if (!doc) return kExitUsage;
  auto r = outpost::audit::verify_inclusion_proof(*doc, root, min_tree_head_version);
  if (!r.is_ok()) return print_status_error("not a proof", r.status());
  if (json) {
    std::cout << Json{{"valid", r->valid},
                      {"checks", r->checks},
                      {"failure", r->failure},
                      {"tree_head_version", r->tree_head_version},
                      {"tree_head_issued_ms", r->tree_head_issued_ms},
                      {"tree_head_roster_version", r->tree_head_roster_version},
                      {"roster_version", r->roster_version}}
                     .dump()
              << "\n";
  } else {
    print_checks(r->checks, r->valid, r->failure, "PROOF VALID", "PROOF INVALID");
  }
  return r->valid ? kExitClean : kExitFindings;
}

struct ConsistencyArgs {
  std::string old_file, new_file, proof_file, bundle, origin_hex;
  bool json = false;
};

// `consistency OLD NEW`: 0 consistent; 1 not consistent, or a head not signed by the root key;
// 2 usage error, or a file that is not what it should be.
int run_consistency(const ConsistencyArgs& a, const outpost::crypto::PublicKey& root) {
  namespace audit = outpost::audit;
  if (a.proof_file.empty() == a.bundle.empty()) {
    return usage_error("give the proof with exactly one of --proof FILE or --bundle DIR");
  }
  std::optional<outpost::sync::NodeId> origin;
  if (!a.origin_hex.empty()) {
    auto id = outpost::sync::parse_id(a.origin_hex);
    if (!id.is_ok()) return usage_error("--origin must be 32 hex digits");
    origin = *id;
  }
  auto read_heads = [&](const std::string& path, const char* which) {
    auto h = audit::read_signed_heads(path, root, origin);
    if (!h.is_ok()) {
      std::cerr << "outpost-audit: " << which << ": " << h.status().message() << "\n";
    }
    return h;
  };
  // A record that is not root-signed makes the pair unproven (1); anything else is bad input (2).
  auto failed = [](const outpost::Status& st) {
    return st.code() == outpost::Code::kPermission ? kExitFindings : kExitUsage;
  };
  auto old = read_heads(a.old_file, "OLD");
  if (!old.is_ok()) return failed(old.status());
  auto now = read_heads(a.new_file, "NEW");
  if (!now.is_ok()) return failed(now.status());
  outpost::Result<std::vector<audit::ConsistencyProof>> proofs =
      std::vector<audit::ConsistencyProof>();
  if (!a.bundle.empty()) {
    proofs = audit::consistency_proofs_from_bundle(a.bundle, *old, *now);
  } else if (auto doc = read_json_file(a.proof_file, "proof")) {
    proofs = audit::parse_consistency_proofs(*doc);
  } else {
    return kExitUsage;
  }
  if (!proofs.is_ok()) return print_status_error("cannot use the proof", proofs.status());
  const audit::ConsistencyResult r = audit::check_consistency(*old, *now, *proofs, origin);
  if (a.json) {
    std::cout << audit::consistency_json(*old, *now, *proofs, r).dump(2) << "\n";
  } else {
    print_checks(r.checks, r.valid, r.failure, "CONSISTENT", "NOT CONSISTENT");
  }
  return r.valid ? kExitClean : kExitFindings;
}

// `prove BUNDLE OP`: prints the inclusion proof of one op.
int run_prove(const std::string& bundle, const std::string& op_ref) {
  outpost::sync::NodeId origin{};
  std::uint64_t seq = 0;
  if (!outpost::sync::parse_op_ref(op_ref, origin, seq) || seq == 0) {
    return usage_error("OP must be ORIGIN:SEQ (32 hex digits, colon, seq), got '" + op_ref + "'");
  }
  auto proof = outpost::audit::prove_inclusion(bundle, origin, seq);
  if (!proof.is_ok()) {
    std::cerr << "outpost-audit: cannot prove " << op_ref << ": " << proof.status().message()
              << "\n";
    const auto code = proof.status().code();
    return code == outpost::Code::kNotFound || code == outpost::Code::kCorruption ? kExitFindings
                                                                                  : kExitUsage;
  }
  std::cout << proof->dump(2) << "\n";
  return kExitClean;
}

// `explain BUNDLE MEMBER`: how the member's balance follows from its ops. Without a root key
// (`given_root` null) it uses the one the bundle names, and warns that this proves nothing.
int run_explain(const std::string& bundle, const std::string& member,
                const outpost::crypto::PublicKey* given_root, outpost::audit::VerifyOptions options,
                bool json) {
  auto id = outpost::audit::find_member(bundle, member);
  if (!id.is_ok()) return print_status_error("explain", id.status());
  outpost::crypto::PublicKey root{};
  if (given_root != nullptr) {
    root = *given_root;
  } else {
    auto manifest =
        outpost::audit::read_whole_file(bundle + "/" + outpost::audit::bundle::kManifestFile,
                                        outpost::audit::bundle::kJsonFileBytesMax);
    Json m;
    try {
      if (manifest.is_ok()) m = Json::parse(manifest->begin(), manifest->end());
    } catch (const std::exception&) {
    }
    // Any manifest, any type: a key that is not a string is no key.
    const Json named = m.is_object() ? m.value("root_public_key", Json()) : Json();
    auto key = outpost::audit::parse_root_key(named.is_string() ? named.get<std::string>() : "");
    if (!key.is_ok()) return usage_error("pass --root KEY (the bundle names no usable root key)");
    root = *key;
    std::cerr << "outpost-audit: warning: no --root given; using the root key the bundle "
                 "itself names, which proves nothing about its origin\n";
  }
  options.root = root;
  options.trace_member = *id;
  auto report = outpost::audit::verify_bundle(bundle, options);
  if (!report.is_ok()) return print_status_error("cannot read the bundle", report.status());
  const std::string hex = outpost::sync::id_hex(*id);
  if (json) {
    Json lines = Json::array();
    for (const auto& t : report->trace) {
      lines.push_back({{"op", t.op},
                       {"origin_name", t.origin_name},
                       {"hlc", t.hlc.to_string()},
                       {"kind", t.kind},
                       {"account", t.account},
                       {"amount", t.amount},
                       {"delta", t.delta},
                       {"detail", t.detail},
                       {"points", t.points},
                       {"wallet", t.wallet},
                       {"rights_at_origin", t.rights_at_origin}});
    }
    std::cout << Json{{"member", hex},
                      {"ops", lines},
                      {"recomputed", report->traced_final},
                      {"exported", report->traced_exported},
                      {"findings", report->findings.size()}}
                     .dump()
              << "\n";
  } else {
    std::cout << outpost::audit::trace_text(*report, hex);
  }
  return kExitClean;
}

// The --root option of the commands that check signatures.
void add_root_option(CLI::App* c, std::string& root_text, bool required) {
  auto* o = c->add_option("--root", root_text,
                          "HQ root public key: 64 hex digits, or a file holding them "
                          "(take it from your own records, never from the bundle)");
  if (required) o->required();
}

// `consistency OLD NEW`: its options, into `cons` (and the shared --root into `root_text`).
CLI::App* add_consistency_command(CLI::App& app, ConsistencyArgs& cons, std::string& root_text) {
  auto* consistency = app.add_subcommand(
      "consistency", "check that NEW's signed heads extend OLD's (RFC 6962 consistency proofs)");
  consistency
      ->add_option("OLD", cons.old_file,
                   "the older signed head: a file of signed records (a bundle's "
                   "tree_heads.bin or checkpoints.bin, or one record of them)")
      ->required();
  consistency->add_option("NEW", cons.new_file, "the newer signed head, in the same form")
      ->required();
  add_root_option(consistency, root_text, true);
  consistency->add_option("--proof", cons.proof_file,
                          "consistency proof file (a saved --json result of this command)");
  consistency->add_option(
      "--bundle", cons.bundle,
      "compute the proofs from this bundle's ops instead (need not be trusted)");
  consistency->add_option("--origin", cons.origin_hex,
                          "compare this origin only (32 hex digits); picks its checkpoint from a "
                          "checkpoints file");
  consistency->add_flag("--json", cons.json,
                        "print the result as JSON (a consistency proof document)");
  return consistency;
}

}  // namespace

int main(int argc, char** argv) {
  if (!outpost::crypto::init().is_ok()) {
    std::cerr << "outpost-audit: error: libsodium failed to initialize\n";
    return kExitUsage;
  }
  CLI::App app{"outpost-audit: verify an Outpost audit bundle offline, with the chain's root "
               "public key alone"};
  app.require_subcommand(1);
  app.footer("Exit codes: 0 clean, 1 findings (or an invalid proof, or inconsistent heads), 2 "
             "usage error or unreadable input, 3 (verify) no findings but completeness not proven "
             "(--allow-incomplete accepts it). Bundle format and every check: "
             "docs/audit-bundle.md.");

  std::string bundle, root_text, member, op_ref, proof_file;
  bool json = false, no_progress = false, allow_incomplete = false;
  unsigned workers =
      std::max(1u, std::min(std::thread::hardware_concurrency(), outpost::audit::kWorkersMax));

  auto* verify = app.add_subcommand("verify", "check every signature, chain, checkpoint and "
                                              "balance of a bundle; report every finding");
  verify->add_option("BUNDLE", bundle, "bundle directory (outpost export-audit --out)")->required();
  add_root_option(verify, root_text, true);
  verify->add_flag("--json", json, "print the report as JSON on stdout");
  verify->add_option("--workers", workers, "signature-verification threads (default: cores)")
      ->check(CLI::Range(1u, outpost::audit::kWorkersMax));
  verify->add_flag("--no-progress", no_progress, "no progress output on stderr");
  verify->add_flag("--allow-incomplete", allow_incomplete,
                   "exit 0 (not 3) for a bundle without findings whose completeness is not "
                   "proven (no HQ tree head set, a date range, nodes enrolled after the newest "
                   "set); the report still says so");

  auto* explain = app.add_subcommand("explain", "show how a member's balance follows from its ops");
  explain->add_option("BUNDLE", bundle, "bundle directory")->required();
  explain->add_option("MEMBER", member, "member id (32 hex) or card number")->required();
  add_root_option(explain, root_text, false);
  explain->add_flag("--json", json, "print the trace as JSON");

  auto* prove = app.add_subcommand("prove", "print an inclusion proof (JSON) of one op against "
                                            "the newest checkpoint of its origin");
  prove->add_option("BUNDLE", bundle, "bundle directory")->required();
  prove->add_option("OP", op_ref, "the op as ORIGIN:SEQ")->required();

  auto* verify_proof = app.add_subcommand("verify-proof", "check an inclusion proof with the "
                                                          "root key alone");
  verify_proof->add_option("PROOF", proof_file, "proof file written by prove")->required();
  add_root_option(verify_proof, root_text, true);
  verify_proof->add_flag("--json", json, "print the result as JSON");
  std::uint64_t min_tree_head_version = 0;
  verify_proof->add_option("--min-tree-head-version", min_tree_head_version,
                           "refuse a proof against a tree head set older than this version (the "
                           "newest you know HQ signed)");

  ConsistencyArgs cons;
  CLI::App* consistency = add_consistency_command(app, cons, root_text);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitClean : kExitUsage;
  }

  if (*prove) return run_prove(bundle, op_ref);

  outpost::crypto::PublicKey root{};
  if (!root_text.empty()) {
    auto key = outpost::audit::parse_root_key(root_text);
    if (!key.is_ok()) return usage_error(key.status().message());
    root = *key;
  }

  if (*verify_proof) return run_verify_proof(proof_file, root, min_tree_head_version, json);
  if (*consistency) return run_consistency(cons, root);

  outpost::audit::VerifyOptions options;
  options.workers = workers;
  if (!no_progress) options.progress = stderr_progress();

  if (*explain)
    return run_explain(bundle, member, root_text.empty() ? nullptr : &root, options, json);

  options.root = root;
  options.allow_incomplete = allow_incomplete;
  auto report = outpost::audit::verify_bundle(bundle, options);
  if (!report.is_ok()) return print_status_error("cannot read the bundle", report.status());
  std::cout << (json ? outpost::audit::report_json(*report).dump(2) + "\n"
                     : outpost::audit::report_text(*report));
  return report->exit_code();
}
