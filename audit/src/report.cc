// Renderings of a verification report: JSON (docs/audit-bundle.md, "Report") and text.
#include <ctime>
#include <sstream>

#include "outpost/audit/verify.h"

namespace outpost::audit {

namespace {

std::string utc(std::uint64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03u", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(ms % 1000));
  return buf;
}

std::uint64_t count(const Json& counts, const char* key) {
  return counts.contains(key) && counts[key].is_number_unsigned() ? counts[key].get<std::uint64_t>()
                                                                  : 0;
}

std::string where(const Finding& f) {
  std::string w;
  if (!f.origin.empty()) w = f.origin + (f.seq ? ":" + std::to_string(f.seq) : "");
  if (!f.member.empty()) w += std::string(w.empty() ? "" : " ") + "member " + f.member;
  if (!f.file.empty()) w += std::string(w.empty() ? "" : " ") + "[" + f.file + "]";
  return w;
}

}  // namespace

Json report_json(const Report& r) {
  Json checks = Json::array();
  for (const auto& c : r.checks) {
    checks.push_back({{"name", c.name}, {"status", c.status}, {"detail", c.detail}});
  }
  Json findings = Json::array();
  for (const auto& f : r.findings) {
    Json j{{"kind", f.kind}, {"reason", f.reason}};
    j["origin"] = f.origin.empty() ? Json() : Json(f.origin);
    j["seq"] = f.seq ? Json(f.seq) : Json();
    j["member"] = f.member.empty() ? Json() : Json(f.member);
    j["file"] = f.file.empty() ? Json() : Json(f.file);
    findings.push_back(std::move(j));
  }
  return Json{{"format", "outpost-audit-report"},
              {"version", 1},
              {"bundle", r.bundle},
              {"clean", r.clean()},
              {"result", r.result()},
              {"completeness",
               {{"proven", r.completeness_proven},
                {"reason", r.completeness_proven ? Json() : Json(r.completeness_reason)},
                {"allow_incomplete", r.allow_incomplete}}},
              {"partial", r.partial},
              {"counts", r.counts},
              {"tree_head", r.tree_head},
              {"checks", checks},
              {"findings", findings},
              {"notes", r.notes}};
}

std::string report_text(const Report& r) {
  std::ostringstream out;
  out << "outpost-audit verify " << r.bundle << (r.partial ? " (partial bundle: date range)" : "")
      << "\n\nchecks:\n";
  for (const auto& c : r.checks) {
    std::string name = c.name;
    if (name.size() < 56) name += " " + std::string(56 - name.size(), '.');
    out << "  " << name << " " << c.status << (c.detail.empty() ? "" : " (" + c.detail + ")")
        << "\n";
  }
  const Json& k = r.counts;
  out << "\ncounts: " << count(k, "ops") << " ops of " << count(k, "origins") << " origins ("
      << count(k, "ops_signature_ok") << " signatures ok, " << count(k, "ops_replayed")
      << " replayed), " << count(k, "rosters_trusted") << "/" << count(k, "rosters")
      << " roster versions trusted, " << count(k, "checkpoints_signature_ok") << "/"
      << count(k, "checkpoints") << " checkpoints signed (" << count(k, "checkpoints_matched")
      << " matched the ops), " << count(k, "members_compared") << " members' balances compared\n";
  if (r.tree_head.is_object()) {
    out << "completeness: HQ tree head set v" << count(r.tree_head, "version") << " (signed "
        << utc(count(r.tree_head, "issued_ms")) << " UTC, roster v"
        << count(r.tree_head, "roster_version") << ") vouches for "
        << count(r.tree_head, "origins") << " origins and " << count(r.tree_head, "ops")
        << " ops; ops signed after it are not covered\n";
  }
  if (!r.completeness_proven) {
    out << "completeness: NOT PROVEN: " << r.completeness_reason
        << (r.allow_incomplete ? " (accepted with --allow-incomplete)" : "") << "\n";
  }
  if (!r.findings.empty()) {
    out << "\nFINDINGS (" << r.findings.size() << "):\n";
    for (const auto& f : r.findings) {
      out << "  " << f.kind << "  " << where(f) << "\n      " << f.reason << "\n";
    }
  }
  if (!r.notes.empty()) {
    out << "\nnotes:\n";
    for (const auto& n : r.notes) out << "  - " << n << "\n";
  }
  const std::string result = r.result();
  out << "\nRESULT: ";
  if (result == "findings") {
    out << "FAILED: " << r.findings.size() << " finding(s)";
  } else if (result == "incomplete") {
    out << "INCOMPLETE: no findings, but completeness is NOT PROVEN (pass --allow-incomplete to "
           "accept such a bundle)";
  } else if (result == "incomplete_allowed") {
    out << "CLEAN: no findings; completeness NOT PROVEN, accepted with --allow-incomplete";
  } else {
    out << "CLEAN: no findings";
  }
  out << "\n";
  return out.str();
}

std::string trace_text(const Report& r, const std::string& member_hex) {
  std::ostringstream out;
  out << "member " << member_hex;
  if (r.traced_final.is_object() && !r.traced_final.value("card", "").empty()) {
    out << " (card " << r.traced_final["card"].get<std::string>() << ")";
  }
  out << ": " << r.trace.size() << " op(s), in replay order (HLC, then origin)\n\n";
  for (const auto& t : r.trace) {
    std::string name = t.origin_name.empty() ? "" : " (" + t.origin_name + ")";
    out << "  " << utc(t.hlc.wall_ms) << "  " << t.op << name << "\n      " << t.kind;
    if (!t.account.empty()) {
      out << " " << t.account << " " << t.amount;
      if (t.delta != 0) out << "  => " << (t.delta > 0 ? "+" : "") << t.delta << " " << t.account;
    }
    if (!t.detail.empty()) out << "  [" << t.detail << "]";
    out << "\n      after: points " << t.points << ", wallet " << t.wallet;
    if (!t.account.empty()) out << "; " << t.account << " rights at origin " << t.rights_at_origin;
    out << "\n";
  }
  auto balances = [&](const Json& j) {
    if (!j.is_object()) return std::string("(none)");
    std::string s;
    for (const char* acct : {"points", "wallet"}) {
      s += std::string(s.empty() ? "" : "; ") + acct + " " + j[acct]["value"].dump() +
           " (rights by node " + j[acct]["rights"].dump() + ")";
    }
    return s;
  };
  out << "\nrecomputed from the ops: " << balances(r.traced_final)
      << "\nexported balances.json:  " << balances(r.traced_exported) << "\n";
  if (r.traced_final.is_object() && r.traced_exported.is_object()) {
    const bool same = r.traced_final["points"] == r.traced_exported["points"] &&
                      r.traced_final["wallet"] == r.traced_exported["wallet"];
    out << (same ? "the exported balance follows from the ops\n"
                 : "MISMATCH: the exported balance does not follow from the ops\n");
  }
  if (!r.clean()) {
    out << "\nwarning: the bundle has " << r.findings.size()
        << " finding(s); run `outpost-audit verify` for the full report\n";
  }
  return out.str();
}

}  // namespace outpost::audit
