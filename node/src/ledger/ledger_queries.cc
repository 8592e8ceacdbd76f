// Ledger's read-only answers (outpost/node/ledger.h; the files of Ledger are listed in
// ledger_internal.h): finding members, a member's state and history, the node's status and
// rules, and `outpost log verify`, which re-judges every held op by the log rule and replays the
// log against the stored state.
#include <algorithm>
#include <set>

#include "ledger_internal.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "outpost/sync/member_rules.h"
#include "outpost/sync/replica.h"

namespace outpost::node {

using ledger_internal::account_view;
using ledger_internal::trust_in;
using sync::Account;
using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::NodeId;
using sync::Op;
using sync::OpKind;

Result<MemberId> Ledger::resolve_member(const std::string& id_or_card) {
  if (id_or_card.size() == 32) {
    auto id = sync::parse_id(id_or_card);
    if (id.is_ok()) return *id;
  }
  if (validate_card(id_or_card).is_ok()) {
    OUTPOST_ASSIGN_OR_RETURN(auto found, store_->find_members(Field::kCard, id_or_card));
    if (found.empty()) return Status::not_found("no member with card " + id_or_card);
    return found.front();
  }
  return Status::invalid("member must be a 32-hex-digit id or a card number, got '" + id_or_card +
                         "'");
}

Result<std::vector<MemberId>> Ledger::find_by_card(const std::string& card) {
  OUTPOST_RETURN_IF_ERROR(validate_card(card));
  return store_->find_members(Field::kCard, card);
}

Result<std::vector<MemberId>> Ledger::find_by_phone(const std::string& phone) {
  OUTPOST_RETURN_IF_ERROR(validate_phone(phone));
  return store_->find_members(Field::kPhone, phone);
}

Result<Json> Ledger::member_json(const MemberId& member) {
  OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
  if (!m || !m->fields.count(Field::kCard))
    return Status::not_found("unknown member " + sync::id_hex(member));
  Json j;
  j["id"] = sync::id_hex(member);
  for (Field f : {Field::kCard, Field::kName, Field::kPhone, Field::kBirthday, Field::kHomeStore,
                  Field::kStatus}) {
    j[sync::field_name(f)] = m->field(f);
  }
  j["pin_set"] = !m->field(Field::kPinHash).empty();
  const sync::PinLock lock = sync::pin_lock(*m, clock_.now_ms());
  j["pin_failures"] = lock.failures;
  j["pin_locked_until_ms"] = lock.locked_until_ms;
  std::uint32_t month = sync::month_index(clock_.now_ms());
  std::uint64_t spend = m->rolling_spend(month, rules_.window_months);
  j["tier"] = rules_.tier_for(spend).name;
  j["rolling_spend_minor"] = spend;
  j["visits"] = m->visits.total();
  j["points"] = schema::account_json(account_view(m->points, node_id_));
  j["wallet"] = schema::account_json(account_view(m->wallet, node_id_));
  return j;
}

Json Ledger::op_json(const sync::SignedOp& sop) {
  const Op& op = sop.op;
  Json j;
  j["op"] = sync::op_ref_string(op.origin, op.seq);
  j["origin"] = sync::id_hex(op.origin);
  j["seq"] = op.seq;
  j["kind"] = sync::kind_name(op.kind);
  j["hlc"] = op.hlc.to_string();
  j["member"] = sync::id_hex(op.member);
  if (op.account != Account::kNone) {
    j["account"] = sync::account_name(op.account);
    j["amount"] = op.amount;
  }
  if (op.kind == OpKind::kEarn || (op.kind == OpKind::kReverse && op.ref_kind == OpKind::kEarn)) {
    j["purchase_minor"] = op.spend_minor;
  }
  if (op.kind == OpKind::kMove) j["target"] = sync::id_hex(op.target);
  if (op.kind == OpKind::kReverse) {
    j["reverses"] = sync::op_ref_string(op.ref_origin, op.ref_seq);
    j["reversed_kind"] = sync::kind_name(op.ref_kind);
  }
  if (!op.fields.empty()) {
    Json f = Json::object();
    for (const auto& fv : op.fields)
      f[sync::field_name(fv.field)] = fv.field == Field::kPinHash ? "(set)" : fv.value;
    j["fields"] = f;
  }
  if (!op.request_id.empty()) j["request_id"] = op.request_id;
  if (!op.receipt.empty()) j["receipt"] = op.receipt;
  j["hash"] = crypto::to_hex(sop.hash);
  return j;
}

Result<Json> Ledger::history_json(const MemberId& member, std::size_t limit) {
  limit = std::min(limit, limits::kHistoryRowsMax);
  OUTPOST_ASSIGN_OR_RETURN(auto ops, store_->ops_of_member(member, limit));
  if (ops.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(auto m, store_->load_member(member));
    if (!m) return Status::not_found("unknown member " + sync::id_hex(member));
  }
  Json arr = Json::array();
  for (const auto& op : ops) {
    Json j = op_json(op);
    OUTPOST_ASSIGN_OR_RETURN(auto by, store_->reversed_by(op.op.origin, op.op.seq));
    if (by) j["reversed_by"] = sync::op_ref_string(op.op.origin, *by);
    arr.push_back(std::move(j));
  }
  return arr;
}

Result<Json> Ledger::status_json() {
  Json j;
  j["node_id"] = sync::id_hex(node_id_);
  j["name"] = node_name_;
  OUTPOST_ASSIGN_OR_RETURN(auto role, store_->get_meta("role"));
  j["role"] = role.value_or("store");
  j["signing_public_key"] = crypto::to_hex(key_.public_key());
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store_->version_vector());
  Json v = Json::object();
  for (const auto& [origin, seq] : vv) v[sync::id_hex(origin)] = seq;
  j["version_vector"] = v;
  OUTPOST_ASSIGN_OR_RETURN(std::uint64_t n, store_->op_count());
  j["ops"] = n;
  j["schema_version"] = storage::kSchemaVersion;
  j["rules_version"] = rules_.version;
  j["rules_source"] = rules_source_;
  OUTPOST_ASSIGN_OR_RETURN(j["seq_fence"], fence_json());
  return j;
}

