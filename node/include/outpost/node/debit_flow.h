// DebitFlow: one spend or redeem of the POS API (docs/api.md) as an explicit state machine, one
// per request. It decides; the Api drives it (docs/architecture.md, "The POS request path"):
//
//   kWorker --gate: kVerify--> kCheckPin --verdict--> kWorker   (PIN checked on the PIN thread)
//   kWorker --gate: kRefuse--> answered (pin_wrong 403, pin_locked 423, member status 409)
//   kWorker --debit made--> answered (200)
//   kWorker --refused for rights here, broker, not asked yet--> kAskBroker
//   kAskBroker --granted--> kWorker (the debit once more)   --not granted--> answered (409)
//   kWorker --refused otherwise--> answered (409; for rights: with rights_request_tried and a
//                                  refused_spend alert)
//
// On the worker the PIN gate (a spend of a new request_id) and the debit run in one pass, so the
// clearance the gate gives is used in the same transaction. The machine holds no ledger, thread
// or socket: the unit tests drive it with outcomes directly.
#pragma once

#include <optional>
#include <string>

#include "outpost/base/limits.h"
#include "outpost/node/ledger.h"
#include "outpost/node/outcome.h"

namespace outpost::node {

class DebitFlow {
 public:
  enum class State {
    kWorker,     // next: a pass on the ledger worker (PIN gate, then the debit)
    kCheckPin,   // next: the PIN checked against pin_hash() on the PIN thread
    kAskBroker,  // next: the rights broker asked for the shortfall
    kAnswered,   // done: the answer was given
  };
  // What the driver does next.
  struct Step {
    enum class Do {
      kRunOnWorker,      // run the PIN gate (with verdict()) and the debit on the worker
      kCheckPin,         // check the PIN against `pin_hash` on the PIN thread
      kAskBroker,        // ask the rights broker for `shortfall`
      kAnswer,           // answer `answer`; when `alert`, raise a refused_spend alert
      kPinKeptChanging,  // answer 503 pin_changed: the PIN changed at every check
    };
    Do what = Do::kRunOnWorker;
    std::string pin_hash;
    RightsShortfall shortfall;
    Outcome answer;
    bool alert = false;
  };

  // `spend`: a wallet spend (a member with a PIN passes the PIN gate); otherwise a redeem.
  // `has_broker`: a refusal for lack of rights here may be helped by the rights broker.
  DebitFlow(bool spend, bool has_broker) : spend_(spend), has_broker_(has_broker) {}

  State state() const { return state_; }
  bool spend() const { return spend_; }
  // The verdict of the last PIN check, for the gate of the next worker pass.
  const std::optional<Ledger::PinVerdict>& verdict() const { return verdict_; }
  const std::string& pin_hash() const { return pin_hash_; }
  int pin_checks() const { return pin_checks_; }
  bool broker_asked() const { return broker_asked_; }

  // The first step: a pass on the worker.
  Step start();
  // On the worker, the PIN gate's decision: nullopt to go on to the debit in this pass
  // (kPass), else the step (the refusal answered, or the PIN checked first).
  std::optional<Step> on_gate(const Ledger::PinGate& gate);
  // On the worker, the debit's outcome.
  Step on_debit(Outcome outcome);
  // On the PIN thread: whether the PIN matched pin_hash().
  Step on_pin_checked(bool match);
  // The rights broker's answer (`tried`: a request went out; `granted`: rights arrived here).
  Step on_broker(bool tried, bool granted);

 private:
  Step answer(Outcome outcome, bool alert);

  bool spend_;
  bool has_broker_;
  State state_ = State::kWorker;
  std::optional<Ledger::PinVerdict> verdict_;
  std::string pin_hash_;
  int pin_checks_ = 0;  // bounded by limits::kPinCheckAttemptsMax
  bool broker_asked_ = false;
  std::optional<Refusal> refused_for_rights_;  // while the broker is asked
};

}  // namespace outpost::node
