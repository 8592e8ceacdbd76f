#include "outpost/node/log.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace outpost::node {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;
std::string g_node;
sync::SystemEnv g_system_env;
std::atomic<sync::Env*> g_env{&g_system_env};

std::string quote(const std::string& v) {
  bool plain = !v.empty() && v.find_first_of(" \"=\n\t") == std::string::npos;
  if (plain) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}
}  // namespace

bool parse_log_level(const std::string& text, LogLevel& out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (text == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void set_log_env(sync::Env& env) { g_env.store(&env); }

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }

void set_log_node(const std::string& node_name) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_node = node_name;
}

void log(LogLevel level, const std::string& msg, std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_level.load()) return;
  const std::uint64_t ms = g_env.load()->now_ms();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  std::string line = std::string("ts=") + ts + " level=" + level_name(level);
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_node.empty()) line += " node=" + quote(g_node);
  line += " msg=" + quote(msg);
  for (const auto& [k, v] : fields) line += std::string(" ") + k + "=" + quote(v);
  line += "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace outpost::node
