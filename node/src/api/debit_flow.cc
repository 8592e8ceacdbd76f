// The state machine of one spend or redeem (outpost/node/debit_flow.h).
#include "outpost/node/debit_flow.h"

#include <utility>

namespace outpost::node {

DebitFlow::Step DebitFlow::start() {
  state_ = State::kWorker;
  return Step{};
}

DebitFlow::Step DebitFlow::answer(Outcome outcome, bool alert) {
  state_ = State::kAnswered;
  Step s;
  s.what = Step::Do::kAnswer;
  s.answer = std::move(outcome);
  s.alert = alert;
  return s;
}

std::optional<DebitFlow::Step> DebitFlow::on_gate(const Ledger::PinGate& gate) {
  OUTPOST_CHECK(state_ == State::kWorker);
  switch (gate.kind) {
    case Ledger::PinGate::Kind::kPass:
      return std::nullopt;
    case Ledger::PinGate::Kind::kRefuse:
      return answer(Outcome::refuse(gate.refusal), false);
    case Ledger::PinGate::Kind::kVerify:
      break;
  }
  // Each check is against the member's PIN hash of the moment; a PIN that keeps changing while
  // it is checked ends the attempt instead of looping.
  if (pin_checks_ >= static_cast<int>(limits::kPinCheckAttemptsMax)) {
    state_ = State::kAnswered;
    Step s;
    s.what = Step::Do::kPinKeptChanging;
    return s;
  }
  state_ = State::kCheckPin;
  pin_hash_ = gate.hash;
  Step s;
  s.what = Step::Do::kCheckPin;
  s.pin_hash = gate.hash;
  return s;
}

DebitFlow::Step DebitFlow::on_pin_checked(bool match) {
  OUTPOST_CHECK(state_ == State::kCheckPin);
  verdict_ = Ledger::PinVerdict{pin_hash_, match};
  pin_checks_++;
  state_ = State::kWorker;
  return Step{};
}

DebitFlow::Step DebitFlow::on_debit(Outcome outcome) {
  OUTPOST_CHECK(state_ == State::kWorker);
  if (!outcome.short_of_rights()) return answer(std::move(outcome), false);
  if (has_broker_ && !broker_asked_ && outcome.refusal.rights) {
    broker_asked_ = true;
    state_ = State::kAskBroker;
    Step s;
    s.what = Step::Do::kAskBroker;
    s.shortfall = *outcome.refusal.rights;
    refused_for_rights_ = std::move(outcome.refusal);
    return s;
  }
  // The final answer is a refusal for lack of rights here: no broker, or after its attempt.
  if (broker_asked_ && outcome.refusal.rights) outcome.refusal.rights->request_tried = true;
  return answer(std::move(outcome), true);
}

DebitFlow::Step DebitFlow::on_broker(bool tried, bool granted) {
  OUTPOST_CHECK(state_ == State::kAskBroker && refused_for_rights_.has_value());
  if (granted) {
    state_ = State::kWorker;
    return Step{};
  }
  Refusal r = std::move(*refused_for_rights_);
  refused_for_rights_.reset();
  r.rights->request_tried = tried;
  return answer(Outcome::refuse(std::move(r)), true);
}

}  // namespace outpost::node
