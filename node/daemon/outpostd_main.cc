// outpostd: the Outpost node daemon. Usage: outpostd --config FILE [--check] (CLI11; --help
// lists the options). Exit codes: 0 clean stop, 2 bad command line, config or data dir, 3 cannot
// listen or other runtime failure.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "outpost/crypto/crypto.h"
#include "outpost/node/config.h"
#include "outpost/node/daemon.h"
#include "outpost/node/log.h"

namespace {
constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"outpostd: the Outpost store/HQ daemon (POS API, admin API, peer sync)"};
  app.footer(
      "Stops cleanly on SIGTERM or SIGINT. Exit codes: 0 clean stop, 2 bad config or data dir,\n"
      "3 runtime failure (cannot listen, I/O error).");
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "outpostd: error: " + std::string(e.what()) + "\n(see outpostd --help)\n";
  });
  std::string config_path;
  bool check_only = false;
  // Checked after parsing rather than marked required: an unknown option is then named first.
  app.add_option("--config", config_path, "TOML config, required (see docs/operations.md)");
  app.add_flag("--check", check_only, "validate the config and data dir, then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (config_path.empty()) {
    std::cerr << "outpostd: error: --config FILE is required\n(see outpostd --help)\n";
    return kExitUsage;
  }
  if (!outpost::crypto::init().is_ok()) {
    std::cerr << "outpostd: error: libsodium failed to initialize\n";
    return 3;
  }
  auto config = outpost::node::load_config(config_path);
  if (!config.is_ok()) {
    std::cerr << "outpostd: error: " << config.status().message() << "\n";
    return 2;
  }
  outpost::node::LogLevel level;
  if (outpost::node::parse_log_level(config->log_level, level)) outpost::node::set_log_level(level);
  outpost::sync::SystemEnv clock;
  auto daemon = outpost::node::Daemon::create(*config, clock);
  if (!daemon.is_ok()) {
    std::cerr << "outpostd: error: " << daemon.status().message() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << "outpostd: config and data dir OK\n";
    return 0;
  }
  outpost::Status st = (*daemon)->start();
  if (!st.is_ok()) {
    std::cerr << "outpostd: error: " << st.message() << "\n";
    return st.code() == outpost::Code::kInvalidArgument ? 2 : 3;
  }
  (*daemon)->run();
  return 0;
}
