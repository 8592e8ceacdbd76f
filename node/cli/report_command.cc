#include "report_command.h"

#include <fstream>
#include <iostream>

#include "outpost/node/ledger.h"
#include "outpost/node/reports.h"
#include "outpost/sync/hlc.h"

namespace outpost::cli {

namespace {

int fail(bool json, const Status& st) {
  if (json)
    std::cout << node::Json{{"error", code_name(st.code())}, {"message", st.message()}}.dump()
              << "\n";
  std::cerr << "outpost: error: " << st.message() << "\n";
  const Code c = st.code();
  return c == Code::kIoError || c == Code::kInternal || c == Code::kUnavailable ||
                 c == Code::kCorruption
             ? 3
             : 2;
}

}  // namespace

CLI::App* add_report_command(CLI::App& app, ReportArgs& a) {
  std::string names;
  for (const char* n : node::reports::kReportNames)
    names += std::string(names.empty() ? "" : ", ") + n;
  auto* c = app.add_subcommand(
      "report", "member reports from this node's replica (run at HQ for the whole chain): " +
                    names + " (docs/reports.md)");
  node::reports::ReportRequest& r = a.request;
  c->add_option("NAME", r.name, "the report: " + names)->required();
  c->add_option("--from", r.from,
                "first month of the period, YYYY-MM (default: 11 months before --to)");
  c->add_option("--to", r.to,
                "last month of the period and the 'as of' month, YYYY-MM (default: this month)");
  c->add_option("--store", r.store, "count only visits and spend at this node (a roster name)");
  c->add_option("--min-visits", r.min_visits,
                "quadrants: frequent from this many visits (with --min-spend)");
  c->add_option("--min-spend", r.min_spend,
                "quadrants: high spend from this amount in minor units (with --min-visits)");
  c->add_option("--point-value", r.point_value, "liability: a point's worth, N or N/D minor units");
  c->add_option("--limit", r.list_limit, "members listed per group (default 20, at most 10000)");
  c->add_flag("--csv", a.csv, "print the summary table as CSV");
  c->add_option("--svg", a.svg_file, "quadrants: also write a scatter chart to this SVG file");
  return c;
}

int run_report_command(const std::string& data_dir, bool json, const ReportArgs& a,
                       sync::Env& env) {
  if (data_dir.empty())
    return fail(json, Status::invalid("no data dir: pass --data DIR or set OUTPOST_DATA"));
  if (!a.svg_file.empty() && a.request.name != "quadrants") {
    return fail(json, Status::invalid("--svg draws the quadrants report only"));
  }
  if (json && a.csv) return fail(json, Status::invalid("give --json or --csv, not both"));
  auto ledger = node::Ledger::open(data_dir, env);
  if (!ledger.is_ok()) return fail(json, ledger.status());
  auto roster = (*ledger)->roster();
  auto input =
      node::reports::load_report_input((*ledger)->store(), roster.get(), (*ledger)->rules());
  if (!input.is_ok()) return fail(json, input.status());
  // A node not yet in a roster (a lone store) still knows its own name.
  input->node_names.emplace((*ledger)->node_id(), (*ledger)->node_name());
  node::reports::ReportRequest request = a.request;
  request.svg = !a.svg_file.empty();
  auto rendered = node::reports::run_report(*input, request, sync::month_index(env.now_ms()));
  if (!rendered.is_ok()) return fail(json, rendered.status());
  if (!a.svg_file.empty()) {
    std::ofstream out(a.svg_file, std::ios::trunc);
    out << rendered->svg;
    if (!out.flush()) return fail(json, Status::io_error("cannot write " + a.svg_file));
  }
  if (json) {
    std::cout << rendered->json.dump() << "\n";
  } else if (a.csv) {
    std::cout << node::reports::to_csv(rendered->table);
  } else {
    std::cout << node::reports::to_text(*rendered);
  }
  return 0;
}

}  // namespace outpost::cli
