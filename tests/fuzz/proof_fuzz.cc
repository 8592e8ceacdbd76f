// libFuzzer target for inclusion proof documents (audit/proof.h: verify_inclusion_proof), the
// JSON an auditor receives and checks with the root key alone (`outpost-audit verify-proof`).
// The input is the 32-byte root public key, then the JSON text. A document that is not JSON is
// skipped; any JSON value must give an error or a result, never a crash. A result is consistent:
// valid with every check listed and no failure, or invalid with the failure named; and a valid
// proof stays valid when its hex fields are written in upper case (the only freedom the format
// has) while any change to the op's signed bytes makes it invalid.
// Any crash, sanitizer report or broken invariant (FUZZ_CHECK) is a finding.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_world.h"
#include "outpost/audit/proof.h"

namespace {

using namespace outpost;
using audit::Json;

void check_result(const Result<audit::ProofResult>& r) {
  if (!r.is_ok()) {
    FUZZ_CHECK(!r.status().message().empty());
    return;
  }
  if (r->valid) {
    FUZZ_CHECK(r->failure.empty() && r->checks.size() >= 4);
  } else {
    FUZZ_CHECK(!r->failure.empty());
  }
}

// The op's signed bytes with their last hex digit changed (still hex).
Json with_other_op_bytes(Json proof) {
  std::string hex = proof["op"]["signed_bytes"].get<std::string>();
  hex.back() = hex.back() == '0' ? '1' : '0';
  proof["op"]["signed_bytes"] = hex;
  return proof;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  static const bool ready = crypto::init().is_ok();
  FUZZ_CHECK(ready);
  if (size < 32) return 0;
  crypto::PublicKey root{};
  std::copy_n(bytes, 32, root.begin());
  Json proof;
  try {
    proof = Json::parse(bytes + 32, bytes + size);
  } catch (const std::exception&) {
    return 0;
  }
  const auto r = audit::verify_inclusion_proof(proof, root);
  check_result(r);
  if (!r.is_ok() || !r->valid) return 0;
  FUZZ_CHECK(!audit::verify_inclusion_proof(with_other_op_bytes(proof), root)->valid);
  Json upper = proof;
  for (const char* part : {"op", "checkpoint", "roster"}) {
    for (auto& [key, value] : upper[part].items()) {
      if (!value.is_string()) continue;
      std::string s = value.get<std::string>();
      std::transform(s.begin(), s.end(), s.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      value = s;
    }
  }
  const auto u = audit::verify_inclusion_proof(upper, root);
  FUZZ_CHECK(u.is_ok() && u->valid);
  return 0;
}
