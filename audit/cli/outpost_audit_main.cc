// `outpost-audit`: verifies an Outpost audit bundle offline with the chain's root public key
// alone (docs/audit-bundle.md). Exit codes: 0 clean (or the command succeeded), 1 findings (or an
// invalid proof, or nothing to prove), 2 usage error or a bundle that cannot be read at all.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "outpost/audit/proof.h"
#include "outpost/audit/verify.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/audit_bundle.h"

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

}  // namespace

int main(int argc, char** argv) {
  if (!outpost::crypto::init().is_ok()) {
    std::cerr << "outpost-audit: error: libsodium failed to initialize\n";
    return kExitUsage;
  }
  CLI::App app{"outpost-audit: verify an Outpost audit bundle offline, with the chain's root "
               "public key alone"};
  app.require_subcommand(1);
  app.footer("Exit codes: 0 clean, 1 findings (or an invalid proof), 2 usage error or unreadable "
             "bundle. Bundle format and every check: docs/audit-bundle.md.");

  std::string bundle, root_text, member, op_ref, proof_file;
  bool json = false, no_progress = false;
  unsigned workers = std::max(1u, std::min(std::thread::hardware_concurrency(),
                                           outpost::audit::kWorkersMax));
  auto add_root = [&](CLI::App* c, bool required) {
    auto* o = c->add_option("--root", root_text,
                            "HQ root public key: 64 hex digits, or a file holding them "
                            "(take it from your own records, never from the bundle)");
    if (required) o->required();
  };

  auto* verify = app.add_subcommand("verify", "check every signature, chain, checkpoint and "
                                              "balance of a bundle; report every finding");
  verify->add_option("BUNDLE", bundle, "bundle directory (outpost export-audit --out)")->required();
  add_root(verify, true);
  verify->add_flag("--json", json, "print the report as JSON on stdout");
  verify->add_option("--workers", workers, "signature-verification threads (default: cores)")
      ->check(CLI::Range(1u, outpost::audit::kWorkersMax));
  verify->add_flag("--no-progress", no_progress, "no progress output on stderr");

  auto* explain = app.add_subcommand("explain", "show how a member's balance follows from its ops");
  explain->add_option("BUNDLE", bundle, "bundle directory")->required();
  explain->add_option("MEMBER", member, "member id (32 hex) or card number")->required();
  add_root(explain, false);
  explain->add_flag("--json", json, "print the trace as JSON");

  auto* prove = app.add_subcommand("prove", "print an inclusion proof (JSON) of one op against "
                                            "the newest checkpoint of its origin");
  prove->add_option("BUNDLE", bundle, "bundle directory")->required();
  prove->add_option("OP", op_ref, "the op as ORIGIN:SEQ")->required();

  auto* verify_proof = app.add_subcommand("verify-proof", "check an inclusion proof with the "
                                                          "root key alone");
  verify_proof->add_option("PROOF", proof_file, "proof file written by prove")->required();
  add_root(verify_proof, true);
  verify_proof->add_flag("--json", json, "print the result as JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitClean : kExitUsage;
  }

  if (*prove) {
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
      return code == outpost::Code::kNotFound || code == outpost::Code::kCorruption
                 ? kExitFindings
                 : kExitUsage;
    }
    std::cout << proof->dump(2) << "\n";
    return kExitClean;
  }

  outpost::crypto::PublicKey root{};
  if (!root_text.empty()) {
    auto key = outpost::audit::parse_root_key(root_text);
    if (!key.is_ok()) return usage_error(key.status().message());
    root = *key;
  }

  if (*verify_proof) {
    auto data = outpost::audit::read_whole_file(proof_file, outpost::sync::bundle::kJsonFileBytesMax);
    if (!data.is_ok()) return print_status_error("cannot read the proof", data.status());
    Json doc;
    try {
      doc = Json::parse(data->begin(), data->end());
    } catch (const std::exception& e) {
      return usage_error(proof_file + " is not JSON: " + e.what());
    }
    auto r = outpost::audit::verify_inclusion_proof(doc, root);
    if (!r.is_ok()) return print_status_error("not a proof", r.status());
    if (json) {
      std::cout << Json{{"valid", r->valid}, {"checks", r->checks}, {"failure", r->failure}}.dump()
                << "\n";
    } else {
      for (const auto& c : r->checks) std::cout << "ok    " << c << "\n";
      if (!r->valid) std::cout << "FAIL  " << r->failure << "\n";
      std::cout << (r->valid ? "PROOF VALID\n" : "PROOF INVALID\n");
    }
    return r->valid ? kExitClean : kExitFindings;
  }

  outpost::audit::VerifyOptions options;
  options.workers = workers;
  if (!no_progress) options.progress = stderr_progress();

  if (*explain) {
    auto id = outpost::audit::find_member(bundle, member);
    if (!id.is_ok()) return print_status_error("explain", id.status());
    if (root_text.empty()) {
      auto manifest = outpost::audit::read_whole_file(
          bundle + "/" + outpost::sync::bundle::kManifestFile,
          outpost::sync::bundle::kJsonFileBytesMax);
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
        lines.push_back({{"op", t.op},          {"origin_name", t.origin_name},
                         {"hlc", t.hlc.to_string()}, {"kind", t.kind},
                         {"account", t.account}, {"amount", t.amount},
                         {"delta", t.delta},     {"detail", t.detail},
                         {"points", t.points},   {"wallet", t.wallet},
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

  options.root = root;
  auto report = outpost::audit::verify_bundle(bundle, options);
  if (!report.is_ok()) return print_status_error("cannot read the bundle", report.status());
  std::cout << (json ? outpost::audit::report_json(*report).dump(2) + "\n"
                     : outpost::audit::report_text(*report));
  return report->clean() ? kExitClean : kExitFindings;
}
