// The rights broker's policy, written once (docs/sync-protocol.md, "Rights broker").
#include "outpost/sync/broker.h"

#include <algorithm>
#include <cassert>
#include <set>

namespace outpost::sync {

namespace {

bool holds(const RightsView& view, const NodeId& node) {
  auto it = view.find(node);
  return it != view.end() && it->second > 0;
}

constexpr const char* kNothingHere = "no rights available at this node";

}  // namespace

const char* rights_end_name(RightsEnd end) {
  switch (end) {
    case RightsEnd::kGranted:
      return "granted";
    case RightsEnd::kAskedAll:
      return "asked_all";
    case RightsEnd::kDeadline:
      return "deadline";
    case RightsEnd::kNobodyToAsk:
      return "nobody_to_ask";
    case RightsEnd::kBusy:
      return "busy";
  }
  return "unknown";
}

void RightsBroker::link_up(BrokerLinkId link, const NodeId& peer, bool peer_is_hq) {
  // Invariant: a driver reports each link up once, before anything else about it.
  assert(links_.count(link) == 0);
  Link l;
  l.peer = peer;
  l.hq = peer_is_hq;
  links_[link] = l;
}

BrokerOutput RightsBroker::link_down(BrokerLinkId link, std::uint64_t now_ms) {
  BrokerOutput out;
  if (links_.erase(link) == 0) return out;
  // The peer's requests first: nothing more is asked or moved for them.
  std::vector<std::uint64_t> dropped;
  for (const auto& [id, s] : serving_) {
    if (s.link == link) dropped.push_back(id);
  }
  for (std::uint64_t id : dropped) drop_served(id);
  // Then this node's asks on that link: each request moves on to its next candidate.
  std::vector<std::uint64_t> lost;
  for (const auto& [request_id, ask] : asks_) {
    if (ask.link == link) lost.push_back(request_id);
  }
  for (std::uint64_t request_id : lost) {
    const std::uint64_t attempt = asks_[request_id].attempt;
    asks_.erase(request_id);
    ++stats_.asks_lost_with_link;
    auto it = attempts_.find(attempt);
    if (it == attempts_.end()) continue;
    it->second.asked.reset();
    try_next(attempt, now_ms, out);
  }
  return out;
}

// HQ links first when `hq_first` (HQ holds or can gather rights anywhere in a star), then every
// other link whose peer holds rights in `view`; each node once (a peer may have two links), in
// link order, never `except` (the node a relay gathers for).
std::vector<BrokerLinkId> RightsBroker::candidates(const RightsView& view, bool hq_first,
                                                   const std::optional<NodeId>& except) const {
  std::vector<BrokerLinkId> hq, holders;
  std::set<NodeId> seen;
  for (const auto& [id, l] : links_) {
    if (except && l.peer == *except) continue;
    if (hq_first && l.hq) {
      if (seen.insert(l.peer).second) hq.push_back(id);
    }
  }
  for (const auto& [id, l] : links_) {
    if (except && l.peer == *except) continue;
    if (holds(view, l.peer) && seen.insert(l.peer).second) holders.push_back(id);
  }
  hq.insert(hq.end(), holders.begin(), holders.end());
  return hq;
}

std::uint64_t RightsBroker::request(const MemberId& member, Account account, std::uint64_t amount,
                                    const RightsView& view, std::uint64_t now_ms,
                                    BrokerOutput& out) {
  const std::uint64_t ticket = next_attempt_id_++;
  ++stats_.requests_started;
  if (attempts_.size() >= limits::kBrokerRequestsMax) {
    out.actions.push_back(RightsDone{ticket, 0, RightsEnd::kBusy});
    return ticket;
  }
  Attempt a;
  a.member = member;
  a.account = account;
  a.remaining = amount;
  a.candidates = amount == 0 ? std::vector<BrokerLinkId>{} : candidates(view, true, std::nullopt);
  if (a.candidates.empty()) {
    out.actions.push_back(RightsDone{ticket, 0, RightsEnd::kNobodyToAsk});
    return ticket;
  }
  a.deadline_ms = now_ms + policy_.request_timeout_ms;
  attempts_[ticket] = std::move(a);
  try_next(ticket, now_ms, out);
  return ticket;
}

// Asks the attempt's next live candidate for what is still missing, or ends the attempt.
void RightsBroker::try_next(std::uint64_t attempt_id, std::uint64_t now_ms, BrokerOutput& out) {
  Attempt& a = attempts_.at(attempt_id);
  // Invariant: one ask at a time per attempt.
  assert(!a.asked);
  if (a.remaining == 0) return finish(attempt_id, RightsEnd::kGranted, out);
  if (now_ms >= a.deadline_ms) {
    ++stats_.deadlines;
    return finish(attempt_id, RightsEnd::kDeadline, out);
  }
  while (a.next < a.candidates.size()) {
    const BrokerLinkId link = a.candidates[a.next++];
    auto l = links_.find(link);
    if (l == links_.end()) continue;  // went down since the attempt began
    const std::uint64_t request_id = next_request_id_++;
    asks_[request_id] = Ask{attempt_id, link, l->second.peer};
    a.asked = request_id;
    ++stats_.asks_sent;
    out.actions.push_back(
        SendRightsRequest{link, RightsRequestMsg{request_id, a.member, a.account, a.remaining}});
    return;
  }
  finish(attempt_id, RightsEnd::kAskedAll, out);
}

void RightsBroker::finish(std::uint64_t attempt_id, RightsEnd end, BrokerOutput& out) {
  auto it = attempts_.find(attempt_id);
  Attempt a = std::move(it->second);
  attempts_.erase(it);
  if (a.asked) asks_.erase(*a.asked);
  if (!a.relay_for) {
    out.actions.push_back(RightsDone{attempt_id, a.granted, end});
    return;
  }
  auto s = serving_.find(*a.relay_for);
  if (s == serving_.end()) return;
  s->second.attempt.reset();
  if (a.granted == 0) return answer(s->first, s->second.granted_here, out);
  // Rights arrived here from other holders: pass them on to the requester.
  s->second.stage = Served::Stage::kPassingOn;
  const RightsRequestMsg& rq = s->second.request;
  out.actions.push_back(GrantRights{s->first, s->second.peer, rq.member, rq.account,
                                    rq.amount - s->second.granted_here, false});
}

BrokerOutput RightsBroker::on_reply(BrokerLinkId link, const RightsReplyMsg& reply,
                                    std::uint64_t now_ms) {
  BrokerOutput out;
  auto ask = asks_.find(reply.request_id);
  auto l = links_.find(link);
  // Only the node asked, on the link it was asked on, answers an ask: a reply naming another
  // link's id, a late one (the ask ended) or one for an id never sent changes nothing.
  if (ask == asks_.end() || l == links_.end() || ask->second.link != link ||
      ask->second.peer != l->second.peer) {
    ++stats_.replies_ignored;
    return out;
  }
  const std::uint64_t attempt_id = ask->second.attempt;
  asks_.erase(ask);
  ++stats_.replies_accepted;
  Attempt& a = attempts_.at(attempt_id);
  a.asked.reset();
  // A peer cannot claim more than was asked: the excess is ignored (and the spend is retried
  // against this node's own view anyway, so an inflated claim only costs a retry).
  const std::uint64_t got = std::min(reply.granted, a.remaining);
  a.granted += got;
  a.remaining -= got;
  try_next(attempt_id, now_ms, out);
  return out;
}

BrokerOutput RightsBroker::on_request(BrokerLinkId link, const RightsRequestMsg& rq,
                                      std::uint64_t /*now_ms*/) {
  BrokerOutput out;
  auto l = links_.find(link);
  if (l == links_.end() || rq.request_id <= l->second.last_request_id) {
    ++stats_.requests_ignored;  // not heard from an established link, or a repeated id
    return out;
  }
  l->second.last_request_id = rq.request_id;
  if (rq.amount == 0 || l->second.in_service >= limits::kBrokerServedPerLinkMax) {
    ++stats_.requests_served;
    out.actions.push_back(SendRightsReply{link, RightsReplyMsg{rq.request_id, 0, kNothingHere}});
    return out;
  }
  const std::uint64_t id = next_served_id_++;
  Served s;
  s.link = link;
  s.peer = l->second.peer;
  s.request = rq;
  serving_[id] = s;
  ++l->second.in_service;
  out.actions.push_back(GrantRights{id, s.peer, rq.member, rq.account, rq.amount, policy_.relay});
  return out;
}

BrokerOutput RightsBroker::on_granted(std::uint64_t grant_id, std::uint64_t granted,
                                      const RightsView& view, std::uint64_t now_ms) {
  BrokerOutput out;
  auto it = serving_.find(grant_id);
  if (it == serving_.end() || it->second.stage == Served::Stage::kRelaying) return out;
  Served& s = it->second;
  const std::uint64_t want = s.request.amount - s.granted_here;
  const std::uint64_t got = std::min(granted, want);  // a ledger never moves more than asked
  if (s.stage == Served::Stage::kPassingOn) {
    answer(grant_id, s.granted_here + got, out);
    return out;
  }
  s.granted_here = got;
  if (!policy_.relay || got >= s.request.amount) {
    answer(grant_id, got, out);
    return out;
  }
  // Relay: ask the other holders in this node's view for the rest, never the requester itself.
  Attempt a;
  a.member = s.request.member;
  a.account = s.request.account;
  a.remaining = s.request.amount - got;
  a.candidates = candidates(view, false, s.peer);
  a.relay_for = grant_id;
  if (a.candidates.empty() || attempts_.size() >= limits::kBrokerRequestsMax) {
    answer(grant_id, got, out);
    return out;
  }
  a.deadline_ms = now_ms + policy_.relay_timeout_ms;
  s.stage = Served::Stage::kRelaying;
  ++stats_.relays_started;
  const std::uint64_t attempt_id = next_attempt_id_++;
  s.attempt = attempt_id;
  attempts_[attempt_id] = std::move(a);
  try_next(attempt_id, now_ms, out);
  return out;
}

void RightsBroker::answer(std::uint64_t served_id, std::uint64_t granted, BrokerOutput& out) {
  auto it = serving_.find(served_id);
  const Served& s = it->second;
  ++stats_.requests_served;
  out.actions.push_back(SendRightsReply{
      s.link, RightsReplyMsg{s.request.request_id, granted, granted ? "" : kNothingHere}});
  drop_served(served_id);
}

// Forgets a request in service, with the relay gathering for it (its outstanding ask is
// abandoned: a late reply is ignored, and rights it brought here stay here).
void RightsBroker::drop_served(std::uint64_t served_id) {
  auto it = serving_.find(served_id);
  if (it == serving_.end()) return;
  if (it->second.attempt) {
    auto a = attempts_.find(*it->second.attempt);
    if (a != attempts_.end()) {
      if (a->second.asked) asks_.erase(*a->second.asked);
      attempts_.erase(a);
    }
  }
  auto l = links_.find(it->second.link);
  if (l != links_.end() && l->second.in_service > 0) --l->second.in_service;
  serving_.erase(it);
}

BrokerOutput RightsBroker::advance(std::uint64_t now_ms) {
  BrokerOutput out;
  std::vector<std::uint64_t> due;
  for (const auto& [id, a] : attempts_) {
    if (a.deadline_ms <= now_ms) due.push_back(id);
  }
  for (std::uint64_t id : due) {
    if (attempts_.count(id) == 0) continue;  // ended by an earlier one (a relay's requester)
    ++stats_.deadlines;
    finish(id, RightsEnd::kDeadline, out);
  }
  return out;
}

std::optional<std::uint64_t> RightsBroker::next_deadline_ms() const {
  std::optional<std::uint64_t> next;
  for (const auto& [id, a] : attempts_) {
    if (!next || a.deadline_ms < *next) next = a.deadline_ms;
  }
  return next;
}

}  // namespace outpost::sync
