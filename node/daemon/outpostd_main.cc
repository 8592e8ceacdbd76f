// outpostd: the Outpost node daemon. Usage: outpostd --config FILE. Exit codes: 0 clean stop,
// 2 bad config or data dir, 3 cannot listen or other runtime failure.
#include <cstring>
#include <iostream>
#include <string>

#include "outpost/crypto/crypto.h"
#include "outpost/node/config.h"
#include "outpost/node/daemon.h"
#include "outpost/node/log.h"

namespace {
void usage(std::ostream& out) {
  out << "outpostd: the Outpost store/HQ daemon (POS API, admin API, peer sync)\n\n"
         "Usage: outpostd --config FILE [--check]\n\n"
         "Options:\n"
         "  --config FILE  TOML config (see docs/operations.md)\n"
         "  --check        validate the config and data dir, then exit\n"
         "  --help         show this help\n\n"
         "Stops cleanly on SIGTERM or SIGINT. Exit codes: 0 clean stop, 2 bad config or data dir,\n"
         "3 runtime failure (cannot listen, I/O error).\n";
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    } else if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--check") {
      check_only = true;
    } else {
      std::cerr << "outpostd: error: unknown argument '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << "outpostd: error: --config FILE is required\n";
    return 2;
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
  outpost::sync::SystemClock clock;
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
