// Structured log lines on stderr: "ts=2026-11-24T06:50:01.123Z level=info node=store-1 msg=...
// key=value ...". Thread-safe (one write per line under a mutex).
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "outpost/sync/env.h"

namespace outpost::node {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool parse_log_level(const std::string& text, LogLevel& out);
void set_log_level(LogLevel level);
void set_log_node(const std::string& node_name);
// Makes log lines take their timestamp from `env` (the system's until this is called). `env` must
// outlive every later log call.
void set_log_env(sync::Env& env);

using LogField = std::pair<const char*, std::string>;
void log(LogLevel level, const std::string& msg, std::initializer_list<LogField> fields = {});

}  // namespace outpost::node
