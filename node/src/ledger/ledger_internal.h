// Helpers shared by the files that implement Ledger (outpost/node/ledger.h); private to
// node/src/ledger/. Ledger is one class split by responsibility over these files:
//   ledger.cc           opening and creating a data dir, the HQ-signed documents in force
//                       (roster, program rules, tree head sets), the group-commit batch, alerts
//   ledger_requests.cc  the mutating requests: the request_id rule, op building and signing
//                       (execute), each member operation, rights moves for the broker and the
//                       rebalancer, terminals
//   ledger_pin.cc       member PINs: setting one, the PIN gate of a spend, failures and lockout
//   ledger_ingest.cc    ops received from peers (the log rule per op, evidence) and the seq fence
//   ledger_queries.cc   read-only answers (members, history, status, rules) and `log verify`
// Not thread-safe, as Ledger.
#pragma once

#include <string>

#include "outpost/node/ledger.h"
#include "outpost/sync/rule_book.h"

namespace outpost::node::ledger_internal {

// Meta keys of the seq fence (Ledger::check_fence), read at open and written by the fence.
inline constexpr const char* kMetaAwaitingPeer = "restored_awaiting_peer";
inline constexpr const char* kMetaOwnSeqFloor = "own_seq_floor";

// Parses the stored HLC ("wall_ms.logical"); kCorruption when it is damaged.
inline Result<sync::Hlc> parse_hlc(const std::string& s) {
  auto dot = s.find('.');
  if (dot == std::string::npos) return Status::corruption("bad stored hlc");
  try {
    return sync::Hlc{std::stoull(s.substr(0, dot)),
                     static_cast<std::uint32_t>(std::stoul(s.substr(dot + 1)))};
  } catch (...) {
    return Status::corruption("bad stored hlc");
  }
}

// An account's balance, the rights held here and where every node's rights sit.
inline AccountView account_view(const sync::EscrowCounter& c, const sync::NodeId& here) {
  return AccountView{c.value(), c.rights(here), c.rights_by_node()};
}

// A refusal by a member rule (sync/rule_book.h, sync/member_rules.h). The rule book names its
// refusals by their wire code; an unknown code is a bug of this node, not an input error.
inline Refusal rule_refusal(const sync::RuleRefusal& r) {
  std::optional<RefusalReason> reason = refusal_reason(r.code);
  OUTPOST_CHECK(reason.has_value());
  return Refusal{*reason, r.message, std::nullopt, std::nullopt, std::nullopt};
}

// What this ledger knows of `origin` for the log rule: its key and revocation cut-off.
inline sync::OriginTrust trust_in(const Ledger& ledger, const sync::NodeId& origin) {
  sync::OriginTrust trust;
  trust.key = ledger.origin_key(origin);
  if (const auto& roster = ledger.roster()) {
    if (const sync::Revocation* rev = roster->revocation(origin)) trust.cutoff = rev->after_seq;
  }
  return trust;
}

}  // namespace outpost::node::ledger_internal
