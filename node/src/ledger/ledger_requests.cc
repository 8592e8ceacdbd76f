// Ledger's mutating requests (outpost/node/ledger.h; the files of Ledger are listed in
// ledger_internal.h): the request_id rule, building, signing and appending an op (execute), each
// member operation, the rights moves of the broker and the rebalancer, and terminals.
#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "ledger_internal.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "outpost/sync/member_rules.h"

namespace outpost::node {

using ledger_internal::account_view;
using ledger_internal::parse_hlc;
using ledger_internal::rule_refusal;
using sync::Account;
using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::NodeId;
using sync::Op;
using sync::OpKind;

namespace {

const sync::EscrowCounter& counter_of(const MemberState& m, Account a) {
  return a == Account::kPoints ? m.points : m.wallet;
}

// Refuses `op` when the member's status forbids it (sync::status_refusal).
std::optional<Refusal> status_check(const MemberState& m, const Op& op) {
  auto no = sync::status_refusal(m, op);
  return no ? std::optional<Refusal>(rule_refusal(*no)) : std::nullopt;
}

using Checked = Result<std::optional<Refusal>>;

}  // namespace

Result<bool> Ledger::replay(const std::string& request_id, const Op& asked, Outcome& r) {
  OUTPOST_ASSIGN_OR_RETURN(auto prior, store_->find_request(request_id));
  if (!prior) return false;
  const std::string ref = sync::op_ref_string(prior->origin, prior->seq);
  OUTPOST_ASSIGN_OR_RETURN(auto made, store_->get_op(prior->origin, prior->seq));
  if (!made)
    return Status::corruption("request " + request_id + " names op " + ref + ", which is not held");
  if (!sync::same_request(made->op, asked)) {
    return Status::invalid("request_id '" + request_id +
                           "' was already used for another operation (" +
                           sync::kind_name(made->op.kind) + " " + ref + "); use a new request_id");
  }
  // The stored form of the first answer (schema::done_json), read back as the type it was.
  const schema::Json stored = schema::Json::parse(prior->response, nullptr, false);
  auto done = schema::done_from_json(stored);
  if (!done.is_ok()) {
    return Status::corruption("stored answer for request " + request_id + " is damaged (" +
                              done.status().message() + ")");
  }
  r = Outcome::made(std::move(*done));
  r.replayed = true;
  return true;
}

Result<Outcome> Ledger::execute(const std::string& request_id, Op op, bool member_must_exist,
                                const Check& check) {
  OUTPOST_RETURN_IF_ERROR(validate_request_id(request_id));
  // Either a transaction of our own, or a savepoint inside the open group-commit batch. Both
  // roll back on every early return below.
  std::optional<storage::Transaction> txn;
  std::optional<storage::Savepoint> sp;
  if (batch_) {
    OUTPOST_ASSIGN_OR_RETURN(storage::Savepoint s, storage::Savepoint::begin(store_->db()));
    sp.emplace(std::move(s));
  } else {
    OUTPOST_ASSIGN_OR_RETURN(storage::Transaction t, store_->begin());
    txn.emplace(std::move(t));
  }
  Outcome prior;
  OUTPOST_ASSIGN_OR_RETURN(bool seen, replay(request_id, op, prior));
  if (seen) return prior;  // nothing changed
  OUTPOST_RETURN_IF_ERROR(signing_allowed());
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store_->head(node_id_));
  OUTPOST_RETURN_IF_ERROR(check_fence(head.seq));
  OUTPOST_ASSIGN_OR_RETURN(auto hlc_text, store_->get_meta("hlc"));
  sync::HlcClock hlc;
  if (hlc_text) {
    OUTPOST_ASSIGN_OR_RETURN(sync::Hlc last, parse_hlc(*hlc_text));
    hlc = sync::HlcClock(last);
  }
  op.origin = node_id_;
  op.seq = head.seq + 1;
  op.prev = head.hash;
  op.hlc = hlc.now(clock_.now_ms());
  op.request_id = request_id;

