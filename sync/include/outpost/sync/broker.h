// RightsBroker: the rights broker of one node as a pure state machine (docs/sync-protocol.md,
// "Rights broker"). Events in (a local spend needs rights, a peer asks for rights, a peer
// answers, a ledger grant finished, a link came up or went down, time passed), actions out (send
// this message on that link, ask the ledger to grant rights, report a request as done). It owns
// no socket, thread, clock or database: the daemon drives it over Asio and its ledger worker, the
// tests and the simulator over their own. Not thread-safe: one owner calls it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/sync/op.h"
#include "outpost/sync/protocol.h"

namespace outpost::sync {

// A link as the broker knows it: an id its driver chose (never reused while the link is up),
// bound to the node the link authenticated. Every reply and request is attributed to that node.
using BrokerLinkId = std::uint64_t;

// Rights of one member's account by node, in this node's view (docs/architecture.md, escrow counter). Only
// positive entries count: a node "holds rights" when its entry is above zero.
using RightsView = std::map<NodeId, std::int64_t>;

struct BrokerPolicy {
  // Time a local request may take in all, from the first ask to the last answer.
  std::uint64_t request_timeout_ms = limits::kRightsRequestTimeoutMs;
  // Time this node, relaying a peer's request, spends gathering rights from other holders.
  std::uint64_t relay_timeout_ms = limits::kRightsRelayTimeoutMs;
  // Whether this node relays (HQ): when it holds less than a peer asks, it asks the holders of
  // the rest in its view and moves on what arrives. A store answers with what it holds.
  bool relay = false;
};

// --- actions: what the owner must do ---

// Send RIGHTS_REQUEST on `link` (SyncSession::request_rights).
struct SendRightsRequest {
  BrokerLinkId link = 0;
  RightsRequestMsg msg;
};

// Send RIGHTS_REPLY on `link` after the ops the peer lacks (SyncSession::answer_rights), so that
// the move op the grant made arrives first. The owner sends it only once that op is durable.
struct SendRightsReply {
  BrokerLinkId link = 0;
  RightsReplyMsg msg;
};

// Ask the ledger to move min(amount, rights held here) of `member`'s `account` to `to` with a
// signed move op, and report the amount moved with RightsBroker::on_granted(grant_id, ...), once
// the op is durable (0 when nothing could be moved or the ledger failed). When `want_view`, the
// report also carries the member's rights by node as the ledger sees them after the grant.
struct GrantRights {
  std::uint64_t grant_id = 0;
  NodeId to{};
  MemberId member{};
  Account account = Account::kWallet;
  std::uint64_t amount = 0;
  bool want_view = false;
};

// Why a local request ended.
enum class RightsEnd {
  kGranted,      // the whole amount was granted
  kAskedAll,     // every candidate answered, or its link went down; `granted` may be partial or 0
  kDeadline,     // request_timeout_ms passed first; `granted` is what arrived before
  kNobodyToAsk,  // no live link to HQ or to a holder in this node's view: nothing was sent
  kBusy,         // kBrokerRequestsMax requests were already waiting: nothing was sent
};
const char* rights_end_name(RightsEnd end);

// A local request ended; reported exactly once per ticket. `granted` is what the holders said
// they moved here (at most the amount asked; the rights themselves arrive as move ops, which the
// session delivers before each reply). A partial grant still counts: the spend is retried once
// with whatever arrived, and refused if that is not enough.
struct RightsDone {
  std::uint64_t ticket = 0;
  std::uint64_t granted = 0;
  RightsEnd end = RightsEnd::kNobodyToAsk;
  // Whether any request was sent (the API's `rights_request_tried`).
  bool tried() const { return end != RightsEnd::kNobodyToAsk && end != RightsEnd::kBusy; }
};

using BrokerAction = std::variant<SendRightsRequest, SendRightsReply, GrantRights, RightsDone>;

struct BrokerOutput {
  std::vector<BrokerAction> actions;  // to carry out in order
};

// What the broker counted (for logs, the admin API and the simulator's coverage checks).
struct BrokerStats {
  std::uint64_t requests_started = 0;     // local requests
  std::uint64_t asks_sent = 0;            // RIGHTS_REQUESTs sent (local and relayed)
  std::uint64_t replies_accepted = 0;     // replies that matched an outstanding ask
  std::uint64_t replies_ignored = 0;      // unknown id, late, or from another link than asked
  std::uint64_t requests_served = 0;      // peers' requests answered
  std::uint64_t requests_ignored = 0;     // peers' requests dropped (unknown link, repeated id)
  std::uint64_t relays_started = 0;       // served requests for which this node asked others
  std::uint64_t deadlines = 0;            // requests (local or relayed) ended by their deadline
  std::uint64_t asks_lost_with_link = 0;  // outstanding asks whose link went down
};

class RightsBroker {
 public:
  explicit RightsBroker(BrokerPolicy policy = {}) : policy_(policy) {}

