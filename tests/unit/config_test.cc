// outpostd's TOML config (node/include/outpost/node/config.h): a full config is accepted with
// every key read; anything else (unknown keys at any level, bad addresses, wrong types, missing or
// invalid values) is refused with a message naming the offending key.
#include "outpost/node/config.h"

#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace outpost::node {
namespace {

// Refused as invalid input with a message that names `key`.
testing::AssertionResult RefusedNaming(const std::string& toml, const std::string& key) {
  auto c = parse_config(toml, "/etc/outpost");
  if (c.is_ok()) return testing::AssertionFailure() << "accepted:\n" << toml;
  if (c.status().code() != Code::kInvalidArgument) {
    return testing::AssertionFailure() << "wrong code: " << c.status().to_string();
  }
  if (c.status().message().find(key) == std::string::npos) {
    return testing::AssertionFailure() << "message does not name '" << key
                                       << "': " << c.status().message();
  }
  return testing::AssertionSuccess() << c.status().message();
}

const char* const kMinimal = "data_dir = \"/var/lib/outpost\"\n";

TEST(ConfigTest, FullConfigIsAcceptedWithEveryKeyRead) {
  auto c = parse_config(R"(
data_dir = "data"
role = "hq"
log_level = "debug"
ports_file = "run/outpostd.ports"
sync_interval_ms = 250

[api]
listen = "127.0.0.1:8080"

[admin]
listen = "[::1]:8081"

[peer]
listen = "0.0.0.0:7000"

[[peers]]
name = "store-1"
address = "10.0.0.2:7000"

[[peers]]
name = "store-2"
address = "[fd00::3]:7001"
)",
                        "/etc/outpost");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->data_dir, "/etc/outpost/data");
  EXPECT_EQ(c->role, "hq");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->ports_file, "/etc/outpost/run/outpostd.ports");
  EXPECT_EQ(c->sync_interval_ms, 250u);
  EXPECT_EQ(c->api.host, "127.0.0.1");
  EXPECT_EQ(c->api.port, 8080);
  EXPECT_EQ(c->admin.host, "::1");
  EXPECT_EQ(c->admin.port, 8081);
  EXPECT_EQ(c->admin.to_string(), "[::1]:8081");
  EXPECT_EQ(c->peer.to_string(), "0.0.0.0:7000");
  ASSERT_EQ(c->peers.size(), 2u);
  EXPECT_EQ(c->peers[0].name, "store-1");
  EXPECT_EQ(c->peers[0].address.to_string(), "10.0.0.2:7000");
  EXPECT_EQ(c->peers[1].name, "store-2");
  EXPECT_EQ(c->peers[1].address.host, "fd00::3");
  EXPECT_EQ(c->peers[1].address.port, 7001);
}

TEST(ConfigTest, OnlyDataDirGivenMeansLoopbackEphemeralDefaults) {
  auto c = parse_config(kMinimal, "/etc/outpost");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->data_dir, "/var/lib/outpost");  // absolute: not resolved against base_dir
  EXPECT_EQ(c->role, "store");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->api.to_string(), "127.0.0.1:0");
  EXPECT_EQ(c->admin.to_string(), "127.0.0.1:0");
  EXPECT_EQ(c->peer.to_string(), "127.0.0.1:0");
  EXPECT_TRUE(c->peers.empty());
  EXPECT_TRUE(c->ports_file.empty());
  EXPECT_EQ(c->sync_interval_ms, 1000u);
}

TEST(ConfigTest, EmptyTablesKeepDefaults) {
  auto c = parse_config(std::string(kMinimal) + "[api]\n[admin]\n[peer]\n", "/");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->api.to_string(), "127.0.0.1:0");
}

// --- unknown keys ---

TEST(ConfigTest, UnknownTopLevelKeyIsRefusedByName) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "listen_api = \"127.0.0.1:1\"\n", "'listen_api'"));
}

TEST(ConfigTest, MisspelledKeyIsRefusedNotIgnored) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "loglevel = \"debug\"\n", "'loglevel'"));
}

TEST(ConfigTest, UnknownKeyInApiTableIsRefusedWithItsPath) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"127.0.0.1:1\"\nport = 8080\n",
                            "'api.port'"));
}

TEST(ConfigTest, UnknownKeyInAdminAndPeerTablesIsRefusedWithItsPath) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[admin]\ntoken = \"x\"\n", "'admin.token'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[peer]\ntls = true\n", "'peer.tls'"));
}

TEST(ConfigTest, UnknownKeyInPeersEntryIsRefusedWithItsIndex) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) +
                                "[[peers]]\nname = \"a\"\naddress = \"10.0.0.1:7000\"\n"
                                "[[peers]]\nname = \"b\"\naddress = \"10.0.0.2:7000\"\nweight = 3\n",
                            "'peers[1].weight'"));
}