  OUTPOST_ASSIGN_OR_RETURN(auto member, store_->load_member(op.member));
  if (member_must_exist && (!member || !member->fields.count(Field::kCard))) {
    return Status::not_found("unknown member " + sync::id_hex(op.member));
  }
  OUTPOST_ASSIGN_OR_RETURN(auto refused, check(op, member ? &*member : nullptr));
  if (refused) return Outcome::refuse(std::move(*refused));  // txn rolls back
  OUTPOST_RETURN_IF_ERROR(sync::validate_op(op));

  sync::SignedOp sop = sync::sign_op(op, key_);
  // The member was loaded above in this transaction: append_op need not read it again.
  static const MemberState kNoMember;
  OUTPOST_RETURN_IF_ERROR(store_->append_op(sop, member ? &*member : &kNoMember));
  MemberState after = member ? *member : MemberState{};
  OUTPOST_RETURN_IF_ERROR(sync::apply_effects(after, op));
  // Invariant: this node's rights never go below zero (docs/architecture.md, "Escrow counter").
  OUTPOST_CHECK(after.points.rights(node_id_) >= 0 && after.wallet.rights(node_id_) >= 0);

  Done done;
  done.origin = op.origin;
  done.seq = op.seq;
  done.kind = op.kind;
  done.member = op.member;
  if (op.account != Account::kNone) done.amount = op.amount;
  if (op.kind == OpKind::kEarn) done.purchase_minor = op.spend_minor;
  done.points = account_view(after.points, node_id_);
  done.wallet = account_view(after.wallet, node_id_);
  done.hash = sop.hash;
  OUTPOST_RETURN_IF_ERROR(
      store_->put_request(request_id, node_id_, op.seq, schema::done_json(done).dump()));
  OUTPOST_RETURN_IF_ERROR(store_->set_meta("hlc", op.hlc.to_string()));
  OUTPOST_RETURN_IF_ERROR(sp ? sp->release() : txn->commit());
  return Outcome::made(std::move(done));
}

Result<Outcome> Ledger::enroll(const EnrollRequest& req) {
  OUTPOST_RETURN_IF_ERROR(validate_card(req.card));
  OUTPOST_RETURN_IF_ERROR(validate_name(req.name));
  if (!req.phone.empty()) OUTPOST_RETURN_IF_ERROR(validate_phone(req.phone));
  if (!req.birthday.empty()) OUTPOST_RETURN_IF_ERROR(validate_birthday(req.birthday));
  Op op;
  op.kind = OpKind::kEnroll;
  // From the Env, so that a simulated chain is one run per seed (SystemEnv: the OS source).
  for (std::size_t i = 0; i < op.member.size(); i += 8) {
    const std::uint64_t r = clock_.random_u64();
    std::memcpy(op.member.data() + i, &r, std::min<std::size_t>(8, op.member.size() - i));
  }
  op.fields.push_back({Field::kCard, req.card});
  op.fields.push_back({Field::kName, req.name});
  if (!req.phone.empty()) op.fields.push_back({Field::kPhone, req.phone});
  if (!req.birthday.empty()) op.fields.push_back({Field::kBirthday, req.birthday});
  op.fields.push_back({Field::kHomeStore, sync::id_hex(node_id_)});
  op.fields.push_back({Field::kStatus, "active"});
  const std::string card = req.card;
  return execute(req.request_id, op, false, [this, card](Op&, const MemberState*) -> Checked {
    OUTPOST_ASSIGN_OR_RETURN(auto holders, store_->find_members(Field::kCard, card));
    if (holders.empty()) return std::optional<Refusal>();
    return std::optional<Refusal>(
        Refusal{RefusalReason::kCardInUse,
                "card " + card + " already belongs to member " + sync::id_hex(holders.front()),
                std::nullopt, std::nullopt, std::nullopt});
  });
}