  // --- links ---
  // A link's session is established with `peer` (the node the link authenticated). Only links
  // that are up are asked, and only their requests and replies are heard.
  void link_up(BrokerLinkId link, const NodeId& peer, bool peer_is_hq);
  // A link went down: an ask outstanding on it is abandoned and its request moves on to the next
  // candidate; requests the peer made on it are dropped (nothing more is asked or moved for them,
  // and a grant the ledger is still making is not answered).
  BrokerOutput link_down(BrokerLinkId link, std::uint64_t now_ms);

  // --- requester side ---
  // A local spend or redeem lacks `amount` rights of `member`'s `account` here. Asks HQ first,
  // then the linked peers that hold rights in `view`, one after the other, until the amount is
  // granted, all were asked, or request_timeout_ms passes. Returns the ticket its RightsDone will
  // carry (possibly already in the returned output).
  std::uint64_t request(const MemberId& member, Account account, std::uint64_t amount,
                        const RightsView& view, std::uint64_t now_ms, BrokerOutput& out);
  // A RIGHTS_REPLY arrived on `link`. Counted only if it answers the ask outstanding on that very
  // link under that id; anything else (unknown or expired id, another link) changes nothing.
  BrokerOutput on_reply(BrokerLinkId link, const RightsReplyMsg& reply, std::uint64_t now_ms);

  // --- holder side ---
  // A RIGHTS_REQUEST arrived on `link`: grant what is held here (GrantRights, then the reply once
  // on_granted reports). Request ids from one link must ascend; a repeated or older id changes
  // nothing. Beyond kBrokerServedPerLinkMax requests in service on one link, the answer is 0.
  BrokerOutput on_request(BrokerLinkId link, const RightsRequestMsg& request, std::uint64_t now_ms);
  // The ledger finished GrantRights `grant_id`: `granted` moved (durably), `view` is the member's
  // rights by node if it was asked for. An unknown id (its request was dropped) changes nothing.
  BrokerOutput on_granted(std::uint64_t grant_id, std::uint64_t granted, const RightsView& view,
                          std::uint64_t now_ms);

  // --- time ---
  // Ends every request whose deadline is at or before now_ms.
  BrokerOutput advance(std::uint64_t now_ms);
  // The earliest deadline still pending (call advance() then), or nullopt when nothing waits.
  std::optional<std::uint64_t> next_deadline_ms() const;

  const BrokerStats& stats() const { return stats_; }
  std::size_t requests_waiting() const { return attempts_.size(); }
  std::size_t requests_in_service() const { return serving_.size(); }
  std::size_t links_up() const { return links_.size(); }

 private:
  struct Link {
    NodeId peer{};
    bool hq = false;
    std::uint64_t last_request_id = 0;  // highest RIGHTS_REQUEST id heard on this link
    std::size_t in_service = 0;
  };
  // Rights being gathered from peers: a local request, or a relay for a request in service.
  struct Attempt {
    MemberId member{};
    Account account = Account::kWallet;
    std::uint64_t remaining = 0;
    std::uint64_t granted = 0;
    std::vector<BrokerLinkId> candidates;
    std::size_t next = 0;
    std::uint64_t deadline_ms = 0;
    std::optional<std::uint64_t> asked;      // request id of the outstanding ask
    std::optional<std::uint64_t> relay_for;  // id of the request in service it gathers for
  };
  struct Ask {
    std::uint64_t attempt = 0;
    BrokerLinkId link = 0;
    NodeId peer{};
  };
  // A peer's request this node is serving.
  struct Served {
    enum class Stage { kGranting, kRelaying, kPassingOn };
    BrokerLinkId link = 0;
    NodeId peer{};
    RightsRequestMsg request;
    Stage stage = Stage::kGranting;
    std::uint64_t granted_here = 0;
    std::optional<std::uint64_t> attempt;  // the relay gathering the rest
  };

  std::vector<BrokerLinkId> candidates(const RightsView& view, bool hq_first,
                                       const std::optional<NodeId>& except) const;
  std::uint64_t start_attempt(Attempt a, std::uint64_t now_ms, BrokerOutput& out);
  void try_next(std::uint64_t attempt_id, std::uint64_t now_ms, BrokerOutput& out);
  void finish(std::uint64_t attempt_id, RightsEnd end, BrokerOutput& out);
  void answer(std::uint64_t served_id, std::uint64_t granted, BrokerOutput& out);
  void drop_served(std::uint64_t served_id);

  BrokerPolicy policy_;
  std::map<BrokerLinkId, Link> links_;
  std::map<std::uint64_t, Attempt> attempts_;  // by ticket (local) or internal id (relay)
  std::map<std::uint64_t, Ask> asks_;          // by request id sent
  std::map<std::uint64_t, Served> serving_;    // by id, which is also its GrantRights id
  std::uint64_t next_attempt_id_ = 1;
  std::uint64_t next_request_id_ = 1;
  std::uint64_t next_served_id_ = 1;
  BrokerStats stats_;
};

}  // namespace outpost::sync
