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
};

Rendered render(const ReportInput& in, const QuadrantReport& r);
Rendered render(const ReportInput& in, const RfmReport& r);
Rendered render(const ReportInput& in, const LifecycleReport& r);
Rendered render(const ReportInput& in, const LiabilityReport& r);
Rendered render(const ReportInput& in, const KpiReport& r);

std::string to_text(const Rendered& r);
// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
std::string to_csv(const Table& t);

// 12345 -> "123.45" (minor units of a two-decimal currency), with thousands separators.
std::string money(std::uint64_t minor);

}  // namespace outpost::node::reports