Result<Outcome> Ledger::update_profile(const std::string& request_id, const MemberId& member,
                                       const std::vector<sync::FieldValue>& fields, bool reopen) {
  if (fields.empty()) return Status::invalid("no profile field to update");
  for (const auto& f : fields) {
    switch (f.field) {
      case Field::kCard:
        OUTPOST_RETURN_IF_ERROR(validate_card(f.value));
        break;
      case Field::kName:
        OUTPOST_RETURN_IF_ERROR(validate_name(f.value));
        break;
      case Field::kPhone:
        OUTPOST_RETURN_IF_ERROR(validate_phone(f.value));
        break;
      case Field::kBirthday:
        OUTPOST_RETURN_IF_ERROR(validate_birthday(f.value));
        break;
      case Field::kStatus:
        if (f.value != "active" && f.value != "blocked" && f.value != "closed") {
          return Status::invalid("status must be active, blocked or closed");
        }
        break;
      default:
        if (f.value.size() > limits::kFieldValueBytesMax)
          return Status::invalid("field value too long");
    }
  }
  Op op;
  op.kind = OpKind::kProfile;
  op.member = member;
  op.fields = fields;
  return execute(request_id, op, true, [reopen](Op& o, const MemberState* m) -> Checked {
    auto no = sync::profile_refusal(*m, o.fields, reopen);
    if (!no) return std::optional<Refusal>();
    Refusal r = rule_refusal(*no);
    if (r.reason == RefusalReason::kWalletNotEmpty) r.balance = m->wallet.value();
    return std::optional<Refusal>(std::move(r));
  });
}

Result<Outcome> Ledger::earn(const std::string& request_id, const MemberId& member,
                             std::uint64_t purchase_minor, const std::string& receipt) {
  if (purchase_minor == 0 || purchase_minor > limits::kAmountMax)
    return Status::invalid("purchase amount out of range");
  Op op;
  op.kind = OpKind::kEarn;
  op.member = member;
  op.account = Account::kPoints;
  op.spend_minor = purchase_minor;
  op.receipt = receipt;
  return execute(request_id, op, true, [this](Op& o, const MemberState* m) -> Checked {
    if (auto no = status_check(*m, o)) return no;
    o.amount =
        sync::points_for_purchase(m, rules_, sync::month_index(o.hlc.wall_ms), o.spend_minor);
    return std::optional<Refusal>();
  });
}

Result<Outcome> Ledger::debit(const std::string& request_id, const MemberId& member, OpKind kind,
                              std::uint64_t amount, const std::string& receipt,
                              const PinClearance* pin) {
  if (amount == 0 || amount > limits::kAmountMax) return Status::invalid("amount out of range");
  Op op;
  op.kind = kind;
  op.member = member;
  op.account = kind == OpKind::kRedeem ? Account::kPoints : Account::kWallet;
  op.amount = amount;
  op.receipt = receipt;
  return execute(request_id, op, true, [this, pin](Op& o, const MemberState* m) -> Checked {
    if (auto no = status_check(*m, o)) return no;
    if (o.kind == OpKind::kSpend) {
      OUTPOST_ASSIGN_OR_RETURN(auto no,
                               pin_cleared(*m, o, pin, "this member's wallet needs a PIN"));
      if (no) return no;
    }
    auto no = sync::rights_refusal(*m, o, node_id_);
    if (!no) return std::optional<Refusal>();
    // The refusal in full: the POS (and the rights broker) read where the rest
    // sits.
    const sync::RuleRefusal::Rights& rights = *no->rights;
    Refusal r = rule_refusal(*no);
    r.rights = RightsShortfall{o.member,    o.account,        rights.requested, rights.balance,
                               rights.here, rights.shortfall, rights.elsewhere, false};
    return std::optional<Refusal>(std::move(r));
  });
}

