// libFuzzer target for the audit bundle reader (audit/: verify_bundle, find_member,
// prove_inclusion, verify_inclusion_proof): an auditor runs it on a directory someone else wrote.
// Each input is an archive of bundle files (bundle_archive.h) that is unpacked into a scratch
// directory, which is then
//   - verified twice, pipelined and stage by stage: both reports are the same, and a bundle the
//     verifier cannot read at all fails with a reason instead of a report;
//   - rendered as JSON and as text, and explained for the member the archive names;
//   - asked for an inclusion proof of the op the archive names: a proof drawn from a bundle
//     that verified clean verifies under the same root key;
//   - its manifest.json is also checked as an inclusion proof document (it never is one unless
//     the fuzzer builds one: verify_inclusion_proof must then not crash either).
// Any crash, sanitizer report or broken invariant (FUZZ_CHECK) is a finding.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "bundle_archive.h"
#include "fuzz_world.h"
#include "outpost/audit/proof.h"
#include "outpost/audit/verify.h"

namespace {

using namespace outpost;
namespace fs = std::filesystem;
using fuzz::ByteView;

// The scratch directory of this process, emptied before each input and removed at exit.
const std::string& scratch() {
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/outpost-bundle-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch(), ec);
    });
    return new std::string(tmpl);
  }();
  return *dir;
}

struct Unpacked {
  std::string dir;
  crypto::PublicKey root{};
  std::string member = "40000001";
  std::string prove;
  std::string manifest;
};

Unpacked unpack(const fuzz::Archive& archive) {
  Unpacked u;
  u.dir = scratch() + "/bundle";
  std::error_code ec;
  fs::remove_all(u.dir, ec);
  fs::create_directories(u.dir, ec);
  u.root = archive.root;
  for (const auto& e : archive.entries) {
    const std::string text(e.content.begin(), e.content.end());
    if (e.name == "@member") {
      u.member = text;
      continue;
    }
    if (e.name == "@prove") {
      u.prove = text;
      continue;
    }
    if (e.name == "manifest.json") u.manifest = text;
    const fs::path path = fs::path(u.dir) / e.name;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  return u;
}

audit::Json verify(const Unpacked& u, bool pipeline, bool* clean) {
  audit::VerifyOptions opt;
  opt.root = u.root;
  opt.workers = 1;
  opt.pipeline = pipeline;
  auto member = audit::find_member(u.dir, u.member);
  if (member.is_ok()) opt.trace_member = *member;
  auto report = audit::verify_bundle(u.dir, opt);
  if (!report.is_ok()) {
    FUZZ_CHECK(!report.status().message().empty());
    return audit::Json{{"error", report.status().to_string()}};
  }
  for (const auto& f : report->findings) FUZZ_CHECK(!f.kind.empty() && !f.reason.empty());
  *clean = report->clean();
  FUZZ_CHECK(!audit::report_text(*report).empty());
  if (member.is_ok()) (void)audit::trace_text(*report, sync::id_hex(*member));
  return audit::report_json(*report);
}

void prove(const Unpacked& u, bool clean) {
  sync::NodeId origin{};
  std::uint64_t seq = 0;
  if (!sync::parse_op_ref(u.prove, origin, seq)) return;
  auto proof = audit::prove_inclusion(u.dir, origin, seq);
  if (!proof.is_ok()) return;
  auto checked = audit::verify_inclusion_proof(*proof, u.root);
  FUZZ_CHECK(checked.is_ok());
  if (clean) FUZZ_CHECK(checked->valid);
}

void check_as_proof(const Unpacked& u) {
  audit::Json doc;
  try {
    doc = audit::Json::parse(u.manifest);
  } catch (const std::exception&) {
    return;
  }
  auto checked = audit::verify_inclusion_proof(doc, u.root);
  if (checked.is_ok() && !checked->valid) FUZZ_CHECK(!checked->failure.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  static const bool ready = crypto::init().is_ok();
  FUZZ_CHECK(ready);
  auto archive = fuzz::unpack_archive(ByteView(bytes, size));
  if (!archive) return 0;
  const Unpacked u = unpack(*archive);
  bool clean = false, clean_staged = false;
  const audit::Json pipelined = verify(u, true, &clean);
  const audit::Json staged = verify(u, false, &clean_staged);
  FUZZ_CHECK(pipelined == staged);
  prove(u, clean);
  check_as_proof(u);
  return 0;
}
