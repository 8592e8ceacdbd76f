// Bugs found while fuzzing the audit reader (docs/testing.md, "Fuzzing") that live in the
// `outpost-audit` command itself, so they are tested through the real binary.
#include <gtest/gtest.h>

#include <string>

#include "../unit/test_util.h"
#include "test_process.h"

namespace outpost {
namespace {

// `outpost-audit explain` without --root takes the root key the bundle's manifest names; it read
// it with Json::value(), which throws for a manifest that is not an object or names the key with
// another type, so the command died (SIGABRT) instead of asking for --root.
TEST(FuzzRegressionCli, ExplainWithAManifestRootKeyOfTheWrongTypeAsksForRootInsteadOfDying) {
  test::TempDir tmp("outpost-fuzz-regression");
  const std::string member = "22222222222222222222222222222222";
  for (const char* manifest : {R"({"root_public_key": 7})", "[1, 2]"}) {
    test::write_file(tmp.file("manifest.json"), manifest);
    auto r = test::run_command(OUTPOST_AUDIT_CLI, {"explain", tmp.path(), member});
    EXPECT_TRUE(r.exit.exited_with(2)) << manifest << ": " << r.describe();
  }
}

}  // namespace
}  // namespace outpost
