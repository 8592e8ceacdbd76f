// Ledger's member PINs (outpost/node/ledger.h; the files of Ledger are listed in
// ledger_internal.h): setting a PIN, the clearance a spend or PIN change needs, the PIN gate with
// its Argon2id check off the ledger's thread, and the failures and lockout counted chain-wide.
#include "ledger_internal.h"
#include "outpost/node/ledger.h"
#include "outpost/sync/member_rules.h"

namespace outpost::node {

using ledger_internal::rule_refusal;
using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::Op;
using sync::OpKind;

Result<Outcome> Ledger::set_pin(const std::string& request_id, const MemberId& member,
                                const std::string& pin, const PinClearance* authority) {
  OUTPOST_RETURN_IF_ERROR(validate_pin(pin));
  OUTPOST_ASSIGN_OR_RETURN(std::string hash, crypto::hash_pin(pin));
  return set_pin_hash(request_id, member, hash, authority);
}

Result<Outcome> Ledger::set_pin_hash(const std::string& request_id, const MemberId& member,
                                     const std::string& pin_hash, const PinClearance* authority) {
  if (pin_hash.empty() || pin_hash.size() > limits::kFieldValueBytesMax)
    return Status::invalid("bad PIN hash");
  Op op;
  op.kind = OpKind::kProfile;
  op.member = member;
  op.fields = {{Field::kPinHash, pin_hash}};
  return execute(request_id, op, true,
                 [authority](Op& o, const MemberState* m) -> Result<std::optional<Refusal>> {
                   return pin_cleared(*m, o, authority,
                                      "changing this member's PIN needs the old PIN or an admin");
                 });
}

Ledger::PinClearance Ledger::pin_override(const MemberId& member, const std::string& note) {
  PinClearance c;
  c.member_ = member;
  c.note_ = note.empty() ? "pin-override" : note;
  return c;
}

Result<std::optional<Refusal>> Ledger::pin_cleared(const MemberState& m, Op& o,
                                                   const PinClearance* pin, const char* needed) {
  const std::string hash = m.field(Field::kPinHash);
  if (hash.empty()) return std::optional<Refusal>();  // no PIN to pass
  auto refuse = [](const std::string& message) {
    return std::optional<Refusal>(
        Refusal{RefusalReason::kPinWrong, message, std::nullopt, std::nullopt, std::nullopt});
  };
  if (pin == nullptr || pin->member_ != o.member) return refuse(needed);
  if (!pin->note_.empty()) {
    // An operator's override: the receipt says so, for auditors.
    std::string receipt = o.receipt.empty() ? pin->note_ : o.receipt + " | " + pin->note_;
    if (receipt.size() > limits::kReceiptBytesMax) {
      return Status::invalid("receipt and PIN override note are longer than " +
                             std::to_string(limits::kReceiptBytesMax) + " bytes together");
    }
    o.receipt = std::move(receipt);
    return std::optional<Refusal>();
  }
  if (pin->hash_ != hash) return refuse("the member's PIN was changed meanwhile; give the new PIN");
  return std::optional<Refusal>();
}

Status Ledger::record_pin_failure(const MemberId& member) {
  Op op;
  op.kind = OpKind::kPinFailure;
  op.member = member;
  auto no_check = [](Op&, const MemberState*) -> Result<std::optional<Refusal>> {
    return std::optional<Refusal>();
  };
  OUTPOST_ASSIGN_OR_RETURN(Outcome r,
                           execute("pin-failure-" + new_request_id(), op, true, no_check));
  (void)r;
  return Status::ok();
}

Status Ledger::reset_pin_failures(const MemberId& member) {
  Op op;
  op.kind = OpKind::kProfile;
  op.member = member;
  op.fields = {{Field::kPinReset, sync::id_hex(node_id_)}};
  auto no_check = [](Op&, const MemberState*) -> Result<std::optional<Refusal>> {
    return std::optional<Refusal>();
  };
  OUTPOST_ASSIGN_OR_RETURN(Outcome r, execute("pin-reset-" + new_request_id(), op, true, no_check));
  (void)r;
  return Status::ok();
}

Result<Ledger::PinGate> Ledger::check_pin(const MemberId& member, OpKind purpose,
                                          const std::string* pin, std::uint64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(PinGate gate,
                           pin_gate(member, purpose, pin != nullptr, nullptr, now_ms));
  if (gate.kind == PinGate::Kind::kVerify) {
    const PinVerdict verdict{gate.hash, crypto::verify_pin(gate.hash, *pin)};
    OUTPOST_ASSIGN_OR_RETURN(gate, pin_gate(member, purpose, true, &verdict, now_ms));
  }
  // Invariant: with a verdict for the hash just read, the gate decides.
  OUTPOST_CHECK(gate.kind != PinGate::Kind::kVerify);
  return gate;
}

namespace {
std::string minutes_until(std::uint64_t until_ms, std::uint64_t now_ms) {
  return std::to_string((until_ms - now_ms + 59'999) / 60'000) + " min";
}
}  // namespace

Result<Ledger::PinGate> Ledger::pin_gate(const MemberId& member, OpKind purpose, bool pin_given,
                                         const PinVerdict* verdict, std::uint64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
  if (!m || !m->fields.count(Field::kCard))
    return Status::not_found("unknown member " + sync::id_hex(member));
  PinGate gate;
  auto refuse = [&](RefusalReason reason, const std::string& msg) {
    gate.kind = PinGate::Kind::kRefuse;
    gate.refusal = Refusal{reason, msg, std::nullopt, std::nullopt, std::nullopt};
    return gate;
  };
  if (purpose == OpKind::kSpend) {
    Op spend;
    spend.kind = OpKind::kSpend;
    spend.member = member;
    if (auto no = sync::status_refusal(*m, spend)) {
      gate.kind = PinGate::Kind::kRefuse;
      gate.refusal = rule_refusal(*no);
      return gate;
    }
  }
  const std::string hash = m->field(Field::kPinHash);
  gate.clearance.member_ = member;
  gate.clearance.hash_ = hash;
  if (hash.empty()) return gate;  // no PIN: pass
  const sync::PinLock lock = sync::pin_lock(*m, now_ms);
  if (lock.locked()) {
    refuse(RefusalReason::kPinLocked,
           "wallet spends and PIN changes are locked after " + std::to_string(kPinFailuresMax) +
               " wrong PINs; try again in " + minutes_until(lock.locked_until_ms, now_ms));
    gate.refusal.locked_until_ms = lock.locked_until_ms;
    return gate;
  }
  if (!pin_given) {
    return refuse(RefusalReason::kPinWrong, purpose == OpKind::kSpend
                                                ? "this member's wallet needs a PIN"
                                                : "changing this member's PIN needs the old PIN");
  }
  if (verdict == nullptr || verdict->hash != hash) {
    gate.kind = PinGate::Kind::kVerify;
    gate.hash = hash;
    return gate;
  }
  if (verdict->match) {
    if (lock.failures != 0) OUTPOST_RETURN_IF_ERROR(reset_pin_failures(member));
    return gate;  // pass
  }
  OUTPOST_RETURN_IF_ERROR(record_pin_failure(member));
  OUTPOST_ASSIGN_OR_RETURN(m, store_->load_member(member));
  const sync::PinLock after = sync::pin_lock(*m, now_ms);
  if (after.locked()) {
    refuse(RefusalReason::kPinLocked,
           "wrong PIN; wallet spends and PIN changes are now locked for " +
               minutes_until(after.locked_until_ms, now_ms));
    gate.refusal.locked_until_ms = after.locked_until_ms;
    return gate;
  }
  return refuse(RefusalReason::kPinWrong,
                "wrong PIN (" + std::to_string(kPinFailuresMax - static_cast<int>(after.failures)) +
                    " tries left)");
}

}  // namespace outpost::node
