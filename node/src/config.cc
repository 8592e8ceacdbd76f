#include "outpost/node/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "outpost/base/limits.h"
#include "outpost/node/analytics.h"

namespace outpost::node {

std::string Endpoint::to_string() const {
  return host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                              : host + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::invalid("address '" + text + "' " + why + " (expected HOST:PORT, numeric host)");
  };
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return bad("is malformed");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return bad("has no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    // "::1" would read as host "::" port 1: an IPv6 host needs brackets.
    if (host.find(':') != std::string::npos) return bad("has an IPv6 host without [brackets]");
  }
  unsigned char buf[16];
  bool v4 = inet_pton(AF_INET, host.c_str(), buf) == 1;
  bool v6 = !v4 && inet_pton(AF_INET6, host.c_str(), buf) == 1;
  if (!v4 && !v6) return bad("has a host that is not a numeric IP address");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return bad("has a bad port");
  unsigned long p = std::stoul(port);
  if (p > 65535) return bad("has a port above 65535");
  return Endpoint{host, static_cast<std::uint16_t>(p)};
}

namespace {

Status unknown_keys(const toml::table& t, const std::set<std::string>& allowed, const std::string& where) {
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (!allowed.count(key)) return Status::invalid("config: unknown key '" + where + key + "'");
  }
  return Status::ok();
}

Status get_string(const toml::table& t, const char* key, const std::string& where, std::string& out) {
  auto* n = t.get(key);
  if (!n) return Status::ok();
  auto v = n->value<std::string>();
  if (!n->is_string() || !v) return Status::invalid("config: '" + where + key + "' must be a string");
  out = *v;
  return Status::ok();
}

Status get_endpoint(const toml::table& t, const char* section, Endpoint& out) {
  auto* n = t.get(section);
  if (!n) return Status::ok();
  auto* sub = n->as_table();
  if (!sub) return Status::invalid(std::string("config: '") + section + "' must be a table");
  OUTPOST_RETURN_IF_ERROR(unknown_keys(*sub, {"listen"}, std::string(section) + "."));
  std::string listen;
  OUTPOST_RETURN_IF_ERROR(get_string(*sub, "listen", std::string(section) + ".", listen));
  if (!sub->contains("listen")) return Status::ok();  // an empty "listen" is refused below
  auto ep = parse_endpoint(listen);
  if (!ep.is_ok()) return ep.status().with_context(std::string("config: '") + section + ".listen'");
  out = *ep;
  return Status::ok();
}

// Reads an optional integer `key` of `t` within [lo, hi] into `out`.
template <typename T>
Status get_int(const toml::table& t, const char* key, const std::string& where, std::int64_t lo, std::int64_t hi, T& out) {
  auto* n = t.get(key);
  if (!n) return Status::ok();
  auto v = n->value<std::int64_t>();
  if (!n->is_integer() || !v || *v < lo || *v > hi) {
    return Status::invalid("config: '" + where + key + "' must be an integer " + std::to_string(lo) + ".." +
                           std::to_string(hi));
  }
  out = static_cast<T>(*v);
  return Status::ok();
}

// The optional table `name` of `t` with no key outside `allowed`; nullptr when absent.
Result<const toml::table*> optional_table(const toml::table& t, const char* name, const std::set<std::string>& allowed) {
  auto* n = t.get(name);
  if (!n) return static_cast<const toml::table*>(nullptr);
  auto* sub = n->as_table();
  if (!sub) return Status::invalid(std::string("config: '") + name + "' must be a table");
  OUTPOST_RETURN_IF_ERROR(unknown_keys(*sub, allowed, std::string(name) + "."));
  return static_cast<const toml::table*>(sub);
}