Json Ledger::rules_json() const {
  Json tiers = Json::array();
  for (const auto& t : rules_.tiers) {
    tiers.push_back({{"name", t.name},
                     {"threshold_minor", t.threshold_minor},
                     {"points_per_unit", t.points_per_unit}});
  }
  return Json{{"version", rules_.version},
              {"source", rules_source_},
              {"unit_minor", rules_.unit_minor},
              {"window_months", rules_.window_months},
              {"tiers", tiers}};
}

namespace {

// `log verify`'s check of one stored op of `origin` by the log rule, against the ops before it
// (`expect`: the seq that should come next; `prev`: the hash of the op before). Findings go to
// `report`; a gap is reported, and the op is then judged as if the log went on from it. Advances
// `expect` and `prev` past the op.
void check_stored_op(const NodeId& origin, const sync::OriginTrust& trust,
                     const sync::SignedOp& sop, std::uint64_t& expect, sync::Hash32& prev,
                     VerifyReport& report) {
  const std::string ref = sync::op_ref_string(origin, sop.op.seq);
  report.ops_checked++;
  if (sop.op.origin != origin) report.findings.push_back(ref + ": origin field differs");
  sync::LogRuling ruling = sync::judge_op({expect - 1, prev}, trust, sop, nullptr);
  if (ruling.verdict == sync::LogVerdict::kGap || ruling.at_held_seq) {
    report.findings.push_back(ref + ": gap, expected seq " + std::to_string(expect));
    ruling = sync::judge_op({sop.op.seq - 1, prev}, trust, sop, nullptr);
  }
  switch (ruling.verdict) {
    case sync::LogVerdict::kApply:
    case sync::LogVerdict::kUnknownOrigin:  // the origin's finding says it once
    case sync::LogVerdict::kDuplicate:      // not after a re-judge at the op's own seq
    case sync::LogVerdict::kEquivocation:
    case sync::LogVerdict::kGap:
      break;
    case sync::LogVerdict::kBadSignature:
      report.findings.push_back(ref + ": " + ruling.signature.message());
      break;
    case sync::LogVerdict::kRevoked:
      report.findings.push_back(ref + ": after its origin's revocation cutoff (seq " +
                                std::to_string(*trust.cutoff) + ")");
      break;
    case sync::LogVerdict::kFork:
      report.findings.push_back(ref + ": prev does not match the previous op's hash");
      break;
    case sync::LogVerdict::kMalformed:
      report.findings.push_back(ref +
                                ": malformed (seq 0, or a genesis op that names a previous op)");
      break;
  }
  prev = sop.hash;
  expect = sop.op.seq + 1;
}

}  // namespace