TEST(ConfigTest, UnknownNestedTableIsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[database]\npath = \"x\"\n", "'database'"));
}

// --- bad addresses ---

TEST(ConfigTest, RebalanceTableIsReadAndEachBadValueIsRefusedByName) {
  auto c = parse_config(std::string(kMinimal) +
                            "[rebalance]\nenabled = false\ninterval_ms = 5000\nidle_ms = 0\nrecent_ms = 86400000\n"
                            "keep_percent = 10\nmembers_per_tick = 50\n",
                        "/etc/outpost");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_FALSE(c->rebalance.enabled);
  EXPECT_EQ(c->rebalance.interval_ms, 5000u);
  EXPECT_EQ(c->rebalance.idle_ms, 0u);
  EXPECT_EQ(c->rebalance.recent_ms, 86'400'000u);
  EXPECT_EQ(c->rebalance.keep_percent, 10u);
  EXPECT_EQ(c->rebalance.members_per_tick, 50u);
  auto d = parse_config(kMinimal, "/etc/outpost");
  ASSERT_TRUE(d.is_ok());
  EXPECT_TRUE(d->rebalance.enabled);
  EXPECT_EQ(d->rebalance.idle_ms, 7ULL * 24 * 3600 * 1000);

  const std::string base = std::string(kMinimal) + "[rebalance]\n";
  EXPECT_TRUE(RefusedNaming(base + "idle_days = 3\n", "rebalance.idle_days"));
  EXPECT_TRUE(RefusedNaming(base + "keep_percent = 101\n", "rebalance.keep_percent"));
  EXPECT_TRUE(RefusedNaming(base + "interval_ms = 0\n", "rebalance.interval_ms"));
  EXPECT_TRUE(RefusedNaming(base + "idle_ms = -1\n", "rebalance.idle_ms"));
  EXPECT_TRUE(RefusedNaming(base + "recent_ms = \"30d\"\n", "rebalance.recent_ms"));
  EXPECT_TRUE(RefusedNaming(base + "enabled = 1\n", "rebalance.enabled"));
  EXPECT_TRUE(RefusedNaming(base + "members_per_tick = 0\n", "rebalance.members_per_tick"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "rebalance = 3\n", "rebalance"));
}

TEST(ConfigTest, CheckpointIntervalIsReadAndZeroTurnsItOff) {
  auto c = parse_config(std::string(kMinimal) + "[checkpoint]\ninterval_ms = 0\n", "/etc/outpost");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->checkpoint.interval_ms, 0u);
  EXPECT_EQ(parse_config(kMinimal, "/etc/outpost")->checkpoint.interval_ms, 60'000u);
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[checkpoint]\ninterval_ms = 50\n", "checkpoint.interval_ms"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[checkpoint]\nevery = 5\n", "checkpoint.every"));
}

TEST(ConfigTest, LinkKeepaliveIsReadAndAValueTheIdleTimeoutCannotAbsorbIsRefused) {
  auto c = parse_config(std::string(kMinimal) + "[link]\nkeepalive_ms = 200\n", "/etc/outpost");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->link.keepalive_ms, 200u);
  EXPECT_EQ(parse_config(kMinimal, "/etc/outpost")->link.keepalive_ms, 10'000u);
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[link]\nkeepalive_ms = 10001\n", "link.keepalive_ms"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[link]\nkeepalive_ms = 99\n", "link.keepalive_ms"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[link]\nidle_ms = 5\n", "link.idle_ms"));
}

TEST(ConfigTest, HostnameInsteadOfNumericAddressIsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"localhost:8080\"\n", "api.listen"));
}

TEST(ConfigTest, AddressWithoutPortIsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"127.0.0.1\"\n", "api.listen"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"127.0.0.1:\"\n", "api.listen"));
}

TEST(ConfigTest, PortAbove65535IsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[admin]\nlisten = \"127.0.0.1:70000\"\n", "admin.listen"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[admin]\nlisten = \"127.0.0.1:655350\"\n", "admin.listen"));
}

TEST(ConfigTest, NegativeOrSignedPortIsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[peer]\nlisten = \"127.0.0.1:-1\"\n", "peer.listen"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[peer]\nlisten = \"127.0.0.1:+80\"\n", "peer.listen"));
}

TEST(ConfigTest, GarbageAddressIsRefused) {
  for (const char* bad : {"garbage", "::::", "1.2.3:80", "256.0.0.1:80", " 127.0.0.1:80", "127.0.0.1:80 ",
                          "[::1]", "[::1:80", "[]:80", "127.0.0.1:8O"}) {
    EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"" + bad + "\"\n", "api.listen"))
        << bad;
  }
}

