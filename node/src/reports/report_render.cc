// Text, CSV and JSON of the member reports (docs/reports.md shows each).
#include "outpost/node/report_render.h"

#include <algorithm>

#include "outpost/sync/hlc.h"

namespace outpost::node::reports {

namespace {

std::string bp_percent(std::uint32_t bp) {
  std::string frac = std::to_string(bp % 100);
  if (frac.size() < 2) frac.insert(0, "0");
  return std::to_string(bp / 100) + "." + frac + "%";
}

std::string node_label(const ReportInput& in, const sync::NodeId& id) {
  auto it = in.node_names.find(id);
  return it != in.node_names.end() ? it->second : sync::id_hex(id).substr(0, 8);
}

Json source_json(const DataSource& s) {
  Json vv = Json::object();
  for (const auto& [origin, seq] : s.version_vector) vv[sync::id_hex(origin)] = seq;
  return Json{
      {"version_vector", vv},
      {"ops", s.ops},
      {"tree_head_version", s.tree_head_version ? Json(*s.tree_head_version) : Json(nullptr)}};
}

std::string source_note(const DataSource& s) {
  std::string out = "data: " + std::to_string(s.ops) + " ops from " +
                    std::to_string(s.version_vector.size()) + " origins";
  if (s.tree_head_version) out += ", newest tree head set v" + std::to_string(*s.tree_head_version);
  return out;
}

Json scope_json(const ReportInput& in, const Scope& s) {
  return Json{{"from", sync::month_string(s.from_month)},
              {"to", sync::month_string(s.to_month)},
              {"store", s.store ? Json(node_label(in, *s.store)) : Json(nullptr)}};
}

std::string scope_note(const ReportInput& in, const Scope& s) {
  std::string out =
      "period " + sync::month_string(s.from_month) + " .. " + sync::month_string(s.to_month);
  out += s.store ? ", store " + node_label(in, *s.store) : ", all stores";
  return out;
}

Json member_json(const MemberRef& m) {
  return Json{{"member", sync::id_hex(m.id)},
              {"card", m.card},
              {"name", m.name},
              {"visits", m.visits},
              {"spend_minor", m.spend_minor}};
}

Json list_json(const std::vector<MemberRef>& list) {
  Json out = Json::array();
  for (const MemberRef& m : list) out.push_back(member_json(m));
  return out;
}

Rendered start(const ReportInput& in, const char* name, const std::string& title) {
  Rendered r;
  r.title = title;
  r.json = Json{{"report", name}};
  r.json["data"] = source_json(in.source);
  return r;
}

}  // namespace

std::string money(std::uint64_t minor) {
  std::string units = std::to_string(minor / 100);
  for (int i = static_cast<int>(units.size()) - 3; i > 0; i -= 3)
    units.insert(static_cast<std::size_t>(i), ",");
  const std::uint64_t cents = minor % 100;
  return units + (cents < 10 ? ".0" : ".") + std::to_string(cents);
}

Rendered render(const ReportInput& in, const QuadrantReport& q) {
  Rendered r = start(in, "quadrants", "Members by visit frequency x spend");
  r.notes = {scope_note(in, q.scope),
             std::string("frequent: ") + std::to_string(q.thresholds.visits) +
                 "+ visits; high spend: " + money(q.thresholds.spend_minor) + "+" +
                 (q.thresholds_are_medians ? " (above the medians)" : ""),
             std::to_string(q.active_members) + " active members spent " + money(q.spend_minor) +
                 "; " + std::to_string(q.inactive_members) + " had no visit",
             source_note(in.source)};
  r.table.header = {"quadrant", "members", "visits", "spend", "share of sales"};
  Json rows = Json::array();
  for (const QuadrantRow& row : q.rows) {
    r.table.rows.push_back({quadrant_label(row.quadrant), std::to_string(row.members),
                            std::to_string(row.visits), money(row.spend_minor),
                            bp_percent(row.sales_share_bp)});
    rows.push_back({{"quadrant", quadrant_name(row.quadrant)},
                    {"label", quadrant_label(row.quadrant)},
                    {"members", row.members},
                    {"visits", row.visits},
                    {"spend_minor", row.spend_minor},
                    {"sales_share_bp", row.sales_share_bp},
                    {"list", list_json(row.list)}});
  }
  r.json["period"] = scope_json(in, q.scope);
  r.json["thresholds"] = {{"visits", q.thresholds.visits},
                          {"spend_minor", q.thresholds.spend_minor},
                          {"from", q.thresholds_are_medians ? "medians" : "given"}};
  r.json["active_members"] = q.active_members;
  r.json["inactive_members"] = q.inactive_members;
  r.json["spend_minor"] = q.spend_minor;
  r.json["quadrants"] = rows;
  return r;
}

Rendered render(const ReportInput& in, const RfmReport& f) {
  Rendered r = start(in, "rfm", "Recency, frequency and monetary scores (5 best)");
  r.notes = {scope_note(in, f.scope), std::to_string(f.scored) + " members with a visit scored",
             source_note(in.source)};
  r.table.header = {"score", "recency", "frequency", "monetary"};
  Json counts = Json::array();
  for (std::size_t s = 5; s >= 1; --s) {
    r.table.rows.push_back({std::to_string(s), std::to_string(f.r_counts[s - 1]),
                            std::to_string(f.f_counts[s - 1]), std::to_string(f.m_counts[s - 1])});
    counts.push_back({{"score", s},
                      {"recency", f.r_counts[s - 1]},
                      {"frequency", f.f_counts[s - 1]},
                      {"monetary", f.m_counts[s - 1]}});
  }
  Json list = Json::array();
  for (const RfmMember& m : f.list) {
    Json j = member_json(m.member);
    j["months_since_visit"] = m.months_since_visit;
    j["r"] = m.r;
    j["f"] = m.f;
    j["m"] = m.m;
    list.push_back(std::move(j));
  }
  r.json["period"] = scope_json(in, f.scope);
  r.json["scored"] = f.scored;
  r.json["scores"] = counts;
  r.json["list"] = list;
  return r;
}

Rendered render(const ReportInput& in, const LifecycleReport& l) {
  Rendered r = start(in, "lifecycle",
                     "Members by lifecycle stage, as of " + sync::month_string(l.scope.to_month));
  r.notes = {scope_note(in, l.scope),
             "new: enrolled in the last " + std::to_string(l.rules.new_months) +
                 " months; last visit under " + std::to_string(l.rules.active_months) +
                 " months ago: active, under " + std::to_string(l.rules.at_risk_months) +
                 ": at risk, under " + std::to_string(l.rules.dormant_months) +
                 ": dormant, else churned",
             source_note(in.source)};
  r.table.header = {"stage", "members"};
  Json stages = Json::array();
  for (std::size_t s = 0; s < l.counts.size(); ++s) {
    const char* name = stage_name(static_cast<Stage>(s));
    r.table.rows.push_back({name, std::to_string(l.counts[s])});
    stages.push_back({{"stage", name}, {"members", l.counts[s]}, {"list", list_json(l.lists[s])}});
  }
  r.json["period"] = scope_json(in, l.scope);
  r.json["rules"] = {{"new_months", l.rules.new_months},
                     {"active_months", l.rules.active_months},
                     {"at_risk_months", l.rules.at_risk_months},
                     {"dormant_months", l.rules.dormant_months}};
  r.json["not_yet_enrolled"] = l.not_yet_enrolled;
  r.json["stages"] = stages;
  return r;
}

Rendered render(const ReportInput& in, const LiabilityReport& l) {
  Rendered r = start(in, "liability", "Outstanding points and stored value");
  std::string totals = "chain-wide: " + std::to_string(l.points) + " points, " +
                       money(l.wallet_minor) + " stored value, " +
                       std::to_string(l.members_with_balance) + " members with a balance";
  if (l.points_value_minor) totals += "; points worth " + money(*l.points_value_minor);
  r.notes = {totals, source_note(in.source)};
  r.table.header = {"node", "points", "stored value"};
  Json nodes = Json::array();
  for (const LiabilityRow& row : l.by_node) {
    r.table.rows.push_back({row.name, std::to_string(row.points), money(row.wallet_minor)});
    nodes.push_back({{"node", row.name},
                     {"node_id", sync::id_hex(row.node)},
                     {"points", row.points},
                     {"wallet_minor", row.wallet_minor}});
  }
  Json funders = Json::array();
  for (const auto& [funder, v] : l.by_funder) {
    funders.push_back({{"funder", funder}, {"points", v.first}, {"wallet_minor", v.second}});
  }
  r.json["points"] = l.points;
  r.json["wallet_minor"] = l.wallet_minor;
  r.json["members_with_balance"] = l.members_with_balance;
  if (l.point_value) {
    r.json["point_value"] = {{"num", l.point_value->num}, {"den", l.point_value->den}};
    r.json["points_value_minor"] = *l.points_value_minor;
  }
  r.json["by_node"] = nodes;
  r.json["by_funder"] = funders;
  return r;
}

Rendered render(const ReportInput& in, const KpiReport& k) {
  Rendered r = start(in, "kpis", "Key figures");
  r.notes = {scope_note(in, k.scope), source_note(in.source)};
  r.table.header = {"figure", "value"};
  r.table.rows = {{"members", std::to_string(k.members)},
                  {"active members", std::to_string(k.active_members)},
                  {"repeat members", std::to_string(k.repeat_members)},
                  {"repurchase rate", bp_percent(k.repurchase_rate_bp)},
                  {"visits", std::to_string(k.visits)},
                  {"spend", money(k.spend_minor)},
                  {"spend per visit", money(k.spend_per_visit_minor)}};
  Json tiers = Json::array();
  for (const auto& [name, n] : k.tiers) {
    r.table.rows.push_back({"tier " + name, std::to_string(n)});
    tiers.push_back({{"tier", name}, {"members", n}});
  }
  r.json["period"] = scope_json(in, k.scope);
  r.json["members"] = k.members;
  r.json["active_members"] = k.active_members;
  r.json["repeat_members"] = k.repeat_members;
  r.json["repurchase_rate_bp"] = k.repurchase_rate_bp;
  r.json["visits"] = k.visits;
  r.json["spend_minor"] = k.spend_minor;
  r.json["spend_per_visit_minor"] = k.spend_per_visit_minor;
  r.json["tiers"] = tiers;
  return r;
}

std::string to_text(const Rendered& r) {
  std::string out = r.title + "\n";
  for (const std::string& n : r.notes) out += "  " + n + "\n";
  out += "\n";
  // Display width: count code points, and two columns for each CJK character.
  auto width = [](const std::string& s) {
    std::size_t w = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if ((c & 0xC0) == 0x80) continue;
      w += c >= 0xE3 && c <= 0xE9 ? 2 : 1;
    }
    return w;
  };
  std::vector<std::size_t> cols(r.table.header.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < cols.size(); ++i)
      cols[i] = std::max(cols[i], width(row[i]));
  };
  measure(r.table.header);
  for (const auto& row : r.table.rows) measure(row);
  auto line = [&](const std::vector<std::string>& row) {
    std::string l;
    for (std::size_t i = 0; i < row.size() && i < cols.size(); ++i) {
      const std::string pad(cols[i] - width(row[i]), ' ');
      l += i == 0 ? row[i] + pad : "  " + pad + row[i];  // first column left, numbers right
    }
    return l + "\n";
  };
  out += line(r.table.header);
  for (const auto& row : r.table.rows) out += line(row);
  return out;
}

std::string to_csv(const Table& t) {
  auto field = [](const std::string& f) {
    if (f.find_first_of(",\"\r\n") == std::string::npos) return f;
    std::string q = "\"";
    for (char c : f) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  auto line = [&](const std::vector<std::string>& row) {
    std::string l;
    for (std::size_t i = 0; i < row.size(); ++i) l += (i ? "," : "") + field(row[i]);
    return l + "\r\n";
  };
  std::string out = line(t.header);
  for (const auto& row : t.rows) out += line(row);
  return out;
}

}  // namespace outpost::node::reports