Result<Outcome> Ledger::redeem(const std::string& request_id, const MemberId& member,
                               std::uint64_t points, const std::string& receipt) {
  return debit(request_id, member, OpKind::kRedeem, points, receipt, nullptr);
}

Result<Outcome> Ledger::spend(const std::string& request_id, const MemberId& member,
                              std::uint64_t amount_minor, const std::string& receipt,
                              const PinClearance* pin) {
  return debit(request_id, member, OpKind::kSpend, amount_minor, receipt, pin);
}

Result<Outcome> Ledger::topup(const std::string& request_id, const MemberId& member,
                              std::uint64_t amount_minor, const std::string& receipt) {
  if (amount_minor == 0 || amount_minor > limits::kAmountMax)
    return Status::invalid("amount out of range");
  Op op;
  op.kind = OpKind::kTopup;
  op.member = member;
  op.account = Account::kWallet;
  op.amount = amount_minor;
  op.receipt = receipt;
  return execute(request_id, op, true,
                 [](Op& o, const MemberState* m) -> Checked { return status_check(*m, o); });
}

Result<Outcome> Ledger::reverse(const std::string& request_id, const NodeId& origin,
                                std::uint64_t seq) {
  OUTPOST_RETURN_IF_ERROR(validate_request_id(request_id));
  // Replays of an earlier reversal answer before the op checks below (the op is reversed now);
  // a request_id that made another operation is refused as by execute().
  {
    Op asked;
    asked.kind = OpKind::kReverse;
    asked.ref_origin = origin;
    asked.ref_seq = seq;
    Outcome prior;
    OUTPOST_ASSIGN_OR_RETURN(bool seen, replay(request_id, asked, prior));
    if (seen) return prior;
  }
  const std::string ref = sync::op_ref_string(origin, seq);
  OUTPOST_ASSIGN_OR_RETURN(auto target, store_->get_op(origin, seq));
  if (!target) return Status::not_found("unknown op " + ref);
  const Op& t = target->op;
  if (!sync::is_reversible(t.kind)) {
    return Status::invalid("a " + std::string(sync::kind_name(t.kind)) + " op cannot be reversed");
  }
  if (origin != node_id_) {
    return Outcome::refuse(
        RefusalReason::kNotOrigin,
        "op " + ref + " was made at another node; only its origin may reverse it");
  }
  const Op op = sync::reversal_of(t);
  return execute(request_id, op, true, [this, ref](Op& o, const MemberState* m) -> Checked {
    if (auto no = status_check(*m, o)) return no;
    OUTPOST_ASSIGN_OR_RETURN(auto by, store_->reversed_by(o.ref_origin, o.ref_seq));
    if (by) {
      return std::optional<Refusal>(
          Refusal{RefusalReason::kAlreadyReversed,
                  "op " + ref + " was already reversed by op " + sync::op_ref_string(node_id_, *by),
                  std::nullopt, std::nullopt, std::nullopt});
    }
    // Undoing a credit takes rights back: only possible while this node still holds
    // them.
    if (auto no = sync::rights_refusal(*m, o, node_id_))
      return std::optional<Refusal>(rule_refusal(*no));
    return std::optional<Refusal>();
  });
}

Result<Outcome> Ledger::move_rights(const std::string& request_id, const MemberId& member,
                                    Account account, std::uint64_t amount, const NodeId& target) {
  if (amount == 0 || amount > limits::kAmountMax) return Status::invalid("amount out of range");
  if (target == node_id_) return Status::invalid("cannot move rights to this node itself");
  Op op;
  op.kind = OpKind::kMove;
  op.member = member;
  op.account = account;
  op.amount = amount;
  op.target = target;
  return execute(request_id, op, true, [this](Op& o, const MemberState* m) -> Checked {
    if (auto no = status_check(*m, o)) return no;
    if (auto no = sync::rights_refusal(*m, o, node_id_))
      return std::optional<Refusal>(rule_refusal(*no));
    return std::optional<Refusal>();
  });
}

