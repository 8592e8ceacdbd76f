// The node's side of the rights broker, shared by the daemon and the simulator
// (outpost/node/broker_driver.h).
#include "outpost/node/broker_driver.h"

namespace outpost::node {

sync::RightsView rights_view(Ledger& ledger, const sync::MemberId& member, sync::Account account) {
  auto m = ledger.store().load_member(member);
  if (!m.is_ok() || !*m) return {};
  return (*m)->counter(account).rights_by_node();
}

GrantOutcome carry_out_grant(Ledger& ledger, const sync::GrantRights& g) {
  GrantOutcome outcome;
  auto moved = ledger.grant_rights(g.to, g.member, g.account, g.amount);
  outcome.granted = moved.is_ok() ? *moved : 0;
  if (g.want_view) outcome.view = rights_view(ledger, g.member, g.account);
  return outcome;
}

std::optional<sync::BrokerOutput> broker_on_session_event(sync::RightsBroker& broker,
                                                          sync::BrokerLinkId link,
                                                          const sync::SessionEvent& ev,
                                                          std::uint64_t now_ms) {
  switch (ev.kind) {
    case sync::SessionEvent::Kind::kRightsReply:
      return broker.on_reply(link, ev.reply, now_ms);
    case sync::SessionEvent::Kind::kRightsRequest:
      return broker.on_request(link, ev.request, now_ms);
    default:
      return std::nullopt;
  }
}

}  // namespace outpost::node
