// Running a report named by text (the CLI's flags, the admin API's query): every option is checked
// before anything is computed, so a bad request gets one clear error (docs/reports.md).
#include <algorithm>

#include "outpost/node/report_render.h"
#include "outpost/sync/hlc.h"

namespace outpost::node::reports {

namespace {

Result<std::uint64_t> parse_count(const std::string& text, const char* what) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::invalid(std::string(what) + " must be a whole number, got '" + text + "'");
  }
  return static_cast<std::uint64_t>(std::stoull(text));
}

Result<std::optional<sync::NodeId>> store_of(const ReportInput& in, const std::string& name) {
  if (name.empty()) return std::optional<sync::NodeId>();
  for (const auto& [id, n] : in.node_names) {
    if (n == name) return std::optional<sync::NodeId>(id);
  }
  std::vector<std::string> names;
  for (const auto& [id, n] : in.node_names) names.push_back(n);
  std::sort(names.begin(), names.end());
  std::string known;
  for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  return Status::invalid("no node named '" + name + "' in the roster (nodes: " + known + ")");
}

}  // namespace

Status check_report_request(const ReportRequest& req, std::uint32_t now_month) {
  if (std::find_if(kReportNames.begin(), kReportNames.end(),
                   [&](const char* n) { return req.name == n; }) == kReportNames.end()) {
    std::string names;
    for (const char* n : kReportNames) names += std::string(names.empty() ? "" : ", ") + n;
    return Status::invalid("unknown report '" + req.name + "' (reports: " + names + ")");
  }
  if (req.list_limit > 10'000) return Status::invalid("a member list holds at most 10000 members");
  OUTPOST_RETURN_IF_ERROR(make_scope(req.from, req.to, now_month).status());
  if (req.min_visits.empty() != req.min_spend.empty()) {
    return Status::invalid("give both thresholds (visits and spend) or neither (the medians)");
  }
  if (!req.min_visits.empty()) {
    OUTPOST_RETURN_IF_ERROR(parse_count(req.min_visits, "the visits threshold").status());
    OUTPOST_RETURN_IF_ERROR(parse_count(req.min_spend, "the spend threshold").status());
  }
  if (!req.point_value.empty()) {
    OUTPOST_RETURN_IF_ERROR(parse_point_value(req.point_value).status());
  }
  return Status::ok();
}

Result<Rendered> run_report(const ReportInput& in, const ReportRequest& req,
                            std::uint32_t now_month) {
  OUTPOST_RETURN_IF_ERROR(check_report_request(req, now_month));
  OUTPOST_ASSIGN_OR_RETURN(Scope scope, make_scope(req.from, req.to, now_month));
  OUTPOST_ASSIGN_OR_RETURN(scope.store, store_of(in, req.store));
  if (req.name == "quadrants") {
    std::optional<Thresholds> given;
    if (!req.min_visits.empty()) {
      Thresholds t;
      OUTPOST_ASSIGN_OR_RETURN(t.visits, parse_count(req.min_visits, "the visits threshold"));
      OUTPOST_ASSIGN_OR_RETURN(t.spend_minor, parse_count(req.min_spend, "the spend threshold"));
      given = t;
    }
    const QuadrantReport q = quadrants(in, scope, given, req.list_limit);
    Rendered r = render(in, q);
    if (req.svg) r.svg = quadrant_svg(in, q);
    return r;
  }
  if (req.name == "rfm") return render(in, rfm(in, scope, req.list_limit));
  if (req.name == "lifecycle")
    return render(in, lifecycle(in, scope, LifecycleRules{}, req.list_limit));
  if (req.name == "liability") {
    std::optional<PointValue> value;
    if (!req.point_value.empty()) {
      OUTPOST_ASSIGN_OR_RETURN(value, parse_point_value(req.point_value));
    }
    return render(in, liability(in, scope.store, value));
  }
  return render(in, kpis(in, scope));
}

std::string quadrant_svg(const ReportInput& in, const QuadrantReport& q) {
  constexpr int kW = 640, kH = 480, kPad = 60;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> points;  // visits, spend
  std::uint64_t max_v = q.thresholds.visits, max_s = q.thresholds.spend_minor;
  const std::uint64_t stride = q.active_members / kSvgPointsMax + 1;
  std::uint64_t seen = 0;
  for (const MemberFacts& m : in.members) {
    const Activity a = activity_of(m.state, q.scope);
    if (a.visits == 0 || seen++ % stride != 0) continue;
    points.emplace_back(a.visits, a.spend_minor);
    max_v = std::max(max_v, a.visits);
    max_s = std::max(max_s, a.spend_minor);
  }
  max_v = std::max<std::uint64_t>(max_v, 1);
  max_s = std::max<std::uint64_t>(max_s, 1);
  auto x = [&](std::uint64_t v) { return kPad + static_cast<int>(v * (kW - 2 * kPad) / max_v); };
  auto y = [&](std::uint64_t s) {
    return kH - kPad -
           static_cast<int>(static_cast<unsigned __int128>(s) * (kH - 2 * kPad) / max_s);
  };
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kW) +
                    "\" height=\"" + std::to_string(kH) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<title>Members by visits x spend, " + sync::month_string(q.scope.from_month) + " .. " +
         sync::month_string(q.scope.to_month) +
         (stride > 1 ? ", every " + std::to_string(stride) + "th member plotted" : std::string()) +
         "</title>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const int tx = x(q.thresholds.visits), ty = y(q.thresholds.spend_minor);
  svg += "<line x1=\"" + std::to_string(tx) + "\" y1=\"" + std::to_string(kPad) + "\" x2=\"" +
         std::to_string(tx) + "\" y2=\"" + std::to_string(kH - kPad) +
         "\" stroke=\"grey\" stroke-dasharray=\"4\"/>\n";
  svg += "<line x1=\"" + std::to_string(kPad) + "\" y1=\"" + std::to_string(ty) + "\" x2=\"" +
         std::to_string(kW - kPad) + "\" y2=\"" + std::to_string(ty) +
         "\" stroke=\"grey\" stroke-dasharray=\"4\"/>\n";
  const std::array<std::tuple<Quadrant, int, int>, 4> labels = {
      {{Quadrant::kTrueFriends, kW - kPad - 150, kPad + 14},
       {Quadrant::kButterflies, kPad + 4, kPad + 14},
       {Quadrant::kBarnacles, kW - kPad - 150, kH - kPad - 6},
       {Quadrant::kStrangers, kPad + 4, kH - kPad - 6}}};
  for (const auto& [quad, lx, ly] : labels) {
    const QuadrantRow& row = q.rows[static_cast<std::size_t>(quad)];
    std::string label = quadrant_label(quad);
    label = label.substr(0, label.find(" ("));
    svg += "<text x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) + "\">" + label +
           ": " + std::to_string(row.members) + "</text>\n";
  }
  for (const auto& [v, s] : points) {
    svg += "<circle cx=\"" + std::to_string(x(v)) + "\" cy=\"" + std::to_string(y(s)) +
           "\" r=\"3\" fill=\"steelblue\" fill-opacity=\"0.6\"/>\n";
  }
  svg += "<text x=\"" + std::to_string(kW / 2 - 30) + "\" y=\"" + std::to_string(kH - 20) +
         "\">visits</text>\n";
  svg += "<text x=\"10\" y=\"" + std::to_string(kPad - 20) + "\">spend (max " + money(max_s) +
         ")</text>\n";
  svg += "</svg>\n";
  return svg;
}

}  // namespace outpost::node::reports
