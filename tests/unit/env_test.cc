// The node's environment (sync/env.h): the manual one is deterministic, and the node's sources
// read time and randomness only through an Env (docs/style.md, "Time, randomness and I/O").
#include "outpost/sync/env.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace outpost {
namespace {

namespace fs = std::filesystem;

TEST(Env, ManualEnvMovesOnlyWhenToldAndItsRandomnessFollowsTheSeed) {
  sync::ManualEnv a(1'000, 42), b(1'000, 42), c(1'000, 43);
  EXPECT_EQ(a.now_ms(), 1'000u);
  EXPECT_EQ(a.steady_ms(), 0u);
  a.advance(250);
  EXPECT_EQ(a.now_ms(), 1'250u);
  EXPECT_EQ(a.steady_ms(), 250u);
  a.set(500);  // the wall clock goes back; the monotonic one does not
  EXPECT_EQ(a.now_ms(), 500u);
  EXPECT_EQ(a.steady_ms(), 250u);
  bool differs = false;
  for (int i = 0; i < 8; ++i) {
    const std::uint64_t x = a.random_u64();
    EXPECT_EQ(x, b.random_u64());
    differs = differs || x != c.random_u64();
  }
  EXPECT_TRUE(differs);
}

TEST(Env, SystemEnvMonotonicClockNeverGoesBack) {
  sync::SystemEnv env;
  std::uint64_t last = env.steady_ms();
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t now = env.steady_ms();
    EXPECT_GE(now, last);
    last = now;
  }
  EXPECT_GT(env.now_ms(), 1'600'000'000'000u);  // after 2020: it is the Unix epoch in ms
}

// Every source under node/ reads clocks and randomness through an Env; the one implementation
// that reads the system's is sync::SystemEnv (sync/src/env.cc).
TEST(Env, NodeSourcesNeverReadTheSystemClocksOrRandomDevice) {
  const std::vector<std::string> forbidden = {"steady_clock", "system_clock",
                                              "high_resolution_clock", "random_device"};
  const fs::path root = fs::path(OUTPOST_SOURCE_DIR) / "node";
  ASSERT_TRUE(fs::is_directory(root)) << root;
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const std::string ext = entry.path().extension().string();
    if (!entry.is_regular_file() || (ext != ".cc" && ext != ".h")) continue;
    ++files;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    for (const auto& name : forbidden) {
      EXPECT_EQ(text.str().find(name), std::string::npos)
          << entry.path().lexically_relative(OUTPOST_SOURCE_DIR) << " names " << name
          << ": take the time or randomness from its sync::Env instead";
    }
  }
  EXPECT_GT(files, 10u);  // the walk found the sources
}

}  // namespace
}  // namespace outpost