TEST(ConfigTest, EmptyListenAddressIsRefusedNotTreatedAsDefault) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"\"\n", "api.listen"));
}

TEST(ConfigTest, BareIpv6WithoutBracketsIsRefusedAsAmbiguous) {
  // "::1" would otherwise parse as host "::" port 1.
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"::1\"\n", "api.listen"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = \"fe80::1:8080\"\n", "api.listen"));
}

TEST(ConfigTest, PeerAddressProblemsNameTheEntry) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[[peers]]\nname = \"hq\"\naddress = \"hq.example:7000\"\n",
                            "peers[0].address"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[[peers]]\nname = \"hq\"\n", "peers[0].address"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[[peers]]\nname = \"hq\"\naddress = \"10.0.0.1:0\"\n",
                            "peers[0].address"));
}

// --- wrong types ---

TEST(ConfigTest, WrongTypesAreRefusedByKey) {
  EXPECT_TRUE(RefusedNaming("data_dir = 5\n", "'data_dir'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "role = true\n", "'role'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "log_level = 1\n", "'log_level'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "ports_file = [\"a\"]\n", "'ports_file'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "api = \"127.0.0.1:8080\"\n", "'api'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[api]\nlisten = 8080\n", "'api.listen'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "peers = \"10.0.0.1:7000\"\n", "'peers'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "peers = [1, 2]\n", "'peers[0]"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[peers]\nname = \"x\"\n", "'peers'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "[[peers]]\nname = 7\naddress = \"10.0.0.1:1\"\n",
                            "'peers[0].name'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "sync_interval_ms = \"1000\"\n", "'sync_interval_ms'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "sync_interval_ms = 1000.0\n", "'sync_interval_ms'"));
}

TEST(ConfigTest, SyncIntervalOutOfRangeIsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "sync_interval_ms = 49\n", "'sync_interval_ms'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "sync_interval_ms = 600001\n", "'sync_interval_ms'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "sync_interval_ms = -5\n", "'sync_interval_ms'"));
}

// --- missing or invalid values ---

TEST(ConfigTest, MissingDataDirIsRefused) {
  EXPECT_TRUE(RefusedNaming("role = \"store\"\n", "'data_dir'"));
  EXPECT_TRUE(RefusedNaming("", "'data_dir'"));
  EXPECT_TRUE(RefusedNaming("data_dir = \"\"\n", "'data_dir'"));
}

TEST(ConfigTest, BadRoleIsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "role = \"shop\"\n", "'role'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "role = \"HQ\"\n", "'role'"));
}

TEST(ConfigTest, BadLogLevelIsRefused) {
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "log_level = \"verbose\"\n", "'log_level'"));
  EXPECT_TRUE(RefusedNaming(std::string(kMinimal) + "log_level = \"\"\n", "'log_level'"));
}

TEST(ConfigTest, MalformedTomlIsRefusedWithLine) {
  auto c = parse_config("data_dir = \"x\"\nrole = \n", "/");
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("line 2"), std::string::npos) << c.status().message();
}

TEST(ConfigTest, DuplicateKeyIsRefused) {
  auto c = parse_config(std::string(kMinimal) + "role = \"store\"\nrole = \"hq\"\n", "/");
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
}

// --- files ---

TEST(ConfigTest, LoadConfigResolvesRelativePathsAgainstTheFilesDirectory) {
  test::TempDir dir;
  test::write_file(dir.file("outpostd.toml"), "data_dir = \"store-data\"\n");
  auto c = load_config(dir.file("outpostd.toml"));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->data_dir, dir.file("store-data"));
}

TEST(ConfigTest, MissingConfigFileIsNotFoundWithItsPath) {
  test::TempDir dir;
  auto c = load_config(dir.file("nope.toml"));
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Code::kNotFound);
  EXPECT_NE(c.status().message().find("nope.toml"), std::string::npos);
}

TEST(ConfigTest, ConfigFileOverOneMebibyteIsRefusedUnparsed) {
  test::TempDir dir;
  test::write_file(dir.file("big.toml"), std::string(kMinimal) + "# " + std::string(1 << 20, 'x') + "\n");
  auto c = load_config(dir.file("big.toml"));
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("larger than"), std::string::npos) << c.status().message();
}

// --- parse_endpoint directly ---

TEST(ConfigTest, ParseEndpointAcceptsNumericV4AndBracketedV6) {
  auto a = parse_endpoint("10.1.2.3:65535");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->host, "10.1.2.3");
  EXPECT_EQ(a->port, 65535);
  auto b = parse_endpoint("[::]:0");
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->host, "::");
  EXPECT_EQ(b->port, 0);
}

TEST(ConfigTest, ParseEndpointRefusalsQuoteTheAddress) {
  auto r = parse_endpoint("my-host:80");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("'my-host:80'"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace outpost::node
