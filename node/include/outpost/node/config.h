// outpostd configuration: a TOML file (docs/operations.md documents every key). Parsing refuses
// unknown keys and bad addresses with a message naming the key. Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/base/status.h"

namespace outpost::node {

struct Endpoint {
  std::string host;  // numeric IPv4/IPv6 address
  std::uint16_t port = 0;
  std::string to_string() const;
};

// Parses "HOST:PORT" / "[V6]:PORT" with a numeric address and port 0..65535 (0 = ephemeral).
Result<Endpoint> parse_endpoint(const std::string& text);

struct PeerConfig {
  std::string name;
  Endpoint address;
};

// The rebalancer (docs/sync-protocol.md, "Rebalancer"): every interval_ms the node moves idle
// escrow rights it holds toward the node where their member now shops (sync::RebalancePolicy).
struct RebalanceConfig {
  bool enabled = true;
  std::uint32_t interval_ms = 60'000;
  std::uint64_t idle_ms = 7ULL * 24 * 3600 * 1000;
  std::uint64_t recent_ms = 30ULL * 24 * 3600 * 1000;
  std::uint32_t keep_percent = 0;
  std::uint32_t members_per_tick = 256;  // bounds one tick's work; the next tick goes on from there
};

// HQ only: every interval_ms the daemon signs checkpoints and a new tree head set of what it
// holds (as `outpost hq checkpoint` does) when its data dir holds root.key; 0 turns it off.
// Sync then carries the set to every store (docs/sync-protocol.md).
struct CheckpointConfig {
  std::uint32_t interval_ms = 60'000;
};

// Peer links: each side sends a keepalive ping after keepalive_ms without sending anything, so an
// idle link stays open and its peer's last contact stays fresh (docs/admin-api.md, "GET
// /admin/v1/peers"). At most a third of the links' idle timeout (limits::kLinkIdleTimeoutMs).
struct LinkConfig {
  std::uint32_t keepalive_ms = 10'000;
};

// HQ only, optional: stream ops and member snapshots into ClickHouse (docs/analytics.md). Off
// while clickhouse_url is empty.
struct AnalyticsConfig {
  std::string clickhouse_url;  // "http://HOST:PORT", numeric host
  std::string database = "outpost";
  std::uint32_t batch_ops = 1000;
  std::uint64_t behind_alert_ops = 100'000;
  std::uint32_t idle_ms = 1000;  // wait between looks for new ops once caught up
};

struct Config {
  std::string data_dir;
  std::string role = "store";  // store | hq
  std::string log_level = "info";  // debug | info | warn | error
  Endpoint api{"127.0.0.1", 0};
  Endpoint admin{"127.0.0.1", 0};
  Endpoint peer{"127.0.0.1", 0};
  std::vector<PeerConfig> peers;
  // Where the daemon writes "api=HOST:PORT admin=... peer=..." once it listens (ports may be
  // ephemeral); empty = data_dir/outpostd.ports.
  std::string ports_file;
  std::uint32_t sync_interval_ms = 1000;
  RebalanceConfig rebalance;
  CheckpointConfig checkpoint;
  LinkConfig link;
  AnalyticsConfig analytics;
};

// Loads and validates a config file. Relative data_dir paths are resolved against the file's
// directory. Errors name the offending key.
Result<Config> load_config(const std::string& path);
// Same, from TOML text (for tests); `base_dir` resolves relative paths.
Result<Config> parse_config(const std::string& text, const std::string& base_dir);

}  // namespace outpost::node