Result<bool> Ledger::has_request(const std::string& request_id) {
  OUTPOST_ASSIGN_OR_RETURN(auto prior, store_->find_request(request_id));
  return prior.has_value();
}

Result<std::string> Ledger::add_terminal(const std::string& name, const std::string& role) {
  OUTPOST_RETURN_IF_ERROR(validate_name(name).with_context("terminal name"));
  if (role != "pos" && role != "admin")
    return Status::invalid("terminal role must be pos or admin");
  std::array<std::uint8_t, 32> raw{};
  crypto::random_bytes(raw);
  std::string token = "opt_" + crypto::to_hex(raw);
  crypto::wipe(raw);
  storage::Terminal t{name, role, static_cast<std::int64_t>(clock_.now_ms())};
  OUTPOST_RETURN_IF_ERROR(store_->add_terminal(t, crypto::sha256(crypto::view(token))));
  return token;
}

Result<std::vector<std::string>> Ledger::rebalance(sync::MemberId* cursor, std::size_t members_max,
                                                   std::uint64_t now_ms,
                                                   const sync::RebalancePolicy& policy) {
  // How far back a member's ops are read to find where they shop: the newest ones decide.
  constexpr std::size_t kRecentOpsRead = 64;
  std::vector<std::string> moved;
  OUTPOST_ASSIGN_OR_RETURN(auto members, store_->members_with_balances_after(*cursor, members_max));
  *cursor = members.size() < members_max ? MemberId{} : members.back();  // wrap after the last page
  if (!signing_allowed().is_ok()) return moved;
  for (const MemberId& member : members) {
    OUTPOST_ASSIGN_OR_RETURN(auto state, store_->load_member(member));
    if (!state) continue;
    if (state->points.rights(node_id_) <= 0 && state->wallet.rights(node_id_) <= 0) continue;
    OUTPOST_ASSIGN_OR_RETURN(auto recent, store_->ops_of_member(member, kRecentOpsRead));
    std::map<NodeId, std::uint64_t> last_seen;
    for (const auto& sop : recent) {
      if (sop.op.kind == OpKind::kMove) continue;  // rights moving is not the member shopping
      auto& t = last_seen[sop.op.origin];
      t = std::max(t, sop.op.hlc.wall_ms);
    }
    for (Account account : {Account::kPoints, Account::kWallet}) {
      auto plan =
          sync::plan_rebalance(counter_of(*state, account), node_id_, last_seen, now_ms, policy);
      if (!plan) continue;
      auto r =
          move_rights("rebalance-" + new_request_id(), member, account, plan->amount, plan->to);
      if (!r.is_ok()) {
        if (r.status().code() == Code::kUnavailable) return moved;  // fenced: try again later
        return r.status();
      }
      if (r->refused) continue;
      moved.push_back(std::string(sync::account_name(account)) + " " +
                      std::to_string(plan->amount) + " of member " + sync::id_hex(member) + " to " +
                      sync::id_hex(plan->to));
      OUTPOST_ASSIGN_OR_RETURN(state, store_->load_member(member));
    }
  }
  return moved;
}

Result<std::uint64_t> Ledger::grant_rights(const NodeId& to, const MemberId& member,
                                           Account account, std::uint64_t amount) {
  if (account != Account::kPoints && account != Account::kWallet)
    return Status::invalid("bad account");
  OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
  if (!m) return std::uint64_t{0};
  std::int64_t here = counter_of(*m, account).rights(node_id_);
  if (here <= 0) return std::uint64_t{0};
  std::uint64_t give = std::min<std::uint64_t>(amount, static_cast<std::uint64_t>(here));
  OUTPOST_ASSIGN_OR_RETURN(Outcome r,
                           move_rights("grant-" + new_request_id(), member, account, give, to));
  if (r.refused) return std::uint64_t{0};
  return give;
}

}  // namespace outpost::node
