#include <filesystem>

#include <toml++/toml.h>

#include "outpost/node/ledger.h"

namespace outpost::node {

Result<sync::ProgramRules> load_rules_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found("rules file " + path + " does not exist");
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return Status::invalid("rules file " + path + ": " + std::string(e.description()));
  }
  static const std::set<std::string> kTop = {"version", "unit_minor", "window_months", "tier"};
  for (const auto& [k, v] : t) {
    if (!kTop.count(std::string(k.str()))) return Status::invalid("rules file " + path + ": unknown key '" + std::string(k.str()) + "'");
  }
  sync::ProgramRules r;
  auto get_uint = [&](const toml::node_view<toml::node>& n, const char* key, std::uint64_t& out, bool required) -> Status {
    if (!n) return required ? Status::invalid(std::string("rules file: missing '") + key + "'") : Status::ok();
    auto v = n.value<std::int64_t>();
    if (!n.is_integer() || !v || *v < 0) return Status::invalid(std::string("rules file: '") + key + "' must be a non-negative integer");
    out = static_cast<std::uint64_t>(*v);
    return Status::ok();
  };
  std::uint64_t version = r.version, window = r.window_months;
  OUTPOST_RETURN_IF_ERROR(get_uint(t["version"], "version", version, true));
  OUTPOST_RETURN_IF_ERROR(get_uint(t["unit_minor"], "unit_minor", r.unit_minor, false));
  OUTPOST_RETURN_IF_ERROR(get_uint(t["window_months"], "window_months", window, false));
  if (version == 0 || version > 0xffffffffULL) return Status::invalid("rules file: 'version' out of range");
  if (window > 120) return Status::invalid("rules file: 'window_months' out of range");
  r.version = static_cast<std::uint32_t>(version);
  r.window_months = static_cast<std::uint32_t>(window);
  auto* tiers = t["tier"].as_array();
  if (!tiers) return Status::invalid("rules file: needs [[tier]] entries");
  for (auto& el : *tiers) {
    auto* tt = el.as_table();
    if (!tt) return Status::invalid("rules file: [[tier]] must be tables");
    for (const auto& [k, v] : *tt) {
      std::string key(k.str());
      if (key != "name" && key != "threshold_minor" && key != "points_per_unit") {
        return Status::invalid("rules file: unknown tier key '" + key + "'");
      }
    }
    sync::Tier tier;
    auto name = (*tt)["name"].value<std::string>();
    if (!name) return Status::invalid("rules file: tier needs a name");
    tier.name = *name;
    OUTPOST_RETURN_IF_ERROR(get_uint((*tt)["threshold_minor"], "threshold_minor", tier.threshold_minor, true));
    OUTPOST_RETURN_IF_ERROR(get_uint((*tt)["points_per_unit"], "points_per_unit", tier.points_per_unit, true));
    r.tiers.push_back(tier);
  }
  OUTPOST_RETURN_IF_ERROR(r.validate().with_context("rules file " + path));
  return r;
}

}  // namespace outpost::node
