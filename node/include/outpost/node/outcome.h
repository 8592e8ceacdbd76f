// Outcome: what a mutating ledger request (outpost/node/ledger.h) answers, as types. A refusal by
// a business rule is an answer, not an error (errors are Status). The ledger builds no JSON: the
// HTTP API and the CLI turn an Outcome into the bodies of docs/api.md through
// outpost/node/schema.h, and the status code from the refusal's reason (api.h outcome_response).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "outpost/crypto/crypto.h"
#include "outpost/sync/broker.h"
#include "outpost/sync/op.h"

namespace outpost::node {

// Why a request was refused (the `error` code of a refusal in docs/api.md).
enum class RefusalReason {
  kCardInUse,           // card_in_use: enrolling a card another member holds
  kNotOrigin,           // not_origin: reversing an op made at another node
  kAlreadyReversed,     // already_reversed
  kInsufficientRights,  // insufficient_rights: the rights held here do not cover the debit
  kMemberBlocked,       // member_blocked
  kMemberClosed,        // member_closed
  kWalletNotEmpty,      // wallet_not_empty: closing a member with a wallet balance
  kPinWrong,            // pin_wrong: no PIN, a wrong one, or one that changed meanwhile
  kPinLocked,           // pin_locked: too many wrong PINs
};
// The wire code of `reason` ("insufficient_rights", ...).
const char* refusal_code(RefusalReason reason);
// The reason of a wire code; nullopt for a code no refusal has.
std::optional<RefusalReason> refusal_reason(std::string_view code);

// A spend or redeem refused for lack of rights here: how much is missing and where the rest
// sits, seen from this node. The rights broker asks the holders in `elsewhere`.
struct RightsShortfall {
  sync::MemberId member{};
  sync::Account account = sync::Account::kNone;
  std::uint64_t requested = 0;
  std::int64_t balance = 0;       // the account's value
  std::uint64_t rights_here = 0;  // 0 when negative
  std::uint64_t shortfall = 0;    // requested - rights_here
  sync::RightsView elsewhere;     // the other nodes' non-zero rights
  bool request_tried = false;     // the rights broker was asked before the refusal was final
};

struct Refusal {
  RefusalReason reason = RefusalReason::kPinWrong;
  std::string message;  // for people
  // Details of some reasons, shown in the body (docs/api.md):
  std::optional<RightsShortfall> rights;         // insufficient_rights of a spend or redeem
  std::optional<std::int64_t> balance;           // wallet_not_empty: the wallet's balance
  std::optional<std::uint64_t> locked_until_ms;  // pin_locked
};

// An account after an op: its balance, the rights held here and every node's rights.
struct AccountView {
  std::int64_t balance = 0;
  std::int64_t rights_here = 0;
  sync::RightsView rights_by_node;
};

// A request that made an op. Stored as the request's first answer (schema::done_json), so a
// repeated request_id gets it again.
struct Done {
  sync::NodeId origin{};
  std::uint64_t seq = 0;
  sync::OpKind kind = sync::OpKind::kEnroll;
  sync::MemberId member{};
  std::optional<std::uint64_t> amount;          // ops that move value
  std::optional<std::uint64_t> purchase_minor;  // earn
  // The member's accounts after the op; absent in an answer recovered from a peer after a
  // restore (the balances of that moment are gone with the lost copy).
  std::optional<AccountView> points;
  std::optional<AccountView> wallet;
  crypto::Hash32 hash{};
  bool recovered_from_peer = false;
};

// The answer to one mutating request: `done` when not `refused`, else `refusal`.
struct Outcome {
  bool refused = false;
  bool replayed = false;  // answered from the first execution of this request_id
  Done done;              // when !refused
  Refusal refusal;        // when refused

  static Outcome made(Done d) {
    Outcome o;
    o.done = std::move(d);
    return o;
  }
  static Outcome refuse(Refusal r) {
    Outcome o;
    o.refused = true;
    o.refusal = std::move(r);
    return o;
  }
  static Outcome refuse(RefusalReason reason, std::string message) {
    return refuse(Refusal{reason, std::move(message), std::nullopt, std::nullopt, std::nullopt});
  }
  // True for a refusal for lack of rights here (the rights broker may help).
  bool short_of_rights() const {
    return refused && refusal.reason == RefusalReason::kInsufficientRights;
  }
};

}  // namespace outpost::node