Status get_rebalance(const toml::table& t, RebalanceConfig& out) {
  OUTPOST_ASSIGN_OR_RETURN(const toml::table* sub,
                           optional_table(t, "rebalance",
                                          {"enabled", "interval_ms", "idle_ms", "recent_ms", "keep_percent",
                                           "members_per_tick"}));
  if (!sub) return Status::ok();
  if (auto* e = sub->get("enabled")) {
    auto v = e->value<bool>();
    if (!e->is_boolean() || !v) return Status::invalid("config: 'rebalance.enabled' must be true or false");
    out.enabled = *v;
  }
  constexpr std::int64_t kTenYearsMs = 10LL * 366 * 24 * 3600 * 1000;
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "interval_ms", "rebalance.", 100, 86'400'000, out.interval_ms));
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "idle_ms", "rebalance.", 0, kTenYearsMs, out.idle_ms));
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "recent_ms", "rebalance.", 1, kTenYearsMs, out.recent_ms));
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "keep_percent", "rebalance.", 0, 100, out.keep_percent));
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "members_per_tick", "rebalance.", 1, 10'000, out.members_per_tick));
  return Status::ok();
}

Status get_checkpoint(const toml::table& t, CheckpointConfig& out) {
  OUTPOST_ASSIGN_OR_RETURN(const toml::table* sub, optional_table(t, "checkpoint", {"interval_ms"}));
  if (!sub) return Status::ok();
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "interval_ms", "checkpoint.", 0, 86'400'000, out.interval_ms));
  if (out.interval_ms != 0 && out.interval_ms < 100) {
    return Status::invalid("config: 'checkpoint.interval_ms' must be 0 (off) or 100..86400000");
  }
  return Status::ok();
}

static_assert(LinkConfig{}.keepalive_ms == limits::kLinkKeepaliveMs);

Status get_link(const toml::table& t, LinkConfig& out) {
  OUTPOST_ASSIGN_OR_RETURN(const toml::table* sub, optional_table(t, "link", {"keepalive_ms"}));
  if (!sub) return Status::ok();
  return get_int(*sub, "keepalive_ms", "link.", 100, limits::kLinkIdleTimeoutMs / 3, out.keepalive_ms);
}

