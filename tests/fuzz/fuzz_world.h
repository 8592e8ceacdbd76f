// One small chain built from fixed seeds, shared by the libFuzzer targets in tests/fuzz and by
// fuzz_seeds (which writes their seed corpora from it): the HQ root key, four nodes (HQ and three
// stores) with their certificates, a roster, signed program rules, each node's log of signed ops
// of every kind, checkpoints and a tree head set over those logs. Everything goes through the
// public sync/ API only, so the targets keep building when the formats grow. Built once per
// process (world()); read-only afterwards.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/crypto/noise.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/merkle.h"
#include "outpost/sync/op.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rules.h"

namespace outpost::fuzz {

using sync::Bytes;
using sync::ByteView;

// A broken invariant is a finding: print it and abort, so libFuzzer saves the input.
#define FUZZ_CHECK(expr)                                                                      \
  do {                                                                                        \
    if (!(expr)) {                                                                            \
      std::fprintf(stderr, "fuzz invariant broken: %s (%s:%d)\n", #expr, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

inline constexpr std::uint64_t kNowMs = 1'800'000'000'000;

template <std::size_t N>
std::array<std::uint8_t, N> run_from(std::uint8_t first) {
  std::array<std::uint8_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(first + i);
  return a;
}

inline ByteView view(const std::string& s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

struct WorldNode {
  std::string name;
  sync::NodeRole role = sync::NodeRole::kStore;
  std::unique_ptr<crypto::SigningKey> key;
  sync::NodeId id{};
  sync::SignedCertificate certificate;
  std::vector<sync::SignedOp> log;  // seq 1..n, chained
};

struct World {
  std::unique_ptr<crypto::SigningKey> root;
  sync::NetworkId network = run_from<16>(0x10);
  std::vector<WorldNode> nodes;  // [0] HQ, [1..3] stores
  sync::SignedRoster roster;     // v1: every node
  sync::SignedRoster roster_v2;  // v2: revokes the last store after its seq 2
  sync::SignedRules rules;
  std::vector<sync::SignedCheckpoint> checkpoints;  // one per node, at its head
  sync::SignedTreeHeadSet tree_heads;               // v1 over every log

  World() {
    if (!crypto::init().is_ok()) std::abort();
    root = key_from(0x01);
    const char* names[] = {"hq", "store-a", "store-b", "store-c"};
    sync::Roster r;
    r.network_id = network;
    r.version = 1;
    r.issued = {kNowMs, 0};
    for (std::uint8_t i = 0; i < 4; ++i) {
      nodes.push_back(make_node(names[i], i == 0 ? sync::NodeRole::kHq : sync::NodeRole::kStore,
                                static_cast<std::uint8_t>(0x40 + 0x20 * i)));
      FUZZ_CHECK(r.put_certificate(nodes.back().certificate).is_ok());
    }
    roster = sync::sign_roster(r, *root);
    r.version = 2;
    FUZZ_CHECK(r.add_revocation({nodes[3].id, 2}).is_ok());
    roster_v2 = sync::sign_roster(r, *root);
    rules = sync::sign_rules(sync::default_rules(), network, kNowMs, *root);
    for (std::size_t i = 0; i < nodes.size(); ++i) write_log(i);
    sign_heads();
  }

  static std::unique_ptr<crypto::SigningKey> key_from(std::uint8_t seed) {
    auto k = crypto::SigningKey::from_seed(run_from<32>(seed));
    FUZZ_CHECK(k.is_ok());
    return std::make_unique<crypto::SigningKey>(std::move(k).value());
  }

  WorldNode make_node(const char* name, sync::NodeRole role, std::uint8_t seed) {
    WorldNode n;
    n.name = name;
    n.role = role;
    n.key = key_from(static_cast<std::uint8_t>(seed + 1));
    n.id = run_from<16>(seed);
    auto noise = crypto::X25519KeyPair::from_private(run_from<32>(seed));
    FUZZ_CHECK(noise.is_ok());
    sync::Certificate c;
    c.network_id = network;
    c.node_id = n.id;
    c.role = role;
    c.signing_key = n.key->public_key();
    c.noise_key = noise->public_key();
    c.valid_from_ms = kNowMs - 1000;
    c.valid_until_ms = kNowMs + 365ULL * 86'400'000;
    c.name = name;
    n.certificate = sync::sign_certificate(c, *root);
    return n;
  }

  // The member every op of node `i` is about.
  static sync::MemberId member_of(std::size_t i) {
    return run_from<16>(static_cast<std::uint8_t>(0xa0 + i));
  }

  void append(WorldNode& n, sync::Op op) {
    op.origin = n.id;
    op.seq = n.log.size() + 1;
    if (!n.log.empty()) op.prev = n.log.back().hash;
    op.hlc = {kNowMs + op.seq * 1000, static_cast<std::uint32_t>(op.seq % 3)};
    n.log.push_back(sync::sign_op(op, *n.key));
  }

  // Every op kind, in an order the ledger would accept: enroll, profile, topup, earn, spend,
  // redeem, reverse of the topup, and a move of wallet rights to the next node.
  void write_log(std::size_t i) {
    WorldNode& n = nodes[i];
    const sync::MemberId m = member_of(i);
    sync::Op op;
    op.member = m;
    op.kind = sync::OpKind::kEnroll;
    op.request_id = "req-" + n.name + "-1";
    op.fields = {{sync::Field::kCard, "4000000" + std::to_string(10 + i)},
                 {sync::Field::kName, "Ann Lee"},
                 {sync::Field::kPhone, "+15550100"}};
    append(n, op);
    op = {};
    op.member = m;
    op.kind = sync::OpKind::kProfile;
    op.fields = {{sync::Field::kBirthday, "1990-04-01"}, {sync::Field::kStatus, "active"}};
    append(n, op);
    auto money = [&](sync::OpKind kind, sync::Account account, std::uint64_t amount,
                     std::uint64_t spend_minor) {
      sync::Op o;
      o.member = m;
      o.kind = kind;
      o.account = account;
      o.amount = amount;
      o.spend_minor = spend_minor;
      o.request_id = "req-" + n.name + "-" + std::to_string(n.log.size() + 1);
      o.receipt = "R-" + std::to_string(n.log.size() + 1);
      append(n, o);
    };
    money(sync::OpKind::kTopup, sync::Account::kWallet, 5000, 0);
    const std::uint64_t topup_seq = n.log.size();
    money(sync::OpKind::kEarn, sync::Account::kPoints, 123, 12345);
    money(sync::OpKind::kSpend, sync::Account::kWallet, 700, 0);
    money(sync::OpKind::kRedeem, sync::Account::kPoints, 10, 0);
    op = {};
    op.member = m;
    op.kind = sync::OpKind::kReverse;
    op.account = sync::Account::kWallet;
    op.amount = 5000;
    op.ref_origin = n.id;
    op.ref_seq = topup_seq;
    op.ref_kind = sync::OpKind::kTopup;
    append(n, op);
    op = {};
    op.member = m;
    op.kind = sync::OpKind::kMove;
    op.account = sync::Account::kWallet;
    op.amount = 100;
    op.target = nodes[(i + 1) % nodes.size()].id;
    append(n, op);
  }

  static std::vector<sync::Hash32> leaves_of(const WorldNode& n) {
    std::vector<sync::Hash32> leaves;
    for (const auto& op : n.log)
      leaves.push_back(sync::merkle_op_leaf_hash(op.signed_bytes, op.sig));
    return leaves;
  }

  void sign_heads() {
    sync::TreeHeadSet set;
    set.network_id = network;
    set.version = 1;
    set.issued = {kNowMs + 60'000, 0};
    set.roster_version = 1;
    for (const WorldNode& n : nodes) {
      const auto leaves = leaves_of(n);
      sync::Checkpoint cp;
      cp.network_id = network;
      cp.origin = n.id;
      cp.tree_size = leaves.size();
      cp.root = sync::merkle_root(leaves);
      cp.head_hash = n.log.back().hash;
      cp.issued = set.issued;
      checkpoints.push_back(sync::sign_checkpoint(cp, *root));
      set.heads.push_back({n.id, cp.tree_size, cp.root, cp.head_hash});
    }
    tree_heads = sync::sign_tree_head_set(set, *root);
  }

  // The signed roster's key of `origin`, or nullptr for a node the world does not know.
  const WorldNode* find(const sync::NodeId& origin) const {
    for (const auto& n : nodes) {
      if (n.id == origin) return &n;
    }
    return nullptr;
  }
};

inline const World& world() {
  static const World* w = new World();
  return *w;
}

}  // namespace outpost::fuzz
