// `outpost report NAME`: HQ's member reports (docs/reports.md), in its own file so that the CLI's
// main only adds and dispatches it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "outpost/node/report_render.h"
#include "outpost/sync/env.h"

namespace outpost::cli {

struct ReportArgs {
  node::reports::ReportRequest request;
  bool csv = false;
  std::string svg_file;
};

// Adds `report` to `app`, filling `args`.
CLI::App* add_report_command(CLI::App& app, ReportArgs& args);

// Runs it over the data dir's replica; prints text, CSV or (json) JSON; returns the exit code
// (0, 2 bad input, 3 I/O failure).
int run_report_command(const std::string& data_dir, bool json, const ReportArgs& args,
                       sync::Env& env);

}  // namespace outpost::cli