Status get_analytics(const toml::table& t, AnalyticsConfig& out) {
  OUTPOST_ASSIGN_OR_RETURN(
      const toml::table* sub,
      optional_table(t, "analytics",
                     {"clickhouse_url", "database", "batch_ops", "behind_alert_ops", "idle_ms"}));
  if (!sub) return Status::ok();
  OUTPOST_RETURN_IF_ERROR(get_string(*sub, "clickhouse_url", "analytics.", out.clickhouse_url));
  if (out.clickhouse_url.empty()) {
    return Status::invalid("config: 'analytics.clickhouse_url' is required in [analytics]");
  }
  auto ep = analytics::parse_clickhouse_url(out.clickhouse_url);
  if (!ep.is_ok()) return ep.status().with_context("config: 'analytics.clickhouse_url'");
  OUTPOST_RETURN_IF_ERROR(get_string(*sub, "database", "analytics.", out.database));
  const bool plain = !out.database.empty() && out.database.size() <= 64 &&
                     out.database.find_first_not_of(
                         "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string::npos &&
                     !(out.database[0] >= '0' && out.database[0] <= '9');
  if (!plain) {
    return Status::invalid(
        "config: 'analytics.database' must be a plain name (letters, digits, _)");
  }
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "batch_ops", "analytics.", 1,
                                  static_cast<std::int64_t>(analytics::kBatchOpsMax),
                                  out.batch_ops));
  OUTPOST_RETURN_IF_ERROR(
      get_int(*sub, "behind_alert_ops", "analytics.", 1, 1'000'000'000'000, out.behind_alert_ops));
  OUTPOST_RETURN_IF_ERROR(get_int(*sub, "idle_ms", "analytics.", 10, 600'000, out.idle_ms));
  return Status::ok();
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& base_dir) {
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const toml::parse_error& e) {
    std::ostringstream o;
    o << "config: " << e.description() << " at line " << e.source().begin.line;
    return Status::invalid(o.str());
  }
  OUTPOST_RETURN_IF_ERROR(
      unknown_keys(t,
                   {"data_dir", "role", "log_level", "api", "admin", "peer", "peers", "ports_file",
                    "sync_interval_ms", "rebalance", "checkpoint", "link", "analytics"},
                   ""));
  Config c;
  OUTPOST_RETURN_IF_ERROR(get_string(t, "data_dir", "", c.data_dir));
  if (c.data_dir.empty()) return Status::invalid("config: 'data_dir' is required");
  std::filesystem::path dd(c.data_dir);
  if (dd.is_relative()) c.data_dir = (std::filesystem::path(base_dir) / dd).lexically_normal().string();
  OUTPOST_RETURN_IF_ERROR(get_string(t, "role", "", c.role));
  if (c.role != "store" && c.role != "hq") return Status::invalid("config: 'role' must be \"store\" or \"hq\"");
  OUTPOST_RETURN_IF_ERROR(get_string(t, "log_level", "", c.log_level));
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error") {
    return Status::invalid("config: 'log_level' must be debug, info, warn or error");
  }
  OUTPOST_RETURN_IF_ERROR(get_string(t, "ports_file", "", c.ports_file));
  if (!c.ports_file.empty() && std::filesystem::path(c.ports_file).is_relative()) {
    c.ports_file = (std::filesystem::path(base_dir) / c.ports_file).lexically_normal().string();
  }
  if (auto* n = t.get("sync_interval_ms")) {
    auto v = n->value<std::int64_t>();
    if (!n->is_integer() || !v || *v < 50 || *v > 600'000) return Status::invalid("config: 'sync_interval_ms' must be an integer 50..600000");
    c.sync_interval_ms = static_cast<std::uint32_t>(*v);
  }
  OUTPOST_RETURN_IF_ERROR(get_rebalance(t, c.rebalance));
  OUTPOST_RETURN_IF_ERROR(get_checkpoint(t, c.checkpoint));
  OUTPOST_RETURN_IF_ERROR(get_link(t, c.link));
  OUTPOST_RETURN_IF_ERROR(get_analytics(t, c.analytics));
  if (!c.analytics.clickhouse_url.empty() && c.role != "hq") {
    return Status::invalid("config: [analytics] runs at HQ only ('role' is " + c.role + ")");
  }
  OUTPOST_RETURN_IF_ERROR(get_endpoint(t, "api", c.api));
  OUTPOST_RETURN_IF_ERROR(get_endpoint(t, "admin", c.admin));
  OUTPOST_RETURN_IF_ERROR(get_endpoint(t, "peer", c.peer));
  if (auto* n = t.get("peers")) {
    auto* arr = n->as_array();
    if (!arr) return Status::invalid("config: 'peers' must be an array of tables ([[peers]])");
    if (arr->size() > 64) return Status::invalid("config: at most 64 'peers'");
    std::size_t i = 0;
    for (auto& el : *arr) {
      std::string where = "peers[" + std::to_string(i++) + "].";
      auto* pt = el.as_table();
      if (!pt) return Status::invalid("config: '" + where.substr(0, where.size() - 1) + "' must be a table");
      OUTPOST_RETURN_IF_ERROR(unknown_keys(*pt, {"name", "address"}, where));
      PeerConfig p;
      std::string addr;
      OUTPOST_RETURN_IF_ERROR(get_string(*pt, "name", where, p.name));
      OUTPOST_RETURN_IF_ERROR(get_string(*pt, "address", where, addr));
      if (addr.empty()) return Status::invalid("config: '" + where + "address' is required");
      auto ep = parse_endpoint(addr);
      if (!ep.is_ok()) return ep.status().with_context("config: '" + where + "address'");
      if (ep->port == 0) return Status::invalid("config: '" + where + "address' needs a non-zero port");
      p.address = *ep;
      c.peers.push_back(p);
    }
  }
  return c;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("config file " + path + " cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > 1 << 20) return Status::invalid("config file " + path + " is larger than 1 MiB");
  auto base = std::filesystem::absolute(path).parent_path().string();
  return parse_config(ss.str(), base);
}

}  // namespace outpost::node
