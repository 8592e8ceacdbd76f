// The node's side of the rights broker (sync/broker.h, docs/sync-protocol.md "Rights broker"):
// what a driver does with the broker's actions and the session events it feeds it. The daemon's
// driver (node/src/replication/peers_broker.cc, over Asio and the ledger worker) and the
// simulator (tests/sim, over its own network) both use these, so the broker they run is driven
// the same way. Not thread-safe: call on the thread that owns the ledger.
#pragma once

#include <cstdint>
#include <optional>

#include "outpost/node/ledger.h"
#include "outpost/sync/broker.h"
#include "outpost/sync/session.h"

namespace outpost::node {

// The rights of `member`'s `account` by node as `ledger` sees them (empty for an unknown member
// or a read error: nobody to ask but HQ).
sync::RightsView rights_view(Ledger& ledger, const sync::MemberId& member, sync::Account account);

// What the ledger did for one sync::GrantRights.
struct GrantOutcome {
  std::uint64_t granted = 0;  // moved to g.to with a move op (0 when nothing could be)
  sync::RightsView view;      // the member's rights by node after the grant, when g.want_view
};
// Carries out GrantRights on the ledger: moves min(amount, rights held here) with a move op.
// The outcome is what RightsBroker::on_granted takes once the op is durable.
GrantOutcome carry_out_grant(Ledger& ledger, const sync::GrantRights& g);

// Feeds the broker a session event of link `link` that concerns it (a RIGHTS_REQUEST or a
// RIGHTS_REPLY the session reported). Returns the broker's output, or nothing for other events
// (a HELLO is the driver's to report with link_up, once it knows the peer's role).
std::optional<sync::BrokerOutput> broker_on_session_event(sync::RightsBroker& broker,
                                                          sync::BrokerLinkId link,
                                                          const sync::SessionEvent& ev,
                                                          std::uint64_t now_ms);

// Calls the handler of each of `out`'s actions, in order: request(const SendRightsRequest&),
// reply(const SendRightsReply&), grant(const GrantRights&), done(const RightsDone&).
template <class Request, class Reply, class Grant, class Done>
void for_each_broker_action(const sync::BrokerOutput& out, Request&& request, Reply&& reply,
                            Grant&& grant, Done&& done) {
  for (const auto& action : out.actions) {
    if (const auto* s = std::get_if<sync::SendRightsRequest>(&action)) {
      request(*s);
    } else if (const auto* r = std::get_if<sync::SendRightsReply>(&action)) {
      reply(*r);
    } else if (const auto* g = std::get_if<sync::GrantRights>(&action)) {
      grant(*g);
    } else if (const auto* d = std::get_if<sync::RightsDone>(&action)) {
      done(*d);
    }
  }
}

}  // namespace outpost::node
