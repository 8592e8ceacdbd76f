// What the ledger's read-only queries answer (outpost/node/ledger.h), as types. The API and the
// CLI write them as the bodies of docs/api.md and docs/admin-api.md through
// outpost/node/schema.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "outpost/node/outcome.h"
#include "outpost/sync/op.h"

namespace outpost::node {

// One member as the POS and admin APIs show it.
struct MemberView {
  sync::MemberId id{};
  std::string card, name, phone, birthday, home_store, status;
  bool pin_set = false;
  std::uint64_t pin_failures = 0;
  std::uint64_t pin_locked_until_ms = 0;
  std::string tier;
  std::uint64_t rolling_spend_minor = 0;
  std::uint64_t visits = 0;
  AccountView points;
  AccountView wallet;
};

// One op of a member's history, and the op that reversed it, if any.
struct HistoryEntry {
  sync::SignedOp op;
  std::optional<std::uint64_t> reversed_by;  // seq of the reversal, at the op's origin
};

// The seq fence (Ledger::check_fence).
struct FenceState {
  bool fenced = false;
  bool awaiting_peer = false;
  std::uint64_t own_seq = 0;
  std::uint64_t own_seq_floor = 0;
  std::string reason;  // empty unless fenced
};

// GET /v1/status: who this node is and what it holds.
struct NodeStatus {
  sync::NodeId node_id{};
  std::string name;
  std::string role;
  crypto::PublicKey signing_public_key{};
  std::map<sync::NodeId, std::uint64_t> version_vector;
  std::uint64_t ops = 0;
  int schema_version = 0;
  std::uint64_t rules_version = 0;
  std::string rules_source;
  FenceState seq_fence;
};

}  // namespace outpost::node
