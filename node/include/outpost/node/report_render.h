// Rendering the member reports (reports.h) for people and programs: a text table, CSV and JSON.
// The CLI (`outpost report`) and the admin API (`GET /admin/v1/reports/NAME`) both render through
// these, so the two say the same thing in the same words (docs/reports.md).
#pragma once

#include <string>
#include <vector>

#include "outpost/node/ledger.h"  // Json
#include "outpost/node/reports.h"

namespace outpost::node::reports {

// One report's summary as rows and columns: what CSV prints and text aligns.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

// A report with its scope and data source, ready to render.
struct Rendered {
  std::string title;               // for text: first line
  std::vector<std::string> notes;  // for text: lines under the title (period, thresholds, data)
  Table table;
  Json json;
  std::string svg;  // quadrants with ReportRequest::svg: the chart
};

Rendered render(const ReportInput& in, const QuadrantReport& r);
Rendered render(const ReportInput& in, const RfmReport& r);
Rendered render(const ReportInput& in, const LifecycleReport& r);
Rendered render(const ReportInput& in, const LiabilityReport& r);
Rendered render(const ReportInput& in, const KpiReport& r);

std::string to_text(const Rendered& r);
// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
std::string to_csv(const Table& t);

// A report asked for by name with its options as text, as the CLI and the admin API take them.
struct ReportRequest {
  std::string name;         // one of kReportNames
  std::string from, to;     // YYYY-MM; empty: the year ending with the current month
  std::string store;        // node name; empty: all
  std::string min_visits;   // quadrants: frequent from this many visits (with min_spend)
  std::string min_spend;    // quadrants: high spend from this many minor units
  std::string point_value;  // liability: N or N/D minor units per point
  std::size_t list_limit = 20;
  bool svg = false;  // quadrants: also draw the chart (Rendered::svg)
};

// Checks what can be checked without the data: the name, the months and period, thresholds,
// point value and list length (kInvalidArgument naming the problem).
Status check_report_request(const ReportRequest& req, std::uint32_t now_month);

// Checks `req` against `in` (an unknown report, a bad month or period, a store the roster does
// not name, half a threshold pair: kInvalidArgument, nothing computed) and runs it.
Result<Rendered> run_report(const ReportInput& in, const ReportRequest& req,
                            std::uint32_t now_month);

// An SVG scatter chart of the active members of q's scope (visits x spend) with the quadrant
// thresholds of `q`, which opens in any browser. Beyond kSvgPointsMax members it plots an even
// sample (every k-th by member id) and says so in its title.
inline constexpr std::size_t kSvgPointsMax = 20000;
std::string quadrant_svg(const ReportInput& in, const QuadrantReport& q);

// 12345 -> "123.45" (minor units of a two-decimal currency), with thousands separators.
std::string money(std::uint64_t minor);

}  // namespace outpost::node::reports