Result<VerifyReport> Ledger::verify_log() {
  VerifyReport report;
  OUTPOST_ASSIGN_OR_RETURN(auto vv, store_->version_vector());
  sync::Replica replica;
  constexpr std::size_t kBatch = 512;
  for (const auto& [origin, head_seq] : vv) {
    report.origins++;
    const sync::OriginTrust trust = trust_in(*this, origin);
    if (!trust.key) {
      report.findings.push_back("origin " + sync::id_hex(origin) + ": no known public key");
    }
    sync::Hash32 prev{};
    std::uint64_t expect = 1;
    while (expect <= head_seq) {
      auto read = store_->ops_of_origin(origin, expect, kBatch);
      if (!read.is_ok() && read.status().code() != Code::kCorruption) return read.status();
      std::vector<sync::SignedOp> batch;
      std::uint64_t stretch_end = 0;  // set when read op by op: the next read starts after it
      if (read.is_ok()) {
        batch = std::move(read).value();
      } else {
        // A stored op that no longer decodes: read this stretch one op at a time so the finding
        // names it, and go on with the rest of the log.
        const std::uint64_t last = std::min<std::uint64_t>(head_seq, expect + kBatch - 1);
        stretch_end = last;
        for (std::uint64_t seq = expect; seq <= last; ++seq) {
          auto one = store_->get_op(origin, seq);
          if (one.is_ok() && *one) {
            batch.push_back(std::move(**one));
          } else if (!one.is_ok()) {
            report.ops_checked++;
            report.findings.push_back(sync::op_ref_string(origin, seq) +
                                      ": stored op cannot be decoded: " + one.status().message());
          }
        }
        if (batch.empty()) {
          expect = last + 1;
          prev = {};
          continue;
        }
      }
      if (batch.empty()) break;
      for (const auto& sop : batch) {
        check_stored_op(origin, trust, sop, expect, prev, report);
        auto applied = replica.apply(sop.op);
        if (!applied.is_ok()) {
          report.findings.push_back(sync::op_ref_string(origin, sop.op.seq) + ": " +
                                    applied.status().message());
        }
      }
      if (stretch_end != 0) expect = std::max(expect, stretch_end + 1);
    }
    if (expect != head_seq + 1) {
      report.findings.push_back("origin " + sync::id_hex(origin) + ": log ends at seq " +
                                std::to_string(expect - 1) + " but head says " +
                                std::to_string(head_seq));
    }
    OUTPOST_ASSIGN_OR_RETURN(storage::Head h, store_->head(origin));
    if (h.hash != prev)
      report.findings.push_back("origin " + sync::id_hex(origin) +
                                ": head hash does not match the last op");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto stored, store_->load_all_members());
  std::set<MemberId> ids;
  for (const auto& [id, m] : stored) ids.insert(id);
  for (const auto& [id, m] : replica.members()) ids.insert(id);
  for (const auto& id : ids) {
    report.members_compared++;
    const MemberState* replayed = replica.member(id);
    auto it = stored.find(id);
    if (!replayed || it == stored.end() || !(it->second == *replayed)) {
      std::string detail;
      if (replayed && it != stored.end()) {
        detail = " (stored points " + std::to_string(it->second.points.value()) + ", wallet " +
                 std::to_string(it->second.wallet.value()) + "; replayed points " +
                 std::to_string(replayed->points.value()) + ", wallet " +
                 std::to_string(replayed->wallet.value()) + ")";
      }
      report.findings.push_back("member " + sync::id_hex(id) +
                                ": stored state differs from the replay of the log" + detail);
    }
  }
  return report;
}

}  // namespace outpost::node
